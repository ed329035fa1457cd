import { t } from "../i18n";

/** Search results for the query and filters in the URL. */
export function SearchScreen({ params }: { params: URLSearchParams }) {
  return <h1 data-query={params.get("q") ?? ""}>{t("search.title")}</h1>;
}
