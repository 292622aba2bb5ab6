//! The four call kinds, metadata, trace context and statuses, with the schema from pasted files.

use prism_domain::execution::ErrorKind;
use prism_domain::trace_context::{ClientSpanContext, TraceParent};
use prism_grpc::{StatusSource, incoming_trace_metadata};
use serde_json::json;

use crate::server::{Reflection, TestServer};
use crate::{executor, metadata, ok_messages, run, spec};

#[tokio::test]
async fn unary_call_round_trips_well_known_and_imported_types() {
    let server = TestServer::start(Reflection::None).await;
    let message = json!({
        "text": "hello",
        "sentAt": "2024-05-01T12:30:00.250Z",
        "tag": { "name": "imported", "at": "2001-02-03T04:05:06Z" },
        "extra": { "nested": [1, "two", null, { "ok": true }] }
    });
    let outcome = run(&executor(), &spec(&server.address(), "Echo", message)).await;

    let reply = &ok_messages(&outcome)[0];
    assert_eq!(reply["text"], "hello");
    assert_eq!(reply["sentAt"], "2024-05-01T12:30:00.250Z");
    assert_eq!(reply["tag"]["at"], "2001-02-03T04:05:06Z");
    assert_eq!(reply["extra"]["nested"][3]["ok"], true);
    let response = outcome.response.as_ref().unwrap();
    assert_eq!(response.status_source, StatusSource::Server);
    assert_eq!(response.message_count, 1);
    assert!(!response.truncated);
    assert_eq!(outcome.request.service, "prism.test.v1.Tester");
    assert_eq!(outcome.request.method, "/prism.test.v1.Tester/Echo");
    assert_eq!(
        outcome.request.messages[0]["sentAt"],
        "2024-05-01T12:30:00.250Z"
    );
    assert!(outcome.request_size > 20, "{}", outcome.request_size);
    assert!(
        outcome.response_size > outcome.request_size,
        "the reply adds metadata"
    );
    let ttfb = outcome.timings.ttfb_ns.expect("headers arrived");
    assert!(ttfb > 0 && ttfb <= outcome.timings.total_ns);
}

#[tokio::test]
async fn server_streaming_collects_every_message() {
    let server = TestServer::start(Reflection::None).await;
    let outcome = run(
        &executor(),
        &spec(&server.address(), "Count", json!({ "count": 5 })),
    )
    .await;
    let indexes: Vec<u64> = ok_messages(&outcome)
        .iter()
        .map(|m| m["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, [1, 2, 3, 4, 5]);
}

#[tokio::test]
async fn client_streaming_sends_the_whole_list() {
    let server = TestServer::start(Reflection::None).await;
    let numbers = json!([{ "value": 1 }, { "value": "2" }, { "value": 39 }]);
    let outcome = run(&executor(), &spec(&server.address(), "Sum", numbers)).await;
    assert_eq!(ok_messages(&outcome), [json!({ "sum": "42", "count": 3 })]);
    assert_eq!(outcome.request.messages.len(), 3);
    // int64 is a string in proto3 JSON, whichever form was typed.
    assert_eq!(outcome.request.messages[1], json!({ "value": "2" }));
}

#[tokio::test]
async fn a_single_object_is_a_one_message_stream_and_empty_text_none() {
    let server = TestServer::start(Reflection::None).await;
    let executor = executor();
    let one = run(
        &executor,
        &spec(&server.address(), "Sum", json!({ "value": 5 })),
    )
    .await;
    assert_eq!(ok_messages(&one), [json!({ "sum": "5", "count": 1 })]);
    let mut empty = spec(&server.address(), "Sum", json!(null));
    empty.message = String::new();
    let none = run(&executor, &empty).await;
    // Zero messages sent: the sum and count are defaults, so proto3 JSON leaves them out.
    assert_eq!(ok_messages(&none), [json!({})]);
}

#[tokio::test]
async fn bidirectional_streaming_echoes_each_message() {
    let server = TestServer::start(Reflection::None).await;
    let messages = json!([{ "text": "a" }, { "text": "b" }, { "text": "c" }]);
    let outcome = run(&executor(), &spec(&server.address(), "Chat", messages)).await;
    let texts: Vec<&str> = ok_messages(&outcome)
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["a", "b", "c"]);
}

#[tokio::test]
async fn metadata_round_trips_into_headers_and_trailers() {
    let server = TestServer::start(Reflection::None).await;
    let mut call = spec(&server.address(), "Echo", json!({}));
    call.metadata = metadata(&[("X-Echo", "ping"), ("x-data-bin", "AAEC/w")]);
    let outcome = run(&executor(), &call).await;
    ok_messages(&outcome);

    let sent: Vec<(&str, &str)> = outcome
        .request
        .metadata
        .iter()
        .map(|h| (h.name.as_str(), h.value.as_str()))
        .collect();
    assert_eq!(sent[..2], [("x-echo", "ping"), ("x-data-bin", "AAEC/w==")]);
    let response = outcome.response.unwrap();
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name == name)
            .map(|h| h.value.as_str())
    };
    assert_eq!(header("x-echo"), Some("ping"));
    // The server echoed the unpadded wire form; PRISM shows padded base64 of the same bytes.
    assert_eq!(header("x-data-bin"), Some("AAEC/w=="));
    let trailers: Vec<(&str, &str)> = response
        .trailers
        .iter()
        .map(|h| (h.name.as_str(), h.value.as_str()))
        .collect();
    assert_eq!(
        trailers,
        [("x-echo-trailer", "ping")],
        "grpc-status is not listed"
    );
    let received = &response.messages[0]["receivedMetadata"];
    assert_eq!(received["x-echo"], "ping");
}

