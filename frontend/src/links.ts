/**
 * The phishing hint: a link whose visible text names one domain while it leads to another
 * ("paypal.com" pointing at "paypal.com.evil.example") is checked with the reader first.
 */

/** What the reader is told before such a link opens. */
export interface LinkMismatch {
  /** The domain the text shows. */
  readonly shown: string;
  /** The domain the link really leads to. */
  readonly target: string;
}

/** Extensions that make a word look like a domain when it is a file name ("report.pdf"). */
const FILE_EXTENSIONS = new Set([
  "pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "odt", "ods", "txt", "csv", "rtf",
  "png", "jpg", "jpeg", "gif", "svg", "webp", "zip", "gz", "tar", "rar", "7z", "exe",
  "msi", "dmg", "mp3", "mp4", "mov", "wav", "ics", "eml", "htm", "html", "json", "xml",
]);

/** A host-like word: labels of letters, digits and hyphens (any script), ending in a letter TLD. */
const HOST_IN_TEXT = /(?:[a-z][a-z0-9+.-]*:\/\/)?((?:[\p{L}\p{N}](?:[\p{L}\p{N}-]*[\p{L}\p{N}])?\.)+\p{L}{2,24})(?=$|[\s/:?#)\]>,;'"!]|\.(?:$|\s))/iu;

/** The domain named in a link's visible text, normalized (IDN to punycode, no `www.`), or null. */
export function domainInText(text: string): string | null {
  const match = HOST_IN_TEXT.exec(text.trim());
  const host = match?.[1];
  if (host === undefined) return null;
  const tld = host.slice(host.lastIndexOf(".") + 1).toLowerCase();
  if (FILE_EXTENSIONS.has(tld)) return null;
  return normalizeHost(host);
}

/** The domain a link leads to, for web links only. */
export function domainOfHref(href: string): string | null {
  try {
    const url = new URL(href);
    if (url.protocol !== "http:" && url.protocol !== "https:") return null;
    return normalizeHost(url.hostname);
  } catch {
    return null;
  }
}

/**
 * Whether the link deserves a warning. The same domain, or one inside the other (text
 * `example.com`, link `mail.example.com`), is fine; anything else is a mismatch. Homographs are
 * caught because both sides are compared in punycode.
 */
export function linkMismatch(text: string, href: string): LinkMismatch | null {
  const shown = domainInText(text);
  const target = domainOfHref(href);
  if (shown === null || target === null) return null;
  if (shown === target || target.endsWith(`.${shown}`) || shown.endsWith(`.${target}`)) return null;
  return { shown, target };
}

function normalizeHost(host: string): string | null {
  try {
    const ascii = new URL(`http://${host}/`).hostname.toLowerCase().replace(/\.$/, "");
    return ascii.startsWith("www.") ? ascii.slice(4) : ascii;
  } catch {
    return null;
  }
}
