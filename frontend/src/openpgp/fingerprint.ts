/**
 * Fingerprints of ASCII-armored OpenPGP public keys (RFC 4880 / RFC 9580), computed in the
 * browser so a user can compare what they pasted with what their correspondent reads out.
 * Only the armor and the first public-key packet are parsed: nothing is verified or trusted.
 */

/** Why a pasted key has no fingerprint. */
export type KeyProblem = "not-armored" | "bad-base64" | "bad-checksum" | "no-public-key" | "unsupported-version";

/** A fingerprint, or the reason there is none. */
export type FingerprintResult =
  | { readonly ok: true; readonly version: number; readonly hex: string }
  | { readonly ok: false; readonly problem: KeyProblem };

const BEGIN = "-----BEGIN PGP PUBLIC KEY BLOCK-----";
const END = "-----END PGP PUBLIC KEY BLOCK-----";

/** Splits pasted text into its armored public-key blocks, each from BEGIN to END. */
export function splitArmoredKeys(text: string): string[] {
  const blocks: string[] = [];
  let from = text.indexOf(BEGIN);
  while (from !== -1) {
    const end = text.indexOf(END, from);
    if (end === -1) break;
    blocks.push(text.slice(from, end + END.length));
    from = text.indexOf(BEGIN, end);
  }
  return blocks;
}

/** The bytes inside an armored block, checked against its CRC-24 line when it has one. */
export function dearmor(armored: string): Uint8Array | KeyProblem {
  const lines = armored.split(/\r?\n/).map((l) => l.trim());
  const begin = lines.indexOf(BEGIN);
  const end = lines.indexOf(END);
  if (begin === -1 || end === -1 || end < begin) return "not-armored";
  let i = begin + 1;
  // Armor headers ("Comment: …") run up to the first blank line; a block may have none.
  if (lines.slice(i, end).some((l) => l === "")) {
    while (i < end && lines[i] !== "") i++;
    i++;
  }
  let data = "";
  let checksum: string | null = null;
  for (; i < end; i++) {
    const line = lines[i] ?? "";
    if (line.startsWith("=") && line.length === 5) checksum = line.slice(1);
    else data += line;
  }
  const bytes = decodeBase64(data);
  if (bytes === null || bytes.length === 0) return "bad-base64";
  if (checksum !== null) {
    const expected = decodeBase64(checksum);
    if (expected?.length !== 3) return "bad-checksum";
    const crc = crc24(bytes);
    const got = ((expected[0] ?? 0) << 16) | ((expected[1] ?? 0) << 8) | (expected[2] ?? 0);
    if (crc !== got) return "bad-checksum";
  }
  return bytes;
}

/** The armor checksum (RFC 4880 section 6.1). */
export function crc24(bytes: Uint8Array): number {
  let crc = 0xb704ce;
  for (const b of bytes) {
    crc ^= b << 16;
    for (let k = 0; k < 8; k++) {
      crc <<= 1;
      if (crc & 0x1000000) crc ^= 0x1864cfb;
    }
  }
  return crc & 0xffffff;
}

function decodeBase64(s: string): Uint8Array | null {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 === 1) return null;
  try {
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  } catch {
    return null;
  }
}

/** The body of the first packet with `tag`, reading old- and new-format packet headers. */
export function findPacket(bytes: Uint8Array, tag: number): Uint8Array | null {
  let pos = 0;
  while (pos < bytes.length) {
    const first = bytes[pos] ?? 0;
    if ((first & 0x80) === 0) return null;
    let packetTag: number;
    let length: number;
    let header: number;
    if (first & 0x40) {
      packetTag = first & 0x3f;
      const o1 = bytes[pos + 1] ?? 0;
      if (o1 < 192) [length, header] = [o1, 2];
      else if (o1 < 224) [length, header] = [((o1 - 192) << 8) + (bytes[pos + 2] ?? 0) + 192, 3];
      else if (o1 === 255) [length, header] = [readUint32(bytes, pos + 2), 6];
      else return null; // Partial lengths are for data packets, never keys.
    } else {
      packetTag = (first >> 2) & 0x0f;
      switch (first & 0x03) {
        case 0:
          [length, header] = [bytes[pos + 1] ?? 0, 2];
          break;
        case 1:
          [length, header] = [((bytes[pos + 1] ?? 0) << 8) | (bytes[pos + 2] ?? 0), 3];
          break;
        case 2:
          [length, header] = [readUint32(bytes, pos + 1), 5];
          break;
        default:
          [length, header] = [bytes.length - pos - 1, 1];
      }
    }
    const start = pos + header;
    if (start + length > bytes.length) return null;
    if (packetTag === tag) return bytes.subarray(start, start + length);
    pos = start + length;
  }
  return null;
}

function readUint32(bytes: Uint8Array, at: number): number {
  return (((bytes[at] ?? 0) << 24) >>> 0) + ((bytes[at + 1] ?? 0) << 16) + ((bytes[at + 2] ?? 0) << 8) + (bytes[at + 3] ?? 0);
}

const PUBLIC_KEY_TAG = 6;

/**
 * The fingerprint of the primary key in `armored`: SHA-1 over 0x99, a 2-byte length and the
 * packet for v4 keys; SHA-256 over 0x9A (v5) or 0x9B (v6), a 4-byte length and the packet.
 */
export async function fingerprint(armored: string): Promise<FingerprintResult> {
  const bytes = dearmor(armored);
  if (typeof bytes === "string") return { ok: false, problem: bytes };
  const body = findPacket(bytes, PUBLIC_KEY_TAG);
  if (body === null || body.length === 0) return { ok: false, problem: "no-public-key" };
  const version = body[0] ?? 0;
  let prefix: number[];
  let algorithm: "SHA-1" | "SHA-256";
  const n = body.length;
  if (version === 4) {
    prefix = [0x99, (n >> 8) & 0xff, n & 0xff];
    algorithm = "SHA-1";
  } else if (version === 5 || version === 6) {
    prefix = [version === 5 ? 0x9a : 0x9b, (n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
    algorithm = "SHA-256";
  } else {
    return { ok: false, problem: "unsupported-version" };
  }
  const input = new Uint8Array(prefix.length + n);
  input.set(prefix, 0);
  input.set(body, prefix.length);
  const digest = new Uint8Array(await crypto.subtle.digest(algorithm, input));
  const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("").toUpperCase();
  return { ok: true, version, hex };
}

/** "5A6C22DF…" as "5A6C 22DF …", the way keys are read out and compared. */
export function groupFingerprint(hex: string): string {
  return (hex.match(/.{1,4}/g) ?? []).join(" ");
}
