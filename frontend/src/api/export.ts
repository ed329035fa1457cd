import { api } from "./client";
import { failure } from "./discussions";
import { saveBlob } from "./messageFiles";

/** The two files of an export: the mbox, and what it cannot carry. */
export type ExportPart = "mailbox" | "metadata";

/**
 * Downloads one half of the user's export (`palisade-admin import` reads both back) with the
 * session's bearer token, and saves it.
 */
export async function saveExport(part: ExportPart): Promise<void> {
  const { data, error, response } =
    part === "mailbox"
      ? await api.GET("/api/v1/me/export/mailbox.mbox", { parseAs: "blob" })
      : await api.GET("/api/v1/me/export/metadata.json", { parseAs: "blob" });
  if (data === undefined) throw failure(error, response.status);
  if (part === "mailbox") saveBlob(data, "palisade-mailbox.mbox", "application/mbox");
  else saveBlob(data, "palisade-metadata.json", "application/json");
}
