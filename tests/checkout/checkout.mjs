// Drives Coffer's checkout page in real headless Chromium for
// crates/coffer/tests/checkout_browser.rs, which starts anvil and Coffer, creates the orders,
// pays on chain when told and checks what this script reports.
//
//   node checkout.mjs <scenario> <page-url> <screenshot-dir> [<redirect-prefix>]
//
// Scenarios: pay (choose USDT, pay, processing, paid, redirect; live updates by SSE),
// partial (pay part, see the remainder; EventSource removed, so by polling), expired (expired screen, redirect),
// cashier (Aurpay's `BASE/#/cashier/choose?token=…` arrives at the order's checkout),
// cashier-unknown (an unknown token there gets a message; then a link without a token). Output: one JSON object per line on stdout,
// `{"event": ...}`; the last is `{"event":"done","ok":true|false,"errors":[...]}`. Any
// request to another origin than the server's fails the run.
import { chromium } from 'playwright-core';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [scenario, pageUrl, shotDir, redirectPrefix] = process.argv.slice(2);
const executablePath = process.env.COFFER_TEST_CHROMIUM || '/usr/bin/chromium';
const origin = new URL(pageUrl).origin;
const errors = [];
let phase = 'start';
const requests = [];
const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const TIMEOUT = 90_000;
// The one failed request the cashier-unknown scenario expects: its token's status lookup.
const expected404 = scenario === 'cashier-unknown'
  ? `${origin}/pay/${new URLSearchParams(new URL(pageUrl).hash.split('?')[1] || '').get('token')}/status`
  : null;

mkdirSync(shotDir, { recursive: true });
const userDataDir = mkdtempSync(join(tmpdir(), 'coffer-chromium-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1280, height: 900 },
});

