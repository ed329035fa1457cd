/**
 * Live updates close the gap between the list's first load and the event stream's subscription:
 * mail delivered in between must still appear without a reload. The stream's request is held
 * back here until after the delivery, which is the race a slow stream open loses in real use.
 */
import { expect, test } from "@playwright/test";
import { discussionLink, signIn } from "./app";
import { address } from "./env";
import { deliver } from "./lmtp";
import { mail, token } from "./mail";

test("mail delivered before the event stream opens still appears without a reload", async ({ page }) => {
  const reader = address("ivan");
  const subject = `Before the stream ${token("gap")}`;
  let release = (): void => undefined;
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  let streams = 0;
  await page.route("**/api/v1/events", async (route) => {
    streams += 1;
    await held;
    await route.continue();
  });
  let loads = 0;
  page.on("load", () => loads++);

  // The list's first load must be answered before the delivery; on a loaded machine it may
  // otherwise reach the server after it, and list the message by itself.
  const firstList = page.waitForResponse(
    (r) => r.request().method() === "GET" && new URL(r.url()).pathname === "/api/v1/discussions",
  );
  await signIn(page, "ivan");
  await firstList;
  await expect.poll(() => streams, { message: "the client asked for the event stream" }).toBeGreaterThan(0);
  const loadsBefore = loads;
  await deliver([reader], mail({ from: "Bob Example <bob@remote.test>", to: reader, subject, text: "In the gap." }));
  // The list was loaded before the delivery, and no event for it will ever be sent.
  await expect(discussionLink(page, subject)).toHaveCount(0);
  release();
  await expect(discussionLink(page, subject)).toBeVisible();
  expect(loads, "the page was not reloaded").toBe(loadsBefore);
});
