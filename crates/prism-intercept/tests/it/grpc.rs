//! `POST /grpc` end to end against a real tonic server with reflection (the same test server as
//! prism-grpc's own tests): upstream's request shape, reflection, streaming, non-OK statuses as
//! results, bad input as 4xx, and the records read back. `POST /grpc/services` lists what the
//! same server offers.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use prism_domain::Role;
use prism_domain::egress::EgressPolicy;
use prism_domain::execution::ExecutionSource;
use prism_domain::request::Protocol;
use prism_domain::session::hash_secret;
use prism_domain::trace::{SpanKind, StatusCode as SpanStatus, TraceId};
use prism_domain::trace_context::TraceParent;
use prism_store::Store;
use serde_json::{Value, json};

use crate::grpc_server::{COMMON_PROTO, Reflection, TESTER_PROTO, TestServer};
use prism_intercept::InterceptSettings;
use prism_intercept::api::auth::{WORKSPACE_HEADER, service_credential};
use prism_intercept::executor::ExecutorConfig;

use crate::support::{
    DataPlane, account, add_member, api_token, client, recorded, recorder_config, serve, serve_with,
};

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

async fn services(plane: &DataPlane, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = client().post(plane.url("/grpc/services")).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// The call kinds of the test service's methods, as listed: `name → (client, server)` streaming.
fn tester_methods(answer: &Value) -> Vec<(String, bool, bool, String, String)> {
    let tester = answer["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "prism.test.v1.Tester")
        .unwrap_or_else(|| panic!("Tester is listed: {answer}"));
    tester["methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_owned(),
                m["client_streaming"].as_bool().unwrap(),
                m["server_streaming"].as_bool().unwrap(),
                m["input_type"].as_str().unwrap().to_owned(),
                m["output_type"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn expected_tester_methods() -> Vec<(String, bool, bool, String, String)> {
    let t = |name: &str, client: bool, server: bool, input: &str, output: &str| {
        (
            name.to_owned(),
            client,
            server,
            input.to_owned(),
            output.to_owned(),
        )
    };
    vec![
        t(
            "Echo",
            false,
            false,
            "prism.test.v1.EchoRequest",
            "prism.test.v1.EchoReply",
        ),
        t(
            "Count",
            false,
            true,
            "prism.test.v1.CountRequest",
            "prism.test.v1.CountReply",
        ),
        t(
            "Sum",
            true,
            false,
            "prism.test.v1.Number",
            "prism.test.v1.Total",
        ),
        t(
            "Chat",
            true,
            true,
            "prism.test.v1.EchoRequest",
            "prism.test.v1.EchoReply",
        ),
        t(
            "Fail",
            false,
            false,
            "prism.test.v1.FailRequest",
            "google.protobuf.Empty",
        ),
        t(
            "Hang",
            false,
            false,
            "google.protobuf.Empty",
            "google.protobuf.Empty",
        ),
    ]
}

pub async fn services_are_listed_by_reflection_and_from_pasted_files(store: Arc<dyn Store>) {
    let reflecting = TestServer::start(Reflection::Both).await;
    let plain = TestServer::start(Reflection::None).await;
    let ada = account(&store, "ada@example.test").await;
    let mut plane = serve(store.clone()).await;

    let (status, reflected) = services(
        &plane,
        Some(&ada.token),
        json!({"server_address": reflecting.address(), "metadata": {"x-k": "v"}}),
    )
    .await;
    assert_eq!(status, 200, "{reflected}");
    assert_eq!(tester_methods(&reflected), expected_tester_methods());
    assert!(reflecting.reflection_calls.load(Ordering::SeqCst) > 0);

    // Pasted files: the server is not asked (it has no reflection at all). Upstream's trailing
    // slash and the fields of a call are accepted.
    let response = client()
        .post(plane.url("/grpc/services/"))
        .bearer_auth(&ada.token)
        .json(&json!({"address": plain.address(), "proto": files(),
                      "service": "Tester", "method": "Echo", "workspace_id": ada.workspace}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let pasted: Value = response.json().await.unwrap();
    assert_eq!(pasted["services"].as_array().unwrap().len(), 1, "{pasted}");
    assert_eq!(tester_methods(&pasted), expected_tester_methods());
    assert_eq!(plain.reflection_calls.load(Ordering::SeqCst), 0);

    // Listing is not an execution.
    plane.flush().await;
    assert!(recorded(&store, ada.workspace).await.is_empty());
}

pub async fn listing_services_refuses_bad_input_and_unreachable_servers(store: Arc<dyn Store>) {
    let plain = TestServer::start(Reflection::None).await;
    let ada = account(&store, "ada@example.test").await;
    let plane = serve(store.clone()).await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    };
    let broken = "syntax = \"proto3\";\nservice S {\n  rpc M(In) returns (Out)\n}\n";
    let cases = [
        (
            json!({"address": plain.address(), "proto_file": broken}),
            400,
            "invalid_proto",
        ),
        (
            json!({"address": plain.address()}),
            400,
            "reflection_failed",
        ),
        (json!({"address": "no port here"}), 400, "invalid_address"),
        (
            json!({"address": plain.address(), "metadata": {"bad name": "v"}}),
            400,
            "invalid_metadata",
        ),
        (
            json!({"address": closed, "timeout_ms": 5000}),
            502,
            "unreachable",
        ),
        (json!({"proto_file": broken}), 400, "invalid_request"),
        (
            json!({"address": plain.address(), "workspace_id": "nope"}),
            400,
            "invalid_id",
        ),
    ];
    for (request, status, code) in cases {
        let (got, body) = services(&plane, Some(&ada.token), request.clone()).await;
        assert_eq!(
            (got, body["error"]["code"].as_str()),
            (status, Some(code)),
            "{request}: {body}"
        );
    }
    let (_, body) = services(
        &plane,
        Some(&ada.token),
        json!({"address": plain.address(), "proto_file": broken}),
    )
    .await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("uploaded.proto:4:1"),
        "names file:line:column: {message}"
    );
}

pub async fn listing_services_is_authorized_like_grpc(store: Arc<dyn Store>) {
    let server = TestServer::start(Reflection::Both).await;
    let ada = account(&store, "ada@example.test").await;
    let viewer = account(&store, "vic@example.test").await;
    add_member(&store, ada.workspace, viewer.user.id, Role::Viewer).await;
    let outsider = account(&store, "out@example.test").await;
    let plane = serve_with(
        store.clone(),
        ExecutorConfig::default(),
        InterceptSettings {
            service_credential_hash: Some(hash_secret(&service_credential("k"))),
            ..InterceptSettings::default()
        },
        recorder_config,
    )
    .await;
    let body =
        |ws: prism_domain::WorkspaceId| json!({"address": server.address(), "workspace_id": ws});

    let (status, answer) = services(&plane, None, body(ada.workspace)).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (401, Some("missing_credentials"))
    );
    let (status, answer) = services(&plane, Some("prism_pat_nope"), body(ada.workspace)).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (401, Some("invalid_credentials"))
    );
    let (status, answer) = services(&plane, Some(&viewer.token), body(ada.workspace)).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let (status, answer) = services(&plane, Some(&outsider.token), body(ada.workspace)).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (404, Some("workspace_not_found"))
    );
    // A second workspace makes the implicit choice ambiguous.
    let (second_token, _) = api_token(&store, ada.user.id).await;
    crate::support::workspace(&store, ada.user.id, "Other").await;
    let (status, answer) = services(
        &plane,
        Some(&second_token),
        json!({"address": server.address()}),
    )
    .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (400, Some("workspace_required"))
    );
    assert_eq!(
        server.reflection_calls.load(Ordering::SeqCst),
        0,
        "refused before contacting"
    );

    let (status, answer) = services(&plane, Some(&ada.token), body(ada.workspace)).await;
    assert_eq!(status, 200, "{answer}");
    // The control plane's service credential, with the workspace in a header.
    let response = client()
        .post(plane.url("/grpc/services"))
        .bearer_auth(service_credential("k"))
        .header(WORKSPACE_HEADER, ada.workspace.to_string())
        .json(&json!({"address": server.address()}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(tester_methods(&answer), expected_tester_methods());
}

pub async fn listing_services_obeys_the_outbound_policy(store: Arc<dyn Store>) {
    let server = TestServer::start(Reflection::Both).await;
    let ada = account(&store, "ada@example.test").await;
    let plane = serve_with(
        store.clone(),
        ExecutorConfig {
            egress: EgressPolicy::restricted(),
            ..ExecutorConfig::default()
        },
        InterceptSettings::default(),
        recorder_config,
    )
    .await;
    for address in [server.address(), "169.254.169.254:50051".to_owned()] {
        let (status, body) =
            services(&plane, Some(&ada.token), json!({ "address": address })).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (403, Some("blocked")),
            "{body}"
        );
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("not allowed"),
            "{body}"
        );
    }
    assert_eq!(server.reflection_calls.load(Ordering::SeqCst), 0);
}

mod on {
    prism_testkit::for_each_backend!(crate::grpc =>
        unary_by_reflection_is_run_traced_and_recorded,
        streams_and_statuses_are_results,
        bad_grpc_input_is_a_4xx_and_records_nothing,
        services_are_listed_by_reflection_and_from_pasted_files,
        listing_services_refuses_bad_input_and_unreachable_servers,
        listing_services_is_authorized_like_grpc,
        listing_services_obeys_the_outbound_policy,
    );
}
