// Rollouts in the browser, against a real kube-apiserver of the cluster test bed: an author proposes
// a rollout of a library policy and cannot approve it; an approver, in another browser, approves it
// and watches it reach `applied` without reloading the page; the policy is then removed again
// through Palisade. The apiserver itself is asked whether the policy arrived and left.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdirSync } from 'node:fs';
import { request } from 'node:https';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  api, hydrated, launchChromium, signedInContext, startPalisadeWithSso, tokenOf,
} from './harness.mjs';

const OUTPUT = join(dirname(fileURLToPath(import.meta.url)), '..', 'output');
// Seals cluster credentials in this run's throwaway database.
const SECRETS_KEY = '3c9e1f7a5b2d8c4e6f0a9b1c3d5e7f9a2b4c6d8e0f1a3b5c7d9e1f2a4b6c8d0e';
// Not used by any other browser test, so its ValidatingAdmissionPolicy is this test's alone.
const ENTRY = 'disallow-latest-tag';
const CLUSTER = 'bed-1';
// Approval, one apply on one apiserver and the page's two-second refresh fit well inside this.
const LIVE_TIMEOUT = 60_000;

let server;
let provider;
let browser;
let bed;
const contexts = [];

/** The first test-bed cluster, or a loud failure naming what to run. */
function testbed() {
  const missing = ['TESTBED_PALISADE_KUBECONFIG_1', 'TESTBED_API_URL_1', 'TESTBED_CA_FILE_1']
    .filter((name) => !process.env[name]);
  if (missing.length > 0) {
    throw new Error(
      `\n\n*** CLUSTER TEST BED NOT CONFIGURED ***\n${missing.join(', ')} not set: start it with `
      + '`e2e/clusters up 1 && eval "$(e2e/clusters env)"` (scripts/test does both) before the browser tests.\n',
    );
  }
  const kubeconfig = readFileSync(process.env.TESTBED_PALISADE_KUBECONFIG_1, 'utf8');
  // `e2e/clusters` writes kubeconfigs as JSON (which is YAML too); read the static token from it.
  let token;
  try { token = JSON.parse(kubeconfig).users?.[0]?.user?.token; } catch { /* YAML */ }
  token ??= kubeconfig.match(/^\s*token:\s*"?([^"\s]+)"?\s*$/m)?.[1];
  assert.ok(token, `no bearer token in ${process.env.TESTBED_PALISADE_KUBECONFIG_1}`);
  return {
    kubeconfig,
    token,
    apiUrl: process.env.TESTBED_API_URL_1,
    ca: readFileSync(process.env.TESTBED_CA_FILE_1, 'utf8'),
  };
}

