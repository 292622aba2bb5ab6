//! The control plane's API, served on a loopback port, on SQLite and (with
//! `PRISM_TEST_POSTGRES_URL`) PostgreSQL.

mod accounts;
mod content;
mod environments;
mod history;
mod openapi;
mod send;
mod support;
mod tokens;
mod ui;
mod workspaces;
