//! The control plane's API, served on a loopback port, on SQLite and (with
//! `PRISM_TEST_POSTGRES_URL`) PostgreSQL.

mod accounts;
mod content;
mod environments;
mod openapi;
mod support;
mod tokens;
mod workspaces;
