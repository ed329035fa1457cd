// @vitest-environment jsdom
import { h, render } from "preact";
import { act } from "preact/test-utils";
import { afterEach, describe, expect, it } from "vitest";
import { FormStatus, type StatusLook } from "./FormStatus";

const root = () => document.body.querySelector("#root") ?? document.body.appendChild(Object.assign(document.createElement("div"), { id: "root" }));

afterEach(() => {
  render(null, root());
  document.body.innerHTML = "";
});

async function show(props: { status?: string; error?: string | null; look?: StatusLook }) {
  await act(() => {
    render(h(FormStatus, props), root());
  });
  return root();
}

describe("FormStatus", () => {
  it("keeps one status region in the page before and after its text arrives", async () => {
    const empty = (await show({ look: "notice" })).querySelector('[role="status"]');
    expect(empty?.textContent).toBe("");
    expect(empty?.className).toBe("visually-hidden");
    const filled = (await show({ status: "Password changed.", look: "notice" })).querySelector('[role="status"]');
    expect(filled).toBe(empty);
    expect(filled?.textContent).toBe("Password changed.");
    expect(filled?.className).toBe("notice");
  });

  it("shows an alert only for a failure, and hides a status meant only to be heard", async () => {
    expect((await show({ status: "Saved." })).querySelector('[role="alert"]')).toBeNull();
    expect(root().querySelector('[role="status"]')?.className).toBe("visually-hidden");
    for (const error of [null, ""]) {
      expect((await show({ error })).querySelector('[role="alert"]')).toBeNull();
    }
    const alert = (await show({ error: "The password is wrong." })).querySelector('[role="alert"]');
    expect(alert?.textContent).toBe("The password is wrong.");
    expect(alert?.className).toBe("error");
  });
});
