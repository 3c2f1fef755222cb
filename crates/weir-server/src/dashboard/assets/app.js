// The weir dashboard: reads the JSON API with the session cookie and redraws every 2 s.
// Views: the overview (#/) and one job (#/jobs/<id>). Every piece of data is put in the page as
// text nodes (never as HTML), so a file name cannot inject markup.

import { stackedBars, lines, hbars, formatMs, formatNumber } from './charts.js';

const POLL_MS = 2000;
const MAX_BACKOFF_MS = 15000;
const $ = (id) => document.getElementById(id);

/** Builds an element: h('td', { class: 'num' }, 'text', childNode, ...). */
function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k.startsWith('data-')) e.setAttribute(k, String(v));
    else if (k === 'class') e.className = v;
    else e.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c == null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

const state = {
  minutes: Number(localStorage.getItem('weir.minutes')) || 60,
  timer: null,
  seq: 0,
  failures: 0,
  lastOk: 0,
  renders: 0,
};

class Unauthorized extends Error {}
class NotFound extends Error {}

async function getJson(url) {
  const r = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' }, cache: 'no-store' });
  if (r.status === 401 || r.status === 403) throw new Unauthorized();
  if (r.status === 404) throw new NotFound(url);
  if (!r.ok) {
    let msg = `${r.status}`;
    try { msg = (await r.json()).error.message; } catch { /* not JSON */ }
    throw new Error(msg);
  }
  return r.json();
}

// ---------- formatting ----------

function ago(iso) {
  if (!iso) return '–';
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 5) return 'just now';
  if (s < 60) return `${Math.floor(s)} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(iso).toLocaleDateString();
}

function bytes(n) {
  if (n == null) return '–';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return `${i ? n.toFixed(1) : n} ${u[i]}`;
}

const int = (n) => (n == null ? '–' : Number(n).toLocaleString());
const pill = (s, label = s) => h('span', { class: `pill ${s}` }, label);
const jobLink = (j) => h('a', { href: `#/jobs/${encodeURIComponent(j.job_id)}`, class: 'mono' }, j.source_key);

// ---------- views ----------

function show(view) {
  for (const id of ['signin', 'overview', 'job']) $(id).hidden = id !== view;
  const signedIn = view !== 'signin';
  $('signout').hidden = !signedIn;
  $('live').hidden = !signedIn;
  $('window').hidden = view !== 'overview';
}

function showSignin() {
  stop();
  show('signin');
  const params = new URLSearchParams(location.search);
  $('signin-msg').hidden = params.get('login') !== 'failed';
  if (location.search) history.replaceState(null, '', `/${location.hash}`);
  $('token').focus();
}

function setLive(kind, text) {
  $('live').className = `live ${kind}`;
  $('live-text').textContent = text;
}

function tile(label, value, sub, cls = '') {
  return h('div', { class: `tile ${cls}` }, h('div', { class: 'label' }, label), h('div', { class: 'value' }, value), sub ? h('div', { class: 'sub' }, sub) : null);
}

