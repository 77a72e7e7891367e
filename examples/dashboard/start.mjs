// One command for a newcomer: `npm --prefix examples/dashboard start` (or `node start.mjs`).
//
// Installs what is missing (this project's npm dependencies, the SDK packages in packages/),
// builds the SDK packages and the page, builds and starts `rtbus-server --demo` on
// 127.0.0.1:8080 (RTBUS_PORT; RTBUS_SERVER_BIN to use a built binary instead of cargo), serves
// the page on 127.0.0.1:8081 (DASHBOARD_PORT) and prints its URL. Ctrl-C stops both.
//
// Uses only Node's own modules until the dependencies are installed.

import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(fileURLToPath(import.meta.url));
const packages = resolve(root, "..", "..", "packages");

function run(command, args, cwd) {
  console.log(`dashboard: ${command} ${args.join(" ")}   (in ${cwd})`);
  const result = spawnSync(command, args, { cwd, stdio: "inherit" });
  if (result.error || result.status !== 0) {
    console.error(`dashboard: \`${command} ${args.join(" ")}\` failed in ${cwd} (${result.error?.message ?? `exit ${result.status}`})`);
    process.exit(1);
  }
}

const npm = process.platform === "win32" ? "npm.cmd" : "npm";
if (!existsSync(join(packages, "node_modules"))) run(npm, ["ci", "--no-audit", "--no-fund"], packages);
run(npm, ["run", "build"], packages);
if (!existsSync(join(root, "node_modules", "esbuild"))) run(npm, ["ci", "--no-audit", "--no-fund"], root);

const { build } = await import("./build.mjs");
const { serve } = await import("./serve.mjs");
const { serverBinary, startServer } = await import("./rtbus-server.mjs");

const bytes = await build();
console.log(`dashboard: page built (main.js ${bytes} bytes)`);
const binary = serverBinary({ build: !process.env.RTBUS_SERVER_BIN });
const serverPort = Number(process.env.RTBUS_PORT ?? 8080);
const pagePort = Number(process.env.DASHBOARD_PORT ?? 8081);
const server = await startServer({ binary, port: serverPort, log: (line) => console.error(`rtbus-server: ${line}`) }).catch((error) => {
  console.error(`dashboard: ${error.message} (set RTBUS_PORT to use another port)`);
  process.exit(1);
});
const page = await serve({ port: pagePort }).catch(async (error) => {
  console.error(`dashboard: cannot serve the page on 127.0.0.1:${pagePort}: ${error.message} (set DASHBOARD_PORT to use another port)`);
  await server.stop();
  process.exit(1);
});
const url = server.port === 8080 ? page.url : `${page.url}?server=${encodeURIComponent(server.wsUrl)}`;
console.log(`\nrtbus-server --demo: ${server.wsUrl}\ndashboard:           ${url}\n\nOpen the dashboard in a browser; Ctrl-C stops both.`);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await Promise.all([server.stop(), page.close()]);
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
void server.exited.then(({ code, signal }) => {
  if (stopping) return;
  console.error(`dashboard: rtbus-server exited (${signal ?? `code ${code}`}); stopping`);
  void page.close().then(() => process.exit(1));
});
