// Starts the real palisade binary on a free port with a fresh SQLite database, and Debian's Chromium
// through playwright-core. Both are stopped by the caller (by PID for the server).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const E2E = join(dirname(fileURLToPath(import.meta.url)), '..');

export const CHROMIUM = process.env.PALISADE_CHROMIUM ?? '/usr/bin/chromium';

function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: run the browser tests through scripts/test, which builds Palisade and sets it`);
  }
  return value;
}

/** A port that was free a moment ago on 127.0.0.1. */
export async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export const OIDC_CLIENT_SECRET = 'e2e-client-secret-7c21';

/**
 * Start the test OpenID provider (e2e/oidc/provider.mjs) for a Palisade at `palisadeUrl`; its users
 * `viewer`, `author`, `approver`, `admin` are in the groups palisade-viewers/authors/approvers/admins.
 */
export async function startOidcProvider(palisadeUrl) {
  const child = spawn(process.execPath, [join(E2E, 'oidc', 'provider.mjs')], {
    cwd: E2E,
    env: {
      ...process.env,
      OIDC_CLIENT_SECRET,
      OIDC_REDIRECT_URI: `${palisadeUrl}/auth/oidc/callback`,
      OIDC_POST_LOGOUT_URI: `${palisadeUrl}/login?signed_out=1`,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  const issuer = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the OIDC provider did not start within 15 s')), 15_000);
    child.once('exit', (code) => reject(new Error(`the OIDC provider exited with ${code}`)));
    lines.on('line', (line) => {
      try {
        const { issuer } = JSON.parse(line);
        clearTimeout(timer);
        resolve(issuer);
      } catch { /* notices */ }
    });
  });
  return {
    issuer,
    pid: child.pid,
    async stop() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      process.kill(child.pid, 'SIGTERM');
      await exited;
    },
  };
}

/**
 * Palisade with single sign-on through a fresh test provider: `{ server, provider }`. `env` adds
 * settings (e.g. `PALISADE__SECRETS__KEY`) on top of the SSO ones.
 */
export async function startPalisadeWithSso(env = {}) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const provider = await startOidcProvider(url);
  const server = await startPalisade({
    PALISADE__HTTP__ADDRESS: `127.0.0.1:${port}`,
    PALISADE__HTTP__PUBLIC_URL: url,
    PALISADE__OIDC__ISSUER_URL: provider.issuer,
    PALISADE__OIDC__CLIENT_ID: 'palisade',
    PALISADE__OIDC__CLIENT_SECRET: OIDC_CLIENT_SECRET,
    PALISADE__OIDC__VIEWER_GROUPS: '["palisade-viewers"]',
    PALISADE__OIDC__AUTHOR_GROUPS: '["palisade-authors"]',
    PALISADE__OIDC__APPROVER_GROUPS: '["palisade-approvers"]',
    PALISADE__OIDC__ADMIN_GROUPS: '["palisade-admins"]',
    PALISADE__AUTH__LOGIN_ATTEMPTS_PER_MINUTE: '1000',
    ...env,
  });
  return { server, provider };
}

/**
 * Sign `page` in as the test provider's user `role` (viewer, author, approver, admin) through the
 * real SSO flow, and wait until Palisade shows the role in the user menu.
 */
export async function loginAs(page, server, role, next = '/') {
  await page.goto(`${server.url}/login?next=${encodeURIComponent(next)}`, { waitUntil: 'networkidle' });
  await page.getByRole('link', { name: 'Sign in with single sign-on' }).click();
  await page.waitForSelector('input[name="login"]');
  await page.fill('input[name="login"]', role);
  await page.fill('input[name="password"]', 'any');
  await page.click('button[type="submit"]');
  // The provider asks for consent once per sign-in.
  await page.waitForURL((url) => url.href.startsWith(server.url) || url.pathname.startsWith('/interaction/'));
  if (!page.url().startsWith(server.url)) {
    await page.click('button[type="submit"]');
  }
  await page.waitForURL((url) => url.href.startsWith(server.url) && url.pathname !== '/login');
  await page.waitForSelector(`.role-badge[data-role="${role}"]`);
}

/** Start `palisade serve` and resolve once it logs its address. `env` adds settings. */
export async function startPalisade(env = {}) {
  const bin = required('PALISADE_BIN');
  const siteRoot = required('PALISADE_SITE_ROOT');
  const dir = mkdtempSync(join(tmpdir(), 'palisade-e2e-'));
  const child = spawn(bin, ['serve'], {
    cwd: dir,
    env: {
      ...process.env,
      PALISADE__HTTP__ADDRESS: '127.0.0.1:0',
      PALISADE__HTTP__SITE_ROOT: siteRoot,
      PALISADE__LOG__FORMAT: 'json',
      ...env,
    },
    // stdout carries the one-time bootstrap secret (local sign-in), read by `bootstrapSecret`.
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let secret;
  createInterface({ input: child.stdout }).on('line', (line) => {
    const found = line.trim();
    if (found.startsWith('pbs_')) secret = found;
  });
  const lines = createInterface({ input: child.stderr });
  const address = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('palisade did not start within 30 s')), 30_000);
    child.once('exit', (code) => reject(new Error(`palisade exited with ${code} before serving`)));
    lines.on('line', (line) => {
      let event;
      try { event = JSON.parse(line); } catch { process.stderr.write(`${line}\n`); return; }
      if (event.message === 'palisade is serving') {
        clearTimeout(timer);
        resolve(event.address);
      } else if (event.level === 'ERROR' || event.level === 'WARN') {
        process.stderr.write(`${line}\n`);
      }
    });
  });
  return {
    url: `http://${address}`,
    pid: child.pid,
    /** This start's one-time bootstrap secret, when local sign-in is on. */
    bootstrapSecret: () => secret,
    async stop() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      process.kill(child.pid, 'SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Debian's Chromium, headless, with nothing that reaches for the network. */
export async function launchChromium() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Collect everything a page reports as wrong: console errors, uncaught exceptions, failed requests. */
export function watchForErrors(page) {
  const problems = [];
  page.on('console', (msg) => { if (msg.type() === 'error') problems.push(`console: ${msg.text()}`); });
  page.on('pageerror', (err) => problems.push(`exception: ${err.message}`));
  page.on('requestfailed', (req) => {
    const reason = req.failure()?.errorText;
    // Leaving a page (a sign-in redirect, a reload, a test's next `goto`) cancels what it still had
    // on its way: the page's code, fetched ahead module by module, or an answer it was waiting
    // for. That is not a fault; a server that fails answers with a status, caught below.
    if (reason === 'net::ERR_ABORTED') return;
    problems.push(`request failed: ${req.url()} ${reason}`);
  });
  page.on('response', (res) => { if (res.status() >= 400) problems.push(`HTTP ${res.status()}: ${res.url()}`); });
  return problems;
}

/**
 * A Palisade (with the settings `env`), Chromium and a 1280×900 page signed in as the local admin
 * on `next`, its problems watched from then on. What started is stopped again if a step fails.
 */
export async function startSignedInAsLocalAdmin(next, env = {}) {
  const server = await startPalisade(env);
  let browser;
  try {
    browser = await launchChromium();
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const problems = watchForErrors(page);
    await loginAsLocalAdmin(page, server, next);
    return { server, browser, page, problems };
  } catch (error) {
    await browser?.close();
    await server.stop();
    throw error;
  }
}

/**
 * A new context of `browser` (1280×900 unless `options` say otherwise), added to `contexts` for the
 * caller to close, with a page signed in to `server` as `role` through SSO and settled on the
 * settings page; its problems are watched from then on.
 */
export async function signedInContext(browser, server, contexts, role, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...options });
  contexts.push(context);
  const page = await context.newPage();
  await loginAs(page, server, role, '/settings');
  await hydrated(page);
  await page.waitForLoadState('networkidle');
  return { context, page, problems: watchForErrors(page) };
}

