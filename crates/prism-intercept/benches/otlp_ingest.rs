//! OTLP/HTTP ingest throughput: acknowledged (= committed) spans per second.
//!
//! Starts `POST /v1/traces` on a loopback port over a recorder and a fresh database — SQLite in a
//! temporary directory, and PostgreSQL when `BENCH_POSTGRES_URL` or `PRISM_TEST_POSTGRES_URL` is
//! set (a new database on that server, dropped afterwards). `CLIENTS` concurrent clients post
//! pre-encoded protobuf batches of `BATCH` spans with realistic attributes for `SECONDS` seconds;
//! every batch carries new trace ids (patched into the encoded template), so nothing is a
//! duplicate and the stored row count must equal the acknowledged count, which is checked.
//! Clients and server share this process and its two cores, as they would on one small host.
//!
//! Run: `cargo bench -p prism-intercept --bench otlp_ingest` (env `BENCH_SECONDS`, `BENCH_CLIENTS`,
//! `BENCH_BACKENDS=sqlite,postgres` override the defaults).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as Av;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1 as otlp;
use prism_domain::user::{Email, User};
use prism_domain::workspace::Workspace;
use prism_domain::{Timestamp, UserId, WorkspaceId};
use prism_intercept::otlp::{IngestAuthorizer, IngestRejection, OtlpIngest, http_routes};
use prism_intercept::recorder::{Recorder, RecorderConfig};
use prism_store::{DatabaseUrl, StoreOptions};
use prost::Message;

/// The `prism` binary's allocator, so the figures are those of production.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BATCH: usize = 512;
const TRACES_PER_BATCH: usize = 16;
const DEFAULT_CLIENTS: usize = 8;
const DEFAULT_SECONDS: u64 = 10;

/// Attributes every export to one workspace, as an ingest key would (so the database checks the
/// workspace reference of every span, as in production).
#[derive(Debug)]
struct OneWorkspace(WorkspaceId);

#[async_trait::async_trait]
impl IngestAuthorizer for OneWorkspace {
    async fn authorize(
        &self,
        _headers: &HeaderMap,
        _peer: Option<SocketAddr>,
    ) -> Result<Option<WorkspaceId>, IngestRejection> {
        Ok(Some(self.0))
    }
}

async fn create_workspace(store: &dyn prism_store::Store) -> WorkspaceId {
    let user = User {
        id: UserId::new(),
        email: Email::parse("bench@example.test").expect("email"),
        name: "Bench".into(),
        password_hash: "x".into(),
        is_admin: false,
        created_at: Timestamp(1),
        updated_at: Timestamp(1),
    };
    let user = store.insert_user(&user).await.expect("user");
    let workspace = Workspace {
        id: WorkspaceId::new(),
        name: "bench".into(),
        created_by: Some(user.id),
        created_at: Timestamp(1),
        updated_at: Timestamp(1),
    };
    store
        .insert_workspace(&workspace, user.id)
        .await
        .expect("workspace");
    workspace.id
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run());
}

