import type { ComponentChildren } from "preact";
import { useEffect, useId, useRef } from "preact/hooks";
import { t } from "../i18n";

interface DialogProps {
  /** The dialog's name, shown as its heading. */
  readonly title: string;
  /** Called on Escape, on the close button, or by the caller's own buttons. */
  readonly onClose: () => void;
  readonly children: ComponentChildren;
  /** Extra class for sizing (`dialog--wide`). */
  readonly class?: string;
  /** Hide the heading's close button when the dialog has its own Cancel. */
  readonly closeButton?: boolean;
}

/**
 * A modal dialog on the native `<dialog>`: while open the rest of the page is inert (focus stays
 * inside), Escape closes it, and focus returns to where it was when it opened. Mount it to open
 * it, unmount it to close it.
 */
export function Dialog({ title, onClose, children, class: extra, closeButton = true }: DialogProps) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  const close = useRef(onClose);
  close.current = onClose;

  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    const opener = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    if (!dialog.open) dialog.showModal();
    // The safe choice first (Cancel, not "Open anyway"), when the content names one.
    dialog.querySelector<HTMLElement>("[data-initial-focus]")?.focus();
    const onCancel = (e: Event) => {
      // Escape: the caller decides (it unmounts us), so the state stays the single truth.
      e.preventDefault();
      close.current();
    };
    dialog.addEventListener("cancel", onCancel);
    return () => {
      dialog.removeEventListener("cancel", onCancel);
      if (dialog.open) dialog.close();
      // Back to the control that opened it, or to the screen when that one is gone.
      if (opener?.isConnected) opener.focus();
      else document.getElementById("main")?.focus();
    };
  }, []);

  return (
    <dialog ref={ref} class={extra ? `dialog ${extra}` : "dialog"} aria-labelledby={titleId}>
      <div class="dialog-head">
        <h2 id={titleId}>{title}</h2>
        {closeButton && (
          <button type="button" class="button button--secondary dialog-close" onClick={() => close.current()}>
            {t("dialog.close")}
          </button>
        )}
      </div>
      {children}
    </dialog>
  );
}
