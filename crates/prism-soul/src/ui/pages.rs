//! The pages: landing, sign-in/up, the workbench and analytics, and the collections-tree fragment
//! the workbench reloads after a change (one renderer for the tree, on the server).
//!
//! Pages carry no inline script or style (the Content-Security-Policy forbids both); what the
//! scripts need from the server is in `data-` attributes of `<body>`.

use std::collections::HashMap;
use std::fmt::Write as _;

use axum::extract::{Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION};
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use prism_domain::collection::Collection;
use prism_domain::request::{RequestSpec, SavedRequest};
use prism_domain::workspace::Workspace;
use prism_domain::{CollectionId, Role, WorkspaceId};
use serde::Deserialize;

use super::{esc, esc_into, version};
use crate::SoulState;
use crate::api::access::{self, Action};
use crate::api::auth::{Caller, MaybeCaller};
use crate::api::error::ApiError;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)),
            (CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

fn redirect(to: &str) -> Response {
    let location = HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/"));
    (StatusCode::SEE_OTHER, [(LOCATION, location)]).into_response()
}

/// Percent-encodes everything but unreserved characters (for `?next=`).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Where to go after signing in: only a path on this site (no `//host`, no scheme).
pub fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n,
        _ => "/app",
    }
}

fn to_signin(uri: &Uri) -> Response {
    let here = uri.path_and_query().map_or("/app", |p| p.as_str());
    redirect(&format!("/signin?next={}", encode(here)))
}

/// The document around a page's content.
fn shell(title: &str, body_attrs: &str, content: &str, script: &str) -> String {
    let mut out = String::with_capacity(content.len() + 1024);
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · PRISM</title>\
         <link rel=\"icon\" href=\"/assets/favicon.svg?v={}\" type=\"image/svg+xml\">\
         <link rel=\"stylesheet\" href=\"/assets/app.css?v={}\">",
        esc(title),
        version("favicon.svg"),
        version("app.css"),
    );
    if !script.is_empty() {
        let _ = write!(
            out,
            "<script type=\"module\" src=\"/assets/{script}?v={}\"></script>",
            version(script)
        );
    }
    let _ = write!(out, "</head><body {body_attrs}>{content}</body></html>");
    out
}

/// `/`: what PRISM is, for visitors; signed-in users go to the workbench.
pub async fn landing(MaybeCaller(caller): MaybeCaller) -> Response {
    if caller.is_some() {
        return redirect("/app");
    }
    let content = r#"<main class="landing">
<header class="landing-top"><span class="brand">◆ PRISM</span>
<nav><a href="/signin">Sign in</a> <a class="button primary" href="/signup">Create an account</a></nav></header>
<section class="hero"><h1>Send a request. See the whole trace.</h1>
<p>PRISM is a self-hosted workbench for REST, GraphQL and gRPC APIs. Every request you send is traced:
the waterfall of spans from PRISM and from your own services fills in live as they arrive.</p>
<p><a class="button primary" href="/signup">Get started</a> <a class="button" href="/signin">I have an account</a></p></section>
<section class="features">
<div><h2>Collections</h2><p>Organise requests in folders, share them with your team with viewer, editor and admin roles.</p></div>
<div><h2>Environments</h2><p><code>{{variables}}</code> per environment, with secrets encrypted at rest and masked on screen.</p></div>
<div><h2>Traces</h2><p>A Gantt waterfall and a service map for every execution, from OpenTelemetry spans.</p></div>
<div><h2>History &amp; analytics</h2><p>Every execution kept, latency percentiles and error rates over time.</p></div>
</section></main>"#;
    html(StatusCode::OK, shell("API workbench", "", content, ""))
}

#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

