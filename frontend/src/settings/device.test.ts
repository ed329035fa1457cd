import { describe, expect, it } from "vitest";
import { deviceName } from "./device";

describe("device names from user agents", () => {
  it("name the browser and system of common user agents", () => {
    expect(
      deviceName({
        user_agent:
          "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36",
      }),
    ).toBe("Chromium on Linux");
    expect(deviceName({ user_agent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:145.0) Gecko/20100101 Firefox/145.0" })).toBe(
      "Firefox on Windows",
    );
    expect(
      deviceName({
        user_agent:
          "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
      }),
    ).toBe("Safari on iOS");
  });

  it("show other clients as they call themselves, and say when there is nothing", () => {
    expect(deviceName({ user_agent: "curl/8.5.0" })).toBe("curl/8.5.0");
    expect(deviceName({})).toBe("Unknown device");
    expect(deviceName({ user_agent: "x".repeat(100) })).toBe(`${"x".repeat(60)}…`);
  });
});
