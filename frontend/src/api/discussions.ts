/**
 * Whole-discussion reads and actions for the reading screens: one function per action, so the
 * screens do not care how the server does it. Each action is one call per discussion
 * (`PATCH /discussions/{id}/flags`, `POST /discussions/{id}/tags`).
 */
import { api, errorMessage, type Schemas } from "./client";
import { t } from "../i18n";

/** A discussion as the list shows it. */
export type Discussion = Schemas["DiscussionView"];

/** Which discussions a list shows. */
export type Folder = "inbox" | "trash";

/** A change of flags for every message of some discussions. */
export interface DiscussionFlags {
  readonly seen?: boolean;
  readonly trashed?: boolean;
}

/** A request that failed, with the reason to show. */
export class ActionError extends Error {
  override readonly name = "ActionError";
}

/** How many requests an action on several discussions keeps in flight. */
const PARALLEL = 4;

/** One page of a folder's discussions, newest activity first. */
export async function listDiscussions(
  folder: Folder,
  cursor: string | null,
  limit: number,
): Promise<{ items: Discussion[]; next: string | null }> {
  const { data, error, response } = await api.GET("/api/v1/discussions", {
    params: { query: cursor === null ? { folder, limit } : { folder, limit, cursor } },
  });
  if (!data) throw failure(error, response.status);
  return { items: data.items, next: data.next ?? null };
}

/** Every message id of a discussion, newest first. */
export async function discussionMessages(id: string): Promise<Schemas["MessageSummaryView"][]> {
  const all: Schemas["MessageSummaryView"][] = [];
  let cursor: string | null = null;
  do {
    const query: { limit: number; cursor?: string } = cursor === null ? { limit: 100 } : { limit: 100, cursor };
    const { data, error, response } = await api.GET("/api/v1/discussions/{id}/messages", {
      params: { path: { id }, query },
    });
    if (!data) throw failure(error, response.status);
    all.push(...data.items);
    cursor = data.next ?? null;
  } while (cursor !== null);
  return all;
}

/** Loaded discussions, and the cursor after them. */
export interface Loaded {
  readonly items: readonly Discussion[];
  readonly next: string | null;
}

/**
 * The list after its first page was fetched again (new mail, coming back to it): the fresh page
 * first; a loaded discussion missing from it but within its span was moved out (trashed,
 * restored) and goes; older ones stay, with the cursor that follows them.
 */
export function mergeFirstPage(loaded: Loaded, page: Loaded): Loaded {
  const fresh = new Set(page.items.map((d) => d.id));
  const last = page.items[page.items.length - 1];
  const oldest = last === undefined ? Number.POSITIVE_INFINITY : Date.parse(last.last_activity);
  const older =
    page.next === null ? [] : loaded.items.filter((d) => !fresh.has(d.id) && Date.parse(d.last_activity) < oldest);
  return { items: [...page.items, ...older], next: older.length > 0 ? loaded.next : page.next };
}

/** The newest message of a discussion, or null for an empty one. */
export async function newestMessage(id: string): Promise<Schemas["MessageSummaryView"] | null> {
  const { data, error, response } = await api.GET("/api/v1/discussions/{id}/messages", {
    params: { path: { id }, query: { limit: 1 } },
  });
  if (!data) throw failure(error, response.status);
  return data.items[0] ?? null;
}

/** Marks discussions read or unread, or moves them to or out of the trash. */
export async function setDiscussionFlags(ids: readonly string[], flags: DiscussionFlags): Promise<void> {
  await inParallel(ids, async (id) => {
    const { error, response } = await api.PATCH("/api/v1/discussions/{id}/flags", {
      params: { path: { id } },
      body: flags,
    });
    if (!response.ok) throw failure(error, response.status);
  });
}

/** Sets flags on some messages (marking one discussion's unread messages read when opened). */
export async function setMessageFlags(messageIds: readonly string[], flags: DiscussionFlags): Promise<void> {
  await inParallel(messageIds, async (id) => {
    const { error, response } = await api.PATCH("/api/v1/messages/{id}/flags", {
      params: { path: { id } },
      body: flags,
    });
    if (!response.ok) throw failure(error, response.status);
  });
}

/** Adds and removes tags on every message of some discussions. */
export async function tagDiscussions(
  ids: readonly string[],
  add: readonly string[],
  remove: readonly string[],
): Promise<void> {
  if (add.length === 0 && remove.length === 0) return;
  await inParallel(ids, async (id) => {
    const { error, response } = await api.POST("/api/v1/discussions/{id}/tags", {
      params: { path: { id } },
      body: { add: [...add], remove: [...remove] },
    });
    if (!response.ok) throw failure(error, response.status);
  });
}

/** The user's tags. */
export async function listTags(): Promise<Schemas["TagView"][]> {
  const { data, error, response } = await api.GET("/api/v1/tags");
  if (!data) throw failure(error, response.status);
  return data;
}

/** Starts a reply (to the author, or to everyone) or a forward; returns the new draft's id. */
export async function startDraft(messageId: string, kind: "reply" | "replyAll" | "forward"): Promise<string> {
  const result =
    kind === "forward"
      ? await api.POST("/api/v1/messages/{id}/forward", { params: { path: { id: messageId } } })
      : await api.POST("/api/v1/messages/{id}/reply", {
          params: { path: { id: messageId } },
          body: { all: kind === "replyAll" },
        });
  if (!result.data) throw failure(result.error, result.response.status);
  return result.data.id;
}

/** An error carrying the server's reason, or a generic one with the status. */
export function failure(error: unknown, status: number): ActionError {
  return new ActionError(errorMessage(error) ?? t("error.unexpected", { status }));
}

/** The text to show for any error an action threw. */
export function reasonOf(e: unknown): string {
  return e instanceof ActionError ? e.message : t("error.network");
}

/** Runs `work` over `items`, a few at a time, keeping the results in order. */
async function inParallel<T, R>(items: readonly T[], work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, items.length) }, worker));
  return results;
}
