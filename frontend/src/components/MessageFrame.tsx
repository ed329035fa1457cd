import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { api } from "../api/client";
import { locale, t } from "../i18n";
import { listenForShortcuts } from "../keyboard";
import { linkMismatch, type LinkMismatch } from "../links";
import { navigate } from "../router";
import { mailDocument, sanitizeMail } from "../sanitize";
import { Dialog } from "./Dialog";

/**
 * The sandbox of a message's HTML. `allow-same-origin` lets this page measure the frame, style
 * it and watch its links; `allow-scripts` is never given, since with `allow-same-origin` it would
 * let the mail lift its own sandbox. Popups are allowed so links open in a new tab, outside it.
 */
const SANDBOX = "allow-same-origin allow-popups allow-popups-to-escape-sandbox";

/**
 * Our own look for the mail's document, adopted through the CSSOM: the frame's policy (and the
 * app's) refuse inline `<style>`, but a constructed sheet is not inline markup. Mail is shown on
 * white in both themes, as senders design it for white.
 */
const FRAME_CSS = `
  :root { color-scheme: light; }
  body { margin: 0; padding: 0.5rem 0.25rem; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif;
    color: #1b1d21; background: #fff; overflow-wrap: anywhere; }
  img { max-width: 100%; height: auto; }
  table { max-width: 100%; }
  pre { white-space: pre-wrap; }
  a { color: #1f5fa8; }
  blockquote { margin: 0.5rem 0; padding-left: 0.75rem; border-left: 3px solid #d5d8dd; color: #454a52; }
  :focus-visible { outline: 3px solid #b3470a; outline-offset: 2px; }
`;

/** A message's HTML body in its sandboxed frame, as tall as its content. */
export function MessageFrame({
  html,
  allowRemote,
  inline,
}: {
  html: string;
  allowRemote: boolean;
  /** The message's own images by Content-ID, as data: URLs. */
  inline: ReadonlyMap<string, string>;
}) {
  const frame = useRef<HTMLIFrameElement>(null);
  const [height, setHeight] = useState(80);
  const [warning, setWarning] = useState<(LinkMismatch & { href: string }) | null>(null);
  const srcdoc = useMemo(() => mailDocument(sanitizeMail(html, allowRemote, inline), locale), [html, allowRemote, inline]);
  const detach = useRef<(() => void) | null>(null);

  useEffect(() => () => detach.current?.(), []);

  const onLoad = () => {
    detach.current?.();
    const el = frame.current;
    const doc = el?.contentDocument;
    const win = el?.contentWindow;
    if (!el || !doc || !win) return;
    try {
      // A sheet constructed in the frame's own realm, as adoptedStyleSheets requires.
      const Sheet = (win as unknown as { CSSStyleSheet: typeof CSSStyleSheet }).CSSStyleSheet;
      const sheet = new Sheet();
      sheet.replaceSync(FRAME_CSS);
      doc.adoptedStyleSheets = [sheet];
    } catch {
      // Without our sheet the mail still shows, in the browser's default look.
    }
    // The content's own height: documentElement.scrollHeight never goes below the frame's height,
    // so it could only ever grow.
    const measure = () =>
      setHeight(Math.max(40, Math.ceil(Math.max(doc.documentElement.getBoundingClientRect().height, doc.body?.scrollHeight ?? 0))));
    measure();
    // Images arrive later and change the height (load events do not bubble: capture them).
    doc.addEventListener("load", measure, true);
    doc.addEventListener("error", measure, true);
    const resize = new ResizeObserver(measure);
    resize.observe(el);
    if (doc.body) resize.observe(doc.body);

    const onClick = (e: MouseEvent) => {
      const target = e.target as Element | null;
      const link = target?.closest?.("a[href], area[href]");
      if (!link) return;
      const href = link.getAttribute("href") ?? "";
      if (href.startsWith("#")) return;
      if (/^mailto:/i.test(href)) {
        e.preventDefault();
        void writeTo(href);
        return;
      }
      const mismatch = linkMismatch(link.textContent ?? "", href);
      if (mismatch !== null) {
        e.preventDefault();
        setWarning({ ...mismatch, href });
      }
      // Otherwise the link opens by itself: target=_blank, rel="noopener noreferrer" (sanitize.ts).
    };
    doc.addEventListener("click", onClick, true);
    const stopKeys = listenForShortcuts(doc);
    detach.current = () => {
      resize.disconnect();
      doc.removeEventListener("load", measure, true);
      doc.removeEventListener("error", measure, true);
      doc.removeEventListener("click", onClick, true);
      stopKeys();
    };
  };

  return (
    <>
      <iframe
        ref={frame}
        class="message-frame"
        title={t("message.frameTitle")}
        sandbox={SANDBOX}
        referrerpolicy="no-referrer"
        srcdoc={srcdoc}
        style={{ height: `${height}px` }}
        onLoad={onLoad}
      />
      {warning !== null && (
        <Dialog title={t("linkWarning.title")} onClose={() => setWarning(null)} closeButton={false}>
          <p>{t("linkWarning.body", { shown: warning.shown, target: warning.target })}</p>
          <p class="link-target">{warning.href}</p>
          <div class="dialog-actions">
            <button
              type="button"
              class="button button--secondary"
              onClick={() => {
                window.open(warning.href, "_blank", "noopener,noreferrer");
                setWarning(null);
              }}
            >
              {t("linkWarning.open")}
            </button>
            <button type="button" class="button" data-initial-focus onClick={() => setWarning(null)}>
              {t("linkWarning.cancel")}
            </button>
          </div>
        </Dialog>
      )}
    </>
  );
}

/** A `mailto:` link starts a new message to its address, in our compose screen. */
async function writeTo(href: string): Promise<void> {
  let to = "";
  let subject = "";
  try {
    const url = new URL(href);
    to = decodeURIComponent(url.pathname).split(",")[0]?.trim() ?? "";
    subject = url.searchParams.get("subject") ?? "";
  } catch {
    return;
  }
  if (!/^[^@\s]+@[^@\s]+$/.test(to)) return;
  try {
    const { data } = await api.POST("/api/v1/drafts", { body: { to: [to], cc: [], bcc: [], body: "", subject: subject.slice(0, 998) } });
    if (data) navigate({ name: "compose", draft: data.id });
  } catch {
    // Offline: nothing happens, as with a link that does not load.
  }
}
