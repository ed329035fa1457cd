import { expect, type Locator, type Page } from "@playwright/test";
import { readFileSync } from "node:fs";

/** Undo-send waits this long in the browser tests (UI contract: `palisade.undoSeconds`). */
export const UNDO_SECONDS = "1";

/** Shortens the undo-send delay for every page of the context, before the app reads it. */
export async function shortenUndo(page: Page): Promise<void> {
  await page.addInitScript((seconds) => {
    window.localStorage.setItem("palisade.undoSeconds", seconds);
  }, UNDO_SECONDS);
}

/** The compose form (UI contract: a form named "Compose"). */
export function composeForm(page: Page): Locator {
  return page.getByRole("form", { name: "Compose" });
}

/** Presses Tab until `target` has the focus: reaching a control with the keyboard alone. */
export async function tabTo(page: Page, target: Locator, maxPresses = 60): Promise<void> {
  for (let i = 0; i < maxPresses; i++) {
    if (await target.evaluate((el) => el === document.activeElement)) return;
    await page.keyboard.press("Tab");
  }
  throw new Error(`${String(target)} never got the focus after ${maxPresses} Tab presses`);
}

/** Waits until `user`'s mailbox holds a message with this subject, which only the relay
 * (Postfix, delivering over LMTP) can have put there; returns the message. */
export async function receivedThroughRelay(
  api: import("@playwright/test").APIRequestContext,
  subject: string,
): Promise<{ id: string; attachments: { file_name?: string | null }[] }> {
  let found: { id: string } | undefined;
  await expect(async () => {
    const r = await api.get("/api/v1/messages?limit=100");
    expect(r.status()).toBe(200);
    const { items } = (await r.json()) as { items: { id: string; subject?: string | null }[] };
    found = items.find((m) => m.subject === subject);
    expect(found, `a message "${subject}" delivered by the relay`).toBeDefined();
  }).toPass();
  const view = await api.get(`/api/v1/messages/${found?.id ?? ""}`);
  expect(view.status()).toBe(200);
  const message = (await view.json()) as { id: string; attachments: { file_name?: string | null }[] };
  // Postfix (myhostname mx.palisade-test.localhost) stamped it on the way.
  const raw = await (await api.get(`/api/v1/messages/${message.id}/raw`)).text();
  const unfolded = raw.replace(/\r?\n[ \t]+/g, " ");
  expect(unfolded).toMatch(/^Received: from .* by mx\.palisade-test\.localhost \(Postfix\)/m);
  return message;
}

/** Postfix's own log says it delivered to `rcpt` (status=sent). */
export function relayLogShowsSent(rcpt: string): boolean {
  const log = process.env.PALISADE_E2E_RELAY_LOG;
  if (!log) throw new Error("PALISADE_E2E_RELAY_LOG is not set");
  return readFileSync(log, "utf8")
    .split("\n")
    .some((line) => line.includes(`to=<${rcpt}>`) && line.includes("status=sent"));
}

