/**
 * Files attached to drafts (a draft lists its own): delete through the typed client, upload through
 * XMLHttpRequest, the one browser API that reports upload progress.
 */
import { API_PREFIX, api, type Schemas } from "./client";
import { call, problemOf, type Outcome } from "./problem";
import { session } from "./session";

/** A file uploaded to a draft, sent with it. */
export type DraftAttachmentView = Schemas["DraftAttachmentView"];

/** Removes a file from a draft. */
export function deleteDraftAttachment(draftId: string, attachmentId: string): Promise<Outcome<unknown>> {
  return call(() =>
    api.DELETE("/api/v1/drafts/{id}/attachments/{attachment_id}", {
      params: { path: { id: draftId, attachment_id: attachmentId } },
    }),
  );
}

/** An upload in flight: its result, and a way to stop it. */
export interface Upload {
  readonly done: Promise<Outcome<DraftAttachmentView>>;
  readonly abort: () => void;
}

/**
 * Uploads one file to a draft (`POST /drafts/{id}/attachments`, multipart, field `file`), with
 * the session's bearer token; a 401 ends the session as with every other call. `onProgress`
 * gets a fraction from 0 to 1.
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
      let body: unknown = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve({ ok: true, data: body as DraftAttachmentView });
        return;
      }
      const headers = new Headers();
      const retry = xhr.getResponseHeader("Retry-After");
      if (retry !== null) headers.set("Retry-After", retry);
      resolve({ ok: false, problem: problemOf(new Response(null, { status: xhr.status, headers }), body) });
    };
  });
  xhr.open("POST", `${API_PREFIX}/drafts/${encodeURIComponent(draftId)}/attachments`);
  xhr.setRequestHeader("Accept", "application/json");
  if (token !== null) xhr.setRequestHeader("Authorization", `Bearer ${token}`);
  const form = new FormData();
  form.append("file", file, file.name);
  xhr.send(form);
  return { done, abort: () => xhr.abort() };
}
