/**
 * Recipient fields as typed: "Ann <ann@example.test>, bob@example.test". The API takes bare
 * addresses, so names are dropped when saving and the field shows addresses when loading.
 */

/** What a recipient field holds: the addresses to save, and the pieces that are not one. */
export interface ParsedRecipients {
  readonly addresses: string[];
  readonly invalid: string[];
}

// Deliberately loose: the server's rule is the real check, this catches typos early.
const ADDRESS = /^[^\s@<>,;"]+@[^\s@<>,;"]+\.[^\s@<>,;"]+$/;

/** Whether `text` looks like one bare address. */
export function isAddress(text: string): boolean {
  return ADDRESS.test(text) && text.length <= 254;
}

/** Splits a field on commas and semicolons (outside quotes) and takes each piece's address. */
export function parseRecipients(text: string): ParsedRecipients {
  const addresses: string[] = [];
  const invalid: string[] = [];
  const seen = new Set<string>();
  for (const piece of splitRecipients(text)) {
    const trimmed = piece.trim();
    if (trimmed === "") continue;
    const angle = /<([^<>]*)>\s*$/.exec(trimmed);
    const address = (angle ? (angle[1] ?? "") : trimmed).trim();
    if (!isAddress(address)) {
      invalid.push(trimmed);
      continue;
    }
    const key = address.toLowerCase();
    if (!seen.has(key)) {
      seen.add(key);
      addresses.push(address);
    }
  }
  return { addresses, invalid };
}

/** The pieces of a field, split on separators outside double quotes. */
export function splitRecipients(text: string): string[] {
  const pieces: string[] = [];
  let current = "";
  let quoted = false;
  for (const ch of text) {
    if (ch === '"') quoted = !quoted;
    if (!quoted && (ch === "," || ch === ";")) {
      pieces.push(current);
      current = "";
    } else {
      current += ch;
    }
  }
  pieces.push(current);
  return pieces;
}

/** The field's text for saved addresses. */
export function formatRecipients(addresses: readonly string[]): string {
  return addresses.join(", ");
}

/** The piece being typed (after the last separator), which autocompletion looks up. */
export function currentPiece(text: string): string {
  const pieces = splitRecipients(text);
  return (pieces[pieces.length - 1] ?? "").trim();
}

/** Replaces the piece being typed with a chosen recipient, ready for the next one. */
export function completePiece(text: string, chosen: string): string {
  const pieces = splitRecipients(text);
  pieces[pieces.length - 1] = ` ${chosen}`;
  return `${pieces.join(",").replace(/^ /, "")}, `;
}

/** "Ann <ann@example.test>", or the bare address without a name. */
export function displayRecipient(name: string | undefined | null, address: string): string {
  const n = (name ?? "").trim();
  if (n === "") return address;
  const safe = /[",;<>@]/.test(n) ? `"${n.replace(/["\\]/g, "")}"` : n;
  return `${safe} <${address}>`;
}
