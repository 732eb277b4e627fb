// Building a rollout's waves in the propose form: an author edits each wave's environment, labels,
// approvals, soak and threshold, and the preview beside each wave lists the enabled clusters it
// takes, as the server will plan them; a wave that takes nothing is marked at the wave, as is a
// wave the server refuses. The proposed rollout then shows exactly those waves and clusters. Five
// registered clusters (one disabled) that are never contacted: proposing only plans the rollout.
// At 375 px the form fits the screen and axe finds nothing serious.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  api, hydrated, launchChromium, seriousAccessibilityProblems, signedInContext, startPalisadeWithSso,
  tokenOf, watchForErrors,
} from './harness.mjs';

const OUTPUT = join(dirname(fileURLToPath(import.meta.url)), '..', 'output');
// Seals cluster credentials in this run's throwaway database.
const SECRETS_KEY = '5a1c3e7f9b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a1c3e5b7d9f2a4c6e8b0d1f3a';
const ENTRY = 'disallow-latest-tag';
// Nothing listens on port 9: registering probes it once and records the cluster as unreachable.
const NOWHERE = 'https://127.0.0.1:9';
const CLUSTERS = [
  { name: 'dev-a', environment: 'dev', labels: { team: 'a' } },
  { name: 'dev-b', environment: 'dev', labels: { team: 'b' } },
  { name: 'prod-a', environment: 'prod', labels: { team: 'a', tier: '1' } },
  { name: 'prod-b', environment: 'prod', labels: { team: 'b' } },
  { name: 'prod-old', environment: 'prod', labels: { team: 'a' }, disabled: true },
];

let server;
let provider;
let browser;
let author;
let policyId;
const contexts = [];

/** A new context with a page signed in as `role` (see `signedInContext`). */
const signedIn = (role, options) => signedInContext(browser, server, contexts, role, options);

/** The wave at `n` (from 1) of the editor. */
const wave = (page, n) => page.locator('[data-testid="wave-editor"] [data-testid="wave"]').nth(n - 1);

/** What wave `n`'s preview lists, once it lists `expected` (the preview follows every keystroke). */
async function expectTakes(page, n, expected, what) {
  const list = wave(page, n).locator('[data-testid="wave-cluster"]');
  await page.waitForFunction(
    ([n, expected]) => {
      const waves = document.querySelectorAll('[data-testid="wave-editor"] [data-testid="wave"]');
      const shown = [...(waves[n - 1]?.querySelectorAll('[data-testid="wave-cluster"]') ?? [])]
        .map((li) => li.textContent.trim());
      return JSON.stringify(shown) === JSON.stringify(expected);
    },
    [n, expected],
    { timeout: 5_000 },
  ).catch(async () => {
    assert.deepEqual(await list.allTextContents(), expected, `wave ${n} ${what}`);
  });
}

before(async () => {
  mkdirSync(OUTPUT, { recursive: true });
  ({ server, provider } = await startPalisadeWithSso({ PALISADE__SECRETS__KEY: SECRETS_KEY }));
  browser = await launchChromium();

  const admin = await signedIn('admin');
  const adminToken = await tokenOf(admin.page, 'admin', 'e2e-waves');
  await admin.context.close();
  for (const { name, environment, labels, disabled } of CLUSTERS) {
    const cluster = await api(server, adminToken, 'POST', '/api/v1/clusters', {
      name,
      environment,
      labels,
      credentials: { kind: 'token', api_url: NOWHERE, ca_pem: '', token: 't' },
    }, 201);
    if (disabled) {
      await api(server, adminToken, 'PATCH', `/api/v1/clusters/${cluster.id}`, { disabled: true }, 200);
    }
  }

  author = await signedIn('author');
  const authorToken = await tokenOf(author.page, 'author', 'e2e-waves');
  const created = await api(server, authorToken, 'POST', '/api/v1/policies', { from: 'library', entry: ENTRY }, 201);
  policyId = created.policy.id;
});

after(async () => {
  for (const context of contexts) await context.close().catch(() => {});
  await browser?.close();
  await server?.stop();
  await provider?.stop();
});

