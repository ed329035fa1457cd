import { useEffect, useRef, useState } from "preact/hooks";
import {
  deleteDraftAttachment,
  uploadDraftAttachment,
  type DraftAttachmentView,
  type Upload,
} from "../api/draftFiles";
import { describeProblem } from "../api/problem";
import { t } from "../i18n";
import { formatSize } from "./size";

/** One file of the draft: uploaded, uploading, or failed (kept in the list to say why). */
interface Item {
  readonly key: string;
  readonly name: string;
  readonly size: number;
  readonly progress: number | null;
  readonly error: string | null;
  readonly attachment: DraftAttachmentView | null;
}

/** What the compose form needs to know about the files. */
export interface AttachmentState {
  readonly count: number;
  readonly uploading: boolean;
  /** Files that could not be attached and are still listed with the reason. */
  readonly failed: number;
}

let nextKey = 0;

/** The draft's files: "Attach files" uploads each with its progress, "Remove" takes one off. */
export function Attachments(props: {
  draftId: string;
  initial: readonly DraftAttachmentView[];
  disabled: boolean;
  onChange: (state: AttachmentState) => void;
  /** Told of each upload as it starts, so sending can wait for it. */
  onUpload: (done: Promise<{ readonly ok: boolean }>) => void;
}) {
  const { draftId, initial, disabled, onChange, onUpload } = props;
  const [items, setItems] = useState<Item[]>(() => initial.map(fromView));
  const uploads = useRef(new Map<string, Upload>());
  const fileInput = useRef<HTMLInputElement>(null);

  useEffect(() => {
    onChange({
      count: items.filter((i) => i.attachment !== null).length,
      uploading: items.some((i) => i.progress !== null),
      failed: items.filter((i) => i.error !== null && i.attachment === null).length,
    });
  }, [items]);

  useEffect(() => {
    const current = uploads.current;
    return () => {
      for (const u of current.values()) u.abort();
    };
  }, []);

  const update = (key: string, change: Partial<Item>) =>
    setItems((list) => list.map((i) => (i.key === key ? { ...i, ...change } : i)));

  const add = (files: FileList | null) => {
    if (files === null) return;
    for (const file of Array.from(files)) {
      const key = `upload-${nextKey++}`;
      setItems((list) => [...list, { key, name: file.name, size: file.size, progress: 0, error: null, attachment: null }]);
      const upload = uploadDraftAttachment(draftId, file, (progress) => update(key, { progress }));
      uploads.current.set(key, upload);
      onUpload(upload.done);
      void upload.done.then((outcome) => {
        uploads.current.delete(key);
        if (outcome.ok) {
          update(key, { progress: null, attachment: outcome.data, name: outcome.data.file_name, size: outcome.data.size });
        } else {
          const reason =
            outcome.problem.status === 413
              ? t("compose.fileTooLarge", { file: file.name, size: formatSize(file.size) })
              : t("compose.uploadFailed", { file: file.name, reason: describeProblem(outcome.problem) });
          update(key, { progress: null, error: reason });
        }
      });
    }
    if (fileInput.current) fileInput.current.value = "";
  };

  const remove = async (item: Item) => {
    const upload = uploads.current.get(item.key);
    if (upload) upload.abort();
    if (item.attachment !== null) {
      const outcome = await deleteDraftAttachment(draftId, item.attachment.id);
      if (!outcome.ok && outcome.problem.status !== 404) {
        update(item.key, { error: t("compose.removeFailed", { file: item.name, reason: describeProblem(outcome.problem) }) });
        return;
      }
    }
    setItems((list) => list.filter((i) => i.key !== item.key));
    fileInput.current?.focus();
  };

  return (
    <div class="compose-attachments">
      <input
        ref={fileInput}
        id="compose-files"
        class="file-input"
        type="file"
        multiple
        disabled={disabled}
        onChange={(e) => add(e.currentTarget.files)}
      />
      <label for="compose-files" class="button button--secondary file-label">
        {t("compose.attach")}
      </label>
      {items.length > 0 && (
        <ul class="attached" aria-label={t("compose.attached")}>
          {items.map((item) => (
            <li key={item.key} class={item.error !== null ? "attached-item attached-item--error" : "attached-item"}>
              <span class="attached-name">{item.name}</span>
              <span class="muted">{formatSize(item.size)}</span>
              {item.progress !== null && (
                <progress max={1} value={item.progress} aria-label={t("compose.uploading", { file: item.name })} />
              )}
              {item.error !== null && (
                <span class="field-error" role="alert">
                  {item.error}
                </span>
              )}
              <button
                type="button"
                class="link-button"
                disabled={disabled}
                aria-label={t("compose.removeFile", { file: item.name })}
                onClick={() => void remove(item)}
              >
                {t("compose.remove")}
              </button>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

function fromView(view: DraftAttachmentView): Item {
  return { key: view.id, name: view.file_name, size: view.size, progress: null, error: null, attachment: view };
}
