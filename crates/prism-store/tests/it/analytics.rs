//! Analytics: rollups written at ingest give the numbers computed independently from the raw rows
//! (counts exact, percentiles within the documented bound of exact nearest-rank), count retried
//! rows once, leave no trace of a failed batch, and are backfilled for rows stored before them.

use std::collections::BTreeMap;
use std::sync::Arc;

use prism_domain::analytics::{LatencyStats, RELATIVE_ERROR, StatusClass, floor_to};
use prism_domain::execution::Execution;
use prism_domain::request::Protocol;
use prism_domain::trace::{SpanId, StatusCode, TraceId};
use prism_domain::{RequestId, Timestamp, WorkspaceId};
use prism_store::{AnalyticsQuery, Store};

use crate::fixtures::{
    execution, graphql_execution, grpc_execution, seed_collection, seed_request, seed_workspace,
    span, t, transport_failure, world,
};

const MINUTE: i64 = 60_000_000_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// The exact nearest-rank quantile of sorted durations, in milliseconds.
fn nearest_rank_ms(sorted: &[i64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1] as f64 / 1e6
}

/// Asserts a reported quantile is within the bound of the exact one.
#[track_caller]
fn assert_close(what: &str, got: f64, sorted: &[i64], q: f64) {
    let exact = nearest_rank_ms(sorted, q);
    let err = (got - exact).abs() / exact;
    assert!(
        err <= RELATIVE_ERROR,
        "{what} p{q}: got {got} ms, exact {exact} ms ({err})"
    );
}

fn query(from: Timestamp, to: Timestamp, step_ns: i64) -> AnalyticsQuery {
    AnalyticsQuery {
        from,
        to,
        step_ns,
        request_ids: None,
        protocol: None,
        method: None,
        endpoint: None,
        status_class: None,
    }
}

/// A deterministic spread of executions over three days: every protocol, status class and
/// failure kind, two saved requests and ad-hoc runs, latencies from 0.2 ms to ~2 s.
fn sample(ws: WorkspaceId, requests: [RequestId; 2], start: Timestamp, n: usize) -> Vec<Execution> {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    (0..n)
        .map(|i| {
            let at = start.plus_nanos((next() % (3 * DAY as u64)) as i64);
            let base = match i % 6 {
                0 => transport_failure(ws, at),
                1 => grpc_execution(ws, at, if i % 4 == 1 { 14 } else { 0 }),
                2 => graphql_execution(ws, at, if i % 5 == 2 { 502 } else { 200 }),
                3 => Execution {
                    status_code: Some(404),
                    failed: true,
                    endpoint: "/orders/{id}".into(),
                    ..execution(ws, at)
                },
                _ => execution(ws, at),
            };
            Execution {
                request_id: match i % 3 {
                    0 => None,
                    r => Some(requests[r - 1]),
                },
                duration_ns: 200_000 + (next() % 2_000_000_000) as i64 / (1 + (i % 7) as i64),
                ..base
            }
        })
        .collect()
}

async fn requests(store: &Arc<dyn Store>, ws: WorkspaceId) -> [RequestId; 2] {
    let c = seed_collection(store, ws, None, "API").await;
    [
        seed_request(store, ws, c.id, "one").await.id,
        seed_request(store, ws, c.id, "two").await.id,
    ]
}

fn matching<'a>(
    rows: &'a [Execution],
    from: Timestamp,
    to: Timestamp,
    keep: impl Fn(&Execution) -> bool + 'a,
) -> impl Iterator<Item = &'a Execution> + 'a {
    rows.iter()
        .filter(move |e| e.started_at >= from && e.started_at < to && keep(e))
}

fn sorted(rows: impl Iterator<Item = i64>) -> Vec<i64> {
    let mut v: Vec<i64> = rows.collect();
    v.sort_unstable();
    v
}

