import { readPref } from "../prefs";

/** Seconds during which a sent message can still be taken back, unless the user chose others. */
export const DEFAULT_UNDO_SECONDS = 5;

/** The undo-send delay: `palisade.undoSeconds` when it is a whole number from 0 to 60. */
export function undoSeconds(stored: string | null = readPref("palisade.undoSeconds")): number {
  if (stored === null || !/^\d{1,2}$/.test(stored.trim())) return DEFAULT_UNDO_SECONDS;
  const n = Number(stored.trim());
  return n <= 60 ? n : DEFAULT_UNDO_SECONDS;
}
