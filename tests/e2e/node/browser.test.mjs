// The web app in a real Chromium (Debian's /usr/bin/chromium, driven by playwright-core), doing
// what a person does: sign in through the OpenID provider (the stand-in provider here, Hugging
// Face on a Space), create an MCP token, use it from the TypeScript SDK, find the note in the
// pages, search, edit through a conflict, open a hostile note, check the pages on a phone and
// with the keyboard, revoke the token and sign out. One browser context throughout, so the steps
// run in order and share the session; a failed step does not stop the ones after it.
//
// scripts/e2e-node starts the provider and the server and passes: VAULT_BASE (the server's
// PUBLIC_URL, the address the browser uses), VAULT_MCP_URL (its /mcp endpoint), IDP_URL (the
// provider's issuer URL), SCREENSHOT_DIR (where the screenshots go) and CHROMIUM (the browser).

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { chromium } from 'playwright-core';

import { callOk, connect, within } from './helpers.mjs';

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this suite through scripts/e2e-node browser`);
  return value;
}

const BASE = required('VAULT_BASE').replace(/\/$/, '');
const IDP_URL = required('IDP_URL').replace(/\/$/, '');
const SHOTS = process.env.SCREENSHOT_DIR || mkdtempSync(path.join(tmpdir(), 'vault-browser-shots-'));
mkdirSync(SHOTS, { recursive: true });

const ALICE_SUB = '1000000000000000000000a1';
const TOKEN_NAME = 'browser e2e laptop';
const HELLO = 'inbox/hello.md';
const SECOND = 'inbox/second.md';
const HELLO_BODY = [
  '# Hello from the SDK',
  '',
  'Written over MCP. Marmalade on toast, see [[second]] for more. #greeting',
  '',
  '- one',
  '- two',
  '',
].join('\n');
const THEIR_BODY = '# Hello from the SDK\n\nChanged elsewhere while the page was editing: quince.\n';
const MY_BODY = '# Hello from the page\n\nEdited in the browser: apricot jam. #greeting\n';

/** Generous but bounded: the machine is slow and shared. */
const STEP = { timeout: 90_000 };
const UI_TIMEOUT = 20_000;
const NAV_TIMEOUT = 30_000;

let browser;
let context;
let page;
/** The token created on /account, and the SDK session using it. */
let token;
let session;
/** Dialogs nobody expected (alert/confirm/prompt); a step that expects one sets `expectDialog`. */
const unexpectedDialogs = [];
let expectDialog = null;

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    // playwright-core's launch uses a fresh temporary profile (user-data dir) every time.
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
  context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  context.setDefaultTimeout(UI_TIMEOUT);
  context.setDefaultNavigationTimeout(NAV_TIMEOUT);
  // The stand-in provider's profile pictures live on a host that does not exist (.invalid); answer
  // for it as Hugging Face's avatar server would, so the header shows an avatar, not a broken image.
  await context.route(/^https:\/\/avatars\.stand-in-idp\.invalid\//, (route) =>
    route.fulfill({
      contentType: 'image/svg+xml',
      body:
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24">' +
        '<circle cx="12" cy="12" r="12" fill="#f59e0b"/>' +
        '<text x="12" y="16.5" font-size="13" font-family="sans-serif" text-anchor="middle" fill="#fff">' +
        `${new URL(route.request().url()).pathname.slice(1, 2).toUpperCase()}</text></svg>`,
    }),
  );
  page = await context.newPage();
  page.on('dialog', async (dialog) => {
    if (dialog.type() === 'beforeunload') {
      // Leaving the editor with unsaved text after a failed step: let the next step go on.
      await dialog.accept();
    } else if (expectDialog) {
      expectDialog.push(`${dialog.type()}: ${dialog.message()}`);
      await dialog.accept();
    } else {
      unexpectedDialogs.push(`${dialog.type()}: ${dialog.message()}`);
      await dialog.dismiss();
    }
  });
});

after(async () => {
  await session?.close().catch(() => {});
  await browser?.close();
});

/** Full URL of a page of the app. */
const app = (p) => `${BASE}${p}`;

async function shot(name) {
  await page.screenshot({ path: path.join(SHOTS, name) });
}

/** Opens a page of the app; asserts it answered `status` (200 unless told). */
async function open(p, status = 200) {
  const response = await page.goto(app(p));
  assert.ok(response, `no response for ${p}`);
  assert.equal(response.status(), status, `GET ${p} answered ${response.status()}`);
  return response;
}

test('the web app in Chromium', { timeout: 15 * 60_000 }, async (t) => {
  await t.test('sign in with the OpenID provider', STEP, async () => {
    await open('/');
    const signIn = page.locator('#sign-in');
    await signIn.waitFor({ state: 'visible' });
    assert.match(await signIn.innerText(), /sign in with hugging face/i, 'the sign-in link says what it does');
    await shot('signin.png');

    await signIn.click();
    await page.waitForURL((url) => url.href.startsWith(IDP_URL), { timeout: NAV_TIMEOUT });
    assert.equal(await page.title(), 'Stand-in provider: sign in', 'the provider shows its sign-in page');
    const accounts = page.locator('a.account');
    assert.ok((await accounts.count()) >= 2, 'the provider lists its accounts');
    await shot('provider.png');

    await page.locator(`a.account[data-sub="${ALICE_SUB}"]`).click();
    await page.waitForURL((url) => url.origin === new URL(BASE).origin, { timeout: NAV_TIMEOUT });
    const username = page.locator('.site-header .username');
    await username.waitFor({ state: 'visible' });
    assert.equal((await username.innerText()).trim(), 'alice', 'the header shows who signed in');
    assert.ok(await page.locator('#sign-out').isVisible(), 'a signed-in page offers to sign out');
  });

  await t.test('create an MCP token on /account', STEP, async () => {
    await open('/account');
    // The script loads the token list, then offers the lifetimes the server allows.
    await page.waitForFunction(() => document.querySelector('#token-list-empty')?.textContent !== 'Loading…');
    await page.locator('#token-name').fill(TOKEN_NAME);
    const ttls = await page.locator('#token-ttl option').evaluateAll((os) => os.map((o) => o.value));
    assert.ok(ttls.length > 0, 'the lifetime list offers choices');
    const ttl = ttls.includes('1d') ? '1d' : ttls[0];
    await page.locator('#token-ttl').selectOption(ttl);
    await page.locator('#token-scope-write').check();
    await page.locator('#create-token').click();

    const shown = page.locator('#new-token');
    await shown.waitFor({ state: 'visible' });
    await page.waitForFunction(() => (document.querySelector('#new-token')?.textContent ?? '').trim().length > 0);
    token = (await shown.innerText()).trim();
    assert.ok(token.length >= 20, `the page shows the new token (got ${JSON.stringify(token)})`);
    assert.equal(await page.locator('#token-error').innerText(), '', 'no error under the form');
    // The page scrolls to the new token; the picture shows the form and the start of the panel.
    await page.evaluate(() => window.scrollTo(0, 0));
    await shot('account.png');
  });

  await t.test('a note written with the TypeScript SDK shows in the folder and renders', STEP, async () => {
    assert.ok(token, 'a token from the previous step');
    session = await within(30_000, connect(token, 'vault-mcp-browser-e2e'), 'the SDK did not connect with the new token');
    const { client } = session;
    await callOk(client, 'write_note', { path: SECOND, body: 'The second note.\n', title: 'Second' });
    const written = await callOk(client, 'write_note', { path: HELLO, body: HELLO_BODY, title: 'Hello' });
    assert.equal(written.path, HELLO, 'write_note wrote where asked');

    await open('/browse/inbox');
    const link = page.locator('.note-link', { hasText: 'Hello' });
    await link.first().waitFor({ state: 'visible' });
    assert.equal(await link.first().getAttribute('href'), `/note/${HELLO}`, 'the listing links to the note page');
    await shot('folder.png');

    await link.first().click();
    await page.waitForURL(app(`/note/${HELLO}`));
    const body = page.locator('#note-body');
    await body.waitFor({ state: 'visible' });
    const heading = body.locator('h1');
    assert.equal(await heading.count(), 1, 'the markdown heading is a heading element');
    assert.equal((await heading.innerText()).trim(), 'Hello from the SDK', 'the heading text');
    const tag = body.locator('a.tag');
    assert.equal(await tag.count(), 1, 'the #tag is a link');
    assert.equal(await tag.getAttribute('href'), '/search?tag=greeting', 'the tag links to its search');
    const wikilink = body.locator('a.wikilink');
    assert.equal(await wikilink.count(), 1, 'the [[wikilink]] is a link');
    assert.equal(await wikilink.getAttribute('href'), `/note/${SECOND}`, 'the wikilink leads to the second note');
    assert.equal(await body.locator('li').count(), 2, 'the list items rendered');
    await shot('note.png');
  });

  await t.test('search from the header box highlights the match', STEP, async () => {
    const box = page.locator('#search-input');
    await box.fill('marmalade');
    await box.press('Enter');
    await page.waitForURL((url) => url.pathname === '/search');
    const result = page.locator('.search-result');
    await result.first().waitFor({ state: 'visible' });
    assert.equal(await result.count(), 1, 'one note mentions marmalade');
    assert.equal(
      await result.locator('.note-link').getAttribute('href'),
      `/note/${HELLO}`,
      'the result links to the note',
    );
    const mark = result.locator('mark');
    assert.ok((await mark.count()) >= 1, 'the snippet highlights the match');
    assert.match(await mark.first().innerText(), /marmalade/i, 'the highlighted word is the one searched');
    await shot('search.png');
  });

  await t.test('a save that meets a change made elsewhere shows the conflict, then overwrites', STEP, async () => {
    assert.ok(session, 'an SDK session from the earlier step');
    await open(`/edit/${HELLO}`);
    const editor = page.locator('#editor-body');
    await editor.waitFor({ state: 'visible' });
    assert.match(await editor.inputValue(), /Hello from the SDK/, 'the editor opens on the current text');
    await editor.fill(MY_BODY);

    // Another client changes the note while the page still holds the old version.
    await callOk(session.client, 'write_note', { path: HELLO, body: THEIR_BODY, title: 'Hello' });

    await page.locator('#save').click();
    const conflict = page.locator('#conflict');
    await conflict.waitFor({ state: 'visible' });
    assert.match(await page.locator('#conflict-mine').innerText(), /apricot jam/, 'the conflict shows my text');
    assert.match(await page.locator('#conflict-theirs').innerText(), /quince/, 'the conflict shows their text');
    const unchanged = await callOk(session.client, 'read_note', { path: HELLO });
    assert.equal(unchanged.body, THEIR_BODY, 'nothing was overwritten before choosing');
    await shot('conflict.png');

    await page.locator('#overwrite').click();
    await page.waitForURL(app(`/note/${HELLO}`));
    await page.locator('#note-body').waitFor({ state: 'visible' });
    assert.match(await page.locator('#note-body').innerText(), /apricot jam/, 'the note page shows the saved text');
    const saved = await callOk(session.client, 'read_note', { path: HELLO });
    assert.equal(saved.body.trim(), MY_BODY.trim(), 'the page overwrote the note with its text');
  });

  await t.test('a hostile note runs no code in the page', STEP, async (t) => {
    assert.ok(session, 'an SDK session from the earlier step');
    const evil = [
      '# Evil',
      '',
      '<script>window.__pwned = 1</script>',
      '',
      '<img src=x onerror="window.__pwned = 2">',
      '',
      '[click](javascript:window.__pwned=3)',
      '',
      '<iframe src="javascript:parent.__pwned=4"></iframe>',
      '',
      '<a href="javascript:window.__pwned=5">raw link</a>',
      '',
    ].join('\n');
    await callOk(session.client, 'write_note', { path: 'evil.md', body: evil, title: 'Evil' });

    const before = unexpectedDialogs.length;
    const response = await open('/note/evil.md');
    const csp = response.headers()['content-security-policy'];
    assert.ok(csp, 'the note page has a Content-Security-Policy');
    assert.match(csp, /script-src 'self'/, 'the policy allows scripts only from the app');
    const body = page.locator('#note-body');
    await body.waitFor({ state: 'visible' });

    const link = body.locator('a', { hasText: 'click' });
    const links = await link.count();
    t.diagnostic(`hostile note: ${links} "click" link(s) rendered, hrefs ${JSON.stringify(
      await body.locator('a').evaluateAll((as) => as.map((a) => a.getAttribute('href'))),
    )}`);
    if (links > 0) {
      await link.first().click();
      await page.waitForTimeout(500);
    }
    assert.equal(page.url(), app('/note/evil.md'), 'clicking the link did not leave the page');
    assert.equal(await page.evaluate(() => typeof window.__pwned), 'undefined', 'no code from the note ran');
    assert.equal(await body.locator('script').count(), 0, 'no script element in the note');
    assert.equal(await body.locator('iframe').count(), 0, 'no iframe element in the note');
    assert.equal(await body.locator('[onerror]').count(), 0, 'no onerror attribute in the note');
    const hrefs = await body.locator('a[href]').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
    for (const href of hrefs) assert.doesNotMatch(href, /^\s*javascript:/i, `no javascript: link (${href})`);
    assert.deepEqual(unexpectedDialogs.slice(before), [], 'the note opened no dialog');
  });

  await t.test('usable on a phone and with the keyboard', STEP, async () => {
    await page.setViewportSize({ width: 375, height: 740 });
    try {
      await open('/browse/inbox');
      await page.locator('.note-link').first().waitFor({ state: 'visible' });
      const { scrollWidth, clientWidth } = await page.evaluate(() => ({
        scrollWidth: document.documentElement.scrollWidth,
        clientWidth: document.documentElement.clientWidth,
      }));
      assert.ok(scrollWidth <= clientWidth, `no horizontal scrolling at 375 px (${scrollWidth} > ${clientWidth})`);
      await shot('phone.png');
    } finally {
      await page.setViewportSize({ width: 1280, height: 800 });
    }

    await open(`/note/${HELLO}`);
    await page.locator('#note-body').waitFor({ state: 'visible' });
    await page.keyboard.press('Tab');
    const focused = await page.evaluate(() => {
      const el = document.activeElement;
      return { tag: el?.tagName, cls: el?.className ?? '', href: el?.getAttribute?.('href') ?? null };
    });
    assert.notEqual(focused.tag, 'BODY', 'Tab moves the focus onto the page');
    assert.ok(focused.tag !== undefined && focused.tag !== null, 'something has the focus');
    assert.equal(focused.href, '#main', `the first Tab reaches the skip link (got ${JSON.stringify(focused)})`);
    await page.keyboard.press('Enter');
    assert.equal(
      await page.evaluate(() => document.activeElement?.id),
      'main',
      'the skip link moves the focus to the content',
    );
  });

  await t.test('revoking the token on /account locks the SDK out', STEP, async (t) => {
    assert.ok(token && session, 'a token and a session from the earlier steps');
    await open('/account');
    const row = page.locator('.token-row', { hasText: TOKEN_NAME });
    await row.waitFor({ state: 'visible' });
    const dialogs = [];
    expectDialog = dialogs;
    try {
      await row.locator('.revoke').click();
      await row.waitFor({ state: 'detached' });
    } finally {
      expectDialog = null;
    }
    t.diagnostic(`dialogs while revoking: ${JSON.stringify(dialogs)}`);
    assert.ok(
      dialogs.length <= 1 && dialogs.every((d) => d.startsWith('confirm:')),
      `at most one confirmation was asked (${JSON.stringify(dialogs)})`,
    );
    assert.equal(await page.locator('#token-error').innerText(), '', 'no error under the form');

    await assert.rejects(
      within(30_000, session.client.callTool({ name: 'list_notes', arguments: {} }), 'the call neither failed nor answered'),
      (err) => {
        t.diagnostic(`open session after revoking: code ${err.code}, ${err.message}`);
        return /401|unauthori[sz]ed/i.test(`${err.code} ${err.message}`);
      },
      'the open session cannot use the revoked token',
    );
    await assert.rejects(
      within(30_000, connect(token, 'vault-mcp-browser-e2e-revoked'), 'connecting neither failed nor answered'),
      (err) => {
        t.diagnostic(`new client with the revoked token: code ${err.code}, ${err.message}`);
        return err.code === 401 || /401|unauthori[sz]ed/i.test(String(err.message));
      },
      'a new client with the revoked token is refused with 401',
    );
    // The session is unusable now; dropping it is all that is left.
    await session.client.close().catch(() => {});
    session = undefined;
  });

  await t.test('sign out', STEP, async () => {
    await page.locator('#sign-out').click();
    await page.waitForLoadState('load');
    await open('/account');
    assert.equal(new URL(page.url()).pathname, '/', `/account sends a signed-out person to the start page (at ${page.url()})`);
    assert.ok(await page.locator('#sign-in').isVisible(), 'the start page offers to sign in again');
    assert.equal(await page.locator('.site-header .username').count(), 0, 'nobody is shown as signed in');
  });

  assert.deepEqual(unexpectedDialogs, [], 'no page opened an unexpected dialog');
});