/** GET `path` on the test-bed apiserver as Palisade's own least-privilege user: `{ status, body }`. */
function kube(path) {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, bed.apiUrl), {
      ca: bed.ca,
      headers: { authorization: `Bearer ${bed.token}`, accept: 'application/json' },
      timeout: 10_000,
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => { text += chunk; });
      res.on('end', () => {
        let body;
        try { body = JSON.parse(text); } catch { body = text; }
        resolve({ status: res.statusCode, body });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} on the test bed timed out`)));
    req.on('error', reject);
    req.end();
  });
}

const VAP = `/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/${ENTRY}`;
const BINDING = `/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings/${ENTRY}`;

/**
 * A new browser context signed in as `role`, its page (left on the quiet Settings page, fully
 * loaded), and from then on what that page reports as wrong. Watching starts only once nothing is
 * loading: the provider's development pages load fonts from the internet, and leaving a page that
 * still loads would count its aborted requests.
 */
/** A new context with a page signed in as `role` (see `signedInContext`). */
const signedIn = (role) => signedInContext(browser, server, contexts, role);

/**
 * Wait until the page shows rollout `id` (its id is in the header: while a newly followed rollout
 * loads, the page keeps showing the previous one) in `state`, with `stepState` for the cluster.
 */
async function waitForRollout(page, id, state, stepState, what) {
  await page.waitForFunction(
    ([id, state, stepState, cluster]) => {
      const header = document.querySelector('.page-header')?.textContent ?? '';
      const shown = document.querySelector('[data-testid="rollout-state"]')?.textContent.trim();
      const step = document.querySelector(
        `[data-testid="rollout-steps"] [data-testid="rollout-step"][data-cluster="${cluster}"] [data-testid="step-state"]`,
      )?.textContent.trim();
      return header.includes(id) && shown === state && step === stepState;
    },
    [id, state, stepState, CLUSTER],
    { timeout: LIVE_TIMEOUT, polling: 100 },
  ).catch(async (err) => {
    const header = await page.textContent('.page-header').catch(() => '(none)');
    const shown = await page.textContent('[data-testid="rollout-state"]').catch(() => '(none)');
    const steps = await page.textContent('[data-testid="rollout-steps"]').catch(() => '(none)');
    throw new Error(`${what}: the page did not show rollout ${id} ${state} / step ${stepState} within `
      + `${LIVE_TIMEOUT} ms (it shows ${header?.replace(/\s+/g, ' ')}: ${shown}; steps: `
      + `${steps?.replace(/\s+/g, ' ')}) at ${page.url()}\n${err.message}`);
  });
}

let policyId;
let rolloutId;
let author;

before(async () => {
  mkdirSync(OUTPUT, { recursive: true });
  bed = testbed();
  ({ server, provider } = await startPalisadeWithSso({
    PALISADE__SECRETS__KEY: SECRETS_KEY,
    PALISADE__ROLLOUTS__POLL_MS: '200',
  }));
  browser = await launchChromium();

  // Arranged through the REST API: the cluster by an admin, the policy by an author.
  const admin = await signedIn('admin');
  const adminToken = await tokenOf(admin.page, 'admin', 'e2e-rollouts');
  await admin.context.close();
  const cluster = await api(server, adminToken, 'POST', '/api/v1/clusters', {
    name: CLUSTER,
    environment: 'dev',
    credentials: { kind: 'kubeconfig', kubeconfig: bed.kubeconfig },
  }, 201);
  assert.equal(cluster.health, 'reachable', `the test-bed cluster is not reachable: ${cluster.last_error}`);

  author = await signedIn('author');
  const authorToken = await tokenOf(author.page, 'author', 'e2e-rollouts');
  const created = await api(server, authorToken, 'POST', '/api/v1/policies', { from: 'library', entry: ENTRY }, 201);
  policyId = created.policy.id;
  assert.ok(policyId, JSON.stringify(created));
  const before = await kube(VAP);
  assert.equal(before.status, 404, `${ENTRY} is already on the test-bed cluster (left by an earlier run? `
    + `\`e2e/clusters up 1\` starts the test bed afresh): ${JSON.stringify(before.body)}`);
});

after(async () => {
  for (const context of contexts) await context.close().catch(() => {});
  await browser?.close();
  await server?.stop();
  await provider?.stop();
});

