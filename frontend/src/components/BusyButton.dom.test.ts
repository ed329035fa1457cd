// @vitest-environment jsdom
import { createRef, h, render } from "preact";
import { act } from "preact/test-utils";
import { afterEach, describe, expect, it, vi } from "vitest";
import { BusyButton } from "./BusyButton";

const root = () => document.body.querySelector("#root") ?? document.body.appendChild(Object.assign(document.createElement("div"), { id: "root" }));

afterEach(() => {
  render(null, root());
  document.body.innerHTML = "";
});

async function form(busy: boolean, onSubmit: () => void, onClick?: () => void) {
  await act(() => {
    render(
      h("form", { onSubmit: (e: Event) => { e.preventDefault(); onSubmit(); } },
        h(BusyButton, { busy, type: "submit", class: "button", onClick }, "Save")),
      root(),
    );
  });
  const button = root().querySelector("button");
  if (button === null) throw new Error("no button");
  return button;
}

describe("BusyButton", () => {
  it("keeps focus while busy and ignores presses, submissions included", async () => {
    const submitted = vi.fn();
    const clicked = vi.fn();
    const idle = await form(false, submitted, clicked);
    idle.focus();
    idle.click();
    expect([submitted.mock.calls.length, clicked.mock.calls.length]).toEqual([1, 1]);
    expect(idle.getAttribute("aria-disabled")).toBe("false");

    const busy = await form(true, submitted, clicked);
    expect(busy).toBe(idle);
    expect(document.activeElement).toBe(busy);
    expect(busy.disabled).toBe(false);
    expect(busy.getAttribute("aria-disabled")).toBe("true");
    busy.click();
    expect([submitted.mock.calls.length, clicked.mock.calls.length]).toEqual([1, 1]);
  });

  it("hands its button to a screen that moves focus to it", async () => {
    const ref = createRef<HTMLButtonElement>();
    await act(() => {
      render(h(BusyButton, { busy: true, buttonRef: ref }, "Send"), root());
    });
    expect(ref.current).toBe(root().querySelector("button"));
    ref.current?.focus();
    expect(document.activeElement).toBe(ref.current);
  });
});
