//! Data-plane HTTP tests: the router served on a loopback port against a real database.

mod executor_http;
mod graphql;
mod grpc;
/// The real gRPC server of prism-grpc's tests, shared rather than copied.
#[path = "../../../prism-grpc/tests/it/server.rs"]
#[allow(dead_code)]
mod grpc_server;
mod health;
mod metrics;
mod openapi;
mod otlp;
mod recorder;
mod run;
mod stream;
mod support;