fn auth_form(kind: &str, next: &str) -> String {
    let signup = kind == "signup";
    let (title, button, other) = if signup {
        (
            "Create your account",
            "Create account",
            format!(
                "Already have an account? <a href=\"/signin?next={}\">Sign in</a>",
                encode(next)
            ),
        )
    } else {
        (
            "Sign in",
            "Sign in",
            format!(
                "New to PRISM? <a href=\"/signup?next={}\">Create an account</a>",
                encode(next)
            ),
        )
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "<main class=\"auth\"><a class=\"brand\" href=\"/\">◆ PRISM</a>\
         <form class=\"card\" id=\"auth-form\" data-kind=\"{kind}\" data-next=\"{}\" novalidate>\
         <h1>{title}</h1><p class=\"error\" id=\"form-error\" role=\"alert\"></p>",
        esc(next)
    );
    if signup {
        field(&mut out, "name", "Name", "text", "name");
    }
    field(&mut out, "email", "Email", "email", "email");
    field(
        &mut out,
        "password",
        "Password",
        "password",
        if signup {
            "new-password"
        } else {
            "current-password"
        },
    );
    let _ = write!(
        out,
        "<button class=\"primary\" type=\"submit\">{button}</button><p class=\"muted\">{other}</p></form></main>"
    );
    out
}

fn field(out: &mut String, name: &str, label: &str, kind: &str, autocomplete: &str) {
    let _ = write!(
        out,
        "<label for=\"f-{name}\">{label}</label>\
         <input id=\"f-{name}\" name=\"{name}\" type=\"{kind}\" autocomplete=\"{autocomplete}\" \
         aria-describedby=\"e-{name}\" required>\
         <p class=\"field-error\" id=\"e-{name}\" data-for=\"{name}\" role=\"alert\"></p>"
    );
}

/// `/signin?next=…`.
pub async fn signin(MaybeCaller(caller): MaybeCaller, Query(q): Query<NextQuery>) -> Response {
    let next = safe_next(q.next.as_deref());
    if caller.is_some() {
        return redirect(next);
    }
    let content = auth_form("signin", next);
    html(StatusCode::OK, shell("Sign in", "", &content, "auth.js"))
}

/// `/signup?next=…`.
pub async fn signup(MaybeCaller(caller): MaybeCaller, Query(q): Query<NextQuery>) -> Response {
    let next = safe_next(q.next.as_deref());
    if caller.is_some() {
        return redirect(next);
    }
    let content = auth_form("signup", next);
    html(
        StatusCode::OK,
        shell("Create an account", "", &content, "auth.js"),
    )
}

#[derive(Debug, Deserialize)]
pub struct WorkspaceQuery {
    /// The workspace to show; the caller's first one by default.
    w: Option<String>,
}

/// The caller's workspaces and the one to show (`None` when they have none).
async fn choose(
    state: &SoulState,
    caller: &Caller,
    wanted: Option<&str>,
) -> Result<(Vec<(Workspace, Role)>, Option<usize>), ApiError> {
    let mut mine = state.store.list_workspaces_for_user(caller.user.id).await?;
    mine.sort_by_key(|(w, _)| w.name.to_lowercase());
    let wanted: Option<WorkspaceId> = wanted.and_then(|w| w.parse().ok());
    let current = wanted
        .and_then(|id| mine.iter().position(|(w, _)| w.id == id))
        .or(if mine.is_empty() { None } else { Some(0) });
    Ok((mine, current))
}

fn error_page(err: &ApiError) -> Response {
    let content = format!(
        "<main class=\"auth\"><div class=\"card\"><h1>Something went wrong</h1><p>{}</p>\
         <p class=\"muted\">{}</p><p><a href=\"/app\">Back to the workbench</a></p></div></main>",
        esc(&err.message),
        esc(&err.code)
    );
    html(err.status, shell("Error", "", &content, ""))
}

