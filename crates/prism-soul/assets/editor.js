// The request editor: fills the form from a request's fields and reads them back, keeps the URL
// and the params table in sync, and finds {{variables}}.
import { h } from './api.js';

const $ = (id) => document.getElementById(id);

/** A key/value table with an enabled box per row and an empty row to type into. */
export function kvTable(container, rows, onChange, { readOnly = false } = {}) {
  const table = h('table');
  const addRow = (row = { key: '', value: '', enabled: true }) => {
    const tr = h('tr', {},
      h('td', {}, h('input', { type: 'checkbox', 'aria-label': 'Enabled', checked: row.enabled !== false, disabled: readOnly })),
      h('td', {}, h('input', { type: 'text', class: 'k', placeholder: 'Key', value: row.key ?? '', 'aria-label': 'Key', readonly: readOnly, spellcheck: 'false' })),
      h('td', {}, h('input', { type: 'text', class: 'v', placeholder: 'Value', value: row.value ?? '', 'aria-label': 'Value', readonly: readOnly, spellcheck: 'false' })),
      h('td', {}, readOnly ? '' : h('button', { type: 'button', 'aria-label': 'Remove row', title: 'Remove', onclick: () => { tr.remove(); ensureBlank(); onChange(); } }, '×')));
    table.append(tr);
    return tr;
  };
  const ensureBlank = () => {
    if (readOnly) return;
    const last = table.lastElementChild;
    if (!last || last.querySelector('.k').value || last.querySelector('.v').value) addRow();
  };
  for (const row of rows) addRow(row);
  ensureBlank();
  table.addEventListener('input', () => { ensureBlank(); onChange(); });
  table.addEventListener('change', onChange);
  container.replaceChildren(table);
  return {
    rows: () => [...table.querySelectorAll('tr')]
      .map((tr) => ({ key: tr.querySelector('.k').value, value: tr.querySelector('.v').value, enabled: tr.querySelector('input[type=checkbox]').checked }))
      .filter((r) => r.key || r.value),
    set(rowsNew) { table.replaceChildren(); for (const r of rowsNew) addRow(r); ensureBlank(); },
  };
}

/** Splits `?a=1&b` of a URL (raw text, {{vars}} kept) into rows. */
export function paramsOf(url) {
  const q = url.indexOf('?');
  if (q < 0) return [];
  const query = url.slice(q + 1).split('#')[0];
  if (!query) return [];
  return query.split('&').filter(Boolean).map((pair) => {
    const i = pair.indexOf('=');
    return { key: i < 0 ? pair : pair.slice(0, i), value: i < 0 ? '' : pair.slice(i + 1), enabled: true };
  });
}

/** The URL with its query replaced by the enabled rows. */
export function withParams(url, rows) {
  const hash = url.indexOf('#') >= 0 ? url.slice(url.indexOf('#')) : '';
  const base = url.split('#')[0].split('?')[0];
  const query = rows.filter((r) => r.enabled && r.key).map((r) => (r.value === '' ? r.key : `${r.key}=${r.value}`)).join('&');
  return base + (query ? '?' + query : '') + hash;
}

/** The distinct {{names}} used anywhere in a value (strings inside objects and lists too). */
export function variablesIn(value, found = new Set()) {
  if (typeof value === 'string') {
    for (const m of value.matchAll(/\{\{\s*([^{}\s]+)\s*\}\}/g)) found.add(m[1]);
  } else if (Array.isArray(value)) {
    for (const v of value) variablesIn(v, found);
  } else if (value && typeof value === 'object') {
    for (const v of Object.values(value)) variablesIn(v, found);
  }
  return found;
}

function bodyOf(fields) {
  const b = fields.body;
  if (b == null || b === '') return { kind: 'none', text: '', form: [] };
  if (typeof b === 'string') return { kind: 'raw', text: b, form: [] };
  if (b.kind === 'json') return { kind: 'json', text: b.text ?? '', form: [] };
  if (b.kind === 'raw') return { kind: 'raw', text: b.text ?? '', form: [] };
  if (b.kind === 'form') return { kind: 'form', text: '', form: b.fields || [] };
  if (b.kind === 'none') return { kind: 'none', text: '', form: [] };
  return { kind: 'json', text: JSON.stringify(b, null, 2), form: [] };
}

