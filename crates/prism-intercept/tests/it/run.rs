//! The run endpoints (`/rest`, `/graphql`, `/run`) end to end: a real upstream on loopback that
//! records what it received, the data plane served over a real database, and the records read
//! back from the store after the recorder flushed.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::{any, post};
use prism_domain::collection::Collection;
use prism_domain::egress::EgressPolicy;
use prism_domain::execution::{ErrorKind, ExecutionSource};
use prism_domain::request::{HttpSettings, RequestSpec, RestSpec, SavedRequest};
use prism_domain::session::hash_secret;
use prism_domain::trace::{SpanKind, StatusCode as SpanStatus, TraceId};
use prism_domain::trace_context::TraceParent;
use prism_domain::{Clock, CollectionId, ExecutionId, RequestId, Role, SystemClock};
use prism_intercept::InterceptSettings;
use prism_intercept::api::auth::service_credential;
use prism_intercept::executor::ExecutorConfig;
use prism_store::Store;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::support::{
    self, Account, DataPlane, account, add_member, client, recorded, serve, serve_with,
};

/// What the upstream saw of one request.
#[derive(Debug)]
struct Seen {
    path: String,
    headers: HeaderMap,
}

struct Upstream {
    addr: std::net::SocketAddr,
    seen: mpsc::UnboundedReceiver<Seen>,
}

impl Upstream {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn next(&mut self) -> Seen {
        self.seen.recv().await.expect("the upstream saw a request")
    }

    fn assert_nothing(&mut self) {
        if let Ok(seen) = self.seen.try_recv() {
            panic!("the upstream unexpectedly received {seen:?}");
        }
    }
}

/// An HTTP upstream: `/status/N` answers N, `/graphql` answers a GraphQL error, anything else 201
/// with a JSON body and two cookies.
async fn upstream() -> Upstream {
    let (tx, seen) = mpsc::unbounded_channel();
    let record = move |uri: Uri, headers: HeaderMap| {
        let tx = tx.clone();
        async move {
            let path = uri.path().to_owned();
            let _ = tx.send(Seen {
                path: path.clone(),
                headers,
            });
            path
        }
    };
    let status_tx = record.clone();
    let app = Router::new()
        .route(
            "/status/{code}",
            any(move |uri: Uri, headers: HeaderMap| {
                let record = status_tx.clone();
                async move {
                    let path = record(uri, headers).await;
                    let code: u16 = path.rsplit('/').next().unwrap().parse().unwrap();
                    (StatusCode::from_u16(code).unwrap(), "status body")
                }
            }),
        )
        .route(
            "/graphql",
            post({
                let record = record.clone();
                move |uri: Uri, headers: HeaderMap| {
                    let record = record.clone();
                    async move {
                        record(uri, headers).await;
                        axum::Json(json!({"data": null, "errors": [{"message": "no such user"}]}))
                    }
                }
            }),
        )
        .fallback(move |uri: Uri, headers: HeaderMap| {
            let record = record.clone();
            async move {
                record(uri, headers).await;
                let mut out = HeaderMap::new();
                out.append("set-cookie", "a=1".parse().unwrap());
                out.append("set-cookie", "b=2".parse().unwrap());
                out.append("x-multi", "one".parse().unwrap());
                out.append("x-multi", "two".parse().unwrap());
                (StatusCode::CREATED, out, axum::Json(json!({"ok": true})))
            }
        });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Upstream { addr, seen }
}

async fn post_json(
    plane: &DataPlane,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let mut request = client().post(plane.url(path)).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, json)
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"))
}

async fn saved_request(store: &Arc<dyn Store>, account: &Account, url: String) -> SavedRequest {
    let now = SystemClock.now();
    let collection = store
        .insert_collection(&Collection {
            id: CollectionId::new(),
            workspace_id: account.workspace,
            parent_id: None,
            name: "API".into(),
            position: 0,
            created_by: Some(account.user.id),
            created_at: now,
            updated_at: now,
        })
        .await
        .unwrap();
    store
        .insert_request(&SavedRequest {
            id: RequestId::new(),
            workspace_id: account.workspace,
            collection_id: collection.id,
            name: "get user".into(),
            position: 0,
            spec: RequestSpec::Rest(RestSpec {
                method: "GET".into(),
                url,
                params: Vec::new(),
                headers: Vec::new(),
                body: Default::default(),
                settings: HttpSettings::default(),
            }),
            created_by: Some(account.user.id),
            created_at: now,
            updated_at: now,
        })
        .await
        .unwrap()
}