/// The top bar shared by the workbench and analytics.
fn top_bar(
    out: &mut String,
    caller: &Caller,
    mine: &[(Workspace, Role)],
    current: Option<usize>,
    page: &str,
) {
    out.push_str("<header class=\"top\"><a class=\"brand\" href=\"/app\">◆ PRISM</a>");
    out.push_str("<label class=\"ws\"><span class=\"sr\">Workspace</span><select id=\"ws-select\" aria-label=\"Workspace\">");
    for (i, (w, role)) in mine.iter().enumerate() {
        let _ = write!(
            out,
            "<option value=\"{}\"{}>{} ({})</option>",
            w.id,
            if Some(i) == current { " selected" } else { "" },
            esc(&w.name),
            role
        );
    }
    out.push_str("</select></label><button id=\"ws-new\" type=\"button\">New workspace</button>");
    if let Some((w, role)) = current.map(|i| &mine[i]) {
        if role.can_administer() {
            out.push_str("<button id=\"ws-members\" type=\"button\">Members</button>");
        }
        let _ = write!(
            out,
            "<nav class=\"pages\"><a href=\"/app?w={id}\"{a}>Workbench</a><a href=\"/app/analytics?w={id}\"{b}>Analytics</a></nav>",
            id = w.id,
            a = if page == "app" {
                " aria-current=\"page\""
            } else {
                ""
            },
            b = if page == "analytics" {
                " aria-current=\"page\""
            } else {
                ""
            },
        );
    }
    let _ = write!(
        out,
        "<span class=\"me\" title=\"{}\">{}</span><button id=\"signout\" type=\"button\">Sign out</button></header>",
        esc(caller.user.email.as_str()),
        esc(&caller.user.name),
    );
}

fn body_attrs(caller: &Caller, current: Option<&(Workspace, Role)>) -> String {
    let mut attrs = format!("data-user=\"{}\"", caller.user.id);
    if let Some((w, role)) = current {
        let _ = write!(attrs, " data-workspace=\"{}\" data-role=\"{role}\"", w.id);
    }
    attrs
}

/// `/app`: the workbench.
pub async fn workbench(
    State(state): State<SoulState>,
    MaybeCaller(caller): MaybeCaller,
    Query(q): Query<WorkspaceQuery>,
    uri: Uri,
) -> Response {
    let Some(caller) = caller else {
        return to_signin(&uri);
    };
    match render_workbench(&state, &caller, q.w.as_deref()).await {
        Ok(page) => html(StatusCode::OK, page),
        Err(err) => error_page(&err),
    }
}

