import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { api, type Schemas } from "../api/client";
import {
  discussionMessages,
  failure,
  reasonOf,
  setDiscussionFlags,
  setMessageFlags,
  startDraft,
  tagDiscussions,
  type Discussion,
} from "../api/discussions";
import { coalesce, onMailChange } from "../api/events";
import { announce } from "../announce";
import { discussionsMoved, lastListFolder } from "../components/DiscussionList";
import { MessageCard, type DraftKind } from "../components/MessageCard";
import { PrivacyBadge } from "../components/PrivacyBadge";
import { TagChips } from "../components/TagChips";
import { TagPicker } from "../components/TagPicker";
import { t } from "../i18n";
import { useShortcuts } from "../keyboard";
import { useMe } from "../me";
import { navigate } from "../router";
import { BusyButton } from "../components/BusyButton";

type Summary = Schemas["MessageSummaryView"];
type Message = Schemas["MessageView"];

/** A message of the discussion: its summary at once, the full message when it arrives. */
interface Entry {
  readonly summary: Summary;
  readonly message: Message | null;
  readonly error: string | null;
}

/** How many full messages load at once. */
const PARALLEL = 4;

/** One discussion, its messages shown as a conversation, oldest first. */
export function DiscussionScreen({ id }: { id: string }) {
  const me = useMe();
  const [discussion, setDiscussion] = useState<Discussion | null>(null);
  const [entries, setEntries] = useState<readonly Entry[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [notFound, setNotFound] = useState(false);
  const [picker, setPicker] = useState(false);
  const [busy, setBusy] = useState(false);
  const list = useRef<HTMLOListElement>(null);
  const loadedIds = useRef(new Set<string>());

  const update = (messageId: string, change: Partial<Entry>) =>
    setEntries((es) => es?.map((e) => (e.summary.id === messageId ? { ...e, ...change } : e)) ?? es);

  const fetchMessage = async (messageId: string, remote: boolean) => {
    const { data, error: body, response } = await api.GET("/api/v1/messages/{id}", {
      params: { path: { id: messageId }, query: remote ? { remote_content: true } : {} },
    });
    if (!data) throw failure(body, response.status);
    return data;
  };

  const load = useCallback(async () => {
    try {
      const [got, summaries] = await Promise.all([
        api.GET("/api/v1/discussions/{id}", { params: { path: { id } } }),
        discussionMessages(id),
      ]);
      if (!got.data) {
        if (got.response.status === 404) setNotFound(true);
        else throw failure(got.error, got.response.status);
        return;
      }
      setDiscussion(got.data);
      // The server lists newest first; a conversation reads oldest first.
      const ordered = [...summaries].reverse();
      setEntries((old) => {
        const kept = new Map((old ?? []).map((e) => [e.summary.id, e]));
        return ordered.map((s) => ({ summary: s, message: kept.get(s.id)?.message ?? null, error: null }));
      });
      const unread = ordered.filter((s) => !s.flags.seen).map((s) => s.id);
      if (unread.length > 0) void setMessageFlags(unread, { seen: true }).catch(() => undefined);
      const missing = ordered.filter((s) => !loadedIds.current.has(s.id));
      let next = 0;
      const worker = async () => {
        while (next < missing.length) {
          const s = missing[next++];
          if (!s) break;
          loadedIds.current.add(s.id);
          try {
            update(s.id, { message: await fetchMessage(s.id, false), error: null });
          } catch (e) {
            loadedIds.current.delete(s.id);
            update(s.id, { error: reasonOf(e) });
          }
        }
      };
      await Promise.all(Array.from({ length: PARALLEL }, worker));
    } catch (e) {
      setError(reasonOf(e));
    }
  }, [id]);

  useEffect(() => {
    void load();
  }, [load]);

  // A reply arriving in this discussion shows up without a reload.
  useEffect(() => {
    const reload = coalesce(load);
    return onMailChange((change) => {
      if (change.discussionId === null || change.discussionId === id) reload();
    });
  }, [id, load]);

  const back = () => navigate({ name: lastListFolder() });

  const run = async (what: "unread" | "trash" | "restore") => {
    if (busy) return;
    setBusy(true);
    setError(null);
    try {
      await setDiscussionFlags([id], what === "unread" ? { seen: false } : { trashed: what === "trash" });
      if (what === "trash") discussionsMoved([id], "inbox", "trash");
      if (what === "restore") discussionsMoved([id], "trash", "inbox");
      announce(t(what === "unread" ? "list.done.unread" : what === "trash" ? "list.done.trash" : "list.done.restore"));
      back();
    } catch (e) {
      setError(t("list.actionFailed", { message: reasonOf(e) }));
      setBusy(false);
    }
  };

  const draft = async (messageId: string, kind: DraftKind) => {
    try {
      navigate({ name: "compose", draft: await startDraft(messageId, kind) });
    } catch (e) {
      setError(t("message.failed", { message: reasonOf(e) }));
    }
  };

  const loadRemote = async (messageId: string) => {
    update(messageId, { message: await fetchMessage(messageId, true) });
  };

  /** The message the keyboard acts on: the one holding focus, or the newest. */
  const articles = () => [...(list.current?.querySelectorAll<HTMLElement>("article.message") ?? [])];
  const currentIndex = () => articles().findIndex((a) => a.contains(document.activeElement));
  const currentMessage = () => {
    const all = articles();
    return (all[currentIndex()] ?? all[all.length - 1])?.dataset.messageId;
  };
  const moveTo = (delta: number) => {
    const all = articles();
    if (all.length === 0) return;
    const i = currentIndex();
    const target = all[i === -1 ? (delta > 0 ? 0 : all.length - 1) : Math.min(all.length - 1, Math.max(0, i + delta))];
    target?.focus();
  };

  useShortcuts({
    next: () => moveTo(1),
    previous: () => moveTo(-1),
    reply: () => {
      const m = currentMessage();
      if (m) void draft(m, "reply");
    },
    replyAll: () => {
      const m = currentMessage();
      if (m) void draft(m, "replyAll");
    },
    forward: () => {
      const m = currentMessage();
      if (m) void draft(m, "forward");
    },
    trash: () => void run("trash"),
  });

  if (notFound) {
    return (
      <>
        <h1>{t("discussion.notFound")}</h1>
        <button type="button" class="button button--secondary" onClick={back}>
          {t("discussion.back")}
        </button>
      </>
    );
  }

  const subject = discussion?.subject?.trim() || (discussion ? t("list.noSubject") : t("app.loading"));
  // The tags any of its messages carries, as the tag picker's starting point.
  const current = discussion?.tags.map((tag) => tag.id) ?? [];

  return (
    <div class="discussion-view">
      <h1 class="discussion-subject">{subject}</h1>
      <div class="discussion-toolbar" role="toolbar" aria-label={t("discussion.toolbar")}>
        <button type="button" class="button button--secondary" onClick={back}>
          {t("discussion.back")}
        </button>
        <BusyButton type="button" class="button button--secondary" busy={busy} onClick={() => void run("unread")}>
          {t("list.markUnread")}
        </BusyButton>
        <button type="button" class="button button--secondary" aria-haspopup="dialog" onClick={() => setPicker(true)}>
          {t("list.tag")}
        </button>
        <BusyButton type="button" class="button button--secondary" busy={busy} onClick={() => void run("trash")}>
          {t("list.trash")}
        </BusyButton>
        {discussion !== null && discussion.trashed_count > 0 && (
          <BusyButton type="button" class="button button--secondary" busy={busy} onClick={() => void run("restore")}>
            {t("list.restore")}
          </BusyButton>
        )}
      </div>
      {discussion && (
        <div class="discussion-facts">
          <PrivacyBadge score={discussion.privacy.privacy_index} facts={discussion.privacy} />
          <TagChips tags={discussion.tags} label={t("list.tags")} />
        </div>
      )}
      {error !== null && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {entries === null && error === null && <p class="muted">{t("app.loading")}</p>}
      {entries !== null && (
        <ol ref={list} class="messages" aria-label={t("discussion.messages")}>
          {entries.map((e) => (
            <li key={e.summary.id}>
              <MessageCard
                summary={e.summary}
                message={e.message}
                error={e.error}
                ownAddresses={me.ownAddresses}
                onDraft={(m, kind) => void draft(m, kind)}
                onLoadRemote={loadRemote}
              />
            </li>
          ))}
        </ol>
      )}
      {picker && (
        <TagPicker
          current={[current]}
          onApply={async (add, remove) => {
            await tagDiscussions(
              [id],
              add.map((tag) => tag.id),
              remove.map((tag) => tag.id),
            );
            announce(t("list.done.tags"));
            loadedIds.current.clear();
            await load();
          }}
          onClose={() => setPicker(false)}
        />
      )}
    </div>
  );
}
