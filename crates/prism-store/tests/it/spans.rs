//! Spans: exact round-trip of every field, retry deduplication, trace and service listings, and trace workspaces.

use std::sync::Arc;

use prism_domain::WorkspaceId;
use prism_domain::execution::Execution;
use prism_domain::trace::{
    Scope, Span, SpanEvent, SpanId, SpanKind, SpanLink, StatusCode, TraceId,
};
use prism_store::{Conflict, Store, StoreError};
use serde_json::json;

use crate::fixtures::{attrs, execution, sample_attrs, seed_workspace, span, t, world};

fn full_span(trace: TraceId, ws: WorkspaceId) -> Span {
    Span {
        trace_id: trace,
        span_id: SpanId::random(),
        parent_span_id: Some(SpanId::random()),
        workspace_id: Some(ws),
        name: "GET /users/{id}".into(),
        service: "checkout".into(),
        kind: SpanKind::Client,
        start: t(100),
        end: t(100).plus_nanos(123_456_789),
        status_code: StatusCode::Error,
        status_message: Some("upstream said \"no\"".into()),
        attributes: sample_attrs(),
        events: vec![
            SpanEvent {
                time: t(100).plus_nanos(5),
                name: "exception".into(),
                attributes: attrs(json!({"exception.type": "Timeout"})),
            },
            SpanEvent {
                time: t(100).plus_nanos(9),
                name: "retry".into(),
                attributes: Default::default(),
            },
        ],
        links: vec![
            SpanLink {
                trace_id: TraceId::random(),
                span_id: SpanId::random(),
                trace_state: Some("vendor=a".into()),
                attributes: attrs(json!({"link.kind": "follows_from"})),
            },
            SpanLink {
                trace_id: trace,
                span_id: SpanId::random(),
                trace_state: None,
                attributes: Default::default(),
            },
        ],
        resource_attributes: attrs(
            json!({"service.name": "checkout", "host.cpu_count": 8, "deployment": {"env": "prod"}}),
        ),
        scope: Scope {
            name: "io.opentelemetry.http".into(),
            version: Some("1.2.3".into()),
            attributes: attrs(json!({"scope.attr": [1, 2]})),
        },
        trace_state: Some("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE".into()),
        flags: u32::MAX,
    }
}

pub async fn span_round_trips_with_every_field(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let trace = TraceId::random();
    let full = full_span(trace, w.ws.id);
    let bare = Span {
        kind: SpanKind::Unspecified,
        flags: 0,
        ..span(trace, "bare", t(101))
    };
    assert_eq!(
        store
            .insert_spans(&[full.clone(), bare.clone()])
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store.list_trace_spans(trace).await.unwrap(),
        vec![full, bare]
    );
    assert_eq!(store.insert_spans(&[]).await.unwrap(), 0);
}

pub async fn every_span_kind_and_status_round_trips(store: Arc<dyn Store>) {
    let trace = TraceId::random();
    let kinds = [
        SpanKind::Unspecified,
        SpanKind::Internal,
        SpanKind::Server,
        SpanKind::Client,
        SpanKind::Producer,
        SpanKind::Consumer,
    ];
    let statuses = [StatusCode::Unset, StatusCode::Ok, StatusCode::Error];
    let spans: Vec<_> = kinds
        .iter()
        .enumerate()
        .map(|(i, kind)| Span {
            kind: *kind,
            status_code: statuses[i % 3],
            ..span(trace, "svc", t(i as i64))
        })
        .collect();
    assert_eq!(store.insert_spans(&spans).await.unwrap(), 6);
    assert_eq!(store.list_trace_spans(trace).await.unwrap(), spans);
}

