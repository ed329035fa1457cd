import { api, type Schemas } from "./client";

/** One recipient suggestion from the address book. */
export type RecipientSuggestion = Schemas["ContactSuggestion"];

/** The API's bounds on the text looked up (1 to 100 characters). */
const MAX_PREFIX = 100;

/**
 * Contacts whose name or address starts with `prefix`. Any failure means no suggestions:
 * typing an address by hand always works.
 */
export async function suggestRecipients(prefix: string, limit = 8, signal?: AbortSignal): Promise<RecipientSuggestion[]> {
  const q = prefix.trim().slice(0, MAX_PREFIX);
  if (q.length === 0) return [];
  try {
    const { data } = await api.GET("/api/v1/contacts/autocomplete", {
      params: { query: { q, limit } },
      ...(signal ? { signal } : {}),
    });
    return data ?? [];
  } catch {
    return [];
  }
}
