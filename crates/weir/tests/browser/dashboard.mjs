// Drives the weir dashboard in headless Chromium (Debian's /usr/bin/chromium through
// playwright-core; Playwright downloads no browser). Run by crates/weir/tests/dashboard.rs, which
// starts `weir run`, uploads the files, and talks to this script over stdin/stdout:
//
//   env  WEIR_API, WEIR_TOKEN, WEIR_EXPECT (JSON [{key, status, reason?}]), WEIR_SHOTS (a folder),
//        WEIR_CHROMIUM (default /usr/bin/chromium)
//   out  "ready"                  the page shows the expected jobs; upload a new file now
//   in   "uploaded <key>"         the test uploaded <key>; it must appear without a reload
//   out  "ok <json>"              every check passed (exit 0); otherwise "error: ..." on stderr, exit 1

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const api = process.env.WEIR_API;
const token = process.env.WEIR_TOKEN;
const expected = JSON.parse(process.env.WEIR_EXPECT || '[]');
const shots = process.env.WEIR_SHOTS;
const executablePath = process.env.WEIR_CHROMIUM || '/usr/bin/chromium';
const T = 30_000;

const lines = createInterface({ input: process.stdin });
const incoming = [];
let waiter = null;
lines.on('line', (l) => { if (waiter) { const w = waiter; waiter = null; w(l); } else incoming.push(l); });
const nextLine = () => (incoming.length ? Promise.resolve(incoming.shift()) : new Promise((r) => { waiter = r; }));

function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

const userDataDir = mkdtempSync(join(tmpdir(), 'weir-chromium-'));
let context;
const consoleErrors = [];
const pageErrors = [];
const badResponses = [];
const result = {};

