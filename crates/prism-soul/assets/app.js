// The workbench: workspaces, the collections tree, environments, history, request tabs, sending,
// the response and the trace. Everything goes through the JSON API; the tree is re-rendered by the
// server (/app/tree/{workspace}) after each change so there is one tree renderer.
import { api, h, showError, clearErrors, fmtBytes, fmtMs, toSignin } from './api.js';
import { Editor, variablesIn } from './editor.js';
import { TraceView } from './trace.js';

const $ = (id) => document.getElementById(id);
const ws = document.body.dataset.workspace || null;
const role = document.body.dataset.role || null;
const canEdit = role === 'editor' || role === 'admin';
/** Bodies longer than this are shown truncated (the whole stays downloadable and copyable). */
const SHOW_MAX = 200 * 1024;

// ---------------------------------------------------------------------------------------------
// Dialog: one <dialog> reused; `ok` may throw an ApiError, shown next to its field.

function openDialog(title, body, ok, { okLabel = 'OK', danger = false } = {}) {
  const dlg = $('dlg');
  $('dlg-title').textContent = title;
  $('dlg-body').replaceChildren(...[body].flat());
  $('dlg-ok').textContent = okLabel;
  $('dlg-ok').classList.toggle('danger', danger);
  $('dlg-ok').hidden = !ok;
  clearErrors(dlg);
  const form = $('dlg-form');
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    clearErrors(dlg);
    $('dlg-ok').disabled = true;
    try {
      // `ok` answers false to keep the dialog open (e.g. to add several members).
      if (!ok || (await ok()) !== false) dlg.close();
    } catch (err) {
      showError(dlg, err, $('dlg-error'));
    } finally {
      $('dlg-ok').disabled = false;
    }
  };
  $('dlg-cancel').onclick = () => dlg.close();
  dlg.showModal();
  dlg.querySelector('input, select, textarea')?.focus();
}

function ask(title, label, value, save) {
  const input = h('input', { name: 'name', value, required: true, 'aria-label': label });
  openDialog(title, [h('label', {}, label, input), h('p', { class: 'field-error', 'data-for': 'name' })], () => save(input.value.trim()), { okLabel: 'Save' });
  input.select();
}

// ---------------------------------------------------------------------------------------------
// Top bar

$('ws-select')?.addEventListener('change', (ev) => location.assign('/app?w=' + encodeURIComponent(ev.target.value)));
$('ws-new')?.addEventListener('click', () => ask('New workspace', 'Name', '', async (name) => {
  const created = await api('POST', '/api/workspaces', { name });
  location.assign('/app?w=' + created.id);
}));
$('signout')?.addEventListener('click', async () => {
  try { await api('POST', '/api/auth/logout'); } finally { location.assign('/'); }
});
$('first-ws')?.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const form = ev.target;
  try {
    const created = await api('POST', '/api/workspaces', { name: form.name.value.trim() });
    location.assign('/app?w=' + created.id);
  } catch (err) { showError(form, err, form.querySelector('.field-error')); }
});

$('ws-members')?.addEventListener('click', membersDialog);

async function membersDialog() {
  const list = h('table', { class: 'table' });
  const error = h('p', { class: 'error', role: 'alert' });
  const refresh = async () => {
    const members = await api('GET', `/api/workspaces/${ws}/members`);
    list.replaceChildren(...members.map((m) => {
      const select = h('select', { 'aria-label': `Role of ${m.email}` }, ['viewer', 'editor', 'admin'].map((r) => h('option', { value: r, selected: r === m.role }, r)));
      select.addEventListener('change', async () => {
        try { error.textContent = ''; await api('PATCH', `/api/workspaces/${ws}/members/${m.user_id}`, { role: select.value }); } catch (e) { error.textContent = e.message; select.value = m.role; }
      });
      const remove = h('button', { type: 'button', class: 'danger', onclick: async () => {
        try { error.textContent = ''; await api('DELETE', `/api/workspaces/${ws}/members/${m.user_id}`); await refresh(); } catch (e) { error.textContent = e.message; }
      } }, 'Remove');
      return h('tr', {}, h('td', {}, `${m.name} <${m.email}>`), h('td', {}, select), h('td', {}, remove));
    }));
  };
  const email = h('input', { type: 'email', name: 'email', placeholder: 'colleague@example.com', 'aria-label': 'Email' });
  const roleSel = h('select', { name: 'role', 'aria-label': 'Role' }, ['viewer', 'editor', 'admin'].map((r) => h('option', { value: r }, r)));
  openDialog('Members', [list, error, h('h3', {}, 'Add a member'), h('div', { class: 'row-flex' }, email, roleSel),
    h('p', { class: 'field-error', 'data-for': 'email' }), h('p', { class: 'field-error', 'data-for': 'role' })], async () => {
    await api('POST', `/api/workspaces/${ws}/members`, { email: email.value.trim(), role: roleSel.value });
    email.value = '';
    await refresh();
    return false;
  }, { okLabel: 'Add' });
  try { await refresh(); } catch (e) { error.textContent = e.message; }
}

// ---------------------------------------------------------------------------------------------
// Collections tree: selection, keyboard, filter, actions.

let selected = null; // {kind, id, name}

function treeRows() { return [...document.querySelectorAll('#tree .row')].filter((r) => r.offsetParent); }

