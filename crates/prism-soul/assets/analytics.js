// The analytics page: numbers of the workspace's executions over a time window, as SVG charts.
import { api, h, fmtMs } from './api.js';

const ws = document.body.dataset.workspace;
const $ = (id) => document.getElementById(id);

$('ws-select')?.addEventListener('change', (ev) => location.assign('/app/analytics?w=' + encodeURIComponent(ev.target.value)));
$('signout')?.addEventListener('click', async () => { try { await api('POST', '/api/auth/logout'); } finally { location.assign('/'); } });
$('ws-new')?.addEventListener('click', () => location.assign('/app'));

const num = (v) => (typeof v === 'number' ? v : v == null ? null : Number(v));
const pick = (o, ...keys) => { for (const k of keys) { const v = k.split('.').reduce((x, p) => x?.[p], o); if (v !== undefined && v !== null) return v; } return null; };

function cards(a) {
  const total = num(pick(a, 'total', 'count', 'summary.total', 'summary.count', 'totals.count', 'requests'));
  const failed = num(pick(a, 'failures', 'failed', 'errors', 'summary.failed', 'summary.errors', 'totals.failed'));
  const items = [
    ['Requests', total ?? '—'],
    ['Errors', failed ?? '—'],
    ['Error rate', total ? `${(((failed || 0) / total) * 100).toFixed(1)} %` : '—'],
    ['P50', fmtMs(num(pick(a, 'p50_ms', 'latency.p50_ms', 'summary.p50_ms', 'latency_ms.p50', 'percentiles.p50'))) || '—'],
    ['P95', fmtMs(num(pick(a, 'p95_ms', 'latency.p95_ms', 'summary.p95_ms', 'latency_ms.p95', 'percentiles.p95'))) || '—'],
    ['P99', fmtMs(num(pick(a, 'p99_ms', 'latency.p99_ms', 'summary.p99_ms', 'latency_ms.p99', 'percentiles.p99'))) || '—'],
  ];
  $('an-cards').replaceChildren(...items.map(([k, v]) => h('div', { 'data-card': k }, h('span', { class: 'muted' }, k), h('b', {}, String(v)))));
}

/** Stacked bars of successes and failures per bucket. */
function series(a) {
  const buckets = pick(a, 'series', 'buckets', 'timeseries', 'over_time') || [];
  const W = 520, H = 200, P = 30;
  const svg = h('svg', { width: W, height: H + P, role: 'img', 'aria-label': 'Successes and failures over time' });
  if (!buckets.length) { $('an-series').replaceChildren(h('p', { class: 'muted' }, 'No executions in this window.')); return; }
  const rows = buckets.map((b) => {
    const total = num(pick(b, 'total', 'count', 'requests')) || 0;
    const failed = num(pick(b, 'failures', 'failed', 'errors')) || 0;
    const ok = num(pick(b, 'succeeded', 'success', 'ok')) ?? total - failed;
    return { t: pick(b, 'start', 'time', 'bucket', 't'), ok, failed };
  });
  const max = Math.max(1, ...rows.map((r) => r.ok + r.failed));
  const bw = (W - P) / rows.length;
  svg.append(h('line', { class: 'grid', x1: P, x2: W, y1: H, y2: H }), h('text', { x: 0, y: 12 }, String(max)), h('text', { x: 0, y: H }, '0'));
  rows.forEach((r, i) => {
    const x = P + i * bw;
    const hOk = (r.ok / max) * (H - 10), hErr = (r.failed / max) * (H - 10);
    svg.append(h('g', {}, h('title', {}, `${r.t}: ${r.ok} ok, ${r.failed} failed`),
      h('rect', { x: x + 1, y: H - hOk, width: Math.max(bw - 2, 1), height: hOk, fill: '#1d8a4e' }),
      h('rect', { x: x + 1, y: H - hOk - hErr, width: Math.max(bw - 2, 1), height: hErr, fill: '#c6283b' })));
  });
  $('an-series').replaceChildren(svg, h('p', { class: 'muted' }, '■ success (green) ■ failure (red)'));
}

