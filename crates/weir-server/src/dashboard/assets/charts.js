// Small hand-written SVG charts: stacked bars and lines over a time axis.
// Colours come from CSS classes (s-ok, s-bad, ...), so light and dark themes need nothing here.

const NS = 'http://www.w3.org/2000/svg';
const PAD = { left: 52, right: 10, top: 10, bottom: 22 };
// Drawn at the container's pixel width (redrawn on every update), so text keeps its size.
let W = 640;
let H = 180;

function size(container, height) {
  W = Math.max(280, Math.round(container.clientWidth || 640));
  H = height;
}

function el(name, attrs = {}, text) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/** A "nice" upper bound and tick step for values up to max (whole steps for counts). */
function niceScale(max, integer) {
  if (integer && max <= 4) return { top: 4, step: 1 };
  if (!(max > 0)) return { top: 1, step: 0.25 };
  const raw = max / 4;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  return { top: step * Math.ceil(max / step), step };
}

export function formatNumber(v) {
  if (v >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (v >= 1e4) return `${+(v / 1e3).toFixed(1)}k`;
  return `${+v.toFixed(2)}`;
}

export function formatMs(ms) {
  if (ms == null) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${+(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
  return `${+(ms / 60000).toFixed(1)} min`;
}

function clock(t) {
  return new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

function frame(svg, times, max, format, integer = false) {
  const { top, step } = niceScale(max, integer);
  const ih = H - PAD.top - PAD.bottom;
  for (let v = 0; v <= top + step / 2; v += step) {
    const y = PAD.top + ih - (v / top) * ih;
    svg.append(el('line', { class: 'gridline', x1: PAD.left, x2: W - PAD.right, y1: y, y2: y }));
    svg.append(el('text', { x: PAD.left - 6, y: y + 3.5, 'text-anchor': 'end' }, format(v)));
  }
  if (times.length > 1) {
    const iw = W - PAD.left - PAD.right;
    const ticks = [...new Set([0, Math.floor((times.length - 1) / 2), times.length - 1])];
    const labels = new Set();
    for (const i of ticks) {
      if (labels.has(clock(times[i]))) continue;
      labels.add(clock(times[i]));
      const x = PAD.left + (i / (times.length - 1)) * iw;
      const anchor = i === 0 ? 'start' : i === times.length - 1 ? 'end' : 'middle';
      svg.append(el('text', { x, y: H - 6, 'text-anchor': anchor }, clock(times[i])));
    }
  }
  return top;
}

function svgRoot(label) {
  return el('svg', { class: 'chart', width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label });
}

function emptyNote(svg, text) {
  svg.append(el('text', { class: 'empty', x: W / 2, y: H / 2, 'text-anchor': 'middle' }, text));
}

/**
 * Stacked bars: one bar per time bucket, one segment per series.
 * series: [{ name, cls, values: number[] }], times: epoch ms per bucket.
 */
export function stackedBars(container, { label, times, series, empty = 'no data yet', height = 200 }) {
  size(container, height);
  const svg = svgRoot(label);
  const totals = times.map((_, i) => series.reduce((s, x) => s + (x.values[i] || 0), 0));
  const max = Math.max(0, ...totals);
  const top = frame(svg, times, max, formatNumber, true);
  const iw = W - PAD.left - PAD.right;
  const ih = H - PAD.top - PAD.bottom;
  const slot = iw / Math.max(1, times.length);
  const bw = Math.max(1, slot * 0.72);
  times.forEach((t, i) => {
    let y = PAD.top + ih;
    for (const s of series) {
      const v = s.values[i] || 0;
      if (!v) continue;
      // At least 2 px: one failed file among hundreds must still show.
      const h = Math.max((v / top) * ih, 2);
      y -= h;
      const r = el('rect', { class: `bar ${s.cls}`, x: PAD.left + i * slot + (slot - bw) / 2, y, width: bw, height: h });
      r.append(el('title', {}, `${clock(t)} — ${s.name}: ${v}`));
      svg.append(r);
    }
  });
  if (max === 0) emptyNote(svg, empty);
  container.replaceChildren(svg);
  svg.dataset.points = String(totals.filter((v) => v > 0).length);
}

/**
 * Lines over time; null values leave gaps.
 * series: [{ name, cls, values: (number|null)[] }], times: epoch ms per point.
 */
export function lines(container, { label, times, series, format = formatNumber, empty = 'no data yet', area = false, integer = false, height = 170 }) {
  size(container, height);
  const svg = svgRoot(label);
  const all = series.flatMap((s) => s.values.filter((v) => v != null));
  const max = Math.max(0, ...all);
  const top = frame(svg, times, max, format, integer);
  const iw = W - PAD.left - PAD.right;
  const ih = H - PAD.top - PAD.bottom;
  const x = (i) => PAD.left + (times.length > 1 ? (i / (times.length - 1)) * iw : iw / 2);
  const y = (v) => PAD.top + ih - (v / top) * ih;
  let drawn = 0;
  for (const s of series) {
    let d = '';
    let run = [];
    const runs = [];
    s.values.forEach((v, i) => {
      if (v == null) {
        if (run.length) runs.push(run);
        run = [];
      } else {
        run.push(i);
      }
    });
    if (run.length) runs.push(run);
    for (const r of runs) {
      d += r.map((i, k) => `${k ? 'L' : 'M'}${x(i).toFixed(1)},${y(s.values[i]).toFixed(1)}`).join('');
      if (r.length === 1) {
        const c = el('circle', { class: s.cls, cx: x(r[0]), cy: y(s.values[r[0]]), r: 2.5 });
        c.append(el('title', {}, `${clock(times[r[0]])} — ${s.name}: ${format(s.values[r[0]])}`));
        svg.append(c);
      }
      if (area && r.length > 1) {
        const a = `M${x(r[0]).toFixed(1)},${y(0)}` + r.map((i) => `L${x(i).toFixed(1)},${y(s.values[i]).toFixed(1)}`).join('') + `L${x(r[r.length - 1]).toFixed(1)},${y(0)}Z`;
        svg.append(el('path', { class: `area ${s.cls}`, d: a }));
      }
      drawn += r.length;
    }
    if (d) {
      const p = el('path', { class: `line ${s.cls}`, d, 'vector-effect': 'non-scaling-stroke' });
      p.append(el('title', {}, s.name));
      svg.append(p);
    }
  }
  if (drawn === 0) emptyNote(svg, empty);
  container.replaceChildren(svg);
  svg.dataset.points = String(drawn);
}

/**
 * Horizontal bars, one per item, largest first: items [{ name, value }].
 */
export function hbars(container, { label, items, format = formatNumber, cls = 's-accent', max = 12 }) {
  const shown = [...items].sort((a, b) => b.value - a.value).slice(0, max);
  const row = 24;
  size(container, Math.max(1, shown.length) * row + 6);
  const svg = svgRoot(label);
  const nameW = Math.min(180, Math.round(W * 0.3));
  const valueW = 84;
  const top = Math.max(0, ...shown.map((i) => i.value)) || 1;
  shown.forEach((item, k) => {
    const y = 3 + k * row;
    const name = item.name.length > 26 ? `${item.name.slice(0, 25)}…` : item.name;
    svg.append(el('text', { x: 0, y: y + 15 }, name));
    const w = Math.max(1, (item.value / top) * (W - nameW - valueW - 8));
    const r = el('rect', { class: `bar ${cls}`, x: nameW, y: y + 4, width: w, height: row - 9, rx: 3 });
    r.append(el('title', {}, `${item.name}: ${format(item.value)}`));
    svg.append(r);
    svg.append(el('text', { x: nameW + w + 6, y: y + 15 }, format(item.value)));
  });
  if (!shown.length) emptyNote(svg, 'nothing to show');
  container.replaceChildren(svg);
  svg.dataset.points = String(shown.length);
}