try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1440, height: 1000 },
    timeout: 60_000,
  });
  const page = context.pages()[0] ?? await context.newPage();
  page.setDefaultTimeout(T);
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(`${m.text()} @ ${JSON.stringify(m.location())}`); });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('response', (r) => { if (r.status() >= 400) badResponses.push(`${r.status()} ${r.url()}`); });

  // 1. Without a session the page asks for the token; a wrong one is refused with a message.
  await page.goto(`${api}/`);
  await page.waitForSelector('#signin:not([hidden])');
  check(await page.isHidden('#overview'), 'the overview is shown without a session');
  await page.fill('#token', 'weir_not-the-token');
  await Promise.all([page.waitForURL(`${api}/`), page.click('#signin button[type=submit]')]);
  await page.waitForSelector('#signin-msg:not([hidden])');
  check(!page.url().includes('login='), `the sign-in message stays in the URL: ${page.url()}`);
  await page.screenshot({ path: join(shots, 'signin.png') });

  // 2. The right token in the form signs in: an HttpOnly, SameSite=Strict session cookie.
  await page.fill('#token', token);
  await Promise.all([page.waitForNavigation(), page.click('#signin button[type=submit]')]);
  await page.waitForSelector('#overview:not([hidden])');
  let cookies = await context.cookies(api);
  const session = cookies.find((c) => c.name === 'weir_session');
  check(session, `no weir_session cookie: ${JSON.stringify(cookies)}`);
  check(session.httpOnly && session.sameSite === 'Strict', `cookie flags: ${JSON.stringify(session)}`);
  check(session.value !== token && !session.value.includes(token), 'the cookie holds the token itself');
  check((await page.evaluate(() => document.cookie)) === '', 'the session cookie is readable from JavaScript');

  // 3. ?token= signs in too, and the token leaves the address bar.
  await context.clearCookies();
  await page.goto(`${api}/?token=${encodeURIComponent(token)}`);
  check(page.url() === `${api}/`, `the token stayed in the URL: ${page.url()}`);
  await page.waitForSelector('#overview:not([hidden])');
  cookies = await context.cookies(api);
  check(cookies.some((c) => c.name === 'weir_session'), 'no session after ?token=');

  // 4. The jobs the test uploaded, with their final status; failures with their reason.
  for (const e of expected) {
    await page.waitForSelector(`#recent-jobs tr[data-job-key="${e.key}"][data-status="${e.status}"]`);
    if (e.status === 'rejected' || e.status === 'failed') {
      const row = page.locator(`#failed-jobs tr[data-job-key="${e.key}"]`);
      const text = await row.innerText();
      check(text.includes(e.reason ?? ''), `failed row for ${e.key} lacks "${e.reason}": ${text}`);
    }
  }
  // Charts drawn from the jobs: bars for the finished files, a latency point, alarm states.
  await page.waitForSelector('#chart-throughput svg rect.bar');
  await page.waitForSelector('#chart-rows svg rect.bar.s-bad'); // bad_rows.csv's invalid rows
  const latencyPoints = Number(await page.getAttribute('#chart-latency svg', 'data-points'));
  check(latencyPoints > 0, 'the latency chart has no point');
  await page.waitForSelector('#alarms li[data-state]');
  result.alarms = await page.locator('#alarms li[data-state]').count();
  result.tiles = await page.locator('#tiles').innerText();
  await page.screenshot({ path: join(shots, 'overview.png'), fullPage: true });

  // 5. Live: a job finished after the page loaded shows up without a reload.
  await page.evaluate(() => { window.__weirSameDocument = true; });
  let navigations = 0;
  page.on('framenavigated', (f) => { if (f === page.mainFrame()) navigations += 1; });
  const rendersBefore = Number(await page.getAttribute('body', 'data-renders'));
  console.log('ready');
  const line = await nextLine();
  const late = line.replace(/^uploaded /, '');
  check(line.startsWith('uploaded ') && late, `unexpected line from the test: ${line}`);
  await page.waitForSelector(`#recent-jobs tr[data-job-key="${late}"][data-status="succeeded"]`);
  check(await page.evaluate(() => window.__weirSameDocument === true), 'the page was reloaded');
  check(navigations === 0, `the page navigated ${navigations} times`);
  result.renders = Number(await page.getAttribute('body', 'data-renders')) - rendersBefore;
  check(result.renders > 0, 'no redraw after the upload');
  await page.screenshot({ path: join(shots, 'overview-live.png'), fullPage: true });
  // The page follows the system's dark mode.
  const light = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  await page.emulateMedia({ colorScheme: 'dark' });
  const dark = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  check(light !== dark, `the background stays ${light} in dark mode`);
  await page.screenshot({ path: join(shots, 'overview-dark.png'), fullPage: true });
  await page.emulateMedia({ colorScheme: 'light' });

  // The time window: 15 minutes, a point per minute (the job store's counters are per minute).
  // The default window (1 h) is per minute too: the wait is for the redraw after the click,
  // which presses the button.
  await page.click('#window button[data-minutes="15"]');
  await page.waitForFunction(() => document.querySelector('#window button[data-minutes="15"]').getAttribute('aria-pressed') === 'true'
    && document.getElementById('throughput-note').textContent.includes('per 1 min'));
  const minutes = Number(await page.getAttribute('#chart-throughput svg', 'data-points'));
  check(minutes >= 1 && minutes <= 15, `the 15 m window has ${minutes} minutes with files, expected 1 to 15`);

  // 6. The job page: counts, outputs, workflow steps and the error-report preview.
  const withErrors = expected.find((e) => e.invalid_rows);
  if (withErrors) {
    await page.click(`#recent-jobs tr[data-job-key="${withErrors.key}"] a`);
    await page.waitForSelector('#job:not([hidden]) #job-errors tbody tr');
    const rows = await page.locator('#job-errors tbody tr').count();
    check(rows === withErrors.invalid_rows, `error preview has ${rows} rows, expected ${withErrors.invalid_rows}`);
    const first = await page.locator('#job-errors tbody tr').first().innerText();
    check(/quantity/.test(first), `first error row: ${first}`);
    const counts = await page.locator('#job-counts').innerText();
    check(counts.includes(String(withErrors.invalid_rows)), `counts: ${counts}`);
    const outputs = await page.locator('#job-outputs').innerText();
    check(outputs.includes('errors/') && outputs.includes('results'), `outputs: ${outputs}`);
    if (withErrors.loaded) {
      const loaded = await page.locator('#job-warehouse').innerText();
      check(loaded.includes(withErrors.loaded), `warehouse: ${loaded}, expected ${withErrors.loaded}`);
    }
    const steps = await page.locator('#job-steps li').allInnerTexts();
    check(steps.length >= 2 && steps.some((s) => s.includes('TransformData')), `steps: ${steps}`);
    result.steps = steps.length;
    // The summary: numeric statistics and a bar per product.
    await page.waitForSelector('#job-summary [data-group="product"] svg rect.bar');
    const summary = await page.locator('#job-summary').innerText();
    check(summary.includes('revenue') && summary.includes('55.56'), `summary: ${summary}`);
    // Numbers are rounded for people: no 27.777777777777782 (the success rate was) in the summary.
    const longDecimal = /\d\.\d{3,}/.exec(summary);
    check(!longDecimal, `an unrounded number in the summary: ${longDecimal}`);
    await page.screenshot({ path: join(shots, 'job.png'), fullPage: true });
  }
  // 6b. A picture's page: its small thumbnail, loaded through the session cookie, and its facts.
  const picture = expected.find((e) => e.thumbnail);
  if (picture) {
    await page.goto(`${api}/#/`);
    await page.click(`#recent-jobs tr[data-job-key="${picture.key}"] a`);
    await page.waitForSelector('#job:not([hidden]) #job-thumbnail');
    await page.waitForFunction(() => { const i = document.getElementById('job-thumbnail'); return i && i.complete && i.naturalWidth > 0; });
    result.thumbnail = await page.evaluate(() => { const i = document.getElementById('job-thumbnail'); return [i.naturalWidth, i.naturalHeight]; });
    check(result.thumbnail[0] === picture.thumbnail.width && result.thumbnail[1] === picture.thumbnail.height,
      `thumbnail is ${result.thumbnail}, expected ${JSON.stringify(picture.thumbnail)}`);
    const facts = await page.locator('#job-image-facts').innerText();
    check(facts.includes('Weirphone') && facts.includes('withheld') && facts.includes('1200 × 900'), `picture facts: ${facts}`);
    check(await page.locator('#job-errors, #job-errors-none').count() === 0, 'a picture has no error report panel');
    await page.screenshot({ path: join(shots, 'image-job.png'), fullPage: true });
  }
  const rejected = expected.find((e) => e.status === 'rejected');
  if (rejected) {
    await page.goto(`${api}/#/`);
    await page.click(`#failed-jobs tr[data-job-key="${rejected.key}"] a`);
    await page.waitForSelector('#job:not([hidden]) #job-error');
    const why = await page.locator('#job-error').innerText();
    check(why.includes(rejected.reason ?? ''), `rejection reason: ${why}`);
    await page.waitForSelector('#job-steps li.fail, #job-steps li');
    await page.waitForSelector('#job-errors-none');
  }

  // 7. Nothing went wrong in the page.
  check(consoleErrors.length === 0, `console errors:\n${consoleErrors.join('\n')}`);
  check(pageErrors.length === 0, `page errors:\n${pageErrors.join('\n')}`);
  check(badResponses.length === 0, `error responses:\n${badResponses.join('\n')}`);
  // A job that does not exist (last: its 404 is the one expected error response).
  await page.goto(`${api}/#/jobs/j-does-not-exist`);
  await page.waitForSelector('#job:not([hidden]) #job-missing');
  result.screenshots = shots;
  console.log(`ok ${JSON.stringify(result)}`);
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
  process.exit(0);
} catch (e) {
  console.error(`error: ${e?.stack || e}`);
  console.error(`console errors: ${JSON.stringify(consoleErrors)}\npage errors: ${JSON.stringify(pageErrors)}\nerror responses: ${JSON.stringify(badResponses)}`);
  try {
    const page = context?.pages()[0];
    if (page) await page.screenshot({ path: join(shots, 'failure.png'), fullPage: true });
  } catch { /* the browser is gone */ }
  try { await context?.close(); } catch { /* ignore */ }
  rmSync(userDataDir, { recursive: true, force: true });
  process.exit(1);
}
