// Kyverno policies in the browser: a ClusterPolicy chosen as a file becomes a Kyverno policy whose
// staging plan shows each mode as Kyverno expresses it; a blank Kyverno template's cases run and
// pass; a ValidatingPolicy with a broken CEL expression is refused at its line.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hydrated, openTab, startSignedInAsLocalAdmin } from './harness.mjs';

const OUTPUT = join(dirname(fileURLToPath(import.meta.url)), '..', 'output');

const CLUSTER_POLICY = `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: need-team-label
  annotations:
    policies.kyverno.io/title: Pods name their team
spec:
  validationFailureAction: Audit
  rules:
  - name: team-label
    match:
      any:
      - resources:
          kinds: [Pod]
    validate:
      message: every pod needs a team label
      pattern:
        metadata:
          labels:
            team: "?*"
`;

const BROKEN_VALIDATING_POLICY = `apiVersion: policies.kyverno.io/v1alpha1
kind: ValidatingPolicy
metadata:
  name: few-replicas
spec:
  validationActions: [Deny]
  matchConstraints:
    resourceRules:
    - apiGroups: [apps]
      apiVersions: [v1]
      operations: [CREATE, UPDATE]
      resources: [deployments]
  validations:
  - expression: object.spec.replicas <= = 5
    message: at most five replicas
`;

let server;
let browser;
let page;
let problems;

before(async () => {
  mkdirSync(OUTPUT, { recursive: true });
  ({ server, browser, page, problems } = await startSignedInAsLocalAdmin('/policies/new'));
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('a ClusterPolicy chosen as a file is a Kyverno policy, staged in each mode as Kyverno expresses it', async () => {
  await page.goto(`${server.url}/policies/new`, { waitUntil: 'networkidle' });
  await hydrated(page);
  const dir = mkdtempSync(join(tmpdir(), 'palisade-kyverno-'));
  const file = join(dir, 'need-team-label.yaml');
  writeFileSync(file, CLUSTER_POLICY);
  await page.setInputFiles('[data-testid="yaml-file"]', file);
  await page.waitForFunction(() => document.querySelector('[data-testid="paste-yaml"]')?.value.includes('kind: ClusterPolicy'));
  await page.click('[data-testid="create-from-yaml"]');
  await page.waitForURL(/\/policies\/[0-9a-f]{32}$/);
  await page.waitForSelector('[data-testid="policy-title"]');
  assert.match(await page.textContent('.page-header'), /Kyverno · configuration · version 1 of 1/);
  assert.equal((await page.textContent('[data-testid="policy-title"]')).trim(), 'Pods name their team');

  await openTab(page, 'staging');
  const manifests = async (mode) => {
    await page.click(`[data-testid="manifests-${mode}"]`);
    await page.waitForSelector(`[data-testid="manifests-${mode}"][aria-selected="true"]`);
    return page.textContent('[data-testid="manifests"]');
  };
  const warn = await manifests('warn');
  assert.match(warn, /emitWarning: true/);
  assert.match(warn, /failureAction: Audit/);
  const enforce = await manifests('enforce');
  assert.match(enforce, /failureAction: Enforce/);
  assert.match(enforce, /emitWarning: false/);
  assert.match(enforce, /operator: AnyNotIn/);
  assert.match(enforce, /kube-system/);
  await page.screenshot({ path: join(OUTPUT, 'kyverno-staging.png'), fullPage: true });
  assert.deepEqual(problems, []);
});

test('a blank Kyverno policy starts with cases the engine passes', async () => {
  await page.goto(`${server.url}/policies/new`, { waitUntil: 'networkidle' });
  await hydrated(page);
  await page.selectOption('[data-testid="blank-engine"]', 'kyverno');
  await page.fill('[data-testid="blank-name"]', 'owner-everywhere');
  await page.click('[data-testid="create-blank"]');
  await page.waitForURL(/\/policies\/[0-9a-f]{32}$/);
  await page.waitForSelector('[data-testid="policy-title"]');
  await openTab(page, 'tests');
  await page.click('[data-testid="run-tests"]');
  await page.waitForSelector('[data-testid="run-summary"]');
  const passed = page.locator('[data-testid="case-result"][data-status="pass"]');
  await passed.nth(1).waitFor();
  assert.equal(await page.locator('[data-testid="case-result"]').count(), 2);
  assert.equal(await passed.count(), 2, await page.textContent('[data-testid="run-results"]'));
  // The deny case shows Kyverno's own message for the failed rule.
  assert.match(await page.textContent('[data-testid="run-results"]'), /every pod needs an owner label/);
  await page.screenshot({ path: join(OUTPUT, 'kyverno-tests.png'), fullPage: true });
  assert.deepEqual(problems, []);
});

test('a ValidatingPolicy with a broken expression is refused at its line', async () => {
  await page.goto(`${server.url}/policies/new`, { waitUntil: 'networkidle' });
  await hydrated(page);
  await page.fill('[data-testid="paste-yaml"]', BROKEN_VALIDATING_POLICY);
  await page.click('[data-testid="create-from-yaml"]');
  const problem = page.locator('[data-testid="create-error"] [data-testid="problem"]').first();
  await problem.waitFor();
  const line = BROKEN_VALIDATING_POLICY.split('\n').findIndex((l) => l.includes('<= = 5')) + 1;
  assert.equal(await problem.getAttribute('data-line'), String(line));
  assert.equal(new URL(page.url()).pathname, '/policies/new', 'nothing was created');
  const phone = await browser.newPage({ viewport: { width: 375, height: 800 } });
  await phone.context().addCookies(await page.context().cookies());
  await phone.goto(`${server.url}/policies/new`, { waitUntil: 'networkidle' });
  await hydrated(phone);
  const widths = await phone.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  assert.ok(widths[0] <= widths[1], `the new policy page is ${widths[0]} px wide on a ${widths[1]} px screen`);
  await phone.screenshot({ path: join(OUTPUT, 'phone-new-policy.png'), fullPage: true });
  await phone.close();
  assert.deepEqual(problems, []);
});
