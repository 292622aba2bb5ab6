//! Who is calling the control plane.
//!
//! Two credentials are accepted on every `/api` endpoint:
//! - the **session cookie** `prism_session` set at sign-in (HttpOnly, SameSite=Lax, Secure behind
//!   TLS). Requests that change anything must also carry the session's CSRF token in
//!   `X-CSRF-Token` (the browser reads it from the `prism_csrf` cookie); only its hash is stored;
//! - an **API token**: `Authorization: Bearer prism_pat_…` (no cookie, so no CSRF check).
//!
//! Sessions slide: a session seen again after [`TOUCH_AFTER_NS`] is extended by the configured
//! lifetime.

use axum::extract::FromRequestParts;
use axum::http::header::COOKIE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use prism_domain::session::{SecretKind, hash_secret};
use prism_domain::user::User;
use prism_domain::{ApiTokenId, Timestamp};

use super::error::ApiError;
use crate::SoulState;

pub const SESSION_COOKIE: &str = "prism_session";
pub const CSRF_COOKIE: &str = "prism_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A session's expiry is pushed forward at most once a minute.
const TOUCH_AFTER_NS: i64 = 60 * 1_000_000_000;

/// How the caller authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// A browser session (the hash of its cookie value).
    Session {
        token_hash: Vec<u8>,
    },
    ApiToken {
        token_id: ApiTokenId,
    },
}

/// An authenticated user. Extracting it fails with `401 unauthenticated`, or `403 csrf_failed`
/// for a cookie-authenticated mutation without the right CSRF token.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: User,
    pub via: Via,
}

/// The value of a cookie in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().trim_matches('"'))
        .filter(|v| !v.is_empty())
}

pub use prism_intercept::api::auth::{bearer, constant_time_eq};

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

impl FromRequestParts<SoulState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SoulState) -> Result<Self, ApiError> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let caller = authenticate(state, &parts.headers, &parts.method).await?;
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

/// A caller who may or may not be signed in (for pages and `logout`).
#[derive(Debug, Clone)]
pub struct MaybeCaller(pub Option<Caller>);

impl FromRequestParts<SoulState> for MaybeCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SoulState) -> Result<Self, ApiError> {
        match Caller::from_request_parts(parts, state).await {
            Ok(caller) => Ok(MaybeCaller(Some(caller))),
            Err(err) if err.code == "unauthenticated" => Ok(MaybeCaller(None)),
            Err(err) => Err(err),
        }
    }
}

async fn authenticate(
    state: &SoulState,
    headers: &HeaderMap,
    method: &Method,
) -> Result<Caller, ApiError> {
    let now = state.clock.now();
    if let Some(token) = bearer(headers) {
        if !token.starts_with(SecretKind::ApiToken.prefix()) {
            return Err(ApiError::unauthenticated());
        }
        let found = state
            .store
            .find_active_api_token(&hash_secret(token), now)
            .await?
            .ok_or_else(ApiError::unauthenticated)?;
        if found
            .last_used_at
            .is_none_or(|t| now.nanos() - t.nanos() > TOUCH_AFTER_NS)
        {
            let store = state.store.clone();
            tokio::spawn(async move {
                if let Err(err) = store.touch_api_token(found.id, now).await {
                    tracing::debug!(error = %err, "could not record API token use");
                }
            });
        }
        let user = state.store.get_user(found.user_id).await?;
        return Ok(Caller {
            user,
            via: Via::ApiToken { token_id: found.id },
        });
    }
    let Some(cookie_value) = cookie(headers, SESSION_COOKIE) else {
        return Err(ApiError::unauthenticated());
    };
    let token_hash = hash_secret(cookie_value);
    let session = state
        .store
        .find_session(&token_hash, now)
        .await?
        .ok_or_else(ApiError::unauthenticated)?;
    if !is_safe(method) {
        let presented = headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .unwrap_or_default();
        if presented.is_empty() || !constant_time_eq(&hash_secret(presented), &session.csrf_hash) {
            return Err(ApiError::forbidden(
                "csrf_failed",
                "this change needs the session's CSRF token in the X-CSRF-Token header",
            ));
        }
    }
    if now.nanos() - session.last_seen_at.nanos() > TOUCH_AFTER_NS {
        let store = state.store.clone();
        let hash = token_hash.clone();
        let expires = Timestamp(now.nanos().saturating_add(state.settings.session_ttl_ns()));
        tokio::spawn(async move {
            if let Err(err) = store.touch_session(&hash, now, expires).await {
                tracing::debug!(error = %err, "could not extend a session");
            }
        });
    }
    let user = state.store.get_user(session.user_id).await?;
    Ok(Caller {
        user,
        via: Via::Session { token_hash },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_several_headers() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, "a=1; prism_session=abc".parse().unwrap());
        headers.append(COOKIE, "prism_csrf=\"xyz\"".parse().unwrap());
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, CSRF_COOKIE), Some("xyz"));
        assert_eq!(cookie(&headers, "b"), None);
    }
}
