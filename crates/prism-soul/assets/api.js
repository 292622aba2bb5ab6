// The JSON API from the browser: the session cookie travels by itself, changes carry the CSRF
// token (read from the prism_csrf cookie), errors become ApiError {status, code, message, field}.
// A 401 means the session is gone: back to sign-in, which returns here afterwards.

export class ApiError extends Error {
  constructor(status, body) {
    super(body.message || `HTTP ${status}`);
    this.status = status;
    this.code = body.code || 'error';
    this.field = body.field || null;
    this.requestId = body.request_id || null;
  }
}

export function cookie(name) {
  for (const part of document.cookie.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return decodeURIComponent(v.join('='));
  }
  return '';
}

export function toSignin() {
  const here = location.pathname + location.search;
  location.assign('/signin?next=' + encodeURIComponent(here));
}

export async function api(method, path, body, { raw = false } = {}) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET') headers['X-CSRF-Token'] = cookie('prism_csrf');
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, {
      method, headers, credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, { code: 'network', message: 'The server could not be reached: ' + e.message });
  }
  if (res.status === 401 && !path.startsWith('/api/auth/')) {
    toSignin();
    throw new ApiError(401, { code: 'unauthenticated', message: 'Your session has ended; sign in again.' });
  }
  if (raw) {
    if (!res.ok) throw new ApiError(res.status, await res.json().catch(() => ({})));
    return res;
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = { message: text }; }
  }
  if (!res.ok) throw new ApiError(res.status, data || {});
  return data;
}

/** Shows an ApiError next to the field it names inside `scope`, or in `fallback`. */
export function showError(scope, err, fallback) {
  clearErrors(scope);
  const field = err.field && scope.querySelector(`.field-error[data-for="${CSS.escape(err.field.split(/[.[]/)[0])}"]`);
  const target = field || fallback;
  if (target) target.textContent = err.message + (err.code && !field ? ` (${err.code})` : '');
  const input = err.field && scope.querySelector(`[name="${CSS.escape(err.field)}"]`);
  if (input) { input.classList.add('invalid'); input.focus(); }
}

export function clearErrors(scope) {
  for (const el of scope.querySelectorAll('.field-error, .error')) el.textContent = '';
  for (const el of scope.querySelectorAll('.invalid')) el.classList.remove('invalid');
}

/** Creates an element: h('div', {class: 'x', onclick: f}, child, 'text'). */
export function h(tag, attrs = {}, ...children) {
  const svg = ['svg', 'g', 'rect', 'line', 'text', 'path', 'circle', 'title', 'polyline', 'marker', 'defs'].includes(tag);
  const el = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function fmtBytes(n) {
  if (n == null) return '';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export function fmtMs(ms) {
  if (ms == null) return '';
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}