function textOf(v) {
  if (v == null) return '';
  return typeof v === 'string' ? v : JSON.stringify(v, null, 2);
}

/** A gRPC method's call kind, as the pickers show it. */
export function callKind(m) {
  if (m.client_streaming) return m.server_streaming ? 'bidi' : 'client-streaming';
  return m.server_streaming ? 'server-streaming' : 'unary';
}

/** The listed service a typed name means: its full name, or its simple name. */
function serviceNamed(services, typed) {
  const name = typed.trim().replace(/^\./, '');
  if (!name) return null;
  return services.find((s) => s.name === name) || services.find((s) => s.name.split('.').pop() === name) || null;
}

/** The editor bound to the DOM skeleton the server rendered. */
export class Editor {
  constructor(onChange) {
    this.onChange = onChange;
    this.readOnly = false;
    this.syncing = false;
    const changed = () => { if (!this.syncing) this.onChange(); };
    this.params = kvTable($('r-params'), [], () => { this.paramsChanged(); changed(); });
    this.headers = kvTable($('r-headers'), [], changed);
    this.metadata = kvTable($('r-metadata'), [], changed);
    this.form = kvTable($('r-form'), [], changed);
    for (const id of ['r-method', 'r-address', 'r-body', 'r-query', 'r-variables', 'r-operation', 'r-service', 'r-grpc-method', 'r-tls', 'r-timeout', 'r-proto', 'r-message']) {
      $(id).addEventListener('input', changed);
      $(id).addEventListener('change', changed);
    }
    $('r-url').addEventListener('input', () => { this.urlChanged(); changed(); });
    $('r-protocol').addEventListener('change', () => { this.showProtocol(); this.scheduleServices(); changed(); });
    $('r-body-kind').addEventListener('change', () => { this.showBodyKind(); changed(); });
    $('r-format').addEventListener('click', () => this.formatJson());
    // gRPC pickers: filled from the services the page's `lister` returns ({body, list}; none for
    // viewers). The text boxes stay the source of truth, so a failed load keeps free-text entry.
    this.lister = null;
    this.services = null;
    this.listedKey = null;
    this.listSeq = 0;
    this.listTimer = 0;
    for (const id of ['r-address', 'r-proto']) $(id).addEventListener('input', () => this.scheduleServices());
    $('r-tls').addEventListener('change', () => this.scheduleServices());
    $('g-load').addEventListener('click', () => this.listServices(true));
    $('g-service').addEventListener('change', () => {
      $('r-service').value = $('g-service').value;
      $('r-grpc-method').value = '';
      this.renderPickers();
      changed();
    });
    $('g-method').addEventListener('change', () => {
      $('r-grpc-method').value = $('g-method').value;
      this.renderPickers();
      changed();
    });
    for (const id of ['r-service', 'r-grpc-method']) $(id).addEventListener('input', () => this.renderPickers());
    for (const tab of document.querySelectorAll('#editor .subtabs [role=tab]')) {
      tab.addEventListener('click', () => this.showPane(tab.dataset.pane));
    }
  }

  urlChanged() {
    this.syncing = true;
    const disabled = this.params.rows().filter((r) => !r.enabled);
    this.params.set([...paramsOf($('r-url').value), ...disabled]);
    this.syncing = false;
  }

  paramsChanged() {
    if (this.syncing) return;
    $('r-url').value = withParams($('r-url').value, this.params.rows());
  }

  formatJson() {
    const area = $('r-body');
    const err = document.querySelector('#editor .field-error[data-for=body]');
    try {
      area.value = JSON.stringify(JSON.parse(area.value), null, 2);
      err.textContent = '';
      this.onChange();
    } catch (e) {
      err.textContent = 'Not valid JSON: ' + e.message;
    }
  }

