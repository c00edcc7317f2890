// `vault-mcp stdio` driven by the official MCP TypeScript SDK (Client + StdioClientTransport): the
// note tools over stdin/stdout, and the exclusive lock on the data folder (a second process on the
// same folder is refused at once, naming the first).
//
// Needs only VAULT_MCP_BIN (default target/release/vault-mcp): every test starts its own
// `vault-mcp stdio` children on a temp data folder of its own, so no server has to be running.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

const BIN = path.resolve(
  process.env.VAULT_MCP_BIN ?? path.join(import.meta.dirname, '..', '..', '..', 'target', 'release', 'vault-mcp'),
);

const NOTE_TOOLS = ['list_notes', 'read_note', 'write_note', 'delete_note', 'search_notes', 'get_backlinks', 'get_tags'];
// The transport gives a server this long to exit after its stdin closes, then sends SIGTERM.
const SDK_GRACE_MS = 2_000;

/** A temp folder for one test, removed when the test ends. */
async function tempFolder(t) {
  const dir = await mkdtemp(path.join(tmpdir(), 'vault-stdio-node-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function serverEnv(dataDir, rustLog = 'debug') {
  return { DATA_DIR: dataDir, RUST_LOG: rustLog, PATH: process.env.PATH ?? '' };
}

/** Resolves like `promise`, or rejects after `ms` with `message` (a string or a function). */
function within(ms, promise, message) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(typeof message === 'function' ? message() : message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * A `vault-mcp stdio` child started by the SDK's StdioClientTransport, with an initialized Client.
 * Its stderr is collected (and so always drained: an unread pipe would stall a chatty server).
 */
async function connectStdio(t, dataDir, { rustLog = 'debug', args = [] } = {}) {
  const transport = new StdioClientTransport({
    command: BIN,
    args: ['stdio', ...args],
    env: serverEnv(dataDir, rustLog),
    stderr: 'pipe',
  });
  const session = { transport, stderr: '', errors: [], closed: false };
  transport.stderr.setEncoding('utf8');
  transport.stderr.on('data', (chunk) => {
    session.stderr += chunk;
  });
  const client = new Client({ name: 'vault-mcp-e2e-stdio', version: '1.0.0' });
  client.onerror = (error) => session.errors.push(error);
  session.client = client;
  session.logTail = () => session.stderr.split('\n').slice(-30).join('\n');
  /** Closes stdin and waits for the child; returns how long it took to go. */
  session.close = async () => {
    if (session.closed) return 0;
    session.closed = true;
    const started = Date.now();
    await client.close();
    return Date.now() - started;
  };
  t.after(() => session.close());
  await within(15_000, client.connect(transport), () => `initialize over stdio timed out; stderr:\n${session.logTail()}`);
  session.pid = transport.pid;
  assert.ok(session.pid, 'the transport started no process');
  return session;
}

/** Calls a tool that must succeed; returns its structured content. */
async function callOk(session, name, args) {
  const result = await session.client.callTool({ name, arguments: args });
  assert.notEqual(result.isError, true, `${name} failed: ${JSON.stringify(result)}\n-- stderr:\n${session.logTail()}`);
  assert.ok(result.structuredContent, `${name} returned no structuredContent`);
  const text = result.content.find((c) => c.type === 'text');
  assert.ok(text, `${name} returned no text content`);
  assert.deepEqual(JSON.parse(text.text), result.structuredContent, `${name}: text and structuredContent differ`);
  return result.structuredContent;
}

/** Calls a tool that must fail as a tool result; returns its structured error. */
async function callFails(session, name, args) {
  const result = await session.client.callTool({ name, arguments: args });
  assert.equal(result.isError, true, `${name} should have failed: ${JSON.stringify(result)}`);
  assert.ok(result.structuredContent, `${name}'s error has no structuredContent`);
  return result.structuredContent;
}

/**
 * Runs `vault-mcp <args>` on `dataDir` with its stdin left open (so only the lock, not the end of
 * its input, can make it stop) and waits for it to exit; kills it if it does not within `ms`.
 */
function runSecond(t, dataDir, args, ms = 5_000) {
  const child = spawn(BIN, args, {
    env: { ...serverEnv(dataDir, 'warn'), PORT: '0', HOST: '127.0.0.1' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c) => (stdout += c));
  child.stderr.setEncoding('utf8').on('data', (c) => (stderr += c));
  const started = Date.now();
  const ended = new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, ms: Date.now() - started }));
  });
  return within(ms, ended, () => {
    child.kill('SIGKILL');
    return `\`vault-mcp ${args.join(' ')}\` was still running after ${ms} ms (stdout: ${JSON.stringify(stdout)}, stderr: ${JSON.stringify(stderr)})`;
  });
}

