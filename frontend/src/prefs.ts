/**
 * Preferences kept across visits (theme, undo-send delay). This is the one module allowed to
 * touch localStorage, and it stores preferences only: the session token never goes here.
 */
/* eslint-disable no-restricted-globals */

/** Keys of the preferences we keep. */
export type PrefKey = "palisade.theme" | "palisade.undoSeconds";

/** A stored preference, or null when absent or storage is refused (private browsing). */
export function readPref(key: PrefKey): string | null {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

/** Stores a preference; a refusal only means it is not remembered. */
export function writePref(key: PrefKey, value: string): void {
  try {
    localStorage.setItem(key, value);
  } catch {
    // Nothing to do: the preference still applies to this page.
  }
}