function renderOverview(o) {
  const t = o.totals;
  const n = (k) => t[k] || 0;
  const received = Object.values(t).reduce((a, b) => a + b, 0);
  const finished = n('succeeded') + n('rejected') + n('failed');
  const errRate = finished ? (100 * (n('rejected') + n('failed'))) / finished : 0;
  $('tiles').replaceChildren(
    tile('Files received', int(received), `${int(n('queued') + n('running'))} in progress`),
    tile('Succeeded', int(n('succeeded')), finished ? `${(100 - errRate).toFixed(1)} % of finished` : null, 'ok'),
    tile('Rejected', int(n('rejected')), 'bad input, moved to failed/', n('rejected') ? 'warn' : ''),
    tile('Failed', int(n('failed')), 'retries exhausted', n('failed') ? 'bad' : ''),
    tile('Queue', int(o.queue.visible), `${int(o.queue.in_flight)} in flight${o.queue.oldest_age_seconds ? `, oldest ${formatMs(o.queue.oldest_age_seconds * 1000)}` : ''}`),
    tile('Dead letters', int(o.queue.dead_letters), 'in the DLQ', o.queue.dead_letters ? 'bad' : ''),
    tile('Duration p50', formatMs(o.latency.p50_ms), `${int(o.latency.samples)} jobs in window`),
    tile('Duration p99', formatMs(o.latency.p99_ms), o.latency.max_ms != null ? `max ${formatMs(o.latency.max_ms)}` : null),
  );

  const times = o.series.map((p) => Date.parse(p.start));
  const per = o.bucket_seconds >= 60 ? `${o.bucket_seconds / 60} min` : `${o.bucket_seconds} s`;
  $('throughput-note').textContent = `files finished per ${per}`;
  stackedBars($('chart-throughput'), {
    label: 'Files finished over time',
    times,
    series: [
      { name: 'succeeded', cls: 's-ok', values: o.series.map((p) => p.succeeded) },
      { name: 'rejected', cls: 's-warn', values: o.series.map((p) => p.rejected) },
      { name: 'failed', cls: 's-bad', values: o.series.map((p) => p.failed) },
    ],
    empty: 'no job finished in this window',
    height: 270,
  });
  const valid = o.series.reduce((a, p) => a + p.rows_valid, 0);
  const invalid = o.series.reduce((a, p) => a + p.rows_invalid, 0);
  $('rows-note').textContent = valid + invalid ? `${((100 * invalid) / (valid + invalid)).toFixed(2)} % invalid` : '';
  stackedBars($('chart-rows'), {
    label: 'Rows validated over time',
    times,
    series: [
      { name: 'valid', cls: 's-ok', values: o.series.map((p) => p.rows_valid) },
      { name: 'invalid', cls: 's-bad', values: o.series.map((p) => p.rows_invalid) },
    ],
    empty: 'no rows in this window',
    height: 170,
  });
  $('latency-note').textContent = `per ${per}`;
  lines($('chart-latency'), {
    label: 'Job duration p50 and p99',
    times,
    format: formatMs,
    series: [
      { name: 'p50', cls: 's-accent', values: o.series.map((p) => p.p50_ms) },
      { name: 'p99', cls: 's-info', values: o.series.map((p) => p.p99_ms) },
    ],
    empty: 'no job finished in this window',
  });
  // The monitor's samples, then the queue as it is now.
  const q = [...o.queue_history, { at: o.generated_at, visible: o.queue.visible, dead_letters: o.queue.dead_letters }];
  lines($('chart-queue'), {
    label: 'Queue and DLQ depth',
    times: q.map((p) => Date.parse(p.at)),
    area: true,
    integer: true,
    series: [
      { name: 'waiting', cls: 's-accent', values: q.map((p) => p.visible) },
      { name: 'dead letters', cls: 's-bad', values: q.map((p) => p.dead_letters) },
    ],
    empty: 'sampled every 10 s once weir run is up',
  });

  const firing = o.alarms.filter((a) => a.state === 'ALARM').length;
  $('alarms-note').textContent = o.alarms.length ? (firing ? `${firing} firing` : 'none firing') : '';
  $('alarms').replaceChildren(
    ...(o.alarms.length
      ? o.alarms.map((a) => h('li', { 'data-alarm': a.name, 'data-state': a.state, title: a.reason },
        h('span', { class: 'name' }, a.description || a.name),
        pill(a.state, a.state === 'INSUFFICIENT_DATA' ? 'NO DATA' : a.state),
        h('span', { class: 'reason' }, a.state === 'ALARM' ? a.reason : a.name)))
      : [h('li', {}, h('span', { class: 'reason' }, 'The alarm monitor has not evaluated yet.'))]),
  );

  $('recent-jobs').tBodies[0].replaceChildren(
    ...(o.recent_jobs.length
      ? o.recent_jobs.map((j) => h('tr', { 'data-job-key': j.source_key, 'data-job-id': j.job_id, 'data-status': j.status },
        h('td', {}, pill(j.status)),
        h('td', { class: 'key' }, jobLink(j)),
        h('td', { class: 'num' }, int(j.total_rows)),
        h('td', { class: 'num' }, j.invalid_rows ? int(j.invalid_rows) : '–'),
        h('td', { class: 'num' }, formatMs(j.duration_ms)),
        h('td', { class: 'when', title: j.finished_at || j.created_at }, ago(j.finished_at || j.created_at))))
      : [h('tr', { class: 'empty-row' }, h('td', { colspan: 6 }, 'No jobs yet. Upload a file to weir-input/raw/ (weir put sales.csv).'))]),
  );
  $('failed-jobs').tBodies[0].replaceChildren(
    ...(o.failed_jobs.length
      ? o.failed_jobs.map((j) => h('tr', { 'data-job-key': j.source_key, 'data-status': j.status },
        h('td', {}, pill(j.status)),
        h('td', { class: 'reason' }, jobLink(j), h('br'), j.error || 'no reason recorded'),
        h('td', { class: 'when', title: j.finished_at || j.created_at }, ago(j.finished_at || j.created_at))))
      : [h('tr', { class: 'empty-row' }, h('td', { colspan: 3 }, 'Nothing failed or rejected.'))]),
  );
  const banner = $('banner');
  banner.hidden = !(o.queue.dead_letters > 0);
  if (o.queue.dead_letters > 0) {
    banner.replaceChildren(`${o.queue.dead_letters} message(s) in the dead-letter queue. Fix the cause, then `, h('code', {}, 'weir dlq replay --all'), '.');
  }
  for (const b of $('window').querySelectorAll('button')) b.setAttribute('aria-pressed', String(Number(b.dataset.minutes) === state.minutes));
}