function select(li, focus = true) {
  for (const el of document.querySelectorAll('#tree .selected')) el.classList.remove('selected');
  for (const r of document.querySelectorAll('#tree .row[tabindex="0"]')) r.tabIndex = -1;
  selected = li ? { kind: li.dataset.kind, id: li.dataset.id, name: li.dataset.name } : null;
  if (li) {
    li.classList.add('selected');
    const row = li.querySelector(':scope > .row');
    row.tabIndex = 0;
    if (focus) row.focus();
  }
  for (const b of document.querySelectorAll('#tree-actions button')) {
    const act = b.dataset.act;
    b.disabled = !selected || ((act === 'new-request' || act === 'new-folder') && selected.kind !== 'collection');
  }
}

function initTree() {
  const first = document.querySelector('#tree .row');
  if (first) first.tabIndex = 0;
  applyFilter();
}

$('tree')?.addEventListener('click', (ev) => {
  const row = ev.target.closest('.row');
  if (!row) return;
  const li = row.parentElement;
  if (ev.target.closest('.twisty')) { toggle(li); return; }
  select(li);
  if (li.dataset.kind === 'request') openRequest(li.dataset.id);
});
$('tree')?.addEventListener('dblclick', (ev) => {
  const li = ev.target.closest('.col');
  if (li && ev.target.closest('.row') === li.querySelector(':scope > .row')) toggle(li);
});
$('tree')?.addEventListener('keydown', (ev) => {
  const row = ev.target.closest('.row');
  if (!row) return;
  const li = row.parentElement;
  const rows = treeRows();
  const i = rows.indexOf(row);
  const move = (r) => { if (r) select(r.parentElement); };
  switch (ev.key) {
    case 'ArrowDown': move(rows[i + 1]); break;
    case 'ArrowUp': move(rows[i - 1]); break;
    case 'ArrowRight': if (li.getAttribute('aria-expanded') === 'false') toggle(li); else move(rows[i + 1]); break;
    case 'ArrowLeft': if (li.getAttribute('aria-expanded') === 'true') toggle(li); else move(li.parentElement.closest('.node')?.querySelector(':scope > .row')); break;
    case 'Enter': select(li); if (li.dataset.kind === 'request') openRequest(li.dataset.id); else toggle(li); break;
    case 'F2': if (canEdit) treeAction('rename'); break;
    case 'Delete': if (canEdit) treeAction('delete'); break;
    default: return;
  }
  ev.preventDefault();
});

function toggle(li) {
  if (!li.classList.contains('col')) return;
  li.setAttribute('aria-expanded', String(li.getAttribute('aria-expanded') === 'false'));
}

function applyFilter() {
  const q = ($('tree-filter')?.value || '').trim().toLowerCase();
  const nodes = document.querySelectorAll('#tree .node');
  for (const n of nodes) n.classList.remove('filtered-out');
  if (!q) return;
  // A request shows when its name matches; a collection when it or anything inside matches.
  const visit = (li) => {
    const own = li.dataset.name.toLowerCase().includes(q);
    let any = own;
    for (const child of li.querySelectorAll(':scope > ul > .node')) if (visit(child) || own) any = true;
    if (own) for (const d of li.querySelectorAll('.node')) d.classList.remove('filtered-out');
    li.classList.toggle('filtered-out', !any);
    return any;
  };
  for (const top of document.querySelectorAll('#tree > .tree > .node')) visit(top);
}
$('tree-filter')?.addEventListener('input', applyFilter);

async function reloadTree(selectId) {
  const res = await fetch(`/app/tree/${ws}`, { credentials: 'same-origin' });
  if (res.status === 401) return toSignin();
  $('tree').innerHTML = await res.text(); // server-rendered and escaped
  initTree();
  const li = selectId && document.querySelector(`#tree [data-id="${CSS.escape(selectId)}"]`);
  select(li || null, !!li);
}

// Drag and drop (editors; viewers' rows are not draggable): a request or folder dropped on a
// collection or folder moves there with the same API as the Move dialog, which stays the keyboard
// way. A refused move (say, a folder into its own subfolder) shows the server's reason and the
// tree stays as it was.
let dragged = null;
const clearDrop = () => { for (const el of document.querySelectorAll('#tree .drop-target')) el.classList.remove('drop-target'); };
function dropTarget(ev) {
  const col = dragged && ev.target.closest?.('#tree .col');
  // Onto itself, or where it already is: nothing to do.
  if (!col || col === dragged || dragged.parentElement.closest('.node') === col) return null;
  return col;
}
if (canEdit) {
  $('tree')?.addEventListener('dragstart', (ev) => {
    dragged = ev.target.closest?.('.node') || null;
    if (!dragged) return;
    ev.dataTransfer.effectAllowed = 'move';
    ev.dataTransfer.setData('text/plain', dragged.dataset.name);
    dragged.classList.add('dragging');
    $('tree-error').textContent = '';
  });
  $('tree')?.addEventListener('dragend', () => { dragged?.classList.remove('dragging'); dragged = null; clearDrop(); });
  $('tree')?.addEventListener('dragover', (ev) => {
    const col = dropTarget(ev);
    if (!col) { clearDrop(); return; }
    ev.preventDefault();
    ev.dataTransfer.dropEffect = 'move';
    if (!col.classList.contains('drop-target')) { clearDrop(); col.classList.add('drop-target'); }
  });
  $('tree')?.addEventListener('dragleave', (ev) => { if (!$('tree').contains(ev.relatedTarget)) clearDrop(); });
  $('tree')?.addEventListener('drop', async (ev) => {
    const col = dropTarget(ev);
    const li = dragged;
    clearDrop();
    if (!col || !li) return;
    ev.preventDefault();
    const request = li.dataset.kind === 'request';
    try {
      await api('PATCH', request ? `/api/requests/${li.dataset.id}` : `/api/collections/${li.dataset.id}`,
        request ? { collection_id: col.dataset.id } : { parent_id: col.dataset.id });
      await reloadTree(li.dataset.id);
    } catch (err) {
      $('tree-error').textContent = `Could not move “${li.dataset.name}” into “${col.dataset.name}”: ${err.message}${err.code ? ` (${err.code})` : ''}`;
    }
  });
}

