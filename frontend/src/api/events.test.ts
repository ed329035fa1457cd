import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { coalesce, DEFAULT_BACKOFF, openEventStream, parseEvent, retryDelay, SseParser, type MailEvent } from "./events";

describe("SseParser", () => {
  it("joins an event split across chunks anywhere, even inside a line ending", () => {
    const p = new SseParser();
    const text = 'data: {"type":"new_mail","message_id":"m1"}\r\n\r\n';
    const events = [];
    for (const ch of text) events.push(...p.push(ch)); // one character at a time
    expect(events).toEqual([{ event: "message", data: '{"type":"new_mail","message_id":"m1"}', id: null }]);
  });

  it("returns every event of a chunk that holds several", () => {
    const p = new SseParser();
    const events = p.push('data: {"n":1}\n\ndata: {"n":2}\n\nevent: other\ndata: x\n\ndata: {"n":');
    expect(events.map((e) => [e.event, e.data])).toEqual([
      ["message", '{"n":1}'],
      ["message", '{"n":2}'],
      ["other", "x"],
    ]);
    expect(p.push("3}\n\n")).toEqual([{ event: "message", data: '{"n":3}', id: null }]);
  });

  it("treats comments and empty keep-alives as nothing", () => {
    const p = new SseParser();
    expect(p.push(":\n\n: keep-alive\n\n\n\n")).toEqual([]);
    expect(p.push(": ping\ndata: a\n: between\ndata: b\n\n")).toEqual([{ event: "message", data: "a\nb", id: null }]);
  });

  it("reads ids, the retry advice, lone CR line endings and fields without a space", () => {
    const p = new SseParser();
    expect(p.push("id: 7\rretry: 2500\rdata:x\r\r")).toEqual([{ event: "message", data: "x", id: "7" }]);
    expect(p.retry).toBe(2500);
  });
});

describe("parseEvent", () => {
  it("keeps the type and message id, and drops what is not an event", () => {
    expect(parseEvent({ event: "message", data: '{"type":"new_mail","message_id":"m"}', id: null })).toEqual({
      type: "new_mail",
      message_id: "m",
    });
    expect(parseEvent({ event: "message", data: "not json", id: null })).toBeNull();
    expect(parseEvent({ event: "message", data: '{"no":"type"}', id: null })).toBeNull();
    expect(parseEvent({ event: "other", data: '{"type":"x"}', id: null })).toBeNull();
  });
});

describe("retryDelay", () => {
  it("doubles up to the cap, with jitter in the upper half", () => {
    const b = { ...DEFAULT_BACKOFF, initialMs: 1000, maxMs: 8000 };
    expect([0, 1, 2, 3, 4, 10].map((n) => retryDelay(n, b, () => 0))).toEqual([500, 1000, 2000, 4000, 4000, 4000]);
    expect([0, 1, 2, 3, 4].map((n) => retryDelay(n, b, () => 1))).toEqual([1000, 2000, 4000, 8000, 8000]);
  });
});

/** A fake server: each call to fetch takes the next scripted answer. */
function scripted(answers: (() => Response | Promise<Response>)[]) {
  const calls: { url: string; init: RequestInit }[] = [];
  const fetch = vi.fn((url: string, init: RequestInit) => {
    calls.push({ url, init });
    const next = answers.shift();
    if (next === undefined) return new Promise<Response>(() => undefined); // hangs, like an idle stream
    return Promise.resolve(next());
  });
  return { fetch, calls };
}

/** A streaming 200 whose body the test writes to. */
function stream() {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const body = new ReadableStream<Uint8Array>({ start: (c) => (controller = c) });
  const enc = new TextEncoder();
  return {
    response: () => new Response(body, { status: 200, headers: { "Content-Type": "text/event-stream" } }),
    write: (s: string) => controller.enqueue(enc.encode(s)),
    end: () => controller.close(),
  };
}

const flush = async () => {
  for (let i = 0; i < 20; i++) await Promise.resolve();
};

