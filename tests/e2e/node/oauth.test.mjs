// Real MCP clients that know only the MCP URL connect to vault-mcp by OAuth, vault-mcp being the
// authorization server of its own endpoint, while a person signs in and approves in a real
// Chromium (Debian's /usr/bin/chromium, driven by playwright-core):
//
// - the TypeScript SDK v2 (`@modelcontextprotocol/client`), once with a Client ID Metadata
//   Document this test serves on loopback, once registering dynamically (RFC 7591);
// - `mcp-remote`, the stdio bridge Claude Desktop uses, spoken to over its stdin and stdout.
//
// Each client discovers the authorization server from the 401, sends the person's browser to
// /authorize (the person signs in at the OpenID provider, then approves on the consent page), gets
// the code on a loopback redirect, trades it, then lists tools, writes a note and reads it back.
// The server's access tokens live 4 seconds here, so after a pause each client must refresh on its
// own: the next call succeeds with a new token and no second visit to the browser.
//
// scripts/e2e-node oauth starts the provider and the server and passes: VAULT_BASE (the server's
// PUBLIC_URL), VAULT_MCP_URL (its /mcp endpoint), IDP_URL (the provider), CLIENT_METADATA_PORT (the
// loopback port the server may fetch plain-http metadata documents from, where this test serves
// one), SCREENSHOT_DIR and CHROMIUM.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import { Client, isHttpsUrl, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { chromium } from 'playwright-core';

import { NOTE_TOOLS, within } from './helpers.mjs';

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this suite through scripts/e2e-node oauth`);
  return value;
}

const BASE = required('VAULT_BASE').replace(/\/$/, '');
const MCP_URL = required('VAULT_MCP_URL');
const IDP_ORIGIN = new URL(required('IDP_URL')).origin;
const METADATA_PORT = Number(required('CLIENT_METADATA_PORT'));
const SHOTS = process.env.SCREENSHOT_DIR || mkdtempSync(path.join(tmpdir(), 'vault-oauth-shots-'));
mkdirSync(SHOTS, { recursive: true });
const HERE = path.dirname(fileURLToPath(import.meta.url));

const ALICE_SUB = '1000000000000000000000a1';
/** The server's access-token lifetime in this suite (OAUTH_ACCESS_TOKEN_TTL=4s), plus a margin. */
const PAST_TOKEN_LIFETIME_MS = 5_500;
/**
 * The longest the server may go on accepting an access token after its lifetime: it tolerates 30 s
 * of clock skew past `exp` (src/auth.rs, LEEWAY_SECS), even for the tokens it issued itself.
 */
const EXPIRY_LEEWAY_MS = 30_000;
const UI_TIMEOUT = 20_000;
const NAV_TIMEOUT = 30_000;
/** Generous but bounded: the machine is slow and shared. */
const FLOW = { timeout: 180_000 };

let browser;
/** Every authorization URL handed to the "browser", by any client of this file. */
const browserVisits = [];

/** Who fetched the metadata document, as the server saw it. */
const metadataFetches = [];
let metadataServer;
const METADATA_URL = `http://127.0.0.1:${METADATA_PORT}/clients/vault-e2e.json`;
const METADATA_CLIENT_NAME = 'vault-mcp e2e (metadata document)';

before(async () => {
  // The client's metadata document. Its loopback redirect URI names no port: RFC 8252 lets the
  // client pick any port at run time, and the server must accept that.
  metadataServer = http.createServer((req, res) => {
    metadataFetches.push({ method: req.method, url: req.url, userAgent: req.headers['user-agent'] ?? '' });
    if (req.method !== 'GET' || req.url !== new URL(METADATA_URL).pathname) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({
        client_id: METADATA_URL,
        client_name: METADATA_CLIENT_NAME,
        redirect_uris: ['http://127.0.0.1/callback'],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
      }),
    );
  });
  await new Promise((resolve, reject) => {
    metadataServer.once('error', reject);
    metadataServer.listen(METADATA_PORT, '127.0.0.1', resolve);
  });

  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    timeout: 60_000,
  });
});

after(async () => {
  await browser?.close();
  await new Promise((resolve) => (metadataServer ? metadataServer.close(resolve) : resolve()));
  metadataServer?.closeAllConnections?.();
});