pub async fn execution_analytics_match_the_raw_rows(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let reqs = requests(&store, w.ws.id).await;
    let rows = sample(w.ws.id, reqs, t(0), 3_000);
    for batch in rows.chunks(700) {
        store.insert_executions(batch).await.unwrap();
    }
    // Noise in another workspace must not count.
    let other = seed_workspace(&store, w.owner.id, "Other").await;
    let other_reqs = requests(&store, other.id).await;
    store
        .insert_executions(&sample(other.id, other_reqs, t(0), 500))
        .await
        .unwrap();

    // A window that is not aligned to hours or days: minute, hour and day rollups all take part.
    let from = Timestamp(floor_to(t(0), MINUTE).nanos() + 7 * HOUR + 13 * MINUTE);
    let to = Timestamp(from.nanos() + 2 * DAY + 5 * HOUR + 47 * MINUTE);
    let got = store
        .execution_analytics(w.ws.id, &query(from, to, HOUR))
        .await
        .unwrap();
    let inside: Vec<&Execution> = matching(&rows, from, to, |_| true).collect();
    let durations = sorted(inside.iter().map(|e| e.duration_ns));
    assert!(inside.len() > 1_000, "the window holds most rows");
    assert_eq!(got.total.count, inside.len() as u64);
    assert_eq!(
        got.total.failures,
        inside.iter().filter(|e| e.failed).count() as u64
    );
    assert_eq!(got.total.max_ns, *durations.last().unwrap());
    assert_eq!(got.total.sum_ns, durations.iter().sum::<i64>());
    for q in [0.5, 0.9, 0.95, 0.99] {
        assert_close("total", got.total.quantile_ms(q), &durations, q);
    }
    assert_eq!(
        got.total.quantile_ms(1.0),
        *durations.last().unwrap() as f64 / 1e6
    );

    // The series: one point per hour that had executions, each exact in count and failures.
    let mut by_hour: BTreeMap<Timestamp, Vec<&Execution>> = BTreeMap::new();
    for e in &inside {
        by_hour
            .entry(floor_to(e.started_at, HOUR))
            .or_default()
            .push(e);
    }
    assert_eq!(
        got.series.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        by_hour.keys().copied().collect::<Vec<_>>()
    );
    for (start, stats) in &got.series {
        let raw = &by_hour[start];
        assert_eq!(stats.count, raw.len() as u64);
        assert_eq!(
            stats.failures,
            raw.iter().filter(|e| e.failed).count() as u64
        );
        assert_close(
            "hour",
            stats.quantile_ms(0.95),
            &sorted(raw.iter().map(|e| e.duration_ns)),
            0.95,
        );
    }

    // Endpoints: protocol + method + template.
    let mut by_endpoint: BTreeMap<(String, String, String), Vec<i64>> = BTreeMap::new();
    for e in &inside {
        by_endpoint
            .entry((
                e.protocol.as_str().to_owned(),
                e.method.clone().unwrap_or_default(),
                e.endpoint.clone(),
            ))
            .or_default()
            .push(e.duration_ns);
    }
    assert_eq!(got.endpoints.len(), by_endpoint.len());
    for (key, stats) in &got.endpoints {
        let raw = &by_endpoint[&(
            key.protocol.as_str().to_owned(),
            key.method.clone(),
            key.endpoint.clone(),
        )];
        assert_eq!(stats.count, raw.len() as u64);
        let raw = sorted(raw.iter().copied());
        assert_close("endpoint", stats.quantile_ms(0.99), &raw, 0.99);
    }

    // Every filter narrows to exactly the matching rows.
    type Keep = Box<dyn Fn(&Execution) -> bool>;
    let r0 = reqs[0];
    let cases: Vec<(AnalyticsQuery, Keep)> = vec![
        (
            AnalyticsQuery {
                request_ids: Some(vec![r0]),
                ..query(from, to, DAY)
            },
            Box::new(move |e| e.request_id == Some(r0)),
        ),
        (
            AnalyticsQuery {
                protocol: Some(Protocol::Grpc),
                ..query(from, to, DAY)
            },
            Box::new(|e| e.protocol == Protocol::Grpc),
        ),
        (
            AnalyticsQuery {
                status_class: Some(StatusClass::ClientError),
                ..query(from, to, MINUTE)
            },
            Box::new(|e| StatusClass::of(e.protocol, e.status_code) == StatusClass::ClientError),
        ),
        (
            AnalyticsQuery {
                method: Some("GET".into()),
                endpoint: Some("/orders/{id}".into()),
                ..query(from, to, HOUR)
            },
            Box::new(|e| e.method.as_deref() == Some("GET") && e.endpoint == "/orders/{id}"),
        ),
        (
            AnalyticsQuery {
                request_ids: Some(vec![]),
                ..query(from, to, HOUR)
            },
            Box::new(|_| false),
        ),
    ];
    for (q, keep) in cases {
        let got = store.execution_analytics(w.ws.id, &q).await.unwrap();
        let raw = sorted(matching(&rows, from, to, &keep).map(|e| e.duration_ns));
        assert_eq!(got.total.count, raw.len() as u64, "{q:?}");
        if !raw.is_empty() {
            assert_close("filtered", got.total.quantile_ms(0.95), &raw, 0.95);
            assert_eq!(got.total.max_ns, *raw.last().unwrap());
        }
        // The series adds up to the total whatever the step.
        assert_eq!(
            got.series.iter().map(|(_, s)| s.count).sum::<u64>(),
            got.total.count
        );
    }
}

