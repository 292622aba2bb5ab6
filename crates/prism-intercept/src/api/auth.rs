//! Who is calling the data plane, and what they may do.
//!
//! The data plane is not an open proxy: every call that runs a request needs either
//! - a user's **API token** (`Authorization: Bearer prism_pat_…`), and the user must be an editor
//!   (or admin) of the workspace the execution is recorded in; or
//! - the control plane's **service credential** (`Authorization: Bearer prism_svc_…`), derived
//!   from the shared secret key, with the workspace (already authorized by the control plane) in
//!   `X-Prism-Workspace` and the acting user in `X-Prism-User`.
//!
//! OpenTelemetry ingest is authorized separately ([`authorize_ingest`]) by workspace ingest keys.
//!
//! Only hashes of secrets are stored or compared; the service credential is compared in constant
//! time.

use std::net::SocketAddr;

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use prism_domain::request::SavedRequest;
use prism_domain::session::{SecretKind, hash_secret};
use prism_domain::{ApiTokenId, Role, Timestamp, UserId, WorkspaceId};
use sha2::{Digest, Sha256};

use super::cache::CachedToken;
use super::error::ApiError;
use crate::InterceptState;

/// The header carrying the workspace of a service-credential call.
pub const WORKSPACE_HEADER: &str = "x-prism-workspace";
/// The header carrying the acting user of a service-credential call.
pub const USER_HEADER: &str = "x-prism-user";
/// An alternative to `Authorization` for ingest keys, for exporters that set one header only.
pub const INGEST_KEY_HEADER: &str = "x-prism-ingest-key";

/// The prefix of the service credential.
pub const SERVICE_PREFIX: &str = "prism_svc_";

/// API tokens' `last_used_at` is refreshed at most this often, so authenticating does not turn
/// every proxied request into a database write.
const TOUCH_INTERVAL_NS: i64 = 60 * 1_000_000_000;

/// The service credential both planes derive from the shared secret key.
pub fn service_credential(secret_key: &str) -> String {
    let digest = Sha256::digest(format!("prism service credential v1\0{secret_key}").as_bytes());
    let mut out = String::from(SERVICE_PREFIX);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    User {
        user_id: UserId,
        token_id: ApiTokenId,
    },
    Service {
        workspace_id: WorkspaceId,
        acting_user: Option<UserId>,
    },
}

impl Caller {
    pub fn user_id(&self) -> Option<UserId> {
        match self {
            Caller::User { user_id, .. } => Some(*user_id),
            Caller::Service { acting_user, .. } => *acting_user,
        }
    }
}

/// The token of an `Authorization: Bearer …` header (scheme case-insensitive), if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Compares secrets (or their hashes) without an early exit that would leak a matching prefix.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn header_id<T: std::str::FromStr>(
    headers: &HeaderMap,
    name: &'static str,
) -> Result<Option<T>, ApiError> {
    match headers.get(name) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .map(Some)
            .ok_or_else(|| ApiError::bad_request("invalid_header", format!("{name} is not an id"))),
    }
}