test('an author builds two waves, the preview follows each change, and the rollout has those waves', async () => {
  const { page, problems } = author;
  await page.goto(`${server.url}/rollouts`, { waitUntil: 'networkidle' });
  await hydrated(page);
  await page.waitForSelector('[data-testid="wave-editor"]');

  // The default: dev, then prod; the disabled cluster is named as skipped, not taken.
  assert.equal(await page.locator('[data-testid="wave-editor"] [data-testid="wave"]').count(), 2);
  assert.equal(await page.locator('[data-testid="propose-waves"]').count(), 0, 'no text field for waves');
  await expectTakes(page, 1, ['dev-a', 'dev-b'], 'by default');
  await expectTakes(page, 2, ['prod-a', 'prod-b'], 'by default');
  assert.match(await wave(page, 2).locator('[data-testid="wave-disabled"]').textContent(), /prod-old/);

  await page.waitForSelector(`[data-testid="propose-policy"] option[value="${policyId}"]`, { state: 'attached' });
  await page.selectOption('[data-testid="propose-policy"]', policyId);
  await page.selectOption('[data-testid="propose-mode"]', 'audit');

  // Wave 1: team a's clusters, first in dev only, then in any environment.
  const first = wave(page, 1);
  await first.locator('[data-testid="wave-name"]').fill('canary');
  await first.locator('[data-testid="wave-add-label"]').click();
  await first.locator('[data-testid="wave-label-key"]').fill('team');
  await expectTakes(page, 1, ['dev-a', 'dev-b'], 'while the label has no value yet');
  assert.match(await first.locator('[data-testid="wave-label-error"]').textContent(), /give a value for `team`/);
  await first.locator('[data-testid="wave-label-value"]').fill('a');
  await expectTakes(page, 1, ['dev-a'], 'with environment dev and team=a');
  await first.locator('[data-testid="wave-environment"]').selectOption('');
  await expectTakes(page, 1, ['dev-a', 'prod-a'], 'with any environment and team=a');
  // A cluster goes to the first wave that selects it: wave 2 (prod) keeps only prod-b.
  await expectTakes(page, 2, ['prod-b'], 'after wave 1 took prod-a');
  assert.match(await wave(page, 2).locator('[data-testid="wave-earlier"]').textContent(), /prod-a \(wave 1\)/);

  // A field that is wrong is marked at its wave and field, as the author types.
  await first.locator('[data-testid="wave-approvals"]').fill('0');
  assert.equal(
    await first.locator('[data-testid="wave-approvals-error"]').textContent(),
    'the first wave needs at least one approval',
  );
  assert.equal(await first.locator('[data-testid="wave-approvals"]').getAttribute('aria-invalid'), 'true');
  await first.locator('[data-testid="wave-approvals"]').fill('1');
  assert.equal(await first.locator('[data-testid="wave-approvals-error"]').count(), 0);

  // Wave 2: a label no enabled cluster carries marks the wave itself, and so does submitting.
  const second = wave(page, 2);
  await second.locator('[data-testid="wave-add-label"]').click();
  await second.locator('[data-testid="wave-label-key"]').fill('tier');
  await second.locator('[data-testid="wave-label-value"]').fill('9');
  await second.locator('[data-testid="wave-no-clusters"]').waitFor();
  assert.equal(await second.locator('[data-testid="wave-no-clusters"]').textContent(), 'selects no enabled cluster');
  assert.match(await second.getAttribute('class'), /has-problem/);
  await page.screenshot({ path: join(OUTPUT, 'rollout-waves-problem.png'), fullPage: true });
  await page.getByRole('button', { name: 'Propose rollout' }).click();
  assert.equal(
    await page.textContent('[data-testid="propose-error"]'),
    'Wave 2 (prod), clusters: selects no enabled cluster',
  );
  assert.equal(new URL(page.url()).pathname, '/rollouts', 'nothing was proposed');
  await second.getByRole('button', { name: 'Remove label 1 of wave 2' }).click();
  await expectTakes(page, 2, ['prod-b'], 'after the label was removed');
  assert.doesNotMatch(await second.getAttribute('class'), /has-problem/);

  // A third wave can be added, moved up and removed again.
  await page.click('[data-testid="wave-add"]');
  assert.equal(await page.locator('[data-testid="wave-editor"] [data-testid="wave"]').count(), 3);
  // The new wave's name takes the focus, so a keyboard user types on.
  await page.waitForFunction(() => document.activeElement?.dataset?.testid === 'wave-name'
    && document.activeElement.closest('[data-testid="wave"]') === document.querySelectorAll('[data-testid="wave-editor"] [data-testid="wave"]')[2]);
  // A name another wave has is refused at the field, naming that wave.
  await wave(page, 3).locator('[data-testid="wave-name"]').fill('canary');
  assert.equal(
    await wave(page, 3).locator('[data-testid="wave-name-error"]').textContent(),
    'wave 1 is already named `canary`; give each wave its own name',
  );
  await wave(page, 3).locator('[data-testid="wave-name"]').fill('extra');
  assert.equal(await wave(page, 3).locator('[data-testid="wave-name-error"]').count(), 0);
  await page.getByRole('button', { name: 'Move wave 3 up' }).click();
  assert.equal(await wave(page, 2).locator('[data-testid="wave-name"]').inputValue(), 'extra');
  // An "any environment" wave after canary takes what canary left: dev-b and prod-b.
  await expectTakes(page, 2, ['dev-b', 'prod-b'], 'for the moved-up catch-all wave');
  await wave(page, 2).getByRole('button', { name: 'Remove wave 2' }).click();
  assert.equal(await page.locator('[data-testid="wave-editor"] [data-testid="wave"]').count(), 2);
  // The focus moves to the wave that took the removed one's place, not to a vanished button.
  await page.waitForFunction(() => document.activeElement?.dataset?.testid === 'wave-name'
    && document.activeElement.closest('[data-testid="wave"]') === document.querySelectorAll('[data-testid="wave-editor"] [data-testid="wave"]')[1]);
  await expectTakes(page, 2, ['prod-b'], 'after the extra wave was removed');

  // The server's own rule (production needs an approval) comes back at the wave it names.
  await second.locator('[data-testid="wave-approvals"]').fill('0');
  await page.getByRole('button', { name: 'Propose rollout' }).click();
  await second.locator('[data-testid="wave-refused"]').waitFor();
  assert.match(
    await second.locator('[data-testid="wave-refused"]').textContent(),
    /wave `prod` reaches production cluster `prod-b`: it needs at least one approval/,
  );

  // Approvals, soak (read back in hours and minutes) and threshold of wave 2.
  await second.locator('[data-testid="wave-approvals"]').fill('2');
  // Editing the waves clears the refusal, which was about the waves as they were.
  await second.locator('[data-testid="wave-refused"]').waitFor({ state: 'detached' });
  assert.equal(await page.locator('[data-testid="propose-error"]').count(), 0);
  assert.equal(await second.locator('[data-testid="wave-soak-words"]').textContent(), 'no soak');
  await second.locator('[data-testid="wave-soak"]').fill('90');
  assert.equal(await second.locator('[data-testid="wave-soak-words"]').textContent(), '1 h 30 min');
  await second.locator('[data-testid="wave-threshold"]').fill('3');
  await page.screenshot({ path: join(OUTPUT, 'rollout-waves-form.png'), fullPage: true });

  await page.getByRole('button', { name: 'Propose rollout' }).click();
  await page.waitForURL(/\/rollouts\/[0-9a-f]{32}$/).catch(async (err) => {
    const shown = await page.textContent('[data-testid="propose-error"]').catch(() => '');
    throw new Error(`${err.message}\nthe form says: ${shown}`);
  });
  await page.waitForSelector('[data-testid="rollout-waves"] [data-testid="rollout-wave"]');
  const rows = await page.locator('[data-testid="rollout-wave"]').evaluateAll((trs) => trs.map(
    (tr) => [...tr.querySelectorAll('th, td')].slice(0, 5).map((cell) => cell.textContent.trim()),
  ));
  assert.deepEqual(rows, [
    ['canary', 'team=a', '0 of 1', 'none', 'none'],
    ['prod', 'environment=prod', '0 of 2', '90 min', 'at most 3 new violations (checked once violations are collected)'],
  ]);
  const steps = await page.locator('[data-testid="rollout-steps"] [data-testid="rollout-step"]').evaluateAll(
    (trs) => trs.map((tr) => [tr.dataset.cluster, tr.querySelectorAll('td')[0].textContent.trim()]).sort(),
  );
  assert.deepEqual(steps, [['dev-a', 'canary'], ['prod-a', 'canary'], ['prod-b', 'prod']]);
  await page.screenshot({ path: join(OUTPUT, 'rollout-waves-proposed.png'), fullPage: true });

  // The one refusal above is a 400 from the server (which Chromium logs); nothing else went wrong.
  const refusal = problems.filter((p) => /status of 400|HTTP 400: .*\/api\/propose_rollout/.test(p));
  assert.ok(refusal.length <= 2, problems.join('\n'));
  assert.deepEqual(problems.filter((p) => !refusal.includes(p)), []);
});