$('col-new')?.addEventListener('click', () => ask('New collection', 'Name', '', async (name) => {
  const c = await api('POST', `/api/workspaces/${ws}/collections`, { name });
  await reloadTree(c.id);
}));

for (const b of document.querySelectorAll('#tree-actions button')) b.addEventListener('click', () => treeAction(b.dataset.act));

async function treeAction(act) {
  if (!selected) return;
  const { kind, id, name } = selected;
  const base = kind === 'collection' ? `/api/collections/${id}` : `/api/requests/${id}`;
  const error = $('tree-error');
  error.textContent = '';
  try {
    if (act === 'new-request') {
      ask('New request', 'Name', 'New request', async (n) => {
        const r = await api('POST', `/api/collections/${id}/requests`, { name: n, protocol: 'rest', method: 'GET', url: 'https://' });
        await reloadTree(r.id);
        openRequest(r.id);
      });
    } else if (act === 'new-folder') {
      ask('New folder', 'Name', '', async (n) => {
        const c = await api('POST', `/api/workspaces/${ws}/collections`, { name: n, parent_id: id });
        await reloadTree(c.id);
      });
    } else if (act === 'rename') {
      ask(`Rename ${kind}`, 'Name', name, async (n) => {
        await api('PATCH', base, { name: n });
        await reloadTree(id);
        for (const t of tabs) if (t.id === id) { t.name = n; }
        renderTabs();
      });
    } else if (act === 'move') {
      // Targets: every collection or folder but the item itself and what is inside it.
      const self = document.querySelector(`#tree [data-id="${CSS.escape(id)}"]`);
      const options = [...document.querySelectorAll('#tree .col')]
        .filter((li) => kind === 'request' || (li !== self && !self.contains(li)))
        .map((li) => {
          const path = [];
          for (let n = li; n; n = n.parentElement.closest('.col')) path.unshift(n.dataset.name);
          return h('option', { value: li.dataset.id }, path.join(' / '));
        });
      if (kind === 'collection') options.unshift(h('option', { value: '' }, '(top level)'));
      const target = h('select', { name: kind === 'request' ? 'collection_id' : 'parent_id', 'aria-label': 'Move into' }, options);
      openDialog(`Move “${name}”`, [h('label', {}, 'Into', target), h('p', { class: 'field-error', 'data-for': target.name })], async () => {
        await api('PATCH', base, kind === 'request' ? { collection_id: target.value } : { parent_id: target.value || null });
        await reloadTree(id);
      }, { okLabel: 'Move' });
    } else if (act === 'duplicate') {
      const copy = await api('POST', `${base}/duplicate`, {});
      await reloadTree(copy.id);
    } else if (act === 'delete') {
      openDialog(`Delete ${kind}`, h('p', {}, `Delete “${name}”${kind === 'collection' ? ' and everything in it' : ''}? This cannot be undone.`), async () => {
        await api('DELETE', base);
        for (const t of [...tabs]) if (t.id === id) closeTab(t, true);
        await reloadTree();
      }, { okLabel: 'Delete', danger: true });
    }
  } catch (err) {
    error.textContent = err.message;
  }
}

// ---------------------------------------------------------------------------------------------
// Environments: the active one is remembered per workspace in this browser.

const envKey = `prism.env.${ws}`;
let envVars = [];
async function loadEnv() {
  const sel = $('env-select');
  if (!sel) return;
  const wanted = localStorage.getItem(envKey) || '';
  if ([...sel.options].some((o) => o.value === wanted)) sel.value = wanted;
  envVars = [];
  if (sel.value) {
    try { envVars = (await api('GET', `/api/environments/${sel.value}`)).variables || []; } catch { envVars = []; }
  }
  showVars();
}
$('env-select')?.addEventListener('change', (ev) => { localStorage.setItem(envKey, ev.target.value); loadEnv(); editor?.scheduleServices(); });
$('env-new')?.addEventListener('click', () => ask('New environment', 'Name', '', async (name) => {
  const env = await api('POST', `/api/workspaces/${ws}/environments`, { name, variables: [] });
  $('env-select').append(h('option', { value: env.id }, env.name));
  $('env-select').value = env.id;
  localStorage.setItem(envKey, env.id);
  await loadEnv();
  // After this dialog has closed: the editor reuses it.
  setTimeout(() => envDialog(env.id));
}));
$('env-edit')?.addEventListener('click', () => { const id = $('env-select').value; if (id) envDialog(id); });

