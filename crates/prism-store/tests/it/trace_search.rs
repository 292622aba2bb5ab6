//! Trace search: which traces belong to a workspace, the summaries, and every filter.

use std::sync::Arc;

use prism_domain::Timestamp;
use prism_domain::execution::Execution;
use prism_domain::trace::{Span, SpanId, StatusCode, TraceId};
use prism_store::{Store, TraceFilter, TraceSummary};

use crate::fixtures::{execution, seed_workspace, span, t, world};

const MS: i64 = 1_000_000;

fn at(base: Timestamp, ms: i64) -> Timestamp {
    base.plus_nanos(ms * MS)
}

/// A span of `service` named `name` from `start` to `end` (milliseconds after `base`).
fn timed(trace: TraceId, service: &str, name: &str, base: Timestamp, start: i64, end: i64) -> Span {
    Span {
        name: name.into(),
        end: at(base, end),
        ..span(trace, service, at(base, start))
    }
}

fn summary(
    trace: TraceId,
    root: (&str, &str),
    started_at: Timestamp,
    duration_ms: i64,
    counts: (i64, i64),
    services: &[&str],
) -> TraceSummary {
    TraceSummary {
        trace_id: trace,
        root_service: root.0.into(),
        root_operation: root.1.into(),
        started_at,
        duration_ns: duration_ms * MS,
        span_count: counts.0,
        error_count: counts.1,
        services: services.iter().map(|s| (*s).to_owned()).collect(),
    }
}

fn filter() -> TraceFilter {
    TraceFilter {
        limit: 100,
        ..TraceFilter::default()
    }
}

fn ids(found: &[TraceSummary]) -> Vec<TraceId> {
    found.iter().map(|s| s.trace_id).collect()
}

