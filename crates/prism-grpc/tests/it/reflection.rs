//! Schemas from server reflection (v1, v1alpha fallback, none) and service listings.

use std::sync::atomic::Ordering;

use prism_domain::execution::ErrorKind;
use prism_domain::request::ProtoSource;
use prism_grpc::MethodInfo;
use serde_json::json;

use crate::server::{Reflection, TestServer, proto_files};
use crate::{closed_port, executor, ok_messages, reflected, request_error, run, spec};

#[tokio::test]
async fn reflection_v1_resolves_a_simple_service_name_and_its_imports() {
    let server = TestServer::start(Reflection::Both).await;
    let mut call = reflected(
        &server.address(),
        "Echo",
        json!({ "sentAt": "2024-01-01T00:00:00Z", "tag": { "name": "t" } }),
    );
    call.service = "Tester".into();
    let outcome = run(&executor(), &call).await;
    let reply = &ok_messages(&outcome)[0];
    assert_eq!(reply["sentAt"], "2024-01-01T00:00:00Z");
    assert_eq!(reply["tag"]["name"], "t");
    assert_eq!(outcome.request.service, "prism.test.v1.Tester");
}

#[tokio::test]
async fn reflection_falls_back_to_v1alpha_and_bundled_well_known_types() {
    // This server answers v1 with UNIMPLEMENTED and cannot provide google/protobuf/*.proto.
    let server = TestServer::start(Reflection::V1AlphaOnly).await;
    let outcome = run(
        &executor(),
        &reflected(
            &server.address(),
            "Echo",
            json!({ "sentAt": "2024-01-01T00:00:00Z" }),
        ),
    )
    .await;
    assert_eq!(ok_messages(&outcome)[0]["sentAt"], "2024-01-01T00:00:00Z");
    assert!(server.reflection_calls.load(Ordering::SeqCst) >= 2);
}

#[tokio::test]
async fn a_server_without_reflection_is_a_request_error() {
    let server = TestServer::start(Reflection::None).await;
    let err = request_error(
        &executor(),
        &reflected(&server.address(), "Echo", json!({})),
    )
    .await;
    assert_eq!(err.code(), "reflection_failed");
    assert!(err.to_string().contains("does not support"), "{err}");
    assert!(err.to_string().contains("paste"), "{err}");
}

#[tokio::test]
async fn an_unreachable_reflection_server_is_an_outcome() {
    let port = closed_port().await;
    let outcome = run(
        &executor(),
        &reflected(&format!("127.0.0.1:{port}"), "Echo", json!({})),
    )
    .await;
    assert_eq!(outcome.error_kind(), Some(ErrorKind::ConnectionRefused));
    assert!(outcome.response.is_none());
}

#[tokio::test]
async fn reflected_schemas_are_cached_per_address() {
    let server = TestServer::start(Reflection::Both).await;
    let executor = executor();
    let call = reflected(&server.address(), "Echo", json!({ "text": "1" }));
    ok_messages(&run(&executor, &call).await);
    let after_first = server.reflection_calls.load(Ordering::SeqCst);
    assert!(after_first >= 2, "list + file (+ imports)");
    ok_messages(&run(&executor, &call).await);
    let count = reflected(&server.address(), "Count", json!({ "count": 1 }));
    ok_messages(&run(&executor, &count).await);
    assert_eq!(
        server.reflection_calls.load(Ordering::SeqCst),
        after_first,
        "no reflection on repeated calls"
    );
    // A method the cached schema lacks makes PRISM look again before saying it is unknown.
    let err = request_error(&executor, &reflected(&server.address(), "Nope", json!({}))).await;
    assert_eq!(err.code(), "unknown_method");
    assert!(server.reflection_calls.load(Ordering::SeqCst) > after_first);
}

fn method<'a>(methods: &'a [MethodInfo], name: &str) -> &'a MethodInfo {
    methods.iter().find(|m| m.name == name).unwrap()
}

#[tokio::test]
async fn list_services_by_reflection() {
    let server = TestServer::start(Reflection::Both).await;
    let services = executor()
        .list_services(&reflected(&server.address(), "", json!({})))
        .await
        .unwrap();
    let names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"prism.test.v1.Tester"), "{names:?}");
    assert!(
        names.contains(&"grpc.reflection.v1.ServerReflection"),
        "{names:?}"
    );
    let tester = services
        .iter()
        .find(|s| s.name == "prism.test.v1.Tester")
        .unwrap();
    assert_eq!(tester.methods.len(), 6);
    let count = method(&tester.methods, "Count");
    assert!(count.server_streaming && !count.client_streaming);
    let sum = method(&tester.methods, "Sum");
    assert!(sum.client_streaming && !sum.server_streaming);
    let chat = method(&tester.methods, "Chat");
    assert!(chat.client_streaming && chat.server_streaming);
    let echo = method(&tester.methods, "Echo");
    assert_eq!(echo.input_type, "prism.test.v1.EchoRequest");
    assert_eq!(echo.output_type, "prism.test.v1.EchoReply");
}

#[tokio::test]
async fn list_services_from_files_needs_no_server() {
    let port = closed_port().await;
    let mut from_files = spec(&format!("127.0.0.1:{port}"), "", json!({}));
    from_files.proto = ProtoSource::Files {
        files: proto_files(),
    };
    let services = executor().list_services(&from_files).await.unwrap();
    assert_eq!(services.len(), 1);
    assert_eq!(services[0].name, "prism.test.v1.Tester");
    let fail = method(&services[0].methods, "Fail");
    assert_eq!(fail.output_type, "google.protobuf.Empty");
}

#[tokio::test]
async fn list_services_reports_unreachable_and_unsupported_servers() {
    let port = closed_port().await;
    let err = executor()
        .list_services(&reflected(&format!("127.0.0.1:{port}"), "", json!({})))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "unreachable");
    assert!(matches!(
        err,
        prism_grpc::GrpcRequestError::Unreachable {
            kind: ErrorKind::ConnectionRefused,
            ..
        }
    ));
    let server = TestServer::start(Reflection::None).await;
    let err = executor()
        .list_services(&reflected(&server.address(), "", json!({})))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "reflection_failed");
}
