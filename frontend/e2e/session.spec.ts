/**
 * Sign in, the discussion list, sign out, a revoked session, and the page's security headers:
 * what the web client has today, through HAProxy's TLS frontend.
 */
import { expect, test } from "@playwright/test";
import { apiAs, main, signIn } from "./app";
import { address, password } from "./env";
import { deliver } from "./lmtp";
import { mail, token } from "./mail";

test("@smoke signing in shows the inbox with delivered mail", async ({ page }) => {
  const subject = `Quarterly figures ${token("q")}`;
  await deliver([address("carol")], mail({ to: address("carol"), subject, text: "Numbers attached." }));
  await signIn(page, "carol");
  await expect(main(page).getByText(subject)).toBeVisible();
  await expect(page.getByRole("button", { name: "Sign out" })).toBeVisible();
});

test("a wrong password is refused with a reason and no session", async ({ page }) => {
  await page.goto("/");
  await page.getByRole("textbox", { name: "Email address or user name" }).fill(address("carol"));
  await page.getByRole("textbox", { name: "Password" }).fill(`${password} but wrong`);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("alert")).toContainText("Sign-in failed");
  await expect(page.getByRole("heading", { level: 1, name: "Inbox" })).toHaveCount(0);
});

test("@smoke signing out returns to sign-in and forgets the session", async ({ page }) => {
  await signIn(page, "carol");
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page.getByRole("button", { name: "Sign in" })).toBeVisible();
  await expect(page.getByRole("status")).toHaveText("You are signed out.");
  await page.reload();
  await expect(page.getByRole("button", { name: "Sign in" })).toBeVisible();
  await expect(page.getByRole("heading", { level: 1, name: "Inbox" })).toHaveCount(0);
});

test("a revoked session is signed out at its next request with a clear message", async ({ page }) => {
  // frank is this test's alone: another spec signing in as frank would leave a session to count.
  await signIn(page, "frank");
  // Revoke the browser's session from another one (the API a settings screen uses).
  const { api } = await apiAs("frank");
  const sessions = (await (await api.get("/api/v1/auth/sessions")).json()) as { id: string; current: boolean }[];
  const others = sessions.filter((s) => !s.current);
  expect(others).toHaveLength(1);
  for (const s of others) expect((await api.delete(`/api/v1/auth/sessions/${s.id}`)).status()).toBe(204);
  await api.dispose();

  // Revoking a session ends its event stream, and the page's reconnect is its next request:
  // it usually signs the page out at once, and a reload either makes that request or finds the
  // reason kept in the tab's storage. Either way the page must say why.
  const ended = page.getByText("Your session ended. Please sign in again.");
  await page.reload();
  await expect(ended).toBeVisible();
  await expect(page.getByRole("button", { name: "Sign in" })).toBeVisible();
});

test("@smoke the app is served through HAProxy under a strict CSP that the browser enforces", async ({ page }) => {
  const response = await page.goto("/");
  expect(response?.status()).toBe(200);
  const headers = response?.headers() ?? {};
  const csp = headers["content-security-policy"] ?? "";
  for (const directive of ["script-src 'self'", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"]) {
    expect(csp).toContain(directive);
  }
  expect(csp).not.toContain("unsafe-inline");
  expect(headers["strict-transport-security"]).toBeTruthy();

  // An inline script put into the page does not run: the policy is in force, not just sent.
  const violations: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") violations.push(m.text());
  });
  const ran = await page.evaluate(async () => {
    const script = document.createElement("script");
    script.textContent = "window.__pwned = 'inline script ran';";
    const blocked = new Promise<string>((resolve) =>
      document.addEventListener("securitypolicyviolation", (e) => resolve(e.violatedDirective), { once: true }),
    );
    document.head.append(script);
    return { directive: await blocked, flag: window.__pwned };
  });
  expect(ran.flag).toBeUndefined();
  expect(ran.directive).toMatch(/^script-src/);

  // The hashed bundle comes through HAProxy too, cached for good.
  const asset = await page.locator('script[type="module"]').first().getAttribute("src");
  expect(asset).toMatch(/^\/assets\//);
  const bundle = await page.request.get(asset ?? "");
  expect(bundle.status()).toBe(200);
  expect(bundle.headers()["cache-control"]).toContain("immutable");
});
