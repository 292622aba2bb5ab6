//! The control plane's API, served on a loopback port, on SQLite and (with
//! `PRISM_TEST_POSTGRES_URL`) PostgreSQL.

mod analytics;
mod support;
mod workspaces;
