// vault-mcp driven by the MCP Inspector's command-line mode (`inspector --cli`, the locally
// installed package), the way a person checks a server from a shell: one process per request,
// a bearer header, JSON on stdout.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { MCP_URL, NOTE_TOOLS, mintToken } from './helpers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const INSPECTOR = path.join(here, 'node_modules', '.bin', 'inspector');
const token = mintToken('inspector-user');
// The Inspector keeps state under ~/.mcp-inspector; give it a home of its own, not the user's.
const home = mkdtempSync(path.join(tmpdir(), 'inspector-home-'));
after(() => rmSync(home, { recursive: true, force: true }));

/** Runs one Inspector CLI request; returns its `result` (`--format json` prints {"result": ...}). */
async function inspect(...args) {
  const argv = [
    INSPECTOR,
    '--cli',
    MCP_URL,
    '--transport',
    'http',
    '--header',
    `Authorization: Bearer ${token}`,
    '--format',
    'json',
    ...args,
  ];
  // Run by the same Node as the tests, so the Inspector never depends on which `node` is on PATH.
  const { stdout } = await promisify(execFile)(process.execPath, argv, {
    env: { ...process.env, HOME: home },
    timeout: 60_000,
  }).catch((err) => {
    throw new Error(`inspector ${args.join(' ')} failed (exit ${err.code}):\n${err.stdout}\n${err.stderr}`);
  });
  const out = JSON.parse(stdout);
  assert.ok('result' in out, `no result in ${stdout}`);
  return out.result;
}

/** A tool call that must succeed; returns its structured content. */
async function callTool(name, ...pairs) {
  const result = await inspect('--method', 'tools/call', '--tool-name', name, ...pairs.flatMap((p) => ['--tool-arg', p]));
  assert.equal(result.isError, false, `${name}: ${JSON.stringify(result)}`);
  assert.ok(result.structuredContent, `${name} returned no structuredContent`);
  assert.deepEqual(JSON.parse(result.content[0].text), result.structuredContent);
  return result.structuredContent;
}

test('tools/list shows every note tool with its schemas', { timeout: 60_000 }, async () => {
  const { tools } = await inspect('--method', 'tools/list');
  const names = tools.map((tool) => tool.name);
  for (const name of NOTE_TOOLS) assert.ok(names.includes(name), `tools/list lacks ${name}: ${names}`);
  for (const tool of tools) {
    assert.equal(tool.inputSchema.type, 'object', tool.name);
    assert.equal(tool.outputSchema?.type, 'object', tool.name);
  }
});

// The three calls below build on each other: each runs in its own Inspector process and session.
test('tools/call write_note creates the note', { timeout: 60_000 }, async () => {
  const written = await callTool('write_note', 'path=a.md', 'body=hello');
  assert.equal(written.path, 'a.md');
  assert.equal(written.version, 1);
});

test('tools/call read_note returns what was written', { timeout: 60_000 }, async () => {
  const note = await callTool('read_note', 'path=a.md');
  assert.equal(note.path, 'a.md');
  assert.equal(note.body, 'hello');
});

test('tools/call search_notes finds it', { timeout: 60_000 }, async () => {
  const found = await callTool('search_notes', 'query=hello');
  assert.deepEqual(
    found.results.map((hit) => hit.path),
    ['a.md'],
  );
  assert.match(found.results[0].snippet, /<mark>hello<\/mark>/i);
});

test('a tool failure comes back as an isError result with a stable code', { timeout: 60_000 }, async () => {
  // The Inspector exits 5 ("tool_is_error") after printing the result: read what it printed.
  const failure = await inspect('--method', 'tools/call', '--tool-name', 'read_note', '--tool-arg', 'path=missing.md').then(
    () => assert.fail('the Inspector should report the tool error'),
    (err) => err,
  );
  assert.match(failure.message, /exit 5/);
  const printed = failure.message.split('\n').find((line) => line.startsWith('{"result"'));
  assert.ok(printed, failure.message);
  const result = JSON.parse(printed).result;
  assert.equal(result.isError, true, JSON.stringify(result));
  assert.equal(result.structuredContent.code, 'not_found');
  assert.match(result.content[0].text, /missing\.md/);
});