/// Authenticates a call that runs requests.
pub async fn authenticate(state: &InterceptState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let token = bearer(headers).ok_or_else(ApiError::missing_credentials)?;
    if token.starts_with(SERVICE_PREFIX) {
        let expected = state
            .settings
            .service_credential_hash
            .as_deref()
            .ok_or_else(ApiError::invalid_credentials)?;
        if !constant_time_eq(&hash_secret(token), expected) {
            return Err(ApiError::invalid_credentials());
        }
        let workspace_id = header_id(headers, WORKSPACE_HEADER)?.ok_or_else(|| {
            ApiError::bad_request(
                "workspace_required",
                format!("service calls must name the workspace in {WORKSPACE_HEADER}"),
            )
        })?;
        let acting_user = header_id(headers, USER_HEADER)?;
        return Ok(Caller::Service {
            workspace_id,
            acting_user,
        });
    }
    if !token.starts_with(SecretKind::ApiToken.prefix()) {
        return Err(ApiError::invalid_credentials());
    }
    let hash = hash_secret(token);
    if let Some(cached) = state.auth_cache.token(&hash, state.settings.auth_fresh) {
        return Ok(Caller::User {
            user_id: cached.user_id,
            token_id: cached.token_id,
        });
    }
    let now = state.clock.now();
    let found = match state.store.find_active_api_token(&hash, now).await {
        Ok(found) => found.ok_or_else(ApiError::invalid_credentials)?,
        Err(err) if err.is_transient() => {
            // The database is down: a token seen recently still works (see `cache`).
            let cached = state
                .auth_cache
                .token(&hash, state.settings.auth_stale_if_error)
                .ok_or_else(|| ApiError::from(err))?;
            return Ok(Caller::User {
                user_id: cached.user_id,
                token_id: cached.token_id,
            });
        }
        Err(err) => return Err(err.into()),
    };
    state.auth_cache.remember_token(
        hash,
        CachedToken {
            user_id: found.user_id,
            token_id: found.id,
        },
    );
    let stale = found
        .last_used_at
        .is_none_or(|t| now.nanos() - t.nanos() > TOUCH_INTERVAL_NS);
    if stale {
        // Best effort and off the request path: a lost touch only delays "last used".
        let store = state.store.clone();
        tokio::spawn(async move {
            if let Err(err) = store.touch_api_token(found.id, now).await {
                tracing::debug!(error = %err, "could not record API token use");
            }
        });
    }
    Ok(Caller::User {
        user_id: found.user_id,
        token_id: found.id,
    })
}

/// Decides the workspace an execution is recorded in and checks the caller may run requests
/// there (editor or admin). The workspace is, in order: the one the caller named, the saved
/// request's, or the user's only workspace.
pub async fn workspace_for_run(
    state: &InterceptState,
    caller: &Caller,
    requested: Option<WorkspaceId>,
    saved: Option<&SavedRequest>,
) -> Result<WorkspaceId, ApiError> {
    let mismatch = |ws: WorkspaceId| {
        ApiError::bad_request(
            "workspace_mismatch",
            format!("the saved request does not belong to workspace {ws}"),
        )
    };
    match caller {
        Caller::Service { workspace_id, .. } => {
            if requested.is_some_and(|ws| ws != *workspace_id) {
                return Err(ApiError::bad_request(
                    "workspace_mismatch",
                    format!("workspace_id differs from {WORKSPACE_HEADER}"),
                ));
            }
            if saved.is_some_and(|r| r.workspace_id != *workspace_id) {
                return Err(mismatch(*workspace_id));
            }
            Ok(*workspace_id)
        }
        Caller::User { user_id, .. } => {
            let workspace = match (requested, saved) {
                (Some(ws), Some(r)) if r.workspace_id != ws => return Err(mismatch(ws)),
                (Some(ws), _) => ws,
                (None, Some(r)) => r.workspace_id,
                (None, None) => {
                    let mut mine = state.store.list_workspaces_for_user(*user_id).await?;
                    if mine.len() != 1 {
                        return Err(ApiError::bad_request(
                            "workspace_required",
                            format!(
                                "you belong to {} workspaces: say which one with workspace_id",
                                mine.len()
                            ),
                        ));
                    }
                    mine.remove(0).0.id
                }
            };
            require_role(state, *user_id, workspace, Role::Editor).await?;
            Ok(workspace)
        }
    }
}

/// Fails unless `user` has at least `needed` in `workspace`. Non-members get "not found", so
/// workspace ids cannot be probed.
pub async fn require_role(
    state: &InterceptState,
    user: UserId,
    workspace: WorkspaceId,
    needed: Role,
) -> Result<Role, ApiError> {
    let role = match state
        .auth_cache
        .role(workspace, user, state.settings.auth_fresh)
    {
        Some(role) => role,
        None => match state.store.find_membership(workspace, user).await {
            Ok(Some(membership)) => {
                state
                    .auth_cache
                    .remember_role(workspace, user, membership.role);
                membership.role
            }
            Ok(None) => {
                return Err(ApiError::not_found(
                    "workspace_not_found",
                    format!("no workspace {workspace}"),
                ));
            }
            Err(err) if err.is_transient() => state
                .auth_cache
                .role(workspace, user, state.settings.auth_stale_if_error)
                .ok_or_else(|| ApiError::from(err))?,
            Err(err) => return Err(err.into()),
        },
    };
    if role < needed {
        return Err(ApiError::forbidden(format!(
            "this needs the {needed} role in the workspace; you are {role}"
        )));
    }
    Ok(role)
}