/** A row's original values as `field: value` pairs, the failing field first and marked. */
function valuesOf(e) {
  const entries = Object.entries(e.values || {});
  entries.sort(([a], [b]) => (b === e.field) - (a === e.field));
  return entries.map(([k, v], i) => h('span', { class: k === e.field ? 'bad-field' : null },
    `${i ? '  ' : ''}${k}: ${v === '' ? '""' : typeof v === 'string' ? v : JSON.stringify(v)}`));
}

async function loadJob(id) {
  const [job, preview, summary] = await Promise.all([
    getJson(`/v1/jobs/${encodeURIComponent(id)}`),
    getJson(`/v1/jobs/${encodeURIComponent(id)}/errors?limit=50`),
    getJson(`/v1/jobs/${encodeURIComponent(id)}/summary`),
  ]);
  return { job, preview, summary };
}

const afterRender = [];
const num = (v) => (typeof v === 'number' ? formatNumber(v) : '–');

/** The summary's numeric statistics and group-by aggregates, or null when there is none. */
function summaryPanel(doc) {
  const s = doc.summary;
  if (!s) return null;
  const numeric = Object.entries(s.numeric || {});
  const groups = [];
  for (const [field, byValue] of Object.entries(s.group_by || {})) {
    const entries = Object.entries(byValue || {});
    const measures = [...new Set(entries.flatMap(([, g]) => Object.keys(g).filter((k) => g[k] && typeof g[k] === 'object')))];
    // The last measure is the derived one in the bundled pipeline (revenue); any is fine.
    const measure = measures.includes('revenue') ? 'revenue' : measures[measures.length - 1];
    if (!measure) continue;
    const chart = h('div', { class: 'groupchart', 'data-group': field });
    const items = entries.map(([name, g]) => ({ name, value: g[measure]?.sum ?? 0 }));
    // Drawn once in the page, at its width.
    afterRender.push(() => hbars(chart, { label: `${measure} by ${field}`, items }));
    groups.push(h('div', {}, h('h3', {}, `${measure} by ${field}`, h('span', { class: 'note' }, ' (sum)')), chart));
  }
  return h('section', { class: 'panel span-12', id: 'job-summary' },
    h('header', {}, h('h2', {}, 'Summary'),
      h('span', { class: 'note' }, `${doc.bucket}/${doc.key} · success rate ${s.success_rate == null ? '–' : num(s.success_rate)} %`)),
    h('div', { class: 'summary-grid' },
      numeric.length
        ? h('div', { class: 'scroll' }, h('table', {},
          h('thead', {}, h('tr', {}, h('th', {}, 'Field'), ...['count', 'min', 'max', 'sum', 'avg'].map((k) => h('th', { class: 'num' }, k)))),
          h('tbody', {}, ...numeric.map(([f, st]) => h('tr', {}, h('td', { class: 'mono' }, f),
            ...['count', 'min', 'max', 'sum', 'avg'].map((k) => h('td', { class: 'num' }, num(st[k]))))))))
        : h('p', { class: 'reason' }, 'No numeric fields.'),
      ...groups));
}

