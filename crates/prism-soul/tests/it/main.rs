//! The control plane's API, served on a loopback port, on SQLite and (with
//! `PRISM_TEST_POSTGRES_URL`) PostgreSQL.

mod accounts;
mod analytics;
mod content;
mod environments;
mod grpc;
/// The real gRPC server of prism-grpc's tests, shared rather than copied.
#[path = "../../../prism-grpc/tests/it/server.rs"]
#[allow(dead_code)]
mod grpc_server;
mod history;
mod openapi;
mod send;
mod support;
mod tokens;
mod ui;
mod workspaces;
