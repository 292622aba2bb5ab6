//! Prometheus metrics for both planes: `GET /metrics` in the text format.
//!
//! What is measured, and why (the alert rules in `deploy/prometheus/alerts.yml` use these names):
//! - `prism_http_request_duration_seconds` (histogram) and `prism_http_requests_total`, labelled by
//!   `plane`, `route` (the matched route, `unmatched` otherwise — never the raw path, so label
//!   cardinality stays bounded), `method` and `status`: P99 latency and error-rate alerts;
//! - `prism_executions_total{protocol, outcome}`: requests PRISM ran (`ok`, `failed`, or the
//!   transport error kind);
//! - `prism_otlp_spans_total{result="accepted"|"rejected"}`;
//! - `prism_recorder_queue_depth`, `prism_recorder_spool_records` and the recorder's counters:
//!   whether recording keeps up;
//! - `prism_db_pool_connections{state="in_use"|"idle"}` and `prism_db_pool_max_connections`;
//! - `process_cpu_seconds_total`, `process_resident_memory_bytes`, `process_virtual_memory_bytes`,
//!   `process_open_fds`, `process_start_time_seconds` (Linux; read from `/proc`).
//!
//! One recorder is installed per process (both planes of `prism up` share it). Gauges that
//! describe state (pools, recorder) are set when scraped.

use std::sync::OnceLock;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::health::HasStore;
use crate::recorder::Recorder;

/// Buckets of the request-duration histogram, in seconds (0.5 s is one of them: the P99 alert).
pub const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

struct Telemetry {
    handle: PrometheusHandle,
    started: SystemTime,
}

fn telemetry() -> &'static Telemetry {
    static TELEMETRY: OnceLock<Telemetry> = OnceLock::new();
    TELEMETRY.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("prism_http_request_duration_seconds".into()),
                DURATION_BUCKETS,
            )
            .expect("the buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics will be incomplete");
        }
        describe();
        Telemetry {
            handle,
            started: SystemTime::now(),
        }
    })
}

fn describe() {
    metrics::describe_histogram!(
        "prism_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time to answer an HTTP request, by plane, route, method and status"
    );
    metrics::describe_counter!(
        "prism_http_requests_total",
        "HTTP requests answered, by plane, route, method and status"
    );
    metrics::describe_counter!(
        "prism_executions_total",
        "Requests PRISM ran against their targets, by protocol and outcome"
    );
    metrics::describe_counter!(
        "prism_otlp_spans_total",
        "Spans received over OTLP, accepted (stored) or rejected (invalid)"
    );
    metrics::describe_gauge!(
        "prism_recorder_queue_depth",
        "Records waiting in the recorder's queue"
    );
    metrics::describe_gauge!(
        "prism_recorder_spool_records",
        "Records spooled to disk while the database was unavailable and not yet replayed"
    );
    metrics::describe_counter!(
        "prism_recorder_written_total",
        "Records the recorder wrote to the database"
    );
    metrics::describe_counter!(
        "prism_recorder_retries_total",
        "Failed database writes the recorder retried"
    );
    metrics::describe_counter!(
        "prism_recorder_rejected_total",
        "Records the database refused for good (kept in rejected.jsonl)"
    );
    metrics::describe_gauge!(
        "prism_db_pool_connections",
        "Open database connections, in use or idle"
    );
    metrics::describe_gauge!(
        "prism_db_pool_max_connections",
        "The most database connections the pools may open"
    );
}

/// Installs the process's metrics recorder (idempotent). Call before serving.
pub fn install() {
    telemetry();
}

/// The request id header: taken from the caller when it is a sane token, generated otherwise,
/// echoed on the response and attached to every log line about the request.
pub const REQUEST_ID: &str = "x-request-id";

fn request_id(request: &Request) -> String {
    request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        })
        .map_or_else(|| uuid::Uuid::now_v7().simple().to_string(), str::to_owned)
}

tokio::task_local! {
    static CURRENT_REQUEST_ID: String;
}

/// The id of the request being handled by this task (set by [`track`]), for error bodies.
pub fn current_request_id() -> Option<String> {
    CURRENT_REQUEST_ID.try_with(Clone::clone).ok()
}

