// vault-mcp driven by the official MCP TypeScript SDK (Client + StreamableHTTPClientTransport) over
// Streamable HTTP with a bearer token: the tools, the end of a session, and a resource subscription
// seen from a second session of the same user.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';

import { MCP_URL, NOTE_TOOLS, callOk, connect, mintToken, within } from './helpers.mjs';

test('write, read and search notes through the TypeScript SDK', { timeout: 30_000 }, async (t) => {
  const session = await connect(mintToken('alice'));
  t.after(() => session.close());
  const { client } = session;

  const { tools } = await client.listTools();
  const byName = new Map(tools.map((tool) => [tool.name, tool]));
  for (const name of NOTE_TOOLS) {
    assert.ok(byName.has(name), `tools/list lacks ${name}`);
    assert.equal(byName.get(name).inputSchema.type, 'object');
    // listTools made the SDK compile every outputSchema; callTool now validates against them.
    assert.equal(byName.get(name).outputSchema?.type, 'object', `${name} has no object outputSchema`);
  }

  const topic = { path: 'topics/rust.md', body: '# Rust\nOwnership and borrowing. #lang' };
  const journal = { path: 'journal/today.md', body: 'Learned about [[rust]] ownership today.' };
  const first = await callOk(client, 'write_note', topic);
  assert.equal(first.path, topic.path);
  assert.equal(first.version, 1);
  await callOk(client, 'write_note', journal);

  const note = await callOk(client, 'read_note', { path: journal.path });
  assert.equal(note.body, journal.body);
  assert.equal(note.version, 1);

  const found = await callOk(client, 'search_notes', { query: 'ownership' });
  assert.deepEqual(found.results.map((hit) => hit.path).sort(), [journal.path, topic.path].sort());
  for (const hit of found.results) assert.match(hit.snippet, /<mark>ownership<\/mark>/i);

  const rewritten = await callOk(client, 'write_note', { ...topic, body: `${topic.body}\nMore.`, if_version: 1 });
  assert.equal(rewritten.version, 2);
});

test('terminateSession ends the session on the server', { timeout: 30_000 }, async () => {
  const token = mintToken('bob');
  const session = await connect(token);
  await callOk(session.client, 'list_notes', {});
  const sessionId = session.transport.sessionId;
  assert.ok(sessionId, 'the server gave the session an id');
  await session.close();

  // The SDK forgets the id once DELETE succeeds, so ask the server directly whether it is gone.
  const response = await fetch(MCP_URL, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-session-id': sessionId,
      'mcp-protocol-version': session.transport.protocolVersion,
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
  });
  await response.body?.cancel();
  assert.equal(response.status, 404);
});

test('a subscribed session is told when another session of the same user writes the note', { timeout: 30_000 }, async (t) => {
  const token = mintToken('carol');
  const watcher = await connect(token, 'watcher');
  t.after(() => watcher.close());
  const writer = await connect(token, 'writer');
  t.after(() => writer.close());

  const uri = 'note:///watched.md';
  await callOk(writer.client, 'write_note', { path: 'watched.md', body: 'first version' });

  const updates = [];
  let heard;
  const updated = new Promise((resolve) => {
    heard = resolve;
  });
  watcher.client.setNotificationHandler(ResourceUpdatedNotificationSchema, (notification) => {
    updates.push(notification.params.uri);
    if (notification.params.uri === uri) heard(notification);
  });
  await within(5_000, watcher.getStreamOpen, 'the watcher never got its GET stream');
  await watcher.client.subscribeResource({ uri });

  await callOk(writer.client, 'write_note', { path: 'watched.md', body: 'second version' });
  const notification = await within(
    5_000,
    updated,
    () => `no notifications/resources/updated for ${uri} within 5 s (got: ${JSON.stringify(updates)})`,
  );
  assert.equal(notification.method, 'notifications/resources/updated');
  assert.equal(notification.params.uri, uri);

  // The change the notification announced is the one the watcher now reads.
  const { contents } = await watcher.client.readResource({ uri });
  assert.equal(contents[0].uri, uri);
  assert.match(contents[0].text, /second version/);
});
