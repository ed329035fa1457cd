import { t } from "../i18n";

/** Writing a new message, a reply or a forward; `draft` resumes an existing draft. */
export function ComposeScreen({ draft }: { draft: string | null }) {
  return <h1 data-draft={draft ?? ""}>{t("nav.compose")}</h1>;
}
