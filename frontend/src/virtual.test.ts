import { describe, expect, it } from "vitest";
import { needsMore, scrollToShow, visibleRows } from "./virtual";

describe("visibleRows", () => {
  it("renders only the rows in view plus the overscan", () => {
    // 100 px rows, 800 px viewport scrolled to row 50 of 10,000.
    const range = visibleRows({ scrollTop: 5000, height: 800 }, 100, 10_000, 5);
    expect(range).toEqual({ start: 45, end: 63 });
  });

  it("covers a row that is only partly visible", () => {
    const range = visibleRows({ scrollTop: 150, height: 300 }, 100, 100, 0);
    expect(range).toEqual({ start: 1, end: 5 }); // rows 1 (half), 2, 3 and 4 (half)
  });

  it("stays within the list at both ends", () => {
    expect(visibleRows({ scrollTop: 0, height: 800 }, 100, 10_000, 5)).toEqual({ start: 0, end: 13 });
    expect(visibleRows({ scrollTop: 999_500, height: 800 }, 100, 10_000, 5)).toEqual({ start: 9990, end: 10_000 });
    expect(visibleRows({ scrollTop: 0, height: 800 }, 100, 3, 5)).toEqual({ start: 0, end: 3 });
  });

  it("shows the first rows when the list starts below the fold", () => {
    // The list's top is 300 px below the viewport's top edge.
    expect(visibleRows({ scrollTop: -300, height: 800 }, 100, 10_000, 2)).toEqual({ start: 0, end: 7 });
  });

  it("renders nothing when the list is scrolled far past or is empty", () => {
    expect(visibleRows({ scrollTop: 5_000_000, height: 800 }, 100, 10_000, 5)).toEqual({ start: 10_000, end: 10_000 });
    expect(visibleRows({ scrollTop: 0, height: 800 }, 100, 0, 5)).toEqual({ start: 0, end: 0 });
    expect(visibleRows({ scrollTop: 0, height: 800 }, 0, 10, 5)).toEqual({ start: 0, end: 0 });
  });

  it("keeps the DOM small however long the list is", () => {
    for (const count of [50, 1000, 10_000, 100_000]) {
      const range = visibleRows({ scrollTop: (count / 2) * 104, height: 900 }, 104, count, 6);
      expect(range.end - range.start).toBeLessThanOrEqual(Math.ceil(900 / 104) + 1 + 12);
    }
  });
});

describe("needsMore", () => {
  it("asks for the next page when the rendered rows near the end of what is loaded", () => {
    expect(needsMore({ start: 0, end: 20 }, 50, 10)).toBe(false);
    expect(needsMore({ start: 25, end: 40 }, 50, 10)).toBe(true);
    expect(needsMore({ start: 0, end: 0 }, 0, 10)).toBe(true);
  });
});

describe("scrollToShow", () => {
  const viewport = { scrollTop: 1000, height: 500 };
  it("scrolls up to a row above the viewport", () => {
    expect(scrollToShow(5, viewport, 100)).toBe(500);
  });
  it("scrolls down just enough for a row below the viewport", () => {
    expect(scrollToShow(15, viewport, 100)).toBe(1100);
  });
  it("leaves a visible row alone", () => {
    expect(scrollToShow(12, viewport, 100)).toBeNull();
  });
});
