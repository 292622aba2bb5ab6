//! The control plane's JSON API under `/api`, used by the web UI, the CLI and users' scripts.
//!
//! Every route is registered through [`utoipa_axum::routes!`], so a handler cannot be served
//! without being in the OpenAPI document (`/api/openapi.json`). Conventions:
//! - snake_case JSON; ids are strings; times are RFC 3339 UTC strings;
//! - errors are [`error::ErrorBody`]: `{code, message, request_id, field?}`;
//! - authentication in [`auth`], authorization decided in one place, [`access`];
//! - created resources answer `201` with the resource (and its `id`); deletions `204`.

pub mod access;
pub mod accounts;
pub mod analytics;
pub mod auth;
pub mod collections;
pub mod environments;
pub mod error;
pub mod extract;
pub mod grpc;
pub mod history;
pub mod openapi;
pub mod requests;
pub mod send;
pub mod spec;
pub mod stream;
pub mod tokens;
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
        .merge(stream::routes())
        .merge(accounts::routes())
        .merge(tokens::routes())
        .merge(collections::routes())
        .merge(requests::routes())
        .merge(environments::routes())
        .merge(send::routes())
        .merge(history::routes())
        .merge(grpc::routes())
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

#[cfg(test)]
mod tests {
    /// Routes added with axum's plain route method would be served without being documented: only the
    /// OpenAPI document's own routes may be added that way.
    #[test]
    fn every_api_route_goes_through_the_documenting_router() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api");
        let mut offenders = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name == "openapi.rs" || path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // Spelled in pieces so this test does not find itself.
            let needles = [
                concat!(".rou", "te("),
                concat!(".route", "_service("),
                concat!(".ne", "st("),
            ];
            if needles.iter().any(|n| text.contains(n)) {
                offenders.push(name);
            }
        }
        assert!(
            offenders.is_empty(),
            "undocumented routes in {offenders:?}: use routes!()"
        );
    }
}
