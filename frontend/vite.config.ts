/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import preact from "@preact/preset-vite";

// The daemon serves the built client from the same origin as the API (`static_dir` under
// `[api]`), so in development Vite forwards `/api` to a running daemon instead.
const api = process.env.PALISADE_API ?? "http://127.0.0.1:8080";

export default defineConfig({
  plugins: [preact({ prerender: { enabled: false } })],
  server: {
    proxy: { "/api": { target: api, changeOrigin: false } },
  },
  build: {
    outDir: "dist",
    assetsDir: "assets",
    // Our CSP is `script-src 'self'`: no inline polyfill, no inlined assets.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    sourcemap: false,
    target: "es2022",
  },
  test: {
    environment: "node",
    include: ["src/**/*.test.ts"],
  },
});
