import { en, type Catalog, type MessageKey } from "./en";
import { fr } from "./fr";

export type { MessageKey } from "./en";
export type Locale = "en" | "fr";

export const catalogs: Readonly<Record<Locale, Catalog>> = { en, fr };

/** Picks the first supported language from the browser's preferences; English otherwise. */
export function pickLocale(preferred: readonly string[]): Locale {
  for (const tag of preferred) {
    const lang = tag.toLowerCase().split("-")[0];
    if (lang === "fr" || lang === "en") return lang;
  }
  return "en";
}

function browserLocale(): Locale {
  if (typeof navigator === "undefined") return "en";
  const prefs = navigator.languages.length > 0 ? navigator.languages : [navigator.language];
  return pickLocale(prefs);
}

export const locale: Locale = browserLocale();
const catalog: Catalog = catalogs[locale];
const plurals = new Intl.PluralRules(locale);

type Params = Readonly<Record<string, string | number>>;

/** Replaces `{name}` placeholders; unknown placeholders are left as they are. */
export function format(template: string, params: Params = {}): string {
  return template.replace(/\{(\w+)\}/g, (whole, name: string) => {
    const value = params[name];
    return value === undefined ? whole : String(value);
  });
}

/** The current catalog's string for `key`. */
export function t(key: MessageKey, params?: Params): string {
  return format(catalog[key], params);
}

type PluralBase<K> = K extends `${infer B}.one` ? B : never;
export type PluralKey = PluralBase<MessageKey>;

/** A plural message: `tn("list.unread", 3)` reads `list.unread.other` with `{count}` = 3. */
export function tn(key: PluralKey, count: number, params?: Params): string {
  const form = plurals.select(count) === "one" ? "one" : "other";
  return t(`${key}.${form}` as MessageKey, { count: formatNumber(count), ...params });
}

export function formatNumber(n: number): string {
  return new Intl.NumberFormat(locale).format(n);
}

const dateFormat = new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short" });
export function formatDate(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : dateFormat.format(d);
}
