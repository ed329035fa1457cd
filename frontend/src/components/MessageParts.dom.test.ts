// @vitest-environment jsdom
import { h, render } from "preact";
import { act } from "preact/test-utils";
import { afterEach, describe, expect, it } from "vitest";
import type { Schemas } from "../api/client";
import type { MessageFile } from "../api/messageFiles";
import { MessageParts } from "./MessageParts";

type Part = Schemas["MimePartView"];

const STRUCTURE: Part[] = [
  { index: 0, depth: 0, content_type: "multipart/mixed", size: 0, shown_inline: false, attachment: false },
  { index: 1, parent: 0, depth: 1, content_type: "text/plain", size: 12, charset: "utf-8", shown_inline: true, attachment: false },
  { index: 2, parent: 0, depth: 1, content_type: "text/plain", size: 30, disposition: "inline", shown_inline: true, attachment: false },
  { index: 3, parent: 0, depth: 1, content_type: "application/octet-stream", size: 6, disposition: "attachment", file_name: "bytes.bin", shown_inline: false, attachment: true },
];

const root = () => document.body.querySelector("#root") ?? document.body.appendChild(Object.assign(document.createElement("div"), { id: "root" }));

afterEach(() => {
  render(null, root());
  document.body.innerHTML = "";
});

async function mount(structure: readonly Part[], downloads: MessageFile[] = []) {
  await act(() => {
    render(h(MessageParts, { structure, onDownload: (f: MessageFile) => downloads.push(f) }), root());
  });
  return root();
}

describe("MessageParts", () => {
  it("is not there for a message of one part shown as its body", async () => {
    const el = await mount([{ index: 0, depth: 0, content_type: "text/plain", size: 3, shown_inline: true, attachment: false }]);
    expect(el.querySelector("details")).toBeNull();
  });

  it("starts closed, then lists the tree with a download for every part but the container", async () => {
    const downloads: MessageFile[] = [];
    const el = await mount(STRUCTURE, downloads);
    const details = el.querySelector("details");
    expect(details?.open).toBe(false);
    expect(details?.querySelector("summary")?.textContent).toBe("Message parts (4)");
    expect(el.querySelector(".part-list")).toBeNull();

    await act(() => {
      if (details) details.open = true;
      details?.dispatchEvent(new Event("toggle"));
    });
    const list = el.querySelector('ul[aria-label="Message parts"]');
    expect(list).not.toBeNull();
    // The container at the top, its three parts one level down.
    expect(list?.querySelectorAll(":scope > li")).toHaveLength(1);
    expect(list?.querySelectorAll(":scope > li > ul > li")).toHaveLength(3);
    const rows = [...el.querySelectorAll(".part")].map((r) => r.textContent);
    expect(rows[0]).toBe("multipart/mixed");
    expect(rows[1]).toContain("shown above");
    expect(rows[3]).toContain("bytes.bin");
    expect(rows[3]).toContain("attachment");

    const buttons = [...el.querySelectorAll<HTMLButtonElement>("button.part-download")];
    expect(buttons.map((b) => b.getAttribute("aria-label"))).toEqual([
      "Download part 1 (text/plain)",
      "Download part 2 (text/plain)",
      "Download bytes.bin",
    ]);
    await act(() => buttons[1]?.click());
    await act(() => buttons[2]?.click());
    expect(downloads).toEqual([
      { kind: "part", index: 2, fileName: "part-2" },
      { kind: "part", index: 3, fileName: "bytes.bin" },
    ]);
  });
});
