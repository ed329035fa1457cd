/**
 * Windowing for long lists: which rows of a fixed-height list to put in the DOM, so that a list
 * of 10,000 discussions costs as much to render as one of 30.
 */

/** Where the list is, in pixels, relative to what the reader sees. */
export interface Viewport {
  /** How far the top of the viewport is below the top of the list (negative above it). */
  readonly scrollTop: number;
  /** Height of the visible area. */
  readonly height: number;
}

/** A half-open range of row indexes, `start` included and `end` excluded. */
export interface RowRange {
  readonly start: number;
  readonly end: number;
}

/**
 * The rows that intersect the viewport, plus `overscan` rows on each side so that scrolling a
 * little never shows a blank gap before the next render.
 */
export function visibleRows(viewport: Viewport, rowHeight: number, count: number, overscan: number): RowRange {
  if (count <= 0 || !(rowHeight > 0) || !Number.isFinite(viewport.scrollTop)) return { start: 0, end: 0 };
  const height = Math.max(0, viewport.height);
  const first = Math.floor(viewport.scrollTop / rowHeight);
  const last = Math.ceil((viewport.scrollTop + height) / rowHeight);
  const start = clamp(first - overscan, 0, count);
  const end = clamp(last + overscan, start, count);
  return { start, end };
}

/** Whether the rendered range comes close enough to the end of what is loaded to fetch more. */
export function needsMore(range: RowRange, loaded: number, threshold: number): boolean {
  return loaded === 0 || range.end >= loaded - threshold;
}

/**
 * The scroll offset (relative to the list's top) that brings row `index` fully into view while
 * moving as little as possible, or null when it is already visible.
 */
export function scrollToShow(index: number, viewport: Viewport, rowHeight: number): number | null {
  const top = index * rowHeight;
  const bottom = top + rowHeight;
  if (top < viewport.scrollTop) return top;
  if (bottom > viewport.scrollTop + viewport.height) return bottom - viewport.height;
  return null;
}

function clamp(n: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, n));
}
