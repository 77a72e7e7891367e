// Starts the real `rtbus-server` binary for a test: a config file with tokens in a temp dir, a
// free loopback port, a restart on the same port, and a kill at the end. Also the small
// helpers the tests share (bounded waits, a client factory).

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import WebSocket from "ws";
import { createClient } from "../dist/index.js";

const here = path.dirname(fileURLToPath(import.meta.url));
/** The binary under test: `RTBUS_SERVER_BIN`, or the workspace's debug build. */
export const SERVER_BIN = process.env.RTBUS_SERVER_BIN ?? path.resolve(here, "../../../target/debug/rtbus-server");

/** Tokens every test server accepts. */
export const TOKENS = {
  /** May publish and read everything. */
  publisher: "tok-publisher",
  /** Principal `alice`: reads everything. */
  alice: "tok-alice",
  /** Principal `alice` again, another token (a refresh as the same principal). */
  alice2: "tok-alice-2",
  /** Principal `bob`: reads only `custom.*`. */
  bob: "tok-bob",
};

const toml = (value) => JSON.stringify(value);

/** The config file: the tokens above, plus `public_topics`, `allowed_origins` and `[limits]`. */
function config({ publicTopics = [], allowedOrigins = [], limits = {} }) {
  const lines = [`public_topics = ${toml(publicTopics)}`, `allowed_origins = ${toml(allowedOrigins)}`, ""];
  const token = (token, principal, roles, read, publish) =>
    lines.push(
      "[[tokens]]",
      `token = ${toml(token)}`,
      `principal = ${toml(principal)}`,
      `roles = ${toml(roles)}`,
      `read = ${toml(read)}`,
      `publish = ${toml(publish)}`,
      "",
    );
  token(TOKENS.publisher, "feeder", ["publisher"], ["*"], ["*"]);
  token(TOKENS.alice, "alice", [], ["*"], []);
  token(TOKENS.alice2, "alice", [], ["*"], []);
  token(TOKENS.bob, "bob", [], ["custom.*"], []);
  lines.push("[limits]");
  for (const [key, value] of Object.entries(limits)) lines.push(`${key} = ${toml(value)}`);
  return `${lines.join("\n")}\n`;
}

/** Spawns the binary; resolves with the process and its URL, or `undefined` if it did not listen. */
function launch(configPath, listen) {
  return new Promise((resolve, reject) => {
    const child = spawn(SERVER_BIN, ["--config", configPath, "--listen", listen, "--log", "warn"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${SERVER_BIN} printed no address within 10 s; stderr: ${err}`));
    }, 10_000);
    child.stderr.on("data", (chunk) => (err += chunk));
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const line = out.split("\n")[0];
      if (!out.includes("\n")) return;
      clearTimeout(timer);
      const url = line.trim().replace(/^listening on /, "");
      if (url === line.trim()) {
        child.kill("SIGKILL");
        reject(new Error(`${SERVER_BIN}: expected "listening on <url>", got ${JSON.stringify(line)}`));
      } else resolve({ child, url });
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolve(undefined); // did not listen (e.g. the port is still taken); no-op after resolve
      void code;
    });
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${SERVER_BIN} (build it with \`cargo build -p rtbus-server\` or set RTBUS_SERVER_BIN): ${error.message}`));
    });
  });
}

/**
 * Starts `rtbus-server` on a free loopback port.
 *
 * @param {{ publicTopics?: string[], allowedOrigins?: string[], limits?: Record<string, number> }} [options]
 */
export async function startServer(options = {}) {
  if (!existsSync(SERVER_BIN)) {
    throw new Error(`no rtbus-server binary at ${SERVER_BIN}: run \`cargo build -p rtbus-server\` or set RTBUS_SERVER_BIN`);
  }
  const dir = mkdtempSync(path.join(tmpdir(), "rtbus-client-test-"));
  const configPath = path.join(dir, "rtbus.toml");
  writeFileSync(configPath, config(options));
  let running = await launch(configPath, "127.0.0.1:0");
  if (!running) throw new Error(`${SERVER_BIN} exited before listening`);
  const port = Number(new URL(running.url).port);

  const exited = (child) =>
    child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once("exit", resolve));

  return {
    port,
    /** The server's WebSocket URL (`path` replaces `/api/realtime`). */
    url: (p = "/api/realtime") => `ws://127.0.0.1:${port}${p}`,
    /** Kills the server (`SIGKILL`: no close frames; `SIGTERM`: 1001 to every connection). */
    async kill(signal = "SIGKILL") {
      if (!running) return;
      const { child } = running;
      running = undefined;
      child.kill(signal);
      await exited(child);
    },
    /** Starts the server again on the same port (a new process: every topic gets a new epoch). */
    async restart() {
      for (let tries = 0; tries < 50; tries += 1) {
        running = await launch(configPath, `127.0.0.1:${port}`);
        if (running) return;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      throw new Error(`rtbus-server could not listen on 127.0.0.1:${port} again`);
    },
    /** Kills the server and removes its config. */
    async stop() {
      await this.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A client with fast test settings; `options` override them. */
export function client(url, options = {}) {
  return createClient({
    url,
    WebSocket,
    backoff: { minMs: 20, maxMs: 200 },
    requestTimeoutMs: 3_000,
    heartbeat: false,
    ...options,
  });
}

/**
 * Resolves once `check()` is truthy (checked now and on every `emitter` event of the client,
 * and every 10 ms); rejects after `ms` with `what` and what `describe()` says.
 */
export function until(check, what, { ms = 5_000, describe = () => "" } = {}) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const tick = () => {
      let value;
      try {
        value = check();
      } catch (error) {
        clearInterval(timer);
        reject(error);
        return;
      }
      if (value) {
        clearInterval(timer);
        resolve(value);
      } else if (Date.now() - started > ms) {
        clearInterval(timer);
        reject(new Error(`timed out after ${ms} ms waiting for ${what}${describe() ? `: ${describe()}` : ""}`));
      }
    };
    const timer = setInterval(tick, 10);
    tick();
  });
}

/** Resolves with the arguments of the next `event` of `client` that satisfies `match`. */
export function next(client, event, match = () => true, ms = 5_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out after ${ms} ms waiting for a "${event}" event`));
    }, ms);
    const off = client.on(event, (...args) => {
      if (!match(...args)) return;
      clearTimeout(timer);
      off();
      resolve(args);
    });
  });
}

/** What a fresh subscriber of `topic` gets as its snapshot right now. */
export async function freshSnapshot(url, topic, token = TOKENS.alice) {
  const reader = client(url, { getToken: () => token });
  try {
    const sub = reader.subscribe(topic);
    await sub.ready;
    return { state: sub.state, epoch: sub.epoch, seq: sub.seq };
  } finally {
    reader.close();
  }
}
