import { describe, expect, it } from "vitest";
import type { Schemas } from "./api/client";
import {
  MAX_INDENT,
  formatSize,
  isContainer,
  partFacts,
  partFileName,
  partTags,
  partTree,
  wantsPartsPanel,
  type PartNode,
} from "./messageParts";

type Part = Schemas["MimePartView"];

function part(index: number, content_type: string, more: Partial<Part> = {}): Part {
  return { index, depth: 0, content_type, size: 0, shown_inline: false, attachment: false, ...more };
}

/** The tree as indented lines, "index content_type", two spaces per level. */
function outline(nodes: readonly PartNode[], level = 0): string[] {
  return nodes.flatMap((n) => [`${"  ".repeat(level)}${n.part.index} ${n.part.content_type}`, ...outline(n.children, level + 1)]);
}

/** multipart/mixed holding an alternative (text and HTML), a second text part and a file. */
const MIXED: Part[] = [
  part(0, "multipart/mixed"),
  part(1, "multipart/alternative", { parent: 0, depth: 1 }),
  part(2, "text/plain", { parent: 1, depth: 2, size: 120, charset: "utf-8", shown_inline: true }),
  part(3, "text/html", { parent: 1, depth: 2, size: 2048, charset: "utf-8", shown_inline: true }),
  part(4, "text/plain", { parent: 0, depth: 1, size: 40, disposition: "inline", charset: "us-ascii", shown_inline: true }),
  part(5, "application/pdf", { parent: 0, depth: 1, size: 3 * 1024 * 1024, disposition: "attachment", file_name: "report.pdf", attachment: true }),
];

describe("wantsPartsPanel", () => {
  it("leaves out a message that is one part shown as its body, or has no structure", () => {
    expect(wantsPartsPanel([part(0, "text/plain", { size: 5, shown_inline: true })])).toBe(false);
    expect(wantsPartsPanel([])).toBe(false);
  });

  it("leaves out a message that is one attachment: the attachment list already reaches it", () => {
    expect(wantsPartsPanel([part(0, "application/pdf", { attachment: true })])).toBe(false);
  });

  it("shows any tree", () => {
    expect(wantsPartsPanel(MIXED)).toBe(true);
  });

  it("shows a single part that is neither shown nor an attachment", () => {
    expect(wantsPartsPanel([part(0, "application/octet-stream", { size: 9 })])).toBe(true);
  });
});

describe("partTree", () => {
  it("nests parts under their multipart, in the server's order", () => {
    expect(outline(partTree(MIXED))).toEqual([
      "0 multipart/mixed",
      "  1 multipart/alternative",
      "    2 text/plain",
      "    3 text/html",
      "  4 text/plain",
      "  5 application/pdf",
    ]);
  });

  it("keeps a part whose parent is missing, at the top", () => {
    const cut = [part(0, "multipart/mixed"), part(7, "text/plain", { parent: 3, depth: 2 })];
    expect(outline(partTree(cut))).toEqual(["0 multipart/mixed", "7 text/plain"]);
  });

  it("stops indenting at MAX_INDENT, so a deep tree stays on screen, and keeps every part", () => {
    const deep: Part[] = Array.from({ length: 20 }, (_, i) =>
      part(i, i === 19 ? "text/plain" : "multipart/mixed", i === 0 ? {} : { parent: i - 1, depth: i }),
    );
    const lines = outline(partTree(deep));
    expect(lines).toHaveLength(20);
    const indents = lines.map((l) => (l.length - l.trimStart().length) / 2);
    expect(Math.max(...indents)).toBe(MAX_INDENT);
    expect(indents.slice(0, MAX_INDENT + 1)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(lines[19]).toBe(`${"  ".repeat(MAX_INDENT)}19 text/plain`);
  });
});

describe("a part's row", () => {
  it("says size, disposition and charset, but no size for a container", () => {
    expect(partFacts(MIXED[0] as Part)).toEqual([]);
    expect(partFacts(MIXED[2] as Part)).toEqual(["120 B", "utf-8"]);
    expect(partFacts(MIXED[4] as Part)).toEqual(["40 B", "inline", "us-ascii"]);
    expect(partFacts(MIXED[5] as Part)).toEqual(["3 MB", "attachment"]);
  });

  it("tags what Palisade did with it, and flags content it neither shows nor lists", () => {
    expect(partTags(MIXED[0] as Part)).toEqual([]);
    expect(partTags(MIXED[3] as Part)).toEqual(["shown"]);
    expect(partTags(MIXED[5] as Part)).toEqual(["attachment"]);
    expect(partTags(part(6, "image/png", { shown_inline: true, attachment: true }))).toEqual(["shown", "attachment"]);
    expect(partTags(part(8, "application/octet-stream"))).toEqual(["hidden"]);
  });

  it("knows containers, whatever the case of the type", () => {
    expect(isContainer(part(0, "Multipart/Mixed"))).toBe(true);
    expect(isContainer(part(0, "message/rfc822"))).toBe(false);
  });

  it("saves a part under its own name, or the server's part-{index}", () => {
    expect(partFileName(MIXED[5] as Part)).toBe("report.pdf");
    expect(partFileName(part(4, "text/plain", { file_name: "  " }))).toBe("part-4");
  });
});

describe("formatSize", () => {
  it("reads as people count bytes", () => {
    expect(formatSize(0)).toBe("0 B");
    expect(formatSize(1023)).toBe("1,023 B");
    expect(formatSize(1434)).toBe("1.4 KB");
    expect(formatSize(20 * 1024)).toBe("20 KB");
    expect(formatSize(12.4 * 1024 * 1024)).toBe("12 MB");
  });
});
