/**
 * Where the user was before compose opened, so sending or discarding returns there.
 * It follows hash changes from the moment the app loads.
 */
let last: string | null = null;

function remember(): void {
  const hash = location.hash;
  if (!hash.startsWith("#/compose")) last = hash === "" ? "#/" : hash;
}

if (typeof window !== "undefined") {
  remember();
  window.addEventListener("hashchange", remember);
}

/** The hash of the last screen that was not compose, or null if compose was opened directly. */
export function composeOrigin(): string | null {
  return last;
}
