import { describe, expect, it } from "vitest";
import { en } from "./en";
import { fr } from "./fr";
import { format, pickLocale } from "./index";

const placeholders = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

describe("catalogs", () => {
  it("fr has every en key, and no other", () => {
    expect(Object.keys(fr).sort()).toEqual(Object.keys(en).sort());
  });

  it("fr translates every string (none empty)", () => {
    for (const [key, value] of Object.entries(fr)) {
      expect(value.trim(), key).not.toBe("");
    }
  });

  it("fr uses the same placeholders as en", () => {
    for (const key of Object.keys(en) as (keyof typeof en)[]) {
      expect(placeholders(fr[key]), key).toEqual(placeholders(en[key]));
    }
  });

  it("plural messages have both forms", () => {
    for (const key of Object.keys(en)) {
      if (key.endsWith(".one")) expect(Object.keys(en)).toContain(key.replace(/\.one$/, ".other"));
    }
  });

  it("has the session-ended message the issue asks for", () => {
    expect(en["session.expired"]).toBe("Your session ended. Please sign in again.");
  });
});

describe("locale and formatting", () => {
  it("picks French from the browser's preferences, English otherwise", () => {
    expect(pickLocale(["fr-CA", "en"])).toBe("fr");
    expect(pickLocale(["de-DE", "fr"])).toBe("fr");
    expect(pickLocale(["en-GB", "fr"])).toBe("en");
    expect(pickLocale(["de"])).toBe("en");
    expect(pickLocale([])).toBe("en");
  });

  it("fills placeholders and leaves unknown ones alone", () => {
    expect(format("{a} and {b}", { a: 1 })).toBe("1 and {b}");
  });
});
