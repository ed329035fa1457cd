/**
 * What `lmtp-ingest/e2e/test_browser.py` tells the specs about the system it started.
 * Missing variables fail loudly: these specs only make sense against that harness.
 */
function required(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === "") {
    throw new Error(`${name} is not set: run the browser tests through lmtp-ingest/e2e/test_browser.py`);
  }
  return value;
}

/** The web client's origin: HAProxy's HTTPS frontend. */
export const baseUrl = required("PALISADE_E2E_BASE_URL");
/** `embedded` or `distributed`. */
export const backend = process.env.PALISADE_E2E_BACKEND ?? "embedded";

const [lmtpHost, lmtpPort] = required("PALISADE_E2E_LMTP").split(":");
/** The daemon's LMTP listener, where Postfix would hand it mail. */
export const lmtp = { host: lmtpHost ?? "127.0.0.1", port: Number(lmtpPort) };

/** Every account's password (they differ by name only). */
export const password = required("PALISADE_E2E_PASSWORD");
const users = JSON.parse(required("PALISADE_E2E_USERS")) as Record<string, string>;

/** The address of one of the accounts the harness created. */
export function address(user: string): string {
  const found = users[user];
  if (found === undefined) throw new Error(`the harness made no user ${user}`);
  return found;
}

/** The recording server on another loopback address: every URL in hostile mail points at it. */
export const recorder = {
  https: required("PALISADE_E2E_RECORDER_HTTPS"),
  http: required("PALISADE_E2E_RECORDER_HTTP"),
  log: required("PALISADE_E2E_RECORDER_LOG"),
};
