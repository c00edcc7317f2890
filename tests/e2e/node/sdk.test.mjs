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

test('edit_note edits in place, dry-runs and answers typed errors; recent_notes lists newest first', { timeout: 30_000 }, async (t) => {
  const session = await connect(mintToken('edith'));
  t.after(() => session.close());
  const { client } = session;

  const { tools } = await client.listTools();
  const byName = new Map(tools.map((tool) => [tool.name, tool]));
  assert.equal(byName.get('edit_note')?.annotations?.idempotentHint, false);
  assert.equal(byName.get('recent_notes')?.annotations?.readOnlyHint, true);

  const body = '# Plan\n\nIntro.\n\n## Tasks\n\n- one\n- two\n';
  await callOk(client, 'write_note', { path: 'plan.md', body });
  await callOk(client, 'write_note', { path: 'work/other.md', body: 'x' });

  const dry = await callOk(client, 'edit_note', {
    path: 'plan.md',
    dry_run: true,
    edits: [{ op: 'replace', find: '- two', replace: '- 2' }],
  });
  assert.equal(dry.version, 1);
  assert.match(dry.diff, /\n-- two\n\+- 2\n/);
  assert.equal((await callOk(client, 'read_note', { path: 'plan.md' })).body, body);

  const edited = await callOk(client, 'edit_note', {
    path: 'plan.md',
    if_version: 1,
    edits: [
      { op: 'replace', find: '- two', replace: '- 2' },
      { op: 'append', text: 'Done.' },
    ],
  });
  assert.equal(edited.version, 2);
  assert.equal((await callOk(client, 'read_note', { path: 'plan.md' })).body, `${body.replace('- two', '- 2')}Done.\n`);

  const mismatch = await client.callTool({
    name: 'edit_note',
    arguments: { path: 'plan.md', edits: [{ op: 'replace', find: 'absent', replace: 'x' }] },
  });
  assert.equal(mismatch.isError, true);
  assert.equal(mismatch.structuredContent.code, 'occurrence_mismatch');
  assert.equal(mismatch.structuredContent.found, 0);
  const noHeading = await client.callTool({
    name: 'edit_note',
    arguments: { path: 'plan.md', edits: [{ op: 'replace_section', heading: 'Nope', text: 'x' }] },
  });
  assert.equal(noHeading.structuredContent.code, 'heading_not_found');

  const recent = await callOk(client, 'recent_notes', {});
  assert.deepEqual(recent.notes.map((n) => n.path), ['plan.md', 'work/other.md']);
  const work = await callOk(client, 'recent_notes', { folder: 'work' });
  assert.deepEqual(work.notes.map((n) => n.path), ['work/other.md']);
});

test('move_note rewrites the links to a moved note; note_history lists the move; restore_note undoes it', { timeout: 30_000 }, async (t) => {
  const session = await connect(mintToken('mira'));
  t.after(() => session.close());
  const { client } = session;

  const { tools } = await client.listTools();
  const byName = new Map(tools.map((tool) => [tool.name, tool]));
  for (const name of ['move_note', 'note_history', 'restore_note']) {
    assert.equal(byName.get(name)?.outputSchema?.type, 'object', `${name} has no object outputSchema`);
  }
  assert.equal(byName.get('note_history').annotations?.readOnlyHint, true);

  const idea = 'Ship the first version.\n\n## Goal\n\nOne user, one vault.\n';
  const journal = 'Today: see [[drafts/idea#Goal|the goal]] and ![[idea]].\n';
  await callOk(client, 'write_note', { path: 'drafts/idea.md', body: idea });
  await callOk(client, 'write_note', { path: 'journal/today.md', body: journal });

  const moved = await callOk(client, 'move_note', { from: 'drafts/idea.md', to: 'projects/launch.md', if_version: 1 });
  assert.equal(moved.dry_run, false);
  assert.deepEqual(moved.notes, [{ from: 'drafts/idea.md', to: 'projects/launch.md' }]);
  assert.deepEqual(moved.rewritten, [{ path: 'journal/today.md', links: 2 }]);
  assert.ok(moved.operation_id);
  // Heading, alias and embed survive; only the target text changes.
  assert.equal(
    (await callOk(client, 'read_note', { path: 'journal/today.md' })).body,
    'Today: see [[projects/launch#Goal|the goal]] and ![[launch]].\n',
  );
  assert.equal((await callOk(client, 'read_note', { path: 'projects/launch.md' })).body, idea);
  const gone = await client.callTool({ name: 'read_note', arguments: { path: 'drafts/idea.md' } });
  assert.equal(gone.isError, true);
  assert.equal(gone.structuredContent.code, 'not_found');

  const history = await callOk(client, 'note_history', { path: 'projects/launch.md' });
  const [newest] = history.entries;
  assert.equal(newest.operation, 'move');
  assert.deepEqual([newest.from, newest.to, newest.moved], ['drafts/idea.md', 'projects/launch.md', true]);
  assert.equal(newest.operation_id, moved.operation_id);
  const referrer = await callOk(client, 'note_history', { path: 'journal/today.md', limit: 1 });
  assert.equal(referrer.entries.length, 1);
  assert.deepEqual([referrer.entries[0].operation, referrer.entries[0].moved], ['move', false]);

  const restored = await callOk(client, 'restore_note', { path: 'projects/launch.md', history_id: newest.id });
  assert.equal(restored.action, 'moved_back');
  assert.equal(restored.path, 'drafts/idea.md');
  assert.deepEqual(restored.moved.notes, [{ from: 'projects/launch.md', to: 'drafts/idea.md' }]);
  assert.equal((await callOk(client, 'read_note', { path: 'drafts/idea.md' })).body, idea);
  assert.equal((await callOk(client, 'read_note', { path: 'journal/today.md' })).body, journal);
  const after = await client.callTool({ name: 'read_note', arguments: { path: 'projects/launch.md' } });
  assert.equal(after.structuredContent.code, 'not_found');
  const listed = await callOk(client, 'list_notes', {});
  assert.deepEqual(listed.notes.map((n) => n.path).sort(), ['drafts/idea.md', 'journal/today.md']);
});
