// Sign-in through a real OpenID provider (npm oidc-provider), roles from groups, what a viewer may
// not do, logout, and tampered state and nonce.
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { launchChromium, loginAs, startPalisadeWithSso, watchForErrors } from './harness.mjs';

const OUTPUT = join(dirname(fileURLToPath(import.meta.url)), '..', 'output');

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
    await loginAs(page, server, role, '/settings');
    assert.equal(new URL(page.url()).pathname, '/settings');
    // The provider's development pages load web fonts from the internet; watch Palisade's page only.
    const problems = watchForErrors(page);
    await page.reload({ waitUntil: 'networkidle' });
    await page.waitForSelector('.app[data-hydrated="true"]', { timeout: 15_000 });
    assert.equal(await page.textContent('.role-badge'), role);
    assert.equal(await page.textContent('.user-name'), role);
    // Tokens can be made up to one's own role, no higher.
    const offered = await page.$$eval('select[name="request[role]"] option', (o) => o.map((x) => x.value));
    const order = ['viewer', 'author', 'approver', 'admin'];
    assert.deepEqual(offered, order.slice(0, order.indexOf(role) + 1));
    assert.deepEqual(problems, []);
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
      await post('/api/audit_entries', 'query[limit]=1'),
    ];
  });
  assert.deepEqual(statuses, [403, 403, 403]);
  await context.close();
});

test("a viewer's policy workspace shows the controls it may not use disabled, saying which role may", async () => {
  // An author adopts a library policy (from the page, as a person's browser would).
  const authorContext = await browser.newContext();
  const authorPage = await authorContext.newPage();
  await loginAs(authorPage, server, 'author', '/settings');
  const created = await authorPage.evaluate(async () => {
    const res = await fetch('/api/v1/policies', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ from: 'library', entry: 'disallow-privileged' }),
    });
    return { status: res.status, body: await res.json() };
  });
  assert.ok([200, 201].includes(created.status), JSON.stringify(created.body));
  const id = created.body.policy.id;
  await authorContext.close();

  const context = await browser.newContext();
  const page = await context.newPage();
  await loginAs(page, server, 'viewer', `/policies/${id}?tab=tests`);
  await page.waitForSelector('.app[data-hydrated="true"]', { timeout: 15_000 });
  await page.waitForSelector('[data-testid="tab-tests"][aria-selected="true"]');
  assert.ok(await page.isDisabled('[data-testid="save-version"]'));
  assert.equal(await page.getAttribute('[data-testid="save-version"]', 'title'), 'Needs the author role');
  assert.equal((await page.textContent('[data-testid="save-needs-role"]')).trim(), 'Needs the author role to save.');
  assert.ok(await page.isDisabled('[data-testid="run-tests"]'));
  await page.click('[data-testid="tab-staging"]');
  await page.waitForSelector('[data-testid="mode-prod"]');
  assert.ok(await page.isDisabled('[data-testid="mode-prod"]'));
  await context.close();
});

test('a viewer is offered no form it may not submit: each says which role may, and an author gets the forms', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await loginAs(page, server, 'viewer', '/rollouts');
  const says = async (path, testid, text) => {
    await page.goto(`${server.url}${path}`, { waitUntil: 'networkidle' });
    await page.waitForSelector('.app[data-hydrated="true"]', { timeout: 15_000 });
    await page.waitForSelector(`[data-testid="${testid}"]`);
    assert.equal((await page.textContent(`[data-testid="${testid}"]`)).trim(), text);
  };
  await says('/rollouts', 'propose-needs-role', 'Proposing a rollout: needs the author role.');
  assert.equal(await page.locator('[data-testid="propose-rollout"]').count(), 0);
  await says('/exceptions', 'request-needs-role', 'Requesting an exception: needs the author role.');
  await says('/policies', 'new-policy-needs-role', 'New policies: needs the author role.');
  assert.equal(await page.locator('[data-testid="new-policy"]').count(), 0);
  await says('/policies/new', 'create-needs-role', 'Creating a policy: needs the author role.');
  assert.equal(await page.locator('[data-testid="paste-yaml"]').count(), 0);
  await says('/library', 'adopt-needs-role', 'Adopting an entry: needs the author role.');
  const adopt = page.locator('[data-testid^="adopt-"]:not([data-testid="adopt-needs-role"])');
  assert.ok((await adopt.count()) > 0);
  for (const button of await adopt.all()) assert.ok(await button.isDisabled());
  await page.setViewportSize({ width: 375, height: 800 });
  await page.screenshot({ path: join(OUTPUT, 'phone-viewer-library.png'), fullPage: true });
  await context.close();

  const authorContext = await browser.newContext();
  const author = await authorContext.newPage();
  await loginAs(author, server, 'author', '/rollouts');
  await author.waitForSelector('[data-testid="propose-rollout"]');
  assert.equal(await author.locator('[data-testid="propose-needs-role"]').count(), 0);
  await author.goto(`${server.url}/policies`, { waitUntil: 'networkidle' });
  await author.waitForSelector('[data-testid="new-policy"]');
  await authorContext.close();
});

