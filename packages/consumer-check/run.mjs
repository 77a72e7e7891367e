// Installs the packed @rtbus/protocol and @rtbus/client tarballs into a scratch consumer and
// checks them the way an application sees them: tsc under NodeNext and under Bundler resolution
// (strict, exactOptionalPropertyTypes, noUncheckedIndexedAccess, declarations checked too),
// the packages/protocol/README.md example compiled, and a plain .mjs run with node.
//
// Usage: node consumer-check/run.mjs <directory holding the `npm pack` tarballs> <scratch directory>
// The scratch directory is emptied first. `cargo xtask test` runs this after packing.

import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const tsc = join(here, "..", "node_modules", "typescript", "bin", "tsc");

/** Parts checked only when the packed packages contain them (the SDK is built in steps). */
const OPTIONAL_PARTS = ["decode", "fold", "client"];

function fail(message) {
  console.error(`consumer-check: ${message}`);
  process.exit(1);
}

function run(command, args, cwd) {
  const shell = process.platform === "win32" && command === "npm";
  const result = spawnSync(command, args, { cwd, stdio: "inherit", shell });
  if (result.status !== 0) {
    fail(`\`${command} ${args.join(" ")}\` in ${cwd} failed (exit ${result.status ?? result.signal})`);
  }
}

function tarball(packDir, prefix) {
  const found = readdirSync(packDir).filter((f) => f.startsWith(prefix) && f.endsWith(".tgz"));
  if (found.length > 1) fail(`${packDir} holds several ${prefix}*.tgz: ${found.join(", ")}`);
  return found.length === 1 ? resolve(packDir, found[0]) : undefined;
}

/** The first ```ts block of a Markdown file. */
function firstTsBlock(file) {
  const match = /```ts\n([\s\S]*?)```/.exec(readFileSync(file, "utf8"));
  if (!match) fail(`${file} has no \`\`\`ts example`);
  return `// Extracted from ${file} by consumer-check/run.mjs.\n${match[1]}`;
}

const [packArg, scratchArg] = process.argv.slice(2);
if (!packArg || !scratchArg) fail("usage: node consumer-check/run.mjs <pack directory> <scratch directory>");
const packDir = resolve(packArg);
const scratch = resolve(scratchArg);
if (!existsSync(tsc)) fail(`no TypeScript compiler at ${tsc}: run \`npm ci\` in packages/ first`);

const protocolTgz = tarball(packDir, "rtbus-protocol-");
if (!protocolTgz) fail(`no rtbus-protocol-*.tgz in ${packDir}: run \`npm pack\` first`);
const clientTgz = tarball(packDir, "rtbus-client-");

rmSync(scratch, { recursive: true, force: true });
mkdirSync(join(scratch, "src"), { recursive: true });
const manifest = JSON.parse(readFileSync(join(here, "package.json"), "utf8"));
manifest.dependencies = { "@rtbus/protocol": `file:${protocolTgz}` };
if (clientTgz) manifest.dependencies["@rtbus/client"] = `file:${clientTgz}`;
writeFileSync(join(scratch, "package.json"), `${JSON.stringify(manifest, null, 2)}\n`);
for (const file of ["tsconfig.base.json", "tsconfig.nodenext.json", "tsconfig.bundler.json", "check.mjs"]) {
  copyFileSync(join(here, file), join(scratch, file));
}
for (const file of readdirSync(join(here, "src"))) {
  copyFileSync(join(here, "src", file), join(scratch, "src", file));
}

// --offline: the tarballs are the only dependencies, so nothing may come from a registry.
run("npm", ["install", "--offline", "--no-audit", "--no-fund", "--no-package-lock", "--loglevel=error"], scratch);

const protocolDist = join(scratch, "node_modules", "@rtbus", "protocol", "dist");
const present = {
  decode: existsSync(join(protocolDist, "decode.js")),
  fold: existsSync(join(protocolDist, "fold.js")),
  client: clientTgz !== undefined,
};
const parts = OPTIONAL_PARTS.filter((part) => present[part]);
for (const part of parts) {
  copyFileSync(join(here, "optional", `${part}.ts`), join(scratch, "src", `${part}.ts`));
}
if (present.decode && present.fold) {
  writeFileSync(join(scratch, "src", "readme.ts"), firstTsBlock(join(here, "..", "protocol", "README.md")));
  parts.push("README example");
}
const skipped = OPTIONAL_PARTS.filter((part) => !present[part]);
if (skipped.length > 0) console.log(`consumer-check: not packed yet, skipped: ${skipped.join(", ")}`);

for (const config of ["tsconfig.nodenext.json", "tsconfig.bundler.json"]) {
  run(process.execPath, [tsc, "--project", config], scratch);
  console.log(`consumer-check: tsc --project ${config}: ok (protocol${parts.length ? `, ${parts.join(", ")}` : ""})`);
}
run(process.execPath, ["check.mjs", ...parts.filter((p) => OPTIONAL_PARTS.includes(p))], scratch);
