import { describe, expect, it } from "vitest";
import { formatPoints, privacyFactors, type PrivacyFacts } from "./privacyFactors";

const base: PrivacyFacts = {
  privacy_index: 0,
  transport_tls: false,
  hops: 0,
  encrypted: false,
  signed: false,
  autocrypt: false,
  spam: false,
  multiple_from: false,
  untrusted_headers: 0,
  sender_authenticated: false,
  factors: [],
};

const lines = (p: PrivacyFacts) => privacyFactors(p).map((f) => [f.feature, f.points, f.labelKey]);

describe("privacyFactors", () => {
  it("lists the server's factors, largest effect first, with a sentence each", () => {
    const p: PrivacyFacts = {
      ...base,
      privacy_index: 50,
      transport_tls: true,
      hops: 2,
      dkim: "pass",
      spf: "pass",
      dmarc: "pass",
      factors: [
        { feature: "transport_tls", points: 30 },
        { feature: "dkim_pass", points: 10 },
        { feature: "spf_pass", points: 5 },
        { feature: "dmarc_pass", points: 5 },
      ],
    };
    expect(lines(p).slice(0, 4)).toEqual([
      ["transport_tls", 30, "privacyDetails.tls"],
      ["dkim_pass", 10, "privacyDetails.dkimPass"],
      ["spf_pass", 5, "privacyDetails.spfPass"],
      ["dmarc_pass", 5, "privacyDetails.dmarcPass"],
    ]);
    expect(privacyFactors(p)[0]?.params).toEqual({ hops: 2 });
  });

  it("puts a penalty among the factors that counted", () => {
    const p: PrivacyFacts = {
      ...base,
      privacy_index: 10,
      spam: true,
      factors: [
        { feature: "encrypted", points: 40 },
        { feature: "spam", points: -30 },
      ],
    };
    expect(lines(p).slice(0, 2)).toEqual([
      ["encrypted", 40, "privacyDetails.encrypted"],
      ["spam", -30, "privacyDetails.spam"],
    ]);
  });

  it("says what did not count, with the result the relay recorded", () => {
    const f = privacyFactors({ ...base, hops: 3, dkim: "fail" });
    expect(f.every((x) => x.points === 0)).toBe(true);
    expect(f.find((x) => x.feature === "transport_tls")).toMatchObject({ labelKey: "privacyDetails.noTls", params: { hops: 3 } });
    expect(f.find((x) => x.feature === "dkim_pass")).toMatchObject({ labelKey: "privacyDetails.dkimResult", params: { result: "fail" } });
    expect(f.find((x) => x.feature === "spf_pass")?.params).toEqual({ result: "none" });
    expect(f.map((x) => x.labelKey)).toContain("privacyDetails.notEncrypted");
    expect(f.map((x) => x.labelKey)).toContain("privacyDetails.notSigned");
    expect(privacyFactors(base).find((x) => x.feature === "transport_tls")?.labelKey).toBe("privacyDetails.tlsUnknown");
  });

  it("does not repeat DKIM when an unverified signature counted", () => {
    const f = privacyFactors({ ...base, privacy_index: 5, factors: [{ feature: "dkim_signature", points: 5 }] });
    expect(f[0]).toMatchObject({ feature: "dkim_signature", labelKey: "privacyDetails.dkimSignature" });
    expect(f.some((x) => x.feature === "dkim_pass")).toBe(false);
  });

  it("lists Autocrypt as a fact that does not change the score", () => {
    expect(privacyFactors({ ...base, autocrypt: true }).find((x) => x.feature === "autocrypt")?.points).toBe(0);
  });

  it("says when a message names more than one sender, without changing the score", () => {
    const f = privacyFactors({ ...base, multiple_from: true }).find((x) => x.feature === "multiple_from");
    expect(f).toMatchObject({ points: 0, labelKey: "privacyDetails.multipleFrom" });
    expect(privacyFactors(base).some((x) => x.feature === "multiple_from")).toBe(false);
  });

  it("says how many headers were not believed, without changing the score", () => {
    const f = privacyFactors({ ...base, untrusted_headers: 3 }).find((x) => x.feature === "untrusted_headers");
    expect(f).toMatchObject({ points: 0, labelKey: "privacyDetails.untrusted", params: { count: 3 } });
    expect(privacyFactors(base).some((x) => x.feature === "untrusted_headers")).toBe(false);
  });

  it("shows a feature it does not know yet by its name", () => {
    const f = privacyFactors({ ...base, privacy_index: 5, factors: [{ feature: "future_rule", points: 5 }] });
    expect(f[0]).toMatchObject({ feature: "future_rule", labelKey: "privacyDetails.unknown", params: { feature: "future_rule" } });
  });
});

describe("formatPoints", () => {
  it("signs the points with a real minus sign", () => {
    expect(formatPoints(30)).toBe("+30");
    expect(formatPoints(-30)).toBe("\u221230");
    expect(formatPoints(0)).toBe("0");
  });
});

describe("social rules", () => {
  it("explain a known contact and their key with a sentence each", () => {
    const p: PrivacyFacts = {
      ...base,
      privacy_index: 20,
      sender_authenticated: true,
      factors: [
        { feature: "known_contact", points: 5 },
        { feature: "long_known_contact", points: 5 },
        { feature: "contact_key", points: 10 },
      ],
    };
    const counted = lines(p).filter(([, points]) => points !== 0);
    expect(counted).toEqual([
      ["contact_key", 10, "privacyDetails.contactKey"],
      ["known_contact", 5, "privacyDetails.knownContact"],
      ["long_known_contact", 5, "privacyDetails.longKnownContact"],
    ]);
  });
});