async function envDialog(id) {
  const env = await api('GET', `/api/environments/${id}`);
  const name = h('input', { name: 'name', value: env.name, 'aria-label': 'Environment name', readonly: !canEdit });
  const rows = h('tbody');
  const addRow = (v = { key: '', value: '', secret: false, enabled: true }) => {
    const masked = v.secret && v.value == null;
    const value = h('input', { type: v.secret ? 'password' : 'text', class: 'v mono', value: v.value ?? '', placeholder: masked ? '•••••• (unchanged)' : 'value', 'aria-label': 'Value', readonly: !canEdit });
    value.dataset.masked = masked ? '1' : '';
    value.addEventListener('input', () => { value.dataset.masked = ''; });
    const secret = h('input', { type: 'checkbox', class: 's', checked: !!v.secret, 'aria-label': 'Secret', disabled: !canEdit });
    secret.addEventListener('change', () => { value.type = secret.checked ? 'password' : 'text'; });
    const tr = h('tr', {},
      h('td', {}, h('input', { type: 'checkbox', class: 'e', checked: v.enabled !== false, 'aria-label': 'Enabled', disabled: !canEdit })),
      h('td', {}, h('input', { class: 'k mono', value: v.key, placeholder: 'name', 'aria-label': 'Name', readonly: !canEdit })),
      h('td', {}, value), h('td', {}, h('label', {}, secret, ' secret')),
      h('td', {}, canEdit ? h('button', { type: 'button', 'aria-label': 'Remove', onclick: () => tr.remove() }, '×') : ''));
    rows.append(tr);
  };
  const fill = (vars) => { rows.replaceChildren(); for (const v of vars || []) addRow(v); if (canEdit) addRow(); };
  fill(env.variables);
  const body = [h('label', {}, 'Name', name), h('p', { class: 'field-error', 'data-for': 'name' }),
    h('table', { class: 'table env-table' }, rows), h('p', { class: 'field-error', 'data-for': 'variables' })];
  if (canEdit) {
    body.push(h('div', { class: 'row-flex' },
      h('button', { type: 'button', onclick: () => addRow() }, '+ Variable'),
      h('button', { type: 'button', onclick: async () => {
        try { fill((await api('POST', `/api/environments/${id}/reveal`)).variables); } catch (e) { $('dlg-error').textContent = e.message; }
      } }, 'Reveal secrets'),
      h('button', { type: 'button', class: 'danger', onclick: async () => {
        try { await api('DELETE', `/api/environments/${id}`); localStorage.removeItem(envKey); location.reload(); } catch (e) { $('dlg-error').textContent = e.message; }
      } }, 'Delete environment')));
  }
  openDialog('Environment', body, canEdit ? async () => {
    const variables = [...rows.querySelectorAll('tr')].map((tr) => {
      const value = tr.querySelector('.v');
      return {
        key: tr.querySelector('.k').value.trim(), value: value.dataset.masked ? null : value.value,
        secret: tr.querySelector('.s').checked, enabled: tr.querySelector('.e').checked,
      };
    }).filter((v) => v.key);
    const saved = await api('PUT', `/api/environments/${id}`, { name: name.value.trim(), variables });
    const opt = $('env-select').querySelector(`option[value="${CSS.escape(id)}"]`);
    if (opt) opt.textContent = saved.name;
    await loadEnv();
  } : null, { okLabel: 'Save' });
}

function knownVars() { return new Set(envVars.filter((v) => v.enabled !== false).map((v) => v.key)); }

function showVars() {
  const box = $('r-vars');
  if (!box || !current) return [];
  const used = [...variablesIn(editor.read())];
  const known = knownVars();
  const unknown = used.filter((v) => !known.has(v));
  box.replaceChildren(...used.map((v) => h('span', { class: 'var' + (known.has(v) ? '' : ' unknown'), title: known.has(v) ? 'defined in the environment' : 'not defined in the active environment' }, `{{${v}}}`)));
  return unknown;
}

// ---------------------------------------------------------------------------------------------
// Tabs of open requests

const tabs = [];
let current = null;
let tabSeq = 0;
const editor = ws && $('editor') ? new Editor(() => edited()) : null;
// Listing a gRPC server's services contacts it, like an ad-hoc send: editors only.
if (editor && canEdit) {
  editor.lister = {
    body: (fields) => ({ ...fields, timeout_ms: fields.timeout_ms ?? 10000, environment_id: $('env-select')?.value || undefined }),
    list: (body) => api('POST', `/api/workspaces/${ws}/grpc/services`, body),
  };
}

function edited() {
  if (!current || current.readOnly) return;
  current.fields = editor.read();
  renderTabs();
  showVars();
}

function dirty(t) { return !t.readOnly && JSON.stringify(t.fields) !== t.saved; }