/// The workbench page for `caller` (public for the render benchmark).
pub async fn render_workbench(
    state: &SoulState,
    caller: &Caller,
    wanted: Option<&str>,
) -> Result<String, ApiError> {
    let (mine, current) = choose(state, caller, wanted).await?;
    let mut out = String::with_capacity(16 * 1024);
    top_bar(&mut out, caller, &mine, current, "app");
    let Some((workspace, role)) = current.map(|i| &mine[i]) else {
        out.push_str(
            "<main class=\"empty-state\"><h1>Welcome to PRISM</h1>\
             <p>Create a workspace to hold your collections, environments and history.</p>\
             <form id=\"first-ws\" class=\"inline-form\"><label for=\"first-ws-name\">Workspace name</label>\
             <input id=\"first-ws-name\" name=\"name\" required value=\"My workspace\">\
             <button class=\"primary\" type=\"submit\">Create workspace</button>\
             <p class=\"field-error\" data-for=\"name\" role=\"alert\"></p></form></main>",
        );
        return Ok(shell(
            "Workbench",
            &body_attrs(caller, None),
            &out,
            "app.js",
        ));
    };
    let (collections, requests, environments) = tokio::try_join!(
        state.store.list_collections(workspace.id),
        state.store.list_workspace_requests(workspace.id),
        state.store.list_environments(workspace.id),
    )?;
    let editable = role.can_edit();
    out.push_str("<div class=\"layout\"><aside class=\"side\" aria-label=\"Sidebar\">");
    out.push_str("<section class=\"panel grow\" aria-labelledby=\"h-col\"><div class=\"panel-head\"><h2 id=\"h-col\">Collections</h2>");
    if editable {
        out.push_str(
            "<button id=\"col-new\" type=\"button\" title=\"New collection\">+ Collection</button>",
        );
    }
    out.push_str("</div><input id=\"tree-filter\" type=\"search\" placeholder=\"Filter requests\" aria-label=\"Filter requests\">");
    if editable {
        out.push_str(
            "<div class=\"tree-actions\" id=\"tree-actions\" role=\"toolbar\" aria-label=\"Selected item\">\
             <button data-act=\"new-request\" disabled>+ Request</button><button data-act=\"new-folder\" disabled>+ Folder</button>\
             <button data-act=\"rename\" disabled title=\"F2\">Rename</button><button data-act=\"duplicate\" disabled>Duplicate</button><button data-act=\"move\" disabled>Move…</button>\
             <button data-act=\"delete\" disabled class=\"danger\" title=\"Delete\">Delete</button></div>",
        );
    }
    out.push_str("<p class=\"error\" id=\"tree-error\" role=\"alert\"></p><div id=\"tree\">");
    render_tree(&mut out, &collections, &requests, editable);
    out.push_str("</div></section>");
    out.push_str("<section class=\"panel\" aria-labelledby=\"h-env\"><div class=\"panel-head\"><h2 id=\"h-env\">Environment</h2>");
    if editable {
        out.push_str("<button id=\"env-new\" type=\"button\">+ New</button>");
    }
    out.push_str("</div><div class=\"row-flex\"><select id=\"env-select\" aria-label=\"Active environment\"><option value=\"\">No environment</option>");
    for env in &environments {
        let _ = write!(
            out,
            "<option value=\"{}\">{}</option>",
            env.id,
            esc(&env.name)
        );
    }
    out.push_str("</select><button id=\"env-edit\" type=\"button\">Edit</button></div></section>");
    out.push_str("<section class=\"panel history\" aria-labelledby=\"h-hist\"><div class=\"panel-head\"><h2 id=\"h-hist\">History</h2>\
                  <button id=\"hist-refresh\" type=\"button\" title=\"Reload history\">↻</button></div><ol id=\"history\" class=\"history-list\"></ol>\
                  <button id=\"hist-more\" type=\"button\" hidden>Older…</button></section>");
    out.push_str("</aside><main class=\"main\"><div id=\"tabs\" class=\"tabs\" role=\"tablist\" aria-label=\"Open requests\"></div>");
    out.push_str(EDITOR);
    out.push_str("</main></div>");
    out.push_str(TRACE_PANEL);
    out.push_str("<dialog id=\"dlg\"><form method=\"dialog\" id=\"dlg-form\"><h2 id=\"dlg-title\"></h2><div id=\"dlg-body\"></div>\
                  <p class=\"error\" id=\"dlg-error\" role=\"alert\"></p><div class=\"dlg-buttons\"><button value=\"cancel\" type=\"button\" id=\"dlg-cancel\">Cancel</button>\
                  <button value=\"ok\" class=\"primary\" id=\"dlg-ok\" type=\"submit\">OK</button></div></form></dialog>");
    let attrs = body_attrs(caller, Some(&(workspace.clone(), *role)));
    Ok(shell(
        &workspace.name,
        &format!("class=\"wb\" {attrs}"),
        &out,
        "app.js",
    ))
}

