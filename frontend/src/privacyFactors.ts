/**
 * The privacy index explained: each feature of a message that raised or lowered its score, as
 * the server lists it (`PrivacyView.factors`, whose sum, held within 0–100, is the score), plus
 * the facts that did not count, so the reader also sees what is missing (no TLS, DKIM failed).
 */
import type { Schemas } from "./api/client";
import type { MessageKey } from "./i18n";

/**
 * The server's privacy view. Features are read as plain strings, so a feature added to the
 * server later still shows (by its name) before the client learns its sentence.
 */
export type PrivacyFacts = Omit<Schemas["PrivacyView"], "factors"> & {
  readonly factors: readonly { readonly feature: string; readonly points: number }[];
};

/** One line of the explanation. */
export interface PrivacyFactor {
  /** The feature, in the server's names (`transport_tls`, `dkim_pass`, ...). */
  readonly feature: string;
  /** What it added to (positive) or took from (negative) the score; 0 for facts that did not count. */
  readonly points: number;
  /** Catalog key of the sentence that explains it. */
  readonly labelKey: MessageKey;
  /** Values for the sentence's placeholders. */
  readonly params: Readonly<Record<string, string | number>>;
}

/** Features whose absence is worth saying, each once, when the server did not count them. */
const CONTEXT = ["transport_tls", "dkim_pass", "spf_pass", "dmarc_pass", "encrypted", "signed"] as const;

/** Every factor of a message's privacy index: those that counted (largest first), then the rest. */
export function privacyFactors(p: PrivacyFacts): PrivacyFactor[] {
  const listed = p.factors.map((f) => describe(f.feature, f.points, p));
  const named = new Set(listed.map((f) => f.feature));
  // A DKIM signature line already says what there is to say about DKIM.
  if (named.has("dkim_signature")) named.add("dkim_pass");
  const context = CONTEXT.filter((feature) => !named.has(feature)).map((feature) => describe(feature, 0, p));
  if (p.autocrypt) context.push(describe("autocrypt", 0, p));
  // Not part of the score, but a reader judging who sent it must know.
  if (p.multiple_from) context.push(describe("multiple_from", 0, p));
  // Why a header the reader can see in the source did not count: the sender could have written it.
  if (p.untrusted_headers > 0) context.push(describe("untrusted_headers", 0, p));
  return [...listed, ...context]
    .map((f, i) => ({ f, i }))
    .sort((a, b) => Math.abs(b.f.points) - Math.abs(a.f.points) || a.i - b.i)
    .map(({ f }) => f);
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
    case "known_contact":
      return { feature, points, labelKey: "privacyDetails.knownContact", params: {} };
    case "long_known_contact":
      return { feature, points, labelKey: "privacyDetails.longKnownContact", params: {} };
    case "contact_key":
      return { feature, points, labelKey: "privacyDetails.contactKey", params: {} };
    case "multiple_from":
      return { feature, points, labelKey: "privacyDetails.multipleFrom", params: {} };
    case "untrusted_headers":
      return { feature, points, labelKey: "privacyDetails.untrusted", params: { count: p.untrusted_headers } };
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
