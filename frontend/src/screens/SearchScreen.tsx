import "../writing.css";
import { Fragment } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, type Schemas } from "../api/client";
import { call, describeProblem } from "../api/problem";
import { byName, listTags, type Tag } from "../api/tags";
import { useEscape } from "../components/useEscape";
import { formatDate, t, tn, type MessageKey } from "../i18n";
import { navigate } from "../router";
import { useSearchAgain } from "../search/again";
import { isEmptyQuery, notSearchableYet, parseSearchParams, toApiParams, toSearchParams, type SearchQuery } from "../search/query";
import { BusyButton } from "../components/BusyButton";

type Summary = Schemas["MessageSummaryView"];
type IndexStatus = Schemas["IndexStatus"];

/** The chips, in the order they are shown. */
type Chip = "from" | "to" | "subject" | "dates" | "hasAttachment" | "tag";
const CHIPS: readonly { chip: Chip; label: MessageKey }[] = [
  { chip: "from", label: "search.chip.from" },
  { chip: "to", label: "search.chip.to" },
  { chip: "subject", label: "search.chip.subject" },
  { chip: "dates", label: "search.chip.dates" },
  { chip: "hasAttachment", label: "search.chip.hasAttachment" },
  { chip: "tag", label: "search.chip.tag" },
];

function isActive(query: SearchQuery, chip: Chip): boolean {
  switch (chip) {
    case "dates":
      return query.after !== "" || query.before !== "";
    case "hasAttachment":
      return query.hasAttachment;
    default:
      return query[chip] !== "";
  }
}

/** Search results for the query and filters in the URL. */
export function SearchScreen({ params }: { params: URLSearchParams }) {
  const query = parseSearchParams(params);
  const key = toSearchParams(query).toString();
  const [editing, setEditing] = useState<Chip | null>(null);
  const round = useSearchAgain();
  const [tags, setTags] = useState<Tag[]>([]);

  useEffect(() => {
    void listTags().then((outcome) => {
      if (outcome.ok) setTags([...outcome.data].sort(byName));
    });
  }, []);

  /** Each change of criteria is a history entry, so Back undoes it. */
  const apply = (next: SearchQuery) => {
    setEditing(null);
    navigate({ name: "search", params: toSearchParams(next) });
  };

  const describe = (chip: Chip): string => {
    switch (chip) {
      case "from":
      case "to":
      case "subject":
      case "tag":
        return query[chip];
      case "dates":
        return [query.after && t("search.afterValue", { date: query.after }), query.before && t("search.beforeValue", { date: query.before })]
          .filter(Boolean)
          .join(", ");
      case "hasAttachment":
        return "";
    }
  };

  return (
    <>
      <h1>{t("search.title")}</h1>
      <div class="filter-chips" role="group" aria-label={t("search.filters")}>
        {CHIPS.map(({ chip, label }) => {
          const active = isActive(query, chip);
          const value = describe(chip);
          return (
            <Fragment key={chip}>
              <button
                type="button"
                class={active ? "filter-chip filter-chip--active" : "filter-chip"}
                aria-pressed={active}
                aria-describedby={value !== "" ? `chip-value-${chip}` : undefined}
                aria-expanded={chip === "hasAttachment" ? undefined : editing === chip}
                aria-controls={chip === "hasAttachment" || editing !== chip ? undefined : "chip-editor"}
                onClick={() => {
                  if (chip === "hasAttachment") apply({ ...query, hasAttachment: !query.hasAttachment });
                  else setEditing(editing === chip ? null : chip);
                }}
              >
                {/* The name stays the chip's label ("From"); the value is its description. */}
                {active && (
                  <span class="filter-chip-check" aria-hidden="true">
                    ✓
                  </span>
                )}
                {t(label)}
                {value !== "" && (
                  <span class="filter-chip-value" aria-hidden="true">
                    {`: ${value}`}
                  </span>
                )}
              </button>
              {value !== "" && (
                <span id={`chip-value-${chip}`} class="visually-hidden">
                  {value}
                </span>
              )}
            </Fragment>
          );
        })}
      </div>
      {editing !== null && editing !== "hasAttachment" && (
        <ChipEditor key={editing} chip={editing} query={query} tags={tags} onApply={apply} onCancel={() => setEditing(null)} />
      )}
      {isEmptyQuery(query) ? <p class="muted">{t("search.empty")}</p> : <Results key={`${key}#${round}`} query={query} />}
    </>
  );
}

