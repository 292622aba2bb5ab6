//! End-to-end tests of the `prism` binary: start-up, health, shutdown, bad input, CLI commands.

mod support;

mod browser;
mod commands;
mod data_plane;
mod lifecycle;
mod startup_errors;
