//! Analytics at 10 million executions: how long the overview of the last 24 h, of the last 30 d and
//! a per-request drill-down take on SQLite and PostgreSQL.
//!
//! Generates (once; later runs reuse the databases in `BENCH_DIR`) `BENCH_ROWS` executions (default
//! 10 million) over 30 days for one workspace with 40 saved requests, plus `BENCH_NOISE_ROWS`
//! (default 1 million) in a second workspace — through `insert_executions`, the path the product
//! uses, which writes the rollups — and the same rows as CSV for the DuckDB comparison
//! (`bench/analytics/duckdb_compare.py`). Then times each query `RUNS` times and prints the
//! median, and writes the figures as JSON next to the data for the comparison script.
//!
//! Run: `bench/analytics/run.sh` (or `cargo bench -p prism-store --bench analytics`), PostgreSQL
//! from `BENCH_POSTGRES_URL` or `PRISM_TEST_POSTGRES_URL` (database `BENCH_PG_DATABASE`, default
//! `prism_bench_analytics`, on that server). Not part of `cargo test`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use prism_domain::analytics::{Granularity, last};
use prism_domain::collection::Collection;
use prism_domain::execution::{Execution, ExecutionSource};
use prism_domain::request::{Body, HttpSettings, Protocol, RequestSpec, RestSpec, SavedRequest};
use prism_domain::trace::{SpanId, TraceId};
use prism_domain::user::{Email, User};
use prism_domain::workspace::Workspace;
use prism_domain::{CollectionId, ExecutionId, RequestId, Timestamp, UserId, WorkspaceId};
use prism_store::{AnalyticsQuery, DatabaseUrl, Store, StoreOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

const DAY: i64 = Granularity::Day.nanos();
const RUNS: usize = 9;
const BATCH: usize = 5_000;
const REQUESTS: usize = 40;

/// One endpoint of the generated API: what its executions look like.
#[derive(Clone)]
struct Endpoint {
    protocol: Protocol,
    method: Option<&'static str>,
    endpoint: String,
    median_ms: f64,
    failure_rate: f64,
}

fn endpoints() -> Vec<Endpoint> {
    let mut rng = StdRng::seed_from_u64(1);
    let rest = [
        "/users/{id}",
        "/users",
        "/orders",
        "/orders/{id}",
        "/orders/{id}/items",
        "/cart",
        "/cart/items/{id}",
        "/search",
        "/products/{id}",
        "/products",
        "/payments",
        "/payments/{id}",
        "/auth/login",
        "/auth/refresh",
        "/inventory/{id}",
        "/shipping/quote",
        "/reviews/{id}",
        "/recommendations",
        "/profile",
        "/notifications",
        "/health",
        "/metrics/summary",
        "/coupons/{id}",
        "/returns",
        "/invoices/{id}",
        "/addresses",
        "/wishlist",
        "/categories",
    ];
    let methods = ["GET", "GET", "GET", "POST", "PUT", "DELETE"];
    let mut out = Vec::new();
    for (i, path) in rest.iter().enumerate() {
        out.push(Endpoint {
            protocol: Protocol::Rest,
            method: Some(methods[i % methods.len()]),
            endpoint: (*path).to_owned(),
            median_ms: rng.random_range(3.0..250.0),
            failure_rate: rng.random_range(0.002..0.08),
        });
    }
    for op in [
        "ProductPage",
        "Checkout",
        "UserFeed",
        "SearchSuggest",
        "OrderHistory",
        "Cart",
    ] {
        out.push(Endpoint {
            protocol: Protocol::Graphql,
            method: Some("POST"),
            endpoint: op.to_owned(),
            median_ms: rng.random_range(10.0..400.0),
            failure_rate: rng.random_range(0.002..0.05),
        });
    }
    for m in [
        "GetOrder",
        "ListOrders",
        "Reserve",
        "Charge",
        "Track",
        "Quote",
    ] {
        out.push(Endpoint {
            protocol: Protocol::Grpc,
            method: None,
            endpoint: format!("/acme.shop.v1.Shop/{m}"),
            median_ms: rng.random_range(1.0..120.0),
            failure_rate: rng.random_range(0.002..0.05),
        });
    }
    out
}

/// A standard normal sample (Box–Muller).
fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// The `i`-th of `n` executions spread evenly (with jitter) over `[start, start + 30 d)`.
fn generate(
    rng: &mut StdRng,
    ws: WorkspaceId,
    requests: &[(RequestId, usize)],
    endpoints: &[Endpoint],
    start: Timestamp,
    i: u64,
    n: u64,
) -> Execution {
    let span = 30 * DAY;
    let at = start.nanos() + (i as i128 * span as i128 / n as i128) as i64;
    // Saved requests run three times out of four; ad-hoc runs hit the same endpoints.
    let (request_id, e) = if rng.random_range(0..4) > 0 {
        // A few requests are much busier than others (Zipf-like).
        let r = ((rng.random::<f64>().powi(2)) * requests.len() as f64) as usize;
        let (id, e) = requests[r.min(requests.len() - 1)];
        (Some(id), &endpoints[e])
    } else {
        (None, &endpoints[rng.random_range(0..endpoints.len())])
    };
    let mut ms = e.median_ms * (0.6 * normal(rng)).exp();
    if rng.random_range(0..100) == 0 {
        ms *= 10.0;
    }
    let failed = rng.random::<f64>() < e.failure_rate;
    let transport = failed && rng.random_range(0..10) == 0;
    let status = match (e.protocol, failed, transport) {
        (_, _, true) => None,
        (Protocol::Grpc, true, _) => Some(14),
        (Protocol::Grpc, false, _) => Some(0),
        (Protocol::Graphql, true, _) => Some(if rng.random() { 200 } else { 502 }),
        (_, true, _) => Some(if rng.random() { 404 } else { 503 }),
        (_, false, _) => Some(if rng.random_range(0..20) == 0 {
            201
        } else {
            200
        }),
    };
    Execution {
        id: ExecutionId::new(),
        workspace_id: ws,
        request_id,
        protocol: e.protocol,
        method: e.method.map(str::to_owned),
        target: "https://api.shop.test".into(),
        endpoint: e.endpoint.clone(),
        status_code: status,
        failed,
        error_kind: transport.then_some(prism_domain::execution::ErrorKind::Timeout),
        error_message: None,
        started_at: Timestamp(at),
        duration_ns: (ms * 1e6) as i64,
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

struct Seeded {
    ws: WorkspaceId,
    noise: WorkspaceId,
    requests: Vec<(RequestId, usize)>,
}

/// The workspace, its requests and the noise workspace; found again when the database is reused.
async fn seed(store: &Arc<dyn Store>, anchor: Timestamp) -> (Seeded, bool) {
    if let Some(user) = store
        .find_user_by_email(&Email::parse("bench@example.test").unwrap())
        .await
        .unwrap()
    {
        let mine = store.list_workspaces_for_user(user.id).await.unwrap();
        let ws = mine.iter().find(|(w, _)| w.name == "Shop").unwrap().0.id;
        let noise = mine.iter().find(|(w, _)| w.name == "Noise").unwrap().0.id;
        let requests = store
            .list_workspace_requests(ws)
            .await
            .unwrap()
            .into_iter()
            .map(|r| {
                let e = r.name.trim_start_matches("r").parse::<usize>().unwrap();
                (r.id, e)
            })
            .collect::<Vec<_>>();
        let mut requests = requests;
        requests.sort_by_key(|(_, e)| *e);
        return (
            Seeded {
                ws,
                noise,
                requests,
            },
            true,
        );
    }
    let user = store
        .insert_user(&User {
            id: UserId::new(),
            email: Email::parse("bench@example.test").unwrap(),
            name: "Bench".into(),
            password_hash: "x".into(),
            is_admin: false,
            created_at: anchor,
            updated_at: anchor,
        })
        .await
        .unwrap();
    let mut ids = Vec::new();
    for name in ["Shop", "Noise"] {
        let ws = Workspace {
            id: WorkspaceId::new(),
            name: name.into(),
            created_by: Some(user.id),
            created_at: anchor,
            updated_at: anchor,
        };
        store.insert_workspace(&ws, user.id).await.unwrap();
        ids.push(ws.id);
    }
    let n_endpoints = endpoints().len();
    let mut requests = Vec::new();
    for ws in &ids {
        let mut collections = Vec::new();
        for c in 0..4 {
            let parent = (c == 3).then(|| collections[0]);
            let collection = store
                .insert_collection(&Collection {
                    id: CollectionId::new(),
                    workspace_id: *ws,
                    parent_id: parent,
                    name: format!("Collection {c}"),
                    position: 0,
                    created_by: None,
                    created_at: anchor,
                    updated_at: anchor,
                })
                .await
                .unwrap();
            collections.push(collection.id);
        }
        for r in 0..REQUESTS {
            let request = store
                .insert_request(&SavedRequest {
                    id: RequestId::new(),
                    workspace_id: *ws,
                    collection_id: collections[r % 4],
                    name: format!("r{}", r % n_endpoints),
                    position: 0,
                    spec: RequestSpec::Rest(RestSpec {
                        method: "GET".into(),
                        url: "https://api.shop.test/".into(),
                        params: vec![],
                        headers: vec![],
                        body: Body::None,
                        settings: HttpSettings::default(),
                    }),
                    created_by: None,
                    created_at: anchor,
                    updated_at: anchor,
                })
                .await
                .unwrap();
            if *ws == ids[0] {
                requests.push((request.id, r % n_endpoints));
            }
        }
    }
    (
        Seeded {
            ws: ids[0],
            noise: ids[1],
            requests,
        },
        false,
    )
}

/// Inserts the generated rows; returns executions per second. Writes the CSV when asked.
async fn fill(
    store: &Arc<dyn Store>,
    seeded: &Seeded,
    start: Timestamp,
    rows: u64,
    noise_rows: u64,
    csv: Option<&Path>,
) -> f64 {
    let endpoints = endpoints();
    let mut out = csv.map(|p| {
        let mut w = std::io::BufWriter::new(std::fs::File::create(p).unwrap());
        writeln!(
            w,
            "workspace_id,request_id,protocol,method,endpoint,status_code,failed,started_at,duration_ns"
        )
        .unwrap();
        w
    });
    let noise_requests: Vec<(RequestId, usize)> = store
        .list_workspace_requests(seeded.noise)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.id, r.name.trim_start_matches("r").parse().unwrap()))
        .collect();
    let began = Instant::now();
    let mut total = 0u64;
    for (ws, requests, n, seed) in [
        (seeded.ws, &seeded.requests, rows, 7u64),
        (seeded.noise, &noise_requests, noise_rows, 8u64),
    ] {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut i = 0;
        while i < n {
            let take = (n - i).min(BATCH as u64);
            let batch: Vec<Execution> = (i..i + take)
                .map(|k| generate(&mut rng, ws, requests, &endpoints, start, k, n))
                .collect();
            if let Some(w) = out.as_mut() {
                for e in &batch {
                    writeln!(
                        w,
                        "{},{},{},{},{},{},{},{},{}",
                        e.workspace_id,
                        e.request_id.map(|r| r.to_string()).unwrap_or_default(),
                        e.protocol.as_str(),
                        e.method.as_deref().unwrap_or(""),
                        e.endpoint,
                        e.status_code.map(|s| s.to_string()).unwrap_or_default(),
                        e.failed,
                        e.started_at.nanos(),
                        e.duration_ns
                    )
                    .unwrap();
                }
            }
            store.insert_executions(&batch).await.unwrap();
            i += take;
            total += take;
            if total.is_multiple_of(500_000) {
                eprintln!(
                    "  {total} rows, {:.0} rows/s",
                    total as f64 / began.elapsed().as_secs_f64()
                );
            }
        }
    }
    if let Some(mut w) = out {
        w.flush().unwrap();
    }
    total as f64 / began.elapsed().as_secs_f64()
}

fn query(from: Timestamp, to: Timestamp, step: i64, request: Option<RequestId>) -> AnalyticsQuery {
    AnalyticsQuery {
        from,
        to,
        step_ns: step,
        request_ids: request.map(|r| vec![r]),
        protocol: None,
        method: None,
        endpoint: None,
        status_class: None,
    }
}

/// The median of `RUNS` timings of one overview (executions and spans, as the API asks), and
/// what it answered.
async fn time_overview(
    store: &Arc<dyn Store>,
    ws: WorkspaceId,
    q: &AnalyticsQuery,
) -> (f64, serde_json::Value) {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..RUNS {
        let began = Instant::now();
        let got = store.execution_analytics(ws, q).await.unwrap();
        let services = store.span_analytics(ws, q.from, q.to).await.unwrap();
        times.push(began.elapsed().as_secs_f64() * 1e3);
        last = Some((got, services));
    }
    times.sort_by(f64::total_cmp);
    let (got, _) = last.unwrap();
    let t = &got.total;
    (
        times[RUNS / 2],
        json!({
            "count": t.count, "failures": t.failures,
            "p50_ms": t.quantile_ms(0.5), "p90_ms": t.quantile_ms(0.9),
            "p95_ms": t.quantile_ms(0.95), "p99_ms": t.quantile_ms(0.99), "max_ms": t.max_ms(),
            "series_points": got.series.len(), "endpoints": got.endpoints.len(),
        }),
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rows = env_number("BENCH_ROWS", 10_000_000);
    let noise_rows = env_number("BENCH_NOISE_ROWS", 1_000_000);
    let dir = PathBuf::from(
        std::env::var("BENCH_DIR").unwrap_or_else(|_| "/tmp/prism-analytics-bench".into()),
    );
    std::fs::create_dir_all(&dir).unwrap();
    // The 30 days end at a fixed minute, kept with the data so reused databases agree.
    let anchor_file = dir.join("anchor");
    let end = match std::fs::read_to_string(&anchor_file) {
        Ok(text) => Timestamp(text.trim().parse().unwrap()),
        Err(_) => {
            let now = prism_domain::Clock::now(&prism_domain::SystemClock);
            let end = prism_domain::analytics::floor_to(now, Granularity::Minute.nanos());
            std::fs::write(&anchor_file, end.nanos().to_string()).unwrap();
            end
        }
    };
    let start = Timestamp(end.nanos() - 30 * DAY);
    let backends = std::env::var("BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    let pg_server = std::env::var("BENCH_POSTGRES_URL")
        .or_else(|_| std::env::var("PRISM_TEST_POSTGRES_URL"))
        .ok();
    let mut results = serde_json::Map::new();
    results.insert("end_ns".into(), json!(end.nanos()));
    println!(
        "Analytics over {rows} executions (+{noise_rows} noise) in 30 days, median of {RUNS} runs"
    );
    println!("| backend | case | median ms | count | p50 ms | p99 ms |");
    println!("|---|---|---|---|---|---|");
    for backend in backends.split(',').map(str::trim) {
        let url = match backend {
            "sqlite" => DatabaseUrl::sqlite_file(&dir.join("analytics.db")),
            "postgres" => {
                let Some(server) = &pg_server else {
                    println!("| PostgreSQL | skipped: set BENCH_POSTGRES_URL | | | | |");
                    continue;
                };
                let name = std::env::var("BENCH_PG_DATABASE")
                    .unwrap_or_else(|_| "prism_bench_analytics".into());
                ensure_postgres_database(server, &name).await
            }
            other => panic!("unknown backend {other}"),
        };
        let store = prism_store::open(&url, &StoreOptions::default())
            .await
            .unwrap();
        let (seeded, reused) = seed(&store, start).await;
        let mut backend_results = serde_json::Map::new();
        if !reused {
            let csv = dir.join("executions.csv");
            let write_csv = !csv.exists();
            eprintln!("{backend}: generating {} rows…", rows + noise_rows);
            let rate = fill(
                &store,
                &seeded,
                start,
                rows,
                noise_rows,
                write_csv.then_some(csv.as_path()),
            )
            .await;
            eprintln!("{backend}: {rate:.0} executions/s inserted (with rollups)");
            std::fs::write(
                dir.join(format!("{backend}.insert_rate")),
                format!("{rate:.0}"),
            )
            .unwrap();
            if write_csv {
                // Each backend holds the same generated values under its own ids; DuckDB reads
                // the CSV with this backend's ids.
                let ids = json!({"workspace_id": seeded.ws.to_string(),
                                 "request_id": seeded.requests[0].0.to_string()});
                std::fs::write(dir.join("csv_ids.json"), ids.to_string()).unwrap();
            }
        }
        if let Ok(rate) = std::fs::read_to_string(dir.join(format!("{backend}.insert_rate"))) {
            backend_results.insert("insert_per_s".into(), json!(rate.trim()));
        }
        // The busiest saved request, for the drill-down.
        let busiest = seeded.requests[0].0;
        backend_results.insert("request_id".into(), json!(busiest.to_string()));
        // The windows the API uses for `window=24h` and `window=30d` at `end`.
        let (day_from, day_to, day_step) = last(end, DAY);
        let (month_from, month_to, month_step) = last(end, 30 * DAY);
        let cases = [
            ("last 24 h", query(day_from, day_to, day_step, None)),
            ("last 30 d", query(month_from, month_to, month_step, None)),
            (
                "request drill-down, 30 d",
                query(month_from, month_to, month_step, Some(busiest)),
            ),
        ];
        for (name, q) in cases {
            let (ms, answer) = time_overview(&store, seeded.ws, &q).await;
            println!(
                "| {backend} | {name} | {ms:.1} | {} | {:.2} | {:.2} |",
                answer["count"],
                answer["p50_ms"].as_f64().unwrap(),
                answer["p99_ms"].as_f64().unwrap()
            );
            backend_results.insert(
                name.into(),
                json!({"ms": ms, "answer": answer, "from_ns": q.from.nanos(),
                       "to_ns": q.to.nanos(), "step_ns": q.step_ns}),
            );
        }
        results.insert(backend.into(), serde_json::Value::Object(backend_results));
        store.close().await;
    }
    std::fs::write(
        dir.join("prism_times.json"),
        serde_json::to_string_pretty(&results).unwrap(),
    )
    .unwrap();
}

/// The bench database on the server, created when missing (and kept for later runs).
async fn ensure_postgres_database(server: &str, name: &str) -> DatabaseUrl {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(server)
        .await
        .expect("connect to the PostgreSQL server");
    let exists: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_optional(&mut conn)
        .await
        .unwrap();
    if exists.is_none() {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create the bench database");
    }
    let mut url = url::Url::parse(server).expect("a PostgreSQL URL");
    url.set_path(name);
    DatabaseUrl::parse(url.as_str()).expect("database URL")
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
