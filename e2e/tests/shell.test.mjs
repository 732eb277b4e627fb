// The browser shell: server-rendered, hydrated, navigable, and free of console errors.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium, loginAsLocalAdmin, seriousAccessibilityProblems, startPalisade, watchForErrors } from './harness.mjs';

const OUTPUT = join(dirname(fileURLToPath(import.meta.url)), '..', 'output');
const SECTIONS = [
  ['Overview', '/'],
  ['Policies', '/policies'],
  ['Library', '/library'],
  ['Rollouts', '/rollouts'],
  ['Exceptions', '/exceptions'],
  ['Violations', '/violations'],
  ['Clusters', '/clusters'],
  ['Compliance', '/compliance'],
  ['Audit log', '/audit'],
  ['Settings', '/settings'],
];

let server;
let browser;
// Signed in once as the local admin (the bootstrap secret works once); every page shares it.
let context;
let cookie;

before(async () => {
  mkdirSync(OUTPUT, { recursive: true });
  server = await startPalisade();
  browser = await launchChromium();
  context = await browser.newContext();
  const page = await context.newPage();
  await loginAsLocalAdmin(page, server);
  cookie = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
  await page.close();
});

after(async () => {
  await context?.close();
  await browser?.close();
  await server?.stop();
});

test('the Overview is in the raw HTML the server sends', async () => {
  const anonymous = await fetch(`${server.url}/`, { redirect: 'manual' });
  assert.equal(anonymous.status, 303);
  assert.equal(anonymous.headers.get('location'), '/login?next=%2F');
  const response = await fetch(`${server.url}/`, { headers: { cookie } });
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-security-policy') ?? '', /script-src 'self' 'nonce-/);
  const html = await response.text();
  assert.match(html, /<h1>Overview<\/h1>/);
  for (const [title, href] of SECTIONS) {
    assert.ok(html.includes(`href="${href}"`), `no link to ${title}`);
  }
  assert.ok(html.includes('/pkg/palisade.js'), 'no hydration script');
});

test('the page hydrates, navigates client-side to every section, and logs no errors', async () => {
  const page = await context.newPage();
  await page.setViewportSize({ width: 1280, height: 800 });
  const problems = watchForErrors(page);
  await page.goto(`${server.url}/`, { waitUntil: 'networkidle' });
  await page.waitForSelector('.app[data-hydrated="true"]', { timeout: 15_000 });

  // A server function answered through the hydrated page: the database is named.
  await page.getByRole('button', { name: 'Refresh' }).click();
  await page.waitForSelector('[data-testid="database-backend"]');
  assert.equal(await page.textContent('[data-testid="database-backend"]'), 'SQLite');
  await page.screenshot({ path: join(OUTPUT, 'overview.png'), fullPage: true });

  // Client-side navigation keeps the same document: a marker on window survives each click.
  await page.evaluate(() => { window.__palisadeMarker = 'same-document'; });
  for (const [title, href] of SECTIONS.slice(1).concat([SECTIONS[0]])) {
    await page.getByRole('navigation', { name: 'Primary' }).getByRole('link', { name: title, exact: true }).click();
    await page.waitForURL(`${server.url}${href}`);
    await page.waitForFunction((t) => document.querySelector('h1')?.textContent === t, title);
    const current = await page.getAttribute(`nav a[href="${href}"]`, 'aria-current');
    assert.equal(current, 'page', `${title} is not marked as the current page`);
    if (href !== '/') {
      // Each section has an honest empty state, or (audit log, settings) the entries it already has.
      await page.waitForSelector('.empty-state, .data-table');
      if (await page.isVisible('.empty-state') && !(await page.isVisible('.data-table'))) {
        const empty = await page.textContent('.empty-state');
        assert.ok(empty && empty.length > 15, `${title} has no empty state`);
      }
    }
    assert.equal(await page.evaluate(() => window.__palisadeMarker), 'same-document', `${title} reloaded the page`);
  }
  assert.deepEqual(problems, []);
  await page.close();
});

test('at 375 px every section fits the screen, and an accessibility audit finds nothing serious', async () => {
  // axe-core is injected as a script, which the Content-Security-Policy would refuse: this one
  // context bypasses it (the pages themselves are the ones every other test loads under it).
  const phone = await browser.newContext({ viewport: { width: 375, height: 800 }, bypassCSP: true });
  await phone.addCookies(await context.cookies());
  const page = await phone.newPage();
  const problems = watchForErrors(page);
  for (const [title, href] of SECTIONS) {
    await page.goto(`${server.url}${href}`, { waitUntil: 'networkidle' });
    await page.waitForSelector('.app[data-hydrated="true"]', { timeout: 15_000 });
    const widths = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    assert.ok(widths[0] <= widths[1], `${title} is ${widths[0]} px wide on a ${widths[1]} px screen`);
    await page.screenshot({ path: join(OUTPUT, `phone-${title.toLowerCase().replace(/ /g, '-')}.png`), fullPage: true });
    assert.deepEqual(await seriousAccessibilityProblems(page), [], `${title}: serious accessibility problems`);
  }
  assert.deepEqual(problems, []);
  await phone.close();
});

test('on a narrow screen the menu opens and closes', async () => {
  const page = await context.newPage();
  await page.setViewportSize({ width: 390, height: 844 });
  const problems = watchForErrors(page);
  await page.goto(`${server.url}/violations`, { waitUntil: 'networkidle' });
  await page.waitForSelector('.app[data-hydrated="true"]', { timeout: 15_000 });
  const toggle = page.getByRole('button', { name: 'Menu' });
  assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
  assert.equal(await page.isVisible('#primary-nav'), false);
  await toggle.click();
  const close = page.getByRole('button', { name: 'Close menu' });
  assert.equal(await close.getAttribute('aria-expanded'), 'true');
  assert.equal(await page.isVisible('#primary-nav'), true);
  await page.screenshot({ path: join(OUTPUT, 'menu-mobile.png') });
  await page.getByRole('link', { name: 'Clusters', exact: true }).click();
  await page.waitForURL(`${server.url}/clusters`);
  assert.equal(await page.isVisible('#primary-nav'), false, 'the menu closes after navigating');
  assert.deepEqual(problems, []);
  await page.close();
});
