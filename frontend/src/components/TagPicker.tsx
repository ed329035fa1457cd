import "../writing.css";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import type { Tag } from "../api/tags";
import { t } from "../i18n";
import { useEscape } from "./useEscape";

/** How many of the things being tagged carry one tag already. */
export type TagState = "all" | "some" | "none";

/** Props of `TagPicker`. */
export interface TagPickerProps {
  /** The user's tags (`GET /api/v1/tags`), shown in this order. */
  readonly tags: readonly Tag[];
  /**
   * Tag id → whether the selected messages carry it: "all" starts checked, "some" starts
   * mixed (and is left alone unless the user changes it), missing ids start unchecked.
   */
  readonly checked: Readonly<Record<string, TagState>>;
  /** Called on "Apply" with the tag ids to add to and to remove from every selected message. */
  readonly onApply: (add: string[], remove: string[]) => void | Promise<void>;
  /** The trigger's text; "Tag…" by default. */
  readonly label?: string;
  /** Disables the trigger (nothing selected, or busy). */
  readonly disabled?: boolean;
}

/**
 * A "Tag…" button opening a small panel of the user's tags as checkboxes, with "Apply".
 * Escape or "Apply" closes it and returns focus to the button. For the discussion list's
 * selection toolbar and the discussion view.
 */
export function TagPicker({ tags, checked, onApply, label, disabled = false }: TagPickerProps) {
  const [open, setOpen] = useState(false);
  const [choice, setChoice] = useState<Record<string, TagState>>({});
  const [busy, setBusy] = useState(false);
  const trigger = useRef<HTMLButtonElement>(null);
  const panel = useRef<HTMLDivElement | null>(null);
  const escape = useEscape<HTMLDivElement>(() => close());
  const panelRef = useCallback((el: HTMLDivElement | null) => {
    panel.current = el;
    escape(el);
  }, []);
  const panelId = useRef(`tag-picker-${Math.random().toString(36).slice(2, 10)}`).current;

  useEffect(() => {
    if (!open) return;
    setChoice({ ...checked });
    requestAnimationFrame(() => panel.current?.querySelector<HTMLElement>("input, a, button")?.focus());
    const onPointer = (e: PointerEvent) => {
      const target = e.target as Node | null;
      if (target && !panel.current?.contains(target) && !trigger.current?.contains(target)) setOpen(false);
    };
    document.addEventListener("pointerdown", onPointer);
    return () => document.removeEventListener("pointerdown", onPointer);
  }, [open]);

  const close = () => {
    setOpen(false);
    trigger.current?.focus();
  };

  const apply = async () => {
    const add: string[] = [];
    const remove: string[] = [];
    for (const tag of tags) {
      const before = checked[tag.id] ?? "none";
      const after = choice[tag.id] ?? "none";
      if (after === before) continue;
      if (after === "all") add.push(tag.id);
      else if (after === "none") remove.push(tag.id);
    }
    setBusy(true);
    try {
      await onApply(add, remove);
    } finally {
      setBusy(false);
      close();
    }
  };

  return (
    <div class="tag-picker">
      <button
        ref={trigger}
        type="button"
        class="button button--secondary"
        aria-expanded={open}
        aria-controls={open ? panelId : undefined}
        disabled={disabled}
        onClick={() => setOpen(!open)}
      >
        {label ?? t("tags.picker")}
      </button>
      {open && (
        <div
          ref={panelRef}
          id={panelId}
          class="tag-picker-panel"
          role="group"
          aria-label={t("tags.pickerLabel")}
        >
          {tags.length === 0 ? (
            <p>
              {t("tags.none")} <a href="#/tags">{t("tags.manage")}</a>
            </p>
          ) : (
            <ul class="tag-picker-list">
              {tags.map((tag) => {
                const state = choice[tag.id] ?? "none";
                return (
                  <li key={tag.id}>
                    <label class="check">
                      <input
                        type="checkbox"
                        checked={state === "all"}
                        indeterminate={state === "some"}
                        onChange={(e) => {
                          const value: TagState = e.currentTarget.checked ? "all" : "none";
                          setChoice((c) => ({ ...c, [tag.id]: value }));
                        }}
                      />
                      <TagSwatch tag={tag} />
                      {tag.name}
                    </label>
                  </li>
                );
              })}
            </ul>
          )}
          <div class="row">
            <button type="button" class="button" disabled={busy || tags.length === 0} onClick={() => void apply()}>
              {t("tags.apply")}
            </button>
            <button type="button" class="button button--secondary" onClick={close}>
              {t("tags.cancel")}
            </button>
          </div>
        </div>
      )}
    </div>
  );
}

/** A tag's colour as a small square beside its name; nothing when it has none. */
export function TagSwatch({ tag }: { tag: Tag }) {
  const colour = tag.colour ?? null;
  if (colour === null || !/^#[0-9a-fA-F]{6}$/.test(colour)) return null;
  return <span class="swatch" aria-hidden="true" style={{ backgroundColor: colour }} />;
}
