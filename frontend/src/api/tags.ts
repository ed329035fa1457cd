import { api, type Schemas } from "./client";
import { call, type Outcome } from "./problem";

/** A tag as the screens use it; `colour` is `#rrggbb`, absent when the user chose none. */
export type Tag = Schemas["TagView"];

/** The request body of creating a tag. */
export type TagBody = Schemas["TagRequest"];

/** A change to a tag; what is absent stays. */
export type TagChange = Schemas["TagPatchRequest"];

/** The user's tags, by name. */
export function listTags(): Promise<Outcome<Tag[]>> {
  return call(() => api.GET("/api/v1/tags"));
}

/** Sorted by name as people read it, whatever case. */
export function byName(a: Tag, b: Tag): number {
  return a.name.localeCompare(b.name, undefined, { sensitivity: "base" });
}
