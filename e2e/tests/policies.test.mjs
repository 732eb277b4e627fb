// Policies in the browser: adopt from the library, see an engine error at its line in the editor,
// fix it and save a version, run the tests and see a failing case, compare two versions.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  hydrated, openTab, seriousAccessibilityProblems, startSignedInAsLocalAdmin, watchForErrors,
} from './harness.mjs';

const OUTPUT = join(dirname(fileURLToPath(import.meta.url)), '..', 'output');
const GOOD = 'size(variables.privileged) == 0';
const BROKEN = 'size(variables.privileged) == = 0';

let server;
let browser;
let page;
let problems;
// The policy adopted by the first test, which later tests keep working on.
let policyUrl;

async function saveAndWait(version) {
  await page.click('[data-testid="save-version"]');
  await page.waitForFunction(
    (v) => document.querySelector('[data-testid="policy-title"]')
      && document.querySelector('.page-header .purpose')?.textContent.includes(`version ${v} of ${v}`),
    version,
  );
}

before(async () => {
  mkdirSync(OUTPUT, { recursive: true });
  ({ server, browser, page, problems } = await startSignedInAsLocalAdmin('/library'));
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('a policy is created from the library', async () => {
  await page.goto(`${server.url}/library`, { waitUntil: 'networkidle' });
  await hydrated(page);
  const entries = await page.locator('[data-testid="library-entry"]').count();
  assert.ok(entries >= 18, `only ${entries} library entries`);
  await page.click('[data-testid="adopt-disallow-privileged"]');
  await page.waitForURL(/\/policies\/[0-9a-f]{32}$/);
  policyUrl = page.url();
  await page.waitForSelector('[data-testid="policy-title"]');
  assert.match(await page.textContent('[data-testid="policy-title"]'), /[Pp]rivileged/);
  assert.match(await page.textContent('.page-header .purpose'), /version 1 of 1/);
  // The remediation is Markdown: its backticks become code, not raw characters.
  const remediation = page.locator('[data-testid="policy-remediation"]');
  assert.equal(await remediation.locator('code').first().textContent(), 'securityContext.privileged: true');
  assert.ok(!(await remediation.textContent()).includes('`'));
  await page.screenshot({ path: join(OUTPUT, 'policy-overview.png'), fullPage: true });
});

test('an engine error shows at its line, the caret goes there, and the fix saves a version', async () => {
  await openTab(page, 'edit');
  const editor = page.locator('[data-testid="source-editor"]');
  const original = await editor.inputValue();
  const line = original.split('\n').findIndex((l) => l.includes(GOOD)) + 1;
  assert.ok(line > 1, 'the library policy has the expression');
  const lines = original.split('\n').length;
  assert.equal(await page.locator('[data-testid="gutter"] .gutter-line').count(), lines);

  await editor.fill(original.replace(GOOD, BROKEN));
  await editor.press(process.platform === 'darwin' ? 'Meta+s' : 'Control+s');
  const problem = page.locator('[data-testid="problem"]').first();
  await problem.waitFor();
  assert.equal(await problem.getAttribute('data-line'), String(line));
  assert.match(await page.textContent('[data-testid="save-status"]'), /Not saved/);
  await page.waitForSelector(`[data-testid="gutter"] .gutter-line.has-error[data-line="${line}"]`);
  await page.screenshot({ path: join(OUTPUT, 'policy-error.png'), fullPage: true });

  // Under the textarea, the same text in colour: YAML keys, the expression's CEL, the problem
  // underlined on its line. The textarea's own text is transparent, its caret is not.
  const colours = await page.evaluate(() => {
    const layer = document.querySelector('[data-testid="source-colours"]');
    const area = document.querySelector('[data-testid="source-editor"]');
    const colour = (selector) => getComputedStyle(layer.querySelector(selector)).color;
    return {
      key: colour('.t-key'),
      fn: colour('.t-fn'),
      plain: getComputedStyle(layer).color,
      text: getComputedStyle(area).color,
      caret: getComputedStyle(area).caretColor,
      functions: [...layer.querySelectorAll('.t-fn')].map((e) => e.textContent),
      underlined: layer.querySelector('.t-error')?.textContent ?? '',
      underline: getComputedStyle(layer.querySelector('.t-error')).textDecorationStyle,
      same: layer.textContent === `${area.value}\n`,
    };
  });
  assert.ok(colours.same, 'the coloured layer holds exactly the source');
  assert.notEqual(colours.key, colours.plain);
  assert.notEqual(colours.fn, colours.plain);
  assert.ok(colours.functions.includes('size'), colours.functions.join(','));
  assert.equal(colours.text, 'rgba(0, 0, 0, 0)');
  assert.notEqual(colours.caret, 'rgba(0, 0, 0, 0)');
  assert.ok(colours.underlined.length > 0 && original.replace(GOOD, BROKEN).split('\n')[line - 1].includes(colours.underlined), colours.underlined);
  assert.equal(colours.underline, 'wavy');
  // The caret beside a bracket marks it and its partner.
  await editor.evaluate((el) => {
    const at = el.value.indexOf('size(') + 'size('.length;
    el.focus();
    el.setSelectionRange(at, at);
  });
  await editor.press('ArrowRight');
  await editor.press('ArrowLeft');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="source-colours"] .t-match').length === 2);
  assert.deepEqual(
    await page.locator('[data-testid="source-colours"] .t-match').allTextContents(),
    ['(', ')'],
  );
  // Typed keys go through the textarea and the colours follow.
  await editor.press('Control+Home');
  await editor.type('# checked\n');
  await page.waitForFunction(() => document.querySelector('[data-testid="source-colours"] .t-com')?.textContent === '# checked');
  await page.locator('[data-testid="editor"]').screenshot({ path: join(OUTPUT, 'policy-editor-colours.png') });

  // Choosing the problem puts the caret on its line, in the editor.
  await problem.click();
  const caret = await editor.evaluate((el) => ({
    focused: document.activeElement === el,
    line: el.value.slice(0, el.selectionStart).split('\n').length,
  }));
  assert.deepEqual(caret, { focused: true, line });

  // The fix: the expression back, and a firmer static message (the cases match the message
  // expression's text, which stays), saved as version 2 with a note.
  const fixed = original.replace('    message: privileged containers are not allowed\n', '    message: privileged containers are never allowed\n');
  assert.notEqual(fixed, original);
  await editor.fill(fixed);
  await page.fill('[data-testid="change-note"]', 'clearer message');
  await saveAndWait(2);
});

test('running the tests shows a failing case with the engine\'s verdict', async () => {
  await openTab(page, 'tests');
  await page.fill('[data-testid="case-name"]', 'a plain pod is denied (wrong on purpose)');
  await page.fill('[data-testid="case-yaml"]', 'apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers:\n  - {name: app, image: nginx:1.27}\n');
  await page.selectOption('[data-testid="case-expect"]', 'deny');
  await page.click('[data-testid="add-case"]');
  await saveAndWait(3);
  await openTab(page, 'tests');
  await page.click('[data-testid="run-tests"]');
  const failed = page.locator('[data-testid="case-result"][data-status="FAIL"]');
  await failed.first().waitFor();
  assert.equal(await failed.count(), 1);
  assert.match(await failed.first().textContent(), /wrong on purpose.*expected deny, got allow/s);
  const passed = await page.locator('[data-testid="case-result"][data-status="pass"]').count();
  assert.ok(passed >= 3, `${passed} passing cases`);
  // A passing deny case shows the engine's message.
  assert.match(await page.textContent('[data-testid="run-results"]'), /privileged containers are not allowed: /);
  await page.screenshot({ path: join(OUTPUT, 'policy-tests.png'), fullPage: true });
  // The selected tab is in the URL: a reload (or a shared link) opens it again.
  assert.equal(new URL(page.url()).searchParams.get('tab'), 'tests');
  await page.reload({ waitUntil: 'networkidle' });
  await hydrated(page);
  await page.waitForSelector('[data-testid="tab-tests"][aria-selected="true"]');
  await page.waitForSelector('[data-testid="run-tests"]');

  // A case is edited in place: Edit loads it into the form, Update case puts it back changed.
  const wrong = page.locator('[data-testid="case"]', { hasText: 'wrong on purpose' });
  const position = await page.locator('[data-testid="case"]').evaluateAll(
    (cases) => cases.findIndex((c) => c.textContent.includes('wrong on purpose')),
  );
  const count = await page.locator('[data-testid="case"]').count();
  await wrong.locator('[data-testid="edit-case"]').click();
  assert.equal(await page.inputValue('[data-testid="case-name"]'), 'a plain pod is denied (wrong on purpose)');
  assert.equal(await page.inputValue('[data-testid="case-expect"]'), 'deny');
  await page.fill('[data-testid="case-name"]', 'a plain pod is allowed');
  await page.selectOption('[data-testid="case-expect"]', 'allow');
  assert.equal((await page.textContent('[data-testid="add-case"]')).trim(), 'Update case');
  await page.click('[data-testid="add-case"]');
  const edited = page.locator('[data-testid="case"]').nth(position);
  assert.match(await edited.textContent(), /a plain pod is allowed.*expects allow/s);
  assert.equal(await page.locator('[data-testid="case"]').count(), count, 'edited in place, not added');
  // Put it back as it was (the next tests compare saved versions, which this did not change).
  await edited.locator('[data-testid="edit-case"]').click();
  await page.fill('[data-testid="case-name"]', 'a plain pod is denied (wrong on purpose)');
  await page.selectOption('[data-testid="case-expect"]', 'deny');
  await page.click('[data-testid="add-case"]');
  assert.equal((await page.textContent('[data-testid="add-case"]')).trim(), 'Add case');
});

test('two versions compare line by line', async () => {
  await openTab(page, 'history');
  assert.equal(await page.locator('[data-testid="version-row"]').count(), 3);
  await page.selectOption('[data-testid="diff-from"]', '1');
  await page.selectOption('[data-testid="diff-to"]', '3');
  await page.click('[data-testid="compare"]');
  await page.waitForSelector('[data-testid="diff"]');
  const removed = await page.locator('[data-testid="diff-removed"]').allTextContents();
  const added = await page.locator('[data-testid="diff-added"]').allTextContents();
  assert.ok(removed.some((t) => t.includes('are not allowed')), removed.join('\n'));
  assert.ok(added.some((t) => t.includes('are never allowed')), added.join('\n'));
  assert.ok(added.some((t) => t.includes('wrong on purpose')), added.join('\n'));
  await page.screenshot({ path: join(OUTPUT, 'policy-diff.png'), fullPage: true });
  // The compared versions are in the URL: a reload shows the same diff.
  const url = new URL(page.url());
  assert.deepEqual([url.searchParams.get('tab'), url.searchParams.get('from'), url.searchParams.get('to')], ['history', '1', '3']);
  await page.reload({ waitUntil: 'networkidle' });
  await hydrated(page);
  await page.waitForSelector('[data-testid="diff"]');
  assert.equal(await page.inputValue('[data-testid="diff-from"]'), '1');
  assert.ok((await page.locator('[data-testid="diff-added"]').allTextContents()).some((t) => t.includes('wrong on purpose')));
});

test('the list finds the policy and the staging tab renders each mode', async () => {
  await openTab(page, 'staging');
  await page.waitForSelector('[data-testid="no-rollouts"]');
  await page.selectOption('[data-testid="mode-dev"]', 'warn');
  await page.click('[data-testid="manifests-warn"]');
  await page.waitForFunction(() => document.querySelector('[data-testid="manifests"]')?.textContent.includes('- Warn'));
  await page.goto(`${server.url}/policies`, { waitUntil: 'networkidle' });
  await hydrated(page);
  // The list says what is live (nothing yet) and, beside it, the intent that is not live.
  await page.selectOption('[data-testid="filter-mode"]', 'none');
  await page.waitForSelector('[data-testid="policy-row"]');
  // The filter is in the URL: a reload (or a shared link) shows the same list.
  await page.waitForURL(/\/policies\?mode=none$/);
  await page.reload({ waitUntil: 'networkidle' });
  await hydrated(page);
  assert.equal(await page.inputValue('[data-testid="filter-mode"]'), 'none');
  await page.waitForSelector('[data-testid="policy-row"]');
  const live = await page.locator('[data-testid="policy-live"]').allTextContents();
  assert.ok(live.every((t) => t.startsWith('not deployed')), live.join('\n'));
  assert.ok(live.some((t) => t.includes('intended: dev warn')), live.join('\n'));
  await page.screenshot({ path: join(OUTPUT, 'policy-list.png'), fullPage: true });
  await page.selectOption('[data-testid="filter-mode"]', 'warn');
  await page.waitForSelector('[data-testid="no-matches"]');
  await page.selectOption('[data-testid="filter-mode"]', '');
  await page.waitForSelector('[data-testid="policy-row"]');
  await page.fill('[data-testid="policy-search"]', 'no-such-policy');
  await page.waitForSelector('[data-testid="no-matches"]');
  assert.deepEqual(problems, []);
});

// A Gatekeeper template whose Rego calls the network: Gatekeeper accepts it, Palisade never runs it.
const NETWORK_TEMPLATE = `apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: k8scallsout
spec:
  crd:
    spec:
      names:
        kind: K8sCallsOut
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8scallsout

        violation[{"msg": msg}] {
          r := http.send({"method": "get", "url": "https://example.com"})
          msg := r.body
        }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sCallsOut
metadata:
  name: calls-out
spec:
  match:
    kinds: [{apiGroups: [""], kinds: ["Pod"]}]
`;

test('Rego is checked as Gatekeeper admits it: a network call is a warning at its line, an undefined function is refused', async () => {
  await page.goto(`${server.url}/policies/new`, { waitUntil: 'networkidle' });
  await hydrated(page);
  await page.fill('[data-testid="paste-yaml"]', NETWORK_TEMPLATE);
  await page.click('[data-testid="create-from-yaml"]');
  await page.waitForURL(/\/policies\/[0-9a-f]{32}$/);
  await page.waitForSelector('[data-testid="policy-title"]');

  await openTab(page, 'edit');
  const callLine = NETWORK_TEMPLATE.split('\n').findIndex((l) => l.includes('http.send')) + 1;
  await page.click('[data-testid="check-policy"]');
  const warning = page.locator('[data-testid="problems"] li.warning [data-testid="problem"]').first();
  await warning.waitFor();
  assert.equal(await warning.getAttribute('data-line'), String(callLine));
  assert.match(await warning.textContent(), /Warning: .*http\.send is not evaluable locally/);
  assert.match(await page.textContent('[data-testid="save-status"]'), /accepts this draft, with 1 warning/);
  await page.waitForSelector(`[data-testid="gutter"] .gutter-line.has-warning[data-line="${callLine}"]`);
  await page.screenshot({ path: join(OUTPUT, 'policy-rego-warning.png'), fullPage: true });

  const editor = page.locator('[data-testid="source-editor"]');
  const source = await editor.inputValue();
  await editor.fill(source.replace('msg := r.body', 'msg := strings.no_such(r.body)'));
  await editor.press(process.platform === 'darwin' ? 'Meta+s' : 'Control+s');
  await page.waitForFunction(() => /Not saved/.test(document.querySelector('[data-testid="save-status"]')?.textContent ?? ''));
  const refused = page.locator('[data-testid="problems"] li:not(.warning) [data-testid="problem"]').first();
  await refused.waitFor();
  assert.equal(await refused.getAttribute('data-line'), String(callLine + 1));
  assert.match(await refused.textContent(), /undefined function strings\.no_such/);
  await page.waitForSelector(`[data-testid="gutter"] .gutter-line.has-error[data-line="${callLine + 1}"]`);
  assert.deepEqual(problems, []);
});

test('with versions, results and a staging plan, every tab of the workspace passes an accessibility audit, on a phone too', async () => {
  const cookies = await page.context().cookies();
  for (const viewport of [{ width: 1280, height: 900 }, { width: 375, height: 800 }]) {
    const context = await browser.newContext({ viewport, bypassCSP: true });
    await context.addCookies(cookies);
    const audited = await context.newPage();
    const seen = watchForErrors(audited);
    for (const tab of ['overview', 'edit', 'tests', 'history', 'staging']) {
      await audited.goto(`${policyUrl}?tab=${tab}`, { waitUntil: 'networkidle' });
      await audited.waitForSelector('.app[data-hydrated="true"]', { timeout: 15_000 });
      await audited.waitForSelector(`[data-testid="tab-${tab}"][aria-selected="true"]`);
      const widths = await audited.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
      assert.ok(widths[0] <= widths[1], `${tab} is ${widths[0]} px wide on a ${widths[1]} px screen`);
      assert.deepEqual(await seriousAccessibilityProblems(audited), [], `${tab} at ${viewport.width} px`);
    }
    if (viewport.width === 375) {
      await audited.screenshot({ path: join(OUTPUT, 'phone-policy-staging.png'), fullPage: true });
    }
    assert.deepEqual(seen, []);
    await context.close();
  }
});
