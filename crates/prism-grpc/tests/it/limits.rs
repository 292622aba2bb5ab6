//! Response limits: many messages, large messages, many bytes.

use prism_grpc::{GrpcConfig, GrpcExecutor, StatusSource};
use serde_json::json;

use crate::server::{Reflection, TestServer};
use crate::{ok_messages, run, spec};

fn executor(config: GrpcConfig) -> GrpcExecutor {
    GrpcExecutor::new(config)
}

#[tokio::test]
async fn messages_past_max_messages_are_counted_not_kept() {
    let server = TestServer::start(Reflection::None).await;
    let executor = executor(GrpcConfig {
        max_messages: 10,
        ..GrpcConfig::default()
    });
    let outcome = run(
        &executor,
        &spec(&server.address(), "Count", json!({ "count": 25 })),
    )
    .await;
    let kept = ok_messages(&outcome);
    assert_eq!(kept.len(), 10);
    assert_eq!(kept[9]["index"], 10);
    let response = outcome.response.as_ref().unwrap();
    assert_eq!(response.message_count, 25);
    assert!(response.truncated);
}

#[tokio::test]
async fn messages_past_max_response_bytes_are_counted_not_kept() {
    let server = TestServer::start(Reflection::None).await;
    let executor = executor(GrpcConfig {
        max_response_bytes: 5_000,
        ..GrpcConfig::default()
    });
    let outcome = run(
        &executor,
        &spec(
            &server.address(),
            "Count",
            json!({ "count": 5, "payloadBytes": 2_000 }),
        ),
    )
    .await;
    assert_eq!(ok_messages(&outcome).len(), 2);
    let response = outcome.response.as_ref().unwrap();
    assert_eq!(response.message_count, 5);
    assert!(response.truncated);
    assert!(outcome.response_size > 10_000, "all bytes are counted");
}

#[tokio::test]
async fn oversized_messages_end_the_call_with_resource_exhausted() {
    let server = TestServer::start(Reflection::None).await;
    let executor = executor(GrpcConfig {
        max_message_bytes: 1024,
        ..GrpcConfig::default()
    });
    let outcome = run(
        &executor,
        &spec(
            &server.address(),
            "Count",
            json!({ "count": 3, "payloadBytes": 2_048 }),
        ),
    )
    .await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    let response = outcome.response.as_ref().unwrap();
    assert_eq!(response.status_name, "RESOURCE_EXHAUSTED");
    assert_eq!(response.status_source, StatusSource::Client);
    assert!(
        response.status_message.contains("max_message_bytes"),
        "{}",
        response.status_message
    );
    assert!(response.truncated);
    assert!(response.messages.is_empty());
    assert!(outcome.is_failure());

    // Messages under the limit on the same executor are fine.
    let small = spec(
        &server.address(),
        "Count",
        json!({ "count": 3, "payloadBytes": 100 }),
    );
    assert_eq!(ok_messages(&run(&executor, &small).await).len(), 3);
}