function renderTabs() {
  const an = $('r-analytics');
  if (an) {
    an.hidden = !current?.id;
    if (current?.id) an.href = `/app/analytics?w=${encodeURIComponent(ws)}&window=24h&request_id=${encodeURIComponent(current.id)}`;
  }
  const bar = $('tabs');
  bar.replaceChildren(...tabs.map((t) => h('div', { class: 'tab', role: 'tab', 'aria-selected': String(t === current), 'data-key': t.key },
    h('button', { type: 'button', class: 't-name' + (dirty(t) ? ' dirty' : ''), title: t.name, onclick: () => activate(t) }, t.name),
    h('button', { type: 'button', class: 't-close', 'aria-label': `Close ${t.name}`, title: 'Close', onclick: () => closeTab(t) }, '×'))),
  h('button', { type: 'button', id: 'tab-new', class: 't-new', title: 'New unsaved request', 'aria-label': 'New unsaved request', onclick: newScratch }, '+'));
}

function activate(t) {
  current = t;
  $('welcome').hidden = true;
  $('editor').hidden = false;
  clearErrors($('editor'));
  editor.load(t.fields, t.readOnly || (!canEdit && !!t.id));
  renderTabs();
  showVars();
  showResponse(t.response);
  if (t.traceId) trace.open(t.traceId, ws, t.spans || []);
}

function closeTab(t, force = false) {
  if (!force && dirty(t) && !confirm(`Discard unsaved changes to “${t.name}”?`)) return;
  tabs.splice(tabs.indexOf(t), 1);
  if (current === t) {
    current = null;
    if (tabs.length) activate(tabs[tabs.length - 1]);
    else { $('editor').hidden = true; $('response').hidden = true; $('welcome').hidden = false; renderTabs(); }
  } else renderTabs();
}

const FIELD_KEYS = ['protocol', 'method', 'url', 'params', 'headers', 'body', 'settings', 'query', 'variables', 'operation_name', 'server_address', 'service', 'proto_files', 'metadata', 'use_tls', 'tls', 'timeout_ms'];
function fieldsOf(obj) {
  const out = {};
  for (const k of FIELD_KEYS) if (obj[k] !== undefined) out[k] = obj[k];
  return out;
}

async function openRequest(id) {
  const open = tabs.find((t) => t.id === id);
  if (open) return activate(open);
  try {
    const r = await api('GET', `/api/requests/${id}`);
    const t = { key: ++tabSeq, id, name: r.name, fields: null, saved: '' };
    tabs.push(t);
    // The form normalises what it loads; "saved" is what it reads back, so a fresh tab is clean.
    editor.load(fieldsOf(r), !canEdit);
    t.fields = editor.read();
    t.saved = JSON.stringify(t.fields);
    activate(t);
  } catch (err) {
    $('tree-error').textContent = err.message;
  }
}

function newScratch() {
  const t = { key: ++tabSeq, id: null, name: 'Unsaved request', fields: { protocol: 'rest', method: 'GET', url: '' }, saved: '' };
  tabs.push(t);
  activate(t);
}
$('scratch')?.addEventListener('click', newScratch);

async function save() {
  if (!current || current.readOnly || !canEdit) return;
  const t = current;
  const err = $('r-error');
  clearErrors($('editor'));
  try {
    if (!t.id) {
      if (!selected || selected.kind !== 'collection') { err.textContent = 'Select a collection in the sidebar to save this request into.'; return; }
      const r = await api('POST', `/api/collections/${selected.id}/requests`, { name: t.name, ...t.fields });
      t.id = r.id;
      await reloadTree(r.id);
    } else {
      await api('PUT', `/api/requests/${t.id}`, { name: t.name, ...t.fields });
      await reloadTree(t.id);
    }
    t.saved = JSON.stringify(t.fields);
    renderTabs();
  } catch (e) {
    showError($('editor'), e, err);
  }
}
$('r-save')?.addEventListener('click', save);

// ---------------------------------------------------------------------------------------------
// Sending

let confirmUnknown = null;
async function send() {
  if (!current) return;
  const t = current;
  clearErrors($('editor'));
  const unknown = showVars();
  const key = JSON.stringify([t.key, t.fields, unknown]);
  if (unknown.length && confirmUnknown !== key) {
    confirmUnknown = key;
    $('r-error').textContent = `Not defined in the active environment: ${unknown.map((u) => `{{${u}}}`).join(', ')}. Press Send again to send anyway.`;
    return;
  }
  confirmUnknown = null;
  const environment_id = $('env-select')?.value || undefined;
  const button = $('r-send');
  button.disabled = true;
  button.textContent = 'Sending…';
  try {
    const answer = t.id && !dirty(t)
      ? await api('POST', `/api/requests/${t.id}/send`, { environment_id })
      : await api('POST', `/api/workspaces/${ws}/send`, { ...t.fields, environment_id });
    t.response = answer;
    t.traceId = answer.trace_id;
    t.spans = answer.spans || [];
    if (current === t) {
      showResponse(answer);
      trace.open(answer.trace_id, ws, t.spans);
    }
    loadHistory(false, answer.execution_id);
  } catch (e) {
    showError($('editor'), e, $('r-error'));
  } finally {
    button.disabled = false;
    button.textContent = 'Send';
  }
}
$('r-send')?.addEventListener('click', send);

document.addEventListener('keydown', (ev) => {
  const mod = ev.ctrlKey || ev.metaKey;
  if (mod && ev.key === 'Enter' && current) { ev.preventDefault(); send(); }
  if (mod && (ev.key === 's' || ev.key === 'S') && current) { ev.preventDefault(); save(); }
});

