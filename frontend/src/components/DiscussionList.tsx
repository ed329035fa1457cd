import { useCallback, useEffect, useState } from "preact/hooks";
import { api, errorMessage, type Schemas } from "../api/client";
import { formatDate, t, tn } from "../i18n";
import { PrivacyBadge } from "./PrivacyBadge";
import { displayParticipants } from "./participants";

type Discussion = Schemas["DiscussionView"];

const PAGE_SIZE = 50;
const SHOWN_PARTICIPANTS = 3;

interface ListState {
  readonly items: readonly Discussion[];
  readonly next: string | null;
  readonly loading: boolean;
  readonly loaded: boolean;
  readonly error: string | null;
}

const initial: ListState = { items: [], next: null, loading: false, loaded: false, error: null };

export function DiscussionList({ ownAddresses }: { ownAddresses: readonly string[] }) {
  const [state, setState] = useState<ListState>(initial);
  const [announcement, setAnnouncement] = useState("");

  const load = useCallback(async (cursor: string | null) => {
    setState((s) => ({ ...s, loading: true, error: null }));
    try {
      const { data, error, response } = await api.GET("/api/v1/discussions", {
        params: { query: cursor === null ? { limit: PAGE_SIZE } : { limit: PAGE_SIZE, cursor } },
      });
      if (!data) {
        // A 401 has already signed the user out (see api/client.ts).
        const message = errorMessage(error) ?? t("error.unexpected", { status: response.status });
        setState((s) => ({ ...s, loading: false, error: message }));
        return;
      }
      setState((s) => {
        // The server pages newest activity first; a discussion that moved up between pages
        // is kept once, where it was first seen.
        const known = new Set(s.items.map((d) => d.id));
        const items = cursor === null ? data.items : [...s.items, ...data.items.filter((d) => !known.has(d.id))];
        return { items, next: data.next ?? null, loading: false, loaded: true, error: null };
      });
    } catch {
      setState((s) => ({ ...s, loading: false, error: t("error.network") }));
    }
  }, []);

  useEffect(() => {
    void load(null);
  }, [load]);

  // Says how many are shown after each page, for screen readers ("load more" adds below).
  useEffect(() => {
    if (state.loaded) setAnnouncement(tn("list.loaded", state.items.length));
  }, [state.loaded, state.items.length]);

  return (
    <section aria-labelledby="list-heading" aria-busy={state.loading}>
      <h2 id="list-heading" class="visually-hidden">
        {t("list.label")}
      </h2>
      <p class="visually-hidden" role="status" aria-live="polite">
        {announcement}
      </p>
      {state.error !== null && (
        <p class="error" role="alert">
          {state.error}
        </p>
      )}
      {!state.loaded && state.loading && <p class="muted">{t("app.loading")}</p>}
      {state.loaded && state.items.length === 0 && <p class="muted">{t("list.empty")}</p>}
      {state.items.length > 0 && (
        <ol class="discussions">
          {state.items.map((d) => (
            <DiscussionRow key={d.id} discussion={d} ownAddresses={ownAddresses} />
          ))}
        </ol>
      )}
      {state.next !== null && (
        <button
          type="button"
          class="button button--secondary load-more"
          disabled={state.loading}
          onClick={() => void load(state.next)}
        >
          {state.loading ? t("list.loadingMore") : t("list.loadMore")}
        </button>
      )}
    </section>
  );
}

function DiscussionRow({ discussion: d, ownAddresses }: { discussion: Discussion; ownAddresses: readonly string[] }) {
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
  return (
    <li class={unread ? "discussion discussion--unread" : "discussion"}>
      <article aria-labelledby={`d-${d.id}`}>
        <div class="discussion-top">
          <p class="participants">{names}</p>
          <time dateTime={d.last_activity} title={t("list.lastActivity", { date: formatDate(d.last_activity) })}>
            {formatDate(d.last_activity)}
          </time>
        </div>
        <h3 id={`d-${d.id}`} class="subject">
          {subject}
        </h3>
        <p class="snippet">{d.snippet}</p>
        <div class="discussion-meta">
          {unread && <span class="unread">{tn("list.unread", d.unread_count)}</span>}
          <span class="count">{tn("list.messages", d.message_count)}</span>
          <PrivacyBadge score={d.privacy.privacy_index} />
        </div>
      </article>
    </li>
  );
}
