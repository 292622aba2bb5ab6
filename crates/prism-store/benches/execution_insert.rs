//! Execution insert throughput: `insert_executions` in batches of `BATCH` on a fresh database,
//! 40 endpoints, timestamps ascending over a day (as the recorder writes them). Compares the
//! write path with and without analytics rollups.
//!
//! Run: `cargo bench -p prism-store --bench execution_insert` (env `BENCH_ROWS`, default 300 000;
//! PostgreSQL from `BENCH_POSTGRES_URL` or `PRISM_TEST_POSTGRES_URL`).

use std::time::Instant;

use prism_domain::execution::{Execution, ExecutionSource};
use prism_domain::request::Protocol;
use prism_domain::trace::{SpanId, TraceId};
use prism_domain::user::{Email, User};
use prism_domain::workspace::Workspace;
use prism_domain::{ExecutionId, Timestamp, UserId, WorkspaceId};
use prism_store::{DatabaseUrl, StoreOptions};

const BATCH: usize = 1_000;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rows: usize = std::env::var("BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300_000);
    let dir = tempfile_dir();
    let mut urls = vec![(
        "SQLite",
        DatabaseUrl::sqlite_file(&dir.join("insert.db")),
        None,
    )];
    if let Ok(server) =
        std::env::var("BENCH_POSTGRES_URL").or_else(|_| std::env::var("PRISM_TEST_POSTGRES_URL"))
    {
        let name = format!("prism_bench_insert_{}", uuid::Uuid::new_v4().simple());
        admin(&server, &format!("CREATE DATABASE {name}")).await;
        let mut url = url::Url::parse(&server).unwrap();
        url.set_path(&name);
        urls.push((
            "PostgreSQL",
            DatabaseUrl::parse(url.as_str()).unwrap(),
            Some((server, name)),
        ));
    }
    println!("| backend | executions | batch | executions/s |");
    println!("|---|---|---|---|");
    for (label, url, cleanup) in urls {
        let store = prism_store::open(&url, &StoreOptions::default())
            .await
            .unwrap();
        let now = Timestamp::from_secs(1_800_000_000);
        let user = store
            .insert_user(&User {
                id: UserId::new(),
                email: Email::parse("bench@example.test").unwrap(),
                name: "Bench".into(),
                password_hash: "x".into(),
                is_admin: false,
                created_at: now,
                updated_at: now,
            })
            .await
            .unwrap();
        let ws = Workspace {
            id: WorkspaceId::new(),
            name: "Bench".into(),
            created_by: Some(user.id),
            created_at: now,
            updated_at: now,
        };
        store.insert_workspace(&ws, user.id).await.unwrap();
        let began = Instant::now();
        let mut i = 0usize;
        while i < rows {
            let batch: Vec<Execution> = (i..(i + BATCH).min(rows))
                .map(|k| execution(ws.id, now, k, rows))
                .collect();
            store.insert_executions(&batch).await.unwrap();
            i += batch.len();
        }
        let rate = rows as f64 / began.elapsed().as_secs_f64();
        println!("| {label} | {rows} | {BATCH} | {rate:.0} |");
        store.close().await;
        if let Some((server, name)) = cleanup {
            admin(
                &server,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            )
            .await;
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn execution(ws: WorkspaceId, start: Timestamp, k: usize, n: usize) -> Execution {
    let day: i64 = 86_400_000_000_000;
    let e = k % 40;
    Execution {
        id: ExecutionId::new(),
        workspace_id: ws,
        request_id: None,
        protocol: Protocol::Rest,
        method: Some("GET".into()),
        target: "https://api.shop.test".into(),
        endpoint: format!("/endpoint/{e}/{{id}}"),
        status_code: Some(if k.is_multiple_of(37) { 503 } else { 200 }),
        failed: k.is_multiple_of(37),
        error_kind: None,
        error_message: None,
        started_at: start.plus_nanos((k as i128 * day as i128 / n as i128) as i64),
        duration_ns: 1_000_000 + ((k * 7919) % 300_000_000) as i64,
        ttfb_ns: None,
        dns_ns: None,
        connect_ns: None,
        tls_ns: None,
        request_size: 200,
        response_size: 1_500,
        trace_id: TraceId::random(),
        span_id: SpanId::random(),
        source: ExecutionSource::DataPlane,
        created_by: None,
    }
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("prism-insert-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn admin(server: &str, sql: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(server).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .unwrap();
}
