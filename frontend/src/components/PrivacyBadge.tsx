import { useState } from "preact/hooks";
import type { PrivacyFacts } from "../privacyFactors";
import { t } from "../i18n";
import { privacyLevel } from "../privacy";
import { PrivacyDetails } from "./PrivacyDetails";

/**
 * The privacy index as a colour band plus a text label, a shape and the score: colour is never
 * alone. Given the facts behind it, the badge is a button that opens their explanation.
 */
export function PrivacyBadge({ score, facts }: { score: number; facts?: PrivacyFacts }) {
  const [open, setOpen] = useState(false);
  const level = privacyLevel(score);
  const content = (
    <>
      <span class="privacy-mark" aria-hidden="true" />
      {t("privacy.badge", { label: t(level.labelKey), score: level.score })}
    </>
  );
  if (facts === undefined) return <span class={`privacy privacy--${level.band}`}>{content}</span>;
  return (
    <>
      <button
        type="button"
        class={`privacy privacy--${level.band}`}
        aria-haspopup="dialog"
        onClick={() => setOpen(true)}
      >
        {content}
      </button>
      {open && <PrivacyDetails facts={facts} onClose={() => setOpen(false)} />}
    </>
  );
}
