// Violations in the browser: an admin gives a cluster an ingest token on the Clusters page, the
// cluster posts an audit batch with it, and the explorer shows what came of it: charts drawn as SVG,
// a table that filters through the URL, and a CSV export of the same filter; the cluster's own page
// shows what it reports and lets an admin change its environment and labels.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  launchChromium, loginAsLocalAdmin, seriousAccessibilityProblems, startPalisade, watchForErrors,
} from './harness.mjs';

const OUTPUT = join(dirname(fileURLToPath(import.meta.url)), '..', 'output');

const SECRETS_KEY = '8a1c3e5f7b9d0f2a4c6e8a0b2d4f6a8c1e3a5c7e9b1d3f5a7c9e1b3d5f7a9c2e';

let server;
let browser;
let context;
let page;
let problems;

async function hydrated() {
  await page.waitForSelector('.app[data-hydrated="true"]', { timeout: 15_000 });
}

/** Three audit events as a kube-apiserver's webhook posts them: audited, denied, denied. */
function batch() {
  const event = (id, namespace, annotations, status) => ({
    kind: 'Event', apiVersion: 'audit.k8s.io/v1', level: 'Metadata', auditID: id,
    stage: 'ResponseComplete', verb: 'create',
    objectRef: { resource: 'deployments', apiGroup: 'apps', apiVersion: 'v1', namespace, name: `web-${id}` },
    responseStatus: status, annotations,
  });
  const failure = JSON.stringify([{
    message: 'privileged containers are not allowed', policy: 'disallow-privileged',
    validationActions: ['Audit'],
  }]);
  return {
    kind: 'EventList',
    apiVersion: 'audit.k8s.io/v1',
    items: [
      event('b1', 'shop', { 'validation.policy.admission.k8s.io/validation_failure': failure }, { code: 201 }),
      event('b2', 'payments', {}, {
        code: 403,
        message: 'admission webhook "validation.gatekeeper.sh" denied the request: [must-have-owner] label owner is required',
      }),
      event('b3', 'payments', {}, {
        code: 403,
        message: 'pods "x" is forbidden: violates PodSecurity "baseline:latest": privileged',
      }),
    ],
  };
}

before(async () => {
  server = await startPalisade({ PALISADE__SECRETS__KEY: SECRETS_KEY });
  browser = await launchChromium();
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  await loginAsLocalAdmin(page, server, '/clusters');
  await hydrated();
  await page.waitForLoadState('networkidle');
  problems = watchForErrors(page);
});

after(async () => {
  await context?.close().catch(() => {});
  await browser?.close();
  await server?.stop();
});

test('a cluster gets an ingest token on the Clusters page and its audit batch is counted', async () => {
  const registered = await page.evaluate(async () => {
    const res = await fetch('/api/v1/clusters', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        name: 'edge-1', environment: 'prod',
        credentials: { kind: 'token', api_url: 'https://127.0.0.1:9', ca_pem: '', token: 't' },
      }),
    });
    return { status: res.status, body: await res.text() };
  });
  assert.equal(registered.status, 201, registered.body);
  await page.reload({ waitUntil: 'networkidle' });
  await hydrated();
  const row = page.locator('[data-testid="cluster-row"][data-name="edge-1"]');
  // An admin may use every control of the row.
  for (const control of ['cluster-scan', 'cluster-ingest-token', 'cluster-remove']) {
    assert.equal(await row.getByTestId(control).isDisabled(), false, control);
  }
  await row.locator('[data-testid="cluster-ingest-token"]').click();
  const shown = await row.locator('[data-testid="cluster-ingest-shown"] pre').textContent({ timeout: 10_000 });
  // This server has no http.public_url: the address says what to set, never a made-up host
  // (with it set, the address is absolute: server/tests/it/violations.rs).
  assert.ok(shown.includes("server: https://<Palisade's address, set http.public_url>/api/v1/ingest/audit"), shown);
  const token = shown.match(/token: (pali_\S+)/)?.[1];
  assert.ok(token, shown);
  // Copy puts exactly that kubeconfig on the clipboard.
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
  await row.locator('[data-testid="cluster-ingest-copy"]').click();
  await row.locator('[data-testid="cluster-ingest-copy-status"]', { hasText: 'Copied.' }).waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), shown);

  // What the apiserver's webhook does with that kubeconfig.
  const post = (body, auth) => fetch(`${server.url}/api/v1/ingest/audit`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(auth ? { authorization: `Bearer ${auth}` } : {}) },
    body: JSON.stringify(body),
  });
  assert.equal((await post(batch())).status, 401, 'no token, no ingest');
  const res = await post(batch(), token);
  const answer = await res.text();
  assert.equal(res.status, 200, answer);
  assert.deepEqual(JSON.parse(answer), { events: 3, violations: 3, duplicates: 0 });
  assert.deepEqual(problems, []);
});

