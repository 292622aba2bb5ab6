//! Deadlines, refused connections, TLS and the outbound policy.

use prism_domain::egress::EgressPolicy;
use prism_domain::execution::ErrorKind;
use prism_domain::request::GrpcTls;
use prism_grpc::{GrpcConfig, GrpcExecutor};
use serde_json::json;

use crate::server::{Reflection, TestServer, test_pki};
use crate::{closed_port, executor, ok_messages, reflected, run, spec};

#[tokio::test]
async fn an_expired_deadline_is_a_timeout() {
    let server = TestServer::start(Reflection::None).await;
    let mut call = spec(&server.address(), "Hang", json!({}));
    call.timeout_ms = Some(300);
    let outcome = run(&executor(), &call).await;
    assert_eq!(
        outcome.error_kind(),
        Some(ErrorKind::Timeout),
        "{outcome:#?}"
    );
    assert!(outcome.response.is_none(), "the server never sent headers");
    assert!(outcome.timings.total_ns >= 300_000_000);
    assert!(outcome.is_failure());
}

#[tokio::test]
async fn a_refused_connection_is_connection_refused() {
    let port = closed_port().await;
    let outcome = run(
        &executor(),
        &spec(&format!("127.0.0.1:{port}"), "Echo", json!({})),
    )
    .await;
    let error = outcome.error.as_ref().expect("an error");
    assert_eq!(error.kind, ErrorKind::ConnectionRefused, "{error:?}");
    assert!(
        error.message.contains(&port.to_string()),
        "{}",
        error.message
    );
    assert!(outcome.response.is_none());
    // The request was built: the outcome shows what would have been sent.
    assert_eq!(outcome.request.method, "/prism.test.v1.Tester/Echo");
}

#[tokio::test]
async fn tls_with_the_given_ca_succeeds() {
    let pki = test_pki();
    let server = TestServer::start_with(Reflection::Both, Some(pki.server.clone())).await;
    let tls = GrpcTls {
        enabled: true,
        ca_pem: Some(pki.ca_pem.clone()),
        verify: None,
    };
    let executor = executor();
    // By name (DNS and the certificate's DNS name) with pasted files ...
    let mut call = spec(
        &format!("localhost:{}", server.port()),
        "Echo",
        json!({ "text": "tls" }),
    );
    call.tls = tls.clone();
    assert_eq!(ok_messages(&run(&executor, &call).await)[0]["text"], "tls");
    // ... and by https:// URL to the IP, with the schema reflected over TLS.
    let mut call = reflected(
        &format!("https://127.0.0.1:{}", server.port()),
        "Echo",
        json!({ "text": "reflected" }),
    );
    call.tls = GrpcTls {
        enabled: false,
        ..tls
    };
    assert_eq!(
        ok_messages(&run(&executor, &call).await)[0]["text"],
        "reflected"
    );
}

#[tokio::test]
async fn tls_without_the_ca_fails_verification() {
    let pki = test_pki();
    let server = TestServer::start_with(Reflection::None, Some(pki.server)).await;
    let mut call = spec(
        &format!("https://localhost:{}", server.port()),
        "Echo",
        json!({}),
    );
    call.tls = GrpcTls::default();
    let outcome = run(&executor(), &call).await;
    let error = outcome.error.expect("an error");
    assert_eq!(error.kind, ErrorKind::Tls, "{error:?}");
    assert!(error.message.contains("certificate"), "{}", error.message);
}

#[tokio::test]
async fn tls_verification_can_be_turned_off() {
    let pki = test_pki();
    let server = TestServer::start_with(Reflection::None, Some(pki.server)).await;
    let mut call = spec(
        &format!("localhost:{}", server.port()),
        "Echo",
        json!({ "text": "x" }),
    );
    call.tls = GrpcTls {
        enabled: true,
        ca_pem: None,
        verify: Some(false),
    };
    assert_eq!(ok_messages(&run(&executor(), &call).await)[0]["text"], "x");
}

#[tokio::test]
async fn plaintext_to_a_tls_port_is_not_a_server_status() {
    let pki = test_pki();
    let server = TestServer::start_with(Reflection::None, Some(pki.server)).await;
    let mut call = spec(&server.address(), "Echo", json!({}));
    call.timeout_ms = Some(5_000);
    let outcome = run(&executor(), &call).await;
    let kind = outcome.error_kind();
    assert!(
        matches!(kind, Some(ErrorKind::Protocol | ErrorKind::Io)),
        "{outcome:#?}"
    );
    assert!(outcome.response.is_none());
}

fn restricted(allow_loopback: bool) -> GrpcExecutor {
    let mut egress = EgressPolicy::restricted();
    if allow_loopback {
        egress.allow_cidrs.push("127.0.0.0/8".parse().unwrap());
        egress.allow_cidrs.push("::1/128".parse().unwrap());
    }
    GrpcExecutor::new(GrpcConfig {
        egress,
        ..GrpcConfig::default()
    })
}

#[tokio::test]
async fn the_outbound_policy_blocks_loopback_for_calls_and_reflection() {
    let server = TestServer::start(Reflection::Both).await;
    let executor = restricted(false);
    for call in [
        spec(&server.address(), "Echo", json!({})),
        reflected(&server.address(), "Echo", json!({})),
    ] {
        let outcome = run(&executor, &call).await;
        let error = outcome.error.expect("blocked");
        assert_eq!(error.kind, ErrorKind::Blocked, "{error:?}");
        assert!(error.message.contains("loopback"), "{}", error.message);
    }
    assert_eq!(
        server
            .reflection_calls
            .load(std::sync::atomic::Ordering::SeqCst),
        0,
        "nothing reached the server"
    );
}

#[tokio::test]
async fn every_resolved_address_is_checked() {
    let server = TestServer::start(Reflection::None).await;
    // The name passes the host check; its addresses (127.0.0.1, ::1) do not.
    let outcome = run(
        &restricted(false),
        &spec(&format!("localhost:{}", server.port()), "Echo", json!({})),
    )
    .await;
    let error = outcome.error.expect("blocked");
    assert_eq!(error.kind, ErrorKind::Blocked);
    assert!(error.message.contains("localhost ("), "{}", error.message);
}

#[tokio::test]
async fn allowed_cidrs_let_loopback_through() {
    let server = TestServer::start(Reflection::Both).await;
    let executor = restricted(true);
    let outcome = run(
        &executor,
        &reflected(&server.address(), "Echo", json!({ "text": "ok" })),
    )
    .await;
    assert_eq!(ok_messages(&outcome)[0]["text"], "ok");
    let by_name = spec(
        &format!("localhost:{}", server.port()),
        "Echo",
        json!({ "text": "n" }),
    );
    assert_eq!(ok_messages(&run(&executor, &by_name).await)[0]["text"], "n");
}
