// Drives Coffer's web console in real headless Chromium for
// crates/coffer/tests/console_browser.rs, which starts anvil and Coffer, pays orders on chain,
// receives the webhooks and checks what this script reports.
//
//   node console.mjs <base-url> <screenshot-dir>
//
// Input: JSON lines on stdin (the first is the start: setup link, wallet, webhook URL; later
// ones answer `wait` reports). Output: one JSON object per line on stdout, `{"event": ...}`;
// the last is `{"event":"done","ok":true|false,"errors":[...]}`. Any request to another
// origin, CSP violation, script error or unexpected HTTP error fails the run.
import { chromium } from 'playwright-core';
import { mkdtempSync, mkdirSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHmac } from 'node:crypto';
import { createInterface } from 'node:readline';

const [base, shotDir] = process.argv.slice(2);
const executablePath = process.env.COFFER_TEST_CHROMIUM || '/usr/bin/chromium';
const origin = new URL(base).origin;
const errors = [];
const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const TIMEOUT = 60_000;
const PASSWORD = 'correct horse battery staple';
let phase = 'start';
// HTTP errors a step expects (status and path); any other 4xx/5xx fails the run.
let allowed = [];

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function hear() {
  const { value, done } = await lines.next();
  if (done) throw new Error('stdin closed');
  return JSON.parse(value);
}

mkdirSync(shotDir, { recursive: true });
const userDataDir = mkdtempSync(join(tmpdir(), 'coffer-console-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  acceptDownloads: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1280, height: 900 },
  locale: 'en-US',
});

