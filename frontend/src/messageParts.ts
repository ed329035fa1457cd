/**
 * A message's MIME tree (`MessageView.structure`) as the "Message parts" panel shows it, so a
 * reader can reach every part, including one the body and the attachments left out.
 */
import type { Schemas } from "./api/client";
import { formatNumber, t } from "./i18n";

type Part = Schemas["MimePartView"];

/** Deepest nesting the panel indents; deeper parts line up at this level, so a pathological
 * tree (the server keeps up to 500 parts) stays on a phone's screen. */
export const MAX_INDENT = 6;

/** One part and the parts it encloses, as the panel nests them. */
export interface PartNode {
  readonly part: Part;
  readonly children: PartNode[];
}

/** What the panel says Palisade did with a part. */
export type PartTag = "shown" | "attachment" | "hidden";

/** A multipart container: it has no bytes of its own to download. */
export function isContainer(part: Part): boolean {
  return part.content_type.toLowerCase().startsWith("multipart/");
}

/**
 * Whether a message needs the panel at all: a single part shown as the body does not, but any
 * tree, or a part that is neither shown nor listed as an attachment, does.
 */
export function wantsPartsPanel(structure: readonly Part[]): boolean {
  return structure.length > 1 || structure.some((p) => !p.shown_inline && !p.attachment);
}

/**
 * The tree from the parts' `parent` indices, in the server's (tree) order. A part whose parent
 * is not listed before it becomes a top-level entry, so nothing is ever left out.
 */
export function partTree(structure: readonly Part[]): PartNode[] {
  const roots: PartNode[] = [];
  // Where a part's children go, and at which indentation level.
  const homes = new Map<number, { readonly list: PartNode[]; readonly level: number }>();
  for (const part of structure) {
    const home = part.parent === undefined ? undefined : homes.get(part.parent);
    const list = home?.list ?? roots;
    const level = home?.level ?? 0;
    const node: PartNode = { part, children: [] };
    list.push(node);
    if (!homes.has(part.index)) {
      homes.set(part.index, level < MAX_INDENT ? { list: node.children, level: level + 1 } : { list, level });
    }
  }
  return roots;
}

/** The facts shown after a part's type: its size (not for containers), disposition and charset. */
export function partFacts(part: Part): string[] {
  const facts: string[] = [];
  if (!isContainer(part)) facts.push(formatSize(part.size));
  const disposition = part.disposition?.trim();
  if (disposition) facts.push(disposition);
  const charset = part.charset?.trim();
  if (charset) facts.push(charset);
  return facts;
}

/** Shown in the body, listed as an attachment (both, for an inline image), or, for a part
 * with content that is neither, "hidden"; a container gets no tag. */
export function partTags(part: Part): PartTag[] {
  const tags: PartTag[] = [];
  if (part.shown_inline) tags.push("shown");
  if (part.attachment) tags.push("attachment");
  if (tags.length === 0 && !isContainer(part)) tags.push("hidden");
  return tags;
}

/** The name a downloaded part is saved as: its own, or the server's `part-{index}`. */
export function partFileName(part: Part): string {
  return part.file_name?.trim() || `part-${part.index}`;
}

/** "512 B", "1.4 KB", "12 MB". */
export function formatSize(bytes: number): string {
  if (bytes < 1024) return t("size.bytes", { n: formatNumber(bytes) });
  const kb = bytes / 1024;
  if (kb < 1024) return t("size.kilobytes", { n: formatNumber(round(kb)) });
  return t("size.megabytes", { n: formatNumber(round(kb / 1024)) });
}

function round(n: number): number {
  return n < 10 ? Math.round(n * 10) / 10 : Math.round(n);
}
