import { t } from "../i18n";
import { privacyLevel } from "../privacy";

/** The privacy index as a colour band plus a text label and the score: colour is never alone. */
export function PrivacyBadge({ score }: { score: number }) {
  const level = privacyLevel(score);
  return (
    <span class={`privacy privacy--${level.band}`}>
      <span class="privacy-mark" aria-hidden="true" />
      {t("privacy.badge", { label: t(level.labelKey), score: level.score })}
    </span>
  );
}
