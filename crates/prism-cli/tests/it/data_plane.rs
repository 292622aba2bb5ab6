//! The data plane through the real binary: admin commands create a workspace and an API token,
//! `prism up` runs a request with them, and SIGTERM flushes the recorded execution to disk.

use std::path::Path;
use std::sync::Arc;

use prism_store::{ExecutionFilter, Store, StoreOptions};

use crate::support::{Server, ephemeral_args, prism, run};

/// Runs an admin command against the data dir and returns its stdout (trimmed), asserting success.
async fn admin(data: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let mut cmd = prism();
    cmd.args(args).arg("--data-dir").arg(data);
    let out = run(cmd, stdin).await;
    assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
    out.stdout
        .trim()
        .lines()
        .last()
        .unwrap_or_default()
        .to_owned()
}

async fn open_store(data: &Path) -> Arc<dyn Store> {
    let url =
        prism_store::DatabaseUrl::parse(&format!("sqlite://{}", data.join("prism.db").display()))
            .unwrap();
    prism_store::open(&url, &StoreOptions::default())
        .await
        .unwrap()
}

#[tokio::test]
async fn up_runs_requests_with_a_cli_made_token_and_flushes_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    admin(
        &data,
        &[
            "user",
            "add",
            "--email",
            "ada@example.test",
            "--password-stdin",
        ],
        Some("correct horse battery staple\n"),
    )
    .await;
    let workspace = admin(
        &data,
        &[
            "workspace",
            "create",
            "--name",
            "Team",
            "--owner",
            "ada@example.test",
        ],
        None,
    )
    .await;
    let token = admin(
        &data,
        &["token", "create", "--email", "ada@example.test"],
        None,
    )
    .await;
    assert!(token.starts_with("prism_pat_"), "{token}");
    let key = admin(
        &data,
        &["ingest-key", "create", "--workspace", &workspace],
        None,
    )
    .await;
    assert!(key.starts_with("prism_ik_"), "{key}");

    let mut cmd = prism();
    cmd.arg("up");
    ephemeral_args(&mut cmd, &data);
    let server = Server::start(cmd, &["soul", "intercept"]).await;
    let intercept = server.intercept.unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();

    // Without credentials the data plane refuses; with the token it runs the request (against
    // its own health endpoint: `prism up` allows loopback targets).
    let target = format!("http://{intercept}/healthz");
    let refused = client
        .post(format!("http://{intercept}/rest"))
        .json(&serde_json::json!({ "url": target }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let response = client
        .post(format!("http://{intercept}/rest"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "url": target }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], 200, "{body}");

    let (status, output) = server.stop_with("-TERM").await;
    assert_eq!(status.code(), Some(0), "{}", output.join("\n"));

    let store = open_store(&data).await;
    let executions = store
        .list_executions(
            workspace.parse().unwrap(),
            &ExecutionFilter {
                limit: 10,
                ..ExecutionFilter::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(executions.len(), 1, "the execution was flushed before exit");
    assert_eq!(
        executions[0].id.to_string(),
        body["execution_id"].as_str().unwrap()
    );
    store.close().await;
}

#[tokio::test]
async fn admin_commands_report_unknown_users_and_workspaces() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for args in [
        vec!["token", "create", "--email", "nobody@example.test"],
        vec![
            "workspace",
            "create",
            "--name",
            "X",
            "--owner",
            "nobody@example.test",
        ],
        vec!["ingest-key", "create", "--workspace", "not-an-id"],
        vec![
            "ingest-key",
            "create",
            "--workspace",
            "0191d3c4-7f6e-7a21-9c3b-0242ac120002",
        ],
    ] {
        let mut cmd = prism();
        cmd.args(&args).arg("--data-dir").arg(&data);
        let out = run(cmd, None).await;
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        assert!(!out.stderr.trim().is_empty(), "{args:?} explains itself");
    }
}

/// OTLP ingest answers only after the spans are committed: a `kill -9` right after the answers
/// loses none of them.
#[tokio::test]
async fn acknowledged_spans_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut cmd = prism();
    cmd.arg("up");
    ephemeral_args(&mut cmd, &data);
    let server = Server::start(cmd, &["soul", "intercept"]).await;
    let intercept = server.intercept.unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();

    let trace = prism_domain::trace::TraceId::random();
    let mut sent = 0;
    for batch in 0..5 {
        let spans: Vec<serde_json::Value> = (0..50)
            .map(|i| {
                serde_json::json!({
                    "traceId": trace.to_hex(),
                    "spanId": format!("{:016x}", batch * 1000 + i + 1),
                    "name": format!("op {batch}/{i}"),
                    "kind": 2,
                    "startTimeUnixNano": "1700000000000000000",
                    "endTimeUnixNano": "1700000000001000000",
                })
            })
            .collect();
        sent += spans.len();
        let body = serde_json::json!({"resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "checkout"}}]},
            "scopeSpans": [{"scope": {"name": "test"}, "spans": spans}],
        }]});
        // `prism up` accepts exports from loopback without an ingest key.
        let response = client
            .post(format!("http://{intercept}/v1/traces"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    }
    server.kill_9().await;

    let store = open_store(&data).await;
    let stored = store.list_trace_spans(trace).await.unwrap();
    assert_eq!(
        stored.len(),
        sent,
        "every acknowledged span is in the database"
    );
    assert!(stored.iter().all(|s| s.service == "checkout"));
    store.close().await;
}

