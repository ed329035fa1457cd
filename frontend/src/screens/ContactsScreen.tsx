import { t } from "../i18n";

/** The address book, with public keys. */
export function ContactsScreen() {
  return <h1>{t("nav.contacts")}</h1>;
}
