//! The write-behind recorder against real databases: batching, backpressure, outages, spool,
//! shutdown flush, rejected records, acknowledged span writes.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use prism_domain::execution::{Execution, ExecutionDetail, ExecutionSource};
use prism_domain::request::Protocol;
use prism_domain::trace::{Scope, Span, SpanId, SpanKind, StatusCode, TraceId};
use prism_domain::user::{Email, User};
use prism_domain::workspace::Workspace;
use prism_domain::{ExecutionId, RequestId, Timestamp, UserId, WorkspaceId};
use prism_intercept::recorder::{Record, RecordError, Recorder, RecorderConfig};
use prism_store::{ExecutionFilter, Store};

async fn workspace(store: &dyn Store) -> WorkspaceId {
    let user = User {
        id: UserId::new(),
        email: Email::parse(&format!("{}@example.test", UserId::new())).unwrap(),
        name: "Rec".into(),
        password_hash: "x".into(),
        is_admin: false,
        created_at: Timestamp(1),
        updated_at: Timestamp(1),
    };
    let user = store.insert_user(&user).await.unwrap();
    let ws = Workspace {
        id: WorkspaceId::new(),
        name: "ws".into(),
        created_by: Some(user.id),
        created_at: Timestamp(1),
        updated_at: Timestamp(1),
    };
    store.insert_workspace(&ws, user.id).await.unwrap();
    ws.id
}

