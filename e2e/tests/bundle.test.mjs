// The browser bundle as a person's browser downloads it: cut at each page, compressed, and small
// enough for the first page. Sizes are what Chromium received (compressed bytes on the wire).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { launchChromium, loginAsLocalAdmin, startPalisade, watchForErrors } from './harness.mjs';

// The budget for the code of the first page a person opens (the sign-in page, or the Overview once
// signed in): wasm and JavaScript, compressed.
const FIRST_PAGE_BUDGET = 400_000;

const PAGES = [
  ['Sign-in', '/login', 'login'],
  ['Overview', '/', 'overview'],
  ['Policies', '/policies', 'policies'],
  ['New policy', '/policies/new', 'new_policy'],
  ['Library', '/library', 'library'],
  ['Rollouts', '/rollouts', 'rollouts'],
  ['Exceptions', '/exceptions', 'exceptions'],
  ['Violations', '/violations', 'violations'],
  ['Clusters', '/clusters', 'clusters'],
  ['Compliance', '/compliance', 'compliance'],
  ['Audit log', '/audit', 'audit'],
  ['Settings', '/settings', 'settings'],
];

let server;
let browser;
let cookies;

before(async () => {
  server = await startPalisade();
  browser = await launchChromium();
  const context = await browser.newContext();
  const page = await context.newPage();
  await loginAsLocalAdmin(page, server);
  cookies = await context.cookies();
  await context.close();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/// Opens `path` in a fresh browser (nothing cached) and returns what it downloaded from /pkg/.
async function firstVisit(path, signedIn) {
  const context = await browser.newContext();
  if (signedIn) await context.addCookies(cookies);
  const page = await context.newPage();
  const problems = watchForErrors(page);
  const responses = [];
  page.on('response', (response) => {
    if (new URL(response.url()).pathname.startsWith('/pkg/')) responses.push(response);
  });
  await page.goto(`${server.url}${path}`, { waitUntil: 'networkidle' });
  await page.waitForSelector('.app[data-hydrated="true"]', { timeout: 15_000 });
  const files = [];
  for (const response of responses) {
    const { responseBodySize } = await response.request().sizes();
    files.push({
      name: new URL(response.url()).pathname.slice('/pkg/'.length),
      bytes: responseBodySize,
      encoding: (await response.allHeaders())['content-encoding'] ?? '',
    });
  }
  await context.close();
  assert.deepEqual(problems, [], `${path} logged errors`);
  return files;
}

test('each page downloads its own code only, compressed, and the first page stays within budget', async () => {
  const rows = [];
  for (const [title, path, route] of PAGES) {
    const files = await firstVisit(path, path !== '/login');
    const code = files.filter((f) => f.name.endsWith('.wasm') || f.name.endsWith('.js'));
    const total = code.reduce((sum, f) => sum + f.bytes, 0);
    rows.push({ title, path, modules: code.length, total });

    const main = files.find((f) => f.name === 'palisade.wasm');
    assert.ok(main, `${path} did not load the main module`);
    assert.equal(main.encoding, 'gzip', `${path}: the main module was sent uncompressed`);
    const own = `split___${route}_route_view_`;
    assert.ok(code.some((f) => f.name.startsWith(own)), `${path} did not load its own page module (${own}…)`);
    const foreign = code.filter((f) => f.name.startsWith('split___') && !f.name.startsWith(own));
    assert.deepEqual(foreign.map((f) => f.name), [], `${path} downloaded other pages' code`);
  }

  console.log('\nfirst visit to each page, code downloaded (compressed):');
  for (const { title, path, modules, total } of rows) {
    console.log(`  ${title.padEnd(12)} ${path.padEnd(15)} ${String(modules).padStart(4)} files ${(total / 1000).toFixed(1).padStart(7)} KB`);
  }
  for (const { title, total } of rows.filter((r) => r.path === '/' || r.path === '/login')) {
    assert.ok(total <= FIRST_PAGE_BUDGET,
      `${title} downloads ${total} bytes of code, over the first page's budget of ${FIRST_PAGE_BUDGET}`);
  }
});
