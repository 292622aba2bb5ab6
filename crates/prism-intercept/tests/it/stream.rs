//! `GET /traces/stream`: stored spans first, then live ones (also from another process on
//! PostgreSQL), completion after the quiet time, credentials and visibility, bounded streams.

use std::sync::Arc;
use std::time::Duration;

use prism_domain::trace::{Attributes, Scope, Span, SpanId, SpanKind, StatusCode, TraceId};
use prism_domain::{Clock, SystemClock, WorkspaceId};
use prism_intercept::InterceptSettings;
use prism_intercept::executor::ExecutorConfig;
use prism_store::Store;
use serde_json::{Value, json};

use crate::support::{self, DataPlane, account, client, serve, serve_with};

/// One Server-Sent Event.
#[derive(Debug, Clone, PartialEq)]
struct Sse {
    event: String,
    id: Option<String>,
    data: Value,
}

/// Reads events from a streaming response as they arrive.
struct SseReader {
    response: reqwest::Response,
    buffer: String,
}

impl SseReader {
    fn new(response: reqwest::Response) -> Self {
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event (comments skipped), or `None` when the stream ended.
    async fn next(&mut self) -> Option<Sse> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = Sse {
                    event: "message".into(),
                    id: None,
                    data: Value::Null,
                };
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event.event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        event.id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                event.data = serde_json::from_str(&data).unwrap();
                return Some(event);
            }
            let chunk = tokio::time::timeout(Duration::from_secs(20), self.response.chunk())
                .await
                .expect("the stream makes progress")
                .unwrap()?;
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

async fn open(plane: &DataPlane, token: &str, query: &str) -> reqwest::Response {
    client()
        .get(plane.url(&format!("/traces/stream?{query}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

fn child_span(trace: TraceId, parent: SpanId, workspace: Option<WorkspaceId>, name: &str) -> Span {
    let now = SystemClock.now();
    let mut resource = Attributes::new();
    resource.insert("service.name".into(), json!("orders"));
    Span {
        trace_id: trace,
        span_id: SpanId::random(),
        parent_span_id: Some(parent),
        workspace_id: workspace,
        name: name.into(),
        service: "orders".into(),
        kind: SpanKind::Server,
        start: now,
        end: now.plus_nanos(1_000_000),
        status_code: StatusCode::Ok,
        status_message: None,
        attributes: Attributes::new(),
        events: Vec::new(),
        links: Vec::new(),
        resource_attributes: resource,
        scope: Scope::default(),
        trace_state: None,
        flags: 1,
    }
}

/// Runs a request through the data plane so a trace exists, attributed to the account's workspace.
async fn traced_request(plane: &DataPlane, token: &str) -> (TraceId, SpanId) {
    let response = client()
        .post(plane.url("/rest"))
        .bearer_auth(token)
        .json(&json!({"url": plane.url("/healthz")}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    (
        body["trace_id"].as_str().unwrap().parse().unwrap(),
        body["span_id"].as_str().unwrap().parse().unwrap(),
    )
}

pub async fn stored_spans_then_live_ones_then_complete(store: Arc<dyn Store>) {
    let ada = account(&store, "ada@example.test").await;
    let plane = serve(store.clone()).await;
    let (trace, client_span) = traced_request(&plane, &ada.token).await;

    let response = open(&plane, &ada.token, &format!("traceId={trace}&quiet_ms=400")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut events = SseReader::new(response);
    let first = events.next().await.unwrap();
    assert_eq!(first.event, "message");
    assert_eq!(first.data["span_id"], client_span.to_hex());
    assert_eq!(first.id.as_deref(), Some(client_span.to_hex().as_str()));
    assert_eq!(first.data["service"], "prism");

    // A backend span of the same trace arrives while the stream is open.
    let backend = child_span(trace, client_span, Some(ada.workspace), "GET /orders");
    plane
        .state
        .recorder
        .record_acked(vec![backend.clone()])
        .await
        .unwrap();
    let second = events.next().await.unwrap();
    assert_eq!(second.data["span_id"], backend.span_id.to_hex());
    assert_eq!(second.data["parent_span_id"], client_span.to_hex());

    let done = events.next().await.unwrap();
    assert_eq!(done.event, "complete");
    assert_eq!(done.data["reason"], "quiet");
    assert_eq!(done.data["spans"], 2);
    assert_eq!(
        events.next().await,
        None,
        "the stream ends after completing"
    );
}

pub async fn streams_need_credentials_and_only_show_visible_traces(store: Arc<dyn Store>) {
    let ada = account(&store, "ada@example.test").await;
    let eve = account(&store, "eve@example.test").await;
    let plane = serve(store.clone()).await;
    let (trace, _) = traced_request(&plane, &ada.token).await;

    let response = client()
        .get(plane.url(&format!("/traces/stream?traceId={trace}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    for (query, code) in [
        ("", "trace_id_required"),
        ("traceId=xyz", "invalid_trace_id"),
        (
            "traceId=00000000000000000000000000000000",
            "invalid_trace_id",
        ),
    ] {
        let response = open(&plane, &ada.token, query).await;
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], code);
    }

    // Eve is in no workspace of the trace: she learns nothing, not even that it exists.
    let response = open(&plane, &eve.token, &format!("traceId={trace}&quiet_ms=200")).await;
    assert_eq!(response.status(), 200);
    let mut events = SseReader::new(response);
    let done = events.next().await.unwrap();
    assert_eq!(done.event, "complete");
    assert_eq!(done.data["spans"], 0);
}

pub async fn open_streams_are_capped_and_freed_on_disconnect(store: Arc<dyn Store>) {
    let ada = account(&store, "ada@example.test").await;
    let plane = serve_with(
        store.clone(),
        ExecutorConfig::default(),
        InterceptSettings {
            max_streams: 1,
            ..InterceptSettings::default()
        },
        support::recorder_config,
    )
    .await;
    let trace = TraceId::random();
    let first = open(
        &plane,
        &ada.token,
        &format!("traceId={trace}&quiet_ms=60000"),
    )
    .await;
    assert_eq!(first.status(), 200);
    let second = open(&plane, &ada.token, &format!("traceId={trace}")).await;
    assert_eq!(second.status(), 503);
    let body: Value = second.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_streams");

    // Disconnecting frees the slot (the stream's task notices the closed channel).
    drop(first);
    let streams = plane.state.streams.clone();
    tokio::time::timeout(Duration::from_secs(10), async move {
        while streams.available_permits() == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("a disconnected client frees its stream");
    let third = open(&plane, &ada.token, &format!("traceId={trace}&quiet_ms=100")).await;
    assert_eq!(third.status(), 200);
}

/// Two data planes on one PostgreSQL database: a span stored through one appears on a stream
/// served by the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_shows_spans_stored_by_another_replica() {
    let Some(db) = prism_testkit::TestDatabase::postgres().await else {
        return;
    };
    let store_a = db.open().await;
    let store_b = db.open().await;
    let ada = account(&store_a, "ada@example.test").await;
    let a = serve(store_a.clone()).await;
    let b = serve(store_b.clone()).await;
    let (trace, client_span) = traced_request(&a, &ada.token).await;

    let response = open(&b, &ada.token, &format!("traceId={trace}&quiet_ms=2000")).await;
    let mut events = SseReader::new(response);
    let first = events.next().await.unwrap();
    assert_eq!(first.data["span_id"], client_span.to_hex());

    let backend = child_span(trace, client_span, Some(ada.workspace), "INSERT orders");
    a.state
        .recorder
        .record_acked(vec![backend.clone()])
        .await
        .unwrap();
    let second = events.next().await.unwrap();
    assert_eq!(second.data["span_id"], backend.span_id.to_hex());
    drop(events);
    drop((a, b));
    store_a.close().await;
    store_b.close().await;
    db.destroy().await;
}

mod on {
    prism_testkit::for_each_backend!(crate::stream =>
        stored_spans_then_live_ones_then_complete,
        streams_need_credentials_and_only_show_visible_traces,
        open_streams_are_capped_and_freed_on_disconnect,
    );
}
