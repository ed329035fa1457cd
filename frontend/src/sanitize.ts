/**
 * Mail HTML made safe once more in the browser, on top of the server's sanitizing (ammonia), and
 * wrapped into the document that the sandboxed message frame shows. The frame never runs
 * scripts (no `allow-scripts`), its own Content-Security-Policy forbids every fetch but the
 * images the reader allowed, and links open outside it without an opener or a referrer.
 *
 * Remote images the reader chose to load come through the server's image proxy on our own
 * origin (`PROXY_PATH`), so the sender never sees the reader's address; the frame never
 * fetches from anywhere else, whatever the HTML says.
 */
import createDOMPurify, { type Config, type DOMPurify } from "dompurify";

/** Elements mail has no business showing: active content, forms, frames, document metadata. */
const FORBID_TAGS = [
  "script",
  "noscript",
  "style",
  "template",
  "form",
  "input",
  "button",
  "select",
  "option",
  "optgroup",
  "textarea",
  "datalist",
  "output",
  "iframe",
  "frame",
  "frameset",
  "portal",
  "fencedframe",
  "object",
  "embed",
  "applet",
  "base",
  "meta",
  "link",
  "audio",
  "video",
  "source",
  "track",
  "dialog",
];

/** Attributes that send requests, submit or steal focus, whatever their element. */
const FORBID_ATTR = ["ping", "action", "formaction", "srcdoc", "autofocus", "target", "rel", "popover", "popovertarget"];

/** Attributes whose URL the browser fetches as soon as the message is shown. */
const FETCHING_ATTRS = new Set(["src", "srcset", "background", "poster", "lowsrc", "dynsrc"]);

/** Schemes a link may use; everything else (javascript:, data:, vbscript:, file:) is dropped. */
const ALLOWED_URI = /^(?:(?:https?|mailto|tel|cid):|[^a-z]|[a-z+.-]+(?:[^a-z+.\-:]|$))/i;

/** Images embedded in the message itself are fine; data: anything else is not. */
const DATA_IMAGE = /^data:image\/(?:png|gif|jpe?g|webp|bmp|avif|x-icon|vnd\.microsoft\.icon);/i;

