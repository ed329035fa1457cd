/**
 * API calls whose endpoints were being added on the server while the client was written
 * (issue 9): contact autocompletion and password change (r2-discussions). Until the generated schema has them they are made here
 * with the same bearer token and 401 handling as the typed client; each one is a single
 * function, to switch to `api.GET/POST` once `npm run gen:api` knows the path.
 */
import { API_PREFIX } from "./client";
import { problemOf, type Outcome } from "./problem";
import { session } from "./session";

/** One recipient suggestion from the address book. */
export interface RecipientSuggestion {
  readonly name?: string | null;
  readonly address: string;
  readonly contact_id: string;
}

async function authed(path: string, init: RequestInit = {}): Promise<Response> {
  const token = session.token;
  const headers = new Headers(init.headers);
  headers.set("Accept", "application/json");
  if (token !== null) headers.set("Authorization", `Bearer ${token}`);
  const response = await fetch(`${API_PREFIX}${path}`, { ...init, headers });
  if (response.status === 401 && token !== null) session.ended(token);
  return response;
}

async function json<T>(response: Response): Promise<Outcome<T>> {
  let body: unknown = null;
  try {
    body = response.status === 204 ? null : await response.json();
  } catch {
    body = null;
  }
  return response.ok ? { ok: true, data: body as T } : { ok: false, problem: problemOf(response, body) };
}

async function guarded<T>(run: () => Promise<Outcome<T>>): Promise<Outcome<T>> {
  try {
    return await run();
  } catch {
    return { ok: false, problem: { status: 0, message: null, retryAfter: null } };
  }
}

/**
 * Contacts whose name or address starts with `prefix`. Any failure (the endpoint missing on an
 * older server included) means no suggestions: typing an address by hand always works.
 */
export async function suggestRecipients(prefix: string, limit = 8, signal?: AbortSignal): Promise<RecipientSuggestion[]> {
  if (prefix.trim().length === 0) return [];
  try {
    // The API takes 1 to 100 characters; a longer piece has no contact to match anyway.
    const params = new URLSearchParams({ q: prefix.trim().slice(0, 100), limit: String(limit) });
    const response = await authed(`/contacts/autocomplete?${params.toString()}`, signal ? { signal } : {});
    if (!response.ok) return [];
    const body: unknown = await response.json();
    return Array.isArray(body) ? body.filter(isSuggestion) : [];
  } catch {
    return [];
  }
}

function isSuggestion(v: unknown): v is RecipientSuggestion {
  return typeof v === "object" && v !== null && typeof (v as { address?: unknown }).address === "string";
}

/** Changes the password; the server ends every other session of the user. */
export function changePassword(currentPassword: string, newPassword: string): Promise<Outcome<null>> {
  return guarded(async () =>
    json<null>(
      await authed("/me/password", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ current_password: currentPassword, new_password: newPassword }),
      }),
    ),
  );
}
