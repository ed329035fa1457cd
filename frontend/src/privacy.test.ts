import { describe, expect, it } from "vitest";
import { en } from "./i18n/en";
import { fr } from "./i18n/fr";
import { privacyLevel } from "./privacy";

describe("privacy index bands", () => {
  it.each([
    [0, "low"],
    [24, "low"],
    [25, "fair"],
    [49, "fair"],
    [50, "good"],
    [74, "good"],
    [75, "strong"],
    [100, "strong"],
  ] as const)("%i is %s", (score, band) => {
    expect(privacyLevel(score).band).toBe(band);
  });

  it("covers every score 0–100 with a band whose label exists in both catalogs", () => {
    let previous = -1;
    const order = ["low", "fair", "good", "strong"];
    for (let score = 0; score <= 100; score++) {
      const level = privacyLevel(score);
      expect(level.score).toBe(score);
      expect(level.labelKey).toBe(`privacy.${level.band}`);
      expect(en[level.labelKey]).toBeTruthy();
      expect(fr[level.labelKey]).toBeTruthy();
      // Bands never go down as the score goes up.
      const rank = order.indexOf(level.band);
      expect(rank).toBeGreaterThanOrEqual(previous);
      previous = rank;
    }
  });

  it("clamps and rounds out-of-range or odd input", () => {
    expect(privacyLevel(-5)).toMatchObject({ score: 0, band: "low" });
    expect(privacyLevel(250)).toMatchObject({ score: 100, band: "strong" });
    expect(privacyLevel(74.6)).toMatchObject({ score: 75, band: "strong" });
    expect(privacyLevel(Number.NaN)).toMatchObject({ score: 0, band: "low" });
  });
});