/// Middleware for every request of a plane's router: measures it, gives it a request id (a
/// tracing span, so every log line about it carries the id) and logs its completion at debug.
pub async fn track(plane: &'static str, request: Request, next: Next) -> Response {
    use tracing::Instrument;
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let id = request_id(&request);
    let traceparent = crate::selftrace::enabled()
        .then(|| {
            request
                .headers()
                .get("traceparent")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .flatten();
    let span =
        tracing::info_span!("request", request_id = %id, plane, method = %method, route = %route);
    let wall_start = SystemTime::now();
    let started = Instant::now();
    let mut response = CURRENT_REQUEST_ID
        .scope(id.clone(), next.run(request).instrument(span.clone()))
        .await;
    if let Ok(value) = axum::http::HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    span.in_scope(|| {
        tracing::debug!(
            status = response.status().as_u16(),
            duration_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request finished"
        );
    });
    crate::selftrace::record(crate::selftrace::Handled {
        plane,
        route: &route,
        method: &method,
        status: response.status().as_u16(),
        request_id: &id,
        traceparent: traceparent.as_deref(),
        started: wall_start,
        duration: started.elapsed(),
    });
    let labels = [
        ("plane", plane.to_owned()),
        ("route", route),
        ("method", method),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::histogram!("prism_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    metrics::counter!("prism_http_requests_total", &labels).increment(1);
    response
}

/// What a plane's state offers to `/metrics` beyond the store.
pub trait Observed: HasStore {
    fn recorder(&self) -> Option<&Recorder> {
        None
    }
}

/// `GET /metrics`
#[utoipa::path(get, path = "/metrics", responses(
    (status = 200, description = "Prometheus text format (version 0.0.4)", content_type = "text/plain", body = String),
), tag = "health")]
pub async fn metrics_endpoint<S: Observed>(State(state): State<S>) -> Response {
    let telemetry = telemetry();
    let pools = state.store().pool_stats();
    metrics::gauge!("prism_db_pool_connections", "state" => "in_use").set(f64::from(pools.in_use));
    metrics::gauge!("prism_db_pool_connections", "state" => "idle").set(f64::from(pools.idle));
    metrics::gauge!("prism_db_pool_max_connections").set(f64::from(pools.max));
    if let Some(recorder) = state.recorder() {
        let stats = recorder.stats();
        let spooled = stats.spooled.load(Ordering::Relaxed);
        let replayed = stats.replayed.load(Ordering::Relaxed);
        metrics::gauge!("prism_recorder_queue_depth").set(recorder.queue_depth() as f64);
        metrics::gauge!("prism_recorder_spool_records")
            .set(spooled.saturating_sub(replayed) as f64);
        metrics::counter!("prism_recorder_written_total")
            .absolute(stats.written.load(Ordering::Relaxed));
        metrics::counter!("prism_recorder_retries_total")
            .absolute(stats.retries.load(Ordering::Relaxed));
        metrics::counter!("prism_recorder_rejected_total")
            .absolute(stats.rejected.load(Ordering::Relaxed));
    }
    telemetry.handle.run_upkeep();
    let mut body = telemetry.handle.render();
    process_metrics(&mut body, telemetry.started);
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        body,
    )
        .into_response()
}

/// Appends the standard `process_*` metrics, from `/proc/self` (nothing elsewhere).
fn process_metrics(out: &mut String, started: SystemTime) {
    use std::fmt::Write;
    let mut metric = |name: &str, kind: &str, help: &str, value: f64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    };
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or("", |(_, rest)| rest)
            .split_whitespace()
            .collect();
        let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
        if let (Some(user), Some(system)) = (ticks(11), ticks(12)) {
            // USER_HZ is 100 on every Linux ABI PRISM runs on.
            metric(
                "process_cpu_seconds_total",
                "counter",
                "Total user and system CPU time spent in seconds.",
                (user + system) / 100.0,
            );
        }
    }
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        let kib = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        };
        if let Some(rss) = kib("VmRSS:") {
            metric(
                "process_resident_memory_bytes",
                "gauge",
                "Resident memory size in bytes.",
                rss * 1024.0,
            );
        }
        if let Some(vsz) = kib("VmSize:") {
            metric(
                "process_virtual_memory_bytes",
                "gauge",
                "Virtual memory size in bytes.",
                vsz * 1024.0,
            );
        }
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        metric(
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            fds.count() as f64,
        );
    }
    if let Ok(since) = started.duration_since(UNIX_EPOCH) {
        metric(
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            since.as_secs_f64().floor(),
        );
    }
}
