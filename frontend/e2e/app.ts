import { expect, request, type APIRequestContext, type Locator, type Page } from "@playwright/test";
import { address, baseUrl, password } from "./env";

/** Signs `user` in through the sign-in form and waits for the inbox. */
export async function signIn(page: Page, user: string): Promise<void> {
  await page.goto("/");
  await page.getByRole("textbox", { name: "Email address or user name" }).fill(address(user));
  await page.getByRole("textbox", { name: "Password" }).fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("heading", { level: 1, name: "Inbox" })).toBeVisible();
}

/** The app's main landmark. */
export function main(page: Page): Locator {
  return page.getByRole("main");
}

/** The discussion list (UI contract: a list or grid named "Discussions, newest first"). */
export function discussionList(page: Page): Locator {
  return page.getByRole("list", { name: "Discussions, newest first" }).or(
    page.getByRole("grid", { name: "Discussions, newest first" }),
  );
}

/** The link that opens a discussion, found by its subject. */
export function discussionLink(page: Page, subject: string): Locator {
  return discussionList(page).getByRole("link", { name: new RegExp(`^${escapeRegExp(subject)}`) });
}

/** Every mail frame of the discussion view, once each has finished loading (all its
 * subresources included: a request it made has reached its server by then). */
export async function loadedMailFrames(page: Page): Promise<number> {
  const frames = page.locator('iframe[title="Message content"]');
  await expect(frames.first()).toBeAttached();
  const count = await frames.count();
  for (let i = 0; i < count; i++) {
    const handle = await frames.nth(i).elementHandle();
    const frame = await handle?.contentFrame();
    if (!frame) throw new Error(`mail frame ${i} has no document`);
    await frame.waitForLoadState("load");
  }
  return count;
}

/** An API client signed in as `user`, through HAProxy like the browser. */
export async function apiAs(user: string): Promise<{ api: APIRequestContext; token: string }> {
  const api = await request.newContext({ baseURL: baseUrl, ignoreHTTPSErrors: true });
  const login = await api.post("/api/v1/auth/login", { data: { address: address(user), password } });
  expect(login.status(), await login.text()).toBe(200);
  const { token } = (await login.json()) as { token: string };
  const authed = await request.newContext({
    baseURL: baseUrl,
    ignoreHTTPSErrors: true,
    extraHTTPHeaders: { Authorization: `Bearer ${token}` },
  });
  await api.dispose();
  return { api: authed, token };
}

interface DiscussionItem {
  readonly id: string;
  readonly subject?: string | null;
}

/** The id of `user`'s discussion with this subject, once it exists. */
export async function discussionId(api: APIRequestContext, subject: string): Promise<string> {
  let id: string | undefined;
  await expect(async () => {
    const r = await api.get("/api/v1/discussions?limit=100");
    expect(r.status()).toBe(200);
    const { items } = (await r.json()) as { items: DiscussionItem[] };
    id = items.find((d) => d.subject === subject)?.id;
    expect(id, `discussion ${subject}`).toBeDefined();
  }).toPass();
  return id ?? "";
}

export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
