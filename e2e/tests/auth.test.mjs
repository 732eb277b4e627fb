// Sign-in through a real OpenID provider (npm oidc-provider), roles from groups, what a viewer may
// not do, logout, and tampered state and nonce.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { launchChromium, loginAs, startPalisadeWithSso, watchForErrors } from './harness.mjs';

let server;
let provider;
let browser;

before(async () => {
  ({ server, provider } = await startPalisadeWithSso());
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await provider?.stop();
});

async function cookieHeader(context) {
  return (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
}

test('an unauthenticated visit is sent to the sign-in page, which offers single sign-on', async () => {
  const page = await browser.newPage();
  await page.goto(`${server.url}/policies`, { waitUntil: 'networkidle' });
  assert.equal(new URL(page.url()).pathname, '/login');
  assert.equal(new URL(page.url()).searchParams.get('next'), '/policies');
  assert.ok(await page.isVisible('text=Sign in with single sign-on'));
  assert.equal(await page.isVisible('input[name="secret"]'), false, 'no local admin with SSO on');
  await page.close();
});

for (const role of ['author', 'approver', 'viewer']) {
  test(`${role} signs in and sees the role`, async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const problems = watchForErrors(page);
    await loginAs(page, server, role, '/settings');
    assert.equal(new URL(page.url()).pathname, '/settings');
    assert.equal(await page.textContent('.role-badge'), role);
    assert.equal(await page.textContent('.user-name'), role);
    // Tokens can be made up to one's own role, no higher.
    const offered = await page.$$eval('select[name="request[role]"] option', (o) => o.map((x) => x.value));
    const order = ['viewer', 'author', 'approver', 'admin'];
    assert.deepEqual(offered, order.slice(0, order.indexOf(role) + 1));
    assert.deepEqual(problems.filter((p) => !p.includes('/interaction/')), []);
    await context.close();
  });
}

test('a viewer sees no admin or edit controls, and the server refuses edits anyway', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await loginAs(page, server, 'viewer', '/audit');
  await page.waitForSelector('.empty-state');
  assert.match(await page.textContent('.empty-state'), /Only admins/);
  await page.goto(`${server.url}/settings`, { waitUntil: 'networkidle' });
  assert.equal(await page.isVisible('text=Sign-in and roles'), false);
  // Server functions called directly from the page, as a script would: refused with 403.
  const statuses = await page.evaluate(async () => {
    const post = (path, body) => fetch(path, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body,
    }).then((r) => r.status);
    return [
      await post('/api/create_my_token', 'request[name]=x&request[role]=author&request[expires_in_days]=1'),
      await post('/api/sign_in_settings', ''),
      await post('/api/audit_entries', 'query[offset]=0'),
    ];
  });
  assert.deepEqual(statuses, [403, 403, 403]);
  await context.close();
});

test('logout ends the session: the old cookie is refused afterwards', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await loginAs(page, server, 'author');
  const cookie = await cookieHeader(context);
  const before = await fetch(`${server.url}/api/v1/me`, { headers: { cookie } });
  assert.equal(before.status, 200);
  await page.getByRole('button', { name: 'Sign out' }).click();
  // RP-initiated logout: the provider's own page (it asks to confirm).
  await page.waitForURL((url) => url.href.startsWith(provider.issuer));
  const after = await fetch(`${server.url}/api/v1/me`, { headers: { cookie } });
  assert.equal(after.status, 401);
  await context.close();
});

test('a tampered state is refused', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.route('**/auth/oidc/callback?*', (route) => {
    const url = new URL(route.request().url());
    url.searchParams.set('state', `${url.searchParams.get('state')}x`);
    return route.continue({ url: url.href });
  });
  await page.goto(`${server.url}/login`, { waitUntil: 'networkidle' });
  await page.getByRole('link', { name: 'Sign in with single sign-on' }).click();
  await page.fill('input[name="login"]', 'author');
  await page.fill('input[name="password"]', 'any');
  await page.click('button[type="submit"]');
  await page.waitForURL((url) => url.href.startsWith(server.url) || url.pathname.startsWith('/interaction/'));
  if (!page.url().startsWith(server.url)) await page.click('button[type="submit"]');
  await page.waitForSelector('[data-error="state"]');
  const me = await fetch(`${server.url}/api/v1/me`, { headers: { cookie: await cookieHeader(context) } });
  assert.equal(me.status, 401);
  await context.close();
});

test('a tampered nonce is refused', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  // The nonce the provider puts in the ID token is not the one Palisade keeps in the session.
  await page.route(`${provider.issuer}/auth?*`, (route) => {
    const url = new URL(route.request().url());
    url.searchParams.set('nonce', 'tampered-nonce');
    return route.continue({ url: url.href });
  });
  await page.goto(`${server.url}/login`, { waitUntil: 'networkidle' });
  await page.getByRole('link', { name: 'Sign in with single sign-on' }).click();
  await page.fill('input[name="login"]', 'author');
  await page.fill('input[name="password"]', 'any');
  await page.click('button[type="submit"]');
  await page.waitForURL((url) => url.href.startsWith(server.url) || url.pathname.startsWith('/interaction/'));
  if (!page.url().startsWith(server.url)) await page.click('button[type="submit"]');
  await page.waitForSelector('[data-error="nonce"]');
  await context.close();
});
