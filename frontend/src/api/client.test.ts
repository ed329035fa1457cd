import { describe, expect, it, vi } from "vitest";
import { createApi } from "./client";
import { Session, type TokenStorage } from "./session";

class MemoryStorage implements TokenStorage {
  readonly items = new Map<string, string>();
  getItem(key: string) {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string) {
    this.items.set(key, value);
  }
  removeItem(key: string) {
    this.items.delete(key);
  }
}

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json; charset=utf-8" } });

/** A fake server: records requests, answers with `reply`. */
function setup(reply: (request: Request) => Response) {
  const storage = new MemoryStorage();
  const session = new Session(storage);
  const requests: Request[] = [];
  const api = createApi(session, {
    origin: "http://palisade.test",
    fetch: (request) => {
      requests.push(request);
      return Promise.resolve(reply(request));
    },
  });
  return { storage, session, requests, api };
}

describe("API client", () => {
  it("sends the token as a bearer header, never in the URL, under /api/v1 on the same origin", async () => {
    const { session, requests, api } = setup(() => json(200, { items: [] }));
    session.signIn("secret-token");
    await api.GET("/api/v1/discussions", { params: { query: { limit: 10 } } });
    const request = requests[0];
    expect(request?.headers.get("Authorization")).toBe("Bearer secret-token");
    expect(request?.url).toBe("http://palisade.test/api/v1/discussions?limit=10");
    expect(request?.url).not.toContain("secret-token");
  });

  it("keeps the token in sessionStorage and restores it", () => {
    const storage = new MemoryStorage();
    new Session(storage).signIn("kept");
    expect(new Session(storage).token).toBe("kept");
  });

  it("turns a 401 on an authenticated request into 'signed out' with a clear message", async () => {
    const { storage, session, api } = setup(() => json(401, { error: "unauthorized", message: "session expired" }));
    session.signIn("old-token");
    const seen: (string | null)[] = [];
    session.subscribe((s) => seen.push(s.notice));

    const { error, response } = await api.GET("/api/v1/discussions");

    expect(response.status).toBe(401);
    expect(error).toMatchObject({ error: "unauthorized" });
    expect(session.token).toBeNull();
    expect(session.state.notice).toBe("session.expired");
    expect(seen).toEqual(["session.expired"]);
    expect(storage.items.has("palisade.session")).toBe(false);
  });

  it("still says why the session ended after a reload, until the next sign-in", () => {
    const storage = new MemoryStorage();
    const first = new Session(storage);
    first.signIn("old-token");
    first.ended("old-token");

    const reloaded = new Session(storage);
    expect(reloaded.state).toEqual({ token: null, notice: "session.expired" });
    reloaded.signIn("new-token");
    reloaded.signOut();
    expect(new Session(storage).state).toEqual({ token: null, notice: null });
  });

  it("ignores a stored notice it does not know", () => {
    const storage = new MemoryStorage();
    storage.setItem("palisade.signedOutNotice", "<script>");
    expect(new Session(storage).state.notice).toBeNull();
  });

  it("does not treat a failed sign-in (401 without a session) as an ended session", async () => {
    const { session, requests, api } = setup(() => json(401, { error: "unauthorized", message: "wrong address or password" }));
    const { error } = await api.POST("/api/v1/auth/login", { body: { address: "alice", password: "nope" } });
    expect(error?.message).toBe("wrong address or password");
    expect(requests[0]?.headers.has("Authorization")).toBe(false);
    expect(session.state.notice).toBeNull();
  });

  it("ignores a late 401 for a token that is no longer the current one", async () => {
    let release: ((r: Response) => void) | undefined;
    const session = new Session(new MemoryStorage());
    const api = createApi(session, {
      origin: "http://palisade.test",
      fetch: () => new Promise<Response>((resolve) => (release = resolve)),
    });
    session.signIn("first");
    const pending = api.GET("/api/v1/me");
    await vi.waitFor(() => expect(release).toBeDefined());
    session.signIn("second");
    release?.(json(401, { error: "unauthorized", message: "gone" }));
    await pending;
    expect(session.token).toBe("second");
    expect(session.state.notice).toBeNull();
  });

  it("other errors leave the session alone", async () => {
    const { session, api } = setup(() => json(503, { error: "unavailable", message: "store down" }));
    session.signIn("t");
    const { error } = await api.GET("/api/v1/discussions");
    expect(error?.message).toBe("store down");
    expect(session.token).toBe("t");
  });
});
