import { readFileSync } from "node:fs";
import { recorder } from "./env";

/** One line of the recording server's log (see test_browser.py's Recorder). */
export interface Recorded {
  readonly kind: "connect" | "request" | "tls-failed";
  readonly scheme: "http" | "https";
  readonly method?: string;
  readonly path?: string;
  readonly referer?: string | null;
  readonly cookie?: string | null;
  readonly userAgent?: string | null;
}

/** Everything the recording server has seen so far in this run. */
export function recorded(): Recorded[] {
  return readFileSync(recorder.log, "utf8")
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as Recorded);
}

/** What the recording server saw after `since` entries (a count taken earlier). */
export function recordedSince(since: number): Recorded[] {
  return recorded().slice(since);
}
