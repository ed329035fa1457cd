import { useEffect, useRef } from "preact/hooks";

/**
 * Calls `onEscape` when Escape is pressed inside the element (a popup panel, an inline form),
 * without letting the key reach the page's shortcuts.
 */
export function useEscape<T extends HTMLElement>(onEscape: () => void) {
  const ref = useRef<T>(null);
  const handler = useRef(onEscape);
  handler.current = onEscape;
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    const onKey = (e: KeyboardEvent) => {
      if (e.key !== "Escape") return;
      e.preventDefault();
      e.stopPropagation();
      handler.current();
    };
    el.addEventListener("keydown", onKey);
    return () => el.removeEventListener("keydown", onKey);
  }, []);
  return ref;
}
