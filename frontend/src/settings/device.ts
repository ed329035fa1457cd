import { t } from "../i18n";

/** A readable device name from a user agent: "Firefox on Linux", or the raw text. */
export function deviceName(s: { readonly user_agent?: string }): string {
  const ua = s.user_agent ?? "";
  if (ua.trim() === "") return t("settings.unknownDevice");
  const browser = /Edg\//.test(ua)
    ? "Edge"
    : /Firefox\//.test(ua)
      ? "Firefox"
      : /Chrom(e|ium)\//.test(ua)
        ? "Chromium"
        : /Safari\//.test(ua)
          ? "Safari"
          : null;
  const os = /Android/.test(ua)
    ? "Android"
    : /iPhone|iPad/.test(ua)
      ? "iOS"
      : /Windows/.test(ua)
        ? "Windows"
        : /Mac OS X/.test(ua)
          ? "macOS"
          : /Linux/.test(ua)
            ? "Linux"
            : null;
  if (browser !== null && os !== null) return t("settings.browserOn", { browser, os });
  return ua.length > 60 ? `${ua.slice(0, 60)}…` : ua;
}