/** Sign `page` in as the local admin with the server's bootstrap secret (no SSO configured). */
export async function loginAsLocalAdmin(page, server, next = '/') {
  await page.goto(`${server.url}/login?next=${encodeURIComponent(next)}`, { waitUntil: 'networkidle' });
  await page.fill('input[name="secret"]', server.bootstrapSecret());
  await page.click('form.login-local button[type="submit"]');
  await page.waitForURL((url) => url.pathname !== '/login');
  await page.waitForSelector('.role-badge[data-role="admin"]');
}

/**
 * axe-core's serious and critical findings on `page`, in words. axe is injected as a script, which
 * the Content-Security-Policy refuses: the page's context must be made with `bypassCSP: true`.
 */
export async function seriousAccessibilityProblems(page) {
  await page.addScriptTag({ path: join(E2E, 'node_modules', 'axe-core', 'axe.min.js') });
  return page.evaluate(async () => (await window.axe.run(document, { resultTypes: ['violations'] }))
    .violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')})`));
}

/** Palisade's REST API with a bearer token; fails with the body unless the status is `expected`. */
export async function api(server, token, method, path, body, expected) {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  assert.equal(res.status, expected, `${method} ${path}: ${text}`);
  return text ? JSON.parse(text) : undefined;
}

/** Waits until the page's code runs in the browser (the layout marks it). */
export async function hydrated(page) {
  await page.waitForSelector('.app[data-hydrated="true"]', { timeout: 15_000 });
}

/** Opens the workspace tab `name` (its `tab-<name>` button) and waits until it is the selected one. */
export async function openTab(page, name) {
  await page.click(`[data-testid="tab-${name}"]`);
  await page.waitForSelector(`[data-testid="tab-${name}"][aria-selected="true"]`);
}

/** An API token named `name-role` of the signed-in user with `role`, made from the page as a person would. */
export async function tokenOf(page, role, name) {
  const { status, body } = await page.evaluate(async ([role, name]) => {
    const res = await fetch('/api/v1/tokens', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: `${name}-${role}`, role, expires_in_days: 1 }),
    });
    return { status: res.status, body: await res.text() };
  }, [role, name]);
  assert.equal(status, 201, body);
  return JSON.parse(body).secret;
}