fn span(trace_id: TraceId, name: &str) -> Span {
    Span {
        trace_id,
        span_id: SpanId::random(),
        parent_span_id: None,
        workspace_id: None,
        name: name.into(),
        service: "prism".into(),
        kind: SpanKind::Client,
        start: Timestamp(10),
        end: Timestamp(20),
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

fn execution_record(workspace: WorkspaceId, n: i64) -> Record {
    let trace_id = TraceId::random();
    let span = span(trace_id, "GET /x");
    let execution = Execution {
        id: ExecutionId::new(),
        workspace_id: workspace,
        request_id: None,
        protocol: Protocol::Rest,
        method: Some("GET".into()),
        target: format!("http://upstream.test/items/{n}"),
        endpoint: "GET http://upstream.test/items/{id}".into(),
        status_code: Some(200),
        failed: false,
        error_kind: None,
        error_message: None,
        started_at: Timestamp(1_000 + n),
        duration_ns: 1_000,
        ttfb_ns: Some(500),
        dns_ns: None,
        connect_ns: None,
        tls_ns: None,
        request_size: 0,
        response_size: 2,
        trace_id,
        span_id: span.span_id,
        source: ExecutionSource::DataPlane,
        created_by: None,
    };
    let detail = ExecutionDetail {
        execution_id: execution.id,
        request: serde_json::json!({"n": n}),
        response: serde_json::json!({"body": "ok"}),
    };
    Record::Execution {
        execution: Box::new(execution),
        detail: Some(Box::new(detail)),
        span: Some(Box::new(span)),
    }
}

async fn count_executions(store: &dyn Store, workspace: WorkspaceId) -> usize {
    let mut total = 0;
    let mut filter = ExecutionFilter {
        limit: 1000,
        ..ExecutionFilter::default()
    };
    loop {
        let page = store.list_executions(workspace, &filter).await.unwrap();
        total += page.len();
        let Some(last) = page.last() else { break };
        filter.before = Some(prism_store::ExecutionCursor {
            started_at: last.started_at,
            id: last.id,
        });
    }
    total
}

fn spool_lines(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("pending-"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap().lines().count())
        .sum()
}

pub async fn concurrent_records_are_all_written(store: Arc<dyn Store>) {
    let ws = workspace(store.as_ref()).await;
    let spool = tempfile::tempdir().unwrap();
    let mut config = RecorderConfig::new(spool.path().to_path_buf());
    config.batch_max = 300;
    let (recorder, task) = Recorder::start(store.clone(), config);
    let mut producers = Vec::new();
    for p in 0..4 {
        let recorder = recorder.clone();
        producers.push(tokio::spawn(async move {
            for n in 0..600 {
                recorder
                    .record(execution_record(ws, p * 1000 + n))
                    .await
                    .unwrap();
            }
        }));
    }
    for p in producers {
        p.await.unwrap();
    }
    task.shutdown().await;
    assert_eq!(count_executions(store.as_ref(), ws).await, 2400);
    assert_eq!(
        recorder
            .stats()
            .written
            .load(std::sync::atomic::Ordering::Relaxed),
        2400
    );
    assert_eq!(
        spool_lines(spool.path()),
        0,
        "nothing spooled while the database was up"
    );
    let some = store
        .list_executions(
            ws,
            &ExecutionFilter {
                limit: 1,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        store
            .find_execution_detail(some[0].id)
            .await
            .unwrap()
            .is_some(),
        "details written"
    );
    assert_eq!(
        store
            .list_trace_spans(some[0].trace_id)
            .await
            .unwrap()
            .len(),
        1,
        "client span written"
    );
}

pub async fn acknowledged_spans_are_committed_before_the_answer(store: Arc<dyn Store>) {
    let spool = tempfile::tempdir().unwrap();
    let (recorder, task) = Recorder::start(
        store.clone(),
        RecorderConfig::new(spool.path().to_path_buf()),
    );
    let trace = TraceId::random();
    let stored = recorder
        .record_acked(vec![span(trace, "a"), span(trace, "b")])
        .await
        .unwrap();
    assert_eq!(stored, 2);
    assert_eq!(
        store.list_trace_spans(trace).await.unwrap().len(),
        2,
        "visible as soon as acknowledged"
    );

    store.close().await;
    let refused = recorder
        .record_acked(vec![span(TraceId::random(), "c")])
        .await;
    assert!(
        matches!(refused, Err(RecordError::NotStored(_))),
        "{refused:?}"
    );
    task.shutdown().await;
    assert_eq!(
        spool_lines(spool.path()),
        0,
        "acknowledged spans are never spooled: the sender retries"
    );
}

pub async fn refused_records_are_kept_aside_and_the_rest_written(store: Arc<dyn Store>) {
    let ws = workspace(store.as_ref()).await;
    let spool = tempfile::tempdir().unwrap();
    let (recorder, task) = Recorder::start(
        store.clone(),
        RecorderConfig::new(spool.path().to_path_buf()),
    );
    // A saved request that no longer exists: the execution is kept without the link.
    let Record::Execution {
        mut execution,
        detail,
        span,
    } = execution_record(ws, 1)
    else {
        unreachable!()
    };
    execution.request_id = Some(RequestId::new());
    let dangling = execution.id;
    recorder
        .record(Record::Execution {
            execution,
            detail,
            span,
        })
        .await
        .unwrap();
    // A workspace that does not exist: nowhere to store it.
    recorder
        .record(execution_record(WorkspaceId::new(), 2))
        .await
        .unwrap();
    recorder.record(execution_record(ws, 3)).await.unwrap();
    task.shutdown().await;

    assert_eq!(
        store.get_execution(dangling).await.unwrap().request_id,
        None
    );
    assert_eq!(count_executions(store.as_ref(), ws).await, 2);
    let rejected = std::fs::read_to_string(spool.path().join("rejected.jsonl")).unwrap();
    assert_eq!(rejected.lines().count(), 1, "{rejected}");
    assert!(rejected.contains("\"reason\""), "{rejected}");
    assert_eq!(
        recorder
            .stats()
            .rejected
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

mod on {
    prism_testkit::for_each_backend!(crate::recorder =>
        concurrent_records_are_all_written,
        acknowledged_spans_are_committed_before_the_answer,
        refused_records_are_kept_aside_and_the_rest_written,
    );
}

/// The database goes away: records are spooled to disk (beyond a small memory limit and at
/// shutdown), nothing is lost, and the next start writes them.
#[tokio::test]
async fn outage_spools_to_disk_and_the_next_start_replays() {
    let db = prism_testkit::TestDatabase::sqlite();
    let store = db.open().await;
    let ws = workspace(store.as_ref()).await;
    let spool = tempfile::tempdir().unwrap();
    let mut config = RecorderConfig::new(spool.path().to_path_buf());
    config.memory_limit = 10;
    config.retry_initial = Duration::from_millis(5);
    let (recorder, task) = Recorder::start(store.clone(), config.clone());
    store.close().await; // the database is now unreachable for this store
    for n in 0..50 {
        recorder.record(execution_record(ws, n)).await.unwrap();
    }
    task.shutdown().await;
    assert_eq!(spool_lines(spool.path()), 50, "every record is on disk");

    let store = db.open().await;
    assert_eq!(count_executions(store.as_ref(), ws).await, 0);
    let (recorder, task) = Recorder::start(store.clone(), config);
    task.shutdown().await;
    assert_eq!(
        count_executions(store.as_ref(), ws).await,
        50,
        "replayed at start"
    );
    assert_eq!(
        recorder
            .stats()
            .replayed
            .load(std::sync::atomic::Ordering::Relaxed),
        50
    );
    assert_eq!(
        spool_lines(spool.path()),
        0,
        "spool files removed after the replay"
    );
    store.close().await;
    db.destroy().await;
}

/// Another process holds SQLite's write lock: the writer is stuck, the queue fills, callers wait
/// and then hear "overloaded" — and every record that was accepted is written once the lock goes.
#[tokio::test]
async fn full_queue_makes_callers_wait_then_report_overload() {
    use sqlx::Connection;
    let db = prism_testkit::TestDatabase::sqlite();
    let store = db.open().await;
    let ws = workspace(store.as_ref()).await;
    let spool = tempfile::tempdir().unwrap();
    let mut config = RecorderConfig::new(spool.path().to_path_buf());
    config.queue_capacity = 4;
    config.batch_max = 1;
    config.enqueue_timeout = Duration::from_millis(200);
    let (recorder, task) = Recorder::start(store.clone(), config);

    let mut blocker = sqlx::SqliteConnection::connect(db.url().as_str())
        .await
        .unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut blocker)
        .await
        .unwrap();
    let mut accepted = 0;
    let mut overloaded = false;
    for n in 0..20 {
        match recorder.record(execution_record(ws, n)).await {
            Ok(()) => accepted += 1,
            Err(RecordError::Overloaded) => {
                overloaded = true;
                break;
            }
            Err(other) => panic!("{other:?}"),
        }
    }
    assert!(
        overloaded,
        "a full queue reports overload after the bounded wait"
    );
    sqlx::raw_sql("COMMIT").execute(&mut blocker).await.unwrap();
    blocker.close().await.unwrap();
    task.shutdown().await;
    assert_eq!(
        count_executions(store.as_ref(), ws).await,
        accepted,
        "every accepted record written"
    );
    store.close().await;
    db.destroy().await;
}

/// PostgreSQL refuses connections in the middle of traffic (the database is closed to new
/// connections and every session is terminated): the recorder backs off and retries, and once the
/// database is back every record is written.
#[tokio::test]
async fn postgres_outage_mid_traffic_is_retried_until_written() {
    use sqlx::Connection;
    let Some(db) = prism_testkit::TestDatabase::postgres().await else {
        return;
    };
    let options = prism_store::StoreOptions {
        connect_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let store = prism_store::open(db.url(), &options).await.unwrap();
    let ws = workspace(store.as_ref()).await;
    let spool = tempfile::tempdir().unwrap();
    let mut config = RecorderConfig::new(spool.path().to_path_buf());
    config.retry_initial = Duration::from_millis(20);
    config.retry_max = Duration::from_millis(100);
    let (recorder, task) = Recorder::start(store.clone(), config);
    for n in 0..100 {
        recorder.record(execution_record(ws, n)).await.unwrap();
    }

    let name = url::Url::parse(db.url().as_str())
        .unwrap()
        .path()
        .trim_start_matches('/')
        .to_owned();
    let admin_url = std::env::var(prism_testkit::POSTGRES_ENV).unwrap();
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    let set_connections = |allow: bool| format!("ALTER DATABASE {name} ALLOW_CONNECTIONS {allow}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(set_connections(false)))
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()")
        .bind(&name)
        .execute(&mut admin)
        .await
        .unwrap();
    for n in 100..200 {
        recorder.record(execution_record(ws, n)).await.unwrap();
    }
    // Wait (bounded) until the recorder has observed the outage at least once.
    tokio::time::timeout(Duration::from_secs(20), async {
        while recorder
            .stats()
            .retries
            .load(std::sync::atomic::Ordering::Relaxed)
            == 0
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the outage was noticed");
    sqlx::raw_sql(sqlx::AssertSqlSafe(set_connections(true)))
        .execute(&mut admin)
        .await
        .unwrap();
    task.shutdown().await;

    assert_eq!(
        count_executions(store.as_ref(), ws).await + spool_lines(spool.path()),
        200,
        "nothing lost"
    );
    assert_eq!(
        recorder
            .stats()
            .rejected
            .load(std::sync::atomic::Ordering::Relaxed),
        0,
        "an outage is not a rejection"
    );
    store.close().await;
    admin.close().await.unwrap();
    db.destroy().await;
}
