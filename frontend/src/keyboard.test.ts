import { describe, expect, it } from "vitest";
import { actionForKey, SHORTCUTS, type KeyInput } from "./keyboard";

const key = (k: string, mods: Partial<KeyInput> = {}): KeyInput => ({
  key: k,
  ctrlKey: false,
  metaKey: false,
  altKey: false,
  ...mods,
});

describe("actionForKey", () => {
  it("maps every documented key to its action", () => {
    expect(actionForKey(key("j"))).toBe("next");
    expect(actionForKey(key("k"))).toBe("previous");
    expect(actionForKey(key("o"))).toBe("open");
    expect(actionForKey(key("Enter"))).toBe("open");
    expect(actionForKey(key("r"))).toBe("reply");
    expect(actionForKey(key("a"))).toBe("replyAll");
    expect(actionForKey(key("f"))).toBe("forward");
    expect(actionForKey(key("c"))).toBe("compose");
    expect(actionForKey(key("/"))).toBe("search");
    expect(actionForKey(key("#"))).toBe("trash");
    expect(actionForKey(key("?"))).toBe("help");
  });

  it("reads the typed character, so Shift may produce ? and #", () => {
    // On most layouts `?` and `#` need Shift; the event's key is already the character.
    expect(actionForKey({ ...key("?"), shiftKey: true } as KeyInput)).toBe("help");
    expect(actionForKey(key("J"))).toBeNull();
  });

  it("leaves keys with Ctrl, Meta or Alt to the browser", () => {
    expect(actionForKey(key("r", { ctrlKey: true }))).toBeNull(); // reload
    expect(actionForKey(key("f", { metaKey: true }))).toBeNull(); // find
    expect(actionForKey(key("j", { altKey: true }))).toBeNull();
  });

  it("ignores keys typed while an input method composes", () => {
    expect(actionForKey(key("a", { isComposing: true }))).toBeNull();
  });

  it("ignores keys that are not shortcuts", () => {
    for (const k of ["x", "Escape", "Tab", " ", "ArrowDown", "1"]) expect(actionForKey(key(k))).toBeNull();
  });

  it("gives each key one action", () => {
    const keys = SHORTCUTS.flatMap(([ks]) => ks);
    expect(new Set(keys).size).toBe(keys.length);
  });
});
