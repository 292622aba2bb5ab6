//! The data plane ("intercept"): the HTTP service on port 7000 that runs requests, records
//! executions and spans, and receives OpenTelemetry traces.
//!
//! **Architecture invariant:** the data plane holds no session state; every replica is
//! interchangeable and shares only the database, so several can run behind one load balancer.

pub mod api;
pub mod capture;
pub mod endpoint;
pub mod executor;
pub mod health;
pub mod otlp;
pub mod recorder;
pub mod selftrace;
pub mod telemetry;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use prism_domain::Clock;
use prism_grpc::GrpcExecutor;
use prism_store::Store;
use tokio::sync::Semaphore;

use crate::executor::HttpExecutor;
use crate::recorder::Recorder;

/// Instance settings of the data plane's API.
#[derive(Debug, Clone)]
pub struct InterceptSettings {
    /// SHA-256 of the control plane's service credential ([`api::auth::service_credential`]);
    /// `None` disables service calls (no shared secret key configured).
    pub service_credential_hash: Option<Vec<u8>>,
    /// Accept OTLP exports without an ingest key from loopback peers (`prism up` only).
    pub loopback_ingest_without_key: bool,
    /// Largest request body accepted by the run endpoints.
    pub max_request_body: usize,
    /// A live trace stream ends after the trace was quiet this long (clients may ask otherwise).
    pub stream_quiet: Duration,
    /// Live streams open at once (each holds a task and a feed subscription).
    pub max_streams: usize,
    /// Spans one live stream sends before it ends (its memory grows with them).
    pub max_stream_spans: usize,
    /// Credential and membership answers this young are reused without asking the database
    /// (a revoked token works at most this long; see [`api::cache`]).
    pub auth_fresh: Duration,
    /// Answers this young are used while the database is unavailable.
    pub auth_stale_if_error: Duration,
}

impl Default for InterceptSettings {
    fn default() -> Self {
        Self {
            service_credential_hash: None,
            loopback_ingest_without_key: false,
            max_request_body: 32 * 1024 * 1024,
            stream_quiet: Duration::from_secs(3),
            max_streams: 256,
            max_stream_spans: 10_000,
            auth_fresh: api::cache::FRESH,
            auth_stale_if_error: api::cache::STALE_IF_ERROR,
        }
    }
}

/// What the data plane's handlers share.
#[derive(Debug, Clone)]
pub struct InterceptState {
    pub store: Arc<dyn Store>,
    pub recorder: Recorder,
    pub executor: HttpExecutor,
    pub grpc: GrpcExecutor,
    pub settings: Arc<InterceptSettings>,
    pub clock: Arc<dyn Clock>,
    /// Permits for live trace streams (`settings.max_streams`).
    pub streams: Arc<Semaphore>,
    /// Recent credential and membership lookups (see [`api::cache`]).
    pub auth_cache: Arc<api::cache::AuthCache>,
}

impl InterceptState {
    pub fn new(
        store: Arc<dyn Store>,
        recorder: Recorder,
        executor: HttpExecutor,
        grpc: GrpcExecutor,
        settings: InterceptSettings,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            grpc,
            auth_cache: Arc::default(),
            streams: Arc::new(Semaphore::new(settings.max_streams)),
            store,
            recorder,
            executor,
            settings: Arc::new(settings),
            clock,
        }
    }
}

/// The data plane's HTTP routes. Upstream registered its routes with a trailing slash; both
/// spellings are served.
pub fn router(state: InterceptState) -> Router {
    let limit = state.settings.max_request_body;
    let runs = Router::new()
        .route("/rest", post(api::run::rest))
        .route("/rest/", post(api::run::rest))
        .route("/graphql", post(api::run::graphql))
        .route("/graphql/", post(api::run::graphql))
        .route("/grpc", post(api::run::grpc))
        .route("/grpc/", post(api::run::grpc))
        .route("/grpc/services", post(api::run::grpc_services))
        .route("/grpc/services/", post(api::run::grpc_services))
        .route("/run", post(api::run::run))
        .layer(DefaultBodyLimit::max(limit));
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz::<InterceptState>))
        .route("/traces/stream", get(api::stream::stream))
        .route("/openapi.json", get(api::openapi::openapi_json))
        .route(
            "/metrics",
            get(telemetry::metrics_endpoint::<InterceptState>),
        )
        .merge(runs)
        .with_state(state.clone())
        .merge(otlp::http_routes(otlp_ingest(&state)))
        .layer(axum::middleware::from_fn(|request, next| {
            telemetry::track("intercept", request, next)
        }))
}

/// OTLP ingest (HTTP route and gRPC service) over this state's recorder, authorized by ingest
/// keys ([`api::auth::KeyAuthorizer`]).
pub fn otlp_ingest(state: &InterceptState) -> otlp::OtlpIngest {
    otlp::OtlpIngest::new(
        state.recorder.clone(),
        Arc::new(api::auth::KeyAuthorizer {
            state: state.clone(),
        }),
    )
}

impl telemetry::Observed for InterceptState {
    fn recorder(&self) -> Option<&Recorder> {
        Some(&self.recorder)
    }
}

impl health::HasStore for InterceptState {
    fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
}
