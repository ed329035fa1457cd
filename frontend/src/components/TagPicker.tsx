import { useEffect, useState } from "preact/hooks";
import type { Schemas } from "../api/client";
import { listTags, reasonOf } from "../api/discussions";
import { t } from "../i18n";
import { BusyButton } from "./BusyButton";
import { Dialog } from "./Dialog";
import { TagSwatch } from "./TagChips";

type Tag = Schemas["TagView"];

/** Whether the chosen discussions carry a tag: all, some or none of them. */
type Mark = "all" | "some" | "none";

interface TagPickerProps {
  /** Tag ids each chosen discussion carries, when known (empty sets otherwise). */
  readonly current: readonly (readonly string[])[];
  /** Applies the changes the reader made; resolves when done. */
  readonly onApply: (add: Tag[], remove: Tag[]) => Promise<void>;
  readonly onClose: () => void;
}

/**
 * Tags for one or more discussions, as checkboxes: a tag some of them carry starts in the mixed
 * state, and only the tags the reader changed are added or removed.
 */
export function TagPicker({ current, onApply, onClose }: TagPickerProps) {
  const [tags, setTags] = useState<Tag[] | null>(null);
  const [marks, setMarks] = useState<Record<string, Mark>>({});
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    let live = true;
    listTags().then(
      (list) => {
        if (!live) return;
        setTags(list);
        setMarks(Object.fromEntries(list.map((tag) => [tag.id, markOf(tag.id, current)])));
      },
      (e: unknown) => live && setError(reasonOf(e)),
    );
    return () => {
      live = false;
    };
  }, []);

  const apply = async (e: Event) => {
    e.preventDefault();
    if (tags === null || busy) return;
    const start = (id: string) => markOf(id, current);
    const add = tags.filter((tag) => marks[tag.id] === "all" && start(tag.id) !== "all");
    const remove = tags.filter((tag) => marks[tag.id] === "none" && start(tag.id) !== "none");
    setBusy(true);
    setError(null);
    try {
      await onApply(add, remove);
      onClose();
    } catch (err) {
      setError(reasonOf(err));
      setBusy(false);
    }
  };

  return (
    <Dialog title={t("tagPicker.title")} onClose={onClose} closeButton={false}>
      <form class="tag-picker" onSubmit={(e) => void apply(e)}>
        {error !== null && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        {tags === null && error === null && <p class="muted">{t("app.loading")}</p>}
        {tags !== null && tags.length === 0 && <p class="muted">{t("tagPicker.none")}</p>}
        {tags !== null && tags.length > 0 && (
          <fieldset>
            <legend class="visually-hidden">{t("tagPicker.title")}</legend>
            {tags.map((tag) => (
              <label key={tag.id} class="tag-option">
                <input
                  type="checkbox"
                  checked={marks[tag.id] === "all"}
                  indeterminate={marks[tag.id] === "some"}
                  onChange={(ev) => {
                    const checked = ev.currentTarget.checked;
                    setMarks((m) => ({ ...m, [tag.id]: checked ? "all" : "none" }));
                  }}
                />
                <TagSwatch tag={tag} />
                {tag.name}
              </label>
            ))}
          </fieldset>
        )}
        <div class="dialog-actions">
          <BusyButton type="submit" class="button" busy={busy || tags === null || tags.length === 0}>
            {t("tagPicker.apply")}
          </BusyButton>
          <button type="button" class="button button--secondary" onClick={onClose}>
            {t("tagPicker.cancel")}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

/** How many of the discussions carry tag `id`. */
function markOf(id: string, current: readonly (readonly string[])[]): Mark {
  const carrying = current.filter((ids) => ids.includes(id)).length;
  return carrying === 0 ? "none" : carrying === current.length ? "all" : "some";
}
