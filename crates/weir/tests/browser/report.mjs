// Opens a weir daily report in headless Chromium (Debian's /usr/bin/chromium through
// playwright-core), as its readers do: the downloaded file from disk, the document the API
// serves, and the dashboard's link to it (and the link a report email carries). Run by
// crates/weir/tests/report.rs.
//
//   env  WEIR_API, WEIR_TOKEN, WEIR_DATE (YYYY-MM-DD), WEIR_FILE (the downloaded HTML),
//        WEIR_EXPECT (JSON {received, succeeded, rejected}), WEIR_SHOTS (a folder),
//        WEIR_CHROMIUM (default /usr/bin/chromium)
//   out  "ok <json>" when every check passed (exit 0); otherwise "error: ..." on stderr, exit 1
//
// Every request the page makes is recorded; any to somewhere else than the report itself (and,
// for the dashboard, weir's own origin) is refused and fails the test.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';

const api = process.env.WEIR_API;
const token = process.env.WEIR_TOKEN;
const date = process.env.WEIR_DATE;
const file = pathToFileURL(process.env.WEIR_FILE).href;
const expected = JSON.parse(process.env.WEIR_EXPECT || '{}');
const shots = process.env.WEIR_SHOTS;
const executablePath = process.env.WEIR_CHROMIUM || '/usr/bin/chromium';

function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

const userDataDir = mkdtempSync(join(tmpdir(), 'weir-chromium-'));
let context;
const consoleErrors = [];
const pageErrors = [];
const external = [];
const requests = [];
const result = {};

// The report's own document, and (for the dashboard part) weir's origin, are allowed.
let allowOrigin = null;
function allowed(url) {
  if (url === file || url.startsWith('data:')) return true;
  return allowOrigin !== null && url.startsWith(allowOrigin);
}

async function checkReport(page, name) {
  await page.waitForSelector('#headline td[data-figure="received"]');
  const tile = async (id) => (await page.locator(`#headline td[data-figure="${id}"] .tile-v`).innerText()).trim();
  for (const [id, want] of Object.entries(expected)) {
    const got = await tile(id);
    check(got === String(want), `${name}: ${id} shows ${got}, expected ${want}`);
  }
  check(await page.locator('script').count() === 0, `${name}: the report has a script`);
  check(await page.locator('link, img, iframe, object, embed').count() === 0, `${name}: the report loads something`);
  const bars = await page.locator('#chart-throughput rect.bar').count();
  check(bars > 0, `${name}: no bar in the throughput chart`);
  check(await page.locator('#chart-rows rect.bar').count() > 0, `${name}: no bar in the rows chart`);
  check(await page.locator('#rejections tbody tr').count() > 0, `${name}: no rejection reason`);
  check(await page.locator('#aggregates [data-by="product"] tbody tr').count() > 0, `${name}: no per-product figures`);
  // Laid out: the charts have a size, the page is not wider than the window.
  const box = await page.locator('#chart-throughput').boundingBox();
  check(box && box.width > 300 && box.height > 80, `${name}: chart box ${JSON.stringify(box)}`);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, `${name}: the page is ${overflow}px wider than the window`);
  // Light and dark.
  await page.emulateMedia({ colorScheme: 'light' });
  const light = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  await page.screenshot({ path: join(shots, `${name}-light.png`), fullPage: true });
  await page.emulateMedia({ colorScheme: 'dark' });
  const dark = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  const darkText = await page.evaluate(() => getComputedStyle(document.body).color);
  check(light !== dark, `${name}: the background stays ${light} in dark mode`);
  check(darkText !== 'rgb(29, 35, 48)', `${name}: dark mode keeps the dark text`);
  await page.screenshot({ path: join(shots, `${name}-dark.png`), fullPage: true });
  await page.emulateMedia({ colorScheme: 'light' });
  return bars;
}

try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1100, height: 900 },
    timeout: 60_000,
  });
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (allowed(url)) return route.continue();
    external.push(url);
    return route.abort();
  });
  const page = context.pages()[0] ?? await context.newPage();
  page.setDefaultTimeout(30_000);
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(`${m.text()} @ ${JSON.stringify(m.location())}`); });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('request', (r) => { requests.push(r.url()); if (!allowed(r.url())) external.push(r.url()); });

  // 1. The downloaded file, opened from disk.
  await page.goto(file);
  result.file_bars = await checkReport(page, 'report-file');
  check(requests.every((u) => u === file), `the file made requests: ${JSON.stringify(requests)}`);

  // 2. The same report as the API serves it (with the token), under its strict CSP.
  allowOrigin = api;
  await context.setExtraHTTPHeaders({ Authorization: `Bearer ${token}` });
  requests.length = 0;
  const response = await page.goto(`${api}/v1/reports/${date}/html`);
  check(response.status() === 200, `the API answered ${response.status()}`);
  check((response.headers()['content-security-policy'] || '').includes("default-src 'none'"), 'no CSP on the report');
  result.api_bars = await checkReport(page, 'report-api');
  check(requests.every((u) => u === `${api}/v1/reports/${date}/html`), `the served report made requests: ${JSON.stringify(requests)}`);
  await context.setExtraHTTPHeaders({});

  // 3. The dashboard lists the report and links to it; the link a report email carries
  //    (#/reports/<date>) opens it once signed in.
  await page.goto(`${api}/?token=${encodeURIComponent(token)}`);
  await page.waitForSelector(`#reports li[data-date="${date}"] a`);
  const href = await page.getAttribute(`#reports li[data-date="${date}"] a`, 'href');
  check(href === `/v1/reports/${date}/html`, `the dashboard links to ${href}`);
  await page.screenshot({ path: join(shots, 'dashboard-reports.png'), fullPage: true });
  await page.goto(`${api}/#/reports/${date}`);
  await page.waitForURL(`${api}/v1/reports/${date}/html`);
  await page.waitForSelector('#headline td[data-figure="received"]');
  result.email_link = page.url();

  check(consoleErrors.length === 0, `console errors:\n${consoleErrors.join('\n')}`);
  check(pageErrors.length === 0, `page errors:\n${pageErrors.join('\n')}`);
  check(external.length === 0, `requests to elsewhere:\n${external.join('\n')}`);
  result.screenshots = shots;
  console.log(`ok ${JSON.stringify(result)}`);
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
  process.exit(0);
} catch (e) {
  console.error(`error: ${e?.stack || e}`);
  console.error(`console errors: ${JSON.stringify(consoleErrors)}\npage errors: ${JSON.stringify(pageErrors)}\nexternal: ${JSON.stringify(external)}\nrequests: ${JSON.stringify(requests)}`);
  try {
    const page = context?.pages()[0];
    if (page) await page.screenshot({ path: join(shots, 'report-failure.png'), fullPage: true });
  } catch { /* the browser is gone */ }
  try { await context?.close(); } catch { /* ignore */ }
  rmSync(userDataDir, { recursive: true, force: true });
  process.exit(1);
}
