import { useEffect, useState } from "preact/hooks";
import { readPref, writePref } from "./prefs";

/** The user's theme choice; `system` follows the operating system's light or dark setting. */
export type ThemeChoice = "system" | "light" | "dark";

const listeners = new Set<(choice: ThemeChoice) => void>();

/** Reads a stored choice, ignoring anything unexpected. */
export function parseTheme(value: string | null): ThemeChoice {
  return value === "light" || value === "dark" ? value : "system";
}

function stored(): ThemeChoice {
  return parseTheme(readPref("palisade.theme"));
}

/** Sets `<html data-theme>`: the stylesheet picks colours from it, or from the system without it. */
export function applyTheme(choice: ThemeChoice): void {
  const root = document.documentElement;
  if (choice === "system") delete root.dataset.theme;
  else root.dataset.theme = choice;
}

/** Remembers and applies a choice, and tells every screen that shows it. */
export function setTheme(choice: ThemeChoice): void {
  writePref("palisade.theme", choice);
  applyTheme(choice);
  for (const listener of listeners) listener(choice);
}

/** The current choice, kept up to date. */
export function useTheme(): ThemeChoice {
  const [choice, setChoice] = useState<ThemeChoice>(stored);
  useEffect(() => {
    listeners.add(setChoice);
    return () => {
      listeners.delete(setChoice);
    };
  }, []);
  return choice;
}

/** Applies the stored choice before the first render, so the page never flashes the other theme. */
export function initTheme(): void {
  applyTheme(stored());
}