pub async fn retried_span_batch_is_not_duplicated(store: Arc<dyn Store>) {
    let trace = TraceId::random();
    let a = span(trace, "svc", t(1));
    let b = span(trace, "svc", t(2));
    assert_eq!(
        store.insert_spans(&[a.clone(), b.clone()]).await.unwrap(),
        2
    );
    assert_eq!(
        store.insert_spans(&[a.clone(), b.clone()]).await.unwrap(),
        0
    );

    // Same key, different content: the first copy is kept. A new span in the same batch is stored.
    let a_again = Span {
        name: "rewritten".into(),
        end: t(99),
        ..a.clone()
    };
    let c = span(trace, "svc", t(3));
    assert_eq!(store.insert_spans(&[a_again, c.clone()]).await.unwrap(), 1);
    assert_eq!(
        store.list_trace_spans(trace).await.unwrap(),
        vec![a.clone(), b, c]
    );

    // The same span id in another trace is a different span.
    let elsewhere = Span {
        trace_id: TraceId::random(),
        ..a.clone()
    };
    assert_eq!(
        store
            .insert_spans(std::slice::from_ref(&elsewhere))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store.list_trace_spans(elsewhere.trace_id).await.unwrap(),
        vec![elsewhere]
    );
}

pub async fn span_batch_larger_than_one_chunk_is_stored(store: Arc<dyn Store>) {
    let trace = TraceId::random();
    let spans: Vec<_> = (0..1100).map(|i| span(trace, "bulk", t(i))).collect();
    assert_eq!(store.insert_spans(&spans).await.unwrap(), 1100);
    assert_eq!(store.insert_spans(&spans).await.unwrap(), 0);
    assert_eq!(store.list_trace_spans(trace).await.unwrap(), spans);
}

pub async fn span_for_a_missing_workspace_is_refused(store: Arc<dyn Store>) {
    let trace = TraceId::random();
    let good = span(trace, "svc", t(1));
    let bad = Span {
        workspace_id: Some(WorkspaceId::new()),
        ..span(trace, "svc", t(2))
    };
    let result = store.insert_spans(&[good, bad]).await;
    assert!(
        matches!(
            result,
            Err(StoreError::Conflict(Conflict::MissingReference(_)))
        ),
        "{result:?}"
    );
    assert!(
        store.list_trace_spans(trace).await.unwrap().is_empty(),
        "the batch is all or nothing"
    );
}