test('the explorer charts, filters through the URL and exports the same filter', async () => {
  await page.goto(`${server.url}/violations`, { waitUntil: 'networkidle' });
  await hydrated();
  const rows = page.locator('.violations-table tbody tr');
  assert.equal(await rows.count(), 3);
  // How often each was seen is said in its source's unit: audited requests here.
  assert.equal(await rows.first().getByTestId('violation-seen').textContent(), '1 request');
  // Both charts are drawn, one line per series, with a legend naming them.
  const charts = page.locator('figure.chart');
  assert.equal(await charts.count(), 2);
  assert.ok(await page.locator('figure.chart').first().locator('svg polyline').count() >= 3);
  const legend = await page.locator('figure.chart').first().locator('.legend').textContent();
  for (const name of ['disallow-privileged', 'must-have-owner', 'pod-security:baseline']) {
    assert.ok(legend.includes(name), `legend lacks ${name}: ${legend}`);
  }
  assert.ok((await page.locator('figure.chart').nth(1).locator('.legend').textContent()).includes('edge-1'));
  // As a person sees them: lines, not filled shapes; each series in a colour and a dash pattern
  // of its own, its colour the same as its legend sample's, so three series counted the same
  // (as here: each once, on one day) all show where they lie on one another; the two charts side
  // by side, each a modest height.
  const drawn = await page.locator('figure.chart').first().evaluate((figure) => ({
    lines: [...figure.querySelectorAll('polyline')].map((l) => {
      const style = getComputedStyle(l);
      return { fill: style.fill, stroke: style.stroke, width: style.strokeWidth, dashes: style.strokeDasharray };
    }),
    swatches: [...figure.querySelectorAll('.swatch')].map((s) => {
      const style = getComputedStyle(s);
      return { color: style.borderTopColor, line: style.borderTopStyle, width: style.borderTopWidth };
    }),
  }));
  for (const line of drawn.lines) {
    assert.equal(line.fill, 'none', JSON.stringify(drawn));
    assert.ok(!['none', 'rgb(0, 0, 0)'].includes(line.stroke) && line.width !== '0px', JSON.stringify(drawn));
  }
  assert.equal(new Set(drawn.lines.map((l) => l.stroke)).size, drawn.lines.length, JSON.stringify(drawn));
  assert.equal(new Set(drawn.lines.map((l) => l.dashes)).size, drawn.lines.length, JSON.stringify(drawn));
  assert.deepEqual(drawn.swatches.map((s) => s.color), drawn.lines.map((l) => l.stroke));
  assert.deepEqual(drawn.swatches.slice(0, 3).map((s) => s.line), ['solid', 'dashed', 'dotted'], JSON.stringify(drawn));
  assert.ok(drawn.swatches.every((s) => s.width !== '0px'), JSON.stringify(drawn));
  const boxes = await page.locator('figure.chart').evaluateAll((figures) => figures.map((f) => f.getBoundingClientRect().toJSON()));
  assert.equal(boxes[0].top, boxes[1].top, `the charts are not side by side: ${JSON.stringify(boxes)}`);
  assert.ok(boxes.every((b) => b.height < 320), `charts too high: ${JSON.stringify(boxes)}`);
  await page.locator('.charts').screenshot({ path: join(OUTPUT, 'violations-charts.png') });
  // On a phone, one above the other, within the screen.
  const phone = await browser.newContext({ viewport: { width: 375, height: 800 } });
  await phone.addCookies(await context.cookies());
  const small = await phone.newPage();
  await small.goto(`${server.url}/violations`, { waitUntil: 'networkidle' });
  await small.waitForSelector('.app[data-hydrated="true"]', { timeout: 15_000 });
  const stacked = await small.locator('figure.chart').evaluateAll((figures) => figures.map((f) => f.getBoundingClientRect().toJSON()));
  assert.ok(stacked[1].top >= stacked[0].bottom, `the charts overlap on a phone: ${JSON.stringify(stacked)}`);
  const phoneWidths = await small.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  assert.ok(phoneWidths[0] <= phoneWidths[1], `the explorer is ${phoneWidths[0]} px wide on a ${phoneWidths[1]} px screen`);
  await small.screenshot({ path: join(OUTPUT, 'phone-violations.png'), fullPage: true });
  await phone.close();

  // Filter: denials in payments. The filter lands in the URL, so the view can be shared.
  await page.selectOption('select[name="action"]', 'deny');
  await page.fill('input[name="namespace"]', 'payments');
  await Promise.all([
    page.waitForURL((url) => url.searchParams.get('action') === 'deny'),
    page.getByRole('button', { name: 'Apply' }).click(),
  ]);
  await page.waitForLoadState('networkidle');
  await hydrated();
  assert.equal(new URL(page.url()).searchParams.get('namespace'), 'payments');
  await page.waitForFunction(() => document.querySelectorAll('.violations-table tbody tr').length === 2);
  const text = await page.locator('.violations-table').textContent();
  assert.ok(!text.includes('disallow-privileged'), text);
  assert.ok(text.includes('must-have-owner') && text.includes('pod-security:baseline'), text);

  // The export link carries the same filter.
  const href = await page.getByRole('link', { name: 'Export CSV' }).getAttribute('href');
  assert.match(href, /action=deny/);
  const csv = await page.evaluate(async (href) => {
    const res = await fetch(href);
    return { type: res.headers.get('content-type'), body: await res.text() };
  }, href);
  assert.equal(csv.type, 'text/csv; charset=utf-8');
  const lines = csv.body.trim().split('\r\n');
  assert.equal(lines.length, 3, csv.body);
  assert.ok(lines[0].startsWith('id,cluster,policy_id,policy,'), lines[0]);
  assert.ok(lines.slice(1).every((l) => l.includes(',deny,audit,')), csv.body);

  // A filter that matches nothing: each chart says so in a line, not with empty axes a chart high.
  await page.goto(`${server.url}/violations?policy=no-such-policy`, { waitUntil: 'networkidle' });
  await hydrated();
  const empty = page.getByTestId('chart-empty');
  assert.equal(await empty.count(), 2);
  assert.equal(await page.locator('figure.chart svg').count(), 0);
  for (const figure of await empty.all()) {
    assert.match(await figure.textContent(), /Nothing counted in this period\./);
    const { height } = await figure.boundingBox();
    assert.ok(height < 120, `an empty chart is ${height} px high`);
  }
  await page.screenshot({ path: join(OUTPUT, 'violations-empty.png'), fullPage: true });
  assert.deepEqual(problems, []);
});

