// PRISM's web UI in headless Chromium, the way a user goes through it:
// sign up → workspace → collection → REST request to the test upstream → send → status and body
// → the waterfall shows PRISM's span and the upstream's own (exported over OTLP) → the timing
// breakdown of a new and of a reused connection → history → gRPC service and method pickers from
// a pasted proto → analytics with its charts, drilled down to an endpoint and to a saved request
// and back → a second user with the viewer role cannot edit (nor drag). Drag and drop moves a
// request in the tree; a refused drop shows the server's reason and changes nothing.
//
// Usage: node journey.mjs <prism-url> <upstream-url> <screenshot-dir>
// Started by crates/prism-cli/tests/it/browser.rs; exits non-zero with a message on failure.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';

const [base, upstream, shots] = process.argv.slice(2);
if (!base || !upstream || !shots) {
  console.error('usage: node journey.mjs <prism-url> <upstream-url> <screenshot-dir>');
  process.exit(2);
}
mkdirSync(shots, { recursive: true });
const executablePath = process.env.PRISM_CHROMIUM || '/usr/bin/chromium';
const TIMEOUT = 15000;

function step(name) { console.log(`step: ${name}`); }
function check(cond, message) { if (!cond) throw new Error(message); }

/** A JSON API call from inside the page, with the session cookie and CSRF header. */
async function call(page, method, path, body) {
  return page.evaluate(async ([method, path, body]) => {
    const csrf = decodeURIComponent((document.cookie.match(/(?:^|; )prism_csrf=([^;]*)/) || [])[1] || '');
    const res = await fetch(path, {
      method, credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: await res.json().catch(() => null) };
  }, [method, path, body]);
}

async function signup(page, name, email) {
  await page.goto(base + '/signup');
  await page.fill('#f-name', name);
  await page.fill('#f-email', email);
  await page.fill('#f-password', 'correct horse battery staple');
  await page.click('button[type=submit]');
  await page.waitForURL(/\/app/);
}

const browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
let page;
try {
  const owner = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await owner.newPage();
  page.setDefaultTimeout(TIMEOUT);
  const consoleErrors = [];
  page.on('pageerror', (e) => consoleErrors.push(e.message));

  step('landing page for a visitor');
  await page.goto(base + '/');
  check(await page.isVisible('text=Send a request. See the whole trace.'), 'landing headline');

  step('a bad sign-up shows the error next to the field');
  await page.goto(base + '/signup');
  await page.fill('#f-name', 'Ada');
  await page.fill('#f-email', 'not-an-email');
  await page.fill('#f-password', 'correct horse battery staple');
  await page.click('button[type=submit]');
  await page.waitForSelector('#e-email:not(:empty)');
  check(await page.inputValue('#f-password') !== '', 'what was typed is kept');

  step('sign up');
  await signup(page, 'Ada', 'ada@example.com');

  step('create a workspace');
  await page.fill('#first-ws-name', 'Journey');
  await page.click('#first-ws button[type=submit]');
  await page.waitForURL(/\/app\?w=/);
  const ws = new URL(page.url()).searchParams.get('w');

  step('create a collection');
  await page.click('#col-new');
  await page.fill('#dlg input[name=name]', 'Orders API');
  await page.click('#dlg-ok');
  await page.waitForSelector('#tree .col[data-name="Orders API"].selected');

  step('create a REST request in it');
  await page.click('#tree-actions [data-act=new-request]');
  await page.fill('#dlg input[name=name]', 'Get order');
  await page.click('#dlg-ok');
  await page.waitForSelector('#editor:not([hidden])');
  await page.fill('#r-url', `${upstream}/orders/42?expand=items`);
  await page.waitForSelector('#r-params input.k[value="expand"], #r-params tr:first-child input.k');
  check(await page.inputValue('#r-params tr:first-child input.k') === 'expand', 'the URL query fills the params table');
  check(await page.isVisible('.tab .t-name.dirty'), 'unsaved marker after an edit');
  await page.keyboard.press('Control+s');
  await page.waitForSelector('.tab .t-name:not(.dirty)');
  await page.waitForSelector('#tree .req[data-name="Get order"] .badge.b-get');

  step('filter the tree');
  await page.fill('#tree-filter', 'nothing-like-this');
  check(!(await page.isVisible('#tree .req[data-name="Get order"]')), 'the filter hides what does not match');
  await page.fill('#tree-filter', 'get');
  check(await page.isVisible('#tree .req[data-name="Get order"]'), 'the filter shows what matches');
  await page.fill('#tree-filter', '');

  step('move the request into a new folder');
  await page.click('#tree .col[data-name="Orders API"] > .row');
  await page.click('#tree-actions [data-act=new-folder]');
  await page.fill('#dlg input[name=name]', 'Archive');
  await page.click('#dlg-ok');
  await page.waitForSelector('#tree .col[data-name="Archive"]');
  await page.click('#tree .req[data-name="Get order"] > .row');
  await page.click('#tree-actions [data-act=move]');
  await page.selectOption('#dlg select[name=collection_id]', { label: 'Orders API / Archive' });
  await page.click('#dlg-ok');
  await page.waitForSelector('#tree .col[data-name="Archive"] .req[data-name="Get order"]');

  step('drag and drop moves a request into a folder, with the drop target highlighted');
  await page.click('#tree .col[data-name="Orders API"] > .row');
  await page.click('#tree-actions [data-act=new-request]');
  await page.fill('#dlg input[name=name]', 'Draft order');
  await page.click('#dlg-ok');
  await page.waitForSelector('#tree .col[data-name="Orders API"] > ul > .req[data-name="Draft order"]');
  const draftId = await page.getAttribute('#tree .req[data-name="Draft order"]', 'data-id');
  const archiveId = await page.getAttribute('#tree .col[data-name="Archive"]', 'data-id');
  const ordersId = await page.getAttribute('#tree .col[data-name="Orders API"]', 'data-id');
  await page.hover('#tree .req[data-name="Draft order"] > .row');
  await page.mouse.down();
  const into = await page.locator('#tree .col[data-name="Archive"] > .row').boundingBox();
  await page.mouse.move(into.x + 20, into.y + into.height / 2, { steps: 5 });
  await page.waitForSelector('#tree .col[data-name="Archive"].drop-target');
  await page.mouse.up();
  await page.waitForSelector('#tree .col[data-name="Archive"] .req[data-name="Draft order"]');
  check(!(await page.$('#tree .drop-target')), 'no highlight left after the drop');
  const moved = await call(page, 'GET', `/api/requests/${draftId}`);
  check(moved.body.collection_id === archiveId, `the server has the request in the folder: ${JSON.stringify(moved.body)}`);

  step('a refused drop (a collection into its own folder) shows why and changes nothing');
  await page.dragAndDrop('#tree .col[data-name="Orders API"] > .row', '#tree .col[data-name="Archive"] > .row');
  await page.waitForSelector('#tree-error:has-text("move_cycle")');
  check(await page.isVisible('#tree > .tree > .col[data-name="Orders API"] > ul > .col[data-name="Archive"]'), 'the tree is unchanged');
  const orders = await call(page, 'GET', `/api/collections/${ordersId}`);
  check(orders.status === 200 && orders.body.parent_id == null, `the collection stayed at the top: ${JSON.stringify(orders.body)}`);

  step('an environment with a secret; variables are checked before sending');
  await page.click('#env-new');
  await page.fill('#dlg input[name=name]', 'Local');
  await page.click('#dlg-ok');
  await page.waitForSelector('#dlg[open] tbody tr .k');
  await page.fill('#dlg tbody tr:nth-child(1) .k', 'base');
  await page.fill('#dlg tbody tr:nth-child(1) .v', upstream);
  await page.click('#dlg button:has-text("+ Variable")');
  await page.fill('#dlg tbody tr:nth-child(2) .k', 'token');
  await page.fill('#dlg tbody tr:nth-child(2) .v', 's3cret-value');
  await page.check('#dlg tbody tr:nth-child(2) .s');
  await page.click('#dlg-ok');
  await page.waitForSelector('#dlg', { state: 'hidden' });
  await page.click('#env-edit');
  await page.waitForSelector('#dlg[open] tbody tr:nth-child(2) .v');
  check(await page.inputValue('#dlg tbody tr:nth-child(2) .v') === '', 'the secret is masked');
  check(!(await page.content()).includes('s3cret-value'), 'the secret is nowhere in the page');
  await page.click('#dlg-cancel');
  await page.click('#tree .req[data-name="Get order"] > .row');
  await page.fill('#r-url', '{{base}}/orders/42?expand={{nope}}');
  await page.waitForSelector('#r-vars .var.unknown:has-text("{{nope}}")');
  check(await page.isVisible('#r-vars .var:not(.unknown):has-text("{{base}}")'), 'a known variable is marked known');
  await page.click('#r-send');
  await page.waitForSelector('#r-error:has-text("{{nope}}")');
  await page.fill('#r-url', '{{base}}/orders/42?expand=items');
  await page.keyboard.press('Control+s');
  await page.waitForSelector('.tab .t-name:not(.dirty)');

  step('an ingest key for the upstream to export its spans with');
  const key = await call(page, 'POST', `/api/workspaces/${ws}/ingest-keys`, { name: 'journey-upstream' });
  check(key.status === 201, `ingest key: ${JSON.stringify(key)}`);
  const given = await fetch(`${upstream}/__key`, { method: 'POST', body: key.body.key });
  check(given.ok, 'upstream took the key');

  step('send with Ctrl+Enter; status and body are shown');
  await page.click('#r-url');
  await page.keyboard.press('Control+Enter');
  await page.waitForSelector('#resp-status.s-2');
  check((await page.textContent('#resp-status')).trim() === '200', 'status 200');
  await page.waitForSelector('#resp-body:has-text("order-42")');
  check((await page.textContent('#resp-body')).includes('"expand": "items"'), 'the pretty body shows the params the upstream saw');

  step("the waterfall shows PRISM's span and the upstream's own");
  await page.waitForSelector('#gantt .bar[aria-label^="prism:"]');
  await page.waitForSelector('#gantt .bar[aria-label^="journey-upstream: GET /orders/{id}"]');
  await page.waitForSelector('#gantt .bar[aria-label^="journey-upstream: SELECT orders"]');
  await page.click('#gantt .bar[aria-label^="journey-upstream: SELECT orders"] rect.fill');
  await page.waitForSelector('#span-detail:has-text("db.system")');
  await page.click('[data-tview=map]');
  await page.waitForSelector('#svcmap .svc[data-service="journey-upstream"]');
  check((await page.textContent('#svcmap')).includes('1 call'), 'the map labels the edge with its calls');
  await page.click('[data-tview=gantt]');
  await page.screenshot({ path: `${shots}/workbench.png`, fullPage: true });
  const requestId = await page.getAttribute('#tree .req[data-name="Get order"]', 'data-id');
  check((await page.getAttribute('#r-analytics', 'href')).includes(`request_id=${requestId}`), 'the editor links to the request\'s analytics');

  step('the timing breakdown: DNS and connect of a new connection, neither for a reused one');
  await page.click('#tab-new');
  await page.fill('#r-url', `${upstream.replace('127.0.0.1', 'localhost')}/orders/7`);
  await page.click('#r-send');
  await page.waitForSelector('#resp-status.s-2');
  await page.click('#response [role=tab][data-rpane=timing]');
  const phase = (name) => page.textContent(`#resp-phases [data-phase=${name}]`);
  check(/^DNS: \d/.test(await phase('dns')), `DNS measured: ${await phase('dns')}`);
  check(/^Connect: \d/.test(await phase('connect')), `connect measured: ${await phase('connect')}`);
  check(/^Waiting: \d/.test(await phase('wait')) && /^Download: \d/.test(await phase('download')), 'waiting and download');
  check((await page.$$('#resp-phases svg rect')).length >= 3, 'the bar has a segment per measured phase');
  await page.click('#r-send');
  await page.waitForSelector('#resp-phases [data-phase=dns]:has-text("reused connection")');
  check((await phase('connect')).includes('reused connection'), `a reused connection has no connect time: ${await phase('connect')}`);
  await page.screenshot({ path: `${shots}/timing.png`, fullPage: true });
  await page.click('#response [role=tab][data-rpane=body]');
  page.once('dialog', (d) => d.accept()); // "discard unsaved changes?"
  await page.click('.tab[aria-selected=true] .t-close');
  await page.click('.tab:has-text("Get order") .t-name');

  step('a 10 MB response is shown truncated, whole in the download');
  await page.click('#tab-new');
  await page.fill('#r-url', `${upstream}/big`);
  const started = Date.now();
  await page.click('#r-send');
  await page.waitForSelector('#resp-note:has-text("Showing the first"), #resp-note:has-text("only the start")', { timeout: 30000 });
  check((await page.textContent('#resp-body')).length <= 210 * 1024, 'at most ~200 KB in the page');
  check(Date.now() - started < 20000, 'the page stays responsive');
  check((await page.getAttribute('#resp-download', 'href')).startsWith('blob:'), 'the whole body can be downloaded');
  page.once('dialog', (d) => d.accept()); // "discard unsaved changes?"
  await page.click('.tab:has-text("Unsaved request") .t-close');
  await page.waitForSelector('.tab:has-text("Unsaved request")', { state: 'detached' });
  await page.click('.tab:has-text("Get order") .t-name');

  step('history lists the execution and reopens it');
  await page.waitForSelector('#history li:first-child:has-text("/big")').catch(async (e) => { // newest first
    throw new Error(`history: ${await page.innerHTML('#history')}`);
  });
  check((await page.textContent('#history')).includes('200'), 'history shows the status');
  // The Ctrl+Enter send (to 127.0.0.1), not the later ones to localhost.
  await page.click('#history button[data-execution]:has-text("127.0.0.1"):has-text("/orders/")');
  await page.waitForSelector('.tab[aria-selected=true]:has-text("/orders/")');
  await page.waitForSelector('#resp-body:has-text("order-42")');
  await page.waitForSelector('#gantt .bar[aria-label^="journey-upstream: SELECT orders"]');

  step('a gRPC request with a pasted proto offers its services and methods in pickers');
  await page.click('#tab-new');
  await page.selectOption('#r-protocol', 'grpc');
  await page.click('#editor [role=tab][data-pane=proto]');
  await page.fill('#r-proto', [
    'syntax = "proto3";', 'package journey.v1;',
    'message Order { string id = 1; }', 'message Orders { repeated Order orders = 1; }',
    'service OrderService {', '  rpc Get(Order) returns (Order);', '  rpc Watch(Order) returns (stream Order);',
    '  rpc Upload(stream Order) returns (Orders);', '}',
  ].join('\n'));
  await page.fill('#r-address', '127.0.0.1:9');
  await page.click('#editor [role=tab][data-pane=service]');
  await page.waitForSelector('#g-service:not([hidden]) option[value="journey.v1.OrderService"]', { state: 'attached' });
  await page.selectOption('#g-service', 'journey.v1.OrderService');
  await page.waitForSelector('#g-method option[value="Watch"]', { state: 'attached' });
  check((await page.textContent('#g-method option[value="Watch"]')).includes('server-streaming'), 'the method picker shows the call kind');
  await page.selectOption('#g-method', 'Upload');
  check(await page.inputValue('#r-service') === 'journey.v1.OrderService', 'picking a service fills it in');
  check(await page.inputValue('#r-grpc-method') === 'Upload', 'picking a method fills it in');
  await page.click('#editor [role=tab][data-pane=message]');
  await page.waitForSelector('#g-hint:has-text("JSON list")');
  await page.click('#editor [role=tab][data-pane=proto]');
  await page.fill('#r-proto', 'syntax = "proto3";\nservice Broken {');
  await page.waitForSelector('#g-proto-error:has-text("(invalid_proto)")');
  check(await page.inputValue('#r-grpc-method') === 'Upload', 'a failed load keeps what was typed');
  page.once('dialog', (d) => d.accept()); // "discard unsaved changes?"
  await page.click('.tab[aria-selected=true] .t-close');

  step("analytics of the saved request, opened from the editor");
  const requestsCount = async () => Number((await page.textContent('[data-card="Requests"] b')).trim());
  // The page marks what it last loaded on <body> (no waitForFunction: the CSP forbids eval).
  const loaded = (part) => page.waitForSelector(`body[data-loaded*="${part}"]`, { state: 'attached' });
  const home = `/app/analytics?w=${ws}&window=24h`;
  await page.click('.tab:has-text("Get order") .t-name');
  await page.click('#r-analytics');
  await page.waitForURL(/\/app\/analytics\?.*request_id=/);
  await loaded(`request_id=${requestId}`);
  await page.waitForSelector('#an-crumbs:has-text("Request:"):has-text("Get order")');
  check(await requestsCount() >= 1, 'the saved request was sent');
  check(await page.inputValue('#an-request') === requestId, 'the picker shows the request');

  step('back to the workspace: analytics counts everything');
  await page.click('#an-back');
  await page.waitForSelector(`body[data-loaded="${home}"]`, { state: 'attached' });
  check(new URL(page.url()).search === home.split('/app/analytics')[1], `the URL is the workspace's: ${page.url()}`);
  check(!(await page.isVisible('#an-back')), 'no way back from the top');
  const all = await requestsCount();
  check(all >= 4, `analytics counts every send (${all})`);

  step('the charts: durations as labels that do not overlap, one bucket as one narrow bar');
  const ticks = await page.$$eval('#an-histogram text.xtick', (els) => els.map((e) => { const b = e.getBoundingClientRect(); return { t: e.textContent, l: b.left, r: b.right }; }));
  check(ticks.length >= 2, `histogram axis labels: ${JSON.stringify(ticks)}`);
  for (const t of ticks) check(/^\d+(\.\d)? (µs|ms|s|min)$/.test(t.t), `a human duration: ${t.t}`);
  ticks.sort((a, b) => a.l - b.l);
  for (let i = 1; i < ticks.length; i++) check(ticks[i].l >= ticks[i - 1].r, `labels overlap: ${JSON.stringify(ticks)}`);
  check((await page.$$('#an-histogram rect.bar-h')).length >= 8, 'the histogram keeps empty neighbours');
  const plot = await page.$eval('#an-series svg', (s) => s.getBoundingClientRect().width);
  const bars = await page.$$eval('#an-series rect.ok', (rs) => rs.map((r) => r.getBoundingClientRect().width));
  check(bars.length >= 1 && bars.every((w) => w <= plot / 8), `narrow bars on a time axis: ${bars} of ${plot}`);
  check((await page.$$('#an-series text.xtick')).length >= 2, 'the time axis is labelled');
  await page.screenshot({ path: `${shots}/analytics.png`, fullPage: true });

  step('drill down to a top endpoint with the keyboard, then back with the browser');
  await page.focus('#an-top a:has-text("GET /orders/{id}")');
  await page.keyboard.press('Enter');
  await loaded('endpoint=');
  await page.waitForSelector('#an-crumbs:has-text("GET /orders/{id}")');
  const orderCount = await requestsCount();
  check(orderCount >= 3 && orderCount < all, `only the endpoint's executions (${orderCount} of ${all})`);
  check((await page.$$('#an-top tr[data-endpoint]')).length === 1, 'one endpoint in the filtered view');
  await page.reload();
  await loaded('endpoint=');
  check(await requestsCount() === orderCount, 'a reload keeps the drill-down');
  await page.goBack();
  await page.waitForSelector(`body[data-loaded="${home}"]`, { state: 'attached' });
  check(!page.url().includes('endpoint'), `back leaves the drill-down: ${page.url()}`);
  check(await requestsCount() === all, 'back shows the whole workspace again');

  step('a saved request never sent: an explicit empty state');
  await page.selectOption('#an-request', draftId);
  await loaded(`request_id=${draftId}`);
  await page.waitForSelector('#an-empty:visible:has-text("No executions in this window")');
  check((await page.textContent('#an-series')).includes('No executions in this window'), 'the time series says so');
  check((await page.textContent('#an-histogram')).includes('No executions in this window'), 'the histogram says so');

  step('a viewer cannot edit');
  const other = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const viewer = await other.newPage();
  viewer.setDefaultTimeout(TIMEOUT);
  await signup(viewer, 'Vic', 'vic@example.com');
  await page.goto(`${base}/app?w=${ws}`);
  await page.click('#ws-members');
  await page.fill('#dlg input[name=email]', 'vic@example.com');
  await page.selectOption('#dlg select[name=role]', 'viewer');
  await page.click('#dlg-ok');
  await page.waitForSelector('#dlg td:has-text("vic@example.com")');
  await viewer.goto(`${base}/app?w=${ws}`);
  check(!(await viewer.isVisible('#col-new')), 'no create button for a viewer');
  check(!(await viewer.isVisible('#tree-actions')), 'no edit actions for a viewer');
  check((await viewer.$$('#tree [draggable]')).length === 0, 'nothing to drag for a viewer');
  await viewer.click('#tree .req[data-name="Get order"] .row');
  await viewer.waitForSelector('#editor:not([hidden])');
  check(!(await viewer.isVisible('#r-save')), 'no save button for a viewer');
  check(await viewer.$eval('#r-url', (el) => el.readOnly), 'the URL is read-only for a viewer');
  const id = await viewer.getAttribute('#tree .req[data-name="Get order"]', 'data-id');
  const denied = await call(viewer, 'PATCH', `/api/requests/${id}`, { name: 'hijacked' });
  check(denied.status === 403, `the API refuses a viewer's change (${denied.status})`);
  await viewer.screenshot({ path: `${shots}/viewer.png`, fullPage: true });

  step('an ended session returns to sign-in and back');
  await other.clearCookies();
  await viewer.goto(`${base}/app?w=${ws}`);
  await viewer.waitForURL(/\/signin\?next=/);
  await viewer.fill('#f-email', 'vic@example.com');
  await viewer.fill('#f-password', 'correct horse battery staple');
  await viewer.click('button[type=submit]');
  await viewer.waitForURL((u) => u.pathname === '/app' && u.search.includes(ws));

  check(consoleErrors.length === 0, `no script errors: ${consoleErrors.join('; ')}`);
  console.log('journey: ok');
} catch (err) {
  console.error(`journey failed: ${err.stack || err}`);
  if (page) await page.screenshot({ path: `${shots}/failure.png`, fullPage: true }).catch(() => {});
  await browser.close();
  process.exit(1);
}
await browser.close();
