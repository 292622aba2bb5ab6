// The analytics page: numbers of the workspace's executions over a time window, as SVG charts,
// for the whole workspace or drilled down to one saved request or one endpoint. What is shown
// lives in the URL (?w=…&window=…&request_id=… or &method=…&endpoint=…&protocol=…), so reload,
// back and forward work; drilling down pushes a history entry.
import { api, h, fmtMs } from './api.js';

const ws = document.body.dataset.workspace;
const $ = (id) => document.getElementById(id);

$('ws-select')?.addEventListener('change', (ev) => location.assign('/app/analytics?w=' + encodeURIComponent(ev.target.value)));
$('signout')?.addEventListener('click', async () => { try { await api('POST', '/api/auth/logout'); } finally { location.assign('/'); } });
$('ws-new')?.addEventListener('click', () => location.assign('/app'));

/** A duration for people: two significant digits at most, in µs, ms, s, min, h or d. */
export function fmtDur(ms) {
  if (!(ms > 0)) return '0';
  const round = (v) => (v >= 10 ? String(Math.round(v)) : String(Math.round(v * 10) / 10));
  if (ms < 1) return `${round(ms * 1000)} µs`;
  if (ms < 1000) return `${round(ms)} ms`;
  if (ms < 60000) return `${round(ms / 1000)} s`;
  if (ms < 3600000) return `${round(ms / 60000)} min`;
  if (ms < 86400000) return `${round(ms / 3600000)} h`;
  return `${round(ms / 86400000)} d`;
}

// ---------------------------------------------------------------------------------------------
// State in the URL

const FILTERS = ['request_id', 'method', 'endpoint', 'protocol'];
const WINDOWS = ['15m', '1h', '24h', '7d', '30d'];

function fromUrl() {
  const q = new URLSearchParams(location.search);
  const s = { window: WINDOWS.includes(q.get('window')) ? q.get('window') : '24h' };
  for (const k of FILTERS) if (q.get(k)) s[k] = q.get(k);
  return s;
}

function urlOf(s) {
  const q = new URLSearchParams({ w: ws, window: s.window });
  for (const k of FILTERS) if (s[k]) q.set(k, s[k]);
  return '/app/analytics?' + q;
}

let state = fromUrl();
function go(next, push = true) {
  state = next;
  history[push ? 'pushState' : 'replaceState'](null, '', urlOf(state));
  load();
}
window.addEventListener('popstate', () => { state = fromUrl(); load(); });

/** A link that changes what is shown without leaving the page (and still opens in a new tab). */
function link(next, label, attrs = {}) {
  return h('a', { href: urlOf(next), ...attrs, onclick: (ev) => {
    if (ev.button || ev.ctrlKey || ev.metaKey || ev.shiftKey) return;
    ev.preventDefault();
    go(next);
  } }, label);
}

function requestName(id) {
  const opt = [...($('an-request')?.options || [])].find((o) => o.value === id);
  return opt ? opt.textContent : 'request';
}

/** The breadcrumb: workspace › what is drilled into, with the way back. */
function crumbs() {
  const nav = $('an-crumbs');
  const home = { window: state.window };
  const filtered = FILTERS.some((k) => state[k]);
  const parts = [filtered ? link(home, nav.dataset.name, { id: 'an-home' }) : h('span', { 'aria-current': 'page' }, nav.dataset.name)];
  if (state.request_id) parts.push(' › ', h('span', { 'aria-current': 'page' }, `Request: ${requestName(state.request_id)}`));
  if (state.endpoint || state.method) parts.push(' › ', h('span', { 'aria-current': 'page', class: 'mono' }, `${state.method || ''} ${state.endpoint || ''}`.trim()));
  if (filtered) parts.push(' ', link(home, '← Back to workspace', { id: 'an-back', class: 'button' }));
  nav.replaceChildren(...parts);
  const sel = $('an-request');
  if (sel) sel.value = state.request_id || '';
}

$('an-request')?.addEventListener('change', (ev) => go({ window: state.window, ...(ev.target.value ? { request_id: ev.target.value } : {}) }));
for (const b of document.querySelectorAll('#window [data-window]')) b.addEventListener('click', () => go({ ...state, window: b.dataset.window }, false));

// ---------------------------------------------------------------------------------------------
// Charts

const NONE = 'No executions in this window.';
const empty = () => h('p', { class: 'muted empty' }, NONE);

function cards(a) {
  const items = [
    ['Requests', a.count], ['Errors', a.failures],
    ['Error rate', a.count ? `${(a.error_rate * 100).toFixed(1)} %` : '—'],
    ['P50', a.count ? fmtDur(a.latency_ms.p50) : '—'], ['P95', a.count ? fmtDur(a.latency_ms.p95) : '—'],
    ['P99', a.count ? fmtDur(a.latency_ms.p99) : '—'],
  ];
  $('an-cards').replaceChildren(...items.map(([k, v]) => h('div', { 'data-card': k }, h('span', { class: 'muted' }, k), h('b', {}, String(v)))));
  $('an-empty').hidden = a.count > 0;
}