/**
 * The person at the browser: opens `authorizationUrl` in a fresh browser (no cookies, so vault-mcp
 * sends them to the OpenID provider first), signs in as alice, checks the consent page and
 * approves. Resolves once the browser has landed on the client's redirect URI (starting with
 * `redirectPrefix`). Returns the browser context, still signed in to vault-mcp, for checks of the
 * account's connected clients; the caller closes it.
 */
async function approveInBrowser(t, authorizationUrl, { clientName, redirectPrefix, shot }) {
  browserVisits.push(String(authorizationUrl));
  const context = await browser.newContext({ viewport: { width: 1000, height: 760 } });
  context.setDefaultTimeout(UI_TIMEOUT);
  context.setDefaultNavigationTimeout(NAV_TIMEOUT);
  // The stand-in provider's avatars live on a host that does not exist.
  await context.route(/^https:\/\/avatars\.stand-in-idp\.invalid\//, (route) => route.fulfill({ status: 404 }));
  const consoleMessages = [];
  try {
    const page = await context.newPage();
    page.on('console', (m) => consoleMessages.push(`${m.type()}: ${m.text()}`));
    await page.goto(String(authorizationUrl));
    // Not signed in to vault-mcp: its /authorize sends the browser through /login to the provider.
    await page.waitForURL((url) => url.origin === IDP_ORIGIN, { timeout: NAV_TIMEOUT });
    assert.equal(await page.title(), 'Stand-in provider: sign in', 'the provider shows its sign-in page');
    await page.locator(`a.account[data-sub="${ALICE_SUB}"]`).click();

    // Back at vault-mcp, on the very authorization request, now as a consent page.
    const consent = page.locator('#consent');
    await consent.waitFor({ state: 'visible' });
    const at = new URL(page.url());
    assert.equal(at.origin, BASE, 'the consent page is vault-mcp’s');
    assert.equal(at.pathname, '/authorize', 'the sign-in came back to the authorization request');
    assert.equal((await page.locator('#client-name').innerText()).trim(), clientName, 'the consent page names the client');
    assert.equal(
      (await page.locator('#redirect-host').innerText()).trim(),
      new URL(redirectPrefix).hostname,
      'the consent page says where the browser goes next',
    );
    const scopes = await page.locator('#scopes li').allInnerTexts();
    t.diagnostic(`consent page for ${clientName}: scopes ${JSON.stringify(scopes)}`);
    assert.equal(scopes.length, 2, 'the client asked to read and to write, and the page says both');
    await page.screenshot({ path: path.join(SHOTS, shot) });

    await page.locator('#approve').click();
    await page.waitForURL((url) => url.href.startsWith(redirectPrefix), { timeout: NAV_TIMEOUT });
    return context;
  } catch (err) {
    await context.close().catch(() => {});
    if (consoleMessages.length > 0) err.message += `\nbrowser console:\n${consoleMessages.join('\n')}`;
    throw err;
  }
}

/** The applications the signed-in person connected, as their account page lists them. */
async function connectedClients(context) {
  const response = await context.request.get(`${BASE}/api/clients`);
  assert.equal(response.status(), 200, `GET /api/clients answered ${response.status()}`);
  return (await response.json()).clients;
}

/** A loopback port free right now. */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** The client application's redirect endpoint: a loopback server that takes one callback. */
async function callbackServer() {
  const received = [];
  let deliver;
  const first = new Promise((resolve) => (deliver = resolve));
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (url.pathname !== '/callback') {
      res.writeHead(404).end();
      return;
    }
    received.push(url.searchParams);
    deliver(url.searchParams);
    res
      .writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
      .end('<!doctype html><title>Connected</title><p id="done">Connected. You may close this window.</p>');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/callback`,
    received,
    first,
    close: () =>
      new Promise((resolve) => {
        server.close(resolve);
        server.closeAllConnections();
      }),
  };
}

/**
 * An OAuthClientProvider as an application implements it, keeping everything in memory and
 * recording what the SDK asked of it.
 */
class MemoryOAuthProvider {
  constructor({ redirectUrl, clientName, clientInformation }) {
    this._redirectUrl = redirectUrl;
    this._clientName = clientName;
    this._client = clientInformation;
    this.clientSaves = [];
    this.tokenSaves = [];
    this.redirects = [];
    this.invalidated = [];
    this.lastState = undefined;
    this._onRedirect = undefined;
  }

  get redirectUrl() {
    return this._redirectUrl;
  }

  get clientMetadata() {
    return {
      client_name: this._clientName,
      redirect_uris: [this._redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  state() {
    this.lastState = randomBytes(24).toString('base64url');
    return this.lastState;
  }

  clientInformation() {
    return this._client;
  }

  saveClientInformation(info) {
    this._client = info;
    this.clientSaves.push(info);
  }

  tokens() {
    return this._tokens;
  }

  saveTokens(tokens) {
    this._tokens = tokens;
    this.tokenSaves.push(tokens);
  }

  /** The application opens the person's browser; here the test picks the URL up. */
  redirectToAuthorization(url) {
    this.redirects.push(String(url));
    this._onRedirect?.(new URL(url));
  }

  /** Settles with the next URL the SDK sends the person to. */
  nextRedirect() {
    return new Promise((resolve) => (this._onRedirect = resolve));
  }

  saveCodeVerifier(verifier) {
    this._verifier = verifier;
  }

  codeVerifier() {
    if (!this._verifier) throw new Error('no PKCE code verifier was saved');
    return this._verifier;
  }

  saveDiscoveryState(state) {
    this._discovery = state;
  }

  discoveryState() {
    return this._discovery;
  }

  invalidateCredentials(scope) {
    this.invalidated.push(scope);
    if (scope === 'all' || scope === 'tokens') this._tokens = undefined;
    if (scope === 'all' || scope === 'client') this._client = undefined;
    if (scope === 'all' || scope === 'verifier') this._verifier = undefined;
    if (scope === 'all' || scope === 'discovery') this._discovery = undefined;
  }
}

/** A fetch that records each request the SDK makes: method, path, status, grant type, bearer. */
function recordingFetch(log) {
  return async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const method = init?.method ?? (input instanceof Request ? input.method : 'GET');
    let grant;
    if (url.pathname === '/token' && init?.body !== undefined) {
      grant = new URLSearchParams(String(init.body)).get('grant_type');
    }
    const authorization = new Headers(init?.headers).get('authorization');
    const response = await fetch(input, init);
    log.push({ method, path: url.pathname, status: response.status, grant, bearer: authorization?.replace(/^Bearer /, '') });
    return response;
  };
}

/**
 * Waits until the server refuses `accessToken` with 401, asking it every half second with a
 * request of its own (not through the SDK); returns the milliseconds waited. Fails when the server
 * accepts the token for longer than its lifetime plus the server's tolerance.
 */
async function untilRefused(accessToken) {
  const start = Date.now();
  const deadline = start + PAST_TOKEN_LIFETIME_MS + EXPIRY_LEEWAY_MS + 5_000;
  for (;;) {
    const response = await fetch(MCP_URL, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${accessToken}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
    });
    await response.arrayBuffer();
    if (response.status === 401) return Date.now() - start;
    assert.ok(Date.now() < deadline, `the server still accepts the access token after ${Date.now() - start} ms`);
    await sleep(500);
  }
}

/** Calls a tool that must succeed; returns its structured content. */
async function callOk(client, name, args) {
  const result = await within(30_000, client.callTool({ name, arguments: args }), `${name} did not answer`);
  assert.notEqual(result.isError, true, `${name} failed: ${JSON.stringify(result)}`);
  assert.ok(result.structuredContent, `${name} returned no structuredContent`);
  return result.structuredContent;
}

/**
 * The whole life of a TypeScript SDK v2 client that knows only MCP_URL: connect (401, discovery,
 * registration unless `clientInformation` is given, the person approves in the browser), finish
 * the authorization with the callback, connect again, list tools, write and read a note, wait past
 * the access token's lifetime, call again (the SDK refreshes), and check the account lists it.
 */
async function sdkClientFlow(t, { clientName, clientInformation, expectedConsentName, notePath, shot }) {
  const callback = await callbackServer();
  const provider = new MemoryOAuthProvider({ redirectUrl: callback.url, clientName, clientInformation });
  const requests = [];
  const fetchFn = recordingFetch(requests);
  const visitsBefore = browserVisits.length;
  let context;
  let client;
  let transport;
  try {
    // 1. The first connection meets 401; the SDK discovers the server, registers if it must and
    //    hands the person's browser an authorization URL.
    const redirect = provider.nextRedirect();
    const firstTransport = new StreamableHTTPClientTransport(new URL(MCP_URL), { authProvider: provider, fetch: fetchFn });
    const firstClient = new Client({ name: 'vault-mcp-oauth-e2e', version: '1.0.0' });
    await assert.rejects(
      within(60_000, firstClient.connect(firstTransport), 'the first connection neither failed nor answered'),
      (err) => {
        t.diagnostic(`first connection: ${err.name}: ${err.message}`);
        return /unauthori[sz]ed/i.test(`${err.name} ${err.message}`);
      },
      'without a token the first connection ends in an authorization, not a session',
    );
    await firstClient.close().catch(() => {});
    const first401 = requests.find((r) => r.path === '/mcp');
    assert.equal(first401?.status, 401, 'the SDK met 401 at /mcp first');
    assert.ok(
      requests.some((r) => r.path === '/.well-known/oauth-protected-resource/mcp' && r.status === 200),
      `the SDK read the protected-resource metadata (${JSON.stringify(requests.map((r) => r.path))})`,
    );
    assert.ok(
      requests.some((r) => r.path === '/.well-known/oauth-authorization-server' && r.status === 200),
      'the SDK read the authorization-server metadata',
    );

    const authorizationUrl = await within(5_000, redirect, 'the SDK never sent the person to authorize');
    assert.equal(provider.redirects.length, 1, 'one authorization URL');
    assert.equal(authorizationUrl.origin + authorizationUrl.pathname, `${BASE}/authorize`, 'the URL is vault-mcp’s /authorize');
    const q = authorizationUrl.searchParams;
    assert.equal(q.get('response_type'), 'code');
    assert.equal(q.get('code_challenge_method'), 'S256', 'PKCE with S256');
    assert.equal(q.get('redirect_uri'), callback.url);
    assert.equal(q.get('state'), provider.lastState);
    assert.equal(q.get('resource'), MCP_URL, 'the resource indicator names the MCP endpoint');
    const clientId = q.get('client_id');
    assert.equal(clientId, provider.clientInformation()?.client_id, 'the URL names the client the SDK holds');

    // 2. The person signs in and approves; the browser lands on the application's callback.
    context = await approveInBrowser(t, authorizationUrl, {
      clientName: expectedConsentName,
      redirectPrefix: callback.url,
      shot,
    });
    const params = await within(10_000, callback.first, 'the callback never received the redirect');
    assert.equal(callback.received.length, 1, 'one redirect to the application');
    assert.ok(params.get('code'), 'the redirect carries a code');
    assert.equal(params.get('state'), provider.lastState, 'the redirect returns the state');
    assert.equal(params.get('iss'), BASE, 'the redirect names the issuer (RFC 9207)');

    // 3. The application hands the callback to the SDK, which trades the code for tokens.
    await within(30_000, firstTransport.finishAuth(params), 'finishAuth did not finish');
    const codeGrants = requests.filter((r) => r.path === '/token' && r.grant === 'authorization_code');
    assert.deepEqual(
      codeGrants.map((r) => r.status),
      [200],
      'one authorization_code exchange, answered 200',
    );
    const issued = provider.tokens();
    assert.ok(issued?.access_token && issued.refresh_token, 'the SDK holds an access and a refresh token');
    assert.equal(issued.token_type.toLowerCase(), 'bearer');

    // 4. Connected: tools, a write and a read.
    transport = new StreamableHTTPClientTransport(new URL(MCP_URL), { authProvider: provider, fetch: fetchFn });
    client = new Client({ name: 'vault-mcp-oauth-e2e', version: '1.0.0' });
    await within(30_000, client.connect(transport), 'the authorized client did not connect');
    const tools = (await within(30_000, client.listTools(), 'tools/list did not answer')).tools.map((tool) => tool.name);
    for (const name of NOTE_TOOLS) assert.ok(tools.includes(name), `tools/list offers ${name} (got ${tools})`);
    const body = `# Written by ${clientName}\n\nThrough OAuth, approved in the browser.\n`;
    const written = await callOk(client, 'write_note', { path: notePath, body });
    assert.equal(written.path, notePath);
    assert.equal((await callOk(client, 'read_note', { path: notePath })).body, body, 'the note reads back as written');

    // 5. Past the access token's lifetime the SDK refreshes without the person. This SDK refreshes
    //    when the server refuses the token, so first wait until the server does.
    const before = provider.tokens();
    const mark = requests.length;
    const tokenSavesBefore = provider.tokenSaves.length;
    const waited = await untilRefused(before.access_token);
    t.diagnostic(`the server refused the access token ${waited} ms into the pause (its lifetime: ${before.expires_in} s)`);
    const again = await callOk(client, 'read_note', { path: notePath });
    assert.equal(again.body, body, 'the call after the pause succeeded');
    const later = requests.slice(mark);
    t.diagnostic(`requests after the pause: ${JSON.stringify(later.map(({ bearer, ...r }) => r))}`);
    assert.ok(
      later.some((r) => r.path === '/mcp' && r.status === 401 && r.bearer === before.access_token),
      'the server refused the expired access token',
    );
    const refreshes = later.filter((r) => r.path === '/token' && r.grant === 'refresh_token');
    assert.deepEqual(
      refreshes.map((r) => r.status),
      [200],
      'one refresh_token grant, answered 200',
    );
    assert.ok(provider.tokenSaves.length > tokenSavesBefore, 'the SDK saved new tokens');
    const after = provider.tokens();
    assert.notEqual(after.access_token, before.access_token, 'a new access token');
    assert.notEqual(after.refresh_token, before.refresh_token, 'the refresh token rotated');
    assert.ok(
      later.some((r) => r.path === '/mcp' && r.status === 200 && r.bearer === after.access_token),
      'the call went through with the new access token',
    );
    assert.equal(provider.redirects.length, 1, 'the SDK did not send the person to authorize again');
    assert.equal(browserVisits.length, visitsBefore + 1, 'the browser was not opened again');
    assert.equal(callback.received.length, 1, 'no second redirect reached the application');
    assert.deepEqual(provider.invalidated, [], 'the SDK discarded no credentials');

    // 6. The person's account lists the application.
    const listed = (await connectedClients(context)).filter((c) => c.client_id === clientId);
    assert.equal(listed.length, 1, `the account lists the client once (${JSON.stringify(listed)})`);
    assert.equal(listed[0].name, expectedConsentName);
    assert.equal(listed[0].scope, 'notes:read notes:write');
    return { clientId, requests };
  } finally {
    await transport?.terminateSession().catch(() => {});
    await client?.close().catch(() => {});
    await context?.close().catch(() => {});
    await callback.close();
  }
}