pub async fn traces_are_searched_summarized_and_filtered(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let ws = w.ws.id;
    let other = seed_workspace(&store, w.owner.id, "Other").await;

    // t1: reported into the workspace by its root span only; a child ends after the root.
    let t1 = TraceId::random();
    let root1 = Span {
        workspace_id: Some(ws),
        ..timed(t1, "gateway", "GET /orders", t(100), 0, 50)
    };
    let query1 = Span {
        parent_span_id: Some(root1.span_id),
        status_code: StatusCode::Error,
        ..timed(t1, "orders", "SELECT", t(100), 5, 20)
    };
    let compute1 = Span {
        parent_span_id: Some(root1.span_id),
        ..timed(t1, "orders", "compute", t(100), 25, 60)
    };

    // t2: anonymous spans, in the workspace through an execution; its root continues a trace
    // whose parent span was never stored.
    let t2 = TraceId::random();
    let client2 = Span {
        parent_span_id: Some(SpanId::random()),
        ..timed(t2, "prism", "POST /pay", t(200), 0, 2)
    };
    let charge2 = Span {
        parent_span_id: Some(client2.span_id),
        ..timed(t2, "payments", "charge", t(200), 1, 301)
    };

    // t3 and t3b start together (ordered by trace id); t3 has two parentless spans (the earlier is
    // the root), both errors.
    let t3 = TraceId::random();
    let late3 = Span {
        workspace_id: Some(ws),
        status_code: StatusCode::Error,
        ..timed(t3, "b", "late", t(300), 4, 10)
    };
    let early3 = Span {
        status_code: StatusCode::Error,
        ..timed(t3, "a", "early", t(300), 0, 3)
    };
    let t3b = TraceId::random();
    let only3b = Span {
        workspace_id: Some(ws),
        ..timed(t3b, "solo", "tick", t(300), 0, 7)
    };

    // Not the workspace's: another workspace's trace, an anonymous one, and (in the workspace) an
    // execution whose trace has no stored span.
    let theirs = TraceId::random();
    let their_span = Span {
        workspace_id: Some(other.id),
        ..timed(theirs, "gateway", "GET /orders", t(250), 0, 5)
    };
    let anonymous = timed(TraceId::random(), "gateway", "GET /orders", t(260), 0, 5);

    store
        .insert_spans(&[
            compute1.clone(),
            root1.clone(),
            query1.clone(),
            charge2,
            client2,
            late3,
            early3,
            only3b,
            their_span,
            anonymous,
        ])
        .await
        .unwrap();
    store
        .insert_executions(&[
            Execution {
                trace_id: t2,
                ..execution(ws, t(200))
            },
            execution(ws, t(400)),
        ])
        .await
        .unwrap();

    let s1 = summary(
        t1,
        ("gateway", "GET /orders"),
        t(100),
        60,
        (3, 1),
        &["gateway", "orders"],
    );
    let s2 = summary(
        t2,
        ("prism", "POST /pay"),
        t(200),
        301,
        (2, 0),
        &["payments", "prism"],
    );
    let s3 = summary(t3, ("a", "early"), t(300), 10, (2, 2), &["a", "b"]);
    let s3b = summary(t3b, ("solo", "tick"), t(300), 7, (1, 0), &["solo"]);
    let (first, second) = if t3 > t3b { (&s3, &s3b) } else { (&s3b, &s3) };

    let search = async |f: TraceFilter| store.search_traces(ws, &f).await.unwrap();
    assert_eq!(
        search(filter()).await,
        vec![first.clone(), second.clone(), s2.clone(), s1.clone()]
    );
    let (first, second) = (first.trace_id, second.trace_id);

    // Service and operation match one and the same span.
    let by = async |service: Option<&str>, operation: Option<&str>| {
        ids(&search(TraceFilter {
            service: service.map(Into::into),
            operation: operation.map(Into::into),
            ..filter()
        })
        .await)
    };
    assert_eq!(by(Some("orders"), None).await, vec![t1]);
    assert_eq!(by(None, Some("GET /orders")).await, vec![t1]);
    assert_eq!(by(Some("gateway"), Some("GET /orders")).await, vec![t1]);
    assert_eq!(by(Some("orders"), Some("GET /orders")).await, vec![]);
    assert_eq!(by(Some("payments"), Some("charge")).await, vec![t2]);
    assert_eq!(by(Some("nobody"), None).await, vec![]);

    // Durations are inclusive bounds on the whole trace.
    let lasting = async |min: Option<i64>, max: Option<i64>| {
        ids(&search(TraceFilter {
            min_duration_ns: min.map(|m| m * MS),
            max_duration_ns: max.map(|m| m * MS),
            ..filter()
        })
        .await)
    };
    assert_eq!(lasting(Some(100), None).await, vec![t2]);
    assert_eq!(lasting(None, Some(60)).await, vec![first, second, t1]);
    assert_eq!(lasting(Some(60), Some(60)).await, vec![t1]);
    assert_eq!(lasting(Some(8), Some(60)).await, vec![t3, t1]);

    let erring = async |error: bool| {
        ids(&search(TraceFilter {
            error: Some(error),
            ..filter()
        })
        .await)
    };
    assert_eq!(erring(true).await, vec![t3, t1]);
    assert_eq!(erring(false).await, vec![t3b, t2]);

    // The window applies to the trace's start: `from` inclusive, `to` exclusive.
    let window = async |from: Option<Timestamp>, to: Option<Timestamp>| {
        ids(&search(TraceFilter {
            from,
            to,
            ..filter()
        })
        .await)
    };
    assert_eq!(window(Some(t(200)), None).await, vec![first, second, t2]);
    assert_eq!(
        window(Some(t(100).plus_nanos(1)), None).await,
        vec![first, second, t2]
    );
    assert_eq!(window(None, Some(t(300))).await, vec![t2, t1]);
    assert_eq!(window(Some(t(100)), Some(t(200))).await, vec![t1]);
    assert_eq!(window(Some(t(301)), None).await, vec![]);

    assert_eq!(
        ids(&search(TraceFilter {
            limit: 2,
            ..filter()
        })
        .await),
        vec![first, second]
    );
    assert_eq!(
        ids(&search(TraceFilter {
            limit: 0,
            ..filter()
        })
        .await),
        vec![first],
        "the limit is clamped to at least one"
    );

    // Other workspaces see their own traces only.
    assert_eq!(
        store.search_traces(other.id, &filter()).await.unwrap(),
        vec![summary(
            theirs,
            ("gateway", "GET /orders"),
            t(250),
            5,
            (1, 0),
            &["gateway"]
        )]
    );
    let empty = seed_workspace(&store, w.owner.id, "Empty").await;
    assert!(
        store
            .search_traces(empty.id, &filter())
            .await
            .unwrap()
            .is_empty()
    );
}
