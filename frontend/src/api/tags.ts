import { api, type Schemas } from "./client";
import { call, type Outcome } from "./problem";

/**
 * A tag as the screens use it. `colour` (`#rrggbb`) comes with tag colours on the server
 * (r1-attachments); an older server leaves it out and ignores it in requests.
 */
export type Tag = Schemas["TagView"] & { readonly colour?: string | null };

/** The request body of create and rename, with the colour when the user picked one. */
export type TagBody = Schemas["TagRequest"] & { colour?: string };

/** The user's tags, by name. */
export function listTags(): Promise<Outcome<Tag[]>> {
  return call(() => api.GET("/api/v1/tags"));
}

/** Sorted by name as people read it, whatever case. */
export function byName(a: Tag, b: Tag): number {
  return a.name.localeCompare(b.name, undefined, { sensitivity: "base" });
}
