import "../writing.css";
import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../api/client";
import { call, describeProblem } from "../api/problem";
import { byName, listTags, type Tag, type TagBody, type TagChange } from "../api/tags";
import { FormStatus } from "../components/FormStatus";
import { TagSwatch } from "../components/TagChips";
import { useEscape } from "../components/useEscape";
import { t } from "../i18n";

/** Colour offered for a new tag. */
const DEFAULT_COLOUR = "#1f5fa8";

/** The user's tags: create, rename, colour, delete. */
export function TagsScreen() {
  const [tags, setTags] = useState<Tag[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [status, setStatus] = useState("");
  const [name, setName] = useState("");
  const [colour, setColour] = useState(DEFAULT_COLOUR);
  const [createError, setCreateError] = useState<string | null>(null);
  const [renaming, setRenaming] = useState<string | null>(null);
  const nameInput = useRef<HTMLInputElement>(null);

  const reload = async () => {
    const outcome = await listTags();
    if (outcome.ok) {
      setTags([...outcome.data].sort(byName));
      setError(null);
    } else {
      setError(describeProblem(outcome.problem));
    }
  };

  useEffect(() => {
    void reload();
  }, []);

  const create = async (e: Event) => {
    e.preventDefault();
    const trimmed = name.trim();
    if (trimmed === "") {
      setCreateError(t("tags.nameRequired"));
      nameInput.current?.focus();
      return;
    }
    const body: TagBody = { name: trimmed, colour };
    const outcome = await call(() => api.POST("/api/v1/tags", { body }));
    if (!outcome.ok) {
      setCreateError(describeProblem(outcome.problem));
      return;
    }
    setCreateError(null);
    setName("");
    setStatus(t("tags.created", { name: trimmed }));
    await reload();
    nameInput.current?.focus();
  };

  const update = async (tag: Tag, change: { name: string; colour: string }): Promise<string | null> => {
    // Only what changed: PATCH leaves the rest as it is.
    const body: TagChange = {};
    if (change.name !== tag.name) body.name = change.name;
    if (change.colour !== (tag.colour ?? DEFAULT_COLOUR)) body.colour = change.colour;
    if (body.name === undefined && body.colour === undefined) return null;
    const outcome = await call(() => api.PATCH("/api/v1/tags/{id}", { params: { path: { id: tag.id } }, body }));
    if (!outcome.ok) return describeProblem(outcome.problem);
    await reload();
    return null;
  };

  const remove = async (tag: Tag) => {
    if (!window.confirm(t("tags.deleteConfirm", { name: tag.name }))) return;
    const outcome = await call(() => api.DELETE("/api/v1/tags/{id}", { params: { path: { id: tag.id } } }));
    if (!outcome.ok && outcome.problem.status !== 404) {
      setError(describeProblem(outcome.problem));
      return;
    }
    setStatus(t("tags.deleted", { name: tag.name }));
    await reload();
    nameInput.current?.focus();
  };

  return (
    <>
      <h1>{t("nav.tags")}</h1>
      <form class="tag-create" aria-label={t("tags.createForm")} noValidate onSubmit={(e) => void create(e)}>
        <div class="field">
          <label for="tag-name">{t("tags.newName")}</label>
          <input
            ref={nameInput}
            id="tag-name"
            type="text"
            maxLength={64}
            value={name}
            aria-invalid={createError !== null ? "true" : undefined}
            aria-describedby={createError !== null ? "tag-create-error" : undefined}
            onInput={(e) => setName(e.currentTarget.value)}
          />
        </div>
        <div class="field field--colour">
          <label for="tag-colour">{t("tags.colour")}</label>
          <input id="tag-colour" type="color" value={colour} onInput={(e) => setColour(e.currentTarget.value)} />
        </div>
        <button type="submit" class="button">
          {t("tags.create")}
        </button>
        {createError !== null && (
          <p class="field-error" id="tag-create-error" role="alert">
            {createError}
          </p>
        )}
      </form>
      <FormStatus status={status} error={error} />
      {tags === null ? (
        <p class="muted">{t("app.loading")}</p>
      ) : tags.length === 0 ? (
        <p>{t("tags.empty")}</p>
      ) : (
        <ul class="tag-list" aria-label={t("nav.tags")}>
          {tags.map((tag) =>
            renaming === tag.id ? (
              <RenameRow
                key={tag.id}
                tag={tag}
                onDone={async (change) => {
                  if (change === null) {
                    setRenaming(null);
                    return null;
                  }
                  const problem = await update(tag, change);
                  if (problem === null) {
                    setRenaming(null);
                    setStatus(t("tags.renamed", { name: change.name }));
                  }
                  return problem;
                }}
              />
            ) : (
              <li key={tag.id} class="tag-row">
                <span class="tag-name">
                  <TagSwatch tag={tag} />
                  {tag.name}
                </span>
                <span class="tag-actions">
                  <button type="button" class="button button--secondary" onClick={() => setRenaming(tag.id)}>
                    <span aria-hidden="true">{t("tags.renameShort")}</span>
                    <span class="visually-hidden">{t("tags.rename", { name: tag.name })}</span>
                  </button>
                  <button type="button" class="button button--secondary" onClick={() => void remove(tag)}>
                    <span aria-hidden="true">{t("tags.deleteShort")}</span>
                    <span class="visually-hidden">{t("tags.delete", { name: tag.name })}</span>
                  </button>
                </span>
              </li>
            ),
          )}
        </ul>
      )}
    </>
  );
}

/** The row of a tag being edited: its name and colour; Escape or "Cancel" leaves it as it was. */
function RenameRow({
  tag,
  onDone,
}: {
  tag: Tag;
  onDone: (change: { name: string; colour: string } | null) => Promise<string | null>;
}) {
  const [value, setValue] = useState(tag.name);
  const [colour, setColour] = useState(tag.colour ?? DEFAULT_COLOUR);
  const [problem, setProblem] = useState<string | null>(null);
  const input = useRef<HTMLInputElement>(null);
  const form = useEscape<HTMLFormElement>(() => void onDone(null));
  useEffect(() => {
    input.current?.focus();
    input.current?.select();
  }, []);
  const id = `rename-${tag.id}`;
  return (
    <li class="tag-row">
      <form
        ref={form}
        class="rename-form"
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          const trimmed = value.trim();
          if (trimmed === "") {
            setProblem(t("tags.nameRequired"));
            return;
          }
          void onDone({ name: trimmed, colour }).then(setProblem);
        }}
      >
        <label for={id} class="visually-hidden">
          {t("tags.newNameFor", { name: tag.name })}
        </label>
        <input
          ref={input}
          id={id}
          type="text"
          maxLength={64}
          value={value}
          aria-invalid={problem !== null ? "true" : undefined}
          onInput={(e) => setValue(e.currentTarget.value)}
        />
        <label for={`${id}-colour`} class="visually-hidden">
          {t("tags.colourOf", { name: tag.name })}
        </label>
        <input id={`${id}-colour`} type="color" value={colour} onInput={(e) => setColour(e.currentTarget.value)} />
        <button type="submit" class="button">
          {t("tags.save")}
        </button>
        <button type="button" class="button button--secondary" onClick={() => void onDone(null)}>
          {t("tags.cancel")}
        </button>
        {problem !== null && (
          <p class="field-error" role="alert">
            {problem}
          </p>
        )}
      </form>
    </li>
  );
}