window.addEventListener('beforeunload', (ev) => {
  if (tabs.some(dirty)) { ev.preventDefault(); ev.returnValue = ''; }
});

// ---------------------------------------------------------------------------------------------
// Response panel

let bodyText = '';
let downloadUrl = null;

function statusBadge(a) {
  const el = $('resp-status');
  if (a.status_name !== undefined || a.status_code !== undefined) {
    const ok = a.status_code === 0;
    el.className = 'status ' + (a.status_code == null ? 's-err' : ok ? 's-2' : 's-5');
    el.textContent = a.status_code == null ? (a.error_kind || 'error') : `${a.status_code} ${a.status_name || ''}`;
    return;
  }
  if (a.status == null) { el.className = 'status s-err'; el.textContent = a.error_kind || 'error'; return; }
  el.className = `status s-${String(a.status)[0]}`;
  el.textContent = String(a.status);
}

function pretty(text, headers) {
  const type = Object.entries(headers || {}).find(([k]) => k.toLowerCase() === 'content-type')?.[1] || '';
  const t = text.trimStart();
  if (type.includes('json') || t.startsWith('{') || t.startsWith('[')) {
    try { return JSON.stringify(JSON.parse(text), null, 2); } catch { /* as is */ }
  }
  if (type.includes('xml') || type.includes('html') || t.startsWith('<')) {
    return text.replace(/>\s*</g, '>\n<');
  }
  return text;
}

function showResponse(a) {
  const panel = $('response');
  if (!a) { panel.hidden = true; return; }
  panel.hidden = false;
  statusBadge(a);
  $('resp-time').textContent = fmtMs(a.duration_ms);
  $('resp-size').textContent = fmtBytes(a.response_size);
  const notes = [];
  if (a.error_msg) notes.push(a.error_msg);
  let text = a.body ?? '';
  if (a.body_encoding === 'base64') notes.push('Binary body, shown as base64.');
  else text = pretty(text, a.headers);
  if (a.body_truncated || a.truncated) notes.push('The data plane kept only the start of this body.');
  bodyText = text;
  if (downloadUrl) URL.revokeObjectURL(downloadUrl);
  downloadUrl = URL.createObjectURL(new Blob([a.body ?? ''], { type: 'text/plain' }));
  $('resp-download').href = downloadUrl;
  if (text.length > SHOW_MAX) notes.push(`Showing the first ${fmtBytes(SHOW_MAX)} of ${fmtBytes(text.length)}; Download or Copy for the whole body.`);
  $('resp-note').textContent = notes.join(' ');
  renderBody();
  const headerRows = a.header_list?.length ? a.header_list.map((x) => [x.name, x.value]) : Object.entries(a.headers || a.response_headers || {});
  const trailers = Object.entries(a.response_trailers || {});
  $('resp-headers').replaceChildren(...headerRows.map(([k, v]) => h('tr', {}, h('td', {}, k), h('td', {}, v))),
    ...(trailers.length ? [h('tr', {}, h('th', { colspan: 2 }, 'Trailers'))] : []), ...trailers.map(([k, v]) => h('tr', {}, h('td', {}, k), h('td', {}, v))));
  $('resp-cookies').replaceChildren(...(a.set_cookies || []).map((c) => {
    const [pair, ...attrs] = c.split(';');
    const i = pair.indexOf('=');
    return h('tr', {}, h('td', {}, pair.slice(0, i).trim()), h('td', {}, pair.slice(i + 1).trim()), h('td', {}, attrs.join(';').trim()));
  }));
  if (!(a.set_cookies || []).length) $('resp-cookies').append(h('tr', {}, h('td', {}, 'No cookies set')));
  phases(a);
  $('resp-timing').replaceChildren(...[
    ['Total', fmtMs(a.duration_ms)], ['Time to first byte', fmtMs(a.ttfb_ms)], ['Request size', fmtBytes(a.request_size)],
    ['Response size', fmtBytes(a.response_size)], ['HTTP version', a.http_version || ''], ['Final URL', a.final_url || ''],
    ['Execution id', a.execution_id || ''], ['Trace id', a.trace_id || ''],
  ].filter(([, v]) => v).map(([k, v]) => h('tr', {}, h('td', {}, k), h('td', {}, v))));
}

/** The timing breakdown: DNS, connect (with TLS for https), waiting and download as one bar,
 *  and a list that says why a phase has no number (a reused connection has no DNS or connect). */