/** An image job's picture: the small thumbnail, dimensions, EXIF and thumbnails, or null. */
function imagePanel(job) {
  const img = job.image;
  if (!img) return null;
  const exif = img.exif || {};
  const camera = [exif.make, exif.model].filter(Boolean).join(' ');
  const facts = [
    ['Format', `${img.format} (${img.mode})${img.animated ? ', animated: first frame' : ''}`],
    ['Stored', `${img.width} × ${img.height}`],
    ['Shown', `${img.display_width} × ${img.display_height}${exif.orientation > 1 ? ` (EXIF orientation ${exif.orientation})` : ''}`],
    ['File', bytes(img.file_size)],
    camera ? ['Camera', camera] : null,
    exif.datetime_original || exif.datetime ? ['Taken', exif.datetime_original || exif.datetime] : null,
    exif.has_gps ? ['Location', exif.gps ? `${exif.gps.latitude.toFixed(5)}, ${exif.gps.longitude.toFixed(5)}` : 'in the file; withheld from thumbnails and this page'] : null,
    ...(img.thumbnails || []).map((t) => [`Thumbnail ${t.name}`, `${t.width} × ${t.height} · ${bytes(t.bytes)}`]),
  ].filter(Boolean);
  const smallest = (img.thumbnails || []).reduce((a, t) => (!a || t.width * t.height < a.width * a.height ? t : a), null);
  return h('section', { class: 'panel span-12', id: 'job-image' },
    h('header', {}, h('h2', {}, 'Picture')),
    h('div', { class: 'picture' },
      smallest
        ? h('img', {
          id: 'job-thumbnail',
          src: `/v1/jobs/${encodeURIComponent(job.job_id)}/thumbnail?size=${encodeURIComponent(smallest.name)}`,
          width: smallest.width,
          height: smallest.height,
          alt: `${smallest.name} thumbnail of ${job.source_key}`,
        })
        : null,
      h('dl', { class: 'kv', id: 'job-image-facts' }, ...facts.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]))));
}

// Where the valid rows went besides the results ([pipeline.sinks]), or why they did not.
function warehouseLoad(w) {
  const where = `${w.table} at ${w.target} (${w.sink}, ${w.mode})`;
  return h('dl', { class: 'kv', id: 'job-warehouse' },
    h('dt', {}, 'warehouse'),
    w.error
      ? h('dd', { class: 'reason' }, `nothing loaded into ${where}: ${w.error}`)
      : h('dd', { class: 'mono' }, `${int(w.rows)} rows into ${where}`));
}