function ChipEditor(props: {
  chip: Exclude<Chip, "hasAttachment">;
  query: SearchQuery;
  tags: readonly Tag[];
  onApply: (q: SearchQuery) => void;
  onCancel: () => void;
}) {
  const { chip, query, tags, onApply, onCancel } = props;
  const [text, setText] = useState(chip === "dates" ? "" : query[chip]);
  const [after, setAfter] = useState(query.after);
  const [before, setBefore] = useState(query.before);
  const form = useEscape<HTMLFormElement>(onCancel);

  useEffect(() => {
    document.getElementById("chip-editor")?.querySelector<HTMLElement>("input, select")?.focus();
  }, []);

  const submit = (e: Event) => {
    e.preventDefault();
    if (chip === "dates") onApply({ ...query, after, before });
    else onApply({ ...query, [chip]: text.trim() });
  };
  const clear = () => {
    if (chip === "dates") onApply({ ...query, after: "", before: "" });
    else onApply({ ...query, [chip]: "" });
  };
  const label = t(CHIPS.find((c) => c.chip === chip)?.label ?? "search.chip.from");

  return (
    <form
      ref={form}
      id="chip-editor"
      class="filter-editor"
      aria-label={t("search.editFilter", { filter: label })}
      onSubmit={submit}
    >
      {chip === "dates" ? (
        <>
          <div class="field">
            <label for="chip-after">{t("search.after")}</label>
            <input id="chip-after" type="date" value={after} onInput={(e) => setAfter(e.currentTarget.value)} />
          </div>
          <div class="field">
            <label for="chip-before">{t("search.before")}</label>
            <input id="chip-before" type="date" value={before} onInput={(e) => setBefore(e.currentTarget.value)} />
          </div>
        </>
      ) : chip === "tag" ? (
        <div class="field">
          <label for="chip-input">{label}</label>
          <select id="chip-input" value={text} onChange={(e) => setText(e.currentTarget.value)}>
            <option value="">{t("search.anyTag")}</option>
            {tags.map((tag) => (
              <option key={tag.id} value={tag.name}>
                {tag.name}
              </option>
            ))}
          </select>
        </div>
      ) : (
        <div class="field">
          <label for="chip-input">{label}</label>
          <input
            id="chip-input"
            type="text"
            value={text}
            maxLength={chip === "subject" ? 998 : 320}
            onInput={(e) => setText(e.currentTarget.value)}
          />
        </div>
      )}
      <div class="row">
        <button type="submit" class="button">
          {t("search.apply")}
        </button>
        <button type="button" class="button button--secondary" onClick={clear}>
          {t("search.clear")}
        </button>
      </div>
    </form>
  );
}

function Results({ query }: { query: SearchQuery }) {
  const [items, setItems] = useState<Summary[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [index, setIndex] = useState<IndexStatus | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);

  const load = async (cursor: string | null) => {
    setLoading(true);
    setError(null);
    const outcome = await call(() => api.GET("/api/v1/search", { params: { query: toApiParams(query, cursor) } }));
    setLoading(false);
    if (!outcome.ok) {
      setError(describeProblem(outcome.problem));
      return;
    }
    setItems((list) => (cursor === null ? outcome.data.items : [...list, ...outcome.data.items]));
    setNext(outcome.data.next ?? null);
    setIndex(outcome.data.index);
  };

  useEffect(() => {
    void load(null);
  }, []);

  const lag = index !== null ? notSearchableYet(index) : 0;
  return (
    <>
      {lag > 0 && <p class="notice">{tn("search.lag", lag)}</p>}
      {error !== null && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <p class="visually-hidden" role="status">
        {loading ? t("app.loading") : tn("search.count", items.length)}
      </p>
      {!loading && error === null && items.length === 0 && <p>{t("search.none")}</p>}
      <ul class="results" aria-label={t("search.results")}>
        {items.map((m) => (
          <li key={m.id} class="result">
            <a href={`#/d/${m.discussion_id}`} class="result-link">
              <span class="subject">{m.subject !== undefined && m.subject !== "" ? m.subject : t("list.noSubject")}</span>
            </a>
            <span class="result-meta">
              <span>{m.from?.name ?? m.from?.address ?? t("list.unknownParticipant")}</span>
              <time dateTime={m.date}>{formatDate(m.date)}</time>
            </span>
          </li>
        ))}
      </ul>
      {next !== null && (
        <BusyButton type="button" class="button button--secondary load-more" busy={loading} onClick={() => void load(next)}>
          {loading ? t("list.loadingMore") : t("list.loadMore")}
        </BusyButton>
      )}
    </>
  );
}
