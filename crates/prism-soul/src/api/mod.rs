//! The control plane's JSON API under `/api`, used by the web UI, the CLI and users' scripts.
//!
//! Every route is registered through [`utoipa_axum::routes!`], so a handler cannot be served
//! without being in the OpenAPI document (`/api/openapi.json`). Conventions:
//! - snake_case JSON; ids are strings; times are RFC 3339 UTC strings;
//! - errors are [`error::ErrorBody`]: `{code, message, request_id, field?}`;
//! - authentication in [`auth`], authorization decided in one place, [`access`];
//! - created resources answer `201` with the resource (and its `id`); deletions `204`.

pub mod access;
pub mod analytics;
pub mod auth;
pub mod error;
pub mod extract;
pub mod openapi;
pub mod spec;
pub mod workspaces;

use axum::http::Uri;
use prism_domain::Timestamp;
use utoipa_axum::router::OpenApiRouter;

use crate::SoulState;
use error::ApiError;

/// Every `/api` route, with its documentation.
pub fn router() -> OpenApiRouter<SoulState> {
    OpenApiRouter::new()
        .merge(workspaces::routes())
        .merge(analytics::routes())
}

/// Any path no route matches: a JSON 404.
pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found("route_not_found", format!("no route {}", uri.path()))
}

/// RFC 3339 text of a timestamp, as every API answer shows times.
pub fn time(t: Timestamp) -> String {
    t.to_rfc3339()
}

/// An optional RFC 3339 query value, `invalid_field` naming `field` when malformed.
pub fn parse_time(field: &str, text: Option<&str>) -> Result<Option<Timestamp>, ApiError> {
    text.filter(|t| !t.trim().is_empty())
        .map(|t| {
            Timestamp::parse_rfc3339(t).map_err(|e| ApiError::invalid_field(field, e.to_string()))
        })
        .transpose()
}

/// A name (workspace, collection, request, environment) checked by the domain's rule.
pub fn name(field: &str, raw: &str) -> Result<String, ApiError> {
    prism_domain::workspace::validate_name(raw)
        .map_err(|_| ApiError::invalid_field(field, "1 to 200 characters, no control characters"))
}