pub async fn retried_and_failed_batches_count_exactly_once(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let window = query(t(0), t(0).plus_nanos(DAY), HOUR);
    let from = floor_to(t(0), MINUTE);
    let window = AnalyticsQuery {
        from,
        to: Timestamp(from.nanos() + DAY),
        ..window
    };
    let first: Vec<Execution> = (0..10).map(|i| execution(w.ws.id, t(60 * i))).collect();
    assert_eq!(store.insert_executions(&first).await.unwrap(), 10);
    // The retry carries the same ten plus two new ones: only the two count.
    let mut retry = first.clone();
    retry.push(execution(w.ws.id, t(30)));
    retry.push(transport_failure(w.ws.id, t(31)));
    assert_eq!(store.insert_executions(&retry).await.unwrap(), 2);
    // A batch that fails (a request that does not exist) stores nothing and counts nothing.
    let bad = vec![
        execution(w.ws.id, t(40)),
        Execution {
            request_id: Some(RequestId::new()),
            ..execution(w.ws.id, t(41))
        },
    ];
    assert!(store.insert_executions(&bad).await.is_err());
    let got = store.execution_analytics(w.ws.id, &window).await.unwrap();
    assert_eq!((got.total.count, got.total.failures), (12, 1));
    let mut expected = LatencyStats::default();
    for e in &retry {
        expected.record(e.duration_ns, e.failed);
    }
    assert_eq!(got.total, expected);

    // An empty window is zeros and no series.
    let empty = store
        .execution_analytics(
            w.ws.id,
            &AnalyticsQuery {
                from: Timestamp(from.nanos() + 3 * DAY),
                to: Timestamp(from.nanos() + 4 * DAY),
                ..window
            },
        )
        .await
        .unwrap();
    assert_eq!(empty.total, LatencyStats::default());
    assert!(empty.series.is_empty() && empty.endpoints.is_empty());
}