/// Why an ingest call was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestDenied {
    Missing,
    Invalid,
    Unavailable,
}

/// Authorizes an OpenTelemetry export: a workspace ingest key (as a bearer token or in
/// `x-prism-ingest-key`) attributes the spans to its workspace. Without a key the call is allowed
/// only when the server relaxes ingest for loopback clients (`prism up`) and the peer is on
/// loopback; such spans are attributed through the executions of their trace, if any.
pub async fn authorize_ingest(
    state: &InterceptState,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    now: Timestamp,
) -> Result<Option<WorkspaceId>, IngestDenied> {
    let key = headers
        .get(INGEST_KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .or_else(|| bearer(headers));
    let Some(key) = key else {
        let loopback = peer.is_some_and(|p| p.ip().is_loopback());
        return if state.settings.loopback_ingest_without_key && loopback {
            Ok(None)
        } else {
            Err(IngestDenied::Missing)
        };
    };
    if !key.starts_with(SecretKind::IngestKey.prefix()) {
        return Err(IngestDenied::Invalid);
    }
    let found = state
        .store
        .find_active_ingest_key(&hash_secret(key))
        .await
        .map_err(|err| {
            tracing::warn!(error = %err, "could not check an ingest key");
            IngestDenied::Unavailable
        })?
        .ok_or(IngestDenied::Invalid)?;
    if found
        .last_used_at
        .is_none_or(|t| now.nanos() - t.nanos() > TOUCH_INTERVAL_NS)
    {
        let store = state.store.clone();
        tokio::spawn(async move {
            if let Err(err) = store.touch_ingest_key(found.id, now).await {
                tracing::debug!(error = %err, "could not record ingest key use");
            }
        });
    }
    Ok(Some(found.workspace_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_parsed_case_insensitively() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer(&headers), None);
        headers.insert(AUTHORIZATION, "bearer  abc ".parse().unwrap());
        assert_eq!(bearer(&headers), Some("abc"));
        headers.insert(AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer(&headers), None);
        headers.insert(AUTHORIZATION, "Bearer ".parse().unwrap());
        assert_eq!(bearer(&headers), None);
    }

    #[test]
    fn service_credential_is_derived_and_compared_safely() {
        let a = service_credential("secret-one");
        assert!(a.starts_with(SERVICE_PREFIX) && a.len() == SERVICE_PREFIX.len() + 64);
        assert_eq!(a, service_credential("secret-one"));
        assert_ne!(a, service_credential("secret-two"));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}

/// The data plane's [`crate::otlp::IngestAuthorizer`]: ingest keys from the store, and the
/// loopback relaxation of `prism up` ([`authorize_ingest`]).
#[derive(Debug, Clone)]
pub struct KeyAuthorizer {
    pub state: InterceptState,
}

#[async_trait::async_trait]
impl crate::otlp::IngestAuthorizer for KeyAuthorizer {
    async fn authorize(
        &self,
        headers: &HeaderMap,
        peer: Option<SocketAddr>,
    ) -> Result<Option<WorkspaceId>, crate::otlp::IngestRejection> {
        use crate::otlp::IngestRejection;
        authorize_ingest(&self.state, headers, peer, self.state.clock.now())
            .await
            .map_err(|denied| match denied {
                IngestDenied::Missing => IngestRejection::MissingCredentials,
                IngestDenied::Invalid => IngestRejection::InvalidCredentials,
                IngestDenied::Unavailable => IngestRejection::Unavailable,
            })
    }
}