test("a cluster's page shows how it is reached, what it reports, and takes new labels", async () => {
  await page.goto(`${server.url}/clusters`, { waitUntil: 'networkidle' });
  await hydrated();
  await Promise.all([
    page.waitForURL((url) => url.pathname.startsWith('/clusters/')),
    page.locator('[data-testid="cluster-row"][data-name="edge-1"] [data-testid="cluster-link"]').click(),
  ]);
  await page.waitForLoadState('networkidle');
  await hydrated();
  assert.equal(await page.getByTestId('cluster-title').textContent(), 'edge-1');
  assert.equal(await page.title(), 'Cluster edge-1 · Palisade');
  assert.equal(await page.getByTestId('cluster-environment').textContent(), 'prod');
  // Registered with an address nothing listens on: unreachable, with the reason beside it.
  assert.equal(await page.getByTestId('cluster-health').textContent(), 'unreachable');
  assert.ok((await page.getByTestId('cluster-last-error').textContent()).length > 0);
  // Every admission API is listed, each said to be there or not.
  const capabilities = page.getByTestId('capability');
  assert.equal(await capabilities.count(), 4);
  assert.deepEqual(
    await capabilities.evaluateAll((items) => items.map((i) => [i.dataset.name, i.dataset.present])),
    [['ValidatingAdmissionPolicy', 'false'], ['Gatekeeper', 'false'], ['Kyverno', 'false'], ['PolicyReports', 'false']],
  );
  assert.ok(await page.getByTestId('cluster-no-deployments').isVisible());
  // The inventory lists every kind Palisade keeps, each with its count and state.
  assert.equal(await page.getByTestId('inventory-kind').count(), 17);
  assert.ok((await page.getByTestId('inventory-summary').textContent()).length > 0);
  // The three violations its audit batch opened, and a link to all of them, filtered.
  // (The panel loads beside the others: wait for its rows rather than count whatever is there.)
  const violations = page.getByTestId('cluster-violation');
  await violations.first().waitFor();
  assert.equal(await violations.count(), 3);
  const text = await page.getByTestId('cluster-violations').textContent();
  for (const word of ['must-have-owner', 'disallow-privileged', 'pod-security:baseline']) {
    assert.ok(text.includes(word), `${word} missing: ${text}`);
  }
  const href = await page.getByTestId('cluster-violations-link').getAttribute('href');
  const id = new URL(page.url()).pathname.split('/').pop();
  assert.equal(href, `/violations?cluster=${id}&open=1`);

  // A label Kubernetes would refuse is refused at the field, and nothing changes.
  await page.fill('[data-testid="cluster-edit"] input[name="labels"]', 'team=pay ments');
  await page.click('[data-testid="cluster-edit"] button[type="submit"]');
  const refused = await page.getByTestId('cluster-edit-error').textContent();
  assert.ok(refused.startsWith('Labels: ') && refused.includes('team=pay ments'), refused);
  assert.equal(await page.getByTestId('cluster-labels').textContent(), 'none');
  // A good change is saved and shown; a reload keeps it.
  await page.fill('[data-testid="cluster-edit"] input[name="environment"]', 'staging');
  await page.fill('[data-testid="cluster-edit"] input[name="labels"]', 'team=payments, region=eu');
  await page.click('[data-testid="cluster-edit"] button[type="submit"]');
  await page.getByTestId('cluster-edit-result').waitFor();
  await page.waitForFunction(() => document.querySelector('[data-testid="cluster-labels"]')?.textContent === 'region=eu, team=payments');
  await page.reload({ waitUntil: 'networkidle' });
  await hydrated();
  assert.equal(await page.getByTestId('cluster-environment').textContent(), 'staging');
  assert.equal(await page.getByTestId('cluster-labels').textContent(), 'region=eu, team=payments');
  assert.deepEqual(problems, []);

  // On a phone the page fits, and an accessibility audit finds nothing serious.
  const phone = await browser.newContext({ viewport: { width: 375, height: 800 }, bypassCSP: true });
  await phone.addCookies(await context.cookies());
  const small = await phone.newPage();
  const phoneProblems = watchForErrors(small);
  await small.goto(page.url(), { waitUntil: 'networkidle' });
  await small.waitForSelector('.app[data-hydrated="true"]', { timeout: 15_000 });
  const widths = await small.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  assert.ok(widths[0] <= widths[1], `the cluster page is ${widths[0]} px wide on a ${widths[1]} px screen`);
  mkdirSync(OUTPUT, { recursive: true });
  await small.screenshot({ path: join(OUTPUT, 'phone-cluster.png'), fullPage: true });
  await page.screenshot({ path: join(OUTPUT, 'cluster.png'), fullPage: true });
  assert.deepEqual(await seriousAccessibilityProblems(small), []);
  assert.deepEqual(phoneProblems, []);
  await phone.close();

  // The link lands on the explorer filtered to this cluster, its name chosen in the filter.
  await Promise.all([
    page.waitForURL((url) => url.pathname === '/violations'),
    page.getByTestId('cluster-violations-link').click(),
  ]);
  await page.waitForLoadState('networkidle');
  await hydrated();
  // The rows may still be on their way after the navigation: wait for them, then count.
  const rows = page.locator('.violations-table tbody tr');
  await page.waitForFunction(() => document.querySelectorAll('.violations-table tbody tr').length >= 3, null, { timeout: 10_000 })
    .catch(() => {});
  assert.equal(await rows.count(), 3);
  const chosen = page.locator('select[name="cluster"]');
  await page.waitForFunction(() => document.querySelectorAll('select[name="cluster"] option').length === 2);
  assert.equal(await chosen.inputValue(), id);
  assert.equal(await chosen.locator('option:checked').textContent(), 'edge-1');
  assert.deepEqual(problems, []);
});