function renderJob({ job, preview, summary }) {
  const root = $('job');
  const meta = [
    h('span', {}, `job `, h('code', {}, job.job_id)),
    job.pipeline ? h('span', {}, `pipeline ${job.pipeline}`) : null,
    h('span', {}, `received ${new Date(job.created_at).toLocaleString()}`),
    job.finished_at ? h('span', {}, `finished ${ago(job.finished_at)}`) : null,
  ];
  const outputs = Object.entries(job.output_keys || {});
  const steps = job.steps || [];
  const errorRows = preview.errors || [];
  const isImage = Boolean(job.image);
  root.replaceChildren(...[
    h('div', { class: 'crumbs' }, h('a', { href: '#/' }, '← all jobs')),
    h('div', { class: 'jobhead' }, pill(job.status), h('h1', { class: 'mono', id: 'job-key' }, `${job.source_bucket}/${job.source_key}`)),
    h('div', { class: 'jobmeta' }, ...meta),
    job.error ? h('div', { class: 'errorbox', id: 'job-error' }, h('strong', {}, 'Why: '), job.error) : null,
    h('div', { class: 'tiles', id: 'job-counts' },
      ...(isImage ? [] : [
        tile('Rows', int(job.total_rows)),
        tile('Valid', int(job.valid_rows), job.total_rows ? `${((100 * job.valid_rows) / job.total_rows).toFixed(1)} %` : null, 'ok'),
        tile('Invalid', int(job.invalid_rows), null, job.invalid_rows ? 'warn' : ''),
      ]),
      tile('Size', bytes(job.source_size), job.source_etag ? `ETag ${job.source_etag.slice(0, 10)}…` : null),
      tile('Attempts', int(job.attempts)),
      tile('Duration', formatMs(job.duration_ms))),
    h('div', { class: 'grid' },
      h('section', { class: 'panel span-5' },
        h('header', {}, h('h2', {}, 'Workflow')),
        steps.length
          ? h('ol', { class: 'steps', id: 'job-steps' }, ...steps.map((s) => h('li', { class: s.outcome === 'ok' ? 'ok' : 'fail', 'data-state': s.state },
            h('span', { class: 'mark' }),
            h('span', { class: 'state' }, s.state),
            h('span', { class: 'meta' }, `${formatMs(s.duration_ms)} · ${s.outcome}${s.retries ? ` · ${s.retries} retries` : ''}`),
            s.error ? h('div', { class: 'err' }, s.error) : null)))
          : h('p', { class: 'reason' }, 'No workflow state has run yet.')),
      h('section', { class: 'panel span-7' },
        h('header', {}, h('h2', {}, 'Outputs')),
        outputs.length
          ? h('dl', { class: 'kv', id: 'job-outputs' }, ...outputs.flatMap(([role, key]) => [h('dt', {}, role), h('dd', { class: 'mono' }, key)]))
          : h('p', { class: 'reason' }, 'No outputs.'),
        job.warehouse ? warehouseLoad(job.warehouse) : null),
      imagePanel(job),
      summaryPanel(summary),
      isImage ? null : h('section', { class: 'panel span-12' },
        h('header', {}, h('h2', {}, 'Error report'),
          h('span', { class: 'note' }, preview.key
            ? `${preview.bucket}/${preview.key} · ${bytes(preview.size)} · ${preview.complete ? 'all rows' : `first ${errorRows.length} rows`}`
            : '')),
        preview.key
          ? h('div', { class: 'scroll' }, h('table', { id: 'job-errors' },
            h('thead', {}, h('tr', {}, h('th', { class: 'num' }, 'Line'), h('th', {}, 'Field'), h('th', {}, 'Reason'), h('th', {}, 'Values'))),
            h('tbody', {}, ...errorRows.map((e) => h('tr', {},
              h('td', { class: 'num' }, e.line ?? '–'),
              h('td', { class: 'mono' }, e.field ?? '–'),
              h('td', { class: 'reason' }, e.reason ?? ''),
              h('td', { class: 'values' }, ...valuesOf(e)))))))
          : h('p', { class: 'reason', id: 'job-errors-none' }, 'Every row was valid: no error report.'))),
  ].filter(Boolean));
  for (const draw of afterRender.splice(0)) draw();
  document.title = `${job.source_key} · weir`;
}

// ---------- the loop ----------

function stop() {
  clearTimeout(state.timer);
  state.timer = null;
}

function schedule(ms = POLL_MS) {
  stop();
  state.timer = setTimeout(tick, ms);
}

