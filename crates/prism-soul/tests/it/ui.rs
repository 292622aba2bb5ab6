//! The web UI as served: pages for signed-out and signed-in visitors, the collections tree
//! (escaped, role-aware), assets with ETags, the workbench's size budget, and the live trace
//! stream the workbench listens to.

use std::sync::Arc;
use std::time::Duration;

use prism_domain::collection::Collection;
use prism_domain::request::{RequestSpec, SavedRequest};
use prism_domain::session::{Session, hash_secret};
use prism_domain::trace::{Scope, Span, SpanId, SpanKind, StatusCode, TraceId};
use prism_domain::{CollectionId, RequestId, Role, UserId, WorkspaceId};
use prism_store::Store;
use prism_testkit::for_each_backend;
use serde_json::json;

use crate::support::{Soul, TestUser, client, now};

/// A browser session for `user`: the cookie header value and the CSRF token.
pub async fn browser_session(store: &Arc<dyn Store>, user: UserId) -> (String, String) {
    let token = format!("ui-test-session-{}", UserId::new());
    let csrf = format!("ui-test-csrf-{}", UserId::new());
    let at = now();
    store
        .insert_session(&Session {
            token_hash: hash_secret(&token),
            user_id: user,
            csrf_hash: hash_secret(&csrf),
            created_at: at,
            expires_at: at.plus_nanos(3_600_000_000_000),
            last_seen_at: at,
            user_agent: None,
        })
        .await
        .unwrap();
    (format!("prism_session={token}; prism_csrf={csrf}"), csrf)
}

/// GET without following redirects: status, `Location`, headers and body.
async fn page(
    soul: &Soul,
    path: &str,
    cookie: Option<&str>,
) -> (u16, Option<String>, reqwest::header::HeaderMap, String) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut req = client.get(soul.url(path));
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    let headers = resp.headers().clone();
    (status, location, headers, resp.text().await.unwrap())
}

pub fn rest(method: &str, url: &str) -> RequestSpec {
    serde_json::from_value(json!({"protocol": "rest", "method": method, "url": url})).unwrap()
}

pub async fn seed(
    store: &Arc<dyn Store>,
    ws: WorkspaceId,
    parent: Option<CollectionId>,
    name: &str,
) -> CollectionId {
    let at = now();
    store
        .insert_collection(&Collection {
            id: CollectionId::new(),
            workspace_id: ws,
            parent_id: parent,
            name: name.into(),
            position: 0,
            created_by: None,
            created_at: at,
            updated_at: at,
        })
        .await
        .unwrap()
        .id
}

pub async fn seed_request(
    store: &Arc<dyn Store>,
    ws: WorkspaceId,
    collection: CollectionId,
    name: &str,
    spec: RequestSpec,
) {
    let at = now();
    store
        .insert_request(&SavedRequest {
            id: RequestId::new(),
            workspace_id: ws,
            collection_id: collection,
            name: name.into(),
            position: 0,
            spec,
            created_by: None,
            created_at: at,
            updated_at: at,
        })
        .await
        .unwrap();
}

fn span(trace: TraceId, ws: WorkspaceId, service: &str) -> Span {
    let start = now();
    Span {
        trace_id: trace,
        span_id: SpanId::random(),
        parent_span_id: None,
        workspace_id: Some(ws),
        name: format!("{service} work"),
        service: service.into(),
        kind: SpanKind::Server,
        start,
        end: start.plus_nanos(2_000_000),
        status_code: StatusCode::Unset,
        status_message: None,
        attributes: Default::default(),
        events: vec![],
        links: vec![],
        resource_attributes: Default::default(),
        scope: Scope::default(),
        trace_state: None,
        flags: 1,
    }
}

/// Reads an SSE response until `done` says so (or the patience runs out, failing).
async fn read_events(resp: reqwest::Response, done: impl Fn(&str) -> bool) -> String {
    let mut resp = resp;
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !done(&text) {
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .expect("stream delivered in time")
            .unwrap();
        match chunk {
            Some(bytes) => text.push_str(&String::from_utf8_lossy(&bytes)),
            None => break,
        }
    }
    text
}

mod suite {
    use super::*;