#[tokio::test]
async fn the_server_receives_the_client_span_traceparent() {
    let server = TestServer::start(Reflection::None).await;
    let ctx = ClientSpanContext::start(None, None);
    let outcome = executor()
        .execute(&spec(&server.address(), "Echo", json!({})), &ctx)
        .await
        .unwrap();
    let received = &ok_messages(&outcome)[0]["receivedMetadata"];
    assert_eq!(received["traceparent"], ctx.traceparent().as_str());
    assert!(received.get("tracestate").is_none());
    let sent = outcome.request.metadata.last().unwrap();
    assert_eq!(
        (sent.name.as_str(), sent.value.clone()),
        ("traceparent", ctx.traceparent())
    );
}

#[tokio::test]
async fn an_incoming_trace_is_continued_and_the_user_rows_are_not_sent_twice() {
    let server = TestServer::start(Reflection::None).await;
    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let mut call = spec(&server.address(), "Echo", json!({}));
    call.metadata = metadata(&[("TraceParent", incoming), ("tracestate", "vendor=1")]);
    let (traceparent, tracestate) = incoming_trace_metadata(&call.metadata);
    let ctx = ClientSpanContext::start(traceparent.as_deref(), tracestate.as_deref());
    let outcome = executor().execute(&call, &ctx).await.unwrap();

    let received = &ok_messages(&outcome)[0]["receivedMetadata"];
    let sent = TraceParent::parse(received["traceparent"].as_str().unwrap()).unwrap();
    assert_eq!(sent.trace_id.to_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(
        sent.parent_id, ctx.span_id,
        "the server's parent is PRISM's client span"
    );
    assert_ne!(sent.parent_id.to_hex(), "00f067aa0ba902b7");
    // One value each: the user's rows were replaced, not sent alongside.
    assert_eq!(received["traceparent"], ctx.traceparent().as_str());
    assert_eq!(received["tracestate"], "vendor=1");
    let sent: Vec<(&str, &str)> = outcome
        .request
        .metadata
        .iter()
        .map(|h| (h.name.as_str(), h.value.as_str()))
        .collect();
    let traceparent = ctx.traceparent();
    assert_eq!(
        sent,
        [
            ("traceparent", traceparent.as_str()),
            ("tracestate", "vendor=1")
        ]
    );
}

#[tokio::test]
async fn a_non_ok_status_is_a_response_not_an_error() {
    let server = TestServer::start(Reflection::None).await;
    let outcome = run(
        &executor(),
        &spec(
            &server.address(),
            "Fail",
            json!({ "code": 5, "message": "no such order" }),
        ),
    )
    .await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(outcome.status_code(), Some(5));
    assert!(outcome.is_failure());
    let response = outcome.response.unwrap();
    assert_eq!(response.status_name, "NOT_FOUND");
    assert_eq!(response.status_message, "no such order");
    assert_eq!(response.status_source, StatusSource::Server);
    assert!(response.headers.is_empty(), "a trailers-only response");
    assert!(response.messages.is_empty());
    assert!(outcome.timings.ttfb_ns.is_some());
}

#[tokio::test]
async fn a_status_after_messages_comes_from_the_trailers() {
    let server = TestServer::start(Reflection::None).await;
    let outcome = run(
        &executor(),
        &spec(
            &server.address(),
            "Count",
            json!({ "count": 2, "failCode": 9 }),
        ),
    )
    .await;
    assert!(outcome.error.is_none());
    let response = outcome.response.unwrap();
    assert_eq!(response.status_code, 9);
    assert_eq!(response.status_name, "FAILED_PRECONDITION");
    assert_eq!(response.status_message, "failed after the messages");
    assert_eq!(response.messages.len(), 2);
    assert!(response.headers.iter().any(|h| h.name == "content-type"));
}

#[tokio::test]
async fn malformed_status_details_are_a_protocol_error_not_a_panic() {
    let server = TestServer::start(Reflection::None).await;
    let outcome = run(
        &executor(),
        &spec(
            &server.address(),
            "Fail",
            json!({ "code": 3, "badDetails": true }),
        ),
    )
    .await;
    assert_eq!(
        outcome.error_kind(),
        Some(ErrorKind::Protocol),
        "{outcome:#?}"
    );
    assert!(outcome.response.is_none());
}