fn execution_id(body: &Value) -> ExecutionId {
    body["execution_id"].as_str().unwrap().parse().unwrap()
}

pub async fn rest_call_runs_with_trace_context_and_is_recorded(store: Arc<dyn Store>) {
    let mut up = upstream().await;
    let ada = account(&store, "ada@example.test").await;
    let saved = saved_request(&store, &ada, up.url("/users/42")).await;
    let mut plane = serve(store.clone()).await;

    let (status, body) = post_json(
        &plane,
        "/rest/",
        Some(&ada.token),
        json!({
            "method": "POST",
            "url": up.url("/users/42?verbose=1"),
            "headers": {"X-Custom": "yes", "Content-Type": "application/json"},
            "body": "{\"name\":\"ada\"}",
            "request_id": saved.id.to_string(),
            "collection_id": "ignored, as upstream did",
        }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], 201);
    assert_eq!(body["failed"], false);
    assert_eq!(body["error_kind"], Value::Null);
    assert_eq!(body["error_msg"], "");
    assert_eq!(body["headers"]["x-multi"], "one, two");
    assert_eq!(body["set_cookies"], json!(["a=1", "b=2"]));
    assert_eq!(body["body"], "{\"ok\":true}");
    assert_eq!(body["request_size"], 14);
    assert!(body["request_duration"].as_str().unwrap().ends_with("ms"));
    // A new connection to an IP address: no lookup, a measured connect (TLS would be inside it).
    assert_eq!(body["connection_reused"], false);
    assert_eq!(body["dns_ms"], Value::Null);
    assert_eq!(body["tls_ms"], Value::Null);
    let connect_ms = body["connect_ms"].as_f64().expect("connect measured");
    assert!(connect_ms > 0.0 && connect_ms <= body["ttfb_ms"].as_f64().unwrap());

    // The upstream saw the client span as the parent in a fresh sampled trace.
    let seen = up.next().await;
    assert_eq!(seen.path, "/users/42");
    assert_eq!(seen.headers["x-custom"], "yes");
    let sent = TraceParent::parse(seen.headers["traceparent"].to_str().unwrap()).unwrap();
    assert_eq!(sent.trace_id.to_hex(), body["trace_id"].as_str().unwrap());
    assert_eq!(sent.parent_id.to_hex(), body["span_id"].as_str().unwrap());
    assert_eq!(
        body["traceparent"],
        seen.headers["traceparent"].to_str().unwrap()
    );

    plane.flush().await;
    let execution = store.get_execution(execution_id(&body)).await.unwrap();
    assert_eq!(execution.workspace_id, ada.workspace);
    assert_eq!(execution.request_id, Some(saved.id));
    assert_eq!(execution.created_by, Some(ada.user.id));
    assert_eq!(execution.source, ExecutionSource::DataPlane);
    assert_eq!(execution.status_code, Some(201));
    assert_eq!(execution.method.as_deref(), Some("POST"));
    assert_eq!(execution.endpoint, "/users/{id}");
    assert_eq!(
        execution.target,
        format!("http://127.0.0.1:{}", up.addr.port())
    );
    assert!(!execution.failed);
    assert!(execution.duration_ns > 0);
    assert_eq!(execution.dns_ns, None);
    assert!(
        execution
            .connect_ns
            .is_some_and(|c| c > 0 && Some(c) <= execution.ttfb_ns)
    );
    let detail = store
        .find_execution_detail(execution.id)
        .await
        .unwrap()
        .expect("the snapshot is stored");
    assert_eq!(detail.response["response"]["status"], 201);
    assert_eq!(detail.response["timings"]["connection_reused"], false);

    let trace: TraceId = body["trace_id"].as_str().unwrap().parse().unwrap();
    let spans = store.list_trace_spans(trace).await.unwrap();
    assert_eq!(spans.len(), 1);
    let span = &spans[0];
    assert_eq!(span.service, "prism");
    assert_eq!(span.kind, SpanKind::Client);
    assert_eq!(span.name, "POST /users/{id}");
    assert_eq!(span.workspace_id, Some(ada.workspace));
    assert_eq!(span.parent_span_id, None);
    assert_eq!(span.attributes["http.request.method"], "POST");
    assert_eq!(span.attributes["http.response.status_code"], 201);
    assert_eq!(
        span.attributes["prism.execution.id"],
        execution.id.to_string()
    );
    assert_eq!(body["spans"][0]["span_id"], body["span_id"]);
}

