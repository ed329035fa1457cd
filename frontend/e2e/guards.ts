import type { Page } from "@playwright/test";

declare global {
  interface Window {
    /** Set by every script vector in the hostile mails (`top.__pwned = ...`); never by the app. */
    __pwned?: unknown;
  }
}

/**
 * Watches a page for any sign that mail escaped: dialogs (alert/confirm/prompt), popups, and
 * requests to any origin other than the app's. `report()` also reads the `__pwned` flag in
 * every frame (the app's window and each mail frame, nested ones included).
 */
export function watchForEscapes(page: Page, appOrigin: string) {
  const dialogs: string[] = [];
  const foreignRequests: string[] = [];
  const popups: string[] = [];
  page.on("dialog", (dialog) => {
    dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    void dialog.dismiss().catch(() => undefined);
  });
  page.on("popup", (popup) => popups.push(popup.url()));
  page.on("request", (request) => {
    const url = request.url();
    if (/^(https?|wss?|ftp):/i.test(url) && new URL(url).origin !== appOrigin) foreignRequests.push(url);
  });
  page.on("websocket", (ws) => foreignRequests.push(ws.url()));

  return {
    dialogs,
    foreignRequests,
    popups,
    /** Everything seen so far, `__pwned` included: all empty when nothing escaped. */
    async report() {
      const flags: string[] = [];
      for (const frame of page.frames()) {
        // A frame can go away between listing and evaluating; that is not an escape.
        const flag = await frame.evaluate(() => window.__pwned).catch(() => undefined);
        if (flag !== undefined) flags.push(`${frame.url()}: ${JSON.stringify(flag)}`);
      }
      return { flags, dialogs: [...dialogs], popups: [...popups], foreignRequests: [...foreignRequests] };
    },
  };
}

/** The report of a page where nothing escaped. */
export const NOTHING_ESCAPED = { flags: [], dialogs: [], popups: [], foreignRequests: [] };