async fn run() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let seconds = env_number("BENCH_SECONDS", DEFAULT_SECONDS);
    let clients = env_number("BENCH_CLIENTS", DEFAULT_CLIENTS as u64) as usize;
    let template = Template::new();
    println!(
        "OTLP/HTTP ingest: {clients} clients, batches of {BATCH} spans ({} bytes protobuf), {seconds} s per backend, {} cores",
        template.body.len(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "| backend | acknowledged spans | spans/s | goal | ratio | batches | 429/503 | p50 batch | p99 batch | stored = acked |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");

    let backends = std::env::var("BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    let dir = tempfile::tempdir().expect("temp dir");
    if backends.contains("sqlite") {
        let url = DatabaseUrl::sqlite_file(&dir.path().join("bench.db"));
        bench("SQLite", &url, 100_000.0, &template, clients, seconds).await;
    }

    let pg = std::env::var("BENCH_POSTGRES_URL")
        .or_else(|_| std::env::var("PRISM_TEST_POSTGRES_URL"))
        .ok();
    match pg.filter(|_| backends.contains("postgres")) {
        Some(admin) => {
            let (url, name) = create_postgres_database(&admin).await;
            bench("PostgreSQL", &url, 50_000.0, &template, clients, seconds).await;
            drop_postgres_database(&admin, &name).await;
        }
        None => println!(
            "| PostgreSQL | skipped: set BENCH_POSTGRES_URL or PRISM_TEST_POSTGRES_URL | | | | | | | | |"
        ),
    }
    println!(
        "peak RSS of the process (server + clients): {} MiB",
        peak_rss_kib() / 1024
    );
}

async fn bench(
    backend: &str,
    url: &DatabaseUrl,
    goal: f64,
    template: &Template,
    clients: usize,
    seconds: u64,
) {
    let store = prism_store::open(url, &StoreOptions::default())
        .await
        .expect("open the database");
    let spool = tempfile::tempdir().expect("spool dir");
    let (recorder, task) = Recorder::start(
        store.clone(),
        RecorderConfig::new(spool.path().to_path_buf()),
    );
    let workspace = create_workspace(store.as_ref()).await;
    let ingest = OtlpIngest::new(recorder, Arc::new(OneWorkspace(workspace)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, http_routes(ingest)).await;
    });

    let acked = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut handles = Vec::new();
    for client_no in 0..clients {
        let acked = acked.clone();
        let refused = refused.clone();
        let template = template.clone();
        handles.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let url = format!("http://{addr}/v1/traces");
            let mut latencies = Vec::new();
            let mut seq: u64 = 0;
            while Instant::now() < deadline {
                seq += 1;
                let body = template.with_traces(client_no as u32, seq);
                let sent = Instant::now();
                let response = client
                    .post(&url)
                    .header("content-type", "application/x-protobuf")
                    .body(body)
                    .send()
                    .await
                    .expect("request sent");
                let status = response.status().as_u16();
                let bytes = response.bytes().await.expect("response body");
                match status {
                    200 => {
                        let answer = ExportTraceServiceResponse::decode(bytes.as_ref())
                            .expect("an ExportTraceServiceResponse");
                        let rejected = answer.partial_success.map_or(0, |p| p.rejected_spans);
                        assert_eq!(rejected, 0, "the template has no invalid span");
                        acked.fetch_add(BATCH as u64, Ordering::Relaxed);
                        latencies.push(sent.elapsed());
                    }
                    429 | 503 => {
                        refused.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    other => panic!("unexpected status {other}"),
                }
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for handle in handles {
        latencies.extend(handle.await.expect("client task"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    task.shutdown().await;
    server.abort();

    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let acked = acked.load(Ordering::Relaxed);
    let stored = stored_spans(url).await;
    store.close().await;
    let rate = acked as f64 / elapsed;
    println!(
        "| {backend} | {acked} | {rate:.0} | {goal:.0} | {:.2} | {} | {} | {:.1} ms | {:.1} ms | {} |",
        rate / goal,
        latencies.len(),
        refused.load(Ordering::Relaxed),
        pct(0.5),
        pct(0.99),
        if stored == acked {
            "yes".to_owned()
        } else {
            format!("NO: {stored} stored")
        }
    );
    assert_eq!(
        stored, acked,
        "{backend}: every acknowledged span is stored"
    );
}

/// Rows in `spans`, counted directly (the store has no count operation).
async fn stored_spans(url: &DatabaseUrl) -> u64 {
    use sqlx::Connection;
    let count: i64 = if url.as_str().starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url.as_str())
            .await
            .expect("connect");
        sqlx::query_scalar("SELECT count(*) FROM spans")
            .fetch_one(&mut conn)
            .await
            .expect("count")
    } else {
        let mut conn = sqlx::PgConnection::connect(url.as_str())
            .await
            .expect("connect");
        sqlx::query_scalar("SELECT count(*) FROM spans")
            .fetch_one(&mut conn)
            .await
            .expect("count")
    };
    u64::try_from(count).unwrap_or(0)
}

async fn create_postgres_database(admin: &str) -> (DatabaseUrl, String) {
    use sqlx::Connection;
    let name = format!("prism_bench_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(admin)
        .await
        .expect("connect to the PostgreSQL server");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create the bench database");
    let mut url = url::Url::parse(admin).expect("a PostgreSQL URL");
    url.set_path(&name);
    (
        DatabaseUrl::parse(url.as_str()).expect("database URL"),
        name,
    )
}

async fn drop_postgres_database(admin: &str, name: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin).await.expect("connect");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .expect("drop the bench database");
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// VmHWM: the peak resident set size of this process, in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

/// One encoded batch and where its trace ids and timestamps sit, so each request can carry fresh
/// ids and current times without re-encoding.
#[derive(Clone)]
struct Template {
    body: Arc<Vec<u8>>,
    /// (offset of a 16-byte trace id in `body`, which of the batch's traces it is).
    trace_offsets: Arc<Vec<(usize, u8)>>,
    /// (offset of an 8-byte little-endian fixed64 time in `body`, its template value).
    time_offsets: Arc<Vec<(usize, u64)>>,
}

/// The template's first start time; requests shift every time by (now - T0).
const T0: u64 = 1_760_000_000_000_000_000;

/// The placeholder trace id of trace `k` in the template: a pattern that cannot occur elsewhere.
fn marker(k: u8) -> [u8; 16] {
    let mut id = [0xa5; 16];
    id[0] = 0x5a;
    id[15] = k;
    id
}

/// SplitMix64: turns counters into random-looking trace ids (real trace ids are random, which
/// scatters them over the primary-key index).
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn find_all(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    haystack
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect()
}

impl Template {
    fn new() -> Template {
        let batch = realistic_batch();
        let mut times = Vec::new();
        for span in &batch.resource_spans[0].scope_spans[0].spans {
            times.push(span.start_time_unix_nano);
            times.push(span.end_time_unix_nano);
            times.extend(span.events.iter().map(|e| e.time_unix_nano));
        }
        let body = batch.encode_to_vec();
        let mut trace_offsets = Vec::new();
        for k in 0..TRACES_PER_BATCH as u8 {
            trace_offsets.extend(find_all(&body, &marker(k)).into_iter().map(|i| (i, k)));
        }
        assert_eq!(trace_offsets.len(), BATCH, "one trace id per span");
        let mut time_offsets = Vec::new();
        for &t in &times {
            let found = find_all(&body, &t.to_le_bytes());
            assert_eq!(found.len(), 1, "time {t} occurs once in the template");
            time_offsets.push((found[0], t));
        }
        Template {
            body: Arc::new(body),
            trace_offsets: Arc::new(trace_offsets),
            time_offsets: Arc::new(time_offsets),
        }
    }

    /// The batch with random trace ids unique to (client, sequence number) and times shifted so
    /// the batch starts now.
    fn with_traces(&self, client: u32, seq: u64) -> Vec<u8> {
        let mut body = self.body.as_ref().clone();
        for &(offset, k) in self.trace_offsets.iter() {
            let key = (u64::from(client) << 48) ^ (seq << 8) ^ u64::from(k);
            let hi = mix(key);
            body[offset..offset + 8].copy_from_slice(&hi.to_be_bytes());
            body[offset + 8..offset + 16].copy_from_slice(&mix(hi ^ key).to_be_bytes());
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let shift = now.saturating_sub(T0);
        for &(offset, t) in self.time_offsets.iter() {
            body[offset..offset + 8].copy_from_slice(&(t + shift).to_le_bytes());
        }
        body
    }
}

fn kv(key: &str, value: Av) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        key_strindex: 0,
    }
}

fn s(v: &str) -> Av {
    Av::StringValue(v.into())
}

/// 512 spans of 16 traces from one service: a server span per trace with client/database/
/// internal children, semantic-convention attributes, some events and error statuses.
fn realistic_batch() -> ExportTraceServiceRequest {
    let per_trace = BATCH / TRACES_PER_BATCH;
    let mut spans = Vec::with_capacity(BATCH);
    for k in 0..TRACES_PER_BATCH {
        let trace_id = marker(k as u8).to_vec();
        let root_id = span_id(k, 0);
        for n in 0..per_trace {
            let start = T0 + (k * 10_000_000 + n * 100_000) as u64;
            let (kind, name, attributes) = match n % 4 {
                0 if n == 0 => (
                    2,
                    "GET /api/orders/{id}".to_owned(),
                    vec![
                        kv("http.request.method", s("GET")),
                        kv("http.route", s("/api/orders/{id}")),
                        kv("url.path", s(&format!("/api/orders/{}", 1000 + k))),
                        kv("http.response.status_code", Av::IntValue(200)),
                        kv("server.address", s("orders.internal")),
                        kv("server.port", Av::IntValue(8080)),
                        kv(
                            "user_agent.original",
                            s(
                                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
                            ),
                        ),
                        kv("client.address", s("10.1.2.3")),
                        kv("network.protocol.version", s("1.1")),
                    ],
                ),
                1 => (
                    3,
                    "SELECT orders".to_owned(),
                    vec![
                        kv("db.system", s("postgresql")),
                        kv("db.namespace", s("shop")),
                        kv("db.operation.name", s("SELECT")),
                        kv(
                            "db.query.text",
                            s(
                                "SELECT id, customer_id, total, status, created_at FROM orders WHERE id = $1 AND tenant_id = $2",
                            ),
                        ),
                        kv("server.address", s("db.internal")),
                        kv("server.port", Av::IntValue(5432)),
                        kv("db.response.returned_rows", Av::IntValue(1)),
                    ],
                ),
                2 => (
                    3,
                    "POST".to_owned(),
                    vec![
                        kv("http.request.method", s("POST")),
                        kv(
                            "url.full",
                            s("http://pricing.internal:8080/v2/quote?currency=EUR"),
                        ),
                        kv(
                            "http.response.status_code",
                            Av::IntValue(if n % 7 == 2 { 503 } else { 200 }),
                        ),
                        kv("server.address", s("pricing.internal")),
                        kv("server.port", Av::IntValue(8080)),
                        kv("http.request.resend_count", Av::IntValue(0)),
                    ],
                ),
                _ => (
                    1,
                    "render_order".to_owned(),
                    vec![
                        kv("code.function.name", s("render_order")),
                        kv("code.file.path", s("src/orders/render.rs")),
                        kv("code.line.number", Av::IntValue(42)),
                        kv("app.cache_hit", Av::BoolValue(n % 3 == 0)),
                        kv("app.items", Av::IntValue((n % 9) as i64)),
                        kv("app.ratio", Av::DoubleValue(0.25 * (n % 4) as f64)),
                    ],
                ),
            };
            let failed = n % 4 == 2 && n % 7 == 2;
            spans.push(otlp::Span {
                trace_id: trace_id.clone(),
                span_id: span_id(k, n),
                parent_span_id: if n == 0 { vec![] } else { root_id.clone() },
                name,
                kind,
                start_time_unix_nano: start,
                end_time_unix_nano: start + 50_000 + (n as u64 * 1_000),
                attributes,
                events: if failed {
                    vec![otlp::span::Event {
                        time_unix_nano: start + 40_000,
                        name: "exception".into(),
                        attributes: vec![
                            kv("exception.type", s("UpstreamUnavailable")),
                            kv(
                                "exception.message",
                                s("pricing returned 503 Service Unavailable"),
                            ),
                        ],
                        dropped_attributes_count: 0,
                    }]
                } else {
                    vec![]
                },
                status: Some(otlp::Status {
                    message: if failed {
                        "upstream unavailable".into()
                    } else {
                        String::new()
                    },
                    code: if failed { 2 } else { 0 },
                }),
                flags: 0x101,
                ..Default::default()
            });
        }
    }
    ExportTraceServiceRequest {
        resource_spans: vec![otlp::ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", s("orders")),
                    kv("service.version", s("2.14.1")),
                    kv("service.instance.id", s("orders-7d9f8b6c5-x2k4q")),
                    kv("deployment.environment.name", s("production")),
                    kv("host.name", s("node-12")),
                    kv("telemetry.sdk.name", s("opentelemetry")),
                    kv("telemetry.sdk.language", s("rust")),
                    kv("telemetry.sdk.version", s("0.31.0")),
                    kv("process.pid", Av::IntValue(4242)),
                ],
                dropped_attributes_count: 0,
                entity_refs: vec![],
            }),
            scope_spans: vec![otlp::ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "orders-service".into(),
                    version: "2.14.1".into(),
                    attributes: vec![],
                    dropped_attributes_count: 0,
                }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn span_id(trace: usize, n: usize) -> Vec<u8> {
    (((trace as u64 + 1) << 32) | (n as u64 + 1))
        .to_be_bytes()
        .to_vec()
}
