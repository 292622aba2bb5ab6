//! Liveness and readiness endpoints, shared by both planes.
//!
//! `/healthz` answers as long as the process serves HTTP; `/readyz` also requires the database to
//! answer. Neither needs credentials and neither reveals more than "ok" or "unavailable".

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use prism_store::Store;
use serde::Serialize;

/// Application state that can reach the store.
pub trait HasStore: Clone + Send + Sync + 'static {
    fn store(&self) -> &Arc<dyn Store>;
}

#[derive(Debug, Serialize)]
pub struct Health {
    pub status: &'static str,
    pub version: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
}

/// Liveness: always 200 while the server runs.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "The process serves HTTP", body = Object)), tag = "health")]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        database: None,
        code: None,
    })
}

/// Readiness: 200 when the database answers, 503 with code `database_unavailable` otherwise.
#[utoipa::path(get, path = "/readyz", responses(
    (status = 200, description = "The database answers", body = Object),
    (status = 503, description = "`database_unavailable`", body = Object),
), tag = "health")]
pub async fn readyz<S: HasStore>(State(state): State<S>) -> (StatusCode, Json<Health>) {
    match state.store().ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(Health {
                status: "ok",
                version: env!("CARGO_PKG_VERSION"),
                database: Some("ok"),
                code: None,
            }),
        ),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check failed: database unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Health {
                    status: "unavailable",
                    version: env!("CARGO_PKG_VERSION"),
                    database: Some("unavailable"),
                    code: Some("database_unavailable"),
                }),
            )
        }
    }
}
