import { useCallback, useRef } from "preact/hooks";

/**
 * Calls `onEscape` when Escape is pressed inside the element (a popup panel, an inline form),
 * without letting the key reach the page's shortcuts. Returns a callback ref, so it works for
 * elements that appear later (a panel that opens).
 */
export function useEscape<T extends HTMLElement>(onEscape: () => void): (el: T | null) => void {
  const handler = useRef(onEscape);
  handler.current = onEscape;
  const attached = useRef<{ el: T; listener: (e: KeyboardEvent) => void } | null>(null);
  return useCallback((el: T | null) => {
    if (attached.current !== null) {
      attached.current.el.removeEventListener("keydown", attached.current.listener);
      attached.current = null;
    }
    if (el === null) return;
    const listener = (e: KeyboardEvent) => {
      if (e.key !== "Escape") return;
      e.preventDefault();
      e.stopPropagation();
      handler.current();
    };
    el.addEventListener("keydown", listener);
    attached.current = { el, listener };
  }, []);
}
