// The trace panel: a Gantt waterfall and a service map, both SVG, filled live from the control
// plane's SSE stream (/api/traces/{id}/stream) as spans are stored.
import { h, fmtMs } from './api.js';

const PALETTE = ['#6246ea', '#0f8f8f', '#d6409f', '#b7700b', '#2d6cdf', '#1d8a4e', '#8a5a00', '#7a4fd6', '#c0392b', '#3d7a9e'];
const ROW = 22;
const LABEL = 260;

export class TraceView {
  constructor() {
    this.gantt = document.getElementById('gantt');
    this.map = document.getElementById('svcmap');
    this.detail = document.getElementById('span-detail');
    this.idLabel = document.getElementById('trace-id');
    this.live = document.getElementById('trace-live');
    this.spans = new Map();
    this.collapsed = new Set();
    this.colors = new Map();
    this.source = null;
    this.pending = false;
    for (const tab of document.querySelectorAll('#trace-panel [data-tview][role=tab]')) {
      tab.addEventListener('click', () => {
        for (const t of document.querySelectorAll('#trace-panel [role=tab]')) t.setAttribute('aria-selected', String(t === tab));
        for (const v of document.querySelectorAll('#trace-panel .tview')) v.hidden = v.dataset.tview !== tab.dataset.tview;
        this.render();
      });
    }
    new ResizeObserver(() => this.schedule()).observe(this.gantt);
  }

  /** Shows `traceId`: `initial` spans now, the rest as the stream delivers them. */
  open(traceId, workspaceId, initial = []) {
    this.close();
    this.traceId = traceId;
    this.spans = new Map();
    this.collapsed = new Set();
    this.selected = null;
    this.detail.replaceChildren();
    this.idLabel.textContent = traceId ? `trace ${traceId}` : '';
    for (const span of initial) this.add(span);
    this.render();
    if (!traceId) return;
    const url = `/api/traces/${encodeURIComponent(traceId)}/stream` + (workspaceId ? `?workspace_id=${encodeURIComponent(workspaceId)}` : '');
    const source = new EventSource(url);
    this.source = source;
    this.live.hidden = false;
    source.onmessage = (ev) => { try { this.add(JSON.parse(ev.data)); } catch { /* not a span */ } };
    source.addEventListener('complete', () => this.close());
    source.onerror = () => this.close();
  }

  close() {
    if (this.source) this.source.close();
    this.source = null;
    this.live.hidden = true;
  }

