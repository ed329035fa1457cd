/**
 * Live updates: the user's new-mail events, read from `GET /api/v1/events` (server-sent events).
 *
 * EventSource cannot send an Authorization header, and the token must never go into a URL, so
 * the stream is read with `fetch` and a stream reader instead. A dropped stream is reopened with
 * exponential backoff and jitter (longer after a 429); a 401 ends the session through the same
 * path as every other request; signing out closes it.
 */
import { API_PREFIX, type Schemas } from "./client";

/** One event of the stream, as the server describes it. */
export type MailEvent = Schemas["EventView"];

/** One dispatched server-sent event. */
export interface SseMessage {
  /** The `event:` field, `message` when absent. */
  readonly event: string;
  /** The `data:` lines, joined with newlines. */
  readonly data: string;
  /** The `id:` field, when one was given. */
  readonly id: string | null;
}

/**
 * An incremental parser of the `text/event-stream` format: feed it text as it arrives, in
 * chunks cut anywhere (inside a line, between `\r` and `\n`), and it returns the events that
 * became complete. Comments (keep-alives) produce nothing.
 */
export class SseParser {
  #buffer = "";
  #data: string[] = [];
  #event = "";
  #id: string | null = null;
  #pendingLf = false;
  /** The server's `retry:` advice, in milliseconds, if it gave one. */
  retry: number | null = null;

  push(text: string): SseMessage[] {
    let chunk = text;
    // The previous chunk ended in `\r`, already taken as a line end: a `\n` now completes it.
    if (this.#pendingLf && chunk.startsWith("\n")) chunk = chunk.slice(1);
    this.#pendingLf = false;
    this.#buffer += chunk;
    const out: SseMessage[] = [];
    for (;;) {
      const cr = this.#buffer.indexOf("\r");
      const lf = this.#buffer.indexOf("\n");
      const end = cr === -1 ? lf : lf === -1 ? cr : Math.min(cr, lf);
      if (end === -1) break;
      const line = this.#buffer.slice(0, end);
      let width = 1;
      if (this.#buffer[end] === "\r") {
        if (end + 1 === this.#buffer.length) this.#pendingLf = true;
        else if (this.#buffer[end + 1] === "\n") width = 2;
      }
      this.#buffer = this.#buffer.slice(end + width);
      const message = this.#line(line);
      if (message !== null) out.push(message);
    }
    return out;
  }

  #line(line: string): SseMessage | null {
    if (line === "") {
      if (this.#data.length === 0) {
        this.#event = "";
        return null;
      }
      const message = { event: this.#event || "message", data: this.#data.join("\n"), id: this.#id };
      this.#data = [];
      this.#event = "";
      return message;
    }
    if (line.startsWith(":")) return null; // a comment: the server's keep-alive
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    switch (field) {
      case "data":
        this.#data.push(value);
        break;
      case "event":
        this.#event = value;
        break;
      case "id":
        if (!value.includes("\0")) this.#id = value;
        break;
      case "retry":
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
      default:
        break; // unknown fields are ignored, as the format says
    }
    return null;
  }
}

/** Delays between attempts. */
export interface Backoff {
  /** The first retry's delay, doubled at each failure in a row. */
  readonly initialMs: number;
  /** The longest delay. */
  readonly maxMs: number;
  /** The shortest delay after a 429 (too many streams open), unless Retry-After says more. */
  readonly tooManyMs: number;
  /** A stream silent for this long is taken as dead (the server sends a keep-alive every 15 s). */
  readonly silenceMs: number;
}

export const DEFAULT_BACKOFF: Backoff = { initialMs: 1000, maxMs: 60_000, tooManyMs: 30_000, silenceMs: 45_000 };

/**
 * The delay before attempt `failures + 1`: exponential, capped, with "equal jitter" (half fixed,
 * half random) so that many clients dropped at once do not come back at once.
 */
export function retryDelay(failures: number, backoff: Backoff, random: () => number): number {
  const ceiling = Math.min(backoff.maxMs, backoff.initialMs * 2 ** Math.min(failures, 30));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

/** Timers, replaceable in tests. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface EventStreamOptions {
  /** The current session token, or null when signed out (the stream then stops). */
  readonly token: () => string | null;
  /** Called with each event. */
  readonly onEvent: (event: MailEvent) => void;
  /** Called when the server no longer accepts `token` (expired or revoked). */
  readonly onUnauthorized: (token: string) => void;
  /**
   * Called each time the stream is open; `reconnected` is true after the first time. Events
   * may have been missed before it opened, either time, so views should refresh.
   */
  readonly onOpen?: (reconnected: boolean) => void;
  readonly fetch?: (input: string, init: RequestInit) => Promise<Response>;
  readonly timers?: Timers;
  readonly random?: () => number;
  readonly backoff?: Backoff;
  /** The API's origin; the page's own by default. */
  readonly origin?: string;
}

/** A running stream; `close` stops it for good. */
export interface EventStreamHandle {
  close(): void;
}

/** Opens the event stream and keeps it open until closed or signed out. */
export function openEventStream(options: EventStreamOptions): EventStreamHandle {
  const fetchFn = options.fetch ?? ((input, init) => fetch(input, init));
  const timers: Timers = options.timers ?? {
    setTimeout: (fn, ms) => setTimeout(fn, ms),
    clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
  };
  const random = options.random ?? Math.random;
  const backoff = options.backoff ?? DEFAULT_BACKOFF;
  const url = `${options.origin ?? ""}${API_PREFIX}/events`;

  let closed = false;
  let controller: AbortController | null = null;
  let sleeper: { handle: unknown; wake: () => void } | null = null;

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const handle = timers.setTimeout(() => {
        sleeper = null;
        resolve();
      }, ms);
      sleeper = { handle, wake: resolve };
    });

  const run = async () => {
    let failures = 0;
    let opened = false;
    while (!closed) {
      const token = options.token();
      if (token === null) return;
      const attempt = new AbortController();
      controller = attempt;
      let wait: number;
      try {
        const response = await fetchFn(url, {
          headers: { Authorization: `Bearer ${token}`, Accept: "text/event-stream" },
          cache: "no-store",
          signal: attempt.signal,
        });
        if (response.status === 401) {
          options.onUnauthorized(token);
          return;
        }
        if (response.status === 429) {
          const advised = Number(response.headers.get("Retry-After")) * 1000;
          const delay = Math.max(backoff.tooManyMs, Number.isFinite(advised) ? advised : 0, retryDelay(failures, backoff, random));
          failures += 1;
          wait = Math.round(delay + random() * (delay / 2));
          await response.body?.cancel().catch(() => undefined);
        } else if (!response.ok || response.body === null) {
          await response.body?.cancel().catch(() => undefined);
          wait = retryDelay(failures, backoff, random);
          failures += 1;
        } else {
          options.onOpen?.(opened);
          opened = true;
          failures = 0;
          await readEvents(response.body, attempt, timers, backoff.silenceMs, options.onEvent);
          // The server or a proxy ended the stream: come back soon, but not all at once.
          wait = retryDelay(0, backoff, random);
        }
      } catch {
        if (closed) return;
        wait = retryDelay(failures, backoff, random);
        failures += 1;
      }
      if (closed) return;
      await sleep(wait);
    }
  };
  void run();

  return {
    close() {
      closed = true;
      controller?.abort();
      if (sleeper !== null) {
        timers.clearTimeout(sleeper.handle);
        sleeper.wake();
        sleeper = null;
      }
    },
  };
}

/** Reads the stream until it ends, is aborted, or stays silent for `silenceMs`. */
async function readEvents(
  body: ReadableStream<Uint8Array>,
  attempt: AbortController,
  timers: Timers,
  silenceMs: number,
  onEvent: (event: MailEvent) => void,
): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const parser = new SseParser();
  let watchdog: unknown = null;
  const arm = () => {
    if (watchdog !== null) timers.clearTimeout(watchdog);
    // Nothing, not even a keep-alive, for this long: the connection is dead without knowing it.
    watchdog = timers.setTimeout(() => {
      attempt.abort();
      void reader.cancel().catch(() => undefined);
    }, silenceMs);
  };
  const onAbort = () => void reader.cancel().catch(() => undefined);
  attempt.signal.addEventListener("abort", onAbort);
  try {
    arm();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      arm();
      for (const message of parser.push(decoder.decode(value, { stream: true }))) {
        const event = parseEvent(message);
        if (event !== null) onEvent(event);
      }
    }
  } finally {
    if (watchdog !== null) timers.clearTimeout(watchdog);
    attempt.signal.removeEventListener("abort", onAbort);
  }
}