async function tick() {
  stop();
  if (document.hidden) return; // resumed by visibilitychange
  // A newer tick (a click, a new route) supersedes this one: its answer is dropped.
  const seq = ++state.seq;
  const current = () => seq === state.seq;
  const route = location.hash.match(/^#\/jobs\/(.+)$/);
  // A report's link (from its email or webhook): open the document, now that the session is on.
  const report = location.hash.match(/^#\/reports\/(\d{4}-\d{2}-\d{2})(?:\/([\w.-]+))?$/);
  if (report) {
    const q = report[2] ? `?pipeline=${encodeURIComponent(report[2])}` : '';
    location.replace(`/v1/reports/${report[1]}/html${q}`);
    return;
  }
  try {
    if (route) {
      const data = await loadJob(decodeURIComponent(route[1]));
      if (!current()) return;
      show('job');
      renderJob(data);
      $('job').dataset.finished = String(!['queued', 'running'].includes(data.job.status));
      // A finished job does not change: stop polling it.
      if ($('job').dataset.finished !== 'true') schedule();
    } else {
      const o = await getJson(`/v1/overview?minutes=${state.minutes}`);
      if (!current()) return;
      show('overview');
      document.title = 'weir';
      renderOverview(o);
      await loadReports();
      schedule();
    }
    state.failures = 0;
    state.lastOk = Date.now();
    state.renders += 1;
    document.body.dataset.renders = String(state.renders);
    const done = route && $('job').dataset.finished === 'true';
    setLive('', done ? 'job finished' : `live · ${new Date().toLocaleTimeString()}`);
  } catch (e) {
    if (!current()) return;
    if (e instanceof Unauthorized) {
      showSignin();
      return;
    }
    if (e instanceof NotFound && route) {
      show('job');
      $('job').replaceChildren(
        h('div', { class: 'crumbs' }, h('a', { href: '#/' }, '← all jobs')),
        h('p', { id: 'job-missing' }, 'There is no job ', h('code', {}, decodeURIComponent(route[1])), '.'));
      setLive('', 'live');
      return;
    }
    state.failures += 1;
    setLive(state.failures > 2 ? 'down' : 'stale', `cannot reach weir (${e.message}); retrying`);
    schedule(Math.min(MAX_BACKOFF_MS, POLL_MS * 2 ** state.failures));
  }
}

// The daily reports' history, read once a minute (it changes once a day).
const REPORTS_EVERY_MS = 60_000;
async function loadReports() {
  if (state.reportsAt && Date.now() - state.reportsAt < REPORTS_EVERY_MS) return;
  state.reportsAt = Date.now();
  let list;
  try {
    list = (await getJson('/v1/reports?limit=14')).reports;
  } catch (e) {
    if (e instanceof Unauthorized) throw e;
    $('reports').replaceChildren(h('li', { class: 'muted' }, `cannot list the reports (${e.message})`));
    return;
  }
  $('reports').replaceChildren(...(list.length
    ? list.map((r) => h('li', { 'data-date': r.date },
      h('a', { href: r.html_url, target: '_blank', rel: 'noopener' }, r.date),
      r.pipeline ? ` · ${r.pipeline}` : '',
      h('span', { class: 'muted' }, ` written ${ago(r.written_at)}`)))
    : [h('li', { class: 'muted' }, 'No report yet.')]));
}

async function start() {
  let session;
  try {
    session = await (await fetch('/session', { credentials: 'same-origin', cache: 'no-store' })).json();
  } catch {
    $('live').hidden = false;
    setLive('down', 'cannot reach weir; retrying');
    setTimeout(start, 3000);
    return;
  }
  if (!session.authenticated) {
    showSignin();
    return;
  }
  if (location.search) history.replaceState(null, '', `/${location.hash}`);
  tick();
}

window.addEventListener('hashchange', () => { window.scrollTo(0, 0); tick(); });
document.addEventListener('visibilitychange', () => { if (!document.hidden) tick(); });
$('window').addEventListener('click', (ev) => {
  const m = Number(ev.target?.dataset?.minutes);
  if (!m) return;
  state.minutes = m;
  localStorage.setItem('weir.minutes', String(m));
  tick();
});
start();
