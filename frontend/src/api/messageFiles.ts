import { api } from "./client";
import { failure } from "./discussions";

/** A file of a received message: one of its attachments, or any part of its MIME tree. */
export interface MessageFile {
  readonly kind: "attachment" | "part";
  /** The attachment's or the part's `index`. */
  readonly index: number;
  /** The name to save it as. */
  readonly fileName: string;
}

/**
 * Downloads a message's file with the session's bearer token (never in a URL): fetched as
 * bytes, then saved from an object URL typed as a download, so nothing in it can run as our page.
 */
export async function saveMessageFile(messageId: string, file: MessageFile): Promise<void> {
  const params = { path: { id: messageId, index: file.index } };
  const { data, error, response } =
    file.kind === "attachment"
      ? await api.GET("/api/v1/messages/{id}/attachments/{index}", { params, parseAs: "blob" })
      : await api.GET("/api/v1/messages/{id}/parts/{index}", { params, parseAs: "blob" });
  if (data === undefined) throw failure(error, response.status);
  saveBlob(data, file.fileName, "application/octet-stream");
}

/**
 * Saves bytes fetched with the session's token as a file: from an object URL typed as a
 * download, so nothing in it can run as our page.
 */
export function saveBlob(data: Blob, fileName: string, type: string): void {
  const blob = new Blob([data], { type });
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = fileName;
  a.hidden = true;
  document.body.append(a);
  a.click();
  a.remove();
  // Long enough for the browser to start saving it.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