pub async fn span_analytics_are_per_service_and_count_retries_once(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let other = seed_workspace(&store, w.owner.id, "Other").await;
    let mut spans = Vec::new();
    for i in 0..400i64 {
        let service = ["checkout", "payments", "search"][(i % 3) as usize];
        let start = t(0).plus_nanos(i * 7 * MINUTE);
        spans.push(prism_domain::trace::Span {
            workspace_id: Some(if i % 10 == 9 { other.id } else { w.ws.id }),
            end: start.plus_nanos(100_000 + (i * i * 37_000) % 900_000_000),
            status_code: if i % 8 == 0 {
                StatusCode::Error
            } else {
                StatusCode::Ok
            },
            ..span(TraceId::random(), service, start)
        });
    }
    // One span outside any workspace is stored but in nobody's analytics.
    spans.push(span(TraceId::random(), "checkout", t(5)));
    store.insert_spans(&spans[..200]).await.unwrap();
    assert_eq!(store.insert_spans(&spans).await.unwrap(), 201);
    let retry_with_new_id = prism_domain::trace::Span {
        span_id: SpanId::random(),
        ..spans[0].clone()
    };
    assert_eq!(
        store
            .insert_spans(&[spans[0].clone(), retry_with_new_id.clone()])
            .await
            .unwrap(),
        1
    );
    spans.push(retry_with_new_id);

    let from = floor_to(t(0), MINUTE).plus_nanos(3 * HOUR + 11 * MINUTE);
    let to = from.plus_nanos(DAY + 2 * HOUR);
    let got = store.span_analytics(w.ws.id, from, to).await.unwrap();
    let mut expected: BTreeMap<&str, Vec<&prism_domain::trace::Span>> = BTreeMap::new();
    for s in &spans {
        if s.workspace_id == Some(w.ws.id) && s.start >= from && s.start < to {
            expected.entry(&s.service).or_default().push(s);
        }
    }
    assert_eq!(
        got.iter().map(|s| s.service.as_str()).collect::<Vec<_>>(),
        expected.keys().copied().collect::<Vec<_>>()
    );
    for service in &got {
        let raw = &expected[service.service.as_str()];
        assert_eq!(service.stats.count, raw.len() as u64);
        assert_eq!(
            service.stats.failures,
            raw.iter()
                .filter(|s| s.status_code == StatusCode::Error)
                .count() as u64
        );
        let durations = sorted(raw.iter().map(|s| s.end.nanos() - s.start.nanos()));
        assert_close(
            &service.service,
            service.stats.quantile_ms(0.95),
            &durations,
            0.95,
        );
    }
}

/// Executions stored before the rollup tables existed are counted when the migration that creates
/// them runs: undo that migration by hand, reopen, and the analytics are the same.
pub async fn migration_backfills_rollups_of_existing_executions(db: &prism_testkit::TestDatabase) {
    use sqlx::Connection;
    let store = db.open().await;
    let w = world(&store).await;
    let reqs = requests(&store, w.ws.id).await;
    store
        .insert_executions(&sample(w.ws.id, reqs, t(0), 1_500))
        .await
        .unwrap();
    let from = floor_to(t(0), MINUTE).plus_nanos(5 * HOUR + 2 * MINUTE);
    let window = query(from, from.plus_nanos(DAY + 3 * HOUR), HOUR);
    let spans: Vec<prism_domain::trace::Span> = (0..300i64)
        .map(|i| prism_domain::trace::Span {
            workspace_id: Some(w.ws.id),
            end: t(0).plus_nanos(i * 11 * MINUTE + i * 1_000_000),
            status_code: if i % 5 == 0 {
                StatusCode::Error
            } else {
                StatusCode::Ok
            },
            ..span(
                TraceId::random(),
                ["a", "b"][(i % 2) as usize],
                t(0).plus_nanos(i * 11 * MINUTE),
            )
        })
        .collect();
    store.insert_spans(&spans).await.unwrap();
    let before = store.execution_analytics(w.ws.id, &window).await.unwrap();
    let spans_before = store
        .span_analytics(w.ws.id, window.from, window.to)
        .await
        .unwrap();
    assert!(before.total.count > 400);
    assert_eq!(spans_before.len(), 2);
    store.close().await;

    const UNDO: &str = "DROP TABLE execution_rollups; DROP TABLE span_rollups; \
                        DELETE FROM prism_migrations WHERE name = '0003_analytics'";
    match db.url().backend() {
        prism_store::Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(db.url().as_str())
                .await
                .unwrap();
            sqlx::raw_sql(UNDO).execute(&mut conn).await.unwrap();
        }
        prism_store::Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(db.url().as_str())
                .await
                .unwrap();
            sqlx::raw_sql(UNDO).execute(&mut conn).await.unwrap();
        }
    }
    let store = db.open().await;
    let after = store.execution_analytics(w.ws.id, &window).await.unwrap();
    assert_eq!(after, before);
    let spans_after = store
        .span_analytics(w.ws.id, window.from, window.to)
        .await
        .unwrap();
    assert_eq!(spans_after, spans_before);
    store.close().await;
}