pub async fn an_incoming_traceparent_is_continued_not_overwritten(store: Arc<dyn Store>) {
    let mut up = upstream().await;
    let ada = account(&store, "ada@example.test").await;
    let mut plane = serve(store.clone()).await;
    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let (status, body) = post_json(
        &plane,
        "/rest",
        Some(&ada.token),
        json!({
            "url": up.url("/x"),
            "headers": [
                {"name": "traceparent", "value": incoming},
                {"name": "tracestate", "value": "vendor=1"},
            ],
        }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_ne!(body["span_id"], "00f067aa0ba902b7");
    let seen = up.next().await;
    assert_eq!(seen.headers.get_all("traceparent").iter().count(), 1);
    let sent = TraceParent::parse(seen.headers["traceparent"].to_str().unwrap()).unwrap();
    assert_eq!(sent.parent_id.to_hex(), body["span_id"].as_str().unwrap());
    assert_eq!(seen.headers["tracestate"], "vendor=1");

    plane.flush().await;
    let spans = store
        .list_trace_spans("4bf92f3577b34da6a3ce929d0e0e4736".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(
        spans[0].parent_span_id.unwrap().to_hex(),
        "00f067aa0ba902b7"
    );
    assert_eq!(spans[0].trace_state.as_deref(), Some("vendor=1"));
}

pub async fn target_failures_are_results_and_are_recorded(store: Arc<dyn Store>) {
    let mut up = upstream().await;
    let ada = account(&store, "ada@example.test").await;
    let mut plane = serve(store.clone()).await;

    let (status, server_error) = post_json(
        &plane,
        "/rest",
        Some(&ada.token),
        json!({"method": "GET", "url": up.url("/status/503")}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(server_error["status"], 503);
    assert_eq!(server_error["failed"], true);
    up.next().await;

    // A port nobody listens on: refused, still a 200 answer with the error kind.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let (status, refused) = post_json(
        &plane,
        "/rest",
        Some(&ada.token),
        json!({"url": format!("http://127.0.0.1:{closed_port}/")}),
    )
    .await;
    assert_eq!(status, 200, "{refused}");
    assert_eq!(refused["status"], Value::Null);
    assert_eq!(refused["error_kind"], "connection_refused");
    assert_ne!(refused["error_msg"], "");
    assert!(refused["trace_id"].as_str().is_some());

    let (status, gql) = post_json(
        &plane,
        "/graphql",
        Some(&ada.token),
        json!({
            "url": up.url("/graphql"),
            "query": "query User($id: ID!) { user(id: $id) { name } }",
            "variables": {"id": "7"},
            "operation_name": "User",
        }),
    )
    .await;
    assert_eq!(status, 200, "{gql}");
    assert_eq!(gql["status"], 200);
    assert_eq!(gql["graphql_errors"], true);
    assert_eq!(gql["failed"], true);
    up.next().await;

    plane.flush().await;
    let recorded = recorded(&store, ada.workspace).await;
    assert_eq!(recorded.len(), 3, "every execution is recorded");
    assert!(recorded.iter().all(|e| e.failed));
    let refused_row = store.get_execution(execution_id(&refused)).await.unwrap();
    assert_eq!(refused_row.error_kind, Some(ErrorKind::ConnectionRefused));
    assert_eq!(refused_row.status_code, None);
    let gql_row = store.get_execution(execution_id(&gql)).await.unwrap();
    assert_eq!(gql_row.endpoint, "User");
    assert_eq!(gql_row.status_code, Some(200));
    let trace: TraceId = gql["trace_id"].as_str().unwrap().parse().unwrap();
    let span = &store.list_trace_spans(trace).await.unwrap()[0];
    assert_eq!(span.status_code, SpanStatus::Error);
    assert_eq!(span.attributes["graphql.operation.name"], "User");
}

pub async fn calls_need_valid_credentials_and_an_editor_role(store: Arc<dyn Store>) {
    let mut up = upstream().await;
    let ada = account(&store, "ada@example.test").await;
    let bob = account(&store, "bob@example.test").await;
    // No reuse of recent answers, so revocation and role changes apply at once.
    let mut plane = serve_with(
        store.clone(),
        ExecutorConfig::default(),
        InterceptSettings {
            auth_fresh: Duration::ZERO,
            ..InterceptSettings::default()
        },
        support::recorder_config,
    )
    .await;
    let call = |ws: Option<String>| {
        let mut body = json!({"url": up.url("/x")});
        if let Some(ws) = ws {
            body["workspace_id"] = json!(ws);
        }
        body
    };

    let (status, body) = post_json(&plane, "/rest", None, call(None)).await;
    assert_eq!((status, error_code(&body)), (401, "missing_credentials"));
    let (status, body) = post_json(&plane, "/rest", Some("prism_pat_nope"), call(None)).await;
    assert_eq!((status, error_code(&body)), (401, "invalid_credentials"));

    // Bob is not a member of Ada's workspace: it does not exist as far as he can tell.
    let (status, body) = post_json(
        &plane,
        "/rest",
        Some(&bob.token),
        call(Some(ada.workspace.to_string())),
    )
    .await;
    assert_eq!((status, error_code(&body)), (404, "workspace_not_found"));

    // As a viewer he still may not run requests there.
    add_member(&store, ada.workspace, bob.user.id, Role::Viewer).await;
    let (status, body) = post_json(
        &plane,
        "/rest",
        Some(&bob.token),
        call(Some(ada.workspace.to_string())),
    )
    .await;
    assert_eq!((status, error_code(&body)), (403, "forbidden"));

    // With two workspaces he has to say which one.
    let (status, body) = post_json(&plane, "/rest", Some(&bob.token), call(None)).await;
    assert_eq!((status, error_code(&body)), (400, "workspace_required"));

    // A revoked token stops working.
    store
        .revoke_api_token(ada.user.id, ada.token_id, SystemClock.now())
        .await
        .unwrap();
    let (status, body) = post_json(&plane, "/rest", Some(&ada.token), call(None)).await;
    assert_eq!((status, error_code(&body)), (401, "invalid_credentials"));

    up.assert_nothing();
    plane.flush().await;
    for ws in [ada.workspace, bob.workspace] {
        let recorded = recorded(&store, ws).await;
        assert!(recorded.is_empty(), "refused calls record nothing");
    }
}

pub async fn bad_input_is_a_4xx_with_a_stable_code(store: Arc<dyn Store>) {
    let mut up = upstream().await;
    let ada = account(&store, "ada@example.test").await;
    let mut plane = serve_with(
        store.clone(),
        ExecutorConfig::default(),
        InterceptSettings {
            max_request_body: 4096,
            ..InterceptSettings::default()
        },
        support::recorder_config,
    )
    .await;
    let raw = |path: &str, text: &str| {
        client()
            .post(plane.url(path))
            .bearer_auth(&ada.token)
            .header("content-type", "application/json")
            .body(text.to_owned())
            .send()
    };
    let response = raw("/rest", "{\"url\": ").await.unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(error_code(&response.json().await.unwrap()), "invalid_json");

    let cases = [
        ("/rest", json!({"method": "GET"}), 400, "invalid_request"),
        ("/rest", json!({"url": "not a url"}), 400, "invalid_url"),
        (
            "/rest",
            json!({"url": "ftp://example.test/"}),
            400,
            "invalid_url",
        ),
        (
            "/rest",
            json!({"url": up.url("/"), "method": "GE T"}),
            400,
            "invalid_method",
        ),
        (
            "/rest",
            json!({"url": up.url("/"), "headers": {"a": 1}}),
            400,
            "invalid_request",
        ),
        (
            "/rest",
            json!({"url": up.url("/"), "headers": [{"name": "bad header", "value": "x"}]}),
            400,
            "invalid_request",
        ),
        (
            "/rest",
            json!({"url": up.url("/"), "request_id": "nope"}),
            400,
            "invalid_id",
        ),
        (
            "/rest",
            json!({"url": up.url("/"), "request_id": RequestId::new().to_string()}),
            404,
            "request_not_found",
        ),
        (
            "/run",
            json!({"protocol": "soap", "url": up.url("/")}),
            400,
            "unknown_protocol",
        ),
        ("/run", json!({"url": up.url("/")}), 400, "invalid_request"),
        (
            "/graphql",
            json!({"url": up.url("/graphql")}),
            400,
            "invalid_request",
        ),
    ];
    for (path, body, want_status, want_code) in cases {
        let (status, answer) = post_json(&plane, path, Some(&ada.token), body.clone()).await;
        assert_eq!(
            (status, error_code(&answer)),
            (want_status, want_code),
            "{body}"
        );
        assert!(!answer["error"]["message"].as_str().unwrap().is_empty());
    }
    let big = json!({"url": up.url("/"), "body": "x".repeat(10_000)});
    let (status, answer) = post_json(&plane, "/rest", Some(&ada.token), big).await;
    assert_eq!((status, error_code(&answer)), (413, "body_too_large"));

    up.assert_nothing();
    plane.flush().await;
    let recorded = recorded(&store, ada.workspace).await;
    assert!(recorded.is_empty(), "nothing is recorded for bad input");
}

pub async fn blocked_targets_are_recorded_as_blocked(store: Arc<dyn Store>) {
    let mut up = upstream().await;
    let ada = account(&store, "ada@example.test").await;
    let mut plane = serve_with(
        store.clone(),
        ExecutorConfig {
            egress: EgressPolicy::restricted(),
            ..ExecutorConfig::default()
        },
        InterceptSettings::default(),
        support::recorder_config,
    )
    .await;
    for url in [
        up.url("/internal"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
    ] {
        let (status, body) =
            post_json(&plane, "/rest", Some(&ada.token), json!({ "url": url })).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["error_kind"], "blocked", "{url}");
        assert!(body["error_msg"].as_str().unwrap().contains("not allowed"));
    }
    up.assert_nothing();
    plane.flush().await;
    let recorded = recorded(&store, ada.workspace).await;
    assert_eq!(recorded.len(), 2);
    assert!(
        recorded
            .iter()
            .all(|e| e.error_kind == Some(ErrorKind::Blocked))
    );
}

pub async fn an_overloaded_recorder_refuses_before_executing(store: Arc<dyn Store>) {
    let mut up = upstream().await;
    let ada = account(&store, "ada@example.test").await;
    let plane = serve_with(
        store.clone(),
        ExecutorConfig::default(),
        InterceptSettings::default(),
        |dir| {
            let mut config = support::recorder_config(dir);
            config.queue_capacity = 1;
            config.enqueue_timeout = Duration::from_millis(50);
            config
        },
    )
    .await;
    // Hold the only queue slot, as a burst of concurrent requests would.
    let held = plane.state.recorder.reserve().await.unwrap();
    let response = client()
        .post(plane.url("/rest"))
        .bearer_auth(&ada.token)
        .json(&json!({"url": up.url("/x")}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(error_code(&response.json().await.unwrap()), "overloaded");
    up.assert_nothing();

    drop(held);
    let (status, body) = post_json(
        &plane,
        "/rest",
        Some(&ada.token),
        json!({"url": up.url("/x")}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    up.next().await;
}

pub async fn service_calls_act_for_a_user_in_the_named_workspace(store: Arc<dyn Store>) {
    let mut up = upstream().await;
    let ada = account(&store, "ada@example.test").await;
    let secret = "a-shared-secret-key";
    let credential = service_credential(secret);
    let mut plane = serve_with(
        store.clone(),
        ExecutorConfig::default(),
        InterceptSettings {
            service_credential_hash: Some(hash_secret(&credential)),
            ..InterceptSettings::default()
        },
        support::recorder_config,
    )
    .await;
    let call = |credential: String, ws: Option<String>| {
        let mut request = client()
            .post(plane.url("/rest"))
            .bearer_auth(credential)
            .header("x-prism-user", ada.user.id.to_string())
            .json(&json!({"url": up.url("/svc")}));
        if let Some(ws) = ws {
            request = request.header("x-prism-workspace", ws);
        }
        request.send()
    };
    let response = call(credential.clone(), None).await.unwrap();
    assert_eq!(response.status(), 400, "the workspace must be named");
    let wrong = service_credential("another-secret");
    let response = call(wrong, Some(ada.workspace.to_string())).await.unwrap();
    assert_eq!(response.status(), 401);

    let response = call(credential, Some(ada.workspace.to_string()))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    up.next().await;
    plane.flush().await;
    let execution = store.get_execution(execution_id(&body)).await.unwrap();
    assert_eq!(execution.workspace_id, ada.workspace);
    assert_eq!(execution.created_by, Some(ada.user.id));
}

pub async fn run_executes_a_saved_request_by_id(store: Arc<dyn Store>) {
    let mut up = upstream().await;
    let ada = account(&store, "ada@example.test").await;
    let saved = saved_request(&store, &ada, up.url("/saved/7")).await;
    let mut plane = serve(store.clone()).await;
    let (status, body) = post_json(
        &plane,
        "/run",
        Some(&ada.token),
        json!({"request_id": saved.id.to_string()}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], 201);
    assert_eq!(up.next().await.path, "/saved/7");

    let (status, body) = post_json(
        &plane,
        "/run",
        Some(&ada.token),
        json!({"protocol": "rest", "method": "DELETE", "url": up.url("/generic")}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(up.next().await.path, "/generic");
    plane.flush().await;
    let execution = store.get_execution(execution_id(&body)).await.unwrap();
    assert_eq!(execution.method.as_deref(), Some("DELETE"));
    assert_eq!(execution.request_id, None);
}

pub async fn recent_answers_are_reused_for_a_short_time(store: Arc<dyn Store>) {
    let up = upstream().await;
    let ada = account(&store, "ada@example.test").await;
    let plane = serve(store.clone()).await;
    let call = json!({"url": up.url("/x"), "workspace_id": ada.workspace.to_string()});
    let (status, _) = post_json(&plane, "/rest", Some(&ada.token), call.clone()).await;
    assert_eq!(status, 200);
    // Revoked a moment ago: still accepted within `auth_fresh` (2 s by default)…
    store
        .revoke_api_token(ada.user.id, ada.token_id, SystemClock.now())
        .await
        .unwrap();
    let (status, _) = post_json(&plane, "/rest", Some(&ada.token), call).await;
    assert_eq!(status, 200, "a fresh cached answer is reused");
    // …while a token never seen is always checked.
    let (status, _) = post_json(
        &plane,
        "/rest",
        Some("prism_pat_unknown"),
        json!({"url": up.url("/")}),
    )
    .await;
    assert_eq!(status, 401);
}

/// PostgreSQL goes away in the middle of traffic: calls keep running on credentials seen
/// recently (the database cannot be asked), their records wait in the recorder, and once the
/// database is back every execution is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_keep_running_through_a_database_outage() {
    use sqlx::Connection;
    let Some(db) = prism_testkit::TestDatabase::postgres().await else {
        return;
    };
    let options = prism_store::StoreOptions {
        connect_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let store = prism_store::open(db.url(), &options).await.unwrap();
    let mut up = upstream().await;
    let ada = account(&store, "ada@example.test").await;
    let mut plane = serve_with(
        store.clone(),
        ExecutorConfig::default(),
        InterceptSettings {
            // Always ask the database, so the outage path is the one taken.
            auth_fresh: Duration::ZERO,
            ..InterceptSettings::default()
        },
        |dir| {
            let mut config = support::recorder_config(dir);
            config.retry_initial = Duration::from_millis(20);
            config.retry_max = Duration::from_millis(100);
            config
        },
    )
    .await;
    let call = json!({"url": up.url("/x"), "workspace_id": ada.workspace.to_string()});
    for _ in 0..3 {
        let (status, body) = post_json(&plane, "/rest", Some(&ada.token), call.clone()).await;
        assert_eq!(status, 200, "{body}");
        up.next().await;
    }

    let name = url::Url::parse(db.url().as_str())
        .unwrap()
        .path()
        .trim_start_matches('/')
        .to_owned();
    let mut admin =
        sqlx::PgConnection::connect(&std::env::var(prism_testkit::POSTGRES_ENV).unwrap())
            .await
            .unwrap();
    let allow = |yes: bool| format!("ALTER DATABASE {name} ALLOW_CONNECTIONS {yes}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(allow(false)))
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()")
        .bind(&name)
        .execute(&mut admin)
        .await
        .unwrap();
    for _ in 0..5 {
        let (status, body) = post_json(&plane, "/rest", Some(&ada.token), call.clone()).await;
        assert_eq!(status, 200, "runs during the outage: {body}");
        up.next().await;
    }
    sqlx::raw_sql(sqlx::AssertSqlSafe(allow(true)))
        .execute(&mut admin)
        .await
        .unwrap();
    plane.flush().await;
    assert_eq!(
        recorded(&store, ada.workspace).await.len(),
        8,
        "nothing lost"
    );
    drop(plane);
    store.close().await;
    admin.close().await.unwrap();
    db.destroy().await;
}

mod on {
    prism_testkit::for_each_backend!(crate::run =>
        recent_answers_are_reused_for_a_short_time,
        rest_call_runs_with_trace_context_and_is_recorded,
        an_incoming_traceparent_is_continued_not_overwritten,
        target_failures_are_results_and_are_recorded,
        calls_need_valid_credentials_and_an_editor_role,
        bad_input_is_a_4xx_with_a_stable_code,
        blocked_targets_are_recorded_as_blocked,
        an_overloaded_recorder_refuses_before_executing,
        service_calls_act_for_a_user_in_the_named_workspace,
        run_executes_a_saved_request_by_id,
    );
}
