/**
 * The privacy index explained: each feature of a message that raised or lowered its score.
 *
 * The server will list these itself (`PrivacyView.factors`); until it does, they are derived
 * here from the other PrivacyView fields with the server's weights (see
 * crates/palisade-model/src/privacy.rs). `privacyFactors` is the one place to switch over.
 */
import type { Schemas } from "./api/client";
import type { MessageKey } from "./i18n";

/** The server's privacy view, with the factor list it is gaining. */
export type PrivacyFacts = Schemas["PrivacyView"] & {
  readonly factors?: readonly { readonly feature: string; readonly points: number }[];
};

/** One line of the explanation. */
export interface PrivacyFactor {
  /** The feature, in the server's names (`transport_tls`, `dkim_pass`, ...), or `other`. */
  readonly feature: string;
  /** What it added to (positive) or took from (negative) the score; 0 for facts that did not count. */
  readonly points: number;
  /** Catalog key of the sentence that explains it. */
  readonly labelKey: MessageKey;
  /** Values for the sentence's placeholders. */
  readonly params: Readonly<Record<string, string | number>>;
}

/** The server's weights, mirrored until the server sends the factors itself. */
export const WEIGHTS = {
  transport_tls: 30,
  dkim_pass: 10,
  dkim_signature: 5,
  spf_pass: 5,
  dmarc_pass: 5,
  encrypted: 40,
  signed: 10,
  spam: -30,
} as const;

/** Every factor of a message's privacy index, those that counted first. */
export function privacyFactors(p: PrivacyFacts): PrivacyFactor[] {
  const list = p.factors !== undefined ? fromServer(p) : derive(p);
  // What counted first (largest effect first), then facts that did not change the score.
  return list
    .map((f, i) => ({ f, i }))
    .sort((a, b) => Math.abs(b.f.points) - Math.abs(a.f.points) || a.i - b.i)
    .map(({ f }) => f);
}

/** The factors as the server lists them, with facts it does not score added for context. */
function fromServer(p: PrivacyFacts): PrivacyFactor[] {
  const listed = (p.factors ?? []).map((f) => describe(f.feature, f.points, p));
  const named = new Set(listed.map((f) => f.feature));
  const context = derive(p).filter((f) => f.points === 0 && !named.has(f.feature) && !(f.feature === "dkim_pass" && named.has("dkim_signature")));
  return [...listed, ...context];
}

/** The factors recomputed from the facts, with the server's weights. */
function derive(p: PrivacyFacts): PrivacyFactor[] {
  const passed = (r: string | undefined) => r?.toLowerCase() === "pass";
  const factors: PrivacyFactor[] = [
    describe("transport_tls", p.transport_tls ? WEIGHTS.transport_tls : 0, p),
    describe("dkim_pass", passed(p.dkim) ? WEIGHTS.dkim_pass : 0, p),
    describe("spf_pass", passed(p.spf) ? WEIGHTS.spf_pass : 0, p),
    describe("dmarc_pass", passed(p.dmarc) ? WEIGHTS.dmarc_pass : 0, p),
    describe("encrypted", p.encrypted ? WEIGHTS.encrypted : 0, p),
    describe("signed", p.signed ? WEIGHTS.signed : 0, p),
  ];
  const earned = factors.reduce((sum, f) => sum + f.points, 0);
  if (p.spam) {
    // The server takes 30 away but never goes below 0.
    factors.push(describe("spam", -Math.min(-WEIGHTS.spam, earned), p));
  }
  if (p.autocrypt) factors.push(describe("autocrypt", 0, p));
  // Whatever the view does not let us see (a DKIM signature that was not verified, say) is
  // shown as one line, so the lines always add up to the score.
  const total = factors.reduce((sum, f) => sum + f.points, 0);
  const rest = Math.min(100, Math.max(0, p.privacy_index)) - Math.min(100, Math.max(0, total));
  if (rest !== 0) factors.push(describe(rest > 0 && !passed(p.dkim) ? "dkim_signature" : "other", rest, p));
  return factors;
}

function describe(feature: string, points: number, p: PrivacyFacts): PrivacyFactor {
  const on = points > 0;
  const result = (r: string | undefined) => r ?? "none";
  switch (feature) {
    case "transport_tls":
      if (on) return { feature, points, labelKey: "privacyDetails.tls", params: { hops: p.hops } };
      return p.hops === 0
        ? { feature, points, labelKey: "privacyDetails.tlsUnknown", params: {} }
        : { feature, points, labelKey: "privacyDetails.noTls", params: { hops: p.hops } };
    case "dkim_pass":
      return on
        ? { feature, points, labelKey: "privacyDetails.dkimPass", params: {} }
        : { feature, points, labelKey: "privacyDetails.dkimResult", params: { result: result(p.dkim) } };
    case "dkim_signature":
      return { feature, points, labelKey: "privacyDetails.dkimSignature", params: {} };
    case "spf_pass":
      return on
        ? { feature, points, labelKey: "privacyDetails.spfPass", params: {} }
        : { feature, points, labelKey: "privacyDetails.spfResult", params: { result: result(p.spf) } };
    case "dmarc_pass":
      return on
        ? { feature, points, labelKey: "privacyDetails.dmarcPass", params: {} }
        : { feature, points, labelKey: "privacyDetails.dmarcResult", params: { result: result(p.dmarc) } };
    case "encrypted":
      return { feature, points, labelKey: on ? "privacyDetails.encrypted" : "privacyDetails.notEncrypted", params: {} };
    case "signed":
      return { feature, points, labelKey: on ? "privacyDetails.signed" : "privacyDetails.notSigned", params: {} };
    case "spam":
      return { feature, points, labelKey: "privacyDetails.spam", params: {} };
    case "autocrypt":
      return { feature, points, labelKey: "privacyDetails.autocrypt", params: {} };
    case "other":
      return { feature, points, labelKey: "privacyDetails.other", params: {} };
    default:
      return { feature, points, labelKey: "privacyDetails.unknown", params: { feature } };
  }
}

/** "+30", "−30" (a real minus sign), "0". */
export function formatPoints(points: number): string {
  if (points > 0) return `+${points}`;
  if (points < 0) return `\u2212${-points}`;
  return "0";
}
