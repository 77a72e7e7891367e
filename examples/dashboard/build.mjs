// Builds the dashboard into dist/: src/main.ts bundled for the browser with esbuild (with
// @rtbus/client and @rtbus/protocol), next to index.html and style.css.
// `node build.mjs` from the command line; `build()` from start.mjs and the tests.

import { copyFile, mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const root = dirname(fileURLToPath(import.meta.url));
export const dist = join(root, "dist");

/** Bundles the page into dist/; resolves with the bundle's size in bytes. */
export async function build() {
  const esbuild = await import("esbuild");
  await mkdir(dist, { recursive: true });
  const result = await esbuild.build({
    entryPoints: [join(root, "src", "main.ts")],
    outfile: join(dist, "main.js"),
    bundle: true,
    format: "esm",
    platform: "browser",
    target: ["es2022"],
    sourcemap: true,
    minify: true,
    metafile: true,
    // Resolve @rtbus/protocol (imported by the client) from this project's node_modules, as an
    // installed package would, not from wherever the file: link points.
    preserveSymlinks: true,
    logLevel: "warning",
  });
  await copyFile(join(root, "index.html"), join(dist, "index.html"));
  await copyFile(join(root, "style.css"), join(dist, "style.css"));
  return result.metafile.outputs["dist/main.js"]?.bytes ?? 0;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const bytes = await build();
  console.log(`dashboard: built dist/ (main.js ${bytes} bytes)`);
}
