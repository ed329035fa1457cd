/**
 * Users bring their mail in: the settings screen uploads an mbox with the session's token,
 * follows the import to its end and shows the report, and the mail is then in the mailbox. A
 * message with no header section is reported and stored as received; a file that is not an
 * mbox gets the server's reason.
 */
import { expect, test } from "@playwright/test";
import { signIn } from "./app";
import { seriousViolations } from "./axe";
import { token } from "./mail";

/** An mboxrd file of `messages`, each `From ` line of a body escaped. */
function mboxrd(messages: readonly string[]): Buffer {
  const escaped = messages.map(
    (m, i) => `From sender${i}@old.example Thu Nov 12 10:0${i}:00 2026\n${m.replace(/^(>*From )/gm, ">$1")}\n`,
  );
  return Buffer.from(escaped.join(""));
}

test("an mbox uploaded from the settings screen is imported with a report", async ({ page }) => {
  const keyword = token("import");
  const subjects = [`Old trip plans ${keyword}`, `Old receipts ${keyword}`];
  const mbox = mboxrd([
    `From: Old Friend <friend@old.example>\nSubject: ${subjects[0]}\nDate: Thu, 12 Nov 2026 10:00:00 +0000\n\nFrom the station, turn left.\n`,
    `From: Shop <shop@old.example>\nSubject: ${subjects[1]}\nDate: Thu, 12 Nov 2026 10:01:00 +0000\n\nThank you.\n`,
    `just some words ${keyword}\nwith no header section\n`,
  ]);

  await signIn(page, "leo");
  await page.goto("/#/settings");
  const section = page.getByRole("region", { name: "Your data" }).getByRole("region", { name: "Import a mailbox (mbox)" });
  await section.getByLabel("Mailbox file (mbox)").setInputFiles({ name: "old.mbox", mimeType: "application/mbox", buffer: mbox });
  await section.getByRole("button", { name: "Import", exact: true }).click();

  await expect(section.getByRole("status")).toHaveText("Import finished.");
  const report = section.getByRole("region", { name: "Import report" });
  await expect(report.getByRole("definition")).toHaveText(["3", "3", "1", "0"]);
  const problems = report.getByRole("list", { name: "Messages to look at" });
  await expect(problems.getByRole("listitem")).toHaveCount(1);
  await expect(problems.getByRole("listitem")).toContainText("stored raw: no header section found");
  expect(await seriousViolations(page), "the settings screen with an import report").toEqual([]);

  await page.goto("/#/");
  for (const subject of subjects) await expect(page.getByRole("main").getByText(subject)).toBeVisible();
});

test("a file that is not an mbox is refused with the server's reason", async ({ page }) => {
  await signIn(page, "leo");
  await page.goto("/#/settings");
  const section = page.getByRole("region", { name: "Your data" }).getByRole("region", { name: "Import a mailbox (mbox)" });
  await section.getByRole("button", { name: "Import", exact: true }).click();
  await expect(section.getByRole("alert")).toHaveText("The import failed: Choose an mbox file first.");

  await section.getByLabel("Mailbox file (mbox)").setInputFiles({
    name: "message.eml",
    mimeType: "message/rfc822",
    buffer: Buffer.from("Subject: one message\n\nNot an mbox.\n"),
  });
  await section.getByRole("button", { name: "Import", exact: true }).click();
  await expect(section.getByRole("alert")).toContainText("not an mbox file");
});
