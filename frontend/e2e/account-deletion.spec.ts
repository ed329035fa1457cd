/**
 * Deleting the account from the settings screen: it asks for the password and a confirming
 * tick, refuses a wrong password, and once it succeeds the tab is signed out, the account
 * cannot sign in again, and its address refuses mail.
 */
import { expect, test } from "@playwright/test";
import { signIn } from "./app";
import { seriousViolations } from "./axe";
import { address, password } from "./env";
import { deliver } from "./lmtp";
import { mail, token } from "./mail";

test("the settings screen deletes the account after the password and a confirmation", async ({ page }) => {
  const leaving = address("olga");
  const keyword = token("delete");
  await deliver([leaving], mail({ from: "Bob Example <bob@remote.test>", to: leaving, subject: `Gone soon ${keyword}`, text: keyword }));

  await signIn(page, "olga");
  await page.goto("/#/settings");
  const form = page.getByRole("form", { name: "Delete account" });
  await expect(form).toBeVisible();
  expect(await seriousViolations(page), "settings: serious or critical axe violations").toEqual([]);
  const submit = form.getByRole("button", { name: "Delete my account" });

  await submit.click();
  await expect(form.getByRole("alert")).toHaveText("Enter your password and tick the box to confirm.");

  await form.getByLabel("Password").fill("not the password");
  await form.getByRole("checkbox", { name: /cannot be recovered/ }).check();
  await submit.click();
  await expect(form.getByRole("alert")).toHaveText("The password is wrong.");

  await form.getByLabel("Password").fill(password);
  await submit.click();
  await expect(page.getByRole("heading", { level: 1, name: "Sign in to Palisade" })).toBeVisible();
  await expect(page.getByText("Your account was deleted, with all of its mail.")).toBeVisible();

  await page.getByRole("textbox", { name: "Email address or user name" }).fill(leaving);
  await page.getByRole("textbox", { name: "Password" }).fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("alert")).toContainText("Sign-in failed");

  await expect(deliver([leaving], mail({ from: "bob@remote.test", to: leaving, subject: "too late", text: "x" }))).rejects.toThrow(/5\.1\.1/);
});