test('an author proposes a rollout from the form and cannot approve it', async () => {
  const { page, problems } = author;
  await page.goto(`${server.url}/rollouts`, { waitUntil: 'networkidle' });
  await hydrated(page);
  await page.waitForSelector(`[data-testid="propose-policy"] option[value="${policyId}"]`, { state: 'attached' });
  await page.selectOption('[data-testid="propose-policy"]', policyId);
  await page.selectOption('[data-testid="propose-mode"]', 'audit');
  // One wave, dev: the default's prod wave would select no cluster (the test bed's is dev).
  await page.getByRole('button', { name: 'Remove wave 2' }).click();
  await page.waitForFunction((cluster) => {
    const waves = document.querySelectorAll('[data-testid="wave-editor"] [data-testid="wave"]');
    const taken = [...waves].map((w) => [...w.querySelectorAll('[data-testid="wave-cluster"]')].map((li) => li.textContent));
    return JSON.stringify(taken) === JSON.stringify([[cluster]]);
  }, CLUSTER);
  await page.getByRole('button', { name: 'Propose rollout' }).click();
  await page.waitForURL(/\/rollouts\/[0-9a-f]{32}$/).catch(async (err) => {
    const shown = await page.textContent('[data-testid="propose-error"]').catch(() => '');
    throw new Error(`${err.message}\nthe form says: ${shown}`);
  });
  rolloutId = new URL(page.url()).pathname.split('/').pop();
  await page.waitForFunction(
    () => document.querySelector('[data-testid="rollout-state"]')?.textContent.trim() === 'pending_approval',
  );
  assert.match(await page.textContent('[data-testid="rollout-title"]'), /→ audit$/);
  assert.equal(await page.locator('[data-testid="rollout-wave"]').count(), 1);
  assert.equal(await page.textContent('[data-testid="rollout-wave"] [data-testid="wave-approvals"]'), '0 of 1');

  // Separation of duties, seen in the browser: the author is not offered the approval (the
  // button is disabled and says which role may), and the server refuses it when called anyway.
  const approve = page.getByRole('button', { name: 'Approve', exact: true });
  await page.waitForFunction(() => [...document.querySelectorAll('[data-testid="rollout-controls"] button')]
    .some((b) => b.textContent.trim() === 'Approve' && b.disabled));
  assert.equal(await approve.getAttribute('title'), 'Needs the approver role');
  assert.equal((await page.textContent('[data-testid="controls-needs-role"]')).trim(), 'Needs the approver role to act on this rollout.');
  assert.equal(await page.getByRole('button', { name: 'Abort', exact: true }).getAttribute('title'), 'Needs the approver role');
  await page.screenshot({ path: join(OUTPUT, 'rollout-refused.png'), fullPage: true });
  const status = await page.evaluate(async (id) => (await fetch('/api/decide_rollout', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ id, approve: true, comment: '' }),
  })).status, rolloutId);
  assert.equal(status, 403);
  assert.equal(await page.textContent('[data-testid="rollout-state"]'), 'pending_approval');

  // That refusal is a 403 (which Chromium may log); nothing else went wrong on the page.
  const logged = problems.filter((p) => /status of 403|HTTP 403/.test(p));
  assert.ok(logged.length <= 2, problems.join('\n'));
  assert.deepEqual(problems.filter((p) => !logged.includes(p)), []);
});