function histogram(a) {
  const bins = pick(a, 'histogram', 'latency_histogram', 'latency.histogram') || [];
  if (!bins.length) { $('an-histogram').replaceChildren(h('p', { class: 'muted' }, 'No latencies in this window.')); return; }
  const W = 520, H = 200, P = 30;
  const max = Math.max(1, ...bins.map((b) => num(pick(b, 'count', 'n')) || 0));
  const bw = (W - P) / bins.length;
  const svg = h('svg', { width: W, height: H + 40, role: 'img', 'aria-label': 'Latency histogram' });
  bins.forEach((b, i) => {
    const c = num(pick(b, 'count', 'n')) || 0;
    const label = pick(b, 'label', 'le_ms', 'upper_ms', 'le', 'max_ms');
    const bh = (c / max) * (H - 10);
    svg.append(h('g', {}, h('title', {}, `≤ ${label} ms: ${c}`), h('rect', { x: P + i * bw + 1, y: H - bh, width: Math.max(bw - 2, 1), height: bh, fill: '#6246ea' })),
      h('text', { x: P + i * bw + 2, y: H + 14 + (i % 2) * 12 }, label == null ? '' : String(label)));
  });
  $('an-histogram').replaceChildren(svg);
}

let topBy = 'by_count';
function top(a) {
  const all = pick(a, 'top_endpoints', 'endpoints', 'top') || [];
  // The API ranks endpoints three ways; a plain list is shown as it comes.
  const list = Array.isArray(all) ? all : all[topBy] || [];
  const switcher = Array.isArray(all) ? null : h('div', { class: 'subtabs', role: 'radiogroup', 'aria-label': 'Rank endpoints by' },
    [['by_count', 'Most requests'], ['by_p99', 'Slowest (p99)'], ['by_error_rate', 'Most errors']].map(([k, label]) =>
      h('button', { role: 'radio', 'aria-checked': String(k === topBy), onclick: () => { topBy = k; top(a); } }, label)));
  const table = $('an-top');
  table.previousElementSibling?.classList.contains('subtabs') && table.previousElementSibling.remove();
  if (switcher) table.before(switcher);
  table.replaceChildren(h('tr', {}, h('th', {}, 'Endpoint'), h('th', {}, 'Requests'), h('th', {}, 'Errors'), h('th', {}, 'P50'), h('th', {}, 'P95'), h('th', {}, 'P99')),
    ...list.map((e) => {
      const name = `${pick(e, 'method') || ''} ${pick(e, 'endpoint', 'url', 'target', 'name') || ''}`.trim();
      return h('tr', {}, h('td', {}, name),
        h('td', {}, String(pick(e, 'count', 'total', 'requests') ?? '')), h('td', {}, String(pick(e, 'failures', 'failed', 'errors') ?? '')),
        h('td', {}, fmtMs(num(pick(e, 'p50_ms')))), h('td', {}, fmtMs(num(pick(e, 'p95_ms', 'p95')))), h('td', {}, fmtMs(num(pick(e, 'p99_ms')))));
    }));
  if (!list.length) table.append(h('tr', {}, h('td', { colspan: 6 }, 'No executions in this window.')));
  const services = pick(a, 'services') || [];
  $('an-services')?.remove();
  if (services.length) {
    table.after(h('div', { id: 'an-services' }, h('h2', {}, 'Services (from spans)'), h('table', { class: 'table' },
      h('tr', {}, h('th', {}, 'Service'), h('th', {}, 'Spans'), h('th', {}, 'Errors'), h('th', {}, 'P95')),
      services.map((v) => h('tr', {}, h('td', {}, v.service), h('td', {}, String(v.spans)), h('td', {}, String(v.errors)), h('td', {}, fmtMs(num(v.p95_ms))))))));
  }
}

async function load(window) {
  for (const b of document.querySelectorAll('#window [data-window]')) b.setAttribute('aria-checked', String(b.dataset.window === window));
  $('an-error').textContent = '';
  try {
    const a = await api('GET', `/api/workspaces/${ws}/analytics?window=${window}`);
    cards(a); series(a); histogram(a); top(a);
  } catch (err) {
    $('an-error').textContent = err.status === 404 ? 'Analytics are not available on this server yet.' : err.message;
  }
}

for (const b of document.querySelectorAll('#window [data-window]')) b.addEventListener('click', () => load(b.dataset.window));
if (ws) load(new URLSearchParams(location.search).get('window') || '24h');
