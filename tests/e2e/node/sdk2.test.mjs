// vault-mcp driven by the official MCP TypeScript SDK v2 (`@modelcontextprotocol/client`) on the
// stateless revision 2026-07-28: the client negotiates it with `server/discover` (no `initialize`,
// no session), runs the seven note tools (the delete confirmed through an `input_required` result
// answered by the client's elicitation handler and retried), and hears of a write made by another
// client through `subscriptions/listen`.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';

import { MCP_URL, NOTE_TOOLS, callOk, mintToken, within } from './helpers.mjs';

const MODERN = '2026-07-28';

/**
 * A v2 client for `token` that negotiates the revision (`mode: 'auto'`) and answers elicitations
 * with `answer`. `wire` collects every POSTed JSON-RPC message (method, params, session header).
 */
async function connectModern(token, { answer, name = 'vault-mcp-e2e-sdk2' } = {}) {
  const wire = [];
  const observingFetch = async (url, init) => {
    if ((init?.method ?? 'GET') === 'POST' && typeof init.body === 'string') {
      const headers = new Headers(init.headers);
      const body = JSON.parse(init.body);
      for (const message of Array.isArray(body) ? body : [body]) {
        wire.push({ method: message.method, params: message.params, sessionId: headers.get('mcp-session-id') });
      }
    }
    return fetch(url, init);
  };
  const transport = new StreamableHTTPClientTransport(new URL(MCP_URL), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
    fetch: observingFetch,
  });
  const client = new Client(
    { name, version: '1.0.0' },
    { capabilities: { elicitation: { form: {} } }, versionNegotiation: { mode: 'auto' } },
  );
  const asked = [];
  client.setRequestHandler('elicitation/create', async (request) => {
    asked.push(request.params);
    return answer ? answer(request.params) : { action: 'decline' };
  });
  await within(30_000, client.connect(transport), 'the v2 client did not connect');
  return { client, transport, wire, asked };
}

test('the TypeScript SDK v2 negotiates 2026-07-28 and runs the seven tools statelessly', { timeout: 60_000 }, async (t) => {
  const { client, wire, asked } = await connectModern(mintToken('alice'), {
    answer: () => ({ action: 'accept', content: { confirm: true } }),
  });
  t.after(() => client.close());

  assert.equal(client.getNegotiatedProtocolVersion(), MODERN, 'negotiated the current revision');
  assert.equal(client.getProtocolEra(), 'modern', 'not the 2025 fallback');
  assert.ok(client.getDiscoverResult(), 'the server answered server/discover');

  const { tools } = await client.listTools();
  const names = tools.map((tool) => tool.name);
  for (const name of NOTE_TOOLS) assert.ok(names.includes(name), `tools/list lacks ${name}`);

  const topic = { path: 'topics/rust.md', body: '# Rust\nOwnership and borrowing. #lang' };
  const journal = { path: 'journal/today.md', body: 'Learned about [[rust]] ownership today.' };
  assert.equal((await callOk(client, 'write_note', topic)).version, 1);
  await callOk(client, 'write_note', journal);
  await callOk(client, 'write_note', { path: 'scratch.md', body: 'to be deleted' });

  const listed = await callOk(client, 'list_notes', {});
  assert.deepEqual(listed.notes.map((n) => n.path).sort(), ['journal/today.md', 'scratch.md', 'topics/rust.md']);
  assert.equal((await callOk(client, 'read_note', { path: journal.path })).body, journal.body);
  const found = await callOk(client, 'search_notes', { query: 'ownership' });
  assert.deepEqual(found.results.map((hit) => hit.path).sort(), [journal.path, topic.path]);
  const back = await callOk(client, 'get_backlinks', { path: topic.path });
  assert.deepEqual(back.backlinks.map((b) => b.path), [journal.path]);
  assert.deepEqual((await callOk(client, 'get_tags', {})).tags, [{ tag: 'lang', count: 1 }]);

  // The server asks (input_required); the SDK answers through the elicitation handler and retries.
  const deleted = await callOk(client, 'delete_note', { path: 'scratch.md' });
  assert.equal(deleted.path, 'scratch.md');
  assert.equal(asked.length, 1, 'the delete asked for a confirmation once');
  assert.match(asked[0].message, /scratch\.md/);
  const deletes = wire.filter((m) => m.method === 'tools/call' && m.params?.name === 'delete_note');
  assert.equal(deletes.length, 2, 'the delete was sent, then retried with the answer');
  assert.equal(deletes[0].params.requestState, undefined);
  assert.ok(deletes[1].params.requestState, 'the retry echoes the requestState');
  assert.equal(deletes[1].params.inputResponses?.confirm_delete?.action, 'accept');
  const after = await callOk(client, 'list_notes', {});
  assert.ok(!after.notes.some((n) => n.path === 'scratch.md'), 'the confirmed delete removed the note');

  // Stateless on the wire: discovery first, no initialize, no session header, the revision in _meta.
  assert.equal(wire[0].method, 'server/discover');
  assert.ok(!wire.some((m) => m.method === 'initialize'), 'no initialize was sent');
  assert.ok(wire.every((m) => m.sessionId === null), 'no request carried a session id');
  const call = wire.find((m) => m.method === 'tools/call');
  assert.equal(call.params._meta?.['io.modelcontextprotocol/protocolVersion'], MODERN);
});

