import { t } from "../i18n";

/** Sessions and devices, theme, password. */
export function SettingsScreen() {
  return <h1>{t("nav.settings")}</h1>;
}
