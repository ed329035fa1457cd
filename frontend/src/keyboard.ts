/**
 * Keyboard shortcuts: a pure map from keys to actions, and one document listener that hands
 * each action to whichever screen registered for it (the list, the discussion) or to the shell.
 */
import { useEffect, useRef } from "preact/hooks";

/** What a shortcut does. */
export type ShortcutAction =
  | "next"
  | "previous"
  | "open"
  | "reply"
  | "replyAll"
  | "forward"
  | "compose"
  | "search"
  | "trash"
  | "help";

/** The part of a `KeyboardEvent` the map reads. */
export interface KeyInput {
  readonly key: string;
  readonly ctrlKey: boolean;
  readonly metaKey: boolean;
  readonly altKey: boolean;
  readonly isComposing?: boolean;
}

/**
 * Keys by the character they type (`event.key`), so `?` and `#` work on any layout whatever
 * modifier produces them. Shown in this order in the help dialog.
 */
export const SHORTCUTS: readonly (readonly [keys: readonly string[], action: ShortcutAction])[] = [
  [["j"], "next"],
  [["k"], "previous"],
  [["o", "Enter"], "open"],
  [["r"], "reply"],
  [["a"], "replyAll"],
  [["f"], "forward"],
  [["c"], "compose"],
  [["/"], "search"],
  [["#"], "trash"],
  [["?"], "help"],
];

const BY_KEY: ReadonlyMap<string, ShortcutAction> = new Map(
  SHORTCUTS.flatMap(([keys, action]) => keys.map((k) => [k, action] as const)),
);

/** The action of a key press, or null. Ctrl, Meta and Alt belong to the browser and the system. */
export function actionForKey(input: KeyInput): ShortcutAction | null {
  if (input.ctrlKey || input.metaKey || input.altKey || input.isComposing === true) return null;
  return BY_KEY.get(input.key) ?? null;
}

/** True when keys typed at `target` are text: fields, editable content, selects. */
export function isTypingTarget(target: EventTarget | null): boolean {
  if (!isElement(target)) return false;
  if (target.isContentEditable) return true;
  const tag = target.tagName;
  if (tag === "TEXTAREA" || tag === "SELECT") return true;
  if (tag === "INPUT") {
    const type = (target.getAttribute("type") ?? "text").toLowerCase();
    return !["checkbox", "radio", "button", "submit", "reset", "range", "color", "file", "image"].includes(type);
  }
  return false;
}

/** Enter already means something on links, buttons and other controls: leave it to them. */
function ownsEnter(target: EventTarget | null): boolean {
  return isElement(target) && target.closest("a[href], button, input, select, textarea, summary, [role='button'], [role='menuitem'], [role='checkbox']") !== null;
}

function isElement(target: EventTarget | null): target is HTMLElement {
  return target !== null && typeof (target as Partial<HTMLElement>).tagName === "string";
}

/** An action's handlers, by action; a screen handles only some. */
export type ShortcutHandlers = Partial<Record<ShortcutAction, () => void>>;

/** Registered handlers, newest last: a screen's handlers win over the shell's. */
const layers: { current: ShortcutHandlers }[] = [];

/** Handles one key press; returns whether a shortcut ran. Exported for the mail frame's document. */
export function handleKey(event: KeyboardEvent): boolean {
  if (event.defaultPrevented || isTypingTarget(event.target)) return false;
  // A modal dialog has the keyboard to itself (Escape, Tab); shortcuts wait until it closes.
  if (isElement(event.target) && event.target.closest("dialog[open]") !== null) return false;
  const action = actionForKey(event);
  if (action === null) return false;
  if (action === "open" && event.key === "Enter" && ownsEnter(event.target)) return false;
  for (let i = layers.length - 1; i >= 0; i--) {
    const run = layers[i]?.current[action];
    if (run) {
      event.preventDefault();
      run();
      return true;
    }
  }
  return false;
}

/** Listens on `doc` (the app's document, or a mail frame's) until the returned function is called. */
export function listenForShortcuts(doc: Document): () => void {
  const listener = (e: KeyboardEvent) => void handleKey(e);
  doc.addEventListener("keydown", listener);
  return () => doc.removeEventListener("keydown", listener);
}

/** Registers handlers on top of the others until the returned function is called. */
export function registerShortcuts(layer: { current: ShortcutHandlers }): () => void {
  layers.push(layer);
  return () => {
    const i = layers.indexOf(layer);
    if (i !== -1) layers.splice(i, 1);
  };
}

/**
 * Registers a component's handlers while it is mounted. The latest closures run, so callers
 * may pass fresh functions on every render; actions it leaves out fall through to the shell.
 */
export function useShortcuts(handlers: ShortcutHandlers): void {
  const layer = useRef(handlers);
  layer.current = handlers;
  useEffect(() => registerShortcuts(layer), []);
}
