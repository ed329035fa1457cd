/**
 * What the blocked-content bar says: how many remote resources the server kept out of a message,
 * and how many of them look like trackers.
 *
 * The server lists each removed resource (`kind` such as `img src`, and its URL) but does not say
 * which are trackers, so the client decides: an image is a tracker when the message sized it to
 * at most 3×3 pixels or hid it (the classic open-tracking pixel), or when its URL has the shape
 * of one (a known mail-tracking host, or a path such as `/open`, `/track`, `/pixel`, `/beacon`).
 */
import type { Schemas } from "./api/client";

type Blocked = Schemas["BlockedContent"];

/** Hosts (and their subdomains) whose images in mail exist to report that it was opened. */
const TRACKING_HOSTS = [
  "list-manage.com",
  "mailchimp.com",
  "mcusercontent.com",
  "sendgrid.net",
  "mandrillapp.com",
  "mailgun.org",
  "sparkpostmail.com",
  "hubspotemail.net",
  "hubspotlinks.com",
  "exct.net",
  "exacttarget.com",
  "rs6.net",
  "mktoresp.com",
  "mixpanel.com",
  "google-analytics.com",
  "doubleclick.net",
  "pardot.com",
  "customeriomail.com",
  "intercom-mail.com",
  "mailtrack.io",
  "getnotify.com",
  "bananatag.com",
  "yesware.com",
  "streak.com",
  "superhuman.com",
];

const TRACKING_PATH = /\/(?:open|opens|track|tracking|trk|pixel|beacon|wf\/open|o\.gif|t\.gif|p\.gif|1x1|spacer)(?:[/?.#_-]|$)/i;

/** Whether a remote URL looks like an open tracker by itself. */
export function isTrackerUrl(url: string): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url, "https://invalid.invalid/");
  } catch {
    return false;
  }
  const host = parsed.hostname.toLowerCase();
  if (TRACKING_HOSTS.some((h) => host === h || host.endsWith(`.${h}`))) return true;
  return TRACKING_PATH.test(parsed.pathname);
}

/** Whether an image's attributes make it invisible or a pixel. */
export function isHiddenImage(img: Element): boolean {
  const tiny = (attr: string) => {
    const v = img.getAttribute(attr);
    if (v === null) return false;
    const n = Number.parseFloat(v);
    return Number.isFinite(n) && n <= 3;
  };
  const style = (img.getAttribute("style") ?? "").replace(/\s+/g, "").toLowerCase();
  return (
    tiny("width") ||
    tiny("height") ||
    img.hasAttribute("hidden") ||
    style.includes("display:none") ||
    style.includes("visibility:hidden") ||
    /(?:^|;)(?:width|height):[0-3](?:px)?(?:;|$)/.test(style)
  );
}

/**
 * How many of the `blocked` resources are trackers, given the sanitized HTML they were removed
 * from. The server removes each blocked `img src` in document order, so the n-th image left
 * without a source is the n-th blocked image: its size tells whether it was a pixel.
 */
export function countTrackers(blocked: readonly Blocked[], html: string | undefined): number {
  const images = blocked.filter((b) => b.kind === "img src");
  let sourceless: Element[] = [];
  if (html !== undefined && images.length > 0) {
    const doc = new DOMParser().parseFromString(html, "text/html");
    sourceless = [...doc.querySelectorAll("img:not([src])")];
  }
  // Pair images with their entries only when the counts agree; otherwise the URL alone decides.
  const paired = sourceless.length === images.length;
  let trackers = 0;
  let imageIndex = 0;
  for (const b of blocked) {
    let tracker = isTrackerUrl(b.url);
    if (b.kind === "img src") {
      const img = paired ? sourceless[imageIndex] : undefined;
      imageIndex += 1;
      if (img !== undefined && isHiddenImage(img)) tracker = true;
    }
    if (tracker) trackers += 1;
  }
  return trackers;
}