/// The request editor's skeleton; the script fills it from the open tab.
const EDITOR: &str = r#"<section id="editor" class="editor" hidden aria-label="Request">
<div class="req-line"><select id="r-protocol" aria-label="Protocol"><option value="rest">REST</option><option value="graphql">GraphQL</option><option value="grpc">gRPC</option></select>
<select id="r-method" aria-label="Method" data-only="rest"><option>GET</option><option>POST</option><option>PUT</option><option>PATCH</option><option>DELETE</option><option>HEAD</option><option>OPTIONS</option></select>
<input id="r-url" class="mono grow" aria-label="URL" placeholder="https://api.example.com/path?q=1" data-only="rest graphql" spellcheck="false">
<input id="r-address" class="mono grow" aria-label="Server address" placeholder="host:port" data-only="grpc" spellcheck="false">
<a id="r-analytics" class="button" hidden title="Latency and errors of this saved request">Analytics</a><button id="r-save" type="button" title="Save (Ctrl+S)">Save</button><button id="r-send" class="primary" type="button" title="Send (Ctrl+Enter)">Send</button></div>
<p class="field-error" data-for="url" role="alert"></p><p class="field-error" data-for="server_address" id="g-address-error" role="alert"></p>
<div id="r-vars" class="vars" aria-live="polite"></div>
<div class="subtabs" role="tablist" aria-label="Request parts">
<button role="tab" data-pane="params" data-only="rest">Params</button><button role="tab" data-pane="headers" data-only="rest graphql">Headers</button><button role="tab" data-pane="body" data-only="rest">Body</button>
<button role="tab" data-pane="query" data-only="graphql">Query</button><button role="tab" data-pane="variables" data-only="graphql">Variables</button>
<button role="tab" data-pane="service" data-only="grpc">Service</button><button role="tab" data-pane="proto" data-only="grpc">Proto</button><button role="tab" data-pane="metadata" data-only="grpc">Metadata</button><button role="tab" data-pane="message" data-only="grpc">Message</button></div>
<div class="pane" data-pane="params"><div class="kv" id="r-params"></div></div>
<div class="pane" data-pane="headers"><div class="kv" id="r-headers"></div></div>
<div class="pane" data-pane="body"><div class="row-flex"><select id="r-body-kind" aria-label="Body type"><option value="none">No body</option><option value="json">JSON</option><option value="raw">Text</option><option value="form">Form</option></select><button id="r-format" type="button">Format JSON</button></div>
<textarea id="r-body" class="mono code" aria-label="Body" spellcheck="false"></textarea><div class="kv" id="r-form"></div><p class="field-error" data-for="body" role="alert"></p></div>
<div class="pane" data-pane="query"><textarea id="r-query" class="mono code" aria-label="GraphQL query" spellcheck="false"></textarea><p class="field-error" data-for="query" role="alert"></p><label>Operation name <input id="r-operation" class="mono"></label>
<p><button id="gql-load" type="button">Load schema</button></p><div id="gql-schema" class="schema" aria-live="polite"></div></div>
<div class="pane" data-pane="variables"><textarea id="r-variables" class="mono code" aria-label="GraphQL variables" spellcheck="false"></textarea><p class="field-error" data-for="variables" role="alert"></p></div>
<div class="pane" data-pane="service"><div class="row-flex"><button id="g-load" type="button" title="List the server's services (reflection) or the pasted proto's">Load services</button><span id="g-status" class="muted" role="status"></span></div>
<div class="grid2"><label>Service <select id="g-service" aria-label="Pick a service" hidden></select><input id="r-service" class="mono" placeholder="package.Service" aria-label="Service name"></label><label>Method <select id="g-method" aria-label="Pick a method" hidden></select><input id="r-grpc-method" class="mono" placeholder="Method" aria-label="Method name"></label>
<label class="check"><input type="checkbox" id="r-tls"> Use TLS</label><label>Timeout (ms) <input id="r-timeout" type="number" min="1"></label></div><p class="field-error" data-for="service" role="alert"></p></div>
<div class="pane" data-pane="proto"><p class="muted">Paste a <code>.proto</code> file, or leave empty to use server reflection.</p><textarea id="r-proto" class="mono code" aria-label="Proto file" spellcheck="false"></textarea><p class="field-error" data-for="proto_files" id="g-proto-error" role="alert"></p></div>
<div class="pane" data-pane="metadata"><div class="kv" id="r-metadata"></div></div>
<div class="pane" data-pane="message"><p id="g-hint" class="muted" hidden></p><textarea id="r-message" class="mono code" aria-label="Message (JSON)" spellcheck="false"></textarea></div>
<p class="error" id="r-error" role="alert"></p>
</section>
<section id="welcome" class="welcome"><h2>No request open</h2><p>Open a request from the sidebar, or create one with <b>+ Request</b> after selecting a collection.</p><p><button id="scratch" type="button">New unsaved request</button></p></section>
<section id="response" class="response" aria-label="Response" hidden>
<div class="resp-head"><span id="resp-status" class="status"></span><span id="resp-time"></span><span id="resp-size"></span><span class="grow"></span>
<input id="resp-search" type="search" placeholder="Search body" aria-label="Search response body"><button id="resp-copy" type="button">Copy</button><a id="resp-download" download="response.txt" class="button">Download</a></div>
<div class="subtabs" role="tablist" aria-label="Response parts"><button role="tab" data-rpane="body" aria-selected="true">Body</button><button role="tab" data-rpane="headers">Headers</button><button role="tab" data-rpane="cookies">Cookies</button><button role="tab" data-rpane="timing">Timing</button></div>
<p id="resp-note" class="muted"></p>
<pre id="resp-body" class="rpane mono body" data-rpane="body" tabindex="0"></pre><div class="rpane" data-rpane="headers" hidden><table id="resp-headers" class="table"></table></div>
<div class="rpane" data-rpane="cookies" hidden><table id="resp-cookies" class="table"></table></div><div class="rpane" data-rpane="timing" hidden><div id="resp-phases" class="phases"></div><table id="resp-timing" class="table"></table></div>
</section>"#;

