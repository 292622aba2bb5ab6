//! Executions: idempotent batch writes (also past one chunk), every list filter, cursor paging, details and traces.

use std::collections::HashSet;
use std::sync::Arc;

use prism_domain::execution::{Execution, ExecutionDetail};
use prism_domain::request::Protocol;
use prism_domain::trace::TraceId;
use prism_domain::{ExecutionId, Timestamp, WorkspaceId};
use prism_store::{Conflict, ExecutionCursor, ExecutionFilter, Store, StoreError};
use serde_json::json;

use crate::fixtures::{
    assert_not_found, execution, graphql_execution, grpc_execution, seed_collection, seed_request,
    seed_workspace, t, transport_failure, world,
};

fn ids(executions: &[Execution]) -> Vec<ExecutionId> {
    executions.iter().map(|e| e.id).collect()
}

fn filter(limit: u32) -> ExecutionFilter {
    ExecutionFilter {
        limit,
        ..ExecutionFilter::default()
    }
}

/// Every execution of a workspace, following the cursor page by page.
async fn all_pages(store: &Arc<dyn Store>, ws: WorkspaceId, page: u32) -> Vec<Execution> {
    let mut out = Vec::new();
    let mut before = None;
    loop {
        let rows = store
            .list_executions(
                ws,
                &ExecutionFilter {
                    before,
                    ..filter(page)
                },
            )
            .await
            .unwrap();
        assert!(rows.len() <= page as usize);
        let Some(last) = rows.last() else { break };
        before = Some(ExecutionCursor {
            started_at: last.started_at,
            id: last.id,
        });
        let done = rows.len() < page as usize;
        out.extend(rows);
        if done {
            break;
        }
    }
    out
}

pub async fn mixed_execution_batch_is_stored_exactly(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let batch = vec![
        transport_failure(w.ws.id, t(100)),
        grpc_execution(w.ws.id, t(101), 14),
        graphql_execution(w.ws.id, t(102), 200),
        Execution {
            created_by: Some(w.owner.id),
            duration_ns: i64::MAX,
            request_size: 0,
            ..execution(w.ws.id, Timestamp(i64::MAX - 1))
        },
    ];
    assert_eq!(store.insert_executions(&batch).await.unwrap(), 4);
    for e in &batch {
        assert_eq!(&store.get_execution(e.id).await.unwrap(), e);
    }
    let failure = store.get_execution(batch[0].id).await.unwrap();
    assert_eq!(failure.status_code, None);
    assert_eq!(
        failure.error_kind,
        Some(prism_domain::execution::ErrorKind::ConnectionRefused)
    );
    assert_eq!(store.insert_executions(&[]).await.unwrap(), 0);
}

pub async fn retried_execution_batch_is_not_duplicated(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let batch: Vec<_> = (0..3).map(|i| execution(w.ws.id, t(i))).collect();
    assert_eq!(store.insert_executions(&batch).await.unwrap(), 3);
    assert_eq!(store.insert_executions(&batch).await.unwrap(), 0);
    assert_eq!(
        store
            .list_executions(w.ws.id, &filter(100))
            .await
            .unwrap()
            .len(),
        3
    );

    // A retry that carries one new row stores only that one, and never overwrites the old rows.
    let changed = Execution {
        status_code: Some(500),
        failed: true,
        ..batch[0].clone()
    };
    let fresh = execution(w.ws.id, t(10));
    assert_eq!(
        store
            .insert_executions(&[changed, fresh.clone(), batch[1].clone()])
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.get_execution(batch[0].id).await.unwrap(), batch[0]);
    assert_eq!(store.get_execution(fresh.id).await.unwrap(), fresh);
    assert_eq!(
        store
            .list_executions(w.ws.id, &filter(100))
            .await
            .unwrap()
            .len(),
        4
    );
}

pub async fn execution_batch_larger_than_one_chunk_is_stored(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let batch: Vec<_> = (0..1200).map(|i| execution(w.ws.id, t(i))).collect();
    assert_eq!(store.insert_executions(&batch).await.unwrap(), 1200);
    assert_eq!(store.insert_executions(&batch).await.unwrap(), 0);
    assert_eq!(
        store
            .list_executions(w.ws.id, &filter(1000))
            .await
            .unwrap()
            .len(),
        1000,
        "limit is capped at 1000"
    );
    let listed = all_pages(&store, w.ws.id, 1000).await;
    assert_eq!(listed.len(), 1200);
    let mut expected = batch;
    expected.reverse();
    assert_eq!(listed, expected);
}

pub async fn failing_execution_batch_stores_nothing(store: Arc<dyn Store>) {
    let w = world(&store).await;
    // The bad row lands in the second chunk: the first chunk must be rolled back too.
    let mut batch: Vec<_> = (0..600).map(|i| execution(w.ws.id, t(i))).collect();
    batch.push(execution(WorkspaceId::new(), t(700)));
    let result = store.insert_executions(&batch).await;
    assert!(
        matches!(
            result,
            Err(StoreError::Conflict(Conflict::MissingReference(_)))
        ),
        "{result:?}"
    );
    assert!(
        store
            .list_executions(w.ws.id, &filter(10))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.insert_executions(&batch[..600]).await.unwrap(), 600);
}

