//! The control plane ("soul"): accounts, workspaces, the JSON API and the web UI, on port 3000.
//!
//! **Architecture invariant:** the control plane never runs a request itself; it hands requests to
//! the data plane (in-process under `prism up`, over HTTP when the planes are split), see
//! [`dataplane`].

pub mod accounts;
pub mod api;
pub mod crypto;
pub mod dataplane;
pub mod limit;
pub mod ui;
pub mod variables;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use prism_domain::Clock;
use prism_intercept::health::{self, HasStore};
use prism_intercept::telemetry;
use prism_store::Store;

use crate::crypto::SecretBox;
use crate::dataplane::DataPlane;
use crate::limit::{LimitConfig, LoginLimiter};

/// The control plane's settings.
#[derive(Debug, Clone)]
pub struct SoulSettings {
    /// Whether anyone may sign up (the first account can always be created).
    pub signup_open: bool,
    /// `Some(true)`: cookies are always `Secure`; `Some(false)`: never; `None`: when the request
    /// came over TLS (`X-Forwarded-Proto: https` from the proxy in front).
    pub secure_cookies: Option<bool>,
    /// How long a session lasts without use.
    pub session_ttl: Duration,
    pub login_limit: LimitConfig,
}

impl Default for SoulSettings {
    fn default() -> Self {
        Self {
            signup_open: true,
            secure_cookies: None,
            session_ttl: Duration::from_secs(14 * 24 * 3600),
            login_limit: LimitConfig::default(),
        }
    }
}

impl SoulSettings {
    pub fn session_ttl_ns(&self) -> i64 {
        i64::try_from(self.session_ttl.as_nanos()).unwrap_or(i64::MAX)
    }
}

/// What the control plane's handlers share.
#[derive(Debug, Clone)]
pub struct SoulState {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub settings: Arc<SoulSettings>,
    /// Encrypts secret environment variables at rest.
    pub secrets: Arc<SecretBox>,
    /// Where requests run.
    pub data_plane: DataPlane,
    pub login_limiter: Arc<LoginLimiter>,
}

impl SoulState {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        settings: SoulSettings,
        secret_key: &str,
        data_plane: DataPlane,
    ) -> Self {
        Self {
            store,
            clock,
            login_limiter: Arc::new(LoginLimiter::new(settings.login_limit)),
            settings: Arc::new(settings),
            secrets: Arc::new(SecretBox::new(secret_key)),
            data_plane,
        }
    }
}

impl HasStore for SoulState {
    fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
}

/// The control plane's HTTP routes.
pub fn router(state: SoulState) -> Router {
    let (api, openapi) = api::router().split_for_parts();
    let openapi = Arc::new(api::openapi::finish(openapi));
    Router::new()
        // The seed's Docker health check calls /api/health; it reports readiness.
        .route("/api/health", get(health::readyz::<SoulState>))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz::<SoulState>))
        .route("/metrics", get(telemetry::metrics_endpoint::<SoulState>))
        .merge(api)
        .merge(api::openapi::routes(openapi))
        .merge(ui::routes())
        .fallback(api::not_found)
        .with_state(state)
        // axum's default (2 MB) is below what saved requests with files may need.
        .layer(axum::extract::DefaultBodyLimit::max(api::extract::MAX_BODY))
        .layer(axum::middleware::from_fn(|request, next| {
            telemetry::track("soul", request, next)
        }))
}

impl telemetry::Observed for SoulState {}