function phases(a) {
  const box = $('resp-phases');
  const total = a.duration_ms, ttfb = a.ttfb_ms;
  if (total == null || ttfb == null) { box.replaceChildren(h('p', { class: 'muted' }, 'No breakdown: no response arrived.')); return; }
  const reused = a.connection_reused === true, opened = a.connection_reused === false;
  const tls = /^https:/i.test(a.final_url || a.request?.url || '');
  const why = reused ? 'reused connection' : 'not measured';
  const dns = a.dns_ms ?? null, connect = a.connect_ms ?? null;
  const setup = (dns || 0) + (connect || 0);
  const list = [
    ['dns', 'DNS', dns, opened && dns == null ? 'no lookup (IP address)' : why],
    ['connect', tls ? 'Connect + TLS' : 'Connect', connect, why],
    ['wait', reused || connect != null ? 'Waiting' : 'Waiting (includes connection setup)', Math.max(0, ttfb - setup)],
    ['download', 'Download', Math.max(0, total - ttfb)],
  ];
  const svg = h('svg', { class: 'phase-bar', viewBox: '0 0 1000 14', preserveAspectRatio: 'none', width: '100%', height: 14, role: 'img', 'aria-label': 'Timing breakdown' });
  let x = 0;
  for (const [key, label, ms] of list) {
    if (!(ms > 0) || !(total > 0)) continue;
    const w = (ms / total) * 1000;
    svg.append(h('rect', { class: `ph-${key}`, x, y: 0, width: w, height: 14 }, h('title', {}, `${label}: ${fmtMs(ms)}`)));
    x += w;
  }
  box.replaceChildren(svg, h('ul', { class: 'phase-list' }, list.map(([key, label, ms, none]) => h('li', { 'data-phase': key },
    h('span', { class: `sw ph-${key}` }), `${label}: `, ms == null ? h('em', { class: 'muted' }, none) : h('b', {}, fmtMs(ms))))));
}

function renderBody() {
  const pre = $('resp-body');
  const shown = bodyText.length > SHOW_MAX ? bodyText.slice(0, SHOW_MAX) : bodyText;
  const q = $('resp-search').value;
  if (!q) { pre.textContent = shown; return; }
  const parts = [];
  let at = 0, hits = 0;
  const lower = shown.toLowerCase(), needle = q.toLowerCase();
  for (let i = lower.indexOf(needle); i >= 0 && hits < 1000; i = lower.indexOf(needle, i + needle.length)) {
    parts.push(shown.slice(at, i), h('mark', {}, shown.slice(i, i + needle.length)));
    at = i + needle.length;
    hits++;
  }
  parts.push(shown.slice(at));
  pre.replaceChildren(...parts);
  pre.querySelector('mark')?.classList.add('current');
  pre.querySelector('mark')?.scrollIntoView({ block: 'nearest' });
}
$('resp-search')?.addEventListener('input', renderBody);
$('resp-search')?.addEventListener('keydown', (ev) => {
  if (ev.key !== 'Enter') return;
  const marks = [...$('resp-body').querySelectorAll('mark')];
  const i = marks.findIndex((m) => m.classList.contains('current'));
  marks[i]?.classList.remove('current');
  const next = marks[(i + 1) % marks.length];
  next?.classList.add('current');
  next?.scrollIntoView({ block: 'nearest' });
});
$('resp-copy')?.addEventListener('click', async () => {
  try { await navigator.clipboard.writeText(current?.response?.body ?? bodyText); $('resp-copy').textContent = 'Copied'; } catch { $('resp-copy').textContent = 'Copy failed'; }
  setTimeout(() => { $('resp-copy').textContent = 'Copy'; }, 1200);
});
for (const tab of document.querySelectorAll('#response [data-rpane][role=tab]')) {
  tab.addEventListener('click', () => {
    for (const t of document.querySelectorAll('#response [role=tab]')) t.setAttribute('aria-selected', String(t === tab));
    for (const p of document.querySelectorAll('#response .rpane')) p.hidden = p.dataset.rpane !== tab.dataset.rpane;
  });
}

// ---------------------------------------------------------------------------------------------
// History: newest first; a click reopens the execution read-only with its trace.

let historyCursor = null;
/** What an execution was sent to: the target host and the endpoint (path template). */
function whereTo(x) {
  if (x.url) return x.url;
  const target = x.target || '';
  return x.endpoint && x.endpoint.startsWith('/') && !target.includes(x.endpoint) ? target + x.endpoint : target || x.endpoint || '';
}
/** Loads the newest page (or the next one). `expect`: an execution just sent — it is recorded
 *  asynchronously, so the list is re-read a few times until it shows up. */
async function loadHistory(more = false, expect = null, attempt = 0) {
  const list = $('history');
  if (!list) return;
  try {
    const page = await api('GET', `/api/workspaces/${ws}/executions?limit=30` + (more && historyCursor ? `&cursor=${encodeURIComponent(historyCursor)}` : ''));
    const items = page.items || [];
    historyCursor = page.next_cursor || null;
    $('hist-more').hidden = !historyCursor;
    const rows = items.map((x) => {
      const status = x.status ?? x.status_code ?? x.http_status;
      const cls = x.failed ? 's-err' : status ? `s-${String(status)[0]}` : '';
      const when = x.started_at || x.created_at || '';
      return h('li', {}, h('button', { type: 'button', 'data-execution': x.id, onclick: () => openExecution(x.id),
        title: `${x.method || x.protocol || ''} ${whereTo(x)}` },
        h('span', { class: `status ${cls}` }, status ?? (x.error_kind || '—')), h('span', { class: 'url' }, `${x.method || ''} ${whereTo(x)}`),
        h('span', { class: 'when' }, when ? new Date(when).toLocaleTimeString() : '')));
    });
    if (expect && !items.some((x) => x.id === expect) && attempt < 8) {
      setTimeout(() => loadHistory(false, expect, attempt + 1), 150 * (attempt + 1));
    }
    if (more) list.append(...rows); else list.replaceChildren(...rows);
    if (!list.children.length) list.append(h('li', { class: 'muted' }, 'Nothing sent yet.'));
  } catch (err) {
    if (err.status === 404) list.replaceChildren(h('li', { class: 'muted' }, 'History is not available on this server yet.'));
    else list.replaceChildren(h('li', { class: 'error' }, err.message));
  }
}
$('hist-refresh')?.addEventListener('click', () => loadHistory());
$('hist-more')?.addEventListener('click', () => loadHistory(true));

