// Starts the real palisade binary on a free port with a fresh SQLite database, and Debian's Chromium
// through playwright-core. Both are stopped by the caller (by PID for the server).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.PALISADE_CHROMIUM ?? '/usr/bin/chromium';

function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: run the browser tests through scripts/test, which builds Palisade and sets it`);
  }
  return value;
}

/** Start `palisade serve` and resolve once it logs its address. */
export async function startPalisade() {
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
    },
    stdio: ['ignore', 'inherit', 'pipe'],
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
  page.on('requestfailed', (req) => problems.push(`request failed: ${req.url()} ${req.failure()?.errorText}`));
  page.on('response', (res) => { if (res.status() >= 400) problems.push(`HTTP ${res.status()}: ${res.url()}`); });
  return problems;
}