/** The JSON of one message, or null when it is not an event we understand. */
export function parseEvent(message: SseMessage): MailEvent | null {
  if (message.event !== "message") return null;
  try {
    const value: unknown = JSON.parse(message.data);
    if (typeof value !== "object" || value === null || !("type" in value) || typeof value.type !== "string") return null;
    const id = "message_id" in value && typeof value.message_id === "string" ? value.message_id : undefined;
    return id === undefined ? { type: value.type } : { type: value.type, message_id: id };
  } catch {
    return null;
  }
}

/** What the views hear about: new mail arrived (or may have, after a reconnection). */
export interface MailChange {
  /** The new message, when known. */
  readonly messageId: string | null;
  /** Its discussion, when known. */
  readonly discussionId: string | null;
}

const changeListeners = new Set<(change: MailChange) => void>();

/** Tells every open view (the list, a discussion) that mail changed. */
export function announceMailChange(change: MailChange): void {
  for (const listener of changeListeners) listener(change);
}

/** Listens for mail changes until the returned function is called. */
export function onMailChange(listener: (change: MailChange) => void): () => void {
  changeListeners.add(listener);
  return () => changeListeners.delete(listener);
}

/**
 * Wraps a refresh so that it never runs twice at once: calls while it runs ask for one more run
 * afterwards, however many they are (a burst of new mail costs two refreshes, not one each).
 */
export function coalesce(run: () => Promise<void>): () => void {
  let state: "idle" | "running" | "again" = "idle";
  const call = () => {
    if (state !== "idle") {
      state = "again";
      return;
    }
    state = "running";
    void run()
      .catch(() => undefined)
      .finally(() => {
        const again = state === "again";
        state = "idle";
        if (again) call();
      });
  };
  return call;
}
