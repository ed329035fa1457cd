/**
 * A short message that outlives the screen that said it ("Message sent." while the client
 * returns to the list). A polite live region of its own, made once, so screen readers
 * announce each message even though the screen beneath changes.
 */
let region: HTMLElement | null = null;
let timer: ReturnType<typeof setTimeout> | undefined;

function ensureRegion(): HTMLElement {
  if (region?.isConnected) return region;
  region = document.createElement("div");
  region.className = "flash";
  region.setAttribute("role", "status");
  region.setAttribute("aria-live", "polite");
  document.body.append(region);
  return region;
}

/** Made early, so the first message is announced (live regions must exist before they change). */
export function prepareFlash(): void {
  ensureRegion();
}

/** Shows `text` for a while. */
export function flash(text: string, seconds = 8): void {
  const el = ensureRegion();
  clearTimeout(timer);
  // Set after a frame: a region that has just been created is not yet watched.
  requestAnimationFrame(() => {
    el.textContent = text;
  });
  timer = setTimeout(() => {
    el.textContent = "";
  }, seconds * 1000);
}
