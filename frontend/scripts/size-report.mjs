// After `vite build`: reports the gzipped size of the JavaScript the first screen loads (the
// entry script of dist/index.html and every module it preloads), fails above the budget, and
// checks that index.html has no inline script or style (our CSP allows neither).
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const BUDGET_BYTES = 100 * 1024;
const dist = resolve(dirname(fileURLToPath(import.meta.url)), "..", "dist");
const html = readFileSync(join(dist, "index.html"), "utf8");

const problems = [];
for (const [tag] of html.matchAll(/<script\b[^>]*>/gi)) {
  if (!/\bsrc=/i.test(tag)) problems.push(`inline script: ${tag}`);
}
if (/<style\b/i.test(html)) problems.push("inline <style> element");
if (/\sstyle=/i.test(html)) problems.push("inline style= attribute");
if (/\son[a-z]+=/i.test(html)) problems.push("inline event handler attribute");
if (/(src|href)="(https?:)?\/\//i.test(html)) problems.push("a resource from another origin");

/** @param {RegExp} pattern */
const urls = (pattern) => [...html.matchAll(pattern)].map((m) => m[1] ?? "");
const scripts = [
  ...urls(/<script\b[^>]*\bsrc="([^"]+)"/gi),
  ...urls(/<link\b[^>]*\brel="modulepreload"[^>]*\bhref="([^"]+)"/gi),
];
const styles = urls(/<link\b[^>]*\brel="stylesheet"[^>]*\bhref="([^"]+)"/gi);

/** @param {string[]} files */
function measure(files) {
  let raw = 0;
  let gzip = 0;
  for (const url of new Set(files)) {
    if (!url.startsWith("/assets/")) problems.push(`asset outside /assets/: ${url}`);
    const bytes = readFileSync(join(dist, url));
    raw += bytes.length;
    gzip += gzipSync(bytes, { level: 9 }).length;
  }
  return { raw, gzip };
}

const kb = (/** @type {number} */ n) => `${(n / 1024).toFixed(1)} KB`;
const js = measure(scripts);
const css = measure(styles);
console.log(
  `first screen: JavaScript ${kb(js.gzip)} gzipped (${kb(js.raw)} raw, ${scripts.length} file(s)); ` +
    `budget ${kb(BUDGET_BYTES)} gzipped`,
);
console.log(`first screen: CSS ${kb(css.gzip)} gzipped (${kb(css.raw)} raw)`);
if (js.gzip > BUDGET_BYTES) problems.push(`first-screen JavaScript is ${kb(js.gzip)} gzipped, over the ${kb(BUDGET_BYTES)} budget`);
if (scripts.length === 0) problems.push("no entry script found in dist/index.html");

if (problems.length > 0) {
  for (const p of problems) console.error(`build check: ${p}`);
  process.exit(1);
}