pub async fn trace_spans_are_listed_by_start(store: Arc<dyn Store>) {
    let trace = TraceId::random();
    let root = span(trace, "gateway", t(10));
    let child = Span {
        parent_span_id: Some(root.span_id),
        ..span(trace, "users", t(11))
    };
    let grandchild = Span {
        parent_span_id: Some(child.span_id),
        ..span(trace, "db", t(12))
    };
    let unrelated = span(TraceId::random(), "gateway", t(11));
    store
        .insert_spans(&[grandchild.clone(), unrelated, root.clone(), child.clone()])
        .await
        .unwrap();

    assert_eq!(
        store.list_trace_spans(trace).await.unwrap(),
        vec![root, child, grandchild]
    );
    assert!(
        store
            .list_trace_spans(TraceId::random())
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn service_spans_are_windowed_and_newest_first(store: Arc<dyn Store>) {
    let spans: Vec<_> = [10, 20, 30, 40]
        .map(|s| span(TraceId::random(), "checkout", t(s)))
        .into();
    let other_service = span(TraceId::random(), "billing", t(25));
    let mut batch = spans.clone();
    batch.push(other_service.clone());
    store.insert_spans(&batch).await.unwrap();

    // `from` is inclusive, `to` exclusive.
    assert_eq!(
        store
            .list_service_spans("checkout", t(20), t(40), 100)
            .await
            .unwrap(),
        vec![spans[2].clone(), spans[1].clone()]
    );
    assert_eq!(
        store
            .list_service_spans("checkout", t(0), t(100), 100)
            .await
            .unwrap(),
        vec![
            spans[3].clone(),
            spans[2].clone(),
            spans[1].clone(),
            spans[0].clone()
        ]
    );
    assert_eq!(
        store
            .list_service_spans("checkout", t(0), t(100), 2)
            .await
            .unwrap(),
        vec![spans[3].clone(), spans[2].clone()]
    );
    assert_eq!(
        store
            .list_service_spans("billing", t(0), t(100), 100)
            .await
            .unwrap(),
        vec![other_service]
    );
    assert!(
        store
            .list_service_spans("checkout", t(41), t(100), 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_service_spans("nobody", t(0), t(100), 100)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn trace_workspaces_come_from_executions_and_spans(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let from_span = seed_workspace(&store, w.owner.id, "Span side").await;
    let unrelated = seed_workspace(&store, w.owner.id, "Unrelated").await;
    let trace = TraceId::random();

    assert!(store.list_trace_workspaces(trace).await.unwrap().is_empty());

    // Two executions and one span in the first workspace: it is listed once.
    store
        .insert_executions(&[
            Execution {
                trace_id: trace,
                ..execution(w.ws.id, t(1))
            },
            Execution {
                trace_id: trace,
                ..execution(w.ws.id, t(2))
            },
            execution(unrelated.id, t(3)),
        ])
        .await
        .unwrap();
    store
        .insert_spans(&[
            Span {
                workspace_id: Some(w.ws.id),
                ..span(trace, "a", t(1))
            },
            Span {
                workspace_id: Some(from_span.id),
                ..span(trace, "b", t(2))
            },
            span(trace, "anonymous", t(3)),
            Span {
                workspace_id: Some(unrelated.id),
                ..span(TraceId::random(), "c", t(4))
            },
        ])
        .await
        .unwrap();

    let mut expected = vec![w.ws.id, from_span.id];
    expected.sort();
    assert_eq!(store.list_trace_workspaces(trace).await.unwrap(), expected);

    // A trace known only from spans.
    let span_only = TraceId::random();
    store
        .insert_spans(&[Span {
            workspace_id: Some(unrelated.id),
            ..span(span_only, "d", t(5))
        }])
        .await
        .unwrap();
    assert_eq!(
        store.list_trace_workspaces(span_only).await.unwrap(),
        vec![unrelated.id]
    );
}

/// The next `Stored` announcement, skipping resyncs (a fresh PostgreSQL listener announces one).
async fn next_stored(feed: &mut prism_store::SpanSubscription) -> TraceId {
    loop {
        let event = tokio::time::timeout(std::time::Duration::from_secs(10), feed.recv())
            .await
            .expect("an announcement arrives")
            .expect("the feed is open");
        if let prism_store::FeedEvent::Stored(trace) = event {
            return trace;
        }
    }
}

pub async fn stored_spans_are_announced_once_per_trace(store: Arc<dyn Store>) {
    let mut feed = store.subscribe_spans();
    if store.backend() == prism_store::Backend::Postgres {
        // The listener connects in the background; announcements made before it listens are
        // lost, which it signals with the resync it sends once listening.
        let first = tokio::time::timeout(std::time::Duration::from_secs(10), feed.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first, prism_store::FeedEvent::Resync);
    }
    let (a, b) = (TraceId::random(), TraceId::random());
    store.notify_spans(&[a, a, b]).await.unwrap();
    store.notify_spans(&[]).await.unwrap();
    assert_eq!(next_stored(&mut feed).await, a);
    assert_eq!(next_stored(&mut feed).await, b);
    let c = TraceId::random();
    store.notify_spans(&[c]).await.unwrap();
    assert_eq!(
        next_stored(&mut feed).await,
        c,
        "nothing else came in between"
    );
}

/// Two stores on one PostgreSQL database stand for two intercept processes: an announcement made
/// by one reaches the subscribers of the other (LISTEN/NOTIFY, not process memory).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_announcements_reach_other_processes() {
    let Some(db) = prism_testkit::TestDatabase::postgres().await else {
        return;
    };
    let listener_side = db.open().await;
    let writer_side = db.open().await;
    let mut feed = listener_side.subscribe_spans();
    // The listener connects asynchronously and announces a resync once it listens.
    let event = tokio::time::timeout(std::time::Duration::from_secs(10), feed.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event, prism_store::FeedEvent::Resync);
    let trace = TraceId::random();
    writer_side.notify_spans(&[trace]).await.unwrap();
    assert_eq!(next_stored(&mut feed).await, trace);
    listener_side.close().await;
    writer_side.close().await;
    db.destroy().await;
}
