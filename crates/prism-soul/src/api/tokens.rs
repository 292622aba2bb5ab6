//! API tokens (per user) and ingest keys (per workspace, for OpenTelemetry exporters).
//!
//! `GET/POST /api/tokens`, `DELETE /api/tokens/{id}`;
//! `GET/POST /api/workspaces/{id}/ingest-keys`, `DELETE /api/workspaces/{id}/ingest-keys/{key_id}`.
//!
//! A secret is shown once, in the answer that creates it; only its SHA-256 and a short display
//! prefix are stored. Revoking keeps the row (with `revoked_at`) so lists show what existed.

use axum::extract::{Path, State};
use axum::http::header::CACHE_CONTROL;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use prism_domain::session::{
    ApiToken, IngestKey, SecretKind, generate_secret, hash_secret, secret_display_prefix,
};
use prism_domain::{ApiTokenId, IngestKeyId, Timestamp, WorkspaceId};
use prism_store::StoreError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::{self, Action};
use super::auth::Caller;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{Json, PathId};
use super::{name, time};
use crate::SoulState;

pub fn routes() -> OpenApiRouter<SoulState> {
    OpenApiRouter::new()
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
        .routes(routes!(list_ingest_keys, create_ingest_key))
        .routes(routes!(revoke_ingest_key))
}

/// The longest lifetime a token may be given.
pub const MAX_TOKEN_DAYS: i64 = 3650;
const DAY_NS: i64 = 24 * 3600 * 1_000_000_000;

/// An API token without its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    /// The token's first characters (`prism_pat_…`), to tell tokens apart.
    pub prefix: String,
    pub created_at: String,
    /// `null`: never expires.
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    /// Set once revoked; a revoked token is refused everywhere.
    pub revoked_at: Option<String>,
}

impl From<&ApiToken> for TokenView {
    fn from(t: &ApiToken) -> Self {
        Self {
            id: t.id.to_string(),
            name: t.name.clone(),
            prefix: t.prefix.clone(),
            created_at: time(t.created_at),
            expires_at: t.expires_at.map(time),
            last_used_at: t.last_used_at.map(time),
            revoked_at: t.revoked_at.map(time),
        }
    }
}