/// Every log line about a request carries its request id (JSON logs), and the id is echoed.
#[tokio::test]
async fn log_lines_about_a_request_carry_its_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = prism();
    cmd.arg("up")
        .env("PRISM_LOG", "info,prism_intercept=debug")
        .env("PRISM_LOG_FORMAT", "json");
    ephemeral_args(&mut cmd, &dir.path().join("data"));
    let server = Server::start(cmd, &["soul", "intercept"]).await;
    let intercept = server.intercept.unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let response = client
        .post(format!("http://{intercept}/rest"))
        .header("x-request-id", "req-4711")
        .json(&serde_json::json!({"url": "http://127.0.0.1:9/"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["x-request-id"], "req-4711");
    let generated = client
        .get(format!("http://{intercept}/healthz"))
        .send()
        .await
        .unwrap();
    let id = generated.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(id.len(), 32, "a generated id: {id}");

    let (_, output) = server.stop_with("-TERM").await;
    let about: Vec<serde_json::Value> = output
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| line["span"]["request_id"] == "req-4711")
        .collect();
    assert!(
        !about.is_empty(),
        "no log line carries the id:\n{}",
        output.join("\n")
    );
    assert!(
        about
            .iter()
            .any(|l| l["message"] == "request finished" && l["status"] == 401)
    );
}

/// Self-tracing pointed at PRISM's own `/v1/traces`: handled requests become server spans in the
/// caller's trace, and exporting them does not trace itself (no feedback loop).
#[tokio::test]
async fn self_traces_exported_to_prism_itself_without_a_feedback_loop() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = prism();
    cmd.arg("up")
        .env(
            "PRISM_OTLP_EXPORT_ENDPOINT",
            format!("http://127.0.0.1:{port}/v1/traces"),
        )
        .args([
            "--soul-listen",
            "127.0.0.1:0",
            "--otlp-grpc-listen",
            "127.0.0.1:0",
        ])
        .args(["--intercept-listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(&data);
    let server = Server::start(cmd, &["soul", "intercept"]).await;
    let intercept = server.intercept.unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let response = client
        .post(format!("http://{intercept}/rest"))
        .header("traceparent", caller)
        .json(&serde_json::json!({"url": "http://127.0.0.1:9/"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    let store = open_store(&data).await;
    let trace: prism_domain::trace::TraceId = "4bf92f3577b34da6a3ce929d0e0e4736".parse().unwrap();
    let span = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            let spans = store.list_trace_spans(trace).await.unwrap();
            if let Some(span) = spans.into_iter().next() {
                return span;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("PRISM's server span arrives through its own /v1/traces");
    assert_eq!(span.name, "POST /rest");
    assert_eq!(span.service, "prism-intercept");
    assert_eq!(span.kind, prism_domain::trace::SpanKind::Server);
    assert_eq!(span.parent_span_id.unwrap().to_hex(), "00f067aa0ba902b7");
    assert_eq!(span.attributes["http.response.status_code"], 401);

    // The exports themselves (POST /v1/traces) are never traced. Had the first export produced a
    // span, it would be queued before the span of this next request and stored with or before it.
    let next = "00-11111111111111111111111111111111-2222222222222222-01";
    client
        .get(format!("http://{intercept}/openapi.json"))
        .header("traceparent", next)
        .send()
        .await
        .unwrap();
    let next_trace: prism_domain::trace::TraceId =
        "11111111111111111111111111111111".parse().unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(20), async {
        while store.list_trace_spans(next_trace).await.unwrap().is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the second request's span arrives");
    let (status, _) = server.stop_with("-TERM").await;
    assert_eq!(status.code(), Some(0));
    let now = prism_domain::Clock::now(&prism_domain::SystemClock);
    let own = store
        .list_service_spans(
            "prism-intercept",
            now.plus_secs(-600),
            now.plus_secs(60),
            1000,
        )
        .await
        .unwrap();
    assert_eq!(
        own.len(),
        2,
        "{:?}",
        own.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    assert!(
        own.iter().all(|s| s.name != "POST /v1/traces"),
        "{:?}",
        own.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    store.close().await;
}