  showProtocol() {
    const protocol = $('r-protocol').value;
    for (const el of document.querySelectorAll('#editor [data-only]')) {
      el.hidden = !el.dataset.only.split(' ').includes(protocol);
    }
    const current = document.querySelector('#editor .subtabs [aria-selected=true]');
    if (!current || current.hidden) {
      this.showPane({ rest: 'params', graphql: 'query', grpc: 'service' }[protocol]);
    }
  }

  /** Lists the services again shortly after the address or the proto stopped changing. */
  scheduleServices() {
    clearTimeout(this.listTimer);
    this.listTimer = setTimeout(() => this.listServices(false), 600);
  }

  /** Loads the services into the pickers (`force`: even if nothing changed since the last load). */
  async listServices(force) {
    if ($('r-protocol').value !== 'grpc') return;
    const status = $('g-status');
    if (!this.lister) {
      if (force) status.textContent = 'Loading services needs the editor role.';
      return;
    }
    const fields = this.read();
    if (!fields.server_address) {
      if (force) status.textContent = 'Enter the server address first.';
      return;
    }
    const body = this.lister.body(fields);
    const key = JSON.stringify([body.server_address, body.proto_files, body.use_tls, body.metadata, body.environment_id]);
    if (!force && key === this.listedKey) return;
    this.listedKey = key;
    const seq = ++this.listSeq;
    status.textContent = 'Loading services…';
    $('g-address-error').textContent = '';
    $('g-proto-error').textContent = '';
    try {
      const answer = await this.lister.list(body);
      if (seq !== this.listSeq) return;
      this.services = answer.services || [];
      const n = this.services.length;
      status.textContent = n ? `${n} service${n === 1 ? '' : 's'}` : 'The server lists no services.';
    } catch (e) {
      if (seq !== this.listSeq) return;
      this.services = null;
      this.listedKey = null;
      status.textContent = `Could not load services: ${e.message}`;
      const proto = e.code === 'invalid_proto' || e.field === 'proto_files';
      $(proto ? 'g-proto-error' : 'g-address-error').textContent = e.message + (e.code ? ` (${e.code})` : '');
    }
    this.renderPickers();
  }

  /** Shows the pickers for the listed services, selecting what the text boxes name. */
  renderPickers() {
    const services = this.services || [];
    const svcPick = $('g-service');
    const methodPick = $('g-method');
    svcPick.hidden = methodPick.hidden = !services.length;
    const service = serviceNamed(services, $('r-service').value);
    svcPick.replaceChildren(h('option', { value: '' }, 'Choose a service…'),
      ...services.map((s) => h('option', { value: s.name, selected: s === service }, s.name)));
    const methods = service ? service.methods : [];
    const typed = $('r-grpc-method').value.trim();
    const method = methods.find((m) => m.name === typed) || null;
    methodPick.replaceChildren(h('option', { value: '' }, service ? 'Choose a method…' : 'Choose a service first'),
      ...methods.map((m) => h('option', { value: m.name, selected: m === method }, `${m.name} — ${callKind(m)}`)));
    const hint = $('g-hint');
    hint.hidden = !method?.client_streaming;
    hint.textContent = method?.client_streaming
      ? `${method.name} is ${callKind(method)}: write the messages as a JSON list, e.g. [{…}, {…}] (${method.input_type}).`
      : '';
  }

  showPane(name) {
    for (const tab of document.querySelectorAll('#editor .subtabs [role=tab]')) {
      tab.setAttribute('aria-selected', String(tab.dataset.pane === name));
    }
    for (const pane of document.querySelectorAll('#editor .pane')) pane.hidden = pane.dataset.pane !== name;
  }

  showBodyKind() {
    const kind = $('r-body-kind').value;
    $('r-body').hidden = kind === 'none' || kind === 'form';
    $('r-form').hidden = kind !== 'form';
    $('r-format').hidden = kind !== 'json';
  }

