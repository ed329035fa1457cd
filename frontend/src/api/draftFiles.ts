/**
 * Files attached to drafts (a draft lists its own): delete through the typed client, upload through
 * XMLHttpRequest, the one browser API that reports upload progress.
 */
import { api, type Schemas } from "./client";
import { call, type Outcome } from "./problem";
import { upload, type Upload as UploadOf } from "./upload";

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

/** An upload of a file to a draft. */
export type Upload = UploadOf<DraftAttachmentView>;

/**
 * Uploads one file to a draft (`POST /drafts/{id}/attachments`, multipart, field `file`), with
 * the session's bearer token; a 401 ends the session as with every other call. `onProgress`
 * gets a fraction from 0 to 1.
 */
export function uploadDraftAttachment(draftId: string, file: File, onProgress: (fraction: number) => void): Upload {
  const form = new FormData();
  form.append("file", file, file.name);
  return upload<DraftAttachmentView>(`/drafts/${encodeURIComponent(draftId)}/attachments`, form, null, onProgress);
}
