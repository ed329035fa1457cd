import "../writing.css";
import { useEffect, useState } from "preact/hooks";
import { t } from "../i18n";
import { navigate, routeHash, useRoute } from "../router";
import { searchAgain } from "../search/again";
import { emptyQuery, parseSearchParams, toSearchParams } from "../search/query";

/**
 * The header's search form: submitting shows the results screen. On that screen it shows the
 * current words, and a new search keeps the filter chips that are set.
 */
export function SearchBox() {
  const route = useRoute();
  const current = route.name === "search" ? parseSearchParams(route.params) : null;
  const [q, setQ] = useState(current?.q ?? "");

  useEffect(() => {
    // Back and Forward between searches bring their words back into the box.
    setQ(current?.q ?? "");
  }, [current?.q]);

  const submit = (e: Event) => {
    e.preventDefault();
    const query = { ...(current ?? emptyQuery), q: q.trim() };
    const route = { name: "search", params: toSearchParams(query) } as const;
    if (location.hash === routeHash(route)) searchAgain();
    else navigate(route);
  };
  return (
    <form role="search" class="search-box" onSubmit={submit}>
      <input
        type="search"
        id="search-input"
        aria-label={t("search.label")}
        placeholder={t("search.placeholder")}
        value={q}
        maxLength={2048}
        onInput={(e) => setQ(e.currentTarget.value)}
      />
    </form>
  );
}
