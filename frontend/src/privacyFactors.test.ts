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
};

const total = (p: PrivacyFacts) => privacyFactors(p).reduce((sum, f) => sum + f.points, 0);
const points = (p: PrivacyFacts) => Object.fromEntries(privacyFactors(p).map((f) => [f.feature, f.points]));

describe("privacyFactors (derived from the view's fields)", () => {
  it("credits TLS and authentication with the server's weights", () => {
    const p = { ...base, privacy_index: 50, transport_tls: true, hops: 2, dkim: "pass", spf: "pass", dmarc: "pass" };
    expect(points(p)).toMatchObject({ transport_tls: 30, dkim_pass: 10, spf_pass: 5, dmarc_pass: 5, encrypted: 0, signed: 0 });
    expect(total(p)).toBe(50);
    expect(privacyFactors(p)[0]).toMatchObject({ feature: "transport_tls", labelKey: "privacyDetails.tls", params: { hops: 2 } });
  });

  it("credits end-to-end encryption and signatures", () => {
    const p = { ...base, privacy_index: 100, transport_tls: true, hops: 1, dkim: "pass", spf: "pass", dmarc: "pass", encrypted: true, signed: true };
    expect(points(p)).toMatchObject({ encrypted: 40, signed: 10 });
    expect(privacyFactors(p)[0]?.feature).toBe("encrypted"); // the largest effect first
  });

  it("takes 30 away for spam, but never below zero", () => {
    const spam = { ...base, privacy_index: 15, transport_tls: true, hops: 1, dkim: "pass", spf: "pass", spam: true };
    expect(points(spam).spam).toBe(-30);
    expect(total(spam)).toBe(15);
    const poor = { ...base, privacy_index: 0, spf: "pass", spam: true };
    expect(points(poor).spam).toBe(-5);
    expect(total(poor)).toBe(0);
  });

  it("says what failed, with the result the relay recorded", () => {
    const f = privacyFactors({ ...base, hops: 3, dkim: "fail" });
    expect(f.find((x) => x.feature === "dkim_pass")).toMatchObject({ points: 0, labelKey: "privacyDetails.dkimResult", params: { result: "fail" } });
    expect(f.find((x) => x.feature === "transport_tls")).toMatchObject({ labelKey: "privacyDetails.noTls", params: { hops: 3 } });
    expect(f.find((x) => x.feature === "spf_pass")?.params).toEqual({ result: "none" });
  });

  it("accounts for what the view does not show, so the lines add up to the score", () => {
    // A DKIM signature the relay did not verify earns 5 on the server, which the view cannot tell.
    const p = { ...base, privacy_index: 35, transport_tls: true, hops: 1 };
    expect(points(p).dkim_signature).toBe(5);
    expect(total(p)).toBe(35);
  });

  it("lists Autocrypt as a fact that does not change the score", () => {
    expect(points({ ...base, autocrypt: true }).autocrypt).toBe(0);
  });
});

describe("privacyFactors (listed by the server)", () => {
  it("uses the server's factors as they are, adding unscored facts for context", () => {
    const p: PrivacyFacts = {
      ...base,
      privacy_index: 35,
      transport_tls: true,
      hops: 1,
      factors: [
        { feature: "transport_tls", points: 30 },
        { feature: "dkim_signature", points: 5 },
      ],
    };
    const f = privacyFactors(p);
    expect(f.slice(0, 2).map((x) => [x.feature, x.points])).toEqual([["transport_tls", 30], ["dkim_signature", 5]]);
    expect(f.some((x) => x.feature === "dkim_pass")).toBe(false); // the signature line covers DKIM
    expect(f.find((x) => x.feature === "encrypted")?.points).toBe(0);
    expect(total(p)).toBe(35);
  });

  it("shows a feature it does not know by its name", () => {
    const f = privacyFactors({ ...base, privacy_index: 5, factors: [{ feature: "known_contact", points: 5 }] });
    expect(f[0]).toMatchObject({ feature: "known_contact", labelKey: "privacyDetails.unknown", params: { feature: "known_contact" } });
  });
});

describe("formatPoints", () => {
  it("signs the points with a real minus sign", () => {
    expect(formatPoints(30)).toBe("+30");
    expect(formatPoints(-30)).toBe("\u221230");
    expect(formatPoints(0)).toBe("0");
  });
});
