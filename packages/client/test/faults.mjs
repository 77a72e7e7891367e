// A fault simulator: a loopback TCP proxy in front of the server that a test controls. It can
// drop every connection, stop forwarding (pause), delay each chunk, half-close the client's
// side, and refuse new connections, so the client's reconnect, heartbeat and resume paths can
// be driven on purpose.

import net from "node:net";

/**
 * Starts a proxy on a free loopback port forwarding to `target` ({ host, port }).
 *
 * @returns {Promise<{
 *   port: number,
 *   url: (path?: string) => string,
 *   accepted: () => number,
 *   open: () => number,
 *   drop: (options?: { refuse?: boolean }) => void,
 *   refuse: (on: boolean) => void,
 *   pause: () => void,
 *   resume: () => void,
 *   delay: (ms: number) => void,
 *   halfClose: () => void,
 *   close: () => Promise<void>,
 * }>}
 */
export async function startProxy(target) {
  /** @type {Set<{ client: net.Socket, upstream: net.Socket, paused: boolean, held: Array<[net.Socket, Buffer]> }>} */
  const pairs = new Set();
  let accepted = 0;
  let refusing = false;
  let delayMs = 0;

  const forward = (pair, to, chunk) => {
    if (pair.paused) {
      pair.held.push([to, chunk]);
      return;
    }
    const write = () => {
      if (!to.destroyed && to.writable) to.write(chunk);
    };
    if (delayMs > 0) setTimeout(write, delayMs);
    else write();
  };

  const server = net.createServer((client) => {
    accepted += 1;
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = net.connect(target.port, target.host);
    const pair = { client, upstream, paused: false, held: [] };
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("data", (chunk) => forward(pair, upstream, chunk));
    upstream.on("data", (chunk) => forward(pair, client, chunk));
    client.on("close", end);
    upstream.on("close", end);
    client.on("error", end);
    upstream.on("error", end);
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error(`proxy: unexpected address ${address}`);
  const port = address.port;

  return {
    port,
    /** The WebSocket URL through the proxy. */
    url: (path = "/api/realtime") => `ws://127.0.0.1:${port}${path}`,
    /** How many connections the proxy accepted (refused ones included). */
    accepted: () => accepted,
    /** How many connections are being forwarded now. */
    open: () => pairs.size,
    /** Drops every connection at once (no close frame: the client sees 1006). */
    drop({ refuse = false } = {}) {
      refusing = refuse || refusing;
      for (const pair of [...pairs]) {
        pair.client.destroy();
        pair.upstream.destroy();
      }
      pairs.clear();
    },
    /** Refuses (accepts and at once destroys) new connections while `on`. */
    refuse(on) {
      refusing = on;
    },
    /** Stops forwarding on the current connections, both ways; new connections flow. */
    pause() {
      for (const pair of pairs) pair.paused = true;
    },
    /** Forwards what the paused connections held, and forwards again. */
    resume() {
      for (const pair of pairs) {
        pair.paused = false;
        for (const [to, chunk] of pair.held.splice(0)) forward(pair, to, chunk);
      }
    },
    /** Delays every chunk by `ms` from now on (order is kept). */
    delay(ms) {
      delayMs = ms;
    },
    /** Half-closes the client's side of every connection (FIN to the client); the server side stays. */
    halfClose() {
      for (const pair of pairs) pair.client.end();
    },
    /** Stops the proxy and drops every connection. */
    async close() {
      refusing = true;
      for (const pair of [...pairs]) {
        pair.client.destroy();
        pair.upstream.destroy();
      }
      await new Promise((resolve) => server.close(() => resolve(undefined)));
    },
  };
}
