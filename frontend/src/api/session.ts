import type { MessageKey } from "../i18n";

/** The part of `Storage` the session needs (sessionStorage in the browser, a fake in tests). */
export type TokenStorage = Pick<Storage, "getItem" | "setItem" | "removeItem">;

export interface SessionState {
  /** Bearer token of the signed-in session, or null when signed out. */
  readonly token: string | null;
  /** A message to show on the sign-in screen, e.g. why the session ended. */
  readonly notice: MessageKey | null;
}

const STORAGE_KEY = "palisade.session";
const NOTICE_KEY = "palisade.signedOutNotice";

/** Why a session can end, as the sign-in screen says it. */
const SIGN_OUT_NOTICES = ["session.expired", "account.signedOut", "account.deleted"] as const satisfies readonly MessageKey[];

/** One of the reasons the sign-in screen can give for an ended session. */
export type SignOutNotice = (typeof SIGN_OUT_NOTICES)[number];

/**
 * The bearer token, held in memory and mirrored to sessionStorage so a reload keeps the tab
 * signed in (and closing the tab forgets it). It never goes into a URL. Why the last session
 * ended is kept there too, so a reload of the sign-in screen still says it.
 */
export class Session {
  #state: SessionState;
  readonly #storage: TokenStorage | null;
  readonly #listeners = new Set<(state: SessionState) => void>();

  constructor(storage: TokenStorage | null) {
    this.#storage = storage;
    const token = readStored(storage, STORAGE_KEY);
    this.#state = { token, notice: token === null ? readNotice(storage) : null };
  }

  get state(): SessionState {
    return this.#state;
  }

  get token(): string | null {
    return this.#state.token;
  }

  signIn(token: string): void {
    try {
      this.#storage?.setItem(STORAGE_KEY, token);
      this.#storage?.removeItem(NOTICE_KEY);
    } catch {
      // Storage can be full or disabled: the session then lasts as long as this page.
    }
    this.#set({ token, notice: null });
  }

  /** Signs out locally. `notice` says why, on the sign-in screen. */
  signOut(notice: SignOutNotice | null = null): void {
    try {
      this.#storage?.removeItem(STORAGE_KEY);
      if (notice === null) this.#storage?.removeItem(NOTICE_KEY);
      else this.#storage?.setItem(NOTICE_KEY, notice);
    } catch {
      // Nothing to forget.
    }
    this.#set({ token: null, notice });
  }

  /** The server no longer accepts `token` (expired or revoked). Ignored if it is not current. */
  ended(token: string): void {
    if (this.#state.token === token) this.signOut("session.expired");
  }

  subscribe(listener: (state: SessionState) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #set(state: SessionState): void {
    this.#state = state;
    for (const listener of this.#listeners) listener(state);
  }
}

function readStored(storage: TokenStorage | null, key: string): string | null {
  try {
    const value = storage?.getItem(key);
    return value ? value : null;
  } catch {
    return null;
  }
}

/** The stored notice, if it is one this version knows: storage outlives a deploy. */
function readNotice(storage: TokenStorage | null): SignOutNotice | null {
  const stored = readStored(storage, NOTICE_KEY);
  return SIGN_OUT_NOTICES.find((notice) => notice === stored) ?? null;
}

function browserStorage(): TokenStorage | null {
  try {
    return typeof sessionStorage === "undefined" ? null : sessionStorage;
  } catch {
    return null; // Access can throw when storage is blocked.
  }
}

/** The app's session. */
export const session = new Session(browserStorage());
