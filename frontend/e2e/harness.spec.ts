/**
 * The harness's own detectors, proven able to see what they look for, so that "0 requests" and
 * "no script ran" in the other specs cannot pass because a detector is blind.
 */
import { expect, test } from "@playwright/test";
import { seriousViolations } from "./axe";
import { recorder } from "./env";
import { watchForEscapes } from "./guards";
import { recorded, recordedSince } from "./recorder";

test("@smoke the recording server logs a request from the browser", async ({ page }) => {
  const before = recorded().length;
  await page.goto(`${recorder.https}/harness-probe`);
  const seen = recordedSince(before);
  expect(seen.filter((r) => r.kind === "connect").length).toBeGreaterThan(0);
  expect(seen.filter((r) => r.kind === "request" && r.path === "/harness-probe")).toHaveLength(1);
});

test("@smoke the escape detector sees a script that runs in a same-origin frame, and a dialog", async ({
  page,
}) => {
  const escapes = watchForEscapes(page, "https://app.invalid");
  // What a mail frame would do if it were given allow-scripts next to allow-same-origin.
  await page.setContent(
    `<iframe sandbox="allow-scripts allow-same-origin" srcdoc="<script>top.__pwned='probe'</script>"></iframe>`,
  );
  await expect.poll(async () => (await escapes.report()).flags.length).toBeGreaterThan(0);
  // Sandboxed frames cannot open dialogs (no allow-modals); a script in the app's window can.
  await page.evaluate(() => setTimeout(() => alert("probe"), 0));
  await expect.poll(async () => (await escapes.report()).dialogs).toEqual(["alert: probe"]);
});

test("@smoke the accessibility check reports a critical violation", async ({ page }) => {
  await page.setContent(`<!doctype html><html lang="en"><title>t</title><main><img src="data:,"></main></html>`);
  const rules = (await seriousViolations(page)).map((f) => f.rule);
  expect(rules).toContain("image-alt");
});