async function openExecution(id) {
  try {
    const x = await api('GET', `/api/executions/${id}`);
    const sent = x.detail?.request || {};
    const snap = x.detail?.response || {};
    const r = snap.response || {};
    const headerList = Array.isArray(r.headers) ? r.headers : [];
    const grpc = x.protocol === 'grpc';
    const response = {
      execution_id: x.id, trace_id: x.trace_id, failed: x.failed, error_kind: x.error_kind,
      error_msg: x.error_message || snap.error?.message || '', duration_ms: x.duration_ms, ttfb_ms: x.ttfb_ms,
      request_size: x.request_size, response_size: x.response_size, header_list: headerList,
      dns_ms: x.dns_ms, connect_ms: x.connect_ms, connection_reused: snap.timings?.connection_reused,
      set_cookies: headerList.filter((hd) => hd.name.toLowerCase() === 'set-cookie').map((hd) => hd.value),
      http_version: r.http_version, final_url: r.url,
      body: grpc ? JSON.stringify(r.messages ?? [], null, 2) : r.body?.data ?? '',
      body_encoding: r.body?.encoding, body_truncated: r.body?.truncated,
      ...(grpc ? { status_code: x.status_code, status_name: r.status_name, response_trailers: Object.fromEntries((r.trailers || []).map((t) => [t.name, t.value])) } : { status: x.status_code }),
    };
    const sentHeaders = (Array.isArray(sent.headers) ? sent.headers : []).map((hd) => ({ key: hd.name ?? hd.key, value: hd.value, enabled: true }));
    const fields = grpc
      ? { protocol: 'grpc', server_address: x.target, metadata: sentHeaders }
      : { protocol: x.protocol, method: sent.method || x.method, url: sent.url || x.target, headers: sentHeaders };
    const t = { key: ++tabSeq, id: null, name: `${x.method || x.protocol} ${whereTo(x)}`, fields, saved: '', readOnly: true, response, traceId: x.trace_id, spans: [] };
    tabs.push(t);
    activate(t);
  } catch (err) {
    $('tree-error').textContent = err.message;
  }
}

// ---------------------------------------------------------------------------------------------

const trace = ws && $('trace-panel') ? new TraceView() : null;
if (ws && $('tree')) {
  renderTabs();
  initTree();
  loadEnv();
  loadHistory();
}

// ---------------------------------------------------------------------------------------------
// GraphQL schema explorer: introspection through the data plane (an ad-hoc send, so editors
// only), then the root types' fields; a click inserts the field at the cursor.

const INTROSPECTION = `query PrismIntrospection { __schema { queryType { name } mutationType { name } subscriptionType { name }
  types { kind name description fields { name description args { name type { ...T } } type { ...T } } } } }
fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }`;

function typeName(t) {
  if (!t) return '';
  if (t.kind === 'NON_NULL') return typeName(t.ofType) + '!';
  if (t.kind === 'LIST') return `[${typeName(t.ofType)}]`;
  return t.name;
}

async function loadSchema() {
  const box = $('gql-schema');
  if (!current || !canEdit) { box.textContent = 'Loading a schema needs the editor role.'; return; }
  box.textContent = 'Loading…';
  try {
    const answer = await api('POST', `/api/workspaces/${ws}/send`, {
      protocol: 'graphql', url: editor.read().url, headers: editor.read().headers, query: INTROSPECTION,
      environment_id: $('env-select')?.value || undefined,
    });
    const schema = JSON.parse(answer.body || '{}').data?.__schema;
    if (!schema) throw new Error(answer.error_msg || 'the server answered without a schema (is introspection enabled?)');
    const types = new Map(schema.types.map((t) => [t.name, t]));
    const roots = [['query', schema.queryType], ['mutation', schema.mutationType], ['subscription', schema.subscriptionType]].filter(([, r]) => r);
    box.replaceChildren(...roots.map(([label, r]) => h('details', { open: label === 'query' },
      h('summary', {}, `${label}: ${r.name}`),
      h('ul', {}, (types.get(r.name)?.fields || []).map((f) => h('li', {},
        h('button', { type: 'button', class: 'link mono', title: f.description || '', onclick: () => insertAtCursor($('r-query'), f.name) },
          `${f.name}${f.args.length ? `(${f.args.map((a) => `${a.name}: ${typeName(a.type)}`).join(', ')})` : ''}: ${typeName(f.type)}`)))))));
  } catch (err) {
    box.textContent = err.message;
  }
}

function insertAtCursor(area, text) {
  const at = area.selectionStart ?? area.value.length;
  area.value = area.value.slice(0, at) + text + area.value.slice(area.selectionEnd ?? at);
  area.focus();
  area.selectionStart = area.selectionEnd = at + text.length;
  area.dispatchEvent(new Event('input'));
}
$('gql-load')?.addEventListener('click', loadSchema);