function watch(page, name) {
  page.addInitScript(() => document.addEventListener('securitypolicyviolation', (e) => {
    console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI} sample=${JSON.stringify(e.sample)}`);
  }));
  page.on('request', (r) => {
    const u = r.url();
    if (!(u.startsWith(origin + '/') || u.startsWith('data:') || u === 'about:blank')) {
      errors.push(`${name} requested ${u} outside the server`);
    }
  });
  page.on('response', (r) => {
    if (r.status() < 400) return;
    const path = new URL(r.url()).pathname;
    if (allowed.some((a) => a.status === r.status() && path.startsWith(a.path))) return;
    errors.push(`${name} during ${phase}: ${r.status()} for ${r.url()}`);
  });
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of (40[1349]|429)/.test(m.text())) {
      errors.push(`${name} console error during ${phase}: ${m.text().slice(0, 200)}`);
    }
  });
  page.on('pageerror', (e) => errors.push(`${name} script error: ${e.message}`));
}

const page = context.pages()[0] || (await context.newPage());
watch(page, 'desktop');

// ---- helpers ----------------------------------------------------------------------------

// Links the server makes start with its public_url; the test reaches it at `base`.
const local = (link) => (link.startsWith('http') ? base + new URL(link).pathname + new URL(link).search : base + link);

async function go(path, expect = 200) {
  const r = await page.goto(local(path), { waitUntil: 'load' });
  if (r.status() !== expect) errors.push(`${phase}: GET ${path} answered ${r.status()}, not ${expect}`);
  return r;
}

async function submit(selector) {
  await Promise.all([page.waitForLoadState('load'), page.waitForNavigation({ timeout: TIMEOUT }), page.click(selector)]);
}

async function text(selector) {
  return (await page.textContent(selector, { timeout: TIMEOUT })).trim();
}

// Every page: fits 360 px (tables scroll inside their box), every control has a name.
async function checkPage(label) {
  const r = await page.evaluate(() => {
    const out = { overflow: document.documentElement.scrollWidth - window.innerWidth, unlabelled: [] };
    for (const el of document.querySelectorAll('button, a, input:not([type=hidden]), select, textarea')) {
      if (el.offsetParent === null && el.type !== 'file') continue;
      let name = (el.getAttribute('aria-label') || el.textContent || el.getAttribute('title') || '').trim();
      if (!name && el.id) { const l = document.querySelector(`label[for="${el.id}"]`); if (l) name = l.textContent.trim(); }
      if (!name && el.closest('label')) name = el.closest('label').textContent.trim();
      if (!name) out.unlabelled.push(el.outerHTML.slice(0, 100));
    }
    return out;
  });
  if (r.overflow > 0) errors.push(`${label}: ${r.overflow}px horizontal overflow`);
  if (r.unlabelled.length) errors.push(`${label}: unlabelled controls ${r.unlabelled.join(' ')}`);
}

async function shot(name, { phone = false, dark = false } = {}) {
  if (phone) await page.setViewportSize({ width: 360, height: 740 });
  if (dark) await page.emulateMedia({ colorScheme: 'dark' });
  if (phone || dark) await page.reload({ waitUntil: 'load' });
  await checkPage(`${name}${phone ? ' phone' : ''}`);
  await page.screenshot({ path: join(shotDir, `${name}.png`), fullPage: true, caret: 'initial' });
  if (phone) await page.setViewportSize({ width: 1280, height: 900 });
  if (dark) await page.emulateMedia({ colorScheme: 'light' });
  say({ event: 'screenshot', name });
}

async function signIn(username, password = PASSWORD) {
  await go('/console/login');
  await page.fill('#username', username);
  await page.fill('#password', password);
  await submit('main form button[type=submit]');
}

async function signOut() {
  await submit('form[action="/console/logout"] button');
}

async function accept(link, username) {
  await go(link);
  await page.fill('#username', username);
  await page.fill('#password', PASSWORD);
  await page.fill('#password2', PASSWORD);
  await submit('main form button[type=submit]');
}

async function shownOnce() {
  return text('#shown-once .secret code');
}

function base32(s) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0, value = 0; const out = [];
  for (const c of s.replace(/[\s=]/g, '').toUpperCase()) {
    value = (value << 5) | alphabet.indexOf(c); bits += 5;
    if (bits >= 8) { out.push((value >>> (bits - 8)) & 255); bits -= 8; }
  }
  return Buffer.from(out);
}

// RFC 6238 (SHA-1, 6 digits, 30 s), independent of the server's implementation.
function totp(secret, step) {
  const msg = Buffer.alloc(8); msg.writeBigUInt64BE(BigInt(step));
  const h = createHmac('sha1', base32(secret)).update(msg).digest();
  const o = h[19] & 15;
  const n = (((h[o] & 0x7f) << 24) | (h[o + 1] << 16) | (h[o + 2] << 8) | h[o + 3]) % 1_000_000;
  return String(n).padStart(6, '0');
}
const stepNow = () => Math.floor(Date.now() / 1000 / 30);

async function postWithout(path, body, csrf) {
  return page.evaluate(async ([path, body, csrf]) => {
    const form = new URLSearchParams(body);
    if (csrf) form.set('_csrf', csrf);
    const r = await fetch(path, { method: 'POST', body: form, redirect: 'manual' });
    return r.status;
  }, [path, body, csrf]);
}

// ---- the story ----------------------------------------------------------------------------

try {
  const start = await hear();

  // 1. First run: the setup link from the log makes the first operator.
  phase = 'setup';
  await go('/console/login');
  const setupNotice = (await page.textContent('main')).includes('coffer console setup-link');
  await accept(start.setup_link, 'root');
  const checklist = await page.$$eval('#checklist li', (ls) => ls.map((l) => ({ todo: l.className, text: l.textContent.trim() })));
  say({ event: 'setup', url: page.url(), setup_notice: setupNotice, checklist });
  await shot('operator-overview');
  // the setup link works once
  allowed = [{ status: 404, path: '/console/join' }];
  await go(start.setup_link, 404);
  allowed = [];

  // 2. Merchants, and their first owners' invitations.
  phase = 'merchants';
  const merchants = {};
  for (const [key, name] of [['a', "Satoshi's Coffee"], ['b', 'Other Shop']]) {
    await go('/console/op/merchants');
    await page.fill('#merchant-name', name);
    await submit('form[action="/console/op/merchants"] button');
    const apiKey = await shownOnce();
    const href = await page.getAttribute('#shown-once a.btn', 'href');
    await submit('#shown-once form button');
    const invite = await shownOnce();
    merchants[key] = { id: href.split('/').pop(), api_key: apiKey, invite };
  }
  say({ event: 'merchants', merchants });
  await shot('operator-merchants');

  // 3. Two-step sign-in for the operator, then sign in with and without the code.
  phase = 'totp';
  await go('/console/account');
  await submit('form[action="/console/account/totp/new"] button');
  const secret = await shownOnce();
  const qr = (await page.$('svg.qr')) !== null;
  await shot('totp-setup');
  const enrolStep = stepNow();
  await page.fill('#on-code', totp(secret, enrolStep));
  await submit('form[action="/console/account/totp/enable"] button');
  const on = (await text('main .ok')).includes('on');
  await signOut();
  await signIn('root');
  const askedForCode = page.url().includes('/console/login/code');
  // a code that is not the current one is refused
  allowed = [{ status: 401, path: '/console/login/code' }];
  await page.fill('#code', totp(secret, stepNow() + 5));
  await submit('main form button[type=submit]');
  const wrongCode = await text('main .error');
  allowed = [];
  while (stepNow() <= enrolStep) await page.waitForTimeout(500);
  await page.fill('#code', totp(secret, stepNow()));
  await submit('main form button[type=submit]');
  say({ event: 'totp', secret_shown: secret.length >= 16, qr, on, asked_for_code: askedForCode, wrong_code: wrongCode, after: new URL(page.url()).pathname });
  await signOut();

  // 4. The owner of A joins, sets the wallet after checking its addresses, a webhook, a key.
  phase = 'owner';
  await accept(merchants.a.invite, 'alice');
  const landed = new URL(page.url()).pathname;
  const nextSteps = await page.$$eval('main .check-list li', (ls) => ls.map((l) => l.className));
  await go(`/console/m/${merchants.a.id}/wallets`);
  await page.selectOption('#chain', start.chain);
  await page.fill('#xpub', start.xpub);
  await submit('form[action$="/wallets/preview"] button');
  const preview = await page.$$eval('#wallet-preview td.preview-address', (tds) => tds.map((t) => t.textContent.trim()));
  await shot('wallet-preview');
  await submit('#wallet-preview form button[type=submit]');
  const walletSaved = (await page.textContent('main')).includes(start.xpub);
  say({ event: 'wallet', landed, next_steps: nextSteps, preview, saved: walletSaved });

  await go(`/console/m/${merchants.a.id}/webhooks`);
  await page.fill('#hook-url', start.webhook_url);
  await submit('form[action$="/webhooks"] button[type=submit]');
  const signing = await shownOnce();

  await go(`/console/m/${merchants.a.id}/keys`);
  await page.fill('#key-label', 'shop');
  await page.check('input[name=scopes][value="orders:read"]');
  await page.check('input[name=scopes][value="orders:write"]');
  await submit('form[action$="/keys"] button[type=submit]');
  const apiKey = await shownOnce();
  await shot('key-shown-once');
  await go(`/console/m/${merchants.a.id}/keys`);
  const stillShown = (await page.content()).includes(apiKey);
  const keyRows = await page.$$eval('main table tbody tr', (rs) => rs.length);
  say({ event: 'keys', api_key: apiKey, webhook_secret: signing, shown_after_reload: stillShown, rows: keyRows });

  // 5. The test creates and pays orders with that key; then the lists.
  say({ event: 'wait', for: 'orders' });
  const orders = await hear();
  phase = 'orders';
  await go(`/console/m/${merchants.a.id}`);
  await shot('dashboard');
  const counts = await page.$$eval('main .grid .stat', (s) => s.map((x) => x.textContent.trim()));
  await go(`/console/m/${merchants.a.id}/orders`);
  await shot('orders');
  const listed = await page.$$eval('main table tbody tr', (rs) => rs.length);
  await page.selectOption('#status', 'settled');
  await submit('form.filters button[type=submit]');
  const settled = await page.$$eval('main table tbody tr td:nth-child(2)', (tds) => tds.map((t) => t.textContent.trim()));
  const searches = {};
  for (const [k, q] of [['no', 'A-1001'], ['address', orders.address.toLowerCase()], ['txid', orders.txid.toUpperCase()], ['none', 'A-10']]) {
    await go(`/console/m/${merchants.a.id}/orders?q=${encodeURIComponent(q)}`);
    searches[k] = await page.$$eval('main table tbody tr td:nth-child(2)', (tds) => tds.map((t) => t.textContent.trim()));
  }
  await go(`/console/m/${merchants.a.id}/orders`);
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('a[download]')]);
  const csv = readFileSync(await download.path(), 'utf8');
  say({ event: 'lists', counts, listed, settled, searches, csv, csv_name: download.suggestedFilename() });

  // 6. The paid order: refund it, approve the refund; deliver a webhook again.
  phase = 'order';
  await go(`/console/m/${merchants.a.id}/orders/${orders.paid}`);
  const explorer = await page.getAttribute('a.txlink', 'href');
  await shot('order');
  await submit(`form[action$="/refund"] button[type=submit]`);
  const refundNotice = await text('main .ok');
  await go(`/console/m/${merchants.a.id}/payouts`);
  await submit('main table form button[value="approved"]');
  const payoutStatus = await text('main table tbody tr td:nth-child(6)');
  await shot('payouts');
  await go(`/console/m/${merchants.a.id}/orders/${orders.paid}`);
  const delivery = await page.getAttribute('main tr[data-delivery]', 'data-delivery');
  await submit('main tr[data-delivery] form button');
  const redelivered = await text('main .ok');
  say({ event: 'order', explorer, refund_notice: refundNotice, payout_status: payoutStatus, delivery, redelivered });
  say({ event: 'wait', for: 'redelivery' });
  await hear();

  // 7. What A must not see: B's merchant pages and B's order, by URL.
  phase = 'isolation';
  allowed = [{ status: 404, path: '/console/m/' }, { status: 404, path: '/console/op/' }];
  const isolation = {};
  for (const [k, path] of [
    ['b_dashboard', `/console/m/${merchants.b.id}`],
    ['b_order_under_b', `/console/m/${merchants.b.id}/orders/${orders.b_order}`],
    ['b_order_under_a', `/console/m/${merchants.a.id}/orders/${orders.b_order}`],
    ['operator_pages', '/console/op/merchants'],
  ]) {
    const r = await page.goto(base + path, { waitUntil: 'load' });
    isolation[k] = r.status();
  }
  allowed = [];
  // A form posted without its CSRF token changes nothing.
  allowed = [{ status: 403, path: `/console/m/${merchants.a.id}/keys` }];
  await go(`/console/m/${merchants.a.id}/keys`);
  const before = await page.$$eval('main table tbody tr', (rs) => rs.length);
  const noCsrf = await postWithout(`/console/m/${merchants.a.id}/keys`, 'label=evil&scopes=admin', null);
  const wrongCsrf = await postWithout(`/console/m/${merchants.a.id}/keys`, 'label=evil&scopes=admin', 'x'.repeat(52));
  await go(`/console/m/${merchants.a.id}/keys`);
  const after = await page.$$eval('main table tbody tr', (rs) => rs.length);
  allowed = [];
  say({ event: 'isolation', isolation, no_csrf: noCsrf, wrong_csrf: wrongCsrf, keys_before: before, keys_after: after });

  // 8. Staff read everything and change nothing.
  phase = 'staff';
  await go(`/console/m/${merchants.a.id}/team`);
  await page.selectOption('#role', 'staff');
  await submit('form[action$="/team/invite"] button');
  const staffLink = await shownOnce();
  await shot('team');
  await signOut();
  await accept(staffLink, 'bob');
  await go(`/console/m/${merchants.a.id}/keys`);
  const staffForms = await page.$$eval('main form', (fs) => fs.length);
  await go(`/console/m/${merchants.a.id}/orders/${orders.paid}`);
  const staffActions = await page.$$eval('main form', (fs) => fs.length);
  const csrf = await page.getAttribute('form[action="/console/logout"] input[name=_csrf]', 'value');
  allowed = [{ status: 403, path: `/console/m/${merchants.a.id}/` }];
  const staffPost = await postWithout(`/console/m/${merchants.a.id}/keys`, 'label=staff&scopes=admin', csrf);
  const staffRefund = await postWithout(`/console/m/${merchants.a.id}/orders/${orders.paid}/action`, 'action=mark_invalid', csrf);
  allowed = [];
  await go(`/console/m/${merchants.a.id}`);
  await shot('dashboard-phone-dark', { phone: true, dark: true });
  say({ event: 'staff', forms_on_keys: staffForms, forms_on_order: staffActions, post_key: staffPost, post_action: staffRefund });
  await signOut();

  // 9. Wrong passwords lock the username, even against the right one; in Spanish too.
  phase = 'throttle';
  await accept(merchants.b.invite, 'carol');
  await signOut();
  allowed = [{ status: 401, path: '/console/login' }, { status: 429, path: '/console/login' }];
  const attempts = [];
  for (let i = 0; i < 5; i++) {
    await go('/console/login');
    await page.fill('#username', 'carol');
    await page.fill('#password', 'not the password ' + i);
    const [r] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.click('main form button[type=submit]')]);
    await page.waitForLoadState('load');
    attempts.push(r.status());
  }
  await go('/console/login?lang=es');
  await page.fill('#username', 'carol');
  await page.fill('#password', PASSWORD);
  const [locked] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.click('main form button[type=submit]')]);
  await page.waitForLoadState('load');
  const lockedText = await text('main .error');
  await shot('login-locked');
  allowed = [];
  say({ event: 'throttle', attempts, locked: locked.status(), text: lockedText, lang: await page.getAttribute('html', 'lang') });
} catch (e) {
  errors.push(`${phase}: ${e.name}: ${e.message.split('\n')[0]}`);
}
say({ event: 'done', ok: errors.length === 0, errors });
await context.close().catch(() => {});
rmSync(userDataDir, { recursive: true, force: true });
process.exit(errors.length === 0 ? 0 : 1);
