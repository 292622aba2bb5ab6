//! Data-plane HTTP tests: the router served on a loopback port against a real database.

mod executor_http;
mod health;
mod otlp;
mod recorder;
