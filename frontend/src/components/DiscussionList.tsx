import { useCallback, useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import type { Schemas } from "../api/client";
import {
  listDiscussions,
  mergeFirstPage,
  newestMessage,
  reasonOf,
  setDiscussionFlags,
  startDraft,
  tagDiscussions,
  type Discussion,
  type Folder,
} from "../api/discussions";
import { coalesce, onMailChange } from "../api/events";
import { session } from "../api/session";
import { announce } from "../announce";
import { formatDate, t, tn, type MessageKey } from "../i18n";
import { useShortcuts } from "../keyboard";
import { navigate } from "../router";
import { needsMore, scrollToShow, visibleRows, type Viewport } from "../virtual";
import { PrivacyBadge } from "./PrivacyBadge";
import { TagChips } from "./TagChips";
import { TagPicker } from "./TagPicker";
import { displayParticipants } from "./participants";
import { BusyButton } from "./BusyButton";

type Tag = Schemas["TagView"];

const PAGE_SIZE = 100;
const SHOWN_PARTICIPANTS = 3;
/** Every row has this height (in rem, so it follows the reader's font size). */
const ROW_REM = 7;
/** Rows rendered beyond each edge of the viewport. */
const OVERSCAN = 6;
/** Fetch the next page when the rendered rows come this close to the end of what is loaded. */
const PREFETCH = 30;

interface ListState {
  readonly items: readonly Discussion[];
  readonly next: string | null;
  readonly loading: boolean;
  readonly loaded: boolean;
  readonly error: string | null;
}

const initial: ListState = { items: [], next: null, loading: false, loaded: false, error: null };

/** What a toolbar button does to the selected discussions. */
type FlagAction = "read" | "unread" | "trash" | "restore";

const DONE: Readonly<Record<FlagAction | "tags", MessageKey>> = {
  read: "list.done.read",
  unread: "list.done.unread",
  trash: "list.done.trash",
  restore: "list.done.restore",
  tags: "list.done.tags",
};

let lastFolder: Folder = "inbox";

/** What a list looked like when the reader left it, to come back to the same place. */
interface Saved {
  readonly state: ListState;
  readonly active: number;
  readonly scrollY: number;
}

const saved = new Map<Folder, Saved>();

/** The hash shown before the current one, to tell coming back from a discussion. */
let previousHash = "";
let currentHash = typeof location === "undefined" ? "" : location.hash;
if (typeof window !== "undefined") {
  window.addEventListener("hashchange", () => {
    previousHash = currentHash;
    currentHash = location.hash;
  });
}

/**
 * Discussions moved from one folder to the other: gone from the remembered `from` list, and
 * the `to` list is loaded afresh next time (where they land in it is the server's to say).
 */
export function discussionsMoved(ids: readonly string[], from: Folder, to: Folder): void {
  saved.delete(to);
  const kept = saved.get(from);
  if (kept === undefined) return;
  const gone = new Set(ids);
  saved.set(from, { ...kept, state: { ...kept.state, items: kept.state.items.filter((d) => !gone.has(d.id)) } });
}

// Signing out forgets them: the next person in this tab must not see them.
session.subscribe((s) => {
  if (s.token === null) saved.clear();
});

/** The folder whose list was shown last, where "Back to list" returns. */
export function lastListFolder(): Folder {
  return lastFolder;
}

/**
 * A folder's discussions, newest activity first: an endless list over the API's cursors that
 * keeps only the visible rows in the DOM, with multi-select and a toolbar for the selection.
 */
export function DiscussionList({ folder, ownAddresses }: { folder: Folder; ownAddresses: readonly string[] }) {
  const [restored] = useState(() => saved.get(folder) ?? null);
  const [state, setState] = useState<ListState>(restored?.state ?? initial);
  const [selected, setSelected] = useState<ReadonlySet<string>>(new Set());
  const [active, setActive] = useState(restored?.active ?? 0);
  const [viewport, setViewport] = useState<Viewport>({ scrollTop: 0, height: 800 });
  const [rowHeight, setRowHeight] = useState(ROW_REM * 16);
  const [picker, setPicker] = useState<readonly string[] | null>(null);
  const [busy, setBusy] = useState(false);
  const [actionError, setActionError] = useState<string | null>(null);
  const wrapper = useRef<HTMLDivElement>(null);
  const toolbar = useRef<HTMLDivElement>(null);
  const focusActive = useRef(false);
  const inFlight = useRef(false);
  lastFolder = folder;

  const load = useCallback(
    async (cursor: string | null) => {
      if (inFlight.current) return;
      inFlight.current = true;
      setState((s) => ({ ...s, loading: true, error: null }));
      try {
        const page = await listDiscussions(folder, cursor, PAGE_SIZE);
        setState((s) => {
          // The server pages newest activity first; a discussion that moved up between pages
          // is kept once, where it was first seen.
          const known = new Set(s.items.map((d) => d.id));
          const items = cursor === null ? page.items : [...s.items, ...page.items.filter((d) => !known.has(d.id))];
          return { items, next: page.next, loading: false, loaded: true, error: null };
        });
      } catch (e) {
        // A 401 has already signed the user out (see api/client.ts).
        setState((s) => ({ ...s, loading: false, error: reasonOf(e) }));
      } finally {
        inFlight.current = false;
      }
    },
    [folder],
  );

  /** New mail: the first page again, merged over what is loaded (moved discussions go up). */
  const refreshTop = useCallback(async () => {
    try {
      const page = await listDiscussions(folder, null, PAGE_SIZE);
      setState((s) => ({ ...s, ...mergeFirstPage(s.loaded ? s : { items: [], next: null }, page), loaded: true }));
    } catch {
      // The next event or scroll tries again; the list on screen is still right, only older.
    }
  }, [folder]);

  useEffect(() => {
    if (restored === null) {
      void load(null);
      return;
    }
    // Back from a discussion: the same rows at the same place, the same row focused, and the
    // top refreshed for what changed meanwhile (read counts, new mail).
    window.scrollTo({ top: restored.scrollY });
    // Focus goes back to the row only when coming back from its discussion; from elsewhere the
    // screen starts as any other (focus on <main>, and j starts at the first row).
    if (!previousHash.startsWith("#/d/")) {
      void refreshTop();
      return;
    }
    const toRow = () => {
      const link = rowLink(restored.active);
      if (link) link.focus({ preventScroll: true });
      else focusActive.current = true; // once the scroll has rendered it
    };
    const frame = requestAnimationFrame(toRow);
    // The shell moves focus to <main> on every new screen, possibly after this ran: follow it
    // on to the row, for a little while.
    const main = document.getElementById("main");
    const onMainFocus = (e: FocusEvent) => {
      if (e.target === main) toRow();
    };
    main?.addEventListener("focus", onMainFocus);
    const stop = setTimeout(() => main?.removeEventListener("focus", onMainFocus), 1000);
    void refreshTop();
    return () => {
      cancelAnimationFrame(frame);
      clearTimeout(stop);
      main?.removeEventListener("focus", onMainFocus);
    };
  }, [load]);

  // Remember the list for coming back to it. The scroll position is kept as it changes: by the
  // time this unmounts, the next screen has replaced the page and its height.
  const latest = useRef({ state, active, scrollY: restored?.scrollY ?? 0 });
  latest.current = { ...latest.current, state, active };
  useEffect(
    () => () => {
      const { state: s, active: a, scrollY } = latest.current;
      if (s.loaded) saved.set(folder, { state: { ...s, loading: false, error: null }, active: a, scrollY });
    },
    [folder],
  );

  useEffect(() => onMailChange(coalesce(refreshTop)), [refreshTop]);

  // Where the list is on the page, and how high a row is, after every scroll and resize.
  useLayoutEffect(() => {
    let frame = 0;
    const measure = () => {
      frame = 0;
      latest.current.scrollY = window.scrollY;
      const el = wrapper.current;
      if (!el) return;
      const rem = Number.parseFloat(getComputedStyle(document.documentElement).fontSize) || 16;
      const row = Math.round(ROW_REM * rem);
      setRowHeight(row);
      // Rounded down to a whole row (and one row taller), so the list renders again only when
      // a row boundary is crossed, not at every pixel of scrolling.
      const top = Math.floor(-el.getBoundingClientRect().top / row) * row;
      const height = window.innerHeight + row;
      setViewport((v) => (v.scrollTop === top && v.height === height ? v : { scrollTop: top, height }));
    };
    const schedule = () => {
      if (frame === 0) frame = requestAnimationFrame(measure);
    };
    measure();
    window.addEventListener("scroll", schedule, { passive: true });
    window.addEventListener("resize", schedule);
    return () => {
      window.removeEventListener("scroll", schedule);
      window.removeEventListener("resize", schedule);
      if (frame !== 0) cancelAnimationFrame(frame);
    };
  }, []);

  // The toolbar appearing moves the list down: measure again.
  useLayoutEffect(() => {
    const el = wrapper.current;
    if (!el) return;
    const top = Math.floor(-el.getBoundingClientRect().top / rowHeight) * rowHeight;
    const height = window.innerHeight + rowHeight;
    setViewport((v) => (v.scrollTop === top && v.height === height ? v : { scrollTop: top, height }));
  }, [selected.size > 0, state.loaded, actionError !== null, rowHeight]);

  const count = state.items.length;
  const range = visibleRows(viewport, rowHeight, count, OVERSCAN);

  useEffect(() => {
    if (state.next !== null && !state.loading && state.error === null && needsMore(range, count, PREFETCH)) {
      void load(state.next);
    }
  }, [range.end, count, state.next, state.loading, state.error, load]);

  const rowLink = (index: number) =>
    wrapper.current?.querySelector<HTMLElement>(`li[data-index="${index}"] .discussion-link`) ?? null;

  // Keyboard focus follows the active row, once it is rendered.
  useEffect(() => {
    if (!focusActive.current) return;
    const link = rowLink(active);
    if (!link) return;
    focusActive.current = false;
    link.focus({ preventScroll: true });
  });

  // Tabbing or clicking into a row makes it the active one, so j/k continue from there.
  useEffect(() => {
    const el = wrapper.current;
    if (!el) return;
    const onFocus = (e: FocusEvent) => {
      const row = (e.target as HTMLElement).closest<HTMLElement>("li[data-index]");
      if (row) setActive(Number(row.dataset.index));
    };
    el.addEventListener("focusin", onFocus);
    return () => el.removeEventListener("focusin", onFocus);
  }, []);

  const showRow = (index: number) => {
    const el = wrapper.current;
    if (!el) return;
    const inset = toolbar.current?.offsetHeight ?? 0;
    const listTop = window.scrollY + el.getBoundingClientRect().top;
    const view = { scrollTop: window.scrollY - listTop + inset, height: window.innerHeight - inset };
    const offset = scrollToShow(index, view, rowHeight);
    if (offset !== null) window.scrollTo({ top: listTop + offset - inset });
  };

  const move = (delta: number) => {
    if (count === 0) return;
    const current = document.activeElement?.closest("li[data-index]") ? active : delta > 0 ? -1 : count;
    const index = Math.min(count - 1, Math.max(0, current + delta));
    setActive(index);
    showRow(index);
    // Focus now when the row is in the DOM; otherwise once the scroll has rendered it.
    const link = rowLink(index);
    if (link) link.focus({ preventScroll: true });
    else focusActive.current = true;
  };

  const activeItem = state.items[active];

  const runFlags = async (action: FlagAction, ids: readonly string[]) => {
    if (busy || ids.length === 0) return;
    setBusy(true);
    setActionError(null);
    try {
      const flags = action === "read" || action === "unread" ? { seen: action === "read" } : { trashed: action === "trash" };
      await setDiscussionFlags(ids, flags);
      const chosen = new Set(ids);
      setState((s) => ({
        ...s,
        items:
          action === "trash" || action === "restore"
            ? s.items.filter((d) => !chosen.has(d.id))
            : s.items.map((d) =>
                chosen.has(d.id) ? { ...d, unread_count: action === "read" ? 0 : d.message_count } : d,
              ),
      }));
      setSelected(new Set());
      if (action === "trash") discussionsMoved(ids, "inbox", "trash");
      if (action === "restore") discussionsMoved(ids, "trash", "inbox");
      if (action === "trash" || action === "restore") setActive((a) => Math.min(a, Math.max(0, count - ids.length - 1)));
      focusActive.current = true;
      announce(t(DONE[action]));
    } catch (e) {
      setActionError(t("list.actionFailed", { message: reasonOf(e) }));
    } finally {
      setBusy(false);
    }
  };

  const applyTags = async (ids: readonly string[], add: Tag[], remove: Tag[]) => {
    await tagDiscussions(
      ids,
      add.map((tag) => tag.id),
      remove.map((tag) => tag.id),
    );
    const chosen = new Set(ids);
    const removed = new Set(remove.map((tag) => tag.id));
    setState((s) => ({
      ...s,
      items: s.items.map((d) => {
        if (!chosen.has(d.id)) return d;
        const kept = d.tags.filter((tag) => !removed.has(tag.id));
        return { ...d, tags: [...kept, ...add.filter((tag) => !kept.some((k) => k.id === tag.id))] };
      }),
    }));
    setSelected(new Set());
    focusActive.current = true;
    announce(t(DONE.tags));
  };

  const replyTo = async (kind: "reply" | "replyAll" | "forward") => {
    if (!activeItem) return;
    try {
      const newest = await newestMessage(activeItem.id);
      if (newest === null) return;
      navigate({ name: "compose", draft: await startDraft(newest.id, kind) });
    } catch (e) {
      setActionError(t("list.actionFailed", { message: reasonOf(e) }));
    }
  };

  const selection = [...selected];
  const targets = () => (selection.length > 0 ? selection : activeItem ? [activeItem.id] : []);

  useShortcuts({
    next: () => move(1),
    previous: () => move(-1),
    open: () => activeItem && navigate({ name: "discussion", id: activeItem.id }),
    reply: () => void replyTo("reply"),
    replyAll: () => void replyTo("replyAll"),
    forward: () => void replyTo("forward"),
    trash: () => void runFlags(folder === "trash" ? "restore" : "trash", targets()),
  });

  const toggle = (id: string) =>
    setSelected((s) => {
      const next = new Set(s);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });

  // The rows in view, plus the active one so that keyboard focus never lands on a missing row.
  const indexes: number[] = [];
  for (let i = range.start; i < range.end; i++) indexes.push(i);
  if (active < count && (active < range.start || active >= range.end)) {
    indexes.push(active);
    indexes.sort((a, b) => a - b);
  }

  return (
    <section class="discussion-list" aria-busy={state.loading}>
      {selected.size > 0 && (
        <div ref={toolbar} class="selection-toolbar" role="toolbar" aria-label={t("list.toolbar")}>
          <span class="selection-count">{tn("list.selected", selected.size)}</span>
          <BusyButton type="button" class="button button--secondary" busy={busy} onClick={() => void runFlags("read", selection)}>
            {t("list.markRead")}
          </BusyButton>
          <BusyButton type="button" class="button button--secondary" busy={busy} onClick={() => void runFlags("unread", selection)}>
            {t("list.markUnread")}
          </BusyButton>
          <BusyButton
            type="button"
            class="button button--secondary"
            aria-haspopup="dialog"
            busy={busy}
            onClick={() => setPicker(selection)}
          >
            {t("list.tag")}
          </BusyButton>
          {folder === "trash" ? (
            <BusyButton type="button" class="button button--secondary" busy={busy} onClick={() => void runFlags("restore", selection)}>
              {t("list.restore")}
            </BusyButton>
          ) : (
            <BusyButton type="button" class="button button--secondary" busy={busy} onClick={() => void runFlags("trash", selection)}>
              {t("list.trash")}
            </BusyButton>
          )}
          <button type="button" class="button button--secondary" onClick={() => setSelected(new Set())}>
            {t("list.clearSelection")}
          </button>
        </div>
      )}
      {actionError !== null && (
        <p class="error" role="alert">
          {actionError}
        </p>
      )}
      {!state.loaded && state.loading && <p class="muted">{t("app.loading")}</p>}
      {state.loaded && count === 0 && state.error === null && (
        <p class="muted">{folder === "trash" ? t("list.emptyTrash") : t("list.empty")}</p>
      )}
      <div ref={wrapper} class="discussions-window">
        {/* Safari drops the list role of a list without bullets; it is said again on purpose. */}
        {/* eslint-disable-next-line jsx-a11y/no-redundant-roles */}
        <ul
          class="discussions"
          role="list"
          aria-label={t("list.label")}
          style={{ height: `${count * rowHeight}px` }}
          hidden={count === 0}
        >
          {indexes.map((i) => {
            const d = state.items[i];
            if (!d) return null;
            return (
              <Row
                key={d.id}
                discussion={d}
                index={i}
                top={i * rowHeight}
                height={rowHeight}
                setSize={state.next === null ? count : -1}
                selected={selected.has(d.id)}
                ownAddresses={ownAddresses}
                onToggle={toggle}
              />
            );
          })}
        </ul>
      </div>
      {state.error !== null && (
        <div class="error" role="alert">
          <p>{state.loaded ? t("list.loadFailed") : state.error}</p>
          <button type="button" class="button button--secondary" onClick={() => void load(state.loaded ? state.next : null)}>
            {t("list.retry")}
          </button>
        </div>
      )}
      {state.loaded && state.loading && <p class="muted list-more">{t("list.loadingMore")}</p>}
      {picker !== null && (
        <TagPicker
          current={picker.map((id) => state.items.find((d) => d.id === id)?.tags.map((tag) => tag.id) ?? [])}
          onApply={(add, remove) => applyTags(picker, add, remove)}
          onClose={() => setPicker(null)}
        />
      )}
    </section>
  );
}

interface RowProps {
  readonly discussion: Discussion;
  readonly index: number;
  readonly top: number;
  readonly height: number;
  /** How many discussions there are, or -1 while more pages may follow. */
  readonly setSize: number;
  readonly selected: boolean;
  readonly ownAddresses: readonly string[];
  readonly onToggle: (id: string) => void;
}

function Row({ discussion: d, index, top, height, setSize, selected, ownAddresses, onToggle }: RowProps) {
  const people = displayParticipants(d.participants, ownAddresses);
  const shown = people.slice(0, SHOWN_PARTICIPANTS).join(", ");
  const names =
    people.length === 0
      ? t("list.unknownParticipant")
      : people.length > SHOWN_PARTICIPANTS
        ? t("list.participantsMore", { names: shown, count: people.length - SHOWN_PARTICIPANTS })
        : shown;
  const unread = d.unread_count > 0;
  const subject = d.subject?.trim() || t("list.noSubject");
  const classes = ["discussion", unread ? "discussion--unread" : "", selected ? "discussion--selected" : ""];
  return (
    <li
      class={classes.join(" ").trim()}
      data-index={index}
      data-unread={unread ? "true" : "false"}
      aria-setsize={setSize}
      aria-posinset={index + 1}
      style={{ transform: `translateY(${top}px)`, height: `${height}px` }}
    >
      <input
        type="checkbox"
        class="discussion-select"
        aria-label={t("list.select", { subject })}
        checked={selected}
        onChange={() => onToggle(d.id)}
      />
      <div class="discussion-main">
        <div class="discussion-top">
          <p class="participants">{names}</p>
          <time dateTime={d.last_activity} title={t("list.lastActivity", { date: formatDate(d.last_activity) })}>
            {formatDate(d.last_activity)}
          </time>
        </div>
        <a class="subject discussion-link" href={`#/d/${d.id}`}>
          {subject}
        </a>
        <p class="snippet">{d.snippet}</p>
        <div class="discussion-meta">
          {unread && <span class="unread">{tn("list.unread", d.unread_count)}</span>}
          <span class="count">{tn("list.messages", d.message_count)}</span>
          <PrivacyBadge score={d.privacy.privacy_index} facts={d.privacy} />
          {/* A group, not a list: each row stays the list's only kind of item. */}
          <TagChips tags={d.tags} label={t("list.tags")} group />
        </div>
      </div>
    </li>
  );
}