    pub async fn signed_out_visitors_get_the_landing_page_and_sign_in(store: Arc<dyn Store>) {
        let soul = Soul::start(store).await;
        let (status, _, headers, body) = page(&soul, "/", None).await;
        assert_eq!(status, 200);
        assert!(body.contains("Create an account"), "{body}");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(!body.contains("<script>"), "no inline script");

        let (status, location, _, _) = page(&soul, "/app?w=abc", None).await;
        assert_eq!(status, 303);
        assert_eq!(location.as_deref(), Some("/signin?next=/app%3Fw%3Dabc"));
        let (status, _, _, body) = page(&soul, "/signin?next=/app%3Fw%3Dabc", None).await;
        assert_eq!(status, 200);
        assert!(body.contains("data-next=\"/app?w=abc\""), "{body}");
        assert!(body.contains("data-for=\"email\""), "inline error slot");
        // Only paths on this site are followed after sign-in.
        let (_, _, _, body) = page(&soul, "/signin?next=//evil.example/", None).await;
        assert!(body.contains("data-next=\"/app\""), "{body}");
        let (_, _, _, body) = page(&soul, "/signup", None).await;
        assert!(body.contains("id=\"f-name\""), "{body}");
    }

    pub async fn signed_in_users_get_their_workbench_with_an_escaped_tree(store: Arc<dyn Store>) {
        let soul = Soul::start(store.clone()).await;
        let editor = soul.user("ed@example.com").await;
        let viewer = soul.user("vi@example.com").await;
        let ws = workspace(&editor, "Team <1>").await;
        soul.state
            .store
            .insert_membership(&prism_domain::workspace::Membership {
                workspace_id: ws,
                user_id: viewer.id,
                role: Role::Viewer,
                joined_at: now(),
            })
            .await
            .unwrap();
        let top = seed(&store, ws, None, "Payments & <Refunds>").await;
        let folder = seed(&store, ws, Some(top), "Cards").await;
        seed_request(
            &store,
            ws,
            folder,
            "<script>alert(1)</script>",
            rest("delete", "https://x.test/a"),
        )
        .await;
        seed_request(&store, ws, top, "List", rest("GET", "https://x.test/l")).await;

        let (cookie, _) = browser_session(&store, editor.id).await;
        let (status, location, _, _) = page(&soul, "/", Some(&cookie)).await;
        assert_eq!((status, location.as_deref()), (303, Some("/app")));
        let (status, _, _, body) = page(&soul, &format!("/app?w={ws}"), Some(&cookie)).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("Payments &amp; &lt;Refunds&gt;"), "{body}");
        assert!(body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!body.contains("<script>alert"), "names are escaped");
        assert!(body.contains("Team &lt;1&gt; (admin)"));
        assert!(
            body.contains("<span class=\"badge b-delete\">DELETE</span>"),
            "{body}"
        );
        assert!(body.contains("id=\"col-new\""), "editors may create");
        // Editors may drag folders and requests onto collections to move them.
        assert_eq!(body.matches("draggable=\"true\"").count(), 4, "{body}");
        assert!(
            body.contains("id=\"r-analytics\""),
            "the editor links to analytics"
        );
        assert!(body.contains(&format!("data-workspace=\"{ws}\"")));
        // The folder sits inside its collection, before the collection's own requests.
        let folder_at = body.find(">Cards<").unwrap();
        let list_at = body.find(">List<").unwrap();
        assert!(body.find("Payments &amp;").unwrap() < folder_at && folder_at < list_at);

        let (vcookie, _) = browser_session(&store, viewer.id).await;
        let (_, _, _, body) = page(&soul, &format!("/app?w={ws}"), Some(&vcookie)).await;
        assert!(body.contains("data-role=\"viewer\""), "{body}");
        assert!(
            !body.contains("id=\"col-new\""),
            "viewers get no create button"
        );
        assert!(!body.contains("id=\"tree-actions\""), "nor edit actions");
        assert!(!body.contains("draggable"), "nor draggable rows");