/// What the recorder writes — executions, their snapshots and client spans — goes in together:
/// a new batch is stored and counted, a retried batch adds only its new rows to the counts, and
/// a batch with a bad row stores none of its rows.
pub async fn recorded_batches_are_stored_whole_and_counted_once(store: Arc<dyn Store>) {
    use prism_domain::execution::ExecutionDetail;
    use serde_json::json;

    let w = world(&store).await;
    let from = floor_to(t(0), MINUTE);
    let window = AnalyticsQuery {
        from,
        to: Timestamp(from.nanos() + DAY),
        ..query(t(0), t(0), HOUR)
    };
    let recorded = |at: i64| {
        let execution = execution(w.ws.id, t(at));
        let detail = ExecutionDetail {
            execution_id: execution.id,
            request: json!({"method": "GET", "n": at}),
            response: json!({"status": 200}),
        };
        let span = prism_domain::trace::Span {
            workspace_id: Some(w.ws.id),
            span_id: execution.span_id,
            ..span(execution.trace_id, "prism", t(at))
        };
        (execution, detail, span)
    };
    let split = |batch: &[(
        Execution,
        prism_domain::execution::ExecutionDetail,
        prism_domain::trace::Span,
    )]| {
        (
            batch.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
            batch.iter().map(|r| r.1.clone()).collect::<Vec<_>>(),
            batch.iter().map(|r| r.2.clone()).collect::<Vec<_>>(),
        )
    };

    let first: Vec<_> = (0..5).map(|i| recorded(60 * i)).collect();
    let (executions, details, spans) = split(&first);
    store
        .insert_recorded(&executions, &details, &spans)
        .await
        .unwrap();
    for (execution, detail, span) in &first {
        assert_eq!(&store.get_execution(execution.id).await.unwrap(), execution);
        assert_eq!(
            store
                .find_execution_detail(execution.id)
                .await
                .unwrap()
                .as_ref(),
            Some(detail)
        );
        assert_eq!(
            store.list_trace_spans(span.trace_id).await.unwrap(),
            vec![span.clone()]
        );
    }

    // A retry of the whole batch plus two new records: only the new ones are added and counted.
    let mut retry = first.clone();
    retry.push(recorded(400));
    retry.push(recorded(401));
    let (executions, details, spans) = split(&retry);
    store
        .insert_recorded(&executions, &details, &spans)
        .await
        .unwrap();
    let got = store.execution_analytics(w.ws.id, &window).await.unwrap();
    assert_eq!(got.total.count, 7);
    let services = store
        .span_analytics(w.ws.id, window.from, window.to)
        .await
        .unwrap();
    assert_eq!(services.len(), 1);
    assert_eq!(services[0].stats.count, 7);

    // A batch whose snapshot names no stored execution fails as a whole: its execution and span
    // are not stored either, and nothing is counted.
    let (good_execution, good_detail, good_span) = recorded(500);
    let orphan = ExecutionDetail {
        execution_id: prism_domain::ExecutionId::new(),
        ..good_detail.clone()
    };
    assert!(
        store
            .insert_recorded(
                std::slice::from_ref(&good_execution),
                &[good_detail, orphan],
                std::slice::from_ref(&good_span),
            )
            .await
            .is_err()
    );
    assert!(store.get_execution(good_execution.id).await.is_err());
    assert!(
        store
            .list_trace_spans(good_span.trace_id)
            .await
            .unwrap()
            .is_empty()
    );
    let got = store.execution_analytics(w.ws.id, &window).await.unwrap();
    assert_eq!(got.total.count, 7);
}
