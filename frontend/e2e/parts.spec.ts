/**
 * Issue 10 in the browser: every part of a message can be reached ("Message parts", closed at
 * first, each part downloadable with the session's token), a second text part is part of the
 * body, and a message naming two senders shows both with a warning.
 */
import { expect, test } from "@playwright/test";
import { readFile } from "node:fs/promises";
import { discussionLink, signIn } from "./app";
import { address } from "./env";
import { deliver } from "./lmtp";
import { mail, token } from "./mail";

/** Bytes that no text decoding would leave as they are. */
const FILE = Buffer.from([0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff, 0x0d, 0x0a, 0x50, 0x4b, 0x03, 0x04]);

test("every part is reachable and downloadable; two senders are both shown, with a warning", async ({ page }) => {
  const reader = address("heidi");
  const keyword = token("plover");
  const subject = `Quarterly figures ${keyword}`;
  const second = `Second part, only in the parts of ${keyword}.`;
  await deliver(
    [reader],
    mail({
      from: ["Bob Example <bob@remote.test>", "Mallory Knox <mallory@remote.test>"],
      to: reader,
      subject,
      text: `The figures are attached (${keyword}).`,
      parts: [
        { type: "text/plain; charset=utf-8", disposition: "inline", body: second },
        { type: 'application/octet-stream; name="figures.bin"', disposition: 'attachment; filename="figures.bin"', body: FILE },
      ],
    }),
  );

  await signIn(page, "heidi");
  await discussionLink(page, subject).click();
  await expect(page.getByRole("heading", { level: 1, name: subject })).toBeVisible();
  const message = page.getByRole("article", { name: /Bob Example/ });

  await test.step("both senders are named, with a warning", async () => {
    const senders = message.getByRole("heading", { level: 2 });
    await expect(senders).toContainText("Bob Example");
    await expect(senders).toContainText("Mallory Knox");
    await expect(message.getByText(/^From: /)).toContainText("mallory@remote.test");
    await expect(message.getByRole("note")).toHaveText(
      "This message names more than one sender. Only one of them may really have sent it.",
    );
  });

  await test.step("the privacy details say so too", async () => {
    await message.getByRole("button", { name: /^Privacy: / }).click();
    const details = page.getByRole("dialog", { name: "Privacy details" });
    await expect(details).toContainText("Names more than one sender");
    await page.keyboard.press("Escape");
    await expect(details).toBeHidden();
  });

  await test.step("the second text part is in the body", async () => {
    await expect(message.getByText(second)).toBeVisible();
  });

  const parts = message.getByRole("list", { name: "Message parts" });
  await test.step("Message parts is closed at first, and lists the tree once opened", async () => {
    await expect(parts).toBeHidden();
    await message.locator("summary", { hasText: "Message parts" }).click();
    await expect(parts).toBeVisible();
    await expect(parts).toContainText("multipart/mixed");
    // Both text parts are shown in the body; the file is the attachment. The container has no
    // download of its own.
    await expect(parts.getByText("shown above", { exact: true })).toHaveCount(2);
    await expect(parts.getByText("attachment", { exact: true })).toHaveCount(1);
    await expect(message.locator("summary", { hasText: "Message parts" })).toHaveText("Message parts (4)");
    await expect(parts.getByRole("button", { name: /^Download / })).toHaveCount(3);
  });

  await test.step("a part downloads with its exact bytes", async () => {
    const download = page.waitForEvent("download");
    await parts.getByRole("button", { name: "Download figures.bin" }).click();
    const file = await download;
    expect(file.suggestedFilename()).toBe("figures.bin");
    expect([...(await readFile(await file.path()))]).toEqual([...FILE]);
  });

  await test.step("so does a text part that is no attachment", async () => {
    const download = page.waitForEvent("download");
    await parts.getByRole("button", { name: /^Download part \d+ \(text\/plain\)$/ }).last().click();
    const file = await download;
    expect(file.suggestedFilename()).toMatch(/^part-\d+$/);
    expect((await readFile(await file.path())).toString("utf8")).toContain(second);
  });
});