  add(span) {
    if (!span || !span.span_id) return;
    this.spans.set(span.span_id, span);
    this.schedule();
  }

  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.render(); });
  }

  color(service) {
    if (!this.colors.has(service)) this.colors.set(service, PALETTE[this.colors.size % PALETTE.length]);
    return this.colors.get(service);
  }

  /** Spans as a depth-first list of {span, depth, children}. */
  rows() {
    const children = new Map();
    const roots = [];
    for (const s of this.spans.values()) {
      if (s.parent_span_id && this.spans.has(s.parent_span_id)) {
        if (!children.has(s.parent_span_id)) children.set(s.parent_span_id, []);
        children.get(s.parent_span_id).push(s);
      } else roots.push(s);
    }
    const byStart = (a, b) => a.start - b.start;
    const out = [];
    const walk = (s, depth) => {
      const kids = (children.get(s.span_id) || []).sort(byStart);
      out.push({ span: s, depth, kids: kids.length });
      if (!this.collapsed.has(s.span_id)) for (const k of kids) walk(k, depth + 1);
    };
    for (const r of roots.sort(byStart)) walk(r, 0);
    return out;
  }

  render() {
    if (!this.spans.size) {
      this.gantt.replaceChildren(h('p', { class: 'muted' }, this.traceId ? 'Waiting for spans…' : 'Send a request to see its trace.'));
      this.map.replaceChildren();
      return;
    }
    if (!this.gantt.hidden) this.renderGantt();
    if (!this.map.hidden) this.renderMap();
  }

  renderGantt() {
    const rows = this.rows();
    const all = [...this.spans.values()];
    const t0 = Math.min(...all.map((s) => s.start));
    const t1 = Math.max(...all.map((s) => s.end));
    const total = Math.max(t1 - t0, 1);
    const width = Math.max(this.gantt.clientWidth - 4, 500);
    const plot = width - LABEL - 70;
    const height = (rows.length + 1) * ROW + 4;
    const svg = h('svg', { width, height, role: 'tree', 'aria-label': `Trace waterfall, ${all.length} spans` });
    for (let i = 0; i <= 4; i++) {
      const x = LABEL + (plot * i) / 4;
      svg.append(h('line', { class: 'grid', x1: x, x2: x, y1: 0, y2: height }),
        h('text', { x: x + 3, y: 13, fill: '#646b80' }, fmtMs((total * i) / 4 / 1e6)));
    }
    rows.forEach(({ span, depth, kids }, i) => {
      const y = (i + 1) * ROW;
      const x = LABEL + ((span.start - t0) / total) * plot;
      const w = Math.max(((span.end - span.start) / total) * plot, 2);
      const err = span.status_code === 'error';
      const g = h('g', {
        class: 'bar' + (this.selected === span.span_id ? ' selected' : ''), tabindex: 0, role: 'treeitem',
        'aria-level': depth + 1, 'aria-expanded': kids ? String(!this.collapsed.has(span.span_id)) : null,
        'aria-label': `${span.service}: ${span.name}, ${fmtMs((span.end - span.start) / 1e6)}${err ? ', error' : ''}`,
        'data-span': span.span_id,
      });
      const indent = 6 + depth * 12;
      if (kids) {
        g.append(h('text', { x: indent - 2, y: y + 15, class: 'twisty', 'data-toggle': span.span_id }, this.collapsed.has(span.span_id) ? '▸' : '▾'));
      }
      const label = `${span.service} ${span.name}`;
      g.append(
        h('rect', { x: 0, y: y + 1, width, height: ROW - 2, fill: 'transparent' }),
        h('text', { x: indent + 10, y: y + 15 }, h('title', {}, label), label.length > 36 - depth * 2 ? label.slice(0, 34 - depth * 2) + '…' : label),
        h('rect', { class: 'fill', x, y: y + 4, width: w, height: ROW - 8, rx: 2, fill: this.color(span.service), opacity: err ? 1 : 0.85 }),
        h('text', { x: Math.min(x + w + 4, width - 66), y: y + 15 }, fmtMs((span.end - span.start) / 1e6)),
      );
      if (err) g.append(h('path', { class: 'err-mark', d: `M${x - 9} ${y + 17} l4 -10 l4 10 z` }, h('title', {}, span.status_message || 'error')));
      svg.append(g);
    });
    svg.addEventListener('click', (ev) => this.pick(ev));
    svg.addEventListener('keydown', (ev) => {
      const g = ev.target.closest?.('.bar');
      if (!g) return;
      if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); this.select(g.dataset.span); }
      if (ev.key === 'ArrowLeft' || ev.key === 'ArrowRight') {
        ev.preventDefault();
        if (ev.key === 'ArrowLeft') this.collapsed.add(g.dataset.span); else this.collapsed.delete(g.dataset.span);
        this.renderGantt();
        this.gantt.querySelector(`[data-span="${g.dataset.span}"]`)?.focus();
      }
      if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
        ev.preventDefault();
        const next = ev.key === 'ArrowDown' ? g.nextElementSibling : g.previousElementSibling;
        if (next?.classList.contains('bar')) next.focus();
      }
    });
    this.gantt.replaceChildren(svg);
  }

  pick(ev) {
    const toggle = ev.target.closest('[data-toggle]');
    if (toggle) {
      const id = toggle.dataset.toggle;
      if (this.collapsed.has(id)) this.collapsed.delete(id); else this.collapsed.add(id);
      this.renderGantt();
      return;
    }
    const g = ev.target.closest('.bar');
    if (g) this.select(g.dataset.span);
  }

  select(spanId) {
    this.selected = spanId;
    for (const g of this.gantt.querySelectorAll('.bar')) g.classList.toggle('selected', g.dataset.span === spanId);
    const s = this.spans.get(spanId);
    if (!s) return;
    const t0 = Math.min(...[...this.spans.values()].map((x) => x.start));
    const dl = h('dl', {},
      ...[
        ['Span', s.name], ['Service', s.service], ['Kind', s.kind], ['Status', s.status_code + (s.status_message ? `: ${s.status_message}` : '')],
        ['Duration', fmtMs((s.end - s.start) / 1e6)], ['Starts at', '+' + fmtMs((s.start - t0) / 1e6)],
        ['Span id', s.span_id], ['Parent id', s.parent_span_id || '—'], ['Trace id', s.trace_id],
      ].flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, String(v))]));
    const attrs = (title, obj) => {
      const entries = Object.entries(obj || {});
      if (!entries.length) return [];
      return [h('h3', {}, title), h('table', { class: 'table' }, entries.map(([k, v]) => h('tr', {}, h('td', {}, k), h('td', {}, typeof v === 'string' ? v : JSON.stringify(v)))))];
    };
    const events = (s.events || []).length
      ? [h('h3', {}, 'Events'), h('ul', {}, s.events.map((e) => h('li', {}, `+${fmtMs((e.time - s.start) / 1e6)} ${e.name}`, Object.keys(e.attributes || {}).length ? ' ' + JSON.stringify(e.attributes) : '')))]
      : [];
    this.detail.replaceChildren(dl, ...attrs('Attributes', s.attributes), ...events, ...attrs('Resource', s.resource_attributes));
  }

  renderMap() {
    const spans = [...this.spans.values()];
    const services = new Map();
    const edges = new Map();
    for (const s of spans) {
      const node = services.get(s.service) || { name: s.service, spans: 0, errors: 0 };
      node.spans++;
      if (s.status_code === 'error') node.errors++;
      services.set(s.service, node);
      const parent = s.parent_span_id && this.spans.get(s.parent_span_id);
      if (parent && parent.service !== s.service) {
        const key = `${parent.service}\u0000${s.service}`;
        const e = edges.get(key) || { from: parent.service, to: s.service, calls: 0, errors: 0 };
        e.calls++;
        if (s.status_code === 'error') e.errors++;
        edges.set(key, e);
      }
    }
    // Layers: a service sits one layer right of the deepest service calling it (cycles cut).
    const layer = new Map([...services.keys()].map((k) => [k, 0]));
    for (let pass = 0; pass < services.size; pass++) {
      for (const e of edges.values()) {
        if (layer.get(e.to) < layer.get(e.from) + 1 && layer.get(e.from) + 1 < services.size) layer.set(e.to, layer.get(e.from) + 1);
      }
    }
    const columns = [];
    for (const [name, l] of layer) (columns[l] ||= []).push(name);
    const W = 170, H = 64, GX = 90, GY = 30;
    const pos = new Map();
    columns.forEach((col, c) => col.forEach((name, r) => pos.set(name, { x: 10 + c * (W + GX), y: 10 + r * (H + GY) })));
    const width = 20 + columns.length * (W + GX);
    const height = 20 + Math.max(...columns.map((c) => c.length)) * (H + GY);
    const svg = h('svg', { width, height, role: 'img', 'aria-label': `Service map: ${services.size} services, ${edges.size} connections` },
      h('defs', {}, h('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 8, markerHeight: 8, orient: 'auto-start-reverse' }, h('path', { d: 'M0 0 L10 5 L0 10 z', fill: '#9aa1b4' }))));
    for (const e of edges.values()) {
      const a = pos.get(e.from), b = pos.get(e.to);
      const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
      const back = x2 <= x1;
      const d = back ? `M${a.x + W / 2} ${a.y + H} C ${a.x + W / 2} ${a.y + H + 40}, ${b.x + W / 2} ${b.y + H + 40}, ${b.x + W / 2} ${b.y + H}` : `M${x1} ${y1} C ${x1 + 40} ${y1}, ${x2 - 40} ${y2}, ${x2} ${y2}`;
      svg.append(h('path', { class: 'edge' + (e.errors ? ' err' : ''), d, 'marker-end': 'url(#arrow)' }),
        h('text', { x: (x1 + x2) / 2 - 30, y: (y1 + y2) / 2 - 6, class: 'edge-label' }, `${e.calls} call${e.calls === 1 ? '' : 's'}${e.errors ? ` · ${e.errors} err` : ''}`));
    }
    for (const n of services.values()) {
      const p = pos.get(n.name);
      svg.append(h('g', { class: 'svc', 'data-service': n.name },
        h('rect', { x: p.x, y: p.y, width: W, height: H, rx: 8, fill: '#fff', stroke: n.errors ? '#c6283b' : this.color(n.name), 'stroke-width': 2 }),
        h('rect', { x: p.x, y: p.y, width: 8, height: H, rx: 3, fill: this.color(n.name) }),
        h('text', { x: p.x + 16, y: p.y + 26, 'font-weight': 600 }, n.name.length > 22 ? n.name.slice(0, 21) + '…' : n.name),
        h('text', { x: p.x + 16, y: p.y + 46 }, `${n.spans} span${n.spans === 1 ? '' : 's'}${n.errors ? ` · ${n.errors} errors` : ''}`)));
    }
    this.map.replaceChildren(svg);
  }
}
