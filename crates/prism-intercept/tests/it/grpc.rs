//! `POST /grpc` end to end against a real tonic server with reflection (the same test server as
//! prism-grpc's own tests): upstream's request shape, reflection, streaming, non-OK statuses as
//! results, bad input as 4xx, and the records read back.

use std::sync::Arc;

use prism_domain::execution::ExecutionSource;
use prism_domain::request::Protocol;
use prism_domain::trace::{SpanKind, StatusCode as SpanStatus, TraceId};
use prism_domain::trace_context::TraceParent;
use prism_store::Store;
use serde_json::{Value, json};

use crate::grpc_server::{COMMON_PROTO, Reflection, TESTER_PROTO, TestServer};
use crate::support::{DataPlane, account, client, recorded, serve};

async fn call(plane: &DataPlane, token: &str, body: Value) -> (u16, Value) {
    let response = client()
        .post(plane.url("/grpc/"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn files() -> Value {
    json!({"kind": "files", "files": [
        {"name": "prism/test/v1/tester.proto", "content": TESTER_PROTO},
        {"name": "prism/test/v1/common.proto", "content": COMMON_PROTO},
    ]})
}

pub async fn unary_by_reflection_is_run_traced_and_recorded(store: Arc<dyn Store>) {
    let server = TestServer::start(Reflection::Both).await;
    let ada = account(&store, "ada@example.test").await;
    let mut plane = serve(store.clone()).await;
    let (status, body) = call(
        &plane,
        &ada.token,
        json!({
            "server_address": server.address(),
            "service": "Tester",
            "method": "Echo",
            "body": "{\"text\": \"hi\"}",
            "metadata": {"x-echo": "from-prism"},
        }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status_code"], 0);
    assert_eq!(body["status_name"], "OK");
    assert_eq!(body["failed"], false);
    let reply: Value = serde_json::from_str(body["body"].as_str().unwrap()).unwrap();
    assert_eq!(reply["text"], "hi");
    assert_eq!(body["response_headers"]["x-echo"], "from-prism");
    assert_eq!(body["response_trailers"]["x-echo-trailer"], "from-prism");
    // The server received the client span as its parent.
    let seen =
        TraceParent::parse(reply["receivedMetadata"]["traceparent"].as_str().unwrap()).unwrap();
    assert_eq!(seen.trace_id.to_hex(), body["trace_id"].as_str().unwrap());
    assert_eq!(seen.parent_id.to_hex(), body["span_id"].as_str().unwrap());

    plane.flush().await;
    let execution = store
        .get_execution(body["execution_id"].as_str().unwrap().parse().unwrap())
        .await
        .unwrap();
    assert_eq!(execution.protocol, Protocol::Grpc);
    assert_eq!(execution.endpoint, "/prism.test.v1.Tester/Echo");
    assert_eq!(execution.target, server.address());
    assert_eq!(execution.status_code, Some(0));
    assert_eq!(execution.source, ExecutionSource::DataPlane);
    let trace: TraceId = body["trace_id"].as_str().unwrap().parse().unwrap();
    let span = &store.list_trace_spans(trace).await.unwrap()[0];
    assert_eq!(span.kind, SpanKind::Client);
    assert_eq!(span.name, "prism.test.v1.Tester/Echo");
    assert_eq!(span.attributes["rpc.system"], "grpc");
    assert_eq!(span.attributes["rpc.grpc.status_code"], 0);
}

pub async fn streams_and_statuses_are_results(store: Arc<dyn Store>) {
    let server = TestServer::start(Reflection::None).await;
    let ada = account(&store, "ada@example.test").await;
    let mut plane = serve(store.clone()).await;

    let (status, counted) = call(
        &plane,
        &ada.token,
        json!({"address": server.address(), "service": "prism.test.v1.Tester",
               "method": "Count", "proto": files(), "message": {"count": 3}}),
    )
    .await;
    assert_eq!(status, 200, "{counted}");
    assert_eq!(counted["messages"].as_array().unwrap().len(), 3);
    assert_eq!(counted["message_count"], 3);

    let (status, summed) = call(
        &plane,
        &ada.token,
        json!({"address": server.address(), "service": "Tester", "method": "Sum",
               "proto": files(), "message": [{"value": 2}, {"value": 40}]}),
    )
    .await;
    assert_eq!(status, 200, "{summed}");
    assert_eq!(summed["messages"][0]["sum"], "42");

    let (status, failed) = call(
        &plane,
        &ada.token,
        json!({"address": server.address(), "service": "Tester", "method": "Fail",
               "proto": files(), "message": {"code": 5, "message": "no such order"}}),
    )
    .await;
    assert_eq!(status, 200, "{failed}");
    assert_eq!(failed["status_code"], 5);
    assert_eq!(failed["status_name"], "NOT_FOUND");
    assert_eq!(failed["error_msg"], "no such order");
    assert_eq!(failed["failed"], true);

    plane.flush().await;
    let recorded = recorded(&store, ada.workspace).await;
    assert_eq!(recorded.len(), 3);
    let trace: TraceId = failed["trace_id"].as_str().unwrap().parse().unwrap();
    let span = &store.list_trace_spans(trace).await.unwrap()[0];
    assert_eq!(span.status_code, SpanStatus::Error);
    assert_eq!(span.attributes["error.type"], "NOT_FOUND");
}

pub async fn bad_grpc_input_is_a_4xx_and_records_nothing(store: Arc<dyn Store>) {
    let server = TestServer::start(Reflection::None).await;
    let ada = account(&store, "ada@example.test").await;
    let mut plane = serve(store.clone()).await;
    let broken = "syntax = \"proto3\";\nservice S {\n  rpc M(In) returns (Out)\n}\n";
    let cases = [
        (
            json!({"address": server.address(), "service": "S", "method": "M",
                   "proto_file": broken}),
            "invalid_proto",
        ),
        (
            json!({"address": server.address(), "service": "Tester", "method": "Nope",
                   "proto": files()}),
            "unknown_method",
        ),
        (
            json!({"address": server.address(), "service": "Nope", "method": "Echo",
                   "proto": files()}),
            "unknown_service",
        ),
        (
            json!({"address": server.address(), "service": "Tester", "method": "Echo",
                   "proto": files(), "message": {"no_such_field": 1}}),
            "invalid_message",
        ),
        (
            json!({"address": server.address(), "service": "Tester", "method": "Echo"}),
            "reflection_failed",
        ),
    ];
    for (request, code) in cases {
        let (status, body) = call(&plane, &ada.token, request.clone()).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some(code)),
            "{request}: {body}"
        );
    }
    let (_, body) = call(
        &plane,
        &ada.token,
        json!({"address": server.address(), "service": "S", "method": "M", "proto_file": broken}),
    )
    .await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("uploaded.proto:"),
        "names file:line:column: {message}"
    );

    plane.flush().await;
    let recorded = recorded(&store, ada.workspace).await;
    assert!(recorded.is_empty());
}

mod on {
    prism_testkit::for_each_backend!(crate::grpc =>
        unary_by_reflection_is_run_traced_and_recorded,
        streams_and_statuses_are_results,
        bad_grpc_input_is_a_4xx_and_records_nothing,
    );
}
