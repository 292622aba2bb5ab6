//! The control plane ("soul"): accounts, workspaces, the JSON API and the web UI, on port 3000.
//!
//! **Architecture invariant:** the control plane never runs a request itself; it hands requests to
//! the data plane (in-process under `prism up`, over HTTP when the planes are split).

pub mod accounts;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use prism_intercept::health::{self, HasStore};
use prism_intercept::telemetry;
use prism_store::Store;

/// What the control plane's handlers share.
#[derive(Debug, Clone)]
pub struct SoulState {
    pub store: Arc<dyn Store>,
}

impl SoulState {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }
}

impl HasStore for SoulState {
    fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
}

/// The control plane's HTTP routes.
pub fn router(state: SoulState) -> Router {
    Router::new()
        // The seed's Docker health check calls /api/health; it reports readiness.
        .route("/api/health", get(health::readyz::<SoulState>))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz::<SoulState>))
        .route("/metrics", get(telemetry::metrics_endpoint::<SoulState>))
        .with_state(state)
        .layer(axum::middleware::from_fn(|request, next| {
            telemetry::track("soul", request, next)
        }))
}

impl telemetry::Observed for SoulState {}
