/**
 * axe-core on every screen, in the light and the dark theme: no serious or critical violation.
 */
import { expect, test, type Page } from "@playwright/test";
import { apiAs, discussionId, loadedMailFrames, signIn } from "./app";
import { seriousViolations } from "./axe";
import { address } from "./env";
import { deliver } from "./lmtp";
import { mail, token } from "./mail";

const THEMES = ["light", "dark"] as const;

async function expectNoSeriousViolations(page: Page, screen: string): Promise<void> {
  expect(await seriousViolations(page), `${screen}: serious or critical axe violations`).toEqual([]);
}

let subject = "";

test.beforeAll(async () => {
  subject = `Trip planning ${token("t")}`;
  const to = address("erin");
  await deliver(
    [to],
    mail({
      to,
      from: "Dana Scully <dana@remote.test>",
      subject,
      text: "Shall we book the train?",
      html: '<p>Shall we book the <b>train</b>? <a href="https://trains.example/">Timetable</a></p>',
    }),
  );
});

for (const theme of THEMES) {
  test.describe(`${theme} theme`, () => {
    test.beforeEach(async ({ page }) => {
      await page.emulateMedia({ colorScheme: theme });
    });

    test(`sign-in has no serious accessibility violations (${theme})`, async ({ page }) => {
      await page.goto("/");
      await expect(page.getByRole("button", { name: "Sign in" })).toBeVisible();
      await expectNoSeriousViolations(page, `sign-in (${theme})`);
    });

    test(`discussion list has no serious accessibility violations (${theme})`, async ({ page }) => {
      await signIn(page, "erin");
      await expect(page.getByRole("main").getByText(subject)).toBeVisible();
      await expectNoSeriousViolations(page, `list (${theme})`);
    });

    test(`discussion view has no serious accessibility violations (${theme})`, async ({ page }) => {
      const { api } = await apiAs("erin");
      const id = await discussionId(api, subject);
      await api.dispose();
      await signIn(page, "erin");
      await page.goto(`/#/d/${id}`);
      await expect(page.getByRole("heading", { level: 1, name: subject })).toBeVisible();
      await loadedMailFrames(page);
      await expectNoSeriousViolations(page, `discussion (${theme})`);
    });

    test(`compose has no serious accessibility violations (${theme})`, async ({ page }) => {
      await signIn(page, "erin");
      await page.getByRole("button", { name: "Compose" }).click();
      await expect(page.getByRole("textbox", { name: "Subject" })).toBeVisible();
      await expectNoSeriousViolations(page, `compose (${theme})`);
    });

    test(`search has no serious accessibility violations (${theme})`, async ({ page }) => {
      await signIn(page, "erin");
      await page.getByRole("searchbox", { name: "Search mail" }).fill("train");
      await page.getByRole("searchbox", { name: "Search mail" }).press("Enter");
      await expect(page.getByRole("list", { name: "Search results" })).toBeVisible();
      await expectNoSeriousViolations(page, `search (${theme})`);
    });

    test(`settings has no serious accessibility violations (${theme})`, async ({ page }) => {
      await signIn(page, "erin");
      await page.goto("/#/settings");
      await expect(page.getByRole("heading", { level: 1, name: "Settings" })).toBeVisible();
      await expectNoSeriousViolations(page, `settings (${theme})`);
    });
  });
}
