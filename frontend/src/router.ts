import { useEffect, useState } from "preact/hooks";

/** A screen of the client, parsed from the URL's hash (the server serves one page). */
export type Route =
  | { readonly name: "inbox" }
  | { readonly name: "trash" }
  | { readonly name: "discussion"; readonly id: string }
  | { readonly name: "compose"; readonly draft: string | null }
  | { readonly name: "search"; readonly params: URLSearchParams }
  | { readonly name: "tags" }
  | { readonly name: "contacts" }
  | { readonly name: "settings" };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Reads a hash such as `#/d/<id>` or `#/search?q=x`; anything unknown is the inbox. */
export function parseRoute(hash: string): Route {
  const raw = hash.replace(/^#/, "");
  const [path = "", query = ""] = raw.split("?", 2);
  const params = new URLSearchParams(query);
  const parts = path.split("/").filter((p) => p.length > 0);
  switch (parts[0]) {
    case "trash":
      return { name: "trash" };
    case "d":
      return parts[1] !== undefined && UUID.test(parts[1]) ? { name: "discussion", id: parts[1] } : { name: "inbox" };
    case "compose": {
      const draft = params.get("draft");
      return { name: "compose", draft: draft !== null && UUID.test(draft) ? draft : null };
    }
    case "search":
      return { name: "search", params };
    case "tags":
      return { name: "tags" };
    case "contacts":
      return { name: "contacts" };
    case "settings":
      return { name: "settings" };
    default:
      return { name: "inbox" };
  }
}

/** The hash that shows `route`. */
export function routeHash(route: Route): string {
  switch (route.name) {
    case "inbox":
      return "#/";
    case "trash":
      return "#/trash";
    case "discussion":
      return `#/d/${route.id}`;
    case "compose":
      return route.draft === null ? "#/compose" : `#/compose?draft=${route.draft}`;
    case "search": {
      const q = route.params.toString();
      return q.length > 0 ? `#/search?${q}` : "#/search";
    }
    case "tags":
    case "contacts":
    case "settings":
      return `#/${route.name}`;
  }
}

/** Shows `route`, adding a history entry (Back returns). `replace` swaps the current entry instead. */
export function navigate(route: Route, replace = false): void {
  const hash = routeHash(route);
  if (replace) {
    history.replaceState(null, "", hash);
    window.dispatchEvent(new HashChangeEvent("hashchange"));
  } else if (location.hash !== hash) {
    location.hash = hash;
  }
}

/** The current route, following Back and Forward. */
export function useRoute(): Route {
  const [route, setRoute] = useState<Route>(() => parseRoute(location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parseRoute(location.hash));
    window.addEventListener("hashchange", onChange);
    return () => window.removeEventListener("hashchange", onChange);
  }, []);
  return route;
}