test('TypeScript SDK v2 connects with a client ID metadata document', FLOW, async (t) => {
  // The SDK's own metadata-document branch takes only https client ids (SEP-991), and the server
  // can fetch a document over TLS only with a certificate from a public root, which a loopback
  // test cannot have. So the application hands the SDK the document URL as its client id, just
  // as the SDK does itself when the id is https: from there on the flow is the same, and the
  // server must fetch and use the document.
  t.diagnostic(`the SDK's isHttpsUrl(${METADATA_URL}) = ${isHttpsUrl(METADATA_URL)}`);
  const metadataResponse = await fetch(`${BASE}/.well-known/oauth-authorization-server`);
  assert.equal(metadataResponse.status, 200);
  assert.equal((await metadataResponse.json()).client_id_metadata_document_supported, true, 'the server takes metadata documents');
  const fetchesBefore = metadataFetches.length;

  const { clientId, requests } = await sdkClientFlow(t, {
    clientName: 'ignored: the document names the client',
    clientInformation: { client_id: METADATA_URL, issuer: BASE },
    expectedConsentName: METADATA_CLIENT_NAME,
    notePath: 'oauth/ts-sdk-metadata-document.md',
    shot: 'consent-ts-sdk-metadata-document.png',
  });
  assert.equal(clientId, METADATA_URL, 'the client id is the document URL');
  assert.ok(!requests.some((r) => r.path === '/register'), 'no dynamic registration');
  const fetched = metadataFetches.slice(fetchesBefore);
  assert.ok(fetched.length >= 1, 'the server fetched the metadata document');
  assert.ok(
    fetched.every((f) => f.method === 'GET' && f.url === new URL(METADATA_URL).pathname),
    `the server fetched only the document (${JSON.stringify(fetched)})`,
  );
});

