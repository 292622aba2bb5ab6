//! The control plane's API, served on a loopback port, on SQLite and (with
//! `PRISM_TEST_POSTGRES_URL`) PostgreSQL.

mod history;
mod send;
mod support;
mod workspaces;
