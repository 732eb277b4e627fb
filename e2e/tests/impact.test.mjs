// Impact in the browser, on two real clusters of the test bed: Palisade's inventory reads what
// runs there; an author opens a Pod Security policy's Impact tab and sees, per cluster, the
// workloads enforcing it would deny and warn of; edits the draft to a stricter level and sees its
// impact before saving; narrows the list by cluster and namespace. A viewer sees the same numbers
// and cannot preview drafts. At 375 px the tab fits the screen and axe finds nothing serious.
// Proposing to enforce it shows the same impact per wave and cluster and must be acknowledged;
// the approver's review shows the same numbers and what was acknowledged.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdirSync } from 'node:fs';
import { request } from 'node:https';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  api, hydrated, launchChromium, seriousAccessibilityProblems, signedInContext, startPalisadeWithSso,
  tokenOf,
} from './harness.mjs';

const OUTPUT = join(dirname(fileURLToPath(import.meta.url)), '..', 'output');
const SECRETS_KEY = '7e2a4c6e8a0c2e4a6c8e0a2c4e6a8c0e2a4c6e8a0c2e4a6c8e0a2c4e6a8c0e2a';
// Clusters 2 and 3: cluster 1 is where the rollout tests enforce policies.
const BEDS = [2, 3];
const NAMESPACE = `impact-e2e-${Date.now().toString(36)}`;
const SHOWN_TIMEOUT = 60_000;
// Where the last test makes a large inventory.
const BULK = `${NAMESPACE}-bulk`;

let server;
let provider;
let browser;
const contexts = [];

function bed(i) {
  const missing = [`TESTBED_PALISADE_KUBECONFIG_${i}`, `TESTBED_ADMIN_KUBECONFIG_${i}`, `TESTBED_API_URL_${i}`, `TESTBED_CA_FILE_${i}`]
    .filter((name) => !process.env[name]);
  if (missing.length > 0) {
    throw new Error(
      `\n\n*** CLUSTER TEST BED NOT CONFIGURED ***\n${missing.join(', ')} not set: start it with `
      + '`e2e/clusters up 3 && eval "$(e2e/clusters env)"` (scripts/test does both) before the browser tests.\n',
    );
  }
  const admin = JSON.parse(readFileSync(process.env[`TESTBED_ADMIN_KUBECONFIG_${i}`], 'utf8')).users[0].user;
  return {
    name: `bed-${i}`,
    kubeconfig: readFileSync(process.env[`TESTBED_PALISADE_KUBECONFIG_${i}`], 'utf8'),
    apiUrl: process.env[`TESTBED_API_URL_${i}`],
    ca: readFileSync(process.env[`TESTBED_CA_FILE_${i}`], 'utf8'),
    cert: Buffer.from(admin['client-certificate-data'], 'base64'),
    key: Buffer.from(admin['client-key-data'], 'base64'),
  };
}

/** `method path` on a test-bed apiserver as its admin: `{ status, body }`. */
function kube(cluster, method, path, body, timeout = 10_000) {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, cluster.apiUrl), {
      method,
      ca: cluster.ca,
      cert: cluster.cert,
      key: cluster.key,
      headers: { accept: 'application/json', 'content-type': 'application/json' },
      timeout,
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => { text += chunk; });
      res.on('end', () => resolve({ status: res.statusCode, body: text }));
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)));
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

async function create(cluster, path, object) {
  const { status, body } = await kube(cluster, 'POST', path, object);
  assert.equal(status, 201, `${path}: ${body}`);
}

const container = (securityContext) => ({ name: 'c', image: 'registry.example/app:1', securityContext });
const pod = (name, spec) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name }, spec });
const HARDENED = {
  runAsNonRoot: true, runAsUser: 1000, allowPrivilegeEscalation: false,
  capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' },
};

/** What each cluster runs in the test namespace. */
const WORKLOADS = {
  2: [
    ['/api/v1/namespaces/NS/pods', pod('privileged', { containers: [container({ privileged: true })] })],
    ['/api/v1/namespaces/NS/pods', pod('as-root', { containers: [container({})] })],
    ['/api/v1/namespaces/NS/pods', pod('hardened', { containers: [container(HARDENED)] })],
  ],
  3: [
    ['/api/v1/namespaces/NS/pods', pod('host-pid', { hostPID: true, containers: [container({})] })],
    ['/apis/apps/v1/namespaces/NS/deployments', {
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' },
      spec: { selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [container({ privileged: true })] } } },
    }],
  ],
};