function watch(page, name) {
  // say which element broke the Content-Security-Policy, if one does
  page.addInitScript(() => document.addEventListener('securitypolicyviolation', (e) => {
    const t = e.target && e.target.outerHTML ? e.target.outerHTML.slice(0, 120) : String(e.target);
    console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI} sample=${JSON.stringify(e.sample)} src=${e.sourceFile}:${e.lineNumber} at ${t}`);
  }));
  page.on('request', (r) => {
    const u = r.url();
    requests.push(u);
    const ok = u.startsWith(origin + '/') || (redirectPrefix && u.startsWith(redirectPrefix))
      || u.startsWith('data:') || u === 'about:blank';
    if (!ok) errors.push(`${name} requested ${u} outside the server`);
  });
  page.on('response', (r) => {
    if (r.status() === 404 && r.url() === expected404) return;
    if (r.status() >= 400) errors.push(`${name}: ${r.status()} for ${r.url()}`);
  });
  page.on('console', (m) => {
    // the shop page redirected to (here /healthz) has no icon of its own: the browser asks
    // for /favicon.ico; checkout pages declare theirs
    if (m.location().url === `${origin}/favicon.ico`) return;
    if (expected404 && m.location().url === expected404 && m.text().includes('404')) return;
    if (m.type() === 'error') errors.push(`${name} console error during ${phase}: ${m.text().slice(0, 160)} at ${m.location().url}`);
  });
  page.on('pageerror', (e) => errors.push(`${name} script error: ${e.message}`));
}

const desktop = context.pages()[0] || (await context.newPage());
watch(desktop, 'desktop');
const phone = await context.newPage();
watch(phone, 'phone');
await phone.setViewportSize({ width: 360, height: 740 });
if (scenario === 'partial') await phone.emulateMedia({ colorScheme: 'dark' });

async function screen(page) {
  return page.getAttribute('#checkout', 'data-screen');
}

async function waitScreen(page, name) {
  await page.waitForSelector(`#checkout[data-screen="${name}"]`, { timeout: TIMEOUT });
}

// Checks every screen gets: fits 360 px, labelled controls, selectable amounts.
async function checkPage(page, label) {
  phase = `check ${label}`;
  const r = await page.evaluate(() => {
    const out = { overflow: document.documentElement.scrollWidth - window.innerWidth, unlabelled: [] };
    for (const el of document.querySelectorAll('button, a, input:not([type=hidden]), select')) {
      const name = (el.getAttribute('aria-label') || el.textContent || el.getAttribute('title') || '').trim();
      if (!name) out.unlabelled.push(el.outerHTML.slice(0, 80));
    }
    out.lang = document.documentElement.lang;
    return out;
  });
  if (r.overflow > 0) errors.push(`${label}: ${r.overflow}px horizontal overflow`);
  if (r.unlabelled.length) errors.push(`${label}: unlabelled controls ${r.unlabelled.join(' ')}`);
  return r;
}

async function shot(name) {
  phase = `shot ${name}`;
  await desktop.screenshot({ path: join(shotDir, `${name}-desktop.png`), fullPage: true, caret: 'initial' });
  await checkPage(desktop, `${name} desktop`);
  // the same page, as a phone sees it right now
  await phone.goto(desktop.url().replace(/([?&])choose=1/, '$1'), { waitUntil: 'load' });
  await phone.screenshot({ path: join(shotDir, `${name}-phone.png`), fullPage: true, caret: 'initial' });
  await checkPage(phone, `${name} phone`);
  // away before it redirects (the shop page is not ours to check)
  await phone.goto('about:blank');
  say({ event: 'screenshot', name });
}

async function readTarget(page) {
  return {
    amount: (await page.textContent('#pay-amount')).trim(),
    symbol: (await page.textContent('#pay-symbol')).trim(),
    address: (await page.textContent('#pay-address')).trim(),
  };
}

async function markNoReload(page) {
  await page.evaluate(() => { window.__cofferNoReload = 'still here'; });
}
async function assertNoReload(page, when) {
  const v = await page.evaluate(() => window.__cofferNoReload);
  if (v !== 'still here') errors.push(`the page reloaded before ${when}`);
}

// The partial scenario runs without EventSource: the page must fall back to polling.
if (scenario === 'partial') await desktop.addInitScript(() => { delete window.EventSource; });

try {
  const response = await desktop.goto(pageUrl, { waitUntil: 'load' });
  // the cashier entry is not a checkout screen (and goes on to one by itself)
  const cashier = scenario.startsWith('cashier');
  say({ event: 'opened', status: response.status(), screen: cashier ? null : await screen(desktop),
    csp: response.headers()['content-security-policy'] || null });
  if (scenario === 'pay') {
    await waitScreen(desktop, 'choose');
    const options = await desktop.$$eval('button.choice[data-asset]', (bs) => bs.map((b) => b.getAttribute('data-asset')));
    say({ event: 'choices', options });
    await shot('choose');
    await Promise.all([
      desktop.waitForURL((u) => !u.toString().includes('choose=1') && true, { timeout: TIMEOUT }),
      desktop.click('button.choice[data-asset$=":USDT"]'),
    ]);
    await waitScreen(desktop, 'pay');
    await markNoReload(desktop);
    const target = await readTarget(desktop);
    // the copy button puts the exact amount on the clipboard
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin });
    await desktop.click('#pay-amount ~ button.copy, .value:has(#pay-amount) button.copy');
    await desktop.waitForSelector('.value:has(#pay-amount) button.copy:text("Copied")', { timeout: 5000 });
    const copied = await desktop.evaluate(() => navigator.clipboard.readText());
    if (copied !== target.amount) errors.push(`copy button copied ${copied}, not ${target.amount}`);
    const qr = (await desktop.$('svg.qr')) !== null;
    const wallet = await desktop.getAttribute('#open-wallet', 'href');
    await shot('pay');
    phase = 'pay';
    say({ event: 'pay', ...target, qr, wallet });
    await desktop.bringToFront();
    await waitScreen(desktop, 'processing');
    await assertNoReload(desktop, 'processing');
    await shot('processing');
    say({ event: 'processing', confirmations: (await desktop.textContent('#confirmations')).trim() });
    await waitScreen(desktop, 'paid');
    await assertNoReload(desktop, 'paid');
    const tx = await desktop.getAttribute('a.txlink', 'href');
    say({ event: 'paid', explorer: tx, text: (await desktop.textContent('#live')).trim() });
    await desktop.screenshot({ path: join(shotDir, 'paid-desktop.png'), fullPage: true, caret: 'initial' });
    await checkPage(desktop, 'paid desktop');
    await desktop.waitForURL((u) => u.toString().startsWith(redirectPrefix), { timeout: TIMEOUT });
    say({ event: 'redirected', url: desktop.url() });
    if (!requests.some((u) => u.endsWith('/events'))) errors.push('the page never opened its event stream');
    await phone.goto(pageUrl, { waitUntil: 'load' });
    await phone.screenshot({ path: join(shotDir, 'paid-phone.png'), fullPage: true, caret: 'initial' });
    await phone.goto('about:blank');
  } else if (scenario === 'partial') {
    await waitScreen(desktop, 'pay');
    await markNoReload(desktop);
    say({ event: 'pay', ...(await readTarget(desktop)) });
    await desktop.waitForSelector('#live[data-partial]', { timeout: TIMEOUT });
    await assertNoReload(desktop, 'the partial payment');
    say({ event: 'partial', ...(await readTarget(desktop)), text: (await desktop.textContent('#live')).trim() });
    if (!requests.some((u) => u.endsWith('/status'))) errors.push('without EventSource the page did not poll /status');
    if (requests.some((u) => u.endsWith('/events'))) errors.push('EventSource was used although it was removed');
    await shot('partial');
  } else if (scenario === 'expired') {
    await waitScreen(desktop, 'expired');
    say({ event: 'expired', text: (await desktop.textContent('h1')).trim(), lang: await desktop.getAttribute('html', 'lang') });
    await shot('expired');
    // another language from Accept-Language, and the switcher
    await phone.setExtraHTTPHeaders({ 'Accept-Language': 'ru-RU,ru;q=0.9,en;q=0.5' });
    await phone.goto(pageUrl, { waitUntil: 'load' });
    say({ event: 'language', lang: await phone.getAttribute('html', 'lang'), text: (await phone.textContent('h1')).trim() });
    await phone.click('nav.langs a[hreflang="zh-CN"]');
    await phone.waitForLoadState('load');
    say({ event: 'switched', lang: await phone.getAttribute('html', 'lang'), text: (await phone.textContent('h1')).trim() });
    await phone.screenshot({ path: join(shotDir, 'expired-zh-phone.png'), fullPage: true, caret: 'initial' });
    await phone.goto('about:blank');
    await desktop.waitForURL((u) => u.toString().startsWith(redirectPrefix), { timeout: TIMEOUT });
    say({ event: 'redirected', url: desktop.url() });
  } else if (scenario === 'cashier') {
    // the entry forwards to pay/{token} in place of itself
    const token = new URLSearchParams(new URL(pageUrl).hash.split('?')[1]).get('token');
    await desktop.waitForURL(`${origin}/pay/${token}`, { timeout: TIMEOUT });
    await waitScreen(desktop, 'choose');
    const options = await desktop.$$eval('button.choice[data-asset]', (bs) => bs.map((b) => b.getAttribute('data-asset')));
    const back = await desktop.evaluate(() => history.length);
    say({ event: 'arrived', url: desktop.url(), screen: await screen(desktop), options, history: back });
    await checkPage(desktop, 'cashier arrival desktop');
  } else if (scenario === 'cashier-unknown') {
    await desktop.waitForSelector('#cashier[data-state="unknown"]', { timeout: TIMEOUT });
    say({ event: 'unknown', url: desktop.url(), title: (await desktop.textContent('#cashier h1')).trim(),
      text: (await desktop.textContent('#cashier p')).trim() });
    await desktop.screenshot({ path: join(shotDir, 'cashier-unknown-desktop.png'), fullPage: true, caret: 'initial' });
    await checkPage(desktop, 'cashier unknown desktop');
    phase = 'cashier without a token';
    await phone.goto(`${origin}/#/cashier/choose`, { waitUntil: 'load' });
    await phone.waitForSelector('#cashier[data-state="missing"]', { timeout: TIMEOUT });
    say({ event: 'missing', title: (await phone.textContent('#cashier h1')).trim() });
    await checkPage(phone, 'cashier missing phone');
  } else {
    errors.push(`unknown scenario ${scenario}`);
  }
} catch (e) {
  errors.push(`${e.name}: ${e.message.split('\n')[0]}`);
}
say({ event: 'done', ok: errors.length === 0, errors, requests: requests.length });
await context.close().catch(() => {});
rmSync(userDataDir, { recursive: true, force: true });
process.exit(errors.length === 0 ? 0 : 1);
