import { t } from "../i18n";

/** The user's tags: create, rename, colour, delete. */
export function TagsScreen() {
  return <h1>{t("nav.tags")}</h1>;
}
