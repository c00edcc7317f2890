// Test-only loopback proxy that adds `Authorization: Bearer <token>` to every request it forwards
// to a vault-mcp server. The MCP conformance suite has no way to send a bearer header, and vault-mcp
// never serves an unauthenticated request (there is deliberately no "auth off" mode a misconfigured
// deployment could end up in), so the credential is added here, in the tests, instead.
//
// Usage: BEARER_TOKEN=<jwt> node bearer-proxy.mjs [UPSTREAM_URL]
//   Prints the port it listens on (127.0.0.1) as the first line of stdout. Without UPSTREAM_URL it
//   reads the upstream from the first line of stdin, so a caller can learn the proxy's port (and
//   put its origin into the server's ALLOWED_ORIGINS) before the server exists.
//
// The Host and Origin headers are forwarded exactly as the client sent them: the conformance suite
// probes DNS-rebinding protection through those headers, and the server must see what it sent.
// Responses, SSE included, are streamed through chunk by chunk; nothing is buffered.

import http from 'node:http';
import readline from 'node:readline';
import { pathToFileURL } from 'node:url';

// Connection-scoped headers belong to one hop; each side of the proxy negotiates its own.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

function withoutHopByHop(headers) {
  const out = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!HOP_BY_HOP.has(name.toLowerCase())) out[name] = value;
  }
  return out;
}

/**
 * Start a proxy on 127.0.0.1 (port 0 unless given). `upstream` may be a URL string or a function
 * returning one (read per request, so it can be set after the proxy is listening).
 * Resolves to { server, port, close() }.
 */
export async function startBearerProxy({ upstream, token, port = 0 }) {
  if (!token) throw new Error('a bearer token is required');
  const upstreamOf = typeof upstream === 'function' ? upstream : () => upstream;
  // Long-lived SSE streams must not be cut by a pooled connection's timeouts.
  const agent = new http.Agent({ keepAlive: true });

  const server = http.createServer((req, res) => {
    const base = upstreamOf();
    if (!base) {
      res.writeHead(503, { 'content-type': 'text/plain' }).end('proxy has no upstream yet\n');
      return;
    }
    const target = new URL(req.url, base);
    const headers = withoutHopByHop(req.headers);
    headers.authorization = `Bearer ${token}`;
    const upstreamReq = http.request(
      target,
      // The client's Host goes through untouched; only a request without one gets the upstream's.
      { method: req.method, headers, agent, setHost: !req.headers.host },
      (upstreamRes) => {
        res.writeHead(upstreamRes.statusCode, upstreamRes.statusMessage, withoutHopByHop(upstreamRes.headers));
        // An SSE stream's first event must reach the client now, not when a buffer fills.
        res.flushHeaders();
        upstreamRes.pipe(res);
        upstreamRes.on('error', () => res.destroy());
      },
    );
    upstreamReq.on('error', (err) => {
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'text/plain' }).end(`upstream error: ${err.message}\n`);
      } else {
        res.destroy(err);
      }
    });
    // When the client goes away (e.g. closes its GET stream), the server must see it go too.
    res.on('close', () => {
      if (!res.writableFinished) upstreamReq.destroy();
    });
    req.pipe(upstreamReq);
  });

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return {
    server,
    port: server.address().port,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        agent.destroy();
        server.close(() => resolve());
      }),
  };
}

async function main() {
  const token = process.env.BEARER_TOKEN;
  if (!token) {
    console.error('bearer-proxy: set BEARER_TOKEN');
    process.exit(2);
  }
  let upstream = process.argv[2] ?? null;
  const proxy = await startBearerProxy({ upstream: () => upstream, token });
  process.stdout.write(`${proxy.port}\n`);
  if (!upstream) {
    const lines = readline.createInterface({ input: process.stdin });
    for await (const line of lines) {
      upstream = line.trim();
      break;
    }
    if (!upstream) {
      console.error('bearer-proxy: no upstream URL on stdin');
      process.exit(2);
    }
  }
  const stop = () => proxy.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err) => {
    console.error(`bearer-proxy: ${err.stack ?? err}`);
    process.exit(1);
  });
}
