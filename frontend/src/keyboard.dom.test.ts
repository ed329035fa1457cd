// @vitest-environment jsdom
import { afterEach, describe, expect, it, vi } from "vitest";
import { isTypingTarget, listenForShortcuts, registerShortcuts } from "./keyboard";

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
  document.body.innerHTML = "";
});

function press(target: Element, key: string, init: KeyboardEventInit = {}) {
  const e = new KeyboardEvent("keydown", { key, bubbles: true, cancelable: true, ...init });
  target.dispatchEvent(e);
  return e;
}

function setup(handlers: Parameters<typeof registerShortcuts>[0]["current"]) {
  cleanups.push(listenForShortcuts(document), registerShortcuts({ current: handlers }));
}

describe("shortcut dispatch", () => {
  it("runs the action and keeps the key from doing anything else", () => {
    const next = vi.fn();
    setup({ next });
    const e = press(document.body, "j");
    expect(next).toHaveBeenCalledOnce();
    expect(e.defaultPrevented).toBe(true);
  });

  it("ignores keys typed into fields and editable content", () => {
    const reply = vi.fn();
    setup({ reply });
    document.body.innerHTML = `<input id="text"><input id="mail" type="email"><textarea id="area"></textarea>
      <select id="sel"></select><div id="edit" contenteditable="true"></div><input id="box" type="checkbox">`;
    for (const id of ["text", "mail", "area", "sel"]) {
      const e = press(document.getElementById(id) as Element, "r");
      expect(e.defaultPrevented, id).toBe(false);
    }
    expect(reply).not.toHaveBeenCalled();
    // jsdom does not compute isContentEditable; the check itself is tested below.
    press(document.getElementById("box") as Element, "r");
    expect(reply).toHaveBeenCalledOnce(); // a checkbox takes no text
  });

  it("ignores keys with Ctrl, Meta or Alt, and keys inside an open dialog", () => {
    const forward = vi.fn();
    setup({ forward });
    press(document.body, "f", { ctrlKey: true });
    press(document.body, "f", { metaKey: true });
    press(document.body, "f", { altKey: true });
    document.body.innerHTML = `<dialog open><button id="b">x</button></dialog>`;
    press(document.getElementById("b") as Element, "f");
    expect(forward).not.toHaveBeenCalled();
  });

  it("leaves Enter to links and buttons, but opens from elsewhere", () => {
    const open = vi.fn();
    setup({ open });
    document.body.innerHTML = `<a id="a" href="#/x">x</a><button id="b">b</button><article id="art" tabindex="-1"></article>`;
    press(document.getElementById("a") as Element, "Enter");
    press(document.getElementById("b") as Element, "Enter");
    expect(open).not.toHaveBeenCalled();
    press(document.getElementById("art") as Element, "Enter");
    press(document.getElementById("a") as Element, "o");
    expect(open).toHaveBeenCalledTimes(2);
  });

  it("gives the key to the newest registration that handles it", () => {
    const shellTrash = vi.fn();
    const shellHelp = vi.fn();
    const screenTrash = vi.fn();
    setup({ trash: shellTrash, help: shellHelp });
    cleanups.push(registerShortcuts({ current: { trash: screenTrash } }));
    press(document.body, "#");
    press(document.body, "?");
    expect(screenTrash).toHaveBeenCalledOnce();
    expect(shellTrash).not.toHaveBeenCalled();
    expect(shellHelp).toHaveBeenCalledOnce(); // the screen does not handle help: it falls through
  });
});

describe("isTypingTarget", () => {
  it("knows editable content", () => {
    const div = document.createElement("div");
    Object.defineProperty(div, "isContentEditable", { value: true });
    expect(isTypingTarget(div)).toBe(true);
    expect(isTypingTarget(document.createElement("p"))).toBe(false);
    expect(isTypingTarget(null)).toBe(false);
  });
});
