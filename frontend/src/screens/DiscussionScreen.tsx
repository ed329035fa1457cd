import { t } from "../i18n";

/** One discussion, its messages shown as a conversation. */
export function DiscussionScreen({ id }: { id: string }) {
  return <h1 data-discussion={id}>{t("app.loading")}</h1>;
}