const TRACE_PANEL: &str = r#"<section id="trace-panel" class="trace-panel" aria-label="Trace">
<div class="panel-head"><h2>Trace</h2><div class="subtabs" role="tablist" aria-label="Trace views"><button role="tab" data-tview="gantt" aria-selected="true">Waterfall</button><button role="tab" data-tview="map">Service map</button></div>
<span id="trace-id" class="mono muted"></span><span id="trace-live" class="live" hidden>● live</span></div>
<div class="trace-body"><div id="gantt" class="tview" data-tview="gantt"><p class="muted">Send a request to see its trace.</p></div><div id="svcmap" class="tview" data-tview="map" hidden></div>
<aside id="span-detail" class="span-detail" aria-live="polite"></aside></div></section>"#;

/// The collections tree: top-level collections, their folders, then their requests. For editors
/// (`editable`) every folder and request row is draggable: the script moves what is dropped on a
/// collection or folder with the move API.
fn render_tree(
    out: &mut String,
    collections: &[Collection],
    requests: &[SavedRequest],
    editable: bool,
) {
    let mut children: HashMap<Option<CollectionId>, Vec<&Collection>> = HashMap::new();
    for c in collections {
        children.entry(c.parent_id).or_default().push(c);
    }
    for list in children.values_mut() {
        list.sort_by_key(|c| (c.position, c.created_at));
    }
    let mut by_collection: HashMap<CollectionId, Vec<&SavedRequest>> = HashMap::new();
    for r in requests {
        by_collection.entry(r.collection_id).or_default().push(r);
    }
    for list in by_collection.values_mut() {
        list.sort_by_key(|r| (r.position, r.created_at));
    }
    if collections.is_empty() {
        out.push_str("<p class=\"muted\" id=\"tree-empty\">No collections yet.</p>");
        return;
    }
    out.push_str("<ul class=\"tree\" role=\"tree\" aria-label=\"Collections\">");
    let row = if editable {
        "<div class=\"row\" tabindex=\"-1\" draggable=\"true\">"
    } else {
        "<div class=\"row\" tabindex=\"-1\">"
    };
    render_level(out, &children, &by_collection, None, 0, row);
    out.push_str("</ul>");
}

