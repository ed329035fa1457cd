import { useState } from "preact/hooks";
import { t } from "../i18n";
import { navigate } from "../router";

/** The header's search form: submitting shows the results screen. */
export function SearchBox() {
  const [q, setQ] = useState("");
  const submit = (e: Event) => {
    e.preventDefault();
    const params = new URLSearchParams();
    if (q.trim().length > 0) params.set("q", q.trim());
    navigate({ name: "search", params });
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