describe("openEventStream", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  const timers = {
    setTimeout: (fn: () => void, ms: number) => setTimeout(fn, ms),
    clearTimeout: (h: unknown) => clearTimeout(h as ReturnType<typeof setTimeout>),
  };

  it("sends the token in the Authorization header, never in the URL, and delivers events", async () => {
    const s = stream();
    const { fetch, calls } = scripted([s.response]);
    const events: MailEvent[] = [];
    const handle = openEventStream({ token: () => "secret-token", onEvent: (e) => events.push(e), onUnauthorized: vi.fn(), fetch, timers });
    await flush();
    s.write('data: {"type":"new_mail","message_id":"a"}\n');
    s.write('\ndata: {"type":"new_');
    s.write('mail","message_id":"b"}\n\n');
    await flush();
    expect(events).toEqual([
      { type: "new_mail", message_id: "a" },
      { type: "new_mail", message_id: "b" },
    ]);
    expect(calls[0]?.url).toBe("/api/v1/events");
    expect(calls[0]?.url).not.toContain("secret-token");
    expect((calls[0]?.init.headers as Record<string, string>).Authorization).toBe("Bearer secret-token");
    handle.close();
  });

  it("reconnects with growing delays after failures, and starts over once connected", async () => {
    const s = stream();
    const fail = () => {
      throw new TypeError("network down");
    };
    const { fetch } = scripted([fail, fail, () => new Response("down", { status: 503 }), s.response]);
    const onOpen = vi.fn();
    const handle = openEventStream({
      token: () => "t",
      onEvent: vi.fn(),
      onUnauthorized: vi.fn(),
      onOpen,
      fetch: (u, i) => fetch(u, i),
      timers,
      random: () => 1, // the top of each jitter range
      backoff: { initialMs: 1000, maxMs: 60_000, tooManyMs: 30_000, silenceMs: 45_000 },
    });
    await flush();
    expect(fetch).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(999);
    expect(fetch).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(fetch).toHaveBeenCalledTimes(2); // after 1 s
    await vi.advanceTimersByTimeAsync(1999);
    expect(fetch).toHaveBeenCalledTimes(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(fetch).toHaveBeenCalledTimes(3); // after 2 s more
    await vi.advanceTimersByTimeAsync(4000);
    expect(fetch).toHaveBeenCalledTimes(4); // after 4 s more (the 503 counted as a failure)
    await flush();
    expect(onOpen).toHaveBeenCalledWith(false);

    // The server ends the stream: back after the first delay, not the grown one.
    s.end();
    await flush();
    await vi.advanceTimersByTimeAsync(1000);
    expect(fetch).toHaveBeenCalledTimes(5);
    handle.close();
  });

  it("tells views to refresh when it comes back after a drop", async () => {
    const first = stream();
    const second = stream();
    const { fetch } = scripted([first.response, second.response]);
    const onOpen = vi.fn();
    const handle = openEventStream({ token: () => "t", onEvent: vi.fn(), onUnauthorized: vi.fn(), onOpen, fetch, timers, random: () => 0 });
    await flush();
    first.end();
    await flush();
    await vi.advanceTimersByTimeAsync(DEFAULT_BACKOFF.initialMs);
    await flush();
    expect(onOpen.mock.calls).toEqual([[false], [true]]);
    handle.close();
  });

  it("waits longer after a 429, at least what Retry-After says", async () => {
    const { fetch } = scripted([() => new Response("{}", { status: 429, headers: { "Retry-After": "90" } })]);
    const handle = openEventStream({ token: () => "t", onEvent: vi.fn(), onUnauthorized: vi.fn(), fetch, timers, random: () => 0 });
    await flush();
    await vi.advanceTimersByTimeAsync(89_999);
    expect(fetch).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(fetch).toHaveBeenCalledTimes(2);
    handle.close();
  });

  it("gives a 401 to the session handling and stops", async () => {
    const { fetch } = scripted([() => new Response("{}", { status: 401 })]);
    const onUnauthorized = vi.fn();
    openEventStream({ token: () => "old", onEvent: vi.fn(), onUnauthorized, fetch, timers });
    await flush();
    expect(onUnauthorized).toHaveBeenCalledWith("old");
    await vi.advanceTimersByTimeAsync(600_000);
    expect(fetch).toHaveBeenCalledTimes(1);
  });

  it("takes a silent stream for dead and reconnects", async () => {
    const s = stream();
    const { fetch } = scripted([s.response]);
    const handle = openEventStream({ token: () => "t", onEvent: vi.fn(), onUnauthorized: vi.fn(), fetch, timers, random: () => 0 });
    await flush();
    await vi.advanceTimersByTimeAsync(30_000);
    s.write(":\n\n"); // a keep-alive resets the watchdog
    await vi.advanceTimersByTimeAsync(30_000);
    expect(fetch).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(15_000 + 1000);
    expect(fetch).toHaveBeenCalledTimes(2);
    handle.close();
  });

  it("stops on close and when signed out", async () => {
    const s = stream();
    let token: string | null = "t";
    const { fetch, calls } = scripted([s.response]);
    const handle = openEventStream({ token: () => token, onEvent: vi.fn(), onUnauthorized: vi.fn(), fetch, timers });
    await flush();
    handle.close();
    await flush();
    expect((calls[0]?.init.signal as AbortSignal).aborted).toBe(true);
    await vi.advanceTimersByTimeAsync(600_000);
    expect(fetch).toHaveBeenCalledTimes(1);

    token = null;
    const other = scripted([]);
    openEventStream({ token: () => token, onEvent: vi.fn(), onUnauthorized: vi.fn(), fetch: other.fetch, timers });
    await flush();
    expect(other.fetch).not.toHaveBeenCalled();
  });
});

describe("coalesce", () => {
  it("runs once at a time, and once more for any number of calls meanwhile", async () => {
    const releases: (() => void)[] = [];
    let runs = 0;
    const call = coalesce(() => {
      runs += 1;
      return new Promise<void>((resolve) => releases.push(resolve));
    });
    call();
    call();
    call();
    call();
    expect(runs).toBe(1);
    releases.shift()?.();
    await flush();
    expect(runs).toBe(2); // the three calls made during the first run became one
    releases.shift()?.();
    await flush();
    expect(runs).toBe(2);
    call();
    expect(runs).toBe(3);
  });
});
