import AxeBuilder from "@axe-core/playwright";
import type { Page } from "@playwright/test";

/** One serious or critical axe-core finding, short enough to read in a test failure. */
export interface Finding {
  readonly rule: string;
  readonly impact: string | null | undefined;
  readonly help: string;
  readonly targets: string[];
}

/** axe-core's serious and critical violations on the page as it is now (WCAG 2.2 AA and best
 * practices). */
export async function seriousViolations(page: Page): Promise<Finding[]> {
  // Not inside the mail frames: their content is the sender's, and with scripts sandboxed off
  // axe cannot run there (the frame element itself is still checked, e.g. for its title).
  // Legacy mode runs axe in the page itself; the default mode finishes in a second page, which
  // never opened next to the discussion view.
  const results = await new AxeBuilder({ page })
    .setLegacyMode(true)
    .options({ iframes: false })
    .withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"])
    .analyze();
  return results.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => ({
      rule: v.id,
      impact: v.impact,
      help: v.help,
      targets: v.nodes.slice(0, 5).map((n) => `${n.target.join(" ")}: ${n.failureSummary ?? ""}`),
    }));
}
