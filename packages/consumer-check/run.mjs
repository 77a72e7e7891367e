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
const clientTgz = tarball(packDir, "rtbus-client-");
for (const [name, file] of [["@rtbus/protocol", protocolTgz], ["@rtbus/client", clientTgz]]) {
  if (!file) fail(`no tarball of ${name} in ${packDir}: run \`npm pack --workspaces\` first`);
}

rmSync(scratch, { recursive: true, force: true });
mkdirSync(join(scratch, "src"), { recursive: true });
const manifest = JSON.parse(readFileSync(join(here, "package.json"), "utf8"));
manifest.dependencies = { "@rtbus/protocol": `file:${protocolTgz}`, "@rtbus/client": `file:${clientTgz}` };
writeFileSync(join(scratch, "package.json"), `${JSON.stringify(manifest, null, 2)}\n`);
for (const file of ["tsconfig.base.json", "tsconfig.nodenext.json", "tsconfig.bundler.json", "check.mjs"]) {
  copyFileSync(join(here, file), join(scratch, file));
}
for (const file of readdirSync(join(here, "src"))) {
  copyFileSync(join(here, "src", file), join(scratch, "src", file));
}
writeFileSync(join(scratch, "src", "readme.ts"), firstTsBlock(join(here, "..", "protocol", "README.md")));

// --offline: the tarballs are the only dependencies, so nothing may come from a registry.
run("npm", ["install", "--offline", "--no-audit", "--no-fund", "--no-package-lock", "--loglevel=error"], scratch);

for (const config of ["tsconfig.nodenext.json", "tsconfig.bundler.json"]) {
  run(process.execPath, [tsc, "--project", config], scratch);
  console.log(`consumer-check: tsc --project ${config}: ok (${readdirSync(join(scratch, "src")).join(", ")})`);
}
run(process.execPath, ["check.mjs"], scratch);
