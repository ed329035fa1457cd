/**
 * "Always load remote content": from the blocked-content bar of an authenticated message, for its
 * sender's domain; the image then comes through the server's proxy, on this and later visits,
 * and the setting is listed in Settings, where removing it blocks the content again. Mail from
 * the same domain that failed authentication offers no such button and stays blocked.
 * Screenshots of the bar and of the Settings list, light and dark, go to `docs/screenshots/`.
 */
import { expect, test, type Page } from "@playwright/test";
import { mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { discussionLink, loadedMailFrames, signIn } from "./app";
import { address, recorder } from "./env";
import { deliver } from "./lmtp";
import { mail, token } from "./mail";
import { recordedSince, recorded } from "./recorder";

const DIR = process.env.PALISADE_SCREENSHOTS_DIR ?? fileURLToPath(new URL("../../docs/screenshots/", import.meta.url));

/** What our MTA (the daemon's configured authserv-id) writes on mail it authenticated. */
const ENTRY =
  "Received: from mx.shop.example (mx.shop.example [192.0.2.1]) by mx.example.test with ESMTPS id 1;" +
  " Mon, 30 Nov 2026 10:00:00 +0000\n";
const PASSED =
  ENTRY +
  "Authentication-Results: mx.example.test; dkim=pass header.d=shop.example;" +
  " spf=pass smtp.mailfrom=shop.example; dmarc=pass header.from=shop.example\n";
const FAILED = ENTRY + "Authentication-Results: mx.example.test; dkim=fail; spf=fail; dmarc=fail\n";

async function shoot(page: Page, name: string): Promise<void> {
  mkdirSync(DIR, { recursive: true });
  await page.screenshot({ path: `${DIR}/${name}.png`, caret: "hide", animations: "disabled" });
}

function newsletter(subject: string, image: string): string {
  return mail({
    from: "Shop News <news@shop.example>",
    to: address("judy"),
    subject,
    html: `<h2>Winter sale</h2><p>Everything in the shop is 20% off this week.</p>
<img src="${recorder.http}/${image}" alt="Sale banner" width="240" height="120">
<img src="${recorder.http}/open-${image}" width="1" height="1" alt="">`,
  });
}

for (const theme of ["light", "dark"] as const) {
  test(`always load remote content from an authenticated domain (${theme})`, async ({ page }) => {
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.emulateMedia({ colorScheme: theme });
    const subject = token("Winter sale ");
    const forged = token("Forged sale ");
    const image = `${token("banner-")}.png`;
    await deliver([address("judy")], PASSED + newsletter(subject, image));
    await deliver([address("judy")], FAILED + newsletter(forged, `forged-${image}`));
    const before = recorded().length;
    const fetched = (path: string) =>
      recordedSince(before).filter((r) => r.kind === "request" && r.path === `/${path}`).length;

    await signIn(page, "judy");
    await discussionLink(page, forged).click();
    await loadedMailFrames(page);
    await expect(page.getByText(/Remote content blocked: 2 items?, 1 trackers?/)).toBeVisible();
    await expect(page.getByRole("button", { name: /^Always load from/ })).toHaveCount(0);

    await page.goto("/");
    await discussionLink(page, subject).click();
    await loadedMailFrames(page);
    const bar = page.getByRole("status").filter({ hasText: "Remote content blocked" });
    await expect(bar.getByRole("button", { name: "Always load from news@shop.example" })).toBeVisible();
    await expect(bar.getByRole("button", { name: "Always load from shop.example" })).toBeVisible();
    await shoot(page, `remote-bar-${theme}`);
    expect(fetched(image), "nothing is fetched before the reader asks").toBe(0);

    await bar.getByRole("button", { name: "Always load from shop.example" }).click();
    await expect(page.getByText("Remote content is shown for this message.")).toBeVisible();
    await expect.poll(() => fetched(image)).toBeGreaterThan(0);

    // A later visit loads it by itself, and says why.
    await page.reload();
    await expect(page.getByText("Remote content is shown: you always load it from shop.example.")).toBeVisible();
    await expect(
      page.frameLocator('iframe[title="Message content"]').first().getByRole("img", { name: "Sale banner" }),
    ).toHaveJSProperty("naturalWidth", 1);

    // The forged copy from the same domain is still blocked.
    await page.goto("/");
    await discussionLink(page, forged).click();
    await loadedMailFrames(page);
    await expect(page.getByText(/Remote content blocked/)).toBeVisible();
    expect(fetched(`forged-${image}`)).toBe(0);

    await page.goto("/#/settings");
    const section = page.getByRole("region", { name: "Remote content" });
    await expect(section.getByText("Domain shop.example")).toBeVisible();
    await section.scrollIntoViewIfNeeded();
    await shoot(page, `settings-remote-${theme}`);
    await section.getByRole("button", { name: "Stop always loading remote content from shop.example" }).click();
    await expect(section.getByText("You load remote content only when you ask for it.")).toBeVisible();

    await page.goto("/");
    await discussionLink(page, subject).click();
    await loadedMailFrames(page);
    await expect(page.getByText(/Remote content blocked/)).toBeVisible();
  });
}
