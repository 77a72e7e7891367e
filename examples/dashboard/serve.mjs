// A tiny static file server for dist/, on loopback only: `node serve.mjs [port]` (default
// 8081, or DASHBOARD_PORT), or `serve({ port })` from start.mjs and the tests.

import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { extname, join, normalize, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { dist } from "./build.mjs";

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".png": "image/png",
  ".svg": "image/svg+xml",
};

/** The dashboard's default port; `rtbus-server --demo` listens on 8080 beside it. */
export const DEFAULT_PORT = 8081;

/**
 * Serves `dir` on `host:port` (port 0 picks a free one). Resolves with the page's `url` and a
 * `close()` that stops the server.
 */
export function serve({ dir = dist, host = "127.0.0.1", port = DEFAULT_PORT } = {}) {
  const server = createServer(async (request, response) => {
    const path = decodeURIComponent(new URL(request.url ?? "/", "http://x").pathname);
    const file = normalize(join(dir, path.endsWith("/") ? `${path}index.html` : path));
    if (file !== dir && !file.startsWith(dir + sep)) {
      response.writeHead(403, { "content-type": "text/plain" }).end(`forbidden: ${path}\n`);
      return;
    }
    try {
      const body = await readFile(file);
      response
        .writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream", "cache-control": "no-store" })
        .end(request.method === "HEAD" ? undefined : body);
    } catch {
      response.writeHead(404, { "content-type": "text/plain" }).end(`not found: ${path} (did \`npm run build\` run?)\n`);
    }
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      const address = server.address();
      const shown = host.includes(":") ? `[${host}]` : host;
      resolve({
        url: `http://${shown}:${address.port}/`,
        port: address.port,
        close: () => new Promise((done) => { server.closeAllConnections(); server.close(() => done()); }),
      });
    });
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const port = Number(process.argv[2] ?? process.env.DASHBOARD_PORT ?? DEFAULT_PORT);
  const { url } = await serve({ port });
  console.log(`dashboard: serving dist/ at ${url}`);
}
