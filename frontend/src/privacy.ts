import type { MessageKey } from "./i18n";

/** The colour bands of the privacy index. Colour is never the only signal: each has a label. */
export type PrivacyBand = "low" | "fair" | "good" | "strong";

export interface PrivacyLevel {
  /** The score, clamped to 0–100 and rounded. */
  readonly score: number;
  readonly band: PrivacyBand;
  /** Catalog key of the band's text label. */
  readonly labelKey: MessageKey;
}

/**
 * Lower bounds of each band, highest first. The server scores TLS on every hop at 30 and
 * end-to-end encryption at 40 (see crates/palisade-model/src/privacy.rs), so only encrypted mail
 * reaches "strong", and authenticated mail over TLS is "good".
 */
const BANDS: readonly (readonly [number, PrivacyBand])[] = [
  [75, "strong"],
  [50, "good"],
  [25, "fair"],
  [0, "low"],
];

/** Maps a 0–100 privacy index to its band and label. Out-of-range or missing scores clamp. */
export function privacyLevel(score: number): PrivacyLevel {
  const clamped = Number.isFinite(score) ? Math.min(100, Math.max(0, Math.round(score))) : 0;
  const band = BANDS.find(([min]) => clamped >= min)?.[1] ?? "low";
  return { score: clamped, band, labelKey: `privacy.${band}` };
}
