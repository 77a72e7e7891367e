// What @rtbus/client and @rtbus/protocol cost a browser page: bundles a tiny entry that uses
// createClient, decodeServerMessage and foldEvent with esbuild (minified, tree-shaken, browser
// platform) and prints the bundle's size, minified and gzipped.
//
// Usage (in packages/, after `npm ci` and building both packages):
//   node size.mjs [max gzipped bytes]
// Exits 1 when the gzipped bundle is larger than the limit, 2 on a usage or build error.

import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));

const ENTRY = `
import { createClient } from "@rtbus/client";
import { decodeServerMessage, foldEvent } from "@rtbus/protocol";
export { createClient, decodeServerMessage, foldEvent };
`;

const limitArg = process.argv[2];
const limit = limitArg === undefined ? undefined : Number(limitArg);
if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) {
  console.error(`size.mjs: the limit must be a positive whole number of gzipped bytes, got ${JSON.stringify(limitArg)}`);
  process.exit(2);
}

let result;
try {
  result = await build({
    stdin: { contents: ENTRY, resolveDir: here, sourcefile: "size-entry.js", loader: "js" },
    bundle: true,
    minify: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    write: false,
    metafile: true,
    logLevel: "silent",
  });
} catch (error) {
  const messages = error.errors ? [...new Set(error.errors.map((e) => e.text))].join("\n  ") : String(error);
  console.error(`size.mjs: bundling failed (are both packages built? \`npm run build\`):\n  ${messages}`);
  process.exit(2);
}

const code = result.outputFiles[0].contents;
const gzipped = gzipSync(code, { level: 9 }).length;
const inputs = Object.keys(result.metafile.inputs).filter((path) => !path.startsWith("<stdin>"));
const kib = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;
console.log(`browser bundle (createClient, decodeServerMessage, foldEvent; ${inputs.length} modules):`);
console.log(`  minified: ${code.length} bytes (${kib(code.length)})`);
console.log(`  gzipped:  ${gzipped} bytes (${kib(gzipped)})${limit === undefined ? "" : `, limit ${limit}`}`);
if (limit !== undefined && gzipped > limit) {
  console.error(`size.mjs: the gzipped bundle is ${gzipped} bytes, ${gzipped - limit} over the limit of ${limit}`);
  process.exit(1);
}