        // The fragment the workbench reloads; outsiders get the same 404 as a missing workspace.
        let (status, _, _, fragment) =
            page(&soul, &format!("/app/tree/{ws}"), Some(&vcookie)).await;
        assert_eq!(status, 200);
        assert!(fragment.starts_with("<ul class=\"tree\""), "{fragment}");
        assert!(!fragment.contains("draggable"), "{fragment}");
        let (_, _, _, fragment) = page(&soul, &format!("/app/tree/{ws}"), Some(&cookie)).await;
        assert_eq!(fragment.matches("draggable=\"true\"").count(), 4);
        let outsider = soul.user("out@example.com").await;
        let (ocookie, _) = browser_session(&store, outsider.id).await;
        let (status, _, _, body) = page(&soul, &format!("/app/tree/{ws}"), Some(&ocookie)).await;
        assert_eq!(status, 404);
        assert!(body.contains("workspace_not_found"), "{body}");
        // An outsider asking for the workspace sees their own (empty) workbench instead.
        let (status, _, _, body) = page(&soul, &format!("/app?w={ws}"), Some(&ocookie)).await;
        assert_eq!(status, 200);
        assert!(!body.contains("Payments"), "{body}");
        assert!(body.contains("id=\"first-ws\""));
    }

    pub async fn analytics_offers_every_saved_request_and_a_breadcrumb(store: Arc<dyn Store>) {
        let soul = Soul::start(store.clone()).await;
        let user = soul.user("an@example.com").await;
        let ws = workspace(&user, "Shop <A>").await;
        let top = seed(&store, ws, None, "Orders").await;
        let folder = seed(&store, ws, Some(top), "Old & new").await;
        seed_request(
            &store,
            ws,
            folder,
            "<b>List</b>",
            rest("GET", "https://x.test/"),
        )
        .await;
        seed_request(&store, ws, top, "Create", rest("POST", "https://x.test/")).await;
        let (cookie, _) = browser_session(&store, user.id).await;
        let path = format!("/app/analytics?w={ws}&window=1h&request_id=whatever");
        let (status, _, _, body) = page(&soul, &path, Some(&cookie)).await;
        assert_eq!(status, 200, "{body}");
        assert!(
            body.contains(
                "id=\"an-crumbs\" aria-label=\"Breadcrumb\" data-name=\"Shop &lt;A&gt;\""
            ),
            "{body}"
        );
        assert!(body.contains("<option value=\"\">All requests</option>"));
        // Every saved request by its path in the tree, sorted, names escaped.
        let create = body.find("POST Orders / Create</option>").expect("Create");
        let list = body
            .find("GET Orders / Old &amp; new / &lt;b&gt;List&lt;/b&gt;</option>")
            .expect("List");
        assert!(create < list, "{body}");
        assert!(body.contains("id=\"an-empty\""), "an explicit empty state");
        assert!(body.contains("/assets/analytics.js?v="));
    }

    pub async fn assets_are_versioned_and_revalidated(store: Arc<dyn Store>) {
        let soul = Soul::start(store).await;
        let http = client();
        let resp = http.get(soul.url("/assets/app.js")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/javascript")
        );
        assert!(
            resp.headers()["cache-control"]
                .to_str()
                .unwrap()
                .contains("max-age")
        );
        let etag = resp.headers()["etag"].to_str().unwrap().to_owned();
        assert!(resp.text().await.unwrap().contains("import"));
        let again = http
            .get(soul.url("/assets/app.js"))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304);
        let missing = http.get(soul.url("/assets/nope.js")).send().await.unwrap();
        assert_eq!(missing.status(), 404);
        // Pages link the current version.
        let (_, _, _, body) = page(&soul, "/", None).await;
        let v = prism_soul::ui::version("app.css");
        assert!(body.contains(&format!("/assets/app.css?v={v}")), "{body}");
    }

    /// The budget: the workbench's HTML, CSS and JavaScript together ≤ 150 KB.
    pub async fn workbench_stays_within_its_size_budget(store: Arc<dyn Store>) {
        let soul = Soul::start(store.clone()).await;
        let user = soul.user("b@example.com").await;
        let ws = workspace(&user, "Budget").await;
        let top = seed(&store, ws, None, "API").await;
        for i in 0..20 {
            seed_request(
                &store,
                ws,
                top,
                &format!("request {i}"),
                rest("GET", "https://x.test/"),
            )
            .await;
        }
        let (cookie, _) = browser_session(&store, user.id).await;
        let (status, _, _, html) = page(&soul, &format!("/app?w={ws}"), Some(&cookie)).await;
        assert_eq!(status, 200);
        // The page, its stylesheet and every module app.js imports, transitively, as served.
        let mut total = html.len();
        let mut seen = std::collections::BTreeSet::new();
        let mut queue = vec![
            "app.css".to_owned(),
            "app.js".to_owned(),
            "favicon.svg".to_owned(),
        ];
        while let Some(name) = queue.pop() {
            if !seen.insert(name.clone()) {
                continue;
            }
            let (status, _, _, text) = page(&soul, &format!("/assets/{name}"), None).await;
            assert_eq!(status, 200, "{name}");
            total += text.len();
            for part in text.split("from './").skip(1) {
                queue.push(part.split('\'').next().unwrap().to_owned());
            }
        }
        assert!(
            seen.contains("trace.js") && seen.contains("editor.js"),
            "{seen:?}"
        );
        eprintln!("workbench bytes: {total} ({seen:?})");
        assert!(total <= 150 * 1024, "workbench is {total} bytes");
    }

    pub async fn a_trace_streams_live_to_a_member(store: Arc<dyn Store>) {
        let soul = Soul::start(store.clone()).await;
        let member = soul.user("m@example.com").await;
        let outsider = soul.user("o@example.com").await;
        let ws = workspace(&member, "Live").await;
        let trace = TraceId::random();
        let path = format!("/api/traces/{trace}/stream?workspace_id={ws}&quiet_ms=300");

        // Nothing stored yet: the sender names the workspace and waits for the spans.
        let (cookie, _) = browser_session(&store, member.id).await;
        let resp = client()
            .get(soul.url(&path))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        let spans = [span(trace, ws, "checkout"), span(trace, ws, "payments")];
        store.insert_spans(&spans).await.unwrap();
        store.notify_spans(&[trace]).await.unwrap();
        let text = read_events(resp, |t| t.contains("event: complete")).await;
        assert!(text.contains("\"service\":\"checkout\""), "{text}");
        assert!(text.contains("\"service\":\"payments\""), "{text}");
        assert!(
            text.contains(&format!("id: {}", spans[0].span_id)),
            "{text}"
        );
        assert!(text.contains("\"spans\":2"), "{text}");

        // Stored now: a member may stream it without naming the workspace (API token too).
        let resp = client()
            .get(soul.url(&format!("/api/traces/{trace}/stream?quiet_ms=100")))
            .bearer_auth(&member.token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let text = read_events(resp, |t| t.contains("event: complete")).await;
        assert_eq!(text.matches("\"service\":").count(), 2, "{text}");

        // Others get 404s that do not tell whether the trace exists.
        let a = outsider.get(&format!("/api/traces/{trace}/stream")).await;
        assert_eq!((a.status, a.code()), (404, "trace_not_found"));
        let a = outsider
            .get(&format!("/api/traces/{trace}/stream?workspace_id={ws}"))
            .await;
        assert_eq!((a.status, a.code()), (404, "workspace_not_found"));
        let a = member
            .get(&format!("/api/traces/{}/stream", TraceId::random()))
            .await;
        assert_eq!((a.status, a.code()), (404, "trace_not_found"));
        let a = member.get("/api/traces/not-hex/stream").await;
        assert_eq!((a.status, a.code()), (400, "invalid_id"));
        let a = member
            .get(&format!("/api/traces/{trace}/stream?workspace_id=nope"))
            .await;
        assert_eq!((a.status, a.code()), (422, "invalid_field"));
        let a = client()
            .get(soul.url(&format!("/api/traces/{trace}/stream")))
            .send()
            .await
            .unwrap();
        assert_eq!(a.status(), 401);
    }

    async fn workspace(owner: &TestUser, name: &str) -> WorkspaceId {
        owner
            .post("/api/workspaces", json!({ "name": name }))
            .await
            .expect(201)
            .id()
            .parse()
            .unwrap()
    }
}

for_each_backend!(crate::ui::suite =>
    signed_out_visitors_get_the_landing_page_and_sign_in,
    signed_in_users_get_their_workbench_with_an_escaped_tree,
    assets_are_versioned_and_revalidated,
    analytics_offers_every_saved_request_and_a_breadcrumb,
    workbench_stays_within_its_size_budget,
    a_trace_streams_live_to_a_member,
);
