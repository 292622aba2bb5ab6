//! The data plane's HTTP API (besides health): running requests and the error shape they share.

pub mod auth;
pub mod cache;
pub mod error;
pub mod openapi;
pub mod run;
pub mod stream;

pub use error::ApiError;
