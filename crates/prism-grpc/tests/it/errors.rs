//! Requests that cannot be run are `GrpcRequestError`s with stable codes, found before anything
//! is sent. The address in these tests is a closed port: had anything been sent, the result would
//! be a ConnectionRefused outcome instead of the error.

use prism_domain::request::{GrpcTls, ProtoFile, ProtoSource};
use serde_json::json;

use crate::server::proto_files;
use crate::{closed_port, executor, metadata, request_error, spec};

async fn closed_address() -> String {
    format!("127.0.0.1:{}", closed_port().await)
}

#[tokio::test]
async fn an_unparsable_proto_reports_file_line_and_column() {
    let mut call = spec(&closed_address().await, "Echo", json!({}));
    call.proto = ProtoSource::Files {
        files: vec![ProtoFile {
            name: "acme/broken.proto".into(),
            content: "syntax = \"proto3\";\n\nmessage A {\n  string x = 1\n}\n".into(),
        }],
    };
    let err = request_error(&executor(), &call).await;
    assert_eq!(err.code(), "invalid_proto");
    let text = err.to_string();
    assert!(text.starts_with("acme/broken.proto:5:1: "), "{text}");
    let json = serde_json::to_value(&err).unwrap();
    assert_eq!(json["location"]["line"], 5);
}

#[tokio::test]
async fn a_type_error_in_an_imported_file_names_that_file() {
    let mut files = proto_files();
    files[1].content = files[1]
        .content
        .replace("google.protobuf.Timestamp at = 2;", "Missing at = 2;");
    let mut call = spec(&closed_address().await, "Echo", json!({}));
    call.proto = ProtoSource::Files { files };
    let err = request_error(&executor(), &call).await;
    assert_eq!(err.code(), "invalid_proto");
    assert!(
        err.to_string()
            .starts_with("prism/test/v1/common.proto:8:3: "),
        "{err}"
    );
    assert!(err.to_string().contains("Missing"), "{err}");
}

#[tokio::test]
async fn unknown_services_and_methods_list_what_exists() {
    let executor = executor();
    let mut call = spec(&closed_address().await, "Echo", json!({}));
    call.service = "prism.test.v1.Nope".into();
    let err = request_error(&executor, &call).await;
    assert_eq!(err.code(), "unknown_service");
    assert!(err.to_string().contains("prism.test.v1.Tester"), "{err}");

    let call = spec(&closed_address().await, "Ech0", json!({}));
    let err = request_error(&executor, &call).await;
    assert_eq!(err.code(), "unknown_method");
    assert!(
        err.to_string()
            .contains("Echo, Count, Sum, Chat, Fail, Hang"),
        "{err}"
    );
}

#[tokio::test]
async fn messages_that_do_not_fit_the_input_type_are_invalid() {
    let executor = executor();
    let address = closed_address().await;
    for (method, message, expected) in [
        ("Echo", r#"{"text": "a", "nope": 1}"#, "nope"),
        ("Echo", r#"{"text": 5}"#, "string"),
        ("Echo", r#"{"sentAt": "yesterday"}"#, "timestamp"),
        ("Echo", r#"[{"text": "a"}]"#, "not a list"),
        ("Echo", r#"{"text": "#, "not valid JSON"),
        ("Sum", r#"[{"value": 1}, {"value": "x"}]"#, "message #2"),
        ("Sum", "42", "a number"),
    ] {
        let mut call = spec(&address, method, json!({}));
        call.message = message.into();
        let err = request_error(&executor, &call).await;
        assert_eq!(err.code(), "invalid_message", "{message}: {err}");
        assert!(
            err.to_string()
                .to_lowercase()
                .contains(&expected.to_lowercase()),
            "{message}: {err}"
        );
    }
}

#[tokio::test]
async fn bad_addresses_tls_settings_and_metadata_are_rejected() {
    let executor = executor();
    let err = request_error(&executor, &spec("localhost", "Echo", json!({}))).await;
    assert_eq!(err.code(), "invalid_address");
    assert!(err.to_string().contains("missing port"), "{err}");
    let err = request_error(&executor, &spec("ftp://x:1", "Echo", json!({}))).await;
    assert_eq!(err.code(), "invalid_address");

    let mut call = spec(&closed_address().await, "Echo", json!({}));
    call.tls = GrpcTls {
        enabled: true,
        ca_pem: Some(
            "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n".into(),
        ),
        verify: None,
    };
    let err = request_error(&executor, &call).await;
    assert_eq!(err.code(), "invalid_tls_config");
    assert!(err.to_string().contains("CA"), "{err}");

    let mut call = spec(&closed_address().await, "Echo", json!({}));
    call.metadata = metadata(&[("grpc-timeout", "1S")]);
    assert_eq!(
        request_error(&executor, &call).await.code(),
        "invalid_metadata"
    );
}
