import { t } from "../i18n";
import { privacyLevel } from "../privacy";
import { formatPoints, privacyFactors, type PrivacyFacts } from "../privacyFactors";
import { Dialog } from "./Dialog";

/** The explanation of a privacy index: each feature that raised or lowered it, and by how much. */
export function PrivacyDetails({ facts, onClose }: { facts: PrivacyFacts; onClose: () => void }) {
  const level = privacyLevel(facts.privacy_index);
  const factors = privacyFactors(facts);
  return (
    <Dialog title={t("privacyDetails.title")} onClose={onClose}>
      <p class="privacy-summary">
        {t("privacyDetails.summary", { score: level.score, label: t(level.labelKey) })}
      </p>
      <ul class="privacy-factors">
        {factors.map((f) => (
          <li
            key={f.feature}
            class={f.points > 0 ? "factor factor--up" : f.points < 0 ? "factor factor--down" : "factor"}
          >
            <span class="factor-points">{formatPoints(f.points)}</span>{" "}
            <span class="factor-label">{t(f.labelKey, f.params)}</span>
          </li>
        ))}
      </ul>
    </Dialog>
  );
}