test('an approver approves in another browser and watches the rollout apply without reloading', async () => {
  assert.ok(rolloutId, 'the proposal test made a rollout');
  const { page, problems } = await signedIn('approver');
  await page.goto(`${server.url}/rollouts/${rolloutId}`, { waitUntil: 'networkidle' });
  await hydrated(page);
  await page.waitForFunction(
    () => document.querySelector('[data-testid="rollout-state"]')?.textContent.trim() === 'pending_approval',
  );

  // The review an approver decides on. Creating a policy from the library stores no test run (only
  // running the tests does), so the panel says so rather than showing counts; the manifests are
  // those of the proposed version, in its mode, exactly as the steps will apply them, with each
  // cluster's diff against what it runs now (nothing yet).
  await page.waitForSelector('[data-testid="review-tests"]');
  assert.equal((await page.textContent('[data-testid="review-tests"]')).trim(), 'No test run stored for version 1.');
  assert.equal(await page.locator('[data-testid="review-version-note"]').count(), 0);
  const manifests = await page.textContent('[data-testid="review-manifests"]');
  assert.match(manifests, /ValidatingAdmissionPolicyBinding/);
  assert.match(manifests, /\bAudit\b/);
  const clusterChange = await page.textContent('[data-testid="review-cluster"] summary');
  assert.match(clusterChange, /runs nothing of this policy yet; \+\d+ −0 lines/);
  // And, from the inventory, what this rollout would do on its cluster: audit mode denies nothing.
  await page.waitForSelector('[data-testid="review-impact-summary"]');
  assert.match(
    await page.textContent('[data-testid="review-impact-summary"]'),
    /^This rollout applies audit mode: it would record \d+ workloads? and deny none\.( Not complete for bed-1: its inventory is not whole yet, so there may be more\.)?$/,
  );
  assert.deepEqual(
    await page.locator('[data-testid="review-impact-table"] [data-testid="impact-row"]')
      .evaluateAll((rows) => rows.map((r) => [r.dataset.cluster, r.dataset.deny])),
    [[CLUSTER, '0']],
  );
  await page.screenshot({ path: join(OUTPUT, 'rollout-review.png'), fullPage: true });
  const policyLink = page.locator('[data-testid="review-policy"]');
  assert.equal(await policyLink.getAttribute('href'), `/policies/${policyId}`);
  assert.equal((await policyLink.textContent()).trim(), ENTRY);

  let navigations = 0;
  page.on('framenavigated', (frame) => { if (frame === page.mainFrame()) navigations += 1; });
  await page.evaluate(() => { window.__marker = 1; });

  const comment = `checked ${ENTRY} on ${CLUSTER} in audit mode`;
  await page.fill('[data-testid="decision-comment"]', comment);
  await page.getByRole('button', { name: 'Approve', exact: true }).click();
  await waitForRollout(page, rolloutId, 'applied', 'applied', 'after the approval');

  assert.equal(await page.evaluate(() => window.__marker), 1, 'the page reloaded');
  assert.equal(navigations, 0, 'the page navigated');
  assert.equal(new URL(page.url()).pathname, `/rollouts/${rolloutId}`);
  const decision = page.locator('[data-testid="rollout-decision"]');
  assert.equal(await decision.count(), 1);
  const cells = await decision.locator('th, td').allTextContents();
  assert.match(cells[0], /approver/);
  assert.deepEqual(cells.slice(1, 4), ['approve', 'dev', comment]);
  assert.equal(await page.textContent('[data-testid="rollout-progress"]'), '1/1 cluster steps applied');
  assert.equal(await page.textContent('[data-testid="rollout-wave"] [data-testid="wave-state"]'), 'done');
  await page.screenshot({ path: join(OUTPUT, 'rollout-applied.png'), fullPage: true });

  // The apiserver has the policy, bound in Audit mode.
  const vap = await kube(VAP);
  assert.equal(vap.status, 200, JSON.stringify(vap.body));
  const binding = await kube(BINDING);
  assert.equal(binding.status, 200, JSON.stringify(binding.body));
  assert.deepEqual(binding.body.spec.validationActions, ['Audit']);

  // Removed through Palisade: a new rollout, followed on its own page, that waits for another
  // approver. The asker is told so, and the review shows what the removal takes off each cluster.
  await page.getByRole('button', { name: 'Remove policy' }).click();
  await page.waitForURL((url) => /^\/rollouts\/[0-9a-f]{32}$/.test(url.pathname) && !url.pathname.endsWith(rolloutId));
  const removalId = new URL(page.url()).pathname.split('/').pop();
  await waitForRollout(page, removalId, 'pending_approval', 'pending', 'after Remove policy');
  assert.equal(await page.evaluate(() => window.__marker), 1, 'following the removal reloaded the page');
  assert.match(await page.textContent('.facts'), /remove: take the policy off the clusters/);
  await page.waitForSelector('[data-testid="controls-own"]');
  assert.ok(await page.getByRole('button', { name: 'Approve', exact: true }).isDisabled());
  await page.waitForSelector('[data-testid="rollout-review"] [data-testid="review-cluster"]');
  assert.match(
    await page.textContent('[data-testid="review-cluster"] summary'),
    new RegExp(`${CLUSTER} \\(remove\\): runs version 1 in audit mode now; \\+0 −\\d+ lines`),
  );
  await page.screenshot({ path: join(OUTPUT, 'rollout-removal-review.png'), fullPage: true });
  const other = await signedIn('admin');
  await other.page.goto(`${server.url}/rollouts/${removalId}`, { waitUntil: 'networkidle' });
  await hydrated(other.page);
  await other.page.fill('[data-testid="decision-comment"]', 'take it off');
  await other.page.getByRole('button', { name: 'Approve', exact: true }).click();
  await waitForRollout(page, removalId, 'applied', 'applied', 'after another approver approved the removal');
  await page.screenshot({ path: join(OUTPUT, 'rollout-removed.png'), fullPage: true });
  assert.equal((await kube(VAP)).status, 404, `${ENTRY} is still on the cluster after the removal`);
  assert.equal((await kube(BINDING)).status, 404, `${ENTRY}'s binding is still on the cluster after the removal`);

  assert.deepEqual(problems, []);
});