  /** Fills the form from API fields. */
  load(fields, readOnly) {
    this.syncing = true;
    this.readOnly = readOnly;
    const protocol = fields.protocol || 'rest';
    $('r-protocol').value = protocol;
    const method = (protocol === 'rest' ? fields.method : 'GET') || 'GET';
    const sel = $('r-method');
    if (![...sel.options].some((o) => o.value === method)) sel.append(h('option', {}, method));
    sel.value = method;
    // Saved requests keep the query in `params`; the URL box shows it in the URL too.
    const url = fields.url || '';
    const params = fields.params?.length ? fields.params : paramsOf(url);
    $('r-url').value = url.includes('?') ? url : withParams(url, params);
    this.params.set(params);
    this.headers.set(fields.headers || []);
    const body = bodyOf(protocol === 'rest' ? fields : {});
    $('r-body-kind').value = body.kind;
    $('r-body').value = body.text;
    this.form.set(body.form);
    $('r-query').value = fields.query || '';
    $('r-variables').value = textOf(fields.variables);
    $('r-operation').value = fields.operation_name || '';
    $('r-address').value = fields.server_address || '';
    $('r-service').value = fields.service || '';
    $('r-grpc-method').value = protocol === 'grpc' ? fields.method || '' : '';
    $('r-tls').checked = !!fields.use_tls;
    $('r-timeout').value = fields.timeout_ms ?? '';
    $('r-proto').value = (fields.proto_files || []).map((f) => f.content).join('\n\n');
    this.protoName = fields.proto_files?.[0]?.name || 'request.proto';
    this.metadata.set(fields.metadata || []);
    $('r-message').value = protocol === 'grpc' ? textOf(fields.body) : '';
    for (const el of document.querySelectorAll('#editor input, #editor textarea, #editor select')) {
      if (el.type === 'checkbox' || el.tagName === 'SELECT') el.disabled = readOnly;
      else el.readOnly = readOnly;
    }
    $('r-save').hidden = readOnly;
    $('editor').classList.toggle('ro', readOnly);
    this.showProtocol();
    this.showBodyKind();
    // Another request: its own services (listed again when it is a gRPC one).
    this.services = null;
    this.listedKey = null;
    this.listSeq++;
    $('g-status').textContent = '';
    this.renderPickers();
    if (protocol === 'grpc' && !readOnly) this.scheduleServices();
    this.syncing = false;
  }

  /** The API fields the form holds. */
  read() {
    const protocol = $('r-protocol').value;
    if (protocol === 'rest') {
      const kind = $('r-body-kind').value;
      let body = null;
      if (kind === 'json') body = { kind: 'json', text: $('r-body').value };
      else if (kind === 'raw') body = { kind: 'raw', text: $('r-body').value };
      else if (kind === 'form') body = { kind: 'form', fields: this.form.rows() };
      // The executor appends `params` to the URL, so the URL goes without its query.
      const url = $('r-url').value.trim().split('#')[0].split('?')[0];
      return { protocol, method: $('r-method').value, url, params: this.params.rows(), headers: this.headers.rows(), body };
    }
    if (protocol === 'graphql') {
      return {
        protocol, url: $('r-url').value.trim(), headers: this.headers.rows(), query: $('r-query').value,
        variables: $('r-variables').value.trim() || null, operation_name: $('r-operation').value.trim() || null,
      };
    }
    const proto = $('r-proto').value;
    const timeout = parseInt($('r-timeout').value, 10);
    return {
      protocol, server_address: $('r-address').value.trim(), service: $('r-service').value.trim(),
      method: $('r-grpc-method').value.trim(), use_tls: $('r-tls').checked, metadata: this.metadata.rows(),
      proto_files: proto.trim() ? [{ name: this.protoName || 'request.proto', content: proto }] : [],
      body: $('r-message').value.trim() || null, timeout_ms: Number.isFinite(timeout) ? timeout : null,
    };
  }
}