fn render_level(
    out: &mut String,
    children: &HashMap<Option<CollectionId>, Vec<&Collection>>,
    requests: &HashMap<CollectionId, Vec<&SavedRequest>>,
    parent: Option<CollectionId>,
    depth: usize,
    row: &str,
) {
    for c in children.get(&parent).into_iter().flatten() {
        let _ = write!(
            out,
            "<li role=\"treeitem\" aria-expanded=\"true\" class=\"node col\" data-kind=\"collection\" data-id=\"{}\" data-name=\"",
            c.id
        );
        esc_into(out, &c.name);
        out.push_str("\">");
        out.push_str(row);
        out.push_str("<span class=\"twisty\" aria-hidden=\"true\"></span><span class=\"name\">");
        esc_into(out, &c.name);
        out.push_str("</span></div><ul role=\"group\">");
        if depth < 32 {
            render_level(out, children, requests, Some(c.id), depth + 1, row);
        }
        for r in requests.get(&c.id).into_iter().flatten() {
            let (badge, class) = badge(&r.spec);
            let _ = write!(
                out,
                "<li role=\"treeitem\" class=\"node req\" data-kind=\"request\" data-id=\"{}\" data-name=\"",
                r.id
            );
            esc_into(out, &r.name);
            let _ = write!(
                out,
                "\">{row}<span class=\"badge {class}\">{}</span><span class=\"name\">",
                esc(&badge)
            );
            esc_into(out, &r.name);
            out.push_str("</span></div></li>");
        }
        out.push_str("</ul></li>");
    }
}

/// The badge text and class of a request: its HTTP method, `GQL` or `gRPC`.
fn badge(spec: &RequestSpec) -> (String, &'static str) {
    match spec {
        RequestSpec::Rest(rest) => {
            let method = rest.method.to_ascii_uppercase();
            let class = match method.as_str() {
                "GET" => "b-get",
                "POST" => "b-post",
                "PUT" => "b-put",
                "PATCH" => "b-patch",
                "DELETE" => "b-delete",
                _ => "b-other",
            };
            let short: String = method.chars().take(6).collect();
            (short, class)
        }
        RequestSpec::Graphql(_) => ("GQL".into(), "b-gql"),
        RequestSpec::Grpc(_) => ("gRPC".into(), "b-grpc"),
    }
}

/// `/app/tree/{workspace_id}`: the collections tree alone, for the workbench to swap in.
pub async fn tree_fragment(
    State(state): State<SoulState>,
    MaybeCaller(caller): MaybeCaller,
    Path(id): Path<String>,
) -> Response {
    let Some(caller) = caller else {
        return ApiError::unauthenticated().into_response();
    };
    let Ok(id) = id.parse::<WorkspaceId>() else {
        return access::workspace_not_found().into_response();
    };
    let result = async {
        let (_, role) = access::workspace(&state, &caller, id, Action::Read).await?;
        let (collections, requests) = tokio::try_join!(
            state.store.list_collections(id),
            state.store.list_workspace_requests(id),
        )?;
        let mut out = String::with_capacity(8 * 1024);
        render_tree(&mut out, &collections, &requests, role.can_edit());
        Ok::<_, ApiError>(out)
    }
    .await;
    match result {
        Ok(fragment) => html(StatusCode::OK, fragment),
        Err(err) => err.into_response(),
    }
}

/// The saved-request picker of the analytics page: "All requests", then every request by its
/// path in the tree ("Collection / Folder / Name"), sorted.
fn request_picker(out: &mut String, collections: &[Collection], requests: &[SavedRequest]) {
    let by_id: HashMap<CollectionId, &Collection> = collections.iter().map(|c| (c.id, c)).collect();
    let path = |mut at: Option<CollectionId>| {
        let mut parts = Vec::new();
        while let Some(c) = at.and_then(|id| by_id.get(&id)) {
            parts.push(c.name.as_str());
            at = c.parent_id;
            if parts.len() > 32 {
                break;
            }
        }
        parts.reverse();
        parts.join(" / ")
    };
    let mut listed: Vec<(String, &SavedRequest)> = requests
        .iter()
        .map(|r| (format!("{} / {}", path(Some(r.collection_id)), r.name), r))
        .collect();
    listed.sort_by_key(|(label, _)| label.to_lowercase());
    out.push_str(
        "<label class=\"an-pick\">Saved request <select id=\"an-request\" aria-label=\"Saved request\">\
         <option value=\"\">All requests</option>",
    );
    for (label, r) in listed {
        let (badge, _) = badge(&r.spec);
        let _ = write!(out, "<option value=\"{}\">{} ", r.id, esc(&badge));
        esc_into(out, &label);
        out.push_str("</option>");
    }
    out.push_str("</select></label>");
}