/** A new context with a page signed in as `role` (see `signedInContext`). */
const signedIn = (role, options) => signedInContext(browser, server, contexts, role, options);

/** The denied and warned rows of the test namespace, as `cluster action Kind/name change`. */
async function rowsOf(page) {
  return page.locator('[data-testid="impact-workload"]').evaluateAll((rows) => rows
    .map((r) => `${r.dataset.cluster} ${r.dataset.action} ${r.dataset.owner} ${r.dataset.change}`)
    .sort());
}

/** Compute again until the rows of the test namespace are `expected` (the inventory may lag). */
async function expectRows(page, expected, what) {
  const deadline = Date.now() + SHOWN_TIMEOUT;
  let rows;
  for (;;) {
    await page.waitForSelector('[data-testid="impact-summary"], [data-testid="impact-error"]');
    rows = (await rowsOf(page)).filter((r) => !r.includes(' audit '));
    if (JSON.stringify(rows) === JSON.stringify(expected)) return;
    assert.ok(Date.now() < deadline, `${what}: rows ${JSON.stringify(rows)}, expected ${JSON.stringify(expected)}`);
    await page.waitForTimeout(1000);
    await page.click('[data-testid="impact-refresh"]');
    await page.waitForFunction(() => !document.querySelector('[data-testid="impact-refresh"]').disabled);
  }
}

/** What enforcing the saved baseline version denies and warns of in the test namespace. */
const BASELINE_ROWS = [
  'bed-2 deny Pod/privileged new',
  'bed-3 deny Pod/host-pid new',
  'bed-3 warn Deployment/web ',
];

let policyId;
let authorToken;
const clusterIds = {};

/** Opens the policy's impact tab on `page`, filtered to the test namespace. */
async function openImpact(page) {
  await page.goto(`${server.url}/policies/${policyId}?tab=impact`, { waitUntil: 'networkidle' });
  await hydrated(page);
  await page.fill('[data-testid="impact-filter-namespace"]', NAMESPACE);
}

