/**
 * API calls whose endpoints were being added on the server while the client was written
 * (issue 9): contact autocompletion (r2-discussions), draft attachments (r1-attachments) and
 * password change (r2-discussions). Until the generated schema has them they are made here
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

/** A file uploaded to a draft, sent with it. */
export interface DraftAttachmentView {
  readonly id: string;
  readonly file_name: string;
  readonly content_type: string;
  readonly size: number;
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
    const params = new URLSearchParams({ q: prefix.trim(), limit: String(limit) });
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

/** The files attached to a draft. */
export function listDraftAttachments(draftId: string): Promise<Outcome<DraftAttachmentView[]>> {
  return guarded(async () => json<DraftAttachmentView[]>(await authed(`/drafts/${draftId}/attachments`)));
}

/** Removes a file from a draft. */
export function deleteDraftAttachment(draftId: string, attachmentId: string): Promise<Outcome<null>> {
  return guarded(async () => json<null>(await authed(`/drafts/${draftId}/attachments/${attachmentId}`, { method: "DELETE" })));
}

/** An upload in flight: its result, and a way to stop it. */
export interface Upload {
  readonly done: Promise<Outcome<DraftAttachmentView>>;
  readonly abort: () => void;
}

/**
 * Uploads one file to a draft (multipart, field `file`). XMLHttpRequest rather than fetch,
 * because only it reports upload progress; `onProgress` gets a fraction from 0 to 1.
 */
export function uploadDraftAttachment(draftId: string, file: File, onProgress: (fraction: number) => void): Upload {
  const xhr = new XMLHttpRequest();
  const token = session.token;
  const done = new Promise<Outcome<DraftAttachmentView>>((resolve) => {
    const failed = () => resolve({ ok: false, problem: { status: 0, message: null, retryAfter: null } });
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable && e.total > 0) onProgress(e.loaded / e.total);
    };
    xhr.onerror = failed;
    xhr.onabort = failed;
    xhr.onload = () => {
      if (xhr.status === 401 && token !== null) session.ended(token);
      const response = new Response(xhr.status === 204 ? null : xhr.responseText, {
        status: xhr.status,
        headers: { "Retry-After": xhr.getResponseHeader("Retry-After") ?? "" },
      });
      void json<DraftAttachmentView>(response).then(resolve);
    };
  });
  xhr.open("POST", `${API_PREFIX}/drafts/${draftId}/attachments`);
  xhr.setRequestHeader("Accept", "application/json");
  if (token !== null) xhr.setRequestHeader("Authorization", `Bearer ${token}`);
  const form = new FormData();
  form.append("file", file, file.name);
  xhr.send(form);
  return { done, abort: () => xhr.abort() };
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
