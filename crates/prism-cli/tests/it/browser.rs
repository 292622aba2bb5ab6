//! The web UI in real headless Chromium, against the real `prism up` binary and a test upstream
//! that exports its own spans over OTLP: `tests/browser/journey.mjs` (Playwright) goes through
//! sign-up, workspace, collection, request (moved by drag and drop), send, timing breakdown, trace,
//! history, analytics with drill-down and back, and the viewer role.
//!
//! Needs `node`, Chromium (`/usr/bin/chromium` or `PRISM_CHROMIUM`) and `npm ci` in
//! `tests/browser`; without them the test prints `skipped: …` and passes (CI installs them).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::support::{Server, ephemeral_args, prism};

#[derive(Clone)]
struct Upstream {
    /// The workspace ingest key the journey hands over once it has created it.
    key: Arc<Mutex<Option<String>>>,
    otlp: String,
    client: reqwest::Client,
    orders_served: Arc<AtomicUsize>,
}

fn unix_nanos(at: SystemTime) -> String {
    at.duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        .to_string()
}

fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

/// `GET /orders/{id}`: answers JSON and, before answering, exports its server span and a child
/// database span into the caller's trace (from `traceparent`) over OTLP/JSON.
async fn order(
    State(up): State<Upstream>,
    UrlPath(id): UrlPath<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> axum::Json<Value> {
    let started = SystemTime::now();
    up.orders_served.fetch_add(1, Ordering::SeqCst);
    let traceparent = headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let parts: Vec<&str> = traceparent.split('-').collect();
    let key = up.key.lock().unwrap().clone();
    if let (Some(key), [_, trace, parent, _]) = (key, parts.as_slice()) {
        let server = random_hex(8);
        let db_start = started + Duration::from_millis(1);
        let db_end = db_start + Duration::from_millis(3);
        let end = db_end + Duration::from_millis(1);
        let body = json!({"resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "journey-upstream"}}]},
            "scopeSpans": [{"scope": {"name": "journey"}, "spans": [
                {"traceId": trace, "spanId": server, "parentSpanId": parent, "name": "GET /orders/{id}",
                 "kind": 2, "startTimeUnixNano": unix_nanos(started), "endTimeUnixNano": unix_nanos(end),
                 "attributes": [{"key": "http.route", "value": {"stringValue": "/orders/{id}"}}]},
                {"traceId": trace, "spanId": random_hex(8), "parentSpanId": server, "name": "SELECT orders",
                 "kind": 3, "startTimeUnixNano": unix_nanos(db_start), "endTimeUnixNano": unix_nanos(db_end),
                 "attributes": [{"key": "db.system", "value": {"stringValue": "postgresql"}}]}
            ]}]
        }]});
        let sent = up
            .client
            .post(&up.otlp)
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .expect("OTLP export");
        assert!(sent.status().is_success(), "OTLP export: {}", sent.status());
    }
    let query = query.unwrap_or_default();
    let (name, value) = query.split_once('=').unwrap_or((&query, ""));
    axum::Json(
        json!({"id": format!("order-{id}"), name: value, "items": [{"sku": "A-1", "qty": 2}]}),
    )
}

/// `GET /big`: 10 MB of JSON-ish text, for the response panel's large-body path.
async fn big() -> String {
    let line = "{\"line\": \"the quick brown fox jumps over the lazy dog\"}\n";
    line.repeat(10 * 1024 * 1024 / line.len() + 1)
}

async fn take_key(State(up): State<Upstream>, key: String) -> &'static str {
    *up.key.lock().unwrap() = Some(key);
    "ok"
}

async fn start_upstream(intercept: SocketAddr) -> (SocketAddr, Upstream) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let up = Upstream {
        key: Arc::default(),
        otlp: format!("http://{intercept}/v1/traces"),
        client: reqwest::Client::builder().no_proxy().build().unwrap(),
        orders_served: Arc::default(),
    };
    let app = Router::new()
        .route("/orders/{id}", get(order))
        .route("/big", get(big))
        .route("/__key", post(take_key))
        .with_state(up.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, up)
}

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser")
}

/// Why the browser test cannot run here, if it cannot.
fn missing_prerequisite() -> Option<String> {
    let chromium = std::env::var("PRISM_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Some(format!(
            "no Chromium at {chromium} (apt-get install chromium)"
        ));
    }
    if std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_err()
    {
        return Some("no node on PATH".into());
    }
    if !browser_dir().join("node_modules/playwright-core").is_dir() {
        return Some("no tests/browser/node_modules (run npm ci in tests/browser)".into());
    }
    None
}

#[tokio::test]
async fn the_web_ui_journey_in_headless_chromium() {
    if let Some(why) = missing_prerequisite() {
        eprintln!("skipped: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = prism();
    cmd.arg("up");
    ephemeral_args(&mut cmd, &dir.path().join("data"));
    let server = Server::start(cmd, &["soul", "intercept"]).await;
    let (upstream, up) = start_upstream(server.intercept.unwrap()).await;
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-journey");

    let mut node = tokio::process::Command::new("node");
    node.current_dir(browser_dir())
        .arg("journey.mjs")
        .arg(format!("http://{}", server.soul.unwrap()))
        .arg(format!("http://{upstream}"))
        .arg(&shots)
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(180), node.output())
        .await
        .expect("the journey finished in time")
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stdout}{stderr}\nscreenshots in {}", shots.display());
    assert!(
        out.status.success() && stdout.contains("journey: ok"),
        "the journey failed:\n{stdout}\n{stderr}\nprism said:\n{}",
        server.seen.join("\n")
    );
    assert!(
        up.orders_served.load(Ordering::SeqCst) >= 1,
        "the upstream was called"
    );
    assert!(shots.join("workbench.png").is_file());
    let (status, _) = server.stop_with("-TERM").await;
    assert_eq!(status.code(), Some(0));
}