/** CSS that can fetch, run code or hide what it does behind escapes. */
const DANGEROUS_CSS = /url\s*\(|image-set\s*\(|image\s*\(|cross-fade\s*\(|element\s*\(|expression\s*\(|@import|behavior\s*:|binding\s*:|javascript:|\\/i;

/** Where the server's image proxy answers: the only non-embedded images a frame may load. */
export const PROXY_PATH = "/api/v1/remote/image";

/** The result of sanitizing one message's HTML. */
export interface SanitizedMail {
  /** The body, safe to put into the frame's `<body>`. */
  readonly html: string;
  /** Whether images through the image proxy were kept (only when remote content is allowed). */
  readonly proxied: boolean;
  /** Remote references removed here: the browser never fetches from the sender. */
  readonly removedRemote: number;
}

let purifier: DOMPurify | null = null;

/** Per-call settings for the hooks, which DOMPurify runs synchronously inside `sanitize`. */
let current: Context = { allowRemote: false, proxied: false, removed: 0, inline: new Map() };

interface Context {
  allowRemote: boolean;
  proxied: boolean;
  removed: number;
  /** Images the message embeds as parts, by Content-ID, as data: URLs. */
  inline: ReadonlyMap<string, string>;
}

function instance(): DOMPurify {
  if (purifier !== null) return purifier;
  const p = createDOMPurify(window);
  p.addHook("uponSanitizeAttribute", (node, data) => {
    const name = data.attrName;
    let value = data.attrValue.trim();
    // `cid:` names a part of the message: its image, already fetched, replaces the reference.
    if (node.nodeName === "IMG" && name === "src" && /^cid:/i.test(value)) {
      const image = current.inline.get(contentIdKey(value.slice(4)));
      if (image !== undefined) {
        data.attrValue = image;
        value = image;
      }
    }
    if (name === "style" && DANGEROUS_CSS.test(value)) {
      data.keepAttr = false;
      return;
    }
    if (/^data:/i.test(value) && !(node.nodeName === "IMG" && name === "src" && DATA_IMAGE.test(value))) {
      data.keepAttr = false;
      return;
    }
    if (FETCHING_ATTRS.has(name)) {
      const urls = name === "srcset" ? srcsetUrls(value) : [value];
      const remote = urls.filter(isRemote);
      if (remote.length > 0) {
        current.removed += remote.length;
        data.keepAttr = false;
        return;
      }
      // Embedded images are data: URLs by now (a cid: left names a missing part and loads
      // nothing); the only other image is a proxy link, once the reader asked for remote content.
      if (/^(?:data|cid):/i.test(value)) return;
      if (current.allowRemote && name !== "srcset" && isProxyLink(value)) {
        current.proxied = true;
        return;
      }
      data.keepAttr = false;
    }
  });
  p.addHook("afterSanitizeAttributes", (node) => {
    if (node.nodeName !== "A" && node.nodeName !== "AREA") return;
    const href = node.getAttribute("href");
    if (href === null || href.startsWith("#")) return;
    // Outside the frame, with no way back to this page and no Referer telling where it came from.
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer");
  });
  purifier = p;
  return p;
}

const CONFIG: Config = {
  USE_PROFILES: { html: true }, // no SVG, no MathML: their parsing quirks are where bypasses live
  FORBID_TAGS,
  FORBID_ATTR,
  ALLOWED_URI_REGEXP: ALLOWED_URI,
  ALLOW_DATA_ATTR: false,
  ALLOW_UNKNOWN_PROTOCOLS: false,
  SAFE_FOR_TEMPLATES: false,
  WHOLE_DOCUMENT: false,
  RETURN_TRUSTED_TYPE: false,
};

/**
 * Sanitizes a message's HTML; remote images stay only when `allowRemote` is true. `inline` maps
 * Content-IDs (see `contentIdKey`) to data: URLs of the message's own images.
 */
export function sanitizeMail(
  html: string,
  allowRemote: boolean,
  inline: ReadonlyMap<string, string> = new Map(),
): SanitizedMail {
  const p = instance();
  current = { allowRemote, proxied: false, removed: 0, inline };
  const clean = p.sanitize(html, CONFIG);
  const result = { html: clean, proxied: current.proxied, removedRemote: current.removed };
  current = { allowRemote: false, proxied: false, removed: 0, inline: new Map() };
  return result;
}

/** A Content-ID as `cid:` URLs and headers both name it: without `<>`, URL-decoded, lowercased. */
export function contentIdKey(id: string): string {
  let raw = id.trim().replace(/^<|>$/g, "");
  try {
    raw = decodeURIComponent(raw);
  } catch {
    // Keep it as written.
  }
  return raw.toLowerCase();
}

/** Image types a data: URL may carry into the frame (the same list the sanitizer keeps). */
export function isInlineImageType(type: string): boolean {
  return DATA_IMAGE.test(`data:${type.toLowerCase()};`);
}

/**
 * The frame's own policy: nothing may load, run or submit, except embedded images and, once the
 * reader allowed remote content, the image proxy's path on our own origin.
 */
export function framePolicy(proxied: boolean, origin: string = window.location.origin): string {
  const images = proxied ? ` ${origin}${PROXY_PATH}` : "";
  return [
    "default-src 'none'",
    `img-src data:${images}`,
    "style-src 'unsafe-inline'",
    "script-src 'none'",
    "font-src 'none'",
    "media-src 'none'",
    "object-src 'none'",
    "frame-src 'none'",
    "child-src 'none'",
    "connect-src 'none'",
    "form-action 'none'",
    "base-uri 'none'",
  ].join("; ");
}

/** The complete `srcdoc` of a message frame. */
export function mailDocument(mail: SanitizedMail, lang: string): string {
  const csp = escapeAttribute(framePolicy(mail.proxied));
  return (
    `<!doctype html><html lang="${escapeAttribute(lang)}"><head><meta charset="utf-8">` +
    `<meta http-equiv="Content-Security-Policy" content="${csp}">` +
    `<meta name="referrer" content="no-referrer">` +
    `</head><body>${mail.html}</body></html>`
  );
}

function escapeAttribute(value: string): string {
  return value.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;");
}

function srcsetUrls(value: string): string[] {
  return value
    .split(/,\s+/)
    .map((candidate) => candidate.trim().split(/\s+/)[0] ?? "")
    .filter((u) => u.length > 0);
}

/** Whether loading `url` would leave the page: any absolute or protocol-relative URL. */
function isRemote(url: string): boolean {
  return /^(?:[a-z][a-z0-9+.-]*:|\/\/|\\\\)/i.test(url.trim()) && !/^(?:data|cid):/i.test(url.trim());
}

/** Whether `url` is a link to the image proxy, as the server writes them. */
function isProxyLink(url: string): boolean {
  return url.startsWith(`${PROXY_PATH}?`);
}
