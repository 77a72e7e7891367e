// Starts and stops the real `rtbus-server` (`--demo` unless told otherwise) for start.mjs and the
// browser tests.

import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createInterface } from "node:readline";
import { join, resolve } from "node:path";
import { root } from "./build.mjs";

export const repo = resolve(root, "..", "..");

/**
 * The server binary: RTBUS_SERVER_BIN, else `target/debug/rtbus-server` of this repository
 * (CARGO_TARGET_DIR honoured), built first with `cargo build -p rtbus-server` when `build` is
 * true (cargo does nothing when it is up to date).
 */
export function serverBinary({ build = false } = {}) {
  if (process.env.RTBUS_SERVER_BIN) return resolve(process.env.RTBUS_SERVER_BIN);
  const target = process.env.CARGO_TARGET_DIR ? resolve(repo, process.env.CARGO_TARGET_DIR) : join(repo, "target");
  const binary = join(target, "debug", "rtbus-server");
  if (build) {
    const cargo = spawnSync("cargo", ["build", "-p", "rtbus-server"], { cwd: repo, stdio: "inherit" });
    if (cargo.error || cargo.status !== 0) {
      throw new Error(`\`cargo build -p rtbus-server\` in ${repo} failed (${cargo.error?.message ?? `exit ${cargo.status}`}); set RTBUS_SERVER_BIN to a built rtbus-server instead`);
    }
  }
  if (!existsSync(binary)) {
    throw new Error(`no rtbus-server at ${binary}: run \`cargo build -p rtbus-server\` or set RTBUS_SERVER_BIN`);
  }
  return binary;
}

/**
 * Runs `binary --demo --listen host:port` (without `--demo` when `demo` is false; `args` are
 * added, e.g. `["--config", path]`) and waits (at most `timeoutMs`) for its
 * `listening on ws://…` line. Resolves with its `wsUrl`, `port`, the `child` and `stop(signal)`
 * (SIGTERM by default; resolves once it exited). `log` receives its stderr lines.
 */
export function startServer({ binary, host = "127.0.0.1", port = 8080, demo = true, args = [], timeoutMs = 10_000, log = () => {} }) {
  const child = spawn(binary, [...(demo ? ["--demo"] : []), "--listen", `${host}:${port}`, "--log", "warn", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise((done) => child.once("exit", (code, signal) => done({ code, signal })));
  createInterface({ input: child.stderr }).on("line", log);
  const stop = async (signal = "SIGTERM") => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    return exited;
  };
  return new Promise((resolveStart, reject) => {
    const timer = setTimeout(() => {
      void stop("SIGKILL");
      reject(new Error(`rtbus-server on ${host}:${port} printed no \`listening on\` line within ${timeoutMs} ms`));
    }, timeoutMs);
    const lines = createInterface({ input: child.stdout });
    lines.on("line", (line) => {
      const match = /^listening on (ws:\/\/\S+)$/.exec(line.trim());
      if (!match) return;
      clearTimeout(timer);
      const wsUrl = match[1];
      resolveStart({ wsUrl, port: Number(new URL(wsUrl).port), child, stop, exited });
    });
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${binary}: ${error.message}`));
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`rtbus-server on ${host}:${port} exited (${signal ?? `code ${code}`}) before listening; is the port taken?`));
    });
  });
}
