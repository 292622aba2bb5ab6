//! The data plane ("intercept"): the HTTP service on port 7000 that runs requests, records
//! executions and spans, and receives OpenTelemetry traces.
//!
//! **Architecture invariant:** the data plane holds no session state; every replica is
//! interchangeable and shares only the database, so several can run behind one load balancer.

pub mod executor;
pub mod health;
pub mod otlp;
pub mod recorder;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use prism_store::Store;

/// What the data plane's handlers share.
#[derive(Debug, Clone)]
pub struct InterceptState {
    pub store: Arc<dyn Store>,
}

impl InterceptState {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }
}

/// The data plane's HTTP routes.
pub fn router(state: InterceptState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz::<InterceptState>))
        .with_state(state)
}

impl health::HasStore for InterceptState {
    fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
}