pub async fn executions_are_filtered_by_every_field(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let c = seed_collection(&store, w.ws.id, None, "C").await;
    let r1 = seed_request(&store, w.ws.id, c.id, "r1").await;
    let r2 = seed_request(&store, w.ws.id, c.id, "r2").await;
    let e1 = Execution {
        request_id: Some(r1.id),
        ..execution(w.ws.id, t(100))
    };
    let e2 = Execution {
        request_id: Some(r1.id),
        status_code: Some(404),
        failed: true,
        ..execution(w.ws.id, t(200))
    };
    let e3 = Execution {
        request_id: Some(r2.id),
        status_code: Some(500),
        failed: true,
        ..execution(w.ws.id, t(300))
    };
    let e4 = graphql_execution(w.ws.id, t(400), 200);
    let e5 = grpc_execution(w.ws.id, t(500), 0);
    let e6 = transport_failure(w.ws.id, t(600));
    let other = seed_workspace(&store, w.owner.id, "Other").await;
    let elsewhere = execution(other.id, t(350));
    let all = [&e1, &e2, &e3, &e4, &e5, &e6, &elsewhere].map(Clone::clone);
    assert_eq!(store.insert_executions(&all).await.unwrap(), 7);

    let list = |f: ExecutionFilter| {
        let store = store.clone();
        async move {
            ids(&store
                .list_executions(w.ws.id, &ExecutionFilter { limit: 100, ..f })
                .await
                .unwrap())
        }
    };
    let expect = |list: &[&Execution]| list.iter().map(|e| e.id).collect::<Vec<_>>();

    assert_eq!(
        list(ExecutionFilter::default()).await,
        expect(&[&e6, &e5, &e4, &e3, &e2, &e1]),
        "newest first"
    );
    assert_eq!(
        store.list_executions(w.ws.id, &filter(100)).await.unwrap(),
        vec![
            e6.clone(),
            e5.clone(),
            e4.clone(),
            e3.clone(),
            e2.clone(),
            e1.clone()
        ]
    );
    assert_eq!(
        list(ExecutionFilter {
            request_id: Some(r1.id),
            ..Default::default()
        })
        .await,
        expect(&[&e2, &e1])
    );
    assert_eq!(
        list(ExecutionFilter {
            request_id: Some(r2.id),
            ..Default::default()
        })
        .await,
        expect(&[&e3])
    );
    assert_eq!(
        list(ExecutionFilter {
            protocol: Some(Protocol::Rest),
            ..Default::default()
        })
        .await,
        expect(&[&e6, &e3, &e2, &e1])
    );
    assert_eq!(
        list(ExecutionFilter {
            protocol: Some(Protocol::Graphql),
            ..Default::default()
        })
        .await,
        expect(&[&e4])
    );
    assert_eq!(
        list(ExecutionFilter {
            protocol: Some(Protocol::Grpc),
            ..Default::default()
        })
        .await,
        expect(&[&e5])
    );
    // Status bounds are inclusive; executions without a status never match a bound.
    assert_eq!(
        list(ExecutionFilter {
            status_min: Some(400),
            status_max: Some(499),
            ..Default::default()
        })
        .await,
        expect(&[&e2])
    );
    assert_eq!(
        list(ExecutionFilter {
            status_min: Some(404),
            status_max: Some(500),
            ..Default::default()
        })
        .await,
        expect(&[&e3, &e2])
    );
    assert_eq!(
        list(ExecutionFilter {
            status_min: Some(400),
            ..Default::default()
        })
        .await,
        expect(&[&e3, &e2])
    );
    assert_eq!(
        list(ExecutionFilter {
            status_max: Some(200),
            ..Default::default()
        })
        .await,
        expect(&[&e5, &e4, &e1])
    );
    assert_eq!(
        list(ExecutionFilter {
            failed: Some(true),
            ..Default::default()
        })
        .await,
        expect(&[&e6, &e3, &e2])
    );
    assert_eq!(
        list(ExecutionFilter {
            failed: Some(false),
            ..Default::default()
        })
        .await,
        expect(&[&e5, &e4, &e1])
    );
    // `from` is inclusive, `to` exclusive.
    assert_eq!(
        list(ExecutionFilter {
            from: Some(t(200)),
            to: Some(t(400)),
            ..Default::default()
        })
        .await,
        expect(&[&e3, &e2])
    );
    assert_eq!(
        list(ExecutionFilter {
            from: Some(t(500)),
            ..Default::default()
        })
        .await,
        expect(&[&e6, &e5])
    );
    assert_eq!(
        list(ExecutionFilter {
            to: Some(t(200)),
            ..Default::default()
        })
        .await,
        expect(&[&e1])
    );
    // Filters combine.
    assert_eq!(
        list(ExecutionFilter {
            protocol: Some(Protocol::Rest),
            failed: Some(true),
            to: Some(t(600)),
            ..Default::default()
        })
        .await,
        expect(&[&e3, &e2])
    );
    assert_eq!(
        store.list_executions(w.ws.id, &filter(2)).await.unwrap(),
        vec![e6.clone(), e5.clone()]
    );
    assert_eq!(
        store.list_executions(w.ws.id, &filter(0)).await.unwrap(),
        vec![e6.clone()],
        "limit 0 means 1"
    );
    assert_eq!(
        store.list_executions(other.id, &filter(100)).await.unwrap(),
        vec![elsewhere]
    );
}

