/**
 * Uploads through XMLHttpRequest, the one browser API that reports upload progress, with the
 * session's bearer token and the same outcome and 401 handling as the typed client.
 */
import { API_PREFIX } from "./client";
import { problemOf, type Outcome } from "./problem";
import { session } from "./session";

/** An upload in flight: its result, and a way to stop it. */
export interface Upload<T> {
  readonly done: Promise<Outcome<T>>;
  readonly abort: () => void;
}

/**
 * POSTs `body` to `path` (under the API prefix, query included); `contentType` is set unless
 * the browser chooses it (a `FormData` names its boundary). `onProgress` gets a fraction from
 * 0 to 1 of the body sent. A 401 ends the session as with every other call.
 */
export function upload<T>(
  path: string,
  body: FormData | Blob,
  contentType: string | null,
  onProgress: (fraction: number) => void,
): Upload<T> {
  const xhr = new XMLHttpRequest();
  const token = session.token;
  const done = new Promise<Outcome<T>>((resolve) => {
    const failed = () => resolve({ ok: false, problem: { status: 0, message: null, retryAfter: null } });
    xhr.upload.onprogress = (e) => {
      if (e.lengthComputable && e.total > 0) onProgress(e.loaded / e.total);
    };
    xhr.onerror = failed;
    xhr.onabort = failed;
    xhr.onload = () => {
      if (xhr.status === 401 && token !== null) session.ended(token);
      let answer: unknown = null;
      try {
        answer = JSON.parse(xhr.responseText);
      } catch {
        answer = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve({ ok: true, data: answer as T });
        return;
      }
      const headers = new Headers();
      const retry = xhr.getResponseHeader("Retry-After");
      if (retry !== null) headers.set("Retry-After", retry);
      resolve({ ok: false, problem: problemOf(new Response(null, { status: xhr.status, headers }), answer) });
    };
  });
  xhr.open("POST", `${API_PREFIX}${path}`);
  xhr.setRequestHeader("Accept", "application/json");
  if (contentType !== null) xhr.setRequestHeader("Content-Type", contentType);
  if (token !== null) xhr.setRequestHeader("Authorization", `Bearer ${token}`);
  xhr.send(body);
  return { done, abort: () => xhr.abort() };
}