/// `/app/analytics`: charts of the workspace's executions, or of one saved request or endpoint
/// (the filters are in the query string; the script reads them).
pub async fn analytics(
    State(state): State<SoulState>,
    MaybeCaller(caller): MaybeCaller,
    Query(q): Query<WorkspaceQuery>,
    uri: Uri,
) -> Response {
    let Some(caller) = caller else {
        return to_signin(&uri);
    };
    let (mine, current) = match choose(&state, &caller, q.w.as_deref()).await {
        Ok(found) => found,
        Err(err) => return error_page(&err),
    };
    let mut out = String::with_capacity(4096);
    top_bar(&mut out, &caller, &mine, current, "analytics");
    let workspace = current.map(|i| &mine[i].0);
    out.push_str("<main class=\"analytics\"><div class=\"panel-head\"><h1>Analytics</h1>");
    out.push_str(
        "<div class=\"subtabs\" role=\"radiogroup\" aria-label=\"Time window\" id=\"window\">\
         <button role=\"radio\" data-window=\"15m\">15 min</button><button role=\"radio\" data-window=\"1h\">1 hour</button>\
         <button role=\"radio\" data-window=\"24h\" aria-checked=\"true\">24 hours</button><button role=\"radio\" data-window=\"7d\">7 days</button>\
         <button role=\"radio\" data-window=\"30d\">30 days</button></div></div>",
    );
    if let Some(workspace) = workspace {
        // Where the charts are drilled into (the script fills it from the URL), and every saved
        // request as a way in.
        let _ = write!(
            out,
            "<div class=\"an-bar\"><nav class=\"crumbs\" id=\"an-crumbs\" aria-label=\"Breadcrumb\" data-name=\"{}\">{}</nav>",
            esc(&workspace.name),
            esc(&workspace.name)
        );
        match tokio::try_join!(
            state.store.list_collections(workspace.id),
            state.store.list_workspace_requests(workspace.id),
        ) {
            Ok((collections, requests)) => request_picker(&mut out, &collections, &requests),
            Err(err) => return error_page(&err.into()),
        }
        out.push_str("</div>");
    }
    out.push_str(
        "<p class=\"error\" id=\"an-error\" role=\"alert\"></p>\
         <p class=\"empty-window\" id=\"an-empty\" role=\"status\" hidden>No executions in this window.</p>\
         <section class=\"cards\" id=\"an-cards\"></section>\
         <div class=\"charts\"><section class=\"chart\"><h2>Requests over time</h2><div id=\"an-series\"></div></section>\
         <section class=\"chart\"><h2>Latency histogram</h2><div id=\"an-histogram\"></div></section></div>\
         <section class=\"chart\"><h2>Top endpoints</h2><table class=\"table\" id=\"an-top\"></table></section></main>",
    );
    let attrs = body_attrs(&caller, current.map(|i| &mine[i]));
    html(
        StatusCode::OK,
        shell(
            "Analytics",
            &format!("class=\"an\" {attrs}"),
            &out,
            "analytics.js",
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_only_goes_to_this_site() {
        assert_eq!(safe_next(Some("/app?w=1")), "/app?w=1");
        assert_eq!(safe_next(Some("//evil.example/x")), "/app");
        assert_eq!(safe_next(Some("https://evil.example")), "/app");
        assert_eq!(safe_next(Some("/\\evil.example")), "/app");
        assert_eq!(safe_next(None), "/app");
    }

    #[test]
    fn next_is_percent_encoded() {
        assert_eq!(encode("/app?w=a&b=c d"), "/app%3Fw%3Da%26b%3Dc%20d");
    }
}