before(async () => {
  mkdirSync(OUTPUT, { recursive: true });
  const clusters = BEDS.map(bed);
  ({ server, provider } = await startPalisadeWithSso({
    PALISADE__SECRETS__KEY: SECRETS_KEY,
    PALISADE__INVENTORY__LEASE_SECS: '3',
  }));
  browser = await launchChromium();
  const admin = await signedIn('admin');
  const adminToken = await tokenOf(admin.page, 'admin', 'e2e-impact');
  const author = await signedIn('author');
  authorToken = await tokenOf(author.page, 'author', 'e2e-impact');
  await admin.context.close();
  await author.context.close();
  for (const [n, cluster] of BEDS.map((i, n) => [i, clusters[n]])) {
    const registered = await api(server, adminToken, 'POST', '/api/v1/clusters', {
      name: cluster.name,
      environment: n === 2 ? 'staging' : 'prod',
      credentials: { kind: 'kubeconfig', kubeconfig: cluster.kubeconfig },
    }, 201);
    clusterIds[n] = registered.id;
    await create(cluster, '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NAMESPACE } });
    for (const [path, object] of WORKLOADS[n]) {
      await create(cluster, path.replace('NS', NAMESPACE), object);
    }
  }
  const adopted = await api(server, authorToken, 'POST', '/api/v1/policies', { from: 'library', entry: 'pod-security-baseline' }, 201);
  policyId = adopted.policy.id;
});

after(async () => {
  for (const context of contexts) await context.close().catch(() => {});
  await browser?.close();
  await server?.stop();
  await provider?.stop();
  for (const cluster of BEDS.map(bed)) {
    await deleteBulkPods(cluster).catch((err) => console.log(`# the bulk Pods of ${cluster.name} were not all deleted: ${err.message}`));
    await kube(cluster, 'DELETE', `/api/v1/namespaces/${BULK}`).catch(() => {});
    await kube(cluster, 'DELETE', `/api/v1/namespaces/${NAMESPACE}`).catch(() => {});
  }
});

test('an author sees what enforcing would deny on each cluster, and the impact of a draft before saving', async () => {
  const { page, problems } = await signedIn('author');
  await openImpact(page);
  // Baseline denies the privileged Pod and the hostPID Pod; the Deployment's template is warned of.
  await expectRows(page, BASELINE_ROWS, 'baseline');
  const summary = await page.getByTestId('impact-summary').textContent();
  assert.match(summary, /^Version 1, enforced, would deny \d+ workloads? on 2 of 2 clusters/, summary);
  const cards = page.getByTestId('impact-cluster');
  // Clusters by environment, then name: bed-3 (prod) before bed-2 (staging).
  assert.deepEqual(await cards.evaluateAll((c) => c.map((e) => e.dataset.cluster)), ['bed-3', 'bed-2']);
  for (const card of await cards.all()) {
    assert.match(await card.getByTestId('impact-versus').textContent(), /^Would newly deny \d+\.$/);
    assert.match(await card.getByTestId('impact-freshness').textContent(), /objects evaluated, listed by/);
  }
  await page.screenshot({ path: join(OUTPUT, 'impact.png'), fullPage: true });
  // While an impact computes (held back here), a progress line says so; once the answer is in,
  // it goes.
  await page.route('**/api/policy_impact', async (route) => {
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await route.continue();
  });
  await page.click('[data-testid="impact-refresh"]');
  const progress = page.getByTestId('impact-progress');
  await progress.waitFor();
  assert.match(await progress.textContent(), /Reading the inventories…|Evaluated \d+ of \d+ inventoried objects…/);
  assert.equal(await progress.locator('progress').count(), 1);
  await page.screenshot({ path: join(OUTPUT, 'impact-progress.png') });
  await page.waitForFunction(() => !document.querySelector('[data-testid="impact-refresh"]').disabled);
  await page.unroute('**/api/policy_impact');
  assert.equal(await progress.count(), 0);
  assert.match(await page.getByTestId('impact-summary').textContent(), /^Version 1, enforced/);
  // The same workloads as CSV, for a spreadsheet or a ticket.
  const href = await page.getByTestId('impact-csv').getAttribute('href');
  const csv = await page.evaluate(async (href) => {
    const res = await fetch(href);
    return { status: res.status, type: res.headers.get('content-type'), body: await res.text() };
  }, href);
  assert.equal(csv.status, 200, csv.body);
  assert.equal(csv.type, 'text/csv; charset=utf-8');
  const lines = csv.body.trim().split('\r\n');
  assert.ok(lines[0].startsWith('cluster,environment,namespace,owner_kind,owner_name,action,'), lines[0]);
  assert.ok(lines.some((l) => l.startsWith(`bed-3,prod,${NAMESPACE},Pod,host-pid,deny,false,new,1,`)), csv.body);

  // The draft, made stricter and not saved, is previewed: the Pod running as root is denied too.
  await page.getByTestId('tab-edit').click();
  const editor = page.locator('[data-testid="source-editor"]');
  const source = await editor.inputValue();
  assert.ok(source.includes('level: baseline'), source);
  await editor.fill(source.replace('level: baseline', 'level: restricted'));
  await page.getByTestId('tab-impact').click();
  await page.fill('[data-testid="impact-filter-namespace"]', NAMESPACE);
  await page.check('[data-testid="impact-use-draft"]');
  await page.waitForFunction(() => document.querySelector('[data-testid="impact-summary"]')?.textContent.startsWith('The unsaved draft'));
  await page.fill('[data-testid="impact-filter-namespace"]', NAMESPACE);
  assert.deepEqual((await rowsOf(page)).filter((r) => !r.includes(' audit ')), [
    'bed-2 deny Pod/as-root new',
    'bed-2 deny Pod/privileged new',
    'bed-3 deny Pod/host-pid new',
    'bed-3 warn Deployment/web ',
  ]);
  // Narrowed to one cluster.
  await page.selectOption('[data-testid="impact-filter-cluster"]', 'bed-3');
  assert.deepEqual((await rowsOf(page)).filter((r) => !r.includes(' audit ')), [
    'bed-3 deny Pod/host-pid new',
    'bed-3 warn Deployment/web ',
  ]);
  const message = await page.locator('[data-testid="impact-workload"][data-owner="Pod/host-pid"] .message').first().textContent();
  assert.match(message, /host namespaces \(hostPID=true\)/, message);
  // The draft was never saved: version 1 is still the only one.
  assert.match(await page.locator('.purpose').textContent(), /version 1 of 1/);

  // The cluster's page says how far each namespace could go: this one not even baseline, because
  // of the privileged Pod, which it names with the check it fails.
  await page.goto(`${server.url}/clusters/${clusterIds[2]}`, { waitUntil: 'networkidle' });
  await hydrated(page);
  const row = page.locator(`[data-testid="readiness-namespace"][data-namespace="${NAMESPACE}"]`);
  assert.equal(await row.getAttribute('data-ready'), 'privileged');
  const blockers = await row.getByTestId('readiness-blocker').allTextContents();
  assert.equal(blockers.length, 1, blockers.join('\n'));
  assert.match(blockers[0], /^Pod privileged — privileged \(container "c" must not set securityContext.privileged=true\)/);
  assert.match(await row.textContent(), /1 of 3 workload\(s\) fail baseline/);
  const inventory = await page.getByTestId('inventory-summary').textContent();
  assert.match(inventory, /objects known, every kind readable/, inventory);
  await page.screenshot({ path: join(OUTPUT, 'cluster-readiness.png'), fullPage: true });
  // The Clusters list gives each cluster's count too, the same as its page's kinds add up to.
  const kinds = (await page.getByTestId('inventory-objects').allTextContents()).map(Number);
  const total = kinds.reduce((a, b) => a + b, 0);
  await page.goto(`${server.url}/clusters`, { waitUntil: 'networkidle' });
  await hydrated(page);
  const cell = page.locator('[data-testid="cluster-row"]', { has: page.locator(`a[href="/clusters/${clusterIds[2]}"]`) })
    .getByTestId('cluster-inventory-cell');
  // The watch may have brought a change since; the count is the inventory's at that moment.
  const listed = Number(await cell.getAttribute('data-objects'));
  assert.ok(Math.abs(listed - total) <= 5 && listed > 0, `${listed} on the list, ${total} on the page`);
  assert.match(await cell.textContent(), /objects.*every kind listed/s);
  assert.deepEqual(problems, []);
});

test('a viewer sees the same impact, cannot preview drafts, and the tab fits a phone', async () => {
  const { page, problems } = await signedIn('viewer', { viewport: { width: 375, height: 800 }, bypassCSP: true });
  await openImpact(page);
  await expectRows(page, BASELINE_ROWS, 'viewer');
  assert.equal(await page.locator('[data-testid="impact-use-draft"]').isDisabled(), true);
  assert.match(await page.getByTestId('impact-subject').textContent(), /needs the author role/);
  const widths = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  assert.ok(widths[0] <= widths[1], `the Impact tab is ${widths[0]} px wide on a ${widths[1]} px screen`);
  await page.screenshot({ path: join(OUTPUT, 'phone-impact.png'), fullPage: true });
  assert.deepEqual(await seriousAccessibilityProblems(page), []);
  assert.deepEqual(problems, []);
});

/** Each row of an impact table as `cluster:deny`. */
async function impactRows(page, table) {
  return page.locator(`[data-testid="${table}"] [data-testid="impact-row"]`)
    .evaluateAll((rows) => rows.map((r) => `${r.dataset.cluster}:${r.dataset.deny}`));
}

test('proposing enforce needs an acknowledgement of what it would deny, and the approver sees the same', async () => {
  const { page, problems } = await signedIn('author');
  await page.goto(`${server.url}/rollouts`, { waitUntil: 'networkidle' });
  await hydrated(page);
  await page.waitForSelector(`[data-testid="propose-policy"] option[value="${policyId}"]`, { state: 'attached' });
  await page.selectOption('[data-testid="propose-policy"]', policyId);
  await page.selectOption('[data-testid="propose-mode"]', 'enforce');
  await page.fill('[data-testid="propose-namespaces"]', NAMESPACE);
  const waves = page.locator('[data-testid="wave-editor"] [data-testid="wave"]');
  await waves.nth(0).locator('[data-testid="wave-environment"]').selectOption('staging');
  await waves.nth(1).locator('[data-testid="wave-environment"]').selectOption('prod');
  await page.waitForFunction(() => {
    const all = document.querySelectorAll('[data-testid="wave-editor"] [data-testid="wave"]');
    const taken = [...all].map((w) => [...w.querySelectorAll('[data-testid="wave-cluster"]')].map((li) => li.textContent));
    return JSON.stringify(taken) === JSON.stringify([['bed-2'], ['bed-3']]);
  });

  // Proposed without looking: refused, and the impact appears with the acknowledgement to tick.
  // While it is judged (held back here), a progress line says so.
  await page.route('**/api/proposal_impact', async (route) => {
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await route.continue();
  });
  await page.getByRole('button', { name: 'Propose rollout' }).click();
  const judging = page.getByTestId('propose-impact-progress');
  await judging.waitFor({ timeout: SHOWN_TIMEOUT });
  assert.match(await judging.textContent(), /Reading the inventories…|Evaluated \d+ of \d+ inventoried objects…/);
  await page.waitForSelector('[data-testid="propose-acknowledge"]', { timeout: SHOWN_TIMEOUT });
  await page.unroute('**/api/proposal_impact');
  assert.equal(await judging.count(), 0);
  const refusal = await page.textContent('[data-testid="propose-error"]');
  assert.match(refusal, /acknowledge_denials: enforcing version 1 would deny 2 running workloads \(1 on `bed-2`, 1 on `bed-3`\)/, refusal);
  assert.equal(
    await page.textContent('[data-testid="propose-impact-summary"]'),
    'Enforcing would deny 2 running workloads on these clusters, 2 of them not denied today.',
  );
  assert.deepEqual(await impactRows(page, 'propose-impact-table'), ['bed-2:1', 'bed-3:1']);
  assert.match(await page.textContent('[data-testid="propose-acknowledge-label"]'), /enforcing would deny 2 running workloads\.$/);
  await page.screenshot({ path: join(OUTPUT, 'propose-acknowledge.png'), fullPage: true });

  await page.check('[data-testid="propose-acknowledge"]');
  await page.getByRole('button', { name: 'Propose rollout' }).click();
  await page.waitForURL(/\/rollouts\/[0-9a-f]{32}$/).catch(async (err) => {
    const shown = await page.textContent('[data-testid="propose-error"]').catch(() => '');
    throw new Error(`${err.message}\nthe form says: ${shown}`);
  });
  const rolloutPath = new URL(page.url()).pathname;
  assert.deepEqual(problems.filter((p) => !/status of 400|HTTP 400/.test(p)), []);

  // The approver reviews the same numbers, and what the proposer acknowledged.
  const approver = await signedIn('approver');
  await approver.page.goto(`${server.url}${rolloutPath}`, { waitUntil: 'networkidle' });
  await hydrated(approver.page);
  await approver.page.waitForSelector('[data-testid="review-impact-summary"]', { timeout: SHOWN_TIMEOUT });
  assert.equal(
    await approver.page.textContent('[data-testid="review-impact-summary"]'),
    'Enforcing would deny 2 running workloads on these clusters, 2 of them not denied today.',
  );
  assert.deepEqual(await impactRows(approver.page, 'review-impact-table'), ['bed-2:1', 'bed-3:1']);
  assert.match(
    await approver.page.textContent('[data-testid="review-impact-acknowledged"]'),
    /^When proposed, it would have denied 2 running workloads, which .+ acknowledged\.$/,
  );
  // Refreshed (held back here): the progress line shows until the answer is in.
  await approver.page.route('**/api/get_rollout_impact', async (route) => {
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await route.continue();
  });
  await approver.page.click('[data-testid="review-impact-refresh"]');
  const refreshing = approver.page.getByTestId('review-impact-progress');
  await refreshing.waitFor();
  assert.match(await refreshing.textContent(), /Reading the inventories…|Evaluated \d+ of \d+ inventoried objects…/);
  await approver.page.waitForSelector('[data-testid="review-impact-summary"]', { timeout: SHOWN_TIMEOUT });
  await approver.page.unroute('**/api/get_rollout_impact');
  assert.equal(await refreshing.count(), 0);
  assert.deepEqual(await impactRows(approver.page, 'review-impact-table'), ['bed-2:1', 'bed-3:1']);
  await approver.page.screenshot({ path: join(OUTPUT, 'review-impact.png'), fullPage: true });
  assert.deepEqual(approver.problems, []);
});

test('a cluster is assessed against the whole library on its own, and compliance says assessed, not enforced', async () => {
  const { page, problems } = await signedIn('author');
  // The assessor judges a new cluster once its inventory is whole: wait for the report.
  const deadline = Date.now() + SHOWN_TIMEOUT;
  for (;;) {
    await page.goto(`${server.url}/clusters/${clusterIds[2]}`, { waitUntil: 'networkidle' });
    await hydrated(page);
    if (await page.locator('[data-testid="posture-entry"]').count() > 0) break;
    assert.ok(Date.now() < deadline, 'bed-2 was never assessed');
    await page.waitForTimeout(1000);
  }
  // The privileged Pod of the test namespace fails baseline and the privileged entry; restricted
  // also fails the Pod running as root.
  const failing = async (entry) => Number(await page.locator(`[data-testid="posture-entry"][data-entry="${entry}"]`).getAttribute('data-failing'));
  assert.ok(await failing('pod-security-baseline') >= 1);
  assert.ok(await failing('disallow-privileged') >= 1);
  assert.ok(await failing('pod-security-restricted') >= await failing('pod-security-baseline'));
  const where = await page.locator('[data-testid="posture-entry"][data-entry="disallow-privileged"] td').last().textContent();
  assert.ok(where.includes(NAMESPACE), where);
  assert.match(await page.textContent('[data-testid="posture-summary"]'), /^\d+ of \d+ entries would fail here; \d+ objects judged on .+\.$/);
  // Assessed again on request.
  await page.click('[data-testid="posture-assess"]');
  await page.waitForFunction(() => document.querySelector('[data-testid="posture-assess"]')?.textContent === 'Assess now');
  assert.equal(await page.locator('[data-testid="posture-error"]').count(), 0);
  await page.screenshot({ path: join(OUTPUT, 'cluster-posture.png'), fullPage: true });

  // Nothing covers "privileged containers" on bed-2: the compliance page says what the assessment
  // found, linking to the report.
  await page.goto(`${server.url}/compliance?framework=cis`, { waitUntil: 'networkidle' });
  await hydrated(page);
  const cell = page.locator('[data-testid="control-row"][data-control="5.2.2"] td[data-cluster="bed-2"]');
  assert.equal(await cell.getAttribute('data-status'), 'assessed');
  assert.match(await cell.textContent(), /^assessed, not enforced: \d+ failing$/);
  assert.equal(await cell.locator('a').getAttribute('href'), `/clusters/${clusterIds[2]}#posture`);
  await page.screenshot({ path: join(OUTPUT, 'compliance-assessed.png'), fullPage: true });
  assert.deepEqual(problems, []);
});

/** Create Pods `bulk-<from>` … `bulk-<to - 1>` in the bulk namespace, 32 requests at a time. */
async function createBulkPods(cluster, from, to) {
  let next = from;
  const worker = async () => {
    while (next < to) {
      const i = next++;
      await create(cluster, `/api/v1/namespaces/${BULK}/pods`, pod(`bulk-${i}`, {
        containers: [container(i % 10 === 0 ? { privileged: true } : HARDENED)],
      }));
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
}

/**
 * Delete every Pod of the bulk namespace: the test bed runs no namespace controller to delete
 * what a deleted namespace holds, and the later test files share its clusters. A collection this
 * large takes a while to delete, and a request cut short stops part way, so: until none is left.
 */
async function deleteBulkPods(cluster) {
  for (let attempt = 0; attempt < 5; attempt++) {
    await kube(cluster, 'DELETE', `/api/v1/namespaces/${BULK}/pods`, undefined, 120_000).catch(() => {});
    const { status, body } = await kube(cluster, 'GET', `/api/v1/namespaces/${BULK}/pods?limit=1`);
    if (status === 200 && JSON.parse(body).items.length === 0) return;
  }
  throw new Error('Pods still there after five collection deletes');
}

/** The objects bed-2's inventory holds, as the Clusters list shows them. */
async function inventoried(page) {
  await page.goto(`${server.url}/clusters`, { waitUntil: 'networkidle' });
  await hydrated(page);
  const cell = page.locator('[data-testid="cluster-row"]', { has: page.locator(`a[href="/clusters/${clusterIds[2]}"]`) })
    .getByTestId('cluster-inventory-cell');
  return Number(await cell.getAttribute('data-objects'));
}

test('while an impact over a large inventory computes, the browser counts the objects evaluated', async () => {
  const { page, problems } = await signedIn('author');
  const cluster = bed(2);
  await create(cluster, '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: BULK } });
  const adopted = await api(server, authorToken, 'POST', '/api/v1/policies', { from: 'library', entry: 'disallow-privileged' }, 201);
  const before = await inventoried(page);
  // The server counts in pages of 2,000 objects and the browser asks every 400 ms: a count
  // between none and all shows once the impact spans a few pages and outlasts a poll. How many
  // objects that takes depends on the build's speed, so the inventory grows until one shows.
  let pods = 0;
  let counts = [];
  let total = 0;
  for (const more of [6_000, 6_000, 12_000]) {
    await createBulkPods(cluster, pods, pods + more);
    pods += more;
    const deadline = Date.now() + SHOWN_TIMEOUT;
    while ((total = await inventoried(page)) < before + pods) {
      assert.ok(Date.now() < deadline, `bed-2's inventory holds ${total} objects, not the ${before + pods} it has`);
      await page.waitForTimeout(1000);
    }
    await page.goto(`${server.url}/policies/${adopted.policy.id}?tab=impact`, { waitUntil: 'networkidle' });
    await hydrated(page);
    await page.waitForSelector('[data-testid="impact-summary"], [data-testid="impact-error"]', { timeout: SHOWN_TIMEOUT });
    // Every text the progress line shows while the impact is computed again, as it changes.
    await page.evaluate(() => {
      window.progressSeen = [];
      new MutationObserver(() => {
        const line = document.querySelector('[data-testid="impact-progress"]');
        const text = line?.textContent.trim();
        if (text && text !== window.progressSeen.at(-1)) {
          window.progressSeen.push(text);
          if (/^Evaluated [1-9]/.test(text)) window.progressShot ??= true;
        }
      }).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
    });
    await page.click('[data-testid="impact-refresh"]');
    const shot = page.waitForFunction(() => window.progressShot === true, null, { timeout: SHOWN_TIMEOUT })
      .then(() => page.screenshot({ path: join(OUTPUT, 'impact-live-progress.png') }), () => {});
    await page.waitForFunction(() => !document.querySelector('[data-testid="impact-refresh"]').disabled, null, { timeout: SHOWN_TIMEOUT });
    const seen = await page.evaluate(() => window.progressSeen);
    counts = seen
      .map((text) => text.match(/^Evaluated (\d+) of (\d+) inventoried objects…$/))
      .filter(Boolean)
      .map(([, done, of]) => [Number(done), Number(of)]);
    if (counts.some(([done, of]) => done > 0 && done < of)) {
      console.log(`# with ${pods} bulk Pods the progress line showed ${JSON.stringify(seen)}`);
      await shot;
      break;
    }
    console.log(`# with ${pods} bulk Pods the progress line showed only ${JSON.stringify(seen)}; growing the inventory`);
  }
  const between = counts.filter(([done, of]) => done > 0 && done < of);
  assert.ok(between.length > 0, `no count between none and all: ${JSON.stringify(counts)}`);
  for (const [done, of] of between) {
    // Part way through, the total already counts bed-2's whole inventory, bulk Pods included.
    assert.ok(of >= total, `Evaluated ${done} of ${of}, with bed-2 alone holding ${total}`);
  }
  // Once answered, the line is gone and bed-2's card counts every privileged bulk Pod as denied
  // (and the privileged Pod of the first test).
  assert.equal(await page.getByTestId('impact-progress').count(), 0);
  const deny = await page.locator('[data-testid="impact-cluster"][data-cluster="bed-2"] [data-testid="impact-deny"]').textContent();
  const expected = Math.ceil(pods / 10) + 1;
  const denied = Number(deny.replace('deny ', ''));
  assert.ok(denied >= expected && denied < expected + 20, `${deny} on bed-2, with ${expected} privileged Pods there`);
  assert.deepEqual(problems, []);
});
