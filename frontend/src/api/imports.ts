/**
 * Importing a mailbox: the upload (`POST /me/import`), then its status until it ends
 * (`GET /me/imports/{id}`).
 */
import { api, type Schemas } from "./client";
import { call, type Outcome } from "./problem";
import { upload, type Upload } from "./upload";

/** Where an import stands, and at the end its report. */
export type ImportStatus = Schemas["ImportStatus"];

/**
 * Uploads an mbox, alone (`application/mbox`) or with the metadata of a Palisade export (a
 * form with the parts `mailbox` and `metadata`, which brings back flags and tags).
 */
export function uploadMailbox(mailbox: File, metadata: File | null, onProgress: (fraction: number) => void): Upload<ImportStatus> {
  if (metadata === null) return upload<ImportStatus>("/me/import", mailbox, "application/mbox", onProgress);
  const form = new FormData();
  form.append("mailbox", mailbox, mailbox.name);
  form.append("metadata", metadata, metadata.name);
  return upload<ImportStatus>("/me/import", form, null, onProgress);
}

/** The current status of an import. */
export function importStatus(id: string): Promise<Outcome<ImportStatus>> {
  return call(() => api.GET("/api/v1/me/imports/{id}", { params: { path: { id } } }));
}

/** How far an import is, from 0 to 1: the part of the file read. */
export function importProgress(status: ImportStatus): number {
  if (status.state !== "running") return 1;
  return status.bytes_total > 0 ? Math.min(1, status.bytes_read / status.bytes_total) : 0;
}