test('at 375 px the wave editor fits the screen and an accessibility audit finds nothing serious', async () => {
  const phone = await browser.newContext({ viewport: { width: 375, height: 800 }, bypassCSP: true });
  contexts.push(phone);
  await phone.addCookies(await author.context.cookies());
  const page = await phone.newPage();
  const problems = watchForErrors(page);
  await page.goto(`${server.url}/rollouts`, { waitUntil: 'networkidle' });
  await hydrated(page);
  await page.waitForSelector('[data-testid="wave-editor"]');
  // Every part of a wave shown: a label pair, a field error and a wave that takes nothing.
  const first = wave(page, 1);
  await first.locator('[data-testid="wave-add-label"]').click();
  await first.locator('[data-testid="wave-label-key"]').fill('team');
  await first.locator('[data-testid="wave-label-value"]').fill('nobody');
  await first.locator('[data-testid="wave-soak"]').fill('-1');
  await first.locator('[data-testid="wave-no-clusters"]').waitFor();
  await first.locator('[data-testid="wave-soak-error"]').waitFor();
  const widths = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  assert.ok(widths[0] <= widths[1], `/rollouts is ${widths[0]} px wide on a ${widths[1]} px screen`);
  await page.locator('[data-testid="wave-editor"]').screenshot({ path: join(OUTPUT, 'rollout-waves-phone.png') });
  await page.screenshot({ path: join(OUTPUT, 'rollout-waves-phone-page.png'), fullPage: true });
  assert.deepEqual(await seriousAccessibilityProblems(page), [], 'serious accessibility problems');
  assert.deepEqual(problems, []);
});