test('TypeScript SDK v2 connects with dynamic client registration', FLOW, async (t) => {
  const name = 'vault-mcp e2e (dynamic registration)';
  const { clientId, requests } = await sdkClientFlow(t, {
    clientName: name,
    clientInformation: undefined,
    expectedConsentName: name,
    notePath: 'oauth/ts-sdk-dynamic-registration.md',
    shot: 'consent-ts-sdk-dynamic-registration.png',
  });
  assert.deepEqual(
    requests.filter((r) => r.path === '/register').map((r) => [r.method, r.status]),
    [['POST', 201]],
    'the SDK registered once',
  );
  assert.ok(clientId && !/^https?:/.test(clientId), `the server issued a client id (${clientId})`);
});

/**
 * mcp-remote as a stdio child process, the way Claude Desktop runs it, with a browser that the
 * test controls: `open` runs xdg-open, which (no desktop session) runs $BROWSER with the URL; the
 * script given as BROWSER writes it to a file this test reads.
 */
test('mcp-remote connects by URL with OAuth and calls tools', FLOW, async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'vault-mcp-remote-'));
  const opened = path.join(dir, 'opened-urls');
  const browserScript = path.join(dir, 'browser.sh');
  writeFileSync(browserScript, `#!/bin/sh\nprintf '%s\\n' "$1" >> '${opened}'\n`);
  chmodSync(browserScript, 0o755);
  const configDir = path.join(dir, 'mcp-auth');
  const port = await freePort();
  const redirectPrefix = `http://localhost:${port}/oauth/callback`;
  const visitsBefore = browserVisits.length;

  const child = spawn(
    path.join(HERE, 'node_modules', '.bin', 'mcp-remote'),
    [MCP_URL, String(port), '--auth-timeout', '120', '--transport', 'http-only'],
    {
      cwd: dir,
      // No desktop session: xdg-open falls back to $BROWSER.
      env: { PATH: process.env.PATH, HOME: dir, MCP_REMOTE_CONFIG_DIR: configDir, BROWSER: browserScript },
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true, // its own process group, so the helpers it starts end with it
    },
  );
  let stderr = '';
  let exited = null;
  const exit = new Promise((resolve) =>
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      resolve(exited);
    }),
  );
  child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk));
  const tail = () => `\n-- mcp-remote stderr (last 3000 chars):\n${stderr.slice(-3000)}`;

  // JSON-RPC over its stdio: one message a line.
  const pending = new Map();
  const unsolicited = [];
  let buffered = '';
  child.stdout.setEncoding('utf8').on('data', (chunk) => {
    buffered += chunk;
    let nl;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (!line) continue;
      const msg = JSON.parse(line);
      if (msg.id !== undefined && pending.has(msg.id) && !msg.method) {
        pending.get(msg.id)(msg);
        pending.delete(msg.id);
      } else {
        unsolicited.push(msg);
      }
    }
  });
  let nextId = 1;
  const rpc = (method, params) => {
    const id = nextId++;
    const answer = new Promise((resolve) => pending.set(id, resolve));
    child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', id, method, params })}\n`);
    return within(60_000, answer, () => `no answer to ${method}${tail()}`);
  };
  const notify = (method, params) => child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', method, params })}\n`);
  const callTool = async (name, args) => {
    const answer = await rpc('tools/call', { name, arguments: args });
    assert.equal(answer.error, undefined, `${name}: ${JSON.stringify(answer.error)}`);
    assert.notEqual(answer.result.isError, true, `${name} failed: ${JSON.stringify(answer.result)}`);
    return answer.result.structuredContent;
  };
  const openedUrls = () => (existsSync(opened) ? readFileSync(opened, 'utf8').split('\n').filter(Boolean) : []);
  /** Polls `check` every 100 ms until it returns something truthy; fails after `ms`. */
  const until = async (ms, check, what) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const value = check();
      if (value) return value;
      if (exited) assert.fail(`mcp-remote exited (${JSON.stringify(exited)}) before ${what}${tail()}`);
      if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}${tail()}`);
      await sleep(100);
    }
  };
  const tokensFile = () => {
    const found = [];
    const walk = (d) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        if (e.isDirectory()) walk(path.join(d, e.name));
        else if (e.name.endsWith('tokens.json')) found.push(path.join(d, e.name));
      }
    };
    if (existsSync(configDir)) walk(configDir);
    return found.length === 1 ? JSON.parse(readFileSync(found[0], 'utf8')) : undefined;
  };

  let context;
  try {
    // 1. mcp-remote meets 401, registers and opens the browser at the authorization URL.
    const url = new URL((await until(60_000, () => openedUrls()[0], 'mcp-remote to open the browser')));
    assert.equal(url.origin + url.pathname, `${BASE}/authorize`, 'the browser is sent to vault-mcp’s /authorize');
    assert.equal(url.searchParams.get('redirect_uri'), redirectPrefix, 'the redirect goes to mcp-remote’s callback port');
    assert.equal(url.searchParams.get('code_challenge_method'), 'S256', 'PKCE with S256');
    assert.equal(url.searchParams.get('resource'), MCP_URL, 'the resource indicator names the MCP endpoint');
    assert.ok(url.searchParams.get('client_id') && url.searchParams.get('state'), 'a client id and a state');
    assert.match(stderr, /Please authorize this client by visiting/, 'mcp-remote tells the person what is going on');

    // 2. The person signs in and approves; mcp-remote's callback takes the code.
    context = await approveInBrowser(t, url, { clientName: 'MCP CLI Proxy', redirectPrefix, shot: 'consent-mcp-remote.png' });
    const landed = context.pages()[0];
    await landed.waitForLoadState('load');
    assert.match(await landed.locator('body').innerText(), /Authorization successful/, 'mcp-remote’s callback page thanks the person');
    await until(60_000, () => /Proxy established successfully/.test(stderr), 'the proxy to be established');
    const firstTokens = tokensFile();
    assert.ok(firstTokens?.access_token && firstTokens.refresh_token, 'mcp-remote cached an access and a refresh token');

    // 3. An MCP client on mcp-remote's stdio.
    const init = await rpc('initialize', {
      protocolVersion: '2025-11-25',
      capabilities: {},
      clientInfo: { name: 'vault-mcp-remote-e2e', version: '1.0.0' },
    });
    assert.equal(init.error, undefined, `initialize: ${JSON.stringify(init.error)}`);
    assert.ok(init.result.serverInfo?.name, 'the server introduced itself through the bridge');
    t.diagnostic(`through mcp-remote: ${init.result.serverInfo.name} ${init.result.serverInfo.version}, protocol ${init.result.protocolVersion}`);
    notify('notifications/initialized');
    const listed = await rpc('tools/list', {});
    const names = listed.result.tools.map((tool) => tool.name);
    for (const name of NOTE_TOOLS) assert.ok(names.includes(name), `tools/list offers ${name} (got ${names})`);
    const notePath = 'oauth/mcp-remote.md';
    const body = '# Through mcp-remote\n\nThe bridge Claude Desktop uses.\n';
    assert.equal((await callTool('write_note', { path: notePath, body })).path, notePath);
    assert.equal((await callTool('read_note', { path: notePath })).body, body, 'the note reads back as written');

    // 4. Past the access token's lifetime, mcp-remote refreshes without the person.
    await sleep(PAST_TOKEN_LIFETIME_MS);
    assert.equal((await callTool('read_note', { path: notePath })).body, body, 'the call after the pause succeeded');
    assert.deepEqual(openedUrls(), [String(url)], 'mcp-remote did not open the browser again');
    assert.equal(browserVisits.length, visitsBefore + 1, 'the person saw one authorization');
    const laterTokens = tokensFile();
    assert.notEqual(laterTokens?.access_token, firstTokens.access_token, 'mcp-remote holds a new access token');
    assert.notEqual(laterTokens?.refresh_token, firstTokens.refresh_token, 'the refresh token rotated');

    const clients = (await connectedClients(context)).filter((c) => c.client_id === url.searchParams.get('client_id'));
    assert.equal(clients.length, 1, 'the account lists mcp-remote once');
    assert.equal(clients[0].name, 'MCP CLI Proxy');
  } finally {
    await context?.close().catch(() => {});
    child.stdin.end();
    if (!exited) {
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {}
      const stopped = await Promise.race([exit, sleep(10_000).then(() => null)]);
      if (!stopped) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {}
        await exit;
      }
    }
    rmSync(dir, { recursive: true, force: true });
  }
});
