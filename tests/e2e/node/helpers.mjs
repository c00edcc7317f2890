// Shared by the Node end-to-end tests: where the running vault-mcp is, how to get a token for a
// user, and an MCP client session built the way a real TypeScript application would build it.
//
// scripts/e2e-node starts the server and passes its configuration in the environment: VAULT_MCP_URL
// (the /mcp endpoint), VAULT_MCP_BIN, and the server's own settings (JWT_SECRET_KEY, PUBLIC_URL,
// MODE, ...), so that `vault-mcp token` run from here signs tokens the server accepts.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run these tests through scripts/e2e-node`);
  return value;
}

export const MCP_URL = required('VAULT_MCP_URL');
export const VAULT_MCP_BIN = required('VAULT_MCP_BIN');

export const NOTE_TOOLS = [
  'list_notes',
  'read_note',
  'write_note',
  'delete_note',
  'search_notes',
  'get_backlinks',
  'get_tags',
];

/** A bearer token for `user`, minted by the server's own CLI (never built by hand here). */
export function mintToken(user, ...scopes) {
  const args = ['token', '--user', user, '--ttl', '1h', ...scopes.flatMap((s) => ['--scope', s])];
  return execFileSync(VAULT_MCP_BIN, args, { encoding: 'utf8' }).trim();
}

/**
 * An initialized SDK client session for `token`. `getStreamOpen` settles once the SDK's standalone
 * GET stream has been answered: notifications not tied to a request travel only on that stream, so
 * a test that waits for one must not cause it before the stream exists.
 */
export async function connect(token, name = 'vault-mcp-e2e-node') {
  let streamOpened;
  const getStreamOpen = new Promise((resolve, reject) => {
    streamOpened = { resolve, reject };
  });
  // Awaited only by tests that need it; an unawaited refusal must not crash the others.
  getStreamOpen.catch(() => {});
  const observingFetch = async (url, init) => {
    const response = await fetch(url, init);
    if ((init?.method ?? 'GET') === 'GET') {
      if (response.ok) streamOpened.resolve();
      else streamOpened.reject(new Error(`the server refused the GET stream: HTTP ${response.status}`));
    }
    return response;
  };
  const transport = new StreamableHTTPClientTransport(new URL(MCP_URL), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
    fetch: observingFetch,
  });
  const client = new Client({ name, version: '1.0.0' });
  await client.connect(transport);
  return {
    client,
    transport,
    getStreamOpen,
    /** Ends the session on the server (DELETE), then drops the connection. */
    async close() {
      await transport.terminateSession();
      await client.close();
    },
  };
}

/** Calls a tool that must succeed; returns its structured content. */
export async function callOk(client, name, args) {
  const result = await client.callTool({ name, arguments: args });
  assert.notEqual(result.isError, true, `${name} failed: ${JSON.stringify(result)}`);
  assert.ok(result.structuredContent, `${name} returned no structuredContent`);
  // Clients that only read text must see the same data.
  const text = result.content.find((c) => c.type === 'text');
  assert.ok(text, `${name} returned no text content`);
  assert.deepEqual(JSON.parse(text.text), result.structuredContent);
  return result.structuredContent;
}

/**
 * Resolves like `promise`, or rejects after `ms` milliseconds with `message` (a string, or a
 * function called at that moment, so the message can describe what had happened by then).
 */
export function within(ms, promise, message) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(typeof message === 'function' ? message() : message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
