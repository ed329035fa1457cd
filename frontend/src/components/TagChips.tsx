import type { Schemas } from "../api/client";

type Tag = Schemas["TagView"];

/** A tag's colour as a small square beside its name; the name says it all, colour only helps. */
export function TagSwatch({ tag }: { tag: Tag }) {
  const colour = tag.colour;
  if (colour === undefined || !/^#[0-9a-f]{6}$/i.test(colour)) return null;
  return <span class="tag-swatch" aria-hidden="true" style={{ backgroundColor: colour }} />;
}

/**
 * A message's or discussion's tags as chips. `group` renders spans in a labelled group, for
 * places inside a list item where a nested list would be a second kind of item.
 */
export function TagChips({ tags, label, group = false }: { tags: readonly Tag[]; label: string; group?: boolean }) {
  if (tags.length === 0) return null;
  if (group) {
    return (
      <span class="chips" role="group" aria-label={label}>
        {tags.map((tag) => (
          <span key={tag.id} class="chip">
            <TagSwatch tag={tag} />
            {tag.name}
          </span>
        ))}
      </span>
    );
  }
  return (
    <ul class="chips" aria-label={label}>
      {tags.map((tag) => (
        <li key={tag.id} class="chip">
          <TagSwatch tag={tag} />
          {tag.name}
        </li>
      ))}
    </ul>
  );
}
