/**
 * One polite live region for the whole app: new mail, finished actions and list progress are
 * read out by screen readers without moving the focus.
 */
import { useEffect, useState } from "preact/hooks";

const listeners = new Set<(text: string) => void>();

/** Has screen readers say `text` (politely, after what they are reading). */
export function announce(text: string): void {
  for (const listener of listeners) listener(text);
}

/** The current announcement, for the live region. */
export function useAnnouncement(): string {
  const [text, setText] = useState("");
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const listener = (next: string) => {
      // Clearing first makes a repeated message (two mails from one sender) heard twice.
      setText("");
      clearTimeout(timer);
      timer = setTimeout(() => setText(next), 50);
    };
    listeners.add(listener);
    return () => {
      clearTimeout(timer);
      listeners.delete(listener);
    };
  }, []);
  return text;
}
