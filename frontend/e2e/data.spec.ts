/**
 * Users own their data: the settings screen downloads the whole mailbox as an mbox and its
 * metadata as JSON, with the session's token, and both hold the user's mail.
 */
import { expect, test } from "@playwright/test";
import { readFile } from "node:fs/promises";
import { signIn } from "./app";
import { address } from "./env";
import { deliver } from "./lmtp";
import { mail, token } from "./mail";

test("the settings screen downloads the mailbox and its metadata", async ({ page }) => {
  const reader = address("heidi");
  const keyword = token("export");
  const subject = `Keep a copy ${keyword}`;
  await deliver([reader], mail({ from: "Bob Example <bob@remote.test>", to: reader, subject, text: `From here on, ${keyword}.` }));

  await signIn(page, "heidi");
  await page.goto("/#/settings");
  const section = page.getByRole("region", { name: "Your data" });
  await expect(section).toBeVisible();

  const [mbox] = await Promise.all([
    page.waitForEvent("download"),
    section.getByRole("button", { name: "Download mailbox (mbox)" }).click(),
  ]);
  expect(mbox.suggestedFilename()).toBe("palisade-mailbox.mbox");
  const text = await readFile(await mbox.path(), "utf8");
  expect(text.startsWith("From ")).toBe(true);
  expect(text).toContain(`Subject: ${subject}`);
  // mboxrd: a body line starting with "From " is escaped once.
  expect(text).toContain(`>From here on, ${keyword}.`);
  // The import below has a status line of its own.
  await expect(section.getByRole("status").filter({ hasText: /^Download ready\.$/ })).toBeVisible();

  const [metadata] = await Promise.all([
    page.waitForEvent("download"),
    section.getByRole("button", { name: /Download flags, tags and contacts/ }).click(),
  ]);
  const meta = JSON.parse(await readFile(await metadata.path(), "utf8")) as { format: string; messages: unknown[] };
  expect(meta.format).toBe("palisade-export/1");
  expect(meta.messages.length).toBeGreaterThan(0);
});
