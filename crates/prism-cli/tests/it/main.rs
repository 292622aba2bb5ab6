//! End-to-end tests of the `prism` binary: start-up, health, shutdown, bad input, CLI commands.

mod support;

mod commands;
mod lifecycle;
mod startup_errors;