pub async fn execution_pages_have_no_overlap_or_gaps(store: Arc<dyn Store>) {
    let w = world(&store).await;
    // Several executions share a start time, so the cursor must break ties by id.
    let batch: Vec<_> = (0..25).map(|i| execution(w.ws.id, t(i / 3))).collect();
    assert_eq!(store.insert_executions(&batch).await.unwrap(), 25);
    let mut expected = batch.clone();
    expected.sort_by_key(|e| std::cmp::Reverse((e.started_at, e.id)));

    for page in [1, 3, 7, 25, 100] {
        let listed = all_pages(&store, w.ws.id, page).await;
        assert_eq!(ids(&listed), ids(&expected), "page size {page}");
        assert_eq!(
            listed.iter().map(|e| e.id).collect::<HashSet<_>>().len(),
            25
        );
    }

    // A cursor also combines with other filters.
    let before = ExecutionCursor {
        started_at: expected[4].started_at,
        id: expected[4].id,
    };
    let page = store
        .list_executions(
            w.ws.id,
            &ExecutionFilter {
                before: Some(before),
                from: Some(t(5)),
                ..filter(100)
            },
        )
        .await
        .unwrap();
    let want: Vec<_> = expected[5..]
        .iter()
        .filter(|e| e.started_at >= t(5))
        .map(|e| e.id)
        .collect();
    assert_eq!(ids(&page), want);
}

pub async fn execution_details_are_stored_once(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let first = execution(w.ws.id, t(1));
    let second = execution(w.ws.id, t(2));
    store
        .insert_executions(&[first.clone(), second.clone()])
        .await
        .unwrap();
    let detail = ExecutionDetail {
        execution_id: first.id,
        request: json!({"method": "GET", "headers": [["Accept", "*/*"], ["Accept", "text/html"]], "body": null}),
        response: json!({"status": 200, "body": "ünïcödé ✓ \"quoted\"", "truncated": false, "size": 4096, "ratio": 0.5}),
    };

    assert_eq!(
        store
            .insert_execution_details(std::slice::from_ref(&detail))
            .await
            .unwrap(),
        1
    );
    let retry = ExecutionDetail {
        response: json!({"status": 500}),
        ..detail.clone()
    };
    assert_eq!(store.insert_execution_details(&[retry]).await.unwrap(), 0);
    assert_eq!(
        store.find_execution_detail(first.id).await.unwrap(),
        Some(detail.clone()),
        "the first copy is kept"
    );
    assert_eq!(store.find_execution_detail(second.id).await.unwrap(), None);
    assert_eq!(store.insert_execution_details(&[]).await.unwrap(), 0);

    let orphan = ExecutionDetail {
        execution_id: ExecutionId::new(),
        request: json!({}),
        response: json!({}),
    };
    assert!(matches!(
        store.insert_execution_details(&[orphan]).await,
        Err(StoreError::Conflict(Conflict::MissingReference(_)))
    ));
}

pub async fn trace_executions_are_listed_by_start(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let trace = TraceId::random();
    let later = Execution {
        trace_id: trace,
        ..execution(w.ws.id, t(20))
    };
    let earlier = Execution {
        trace_id: trace,
        ..grpc_execution(w.ws.id, t(10), 0)
    };
    let unrelated = execution(w.ws.id, t(15));
    store
        .insert_executions(&[later.clone(), unrelated, earlier.clone()])
        .await
        .unwrap();

    assert_eq!(
        store.list_trace_executions(trace).await.unwrap(),
        vec![earlier, later]
    );
    assert!(
        store
            .list_trace_executions(TraceId::random())
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn execution_outlives_its_deleted_request(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let c = seed_collection(&store, w.ws.id, None, "C").await;
    let r = seed_request(&store, w.ws.id, c.id, "r").await;
    let e = Execution {
        request_id: Some(r.id),
        ..execution(w.ws.id, t(5))
    };
    store
        .insert_executions(std::slice::from_ref(&e))
        .await
        .unwrap();

    store.delete_request(r.id).await.unwrap();
    assert_eq!(
        store.get_execution(e.id).await.unwrap(),
        Execution {
            request_id: None,
            ..e.clone()
        }
    );
    assert_eq!(
        store
            .list_executions(w.ws.id, &filter(10))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .list_executions(
                w.ws.id,
                &ExecutionFilter {
                    request_id: Some(r.id),
                    ..filter(10)
                }
            )
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn missing_execution_is_not_found(store: Arc<dyn Store>) {
    assert_not_found(store.get_execution(ExecutionId::new()).await);
    assert_eq!(
        store
            .find_execution_detail(ExecutionId::new())
            .await
            .unwrap(),
        None
    );
}
