//! gRPC client tests: the executor against real tonic servers started on loopback by each test
//! (see `server.rs`), asserting what the server received and what the outcome says.

mod calls;
mod errors;
mod limits;
mod reflection;
mod server;
mod transport;

use prism_domain::request::{GrpcSpec, GrpcTls, KeyValue, ProtoSource};
use prism_domain::trace_context::ClientSpanContext;
use prism_grpc::{GrpcConfig, GrpcExecutor, GrpcOutcome, GrpcRequestError};
use serde_json::Value;

/// A spec for `method` on the test service at `address`, schema from the pasted test files.
pub fn spec(address: &str, method: &str, message: Value) -> GrpcSpec {
    GrpcSpec {
        address: address.to_owned(),
        service: server::SERVICE.to_owned(),
        method: method.to_owned(),
        proto: ProtoSource::Files {
            files: server::proto_files(),
        },
        tls: GrpcTls::default(),
        metadata: Vec::new(),
        message: message.to_string(),
        timeout_ms: Some(10_000),
    }
}

/// The same, with the schema from server reflection.
pub fn reflected(address: &str, method: &str, message: Value) -> GrpcSpec {
    GrpcSpec {
        proto: ProtoSource::Reflection,
        ..spec(address, method, message)
    }
}

pub fn executor() -> GrpcExecutor {
    GrpcExecutor::new(GrpcConfig::default())
}

pub async fn run(executor: &GrpcExecutor, spec: &GrpcSpec) -> GrpcOutcome {
    executor
        .execute(spec, &ClientSpanContext::start(None, None))
        .await
        .unwrap_or_else(|err| panic!("request error {}: {err}", err.code()))
}

pub async fn request_error(executor: &GrpcExecutor, spec: &GrpcSpec) -> GrpcRequestError {
    match executor
        .execute(spec, &ClientSpanContext::start(None, None))
        .await
    {
        Ok(outcome) => panic!("expected a request error, got {outcome:#?}"),
        Err(err) => err,
    }
}

/// The outcome is a complete OK response; returns its messages.
pub fn ok_messages(outcome: &GrpcOutcome) -> &[Value] {
    assert!(outcome.error.is_none(), "{:#?}", outcome.error);
    let response = outcome.response.as_ref().expect("a response");
    assert_eq!(
        (response.status_code, response.status_name.as_str()),
        (0, "OK"),
        "{response:#?}"
    );
    assert!(!outcome.is_failure());
    &response.messages
}

pub fn metadata(rows: &[(&str, &str)]) -> Vec<KeyValue> {
    rows.iter().map(|(n, v)| KeyValue::new(*n, *v)).collect()
}

/// A loopback port nothing listens on (bound, then released).
pub async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}