test('a declined delete confirmation deletes nothing', { timeout: 30_000 }, async (t) => {
  const { client, asked } = await connectModern(mintToken('dora'), { answer: () => ({ action: 'decline' }) });
  t.after(() => client.close());
  await callOk(client, 'write_note', { path: 'keep.md', body: 'stay' });
  const result = await client.callTool({ name: 'delete_note', arguments: { path: 'keep.md' } });
  assert.equal(result.isError, true, `a declined delete succeeded: ${JSON.stringify(result)}`);
  assert.equal(asked.length, 1);
  assert.equal((await callOk(client, 'read_note', { path: 'keep.md' })).body, 'stay');
});

test('subscriptions/listen delivers a write made by another client', { timeout: 30_000 }, async (t) => {
  const token = mintToken('carol');
  const listener = await connectModern(token, { name: 'listener' });
  t.after(() => listener.client.close());
  const writer = await connectModern(token, { name: 'writer' });
  t.after(() => writer.client.close());
  await callOk(writer.client, 'write_note', { path: 'watched.md', body: 'one' });

  const updates = [];
  const listChanges = [];
  let heard;
  const updated = new Promise((resolve) => {
    heard = resolve;
  });
  listener.client.setNotificationHandler('notifications/resources/updated', (n) => {
    updates.push(n.params);
    if (n.params.uri === 'note:///watched.md') heard(n.params);
  });
  listener.client.setNotificationHandler('notifications/resources/list_changed', (n) => listChanges.push(n));

  const filter = { resourcesListChanged: true, resourceSubscriptions: ['note:///watched.md'] };
  const subscription = await within(10_000, listener.client.listen(filter), 'the listen was not acknowledged');
  t.after(() => subscription.close());
  assert.deepEqual(subscription.honoredFilter, filter);
  assert.ok(
    listener.wire.some((m) => m.method === 'subscriptions/listen'),
    'the subscription went through subscriptions/listen',
  );

  await callOk(writer.client, 'write_note', { path: 'watched.md', body: 'two' });
  const params = await within(10_000, updated, () => `no update for watched.md (got ${JSON.stringify(updates)})`);
  assert.equal(params.uri, 'note:///watched.md');

  // A new note changes the list: the listener asked for that too.
  await callOk(writer.client, 'write_note', { path: 'fresh.md', body: 'new' });
  await within(10_000, (async () => {
    while (listChanges.length === 0) await new Promise((r) => setTimeout(r, 50));
  })(), 'no list_changed for a new note');

  await subscription.close();
  assert.equal(await within(5_000, subscription.closed, 'the subscription did not close'), 'local');
});
