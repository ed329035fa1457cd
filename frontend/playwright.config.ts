import { defineConfig, devices } from "@playwright/test";

/**
 * Browser tests of the web client in real Chromium. They are started by
 * `lmtp-ingest/e2e/test_browser.py`, which brings up the daemon behind HAProxy (the shipped
 * config), Postfix as the relay and a recording web server, and passes them in PALISADE_E2E_*
 * variables (see e2e/env.ts). Debian's Chromium is used; `playwright install` never runs.
 */
export default defineConfig({
  testDir: "e2e",
  outputDir: "test-results",
  // One browser at a time: the machine is small, and the specs share one daemon.
  workers: 1,
  fullyParallel: false,
  forbidOnly: !!process.env.CI,
  retries: 0,
  reporter: [["list"]],
  // A ceiling against hangs, not a measure: the scenario waits on delivery, the relay and
  // indexing, which take longer on the distributed backend and a busy 2-core machine.
  timeout: 180_000,
  // Retried blocks (search until the index has caught up) give up well before that.
  expect: { toPass: { timeout: 90_000 } },
  use: {
    baseURL: process.env.PALISADE_E2E_BASE_URL,
    locale: "en-US",
    // HAProxy serves a throwaway self-signed certificate made for this run (and the recording
    // server another one); there is no CA to install into Debian's Chromium profile, so the
    // test browser accepts them. Everything else about TLS is HAProxy's real configuration.
    ignoreHTTPSErrors: true,
    // Ceilings, so that a control that is missing fails its test instead of hanging it until
    // the test's own limit; Playwright still waits for actionability within them.
    actionTimeout: 30_000,
    navigationTimeout: 30_000,
    screenshot: "only-on-failure",
    trace: "retain-on-failure",
  },
  projects: [
    {
      name: "chromium",
      use: {
        ...devices["Desktop Chrome"],
        launchOptions: {
          executablePath: process.env.PALISADE_CHROMIUM ?? "/usr/bin/chromium",
          // Playwright already passes --no-sandbox unless `chromiumSandbox` is set, which is
          // what running as root (CI) needs; nothing else is added.
        },
      },
    },
  ],
});
