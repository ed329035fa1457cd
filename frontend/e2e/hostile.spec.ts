/**
 * The hostile HTML corpus (`e2e/hostile/*.eml`, written by hand): each mail is delivered over
 * LMTP and opened in the discussion view. No script may run (no `__pwned` flag in any frame, no
 * dialog, no popup) and no request may leave the page: every URL in the corpus points at the
 * recording server on 127.0.0.2, which must see nothing, and Chromium must request nothing
 * outside the app's origin.
 *
 * Placeholders in the files: {{R}} the recorder's https origin, {{RH}} its plain http origin,
 * {{RHOST}} its host:port, {{TO}}, {{SUBJECT}}, {{MSGID}}; {{BASE64}}…{{/BASE64}} is encoded.
 */
import { expect, test } from "@playwright/test";
import { readFileSync, readdirSync } from "node:fs";
import { apiAs, discussionId, loadedMailFrames, signIn } from "./app";
import { address, baseUrl, recorder } from "./env";
import { NOTHING_ESCAPED, watchForEscapes } from "./guards";
import { deliver } from "./lmtp";
import { token } from "./mail";
import { recorded, recordedSince } from "./recorder";

const CORPUS = new URL("./hostile/", import.meta.url);
const FILES = readdirSync(CORPUS).filter((f) => f.endsWith(".eml")).sort();

/** The mail of `file`, addressed to `to` under `subject`, every URL aimed at the recorder. */
function hostileMail(file: string, to: string, subject: string): string {
  const text = readFileSync(new URL(file, CORPUS), "utf8")
    .replaceAll("{{R}}", recorder.https)
    .replaceAll("{{RH}}", recorder.http)
    .replaceAll("{{RHOST}}", new URL(recorder.https).host)
    .replaceAll("{{TO}}", to)
    .replaceAll("{{SUBJECT}}", subject)
    .replaceAll("{{MSGID}}", `${token("hostile")}@remote.test`);
  return text.replace(/\{\{BASE64\}\}\n([\s\S]*?)\n\{\{\/BASE64\}\}/, (_, html: string) =>
    (Buffer.from(html).toString("base64").match(/.{1,76}/g) ?? []).join("\n"),
  );
}

test("the corpus has at least 15 hostile mails", () => {
  expect(FILES.length).toBeGreaterThanOrEqual(15);
});

for (const file of FILES) {
  test(`hostile mail ${file}: no script runs and nothing leaves the page`, async ({ page }) => {
    const to = address("bob");
    const subject = `Hostile ${file.replace(/\.eml$/, "")} ${token("h")}`;
    await deliver([to], hostileMail(file, to, subject), "hostile@remote.test");
    const { api } = await apiAs("bob");
    const id = await discussionId(api, subject);
    await api.dispose();

    const escapes = watchForEscapes(page, new URL(baseUrl).origin);
    await signIn(page, "bob");
    const before = recorded().length;
    await page.goto(`/#/d/${id}`);
    await expect(page.getByRole("heading", { level: 1, name: subject })).toBeVisible();
    const frames = await loadedMailFrames(page);
    expect(frames).toBeGreaterThan(0);
    for (const frame of await page.locator('iframe[title="Message content"]').all()) {
      const sandbox = await frame.getAttribute("sandbox");
      expect(sandbox, "mail frames are sandboxed").not.toBeNull();
      expect((sandbox ?? "").split(/\s+/)).not.toContain("allow-scripts");
      expect(await frame.getAttribute("referrerpolicy")).toBe("no-referrer");
    }

    expect(await escapes.report()).toEqual(NOTHING_ESCAPED);
    expect(recordedSince(before), "connections and requests that reached the recording server").toEqual([]);
  });
}
