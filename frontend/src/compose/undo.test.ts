import { describe, expect, it } from "vitest";
import { DEFAULT_UNDO_SECONDS, undoSeconds } from "./undo";

describe("undo-send delay", () => {
  it("is 5 seconds unless a valid preference says otherwise", () => {
    expect(DEFAULT_UNDO_SECONDS).toBe(5);
    expect(undoSeconds(null)).toBe(5);
    expect(undoSeconds("1")).toBe(1);
    expect(undoSeconds(" 0 ")).toBe(0);
    expect(undoSeconds("60")).toBe(60);
  });

  it("ignores preferences that are not a small whole number", () => {
    expect(undoSeconds("61")).toBe(5);
    expect(undoSeconds("-1")).toBe(5);
    expect(undoSeconds("2.5")).toBe(5);
    expect(undoSeconds("soon")).toBe(5);
  });
});