test('the Clusters page offers an author no control only an admin may use', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await loginAs(page, server, 'author', '/clusters');
  await page.waitForSelector('[data-testid="register-needs-role"]');
  assert.equal(
    (await page.textContent('[data-testid="register-needs-role"]')).trim(),
    'Registering a cluster: needs the admin role.',
  );
  assert.equal(await page.locator('[data-testid="register-cluster"]').count(), 0);
  await context.close();
});

test('an admin disables a person on the People panel: their session stops at once, and comes back', async () => {
  mkdirSync(OUTPUT, { recursive: true });
  const authorContext = await browser.newContext();
  const authorPage = await authorContext.newPage();
  await loginAs(authorPage, server, 'author', '/settings');
  const me = () => authorPage.evaluate(() => fetch('/api/v1/me').then((r) => r.status));
  assert.equal(await me(), 200);

  const context = await browser.newContext();
  const page = await context.newPage();
  await loginAs(page, server, 'admin', '/settings');
  const problems = watchForErrors(page);
  await page.reload({ waitUntil: 'networkidle' });
  await page.waitForSelector('.app[data-hydrated="true"]', { timeout: 15_000 });
  const row = page.locator('.people-table tr', { hasText: 'author@example.test' });
  await row.waitFor();
  assert.equal((await row.locator('[data-testid="person-access"]').textContent()).trim(), 'active');
  await page.screenshot({ path: join(OUTPUT, 'settings-people.png'), fullPage: true });

  await row.getByRole('button', { name: 'Disable' }).click();
  await page.waitForFunction(() => [...document.querySelectorAll('.people-table tr')]
    .some((tr) => tr.textContent.includes('author@example.test')
      && tr.querySelector('[data-testid="person-access"]')?.textContent.trim() === 'disabled by an admin'));
  assert.equal(await me(), 401, "the author's live session stopped");

  await page.locator('.people-table tr', { hasText: 'author@example.test' })
    .getByRole('button', { name: 'Enable' }).click();
  await page.waitForFunction(() => [...document.querySelectorAll('.people-table tr')]
    .some((tr) => tr.textContent.includes('author@example.test')
      && tr.querySelector('[data-testid="person-access"]')?.textContent.trim() === 'active'));
  assert.equal(await me(), 200, 'enabled again, the same session works');

  await page.setViewportSize({ width: 375, height: 800 });
  // Several sessions and people by now: the page still fits, its tables scroll inside themselves.
  const [scroll, inner] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  assert.ok(scroll <= inner, `Settings is ${scroll} px wide on a ${inner} px screen`);
  await page.screenshot({ path: join(OUTPUT, 'settings-people-phone.png'), fullPage: true });
  assert.deepEqual(problems, []);
  await context.close();
  await authorContext.close();
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
  await page.waitForURL((url) => url.href.startsWith(provider.issuer), { timeout: 10_000 }).catch((err) => {
    throw new Error(`${err.message}\nat ${page.url()}`);
  });
  const after = await fetch(`${server.url}/api/v1/me`, { headers: { cookie } });
  assert.equal(after.status, 401);
  await context.close();
});

/**
 * Make the provider see a different `param` (state or nonce) than Palisade keeps in the session:
 * rewrite it in Palisade's redirect to the provider. (Playwright does not route redirected
 * requests, so the redirect response itself is rewritten.)
 */
async function tamperAuthorizeRequest(page, param) {
  await page.route('**/auth/oidc/start*', async (route) => {
    const response = await route.fetch({ maxRedirects: 0 });
    const location = new URL(response.headers().location);
    location.searchParams.set(param, `${location.searchParams.get(param)}-tampered`);
    await route.fulfill({ response, headers: { ...response.headers(), location: location.href } });
  });
}

async function signInThroughProvider(page) {
  await page.goto(`${server.url}/login`, { waitUntil: 'networkidle' });
  await page.getByRole('link', { name: 'Sign in with single sign-on' }).click();
  await page.waitForSelector('input[name="login"]');
  await page.fill('input[name="login"]', 'author');
  await page.fill('input[name="password"]', 'any');
  await page.click('button[type="submit"]');
  await page.waitForURL((url) => url.href.startsWith(server.url) || url.pathname.startsWith('/interaction/'));
  if (!page.url().startsWith(server.url)) await page.click('button[type="submit"]');
}

for (const param of ['state', 'nonce']) {
  test(`a tampered ${param} is refused`, async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await tamperAuthorizeRequest(page, param);
    await signInThroughProvider(page);
    await page.waitForSelector(`[data-error="${param}"]`, { timeout: 15_000 }).catch((err) => {
      throw new Error(`${err.message}\nat ${page.url()}`);
    });
    const me = await fetch(`${server.url}/api/v1/me`, { headers: { cookie: await cookieHeader(context) } });
    assert.equal(me.status, 401);
    await context.close();
  });
}
