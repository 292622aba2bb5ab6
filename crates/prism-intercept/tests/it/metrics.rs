//! `GET /metrics`: Prometheus text with the request, execution, ingest, recorder, pool and process
//! metrics the alert rules use; accepted by `promtool check metrics` when promtool is installed.

use prism_intercept::executor::ExecutorConfig;
use prism_intercept::{InterceptSettings, telemetry};
use serde_json::json;

use crate::support::{self, account, client, serve_with};

#[tokio::test]
async fn metrics_cover_requests_executions_ingest_recorder_pools_and_process() {
    prism_testkit::on_sqlite(|store| async move {
        telemetry::install();
        let ada = account(&store, "ada@example.test").await;
        let plane = serve_with(
            store.clone(),
            ExecutorConfig::default(),
            InterceptSettings {
                loopback_ingest_without_key: true,
                ..InterceptSettings::default()
            },
            support::recorder_config,
        )
        .await;
        let target = plane.url("/healthz");
        let ran = client()
            .post(plane.url("/rest"))
            .bearer_auth(&ada.token)
            .json(&json!({ "url": target }))
            .send()
            .await
            .unwrap();
        assert_eq!(ran.status(), 200);
        let trace = prism_domain::trace::TraceId::random().to_hex();
        let exported = client()
            .post(plane.url("/v1/traces"))
            .json(&json!({"resourceSpans": [{"scopeSpans": [{"spans": [
                {"traceId": trace, "spanId": "00f067aa0ba902b7", "name": "ok",
                 "startTimeUnixNano": "1", "endTimeUnixNano": "2"},
                {"traceId": trace, "spanId": "0000000000000000", "name": "bad id",
                 "startTimeUnixNano": "1", "endTimeUnixNano": "2"}
            ]}]}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(exported.status(), 200);

        let response = client().get(plane.url("/metrics")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain; version=0.0.4")
        );
        let text = response.text().await.unwrap();
        for expected in [
            r#"prism_http_requests_total{plane="intercept",route="/rest",method="POST",status="200"}"#,
            r#"prism_http_request_duration_seconds_bucket{plane="intercept",route="/rest",method="POST",status="200",le="0.5"}"#,
            r#"prism_executions_total{protocol="rest",outcome="ok"}"#,
            r#"prism_otlp_spans_total{result="accepted"}"#,
            r#"prism_otlp_spans_total{result="rejected"}"#,
            r#"prism_db_pool_connections{state="idle"}"#,
            r#"prism_db_pool_connections{state="in_use"}"#,
            "prism_db_pool_max_connections ",
            "prism_recorder_queue_depth ",
            "prism_recorder_spool_records ",
            "process_resident_memory_bytes ",
            "process_cpu_seconds_total ",
            "# TYPE prism_http_request_duration_seconds histogram",
        ] {
            assert!(text.contains(expected), "missing {expected} in:\n{text}");
        }
        // Unknown paths do not create a label per path.
        client().get(plane.url("/no/such/path/1")).send().await.unwrap();
        let text = client()
            .get(plane.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(text.contains(r#"route="unmatched""#));
        assert!(!text.contains("/no/such/path"));

        promtool_accepts(&text).await;
    })
    .await;
}

/// Runs `promtool check metrics` on the scrape when promtool is installed (CI installs it).
async fn promtool_accepts(text: &str) {
    use tokio::io::AsyncWriteExt;
    let spawned = tokio::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(err) => {
            eprintln!("skipped: promtool is not installed ({err}); apt-get install prometheus");
            return;
        }
    };
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(text.as_bytes()).await.unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
