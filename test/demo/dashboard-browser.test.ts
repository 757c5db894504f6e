/**
 * The live dashboard in a real headless Chromium (Debian's package, driven by playwright-core),
 * against a running `cose-flow demo`: the page loads under its CSP without errors, shows the
 * demo's devices with their sessions and decrypted readings, the messages-per-second chart
 * advances, and the attack button's messages appear as rejections by reason. Then Ctrl-C (SIGINT)
 * stops the demo cleanly with its summary, and the page says the service is stopped.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { chromiumAvailability, launchChromium } from '../fixtures/chromium.js';
import { demoFailure, runDemo } from './run-demo.js';

const availability = chromiumAvailability('the dashboard browser test');

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('dashboard: devices, a moving chart and refused attacks in headless Chromium', {
  skip: availability.run ? false : availability.why,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cose-flow-dashboard-'));
  const demo = runDemo([
    '--data-dir',
    dir,
    '--http',
    '0',
    '--devices',
    '3',
    '--rate',
    '2',
    '--plain',
    '--duration',
    '120',
  ]);
  let chromium: Awaited<ReturnType<typeof launchChromium>> | undefined;
  try {
    chromium = await launchChromium();
    const url = await demo.dashboardUrl();
    const page = await chromium.browser.newPage({ viewport: { width: 1280, height: 900 } });
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
    });
    const response = await page.goto(url);
    assert.equal(response?.status(), 200);
    assert.match(response?.headers()['content-security-policy'] ?? '', /default-src 'self'/);
    assert.equal(await page.title(), 'cose-flow — live');

    // The three simulated devices, each with a session kid and a decrypted reading.
    const rows = page.locator('#devices tbody tr[data-device-id]');
    // (The page's CSP forbids eval, so playwright's waitForFunction cannot run there: poll from here.)
    await until(async () => (await rows.count()) === 3, 30_000, 'three device rows');
    const ids = await Promise.all((await rows.all()).map((row) => row.getAttribute('data-device-id')));
    assert.deepEqual(ids, ['sim-0001', 'sim-0002', 'sim-0003']);
    await until(
      async () => (await rows.allTextContents()).every((text) => /°C/.test(text)),
      30_000,
      'a decrypted reading in every row',
    );
    const firstRow = (await rows.first().textContent()) ?? '';
    assert.match(firstRow, /sim-0001/);
    assert.match((await rows.first().locator('td').nth(1).textContent()) ?? '', /^[0-9a-f]{2,16}$/, 'session kid');

    // The "Cloud keys" panel: the one (current) cloud key, with the three devices sealed to it.
    const keyRows = page.locator('#cloud-keys tbody tr[data-kid]');
    await until(
      async () => (await keyRows.count()) === 1 && (await keyRows.first().getAttribute('data-devices')) === '3',
      30_000,
      'the current cloud key with three devices',
    );
    assert.equal(await keyRows.first().getAttribute('data-current'), 'true');
    const keyCells = await keyRows.first().locator('td').allTextContents();
    assert.match(keyCells[0] ?? '', /^[0-9a-f]{16}$/, 'cloud key id');
    assert.deepEqual(keyCells.slice(1), ['current', '3', '—'], 'role, devices, no retire-at');

    // The chart advances: more snapshots drawn, more non-zero seconds, a non-zero newest value.
    const chart = page.locator('#rate-chart');
    const read = async () => ({
      updates: Number(await chart.getAttribute('data-updates')),
      points: Number(await chart.getAttribute('data-points')),
      last: Number(await chart.getAttribute('data-last')),
    });
    // Until it has (the page redraws about once a second; a loaded machine is slower, not stuck).
    const before = await read();
    let later = before;
    await until(
      async () => {
        later = await read();
        return later.updates >= before.updates + 2 && later.points > before.points && later.last > 0;
      },
      30_000,
      'the chart to be redrawn twice, advance, and show a non-zero rate',
    ).catch((e: Error) => assert.fail(`${e.message}: ${JSON.stringify({ before, later })}`));
    assert.ok(Number(await page.locator('#total-accepted').textContent()) > 0);

    // The attack button: injected messages show up as rejections by reason.
    await page.click('#attack');
    await until(
      async () => /injected/.test((await page.locator('#attack-result').textContent()) ?? ''),
      30_000,
      'the attack result',
    );
    for (const reason of ['decrypt-failed', 'bad-certificate', 'device-mismatch']) {
      await page.waitForSelector(`#rejections tr[data-reason="${reason}"]`, { timeout: 30_000 });
    }
    assert.ok((await page.locator('#recent-rejections tbody tr').count()) >= 3);
    assert.deepEqual(problems, []);

    // Ctrl-C: a clean stop with the summary.
    demo.child.kill('SIGINT');
    const code = await demo.exit(60_000);
    // The page shows the stopped service as stopped: a banner, no rate it does not know, no Attack.
    await until(async () => await page.locator('#offline').isVisible(), 30_000, 'the offline banner');
    assert.match((await page.locator('#offline').textContent()) ?? '', /stopped or cannot be reached/);
    assert.equal(await page.locator('#attack').isDisabled(), true, 'Attack is disabled');
    assert.equal((await page.locator('#total-rate').textContent())?.trim(), '—');
    await page.close();
    assert.equal(code, 0, demoFailure(demo, code));
    assert.match(demo.stdout(), /exactly once: yes/);
    assert.match(demo.stdout(), /attack: \d+ message\(s\) injected in 1 round\(s\).*stored: 0/);
    const summary = demo.stdout();
    assert.doesNotMatch(summary, /MISSING|NOT every device/);
  } finally {
    await chromium?.close();
    if (demo.child.exitCode === null) demo.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