/** A round number ≥ n for the top of an axis. */
function niceMax(n) {
  if (n <= 5) return Math.max(1, Math.ceil(n));
  const p = 10 ** Math.floor(Math.log10(n));
  return [1, 2, 2.5, 5, 10].map((m) => m * p).find((v) => v >= n);
}

/** Where a time falls on the axis, and its label (clock time, or a date for longer windows). */
function timeLabel(t, long) {
  const d = new Date(t);
  return long ? d.toLocaleDateString([], { month: 'short', day: 'numeric' }) : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

/** Stacked bars of successes and failures per bucket, on the window's real time axis: one
 *  bucket is one narrow bar where it happened, not a block filling the chart. */
function series(a) {
  const box = $('an-series');
  if (!a.count || !a.series.length) { box.replaceChildren(empty()); return; }
  const W = 560, H = 220, L = 36, R = 24, T = 20, B = 40;
  const plotW = W - L - R, plotH = H - T - B, base = T + plotH;
  const from = Date.parse(a.from), to = Date.parse(a.to), step = a.bucket_seconds * 1000;
  const x = (t) => L + ((t - from) / (to - from)) * plotW;
  const slot = (plotW * step) / (to - from);
  const bw = Math.max(3, Math.min(slot - 2, 40));
  const max = niceMax(Math.max(...a.series.map((p) => p.count)));
  const svg = h('svg', { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'Successes and failures over time' });
  for (const v of max >= 2 ? [0, max / 2, max] : [0, max]) {
    const y = base - (v / max) * plotH;
    svg.append(h('line', { class: 'grid', x1: L, x2: W - R, y1: y, y2: y }), h('text', { class: 'ytick', x: L - 4, y: y + 4, 'text-anchor': 'end' }, String(v)));
  }
  // At most six ticks, on bucket starts (whole minutes, hours or days).
  const long = to - from > 2 * 86400000;
  const buckets = Math.round((to - from) / step);
  const every = Math.max(1, Math.ceil(buckets / 5));
  for (let k = 0; k <= buckets; k += every) {
    const t = from + k * step;
    const anchor = k === 0 ? 'start' : x(t) > W - R - 30 ? 'end' : 'middle';
    svg.append(h('line', { class: 'grid', x1: x(t), x2: x(t), y1: base, y2: base + 4 }), h('text', { class: 'xtick', x: x(t), y: base + 16, 'text-anchor': anchor }, timeLabel(t, long)));
  }
  const few = a.series.length <= 3;
  for (const p of a.series) {
    const t = Date.parse(p.start);
    const x0 = x(t) + Math.max(0, (slot - bw) / 2);
    const ok = p.count - p.failures;
    const hOk = (ok / max) * plotH, hErr = (p.failures / max) * plotH;
    svg.append(h('g', { class: 'bucket' }, h('title', {}, `${new Date(t).toLocaleString()}: ${ok} ok, ${p.failures} failed, p95 ${fmtDur(p.p95_ms)}`),
      h('rect', { class: 'ok', x: x0, y: base - hOk, width: bw, height: hOk }),
      h('rect', { class: 'err', x: x0, y: base - hOk - hErr, width: bw, height: hErr }),
      few ? h('text', { class: 'count', x: x0 + bw / 2, y: base - hOk - hErr - 4, 'text-anchor': 'middle' }, String(p.count)) : null));
  }
  svg.append(h('text', { class: 'muted', x: L, y: H - 4 }, `one bar per ${fmtDur(step)}`));
  box.replaceChildren(svg, h('p', { class: 'legend muted' }, h('span', { class: 'sw ok' }), ' success ', h('span', { class: 'sw err' }), ' failure'));
}

/** Bars per doubling of the duration, at least eight of them (so one busy doubling is a bar
 *  among empty neighbours), labelled with human durations spaced so that they never overlap. */
function histogram(a) {
  const box = $('an-histogram');
  const bins = (a.histogram || []).map((b) => ({ le: b.le_ms, n: b.count }));
  if (!a.count || !bins.length) { box.replaceChildren(empty()); return; }
  while (bins.length < 8) {
    if (bins.length % 2 && bins[0].le / 2 >= 0.001) bins.unshift({ le: bins[0].le / 2, n: 0 });
    else bins.push({ le: bins[bins.length - 1].le * 2, n: 0 });
  }
  const W = 560, H = 220, L = 36, R = 28, T = 20, B = 40;
  const plotW = W - L - R, plotH = H - T - B, base = T + plotH;
  const max = niceMax(Math.max(...bins.map((b) => b.n)));
  const slot = plotW / bins.length;
  const svg = h('svg', { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'Latency histogram' });
  for (const v of max >= 2 ? [0, max / 2, max] : [0, max]) {
    const y = base - (v / max) * plotH;
    svg.append(h('line', { class: 'grid', x1: L, x2: W - R, y1: y, y2: y }), h('text', { class: 'ytick', x: L - 4, y: y + 4, 'text-anchor': 'end' }, String(v)));
  }
  const labels = bins.map((b) => fmtDur(b.le));
  // ~6.5 px per character at 11 px; every k-th label so neighbours keep a gap.
  const widest = Math.max(...labels.map((l) => l.length)) * 6.5 + 8;
  const every = Math.max(1, Math.ceil(widest / slot));
  bins.forEach((b, i) => {
    const bh = (b.n / max) * plotH;
    const lower = i ? fmtDur(bins[i - 1].le) : '0';
    svg.append(h('g', { class: 'bin' }, h('title', {}, `${lower} – ${labels[i]}: ${b.n}`),
      h('rect', { class: 'bar-h', x: L + i * slot + 1, y: base - bh, width: Math.max(slot - 2, 1), height: bh })));
    if ((bins.length - 1 - i) % every === 0) {
      svg.append(h('text', { class: 'xtick', x: L + (i + 1) * slot, y: base + 16, 'text-anchor': 'middle' }, labels[i]));
    }
  });
  svg.append(h('text', { class: 'muted', x: L, y: H - 4 }, 'upper bound of each bar'));
  box.replaceChildren(svg);
}

let topBy = 'by_count';
function top(a) {
  const all = a.top_endpoints || {};
  const list = all[topBy] || [];
  const switcher = h('div', { class: 'subtabs', role: 'radiogroup', 'aria-label': 'Rank endpoints by', id: 'an-rank' },
    [['by_count', 'Most requests'], ['by_p99', 'Slowest (p99)'], ['by_error_rate', 'Most errors']].map(([k, label]) =>
      h('button', { role: 'radio', type: 'button', 'aria-checked': String(k === topBy), onclick: () => { topBy = k; top(a); } }, label)));
  $('an-rank')?.remove();
  const table = $('an-top');
  table.before(switcher);
  table.replaceChildren(h('tr', {}, h('th', {}, 'Endpoint'), h('th', {}, 'Requests'), h('th', {}, 'Errors'), h('th', {}, 'P50'), h('th', {}, 'P95'), h('th', {}, 'P99')),
    ...list.map((e) => {
      const name = `${e.method || ''} ${e.endpoint}`.trim();
      const next = { window: state.window, endpoint: e.endpoint, protocol: e.protocol, ...(e.method ? { method: e.method } : {}) };
      return h('tr', { 'data-endpoint': e.endpoint }, h('td', {}, link(next, name, { class: 'mono', title: `Analytics of ${name} only` })),
        h('td', {}, String(e.count)), h('td', {}, String(e.failures)),
        h('td', {}, fmtDur(e.p50_ms)), h('td', {}, fmtDur(e.p95_ms)), h('td', {}, fmtDur(e.p99_ms)));
    }));
  if (!list.length) table.append(h('tr', {}, h('td', { colspan: 6 }, NONE)));
  const services = a.services || [];
  $('an-services')?.remove();
  if (services.length) {
    table.after(h('div', { id: 'an-services' }, h('h2', {}, 'Services (from spans)'), h('table', { class: 'table' },
      h('tr', {}, h('th', {}, 'Service'), h('th', {}, 'Spans'), h('th', {}, 'Errors'), h('th', {}, 'P95')),
      services.map((v) => h('tr', {}, h('td', {}, v.service), h('td', {}, String(v.spans)), h('td', {}, String(v.errors)), h('td', {}, fmtMs(v.p95_ms)))))));
  }
}

let seq = 0;
async function load() {
  for (const b of document.querySelectorAll('#window [data-window]')) b.setAttribute('aria-checked', String(b.dataset.window === state.window));
  crumbs();
  $('an-error').textContent = '';
  const mine = ++seq;
  const q = new URLSearchParams({ window: state.window });
  for (const k of FILTERS) if (state[k]) q.set(k, state[k]);
  try {
    const a = await api('GET', `/api/workspaces/${ws}/analytics?${q}`);
    if (mine !== seq) return;
    cards(a); series(a); histogram(a); top(a);
    document.body.dataset.loaded = urlOf(state);
  } catch (err) {
    if (mine !== seq) return;
    $('an-error').textContent = err.message + (err.code ? ` (${err.code})` : '');
  }
}

if (ws) { history.replaceState(null, '', urlOf(state)); load(); }