test('initialize, list the tools and run all seven over stdio', { timeout: 60_000 }, async (t) => {
  const dataDir = path.join(await tempFolder(t), 'data');
  const s = await connectStdio(t, dataDir);
  const { client } = s;

  assert.equal(client.getServerVersion()?.name, 'vault-mcp', `serverInfo: ${JSON.stringify(client.getServerVersion())}`);
  assert.ok(client.getServerCapabilities()?.tools, 'the server announced no tools capability');

  const { tools } = await client.listTools();
  const byName = new Map(tools.map((tool) => [tool.name, tool]));
  for (const name of NOTE_TOOLS) {
    assert.ok(byName.has(name), `tools/list lacks ${name}`);
    assert.equal(byName.get(name).inputSchema.type, 'object', `${name}: inputSchema`);
    // listTools made the SDK compile every outputSchema; callTool now validates against them.
    assert.equal(byName.get(name).outputSchema?.type, 'object', `${name} has no object outputSchema`);
  }

  const topic = await callOk(s, 'write_note', { path: 'topics/rust.md', body: '# Rust\nOwnership and borrowing. #lang' });
  assert.equal(topic.path, 'topics/rust.md');
  assert.equal(topic.version, 1);
  assert.equal(topic.created_note, true);
  assert.equal(topic.title, 'Rust', 'the title comes from the first heading');
  assert.deepEqual(topic.tags, ['lang']);
  const journalBody = 'Learned about [[rust]] ownership today. #lang #daily';
  const journal = await callOk(s, 'write_note', { path: 'journal/today.md', body: journalBody });
  assert.equal(journal.version, 1);

  const note = await callOk(s, 'read_note', { path: 'journal/today.md' });
  assert.equal(note.body, journalBody);
  assert.equal(note.version, 1);
  assert.deepEqual([...note.tags].sort(), ['daily', 'lang']);

  const listed = await callOk(s, 'list_notes', {});
  assert.deepEqual(listed.notes.map((n) => n.path), ['journal/today.md', 'topics/rust.md']);
  assert.equal(listed.next_cursor, undefined, 'one page only');
  const inTopics = await callOk(s, 'list_notes', { folder: 'topics' });
  assert.deepEqual(inTopics.notes.map((n) => n.path), ['topics/rust.md']);

  const found = await callOk(s, 'search_notes', { query: 'ownership' });
  assert.deepEqual(found.results.map((hit) => hit.path).sort(), ['journal/today.md', 'topics/rust.md']);
  for (const hit of found.results) assert.match(hit.snippet, /<mark>ownership<\/mark>/i);

  const back = await callOk(s, 'get_backlinks', { path: 'topics/rust.md' });
  assert.deepEqual(back.backlinks.map((b) => b.path), ['journal/today.md']);

  const { tags } = await callOk(s, 'get_tags', {});
  assert.deepEqual(Object.fromEntries(tags.map((x) => [x.tag, x.count])), { lang: 2, daily: 1 });

  const deleted = await callOk(s, 'delete_note', { path: 'journal/today.md' });
  assert.deepEqual(deleted, { path: 'journal/today.md', version: 1 });
  const gone = await callFails(s, 'read_note', { path: 'journal/today.md' });
  assert.equal(gone.code, 'not_found');
  const backAfter = await callOk(s, 'get_backlinks', { path: 'topics/rust.md' });
  assert.deepEqual(backAfter.backlinks, [], 'the deleted note still links here');
  const listedAfter = await callOk(s, 'list_notes', {});
  assert.deepEqual(listedAfter.notes.map((n) => n.path), ['topics/rust.md']);
  const escape = await callFails(s, 'read_note', { path: '../escape.md' });
  assert.equal(escape.code, 'invalid_path');

  assert.deepEqual(s.errors, [], 'the transport reported errors (stdout that is not JSON-RPC?)');
  const onDisk = await readFile(path.join(dataDir, 'vaults', 'local', 'topics', 'rust.md'), 'utf8');
  assert.match(onDisk, /Ownership and borrowing\. #lang/, 'the note is a file in DATA_DIR/vaults/local');
  assert.equal(existsSync(path.join(dataDir, 'vaults', 'local', 'journal', 'today.md')), false, 'delete_note left the file');

  const pid = s.pid;
  const took = await s.close();
  assert.ok(took < SDK_GRACE_MS, `vault-mcp stdio took ${took} ms to exit after its stdin closed (the SDK then kills it)`);
  assert.equal(isAlive(pid), false, `vault-mcp stdio (pid ${pid}) still runs after the client closed`);
  assert.match(s.stderr, /DEBUG/, 'RUST_LOG=debug wrote no debug log to stderr');
});

test('a second vault-mcp stdio on the same folder is refused at once, naming the first', { timeout: 60_000 }, async (t) => {
  const dataDir = path.join(await tempFolder(t), 'data');
  const s = await connectStdio(t, dataDir);
  await callOk(s, 'write_note', { path: 'kept.md', body: 'written while the folder was locked' });

  const second = await runSecond(t, dataDir, ['stdio']);
  assert.notEqual(second.code, 0, `the second stdio was not refused: ${JSON.stringify(second)}`);
  assert.equal(second.stdout, '', 'a refused stdio wrote to stdout');
  assert.match(second.stderr, /is in use by another vault-mcp/, `stderr: ${second.stderr}`);
  assert.ok(
    second.stderr.includes(`(pid ${s.pid}, vault-mcp stdio for local); stop it first, or connect your client to that server`),
    `stderr does not name the first process (pid ${s.pid}): ${second.stderr}`,
  );
  assert.ok(second.stderr.includes(dataDir), `stderr does not name the folder ${dataDir}: ${second.stderr}`);
  assert.ok(second.ms < 5_000, `the refusal took ${second.ms} ms`);

  // The first session is unaffected.
  const note = await callOk(s, 'read_note', { path: 'kept.md' });
  assert.equal(note.body, 'written while the folder was locked');

  // Once the first process is gone, the folder is free again and the note is still there.
  await s.close();
  const again = await connectStdio(t, dataDir);
  const kept = await callOk(again, 'read_note', { path: 'kept.md' });
  assert.equal(kept.body, 'written while the folder was locked');
  const lock = await readFile(path.join(dataDir, 'vault-mcp.lock'), 'utf8');
  assert.equal(lock.trim(), `pid ${again.pid}, vault-mcp stdio for local`, 'the lock file names the new holder');
});

test('a refused vault-mcp serve names the stdio process too', { timeout: 60_000 }, async (t) => {
  const dataDir = path.join(await tempFolder(t), 'data');
  const s = await connectStdio(t, dataDir, { rustLog: 'trace' });
  const serve = await runSecond(t, dataDir, ['serve']);
  assert.notEqual(serve.code, 0, `serve was not refused: ${JSON.stringify(serve)}`);
  assert.doesNotMatch(serve.stdout, /listening on/, 'the refused server listened anyway');
  assert.ok(
    serve.stderr.includes(`is in use by another vault-mcp (pid ${s.pid}, vault-mcp stdio for local)`),
    `serve's stderr: ${serve.stderr}`,
  );
  // With RUST_LOG=trace the session still works: stdout carries JSON-RPC only.
  const written = await callOk(s, 'write_note', { path: 'traced.md', body: 'still fine' });
  assert.equal(written.version, 1);
  assert.deepEqual(s.errors, [], 'the transport reported errors (stdout that is not JSON-RPC?)');
});