/// A new API token, with its secret — the only time it is shown.
#[derive(Serialize, ToSchema)]
pub struct TokenCreated {
    pub id: String,
    pub name: String,
    pub prefix: String,
    /// The secret: send it as `Authorization: Bearer <token>`. It cannot be shown again.
    pub token: String,
    pub created_at: String,
    pub expires_at: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenInput {
    /// 1–200 characters, e.g. what the token is for.
    pub name: String,
    /// 1 to 3650; omitted or `null`: the token never expires.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 3650)]
    pub expires_in_days: Option<i64>,
}

/// A workspace ingest key without its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct IngestKeyView {
    pub id: String,
    pub name: String,
    /// The key's first characters (`prism_ik_…`).
    pub prefix: String,
    /// The user who created it (`null` once that account is gone).
    pub created_by: Option<String>,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

impl From<&IngestKey> for IngestKeyView {
    fn from(k: &IngestKey) -> Self {
        Self {
            id: k.id.to_string(),
            name: k.name.clone(),
            prefix: k.prefix.clone(),
            created_by: k.created_by.map(|u| u.to_string()),
            created_at: time(k.created_at),
            last_used_at: k.last_used_at.map(time),
            revoked_at: k.revoked_at.map(time),
        }
    }
}

/// A new ingest key, with its secret — the only time it is shown.
#[derive(Serialize, ToSchema)]
pub struct IngestKeyCreated {
    pub id: String,
    pub name: String,
    pub prefix: String,
    /// The secret for OTLP exporters (`Authorization: Bearer <key>`). It cannot be shown again.
    pub key: String,
    pub created_at: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IngestKeyInput {
    /// 1–200 characters, e.g. the service that will export with it.
    pub name: String,
}

fn token_not_found() -> ApiError {
    ApiError::not_found("token_not_found", "no such API token")
}

fn ingest_key_not_found() -> ApiError {
    ApiError::not_found(
        "ingest_key_not_found",
        "no such ingest key in this workspace",
    )
}

/// An answer carrying a secret: created, and never cached.
fn created_secret<T: Serialize>(body: T) -> Response {
    (
        StatusCode::CREATED,
        [(CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        axum::Json(body),
    )
        .into_response()
}

fn parse_id<T: std::str::FromStr>(raw: &str) -> ApiResult<T> {
    raw.parse()
        .map_err(|_| ApiError::bad_request("invalid_id", format!("{raw:?} is not an id")))
}

/// The caller's API tokens, newest first, revoked and expired ones included (without secrets).
#[utoipa::path(get, path = "/api/tokens", tag = "tokens",
    responses((status = 200, body = Vec<TokenView>), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn list_tokens(
    State(state): State<SoulState>,
    caller: Caller,
) -> ApiResult<axum::Json<Vec<TokenView>>> {
    let tokens = state.store.list_api_tokens(caller.user.id).await?;
    Ok(axum::Json(tokens.iter().map(TokenView::from).collect()))
}

/// Creates an API token for the caller. The answer is the only place its secret appears.
#[utoipa::path(post, path = "/api/tokens", tag = "tokens", request_body = TokenInput,
    responses((status = 201, body = TokenCreated),
        (status = 422, description = "`invalid_field`: `name` (1–200 characters) or `expires_in_days` (1 to 3650)", body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn create_token(
    State(state): State<SoulState>,
    caller: Caller,
    Json(input): Json<TokenInput>,
) -> ApiResult<Response> {
    let token_name = name("name", &input.name)?;
    let now = state.clock.now();
    let expires_at = input
        .expires_in_days
        .map(|days| {
            if (1..=MAX_TOKEN_DAYS).contains(&days) {
                Ok(Timestamp(now.nanos().saturating_add(days * DAY_NS)))
            } else {
                Err(ApiError::invalid_field(
                    "expires_in_days",
                    format!("1 to {MAX_TOKEN_DAYS} days (omit it for a token that never expires)"),
                ))
            }
        })
        .transpose()?;
    let secret = generate_secret(SecretKind::ApiToken);
    let token = ApiToken {
        id: ApiTokenId::new(),
        user_id: caller.user.id,
        name: token_name,
        prefix: secret_display_prefix(&secret),
        token_hash: hash_secret(&secret),
        created_at: now,
        last_used_at: None,
        expires_at,
        revoked_at: None,
    };
    state.store.insert_api_token(&token).await?;
    tracing::info!(user_id = %caller.user.id, token_id = %token.id, "API token created");
    Ok(created_secret(TokenCreated {
        id: token.id.to_string(),
        name: token.name,
        prefix: token.prefix,
        token: secret,
        created_at: time(now),
        expires_at: expires_at.map(time),
    }))
}

/// Revokes one of the caller's tokens; it is refused everywhere from now on. Revoking again is
/// harmless; another user's token is `404 token_not_found`.
#[utoipa::path(delete, path = "/api/tokens/{id}", tag = "tokens",
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, description = "`token_not_found`", body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn revoke_token(
    State(state): State<SoulState>,
    caller: Caller,
    PathId(id): PathId<ApiTokenId>,
) -> ApiResult<StatusCode> {
    match state
        .store
        .revoke_api_token(caller.user.id, id, state.clock.now())
        .await
    {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(StoreError::NotFound(_)) => Err(token_not_found()),
        Err(err) => Err(err.into()),
    }
}

/// The workspace's ingest keys, newest first, revoked ones included (admin; without secrets).
#[utoipa::path(get, path = "/api/workspaces/{id}/ingest-keys", tag = "tokens",
    params(("id" = String, Path)),
    responses((status = 200, body = Vec<IngestKeyView>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn list_ingest_keys(
    State(state): State<SoulState>,
    caller: Caller,
    PathId(id): PathId<WorkspaceId>,
) -> ApiResult<axum::Json<Vec<IngestKeyView>>> {
    access::workspace(&state, &caller, id, Action::Administer).await?;
    let keys = state.store.list_ingest_keys(id).await?;
    Ok(axum::Json(keys.iter().map(IngestKeyView::from).collect()))
}

/// Creates an ingest key for OpenTelemetry exporters (admin): spans sent with it are recorded in
/// this workspace. The answer is the only place its secret appears.
#[utoipa::path(post, path = "/api/workspaces/{id}/ingest-keys", tag = "tokens", request_body = IngestKeyInput,
    params(("id" = String, Path)),
    responses((status = 201, body = IngestKeyCreated), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, description = "`invalid_field` (`name`: 1–200 characters)", body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn create_ingest_key(
    State(state): State<SoulState>,
    caller: Caller,
    PathId(id): PathId<WorkspaceId>,
    Json(input): Json<IngestKeyInput>,
) -> ApiResult<Response> {
    access::workspace(&state, &caller, id, Action::Administer).await?;
    let key_name = name("name", &input.name)?;
    let now = state.clock.now();
    let secret = generate_secret(SecretKind::IngestKey);
    let key = IngestKey {
        id: IngestKeyId::new(),
        workspace_id: id,
        name: key_name,
        prefix: secret_display_prefix(&secret),
        key_hash: hash_secret(&secret),
        created_by: Some(caller.user.id),
        created_at: now,
        last_used_at: None,
        revoked_at: None,
    };
    state.store.insert_ingest_key(&key).await?;
    tracing::info!(workspace_id = %id, key_id = %key.id, "ingest key created");
    Ok(created_secret(IngestKeyCreated {
        id: key.id.to_string(),
        name: key.name,
        prefix: key.prefix,
        key: secret,
        created_at: time(now),
    }))
}

/// Revokes an ingest key (admin); exports with it are refused from now on.
#[utoipa::path(delete, path = "/api/workspaces/{id}/ingest-keys/{key_id}", tag = "tokens",
    params(("id" = String, Path), ("key_id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody),
        (status = 404, description = "`workspace_not_found`, `ingest_key_not_found`", body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn revoke_ingest_key(
    State(state): State<SoulState>,
    caller: Caller,
    Path((workspace, key)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let workspace: WorkspaceId = parse_id(&workspace)?;
    let key: IngestKeyId = parse_id(&key)?;
    access::workspace(&state, &caller, workspace, Action::Administer).await?;
    match state
        .store
        .revoke_ingest_key(workspace, key, state.clock.now())
        .await
    {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(StoreError::NotFound(_)) => Err(ingest_key_not_found()),
        Err(err) => Err(err.into()),
    }
}
