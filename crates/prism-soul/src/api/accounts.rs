//! Accounts and browser sessions.
//!
//! `POST /api/auth/signup`, `POST /api/auth/login`, `POST /api/auth/logout`, `GET/PATCH /api/me`,
//! `POST /api/me/password`.
//!
//! Signing in sets two cookies (built in one place, [`session_cookies`]): `prism_session`
//! (HttpOnly, SameSite=Lax) and `prism_csrf` (readable by the web UI's script, which echoes it in
//! `X-CSRF-Token`; SameSite=Strict). Both are `Secure` when configured so, or — by default — when the
//! proxy in front says the request came over TLS (`X-Forwarded-Proto: https`).
//!
//! A wrong password and an unknown email give the same answer after the same work (an argon2
//! verification either way). Failed sign-ins are counted per account and per client address
//! ([`crate::limit`]); past the limit every attempt is refused before any password is checked.

use std::net::{IpAddr, SocketAddr};

use axum::extract::connect_info::ConnectInfo;
use axum::extract::{FromRequestParts, State};
use axum::http::header::{CACHE_CONTROL, SET_COOKIE, USER_AGENT};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{AppendHeaders, IntoResponse, Response};
use prism_domain::user::{Email, User};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{CSRF_COOKIE, Caller, MaybeCaller, SESSION_COOKIE, Via};
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::Json;
use super::{name, time};
use crate::SoulState;
use crate::accounts::session::NewSession;
use crate::accounts::{self, CreateUserError, password};

pub fn routes() -> OpenApiRouter<SoulState> {
    OpenApiRouter::new()
        .routes(routes!(signup))
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(get_me, update_me))
        .routes(routes!(change_password))
}

/// An account as its owner sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub name: String,
    /// Instance administrator (the first account on an instance is one).
    pub is_admin: bool,
    pub created_at: String,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        Self {
            id: user.id.to_string(),
            email: user.email.as_str().to_owned(),
            name: user.name.clone(),
            is_admin: user.is_admin,
            created_at: time(user.created_at),
        }
    }
}

/// The answer to a sign-up or sign-in; the cookies come in `Set-Cookie`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignedIn {
    pub user: UserView,
    /// The session's CSRF token (also in the `prism_csrf` cookie): send it as `X-CSRF-Token` with
    /// every cookie-authenticated request that changes something.
    pub csrf_token: String,
}

/// The caller and how they authenticated.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeView {
    pub id: String,
    pub email: String,
    pub name: String,
    pub is_admin: bool,
    pub created_at: String,
    /// `session` (browser cookie) or `api_token`.
    #[schema(example = "session")]
    pub via: String,
}

impl MeView {
    fn new(user: &User, via: &Via) -> Self {
        Self {
            id: user.id.to_string(),
            email: user.email.as_str().to_owned(),
            name: user.name.clone(),
            is_admin: user.is_admin,
            created_at: time(user.created_at),
            via: match via {
                Via::Session { .. } => "session",
                Via::ApiToken { .. } => "api_token",
            }
            .to_owned(),
        }
    }
}

// Inputs carrying passwords deliberately do not implement `Debug`: nothing can print them.

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupInput {
    pub email: String,
    /// 8 to 1024 characters.
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
    /// 1–200 characters; defaults to the part of the email before `@`.
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginInput {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileInput {
    /// 1–200 characters.
    pub name: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordInput {
    pub current_password: String,
    /// 8 to 1024 characters.
    #[schema(min_length = 8, max_length = 1024)]
    pub new_password: String,
}

/// The client's address, when the server was started with connect info (both servers are).
struct Peer(Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.ip()),
        ))
    }
}

/// Whether the proxy in front says the client connected over TLS.
fn forwarded_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

/// The two `Set-Cookie` headers for a new session, or with `None` the ones that expire both
/// cookies. Every sign-in, sign-out and password change answers with these.
pub fn session_cookies(
    state: &SoulState,
    headers: &HeaderMap,
    issued: Option<&NewSession>,
) -> AppendHeaders<[(HeaderName, HeaderValue); 2]> {
    let secure = state
        .settings
        .secure_cookies
        .unwrap_or_else(|| forwarded_https(headers));
    let secure = if secure { "; Secure" } else { "" };
    let (token, csrf, max_age) = match issued {
        Some(issued) => (
            issued.token.as_str(),
            issued.csrf.as_str(),
            state.settings.session_ttl.as_secs(),
        ),
        None => ("", "", 0),
    };
    let value = |text: String| {
        let mut value = HeaderValue::from_str(&text).expect("cookies are visible ASCII");
        value.set_sensitive(true);
        value
    };
    AppendHeaders([
        (
            SET_COOKIE,
            value(format!(
                "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
            )),
        ),
        (
            SET_COOKIE,
            value(format!(
                "{CSRF_COOKIE}={csrf}; Path=/; SameSite=Strict; Max-Age={max_age}{secure}"
            )),
        ),
    ])
}

/// Starts and stores a session for `user`.
async fn start_session(
    state: &SoulState,
    headers: &HeaderMap,
    user: &User,
) -> ApiResult<NewSession> {
    let issued = new_session(state, headers, user);
    state.store.insert_session(&issued.session).await?;
    Ok(issued)
}

fn new_session(state: &SoulState, headers: &HeaderMap, user: &User) -> NewSession {
    NewSession::new(
        user.id,
        state.clock.now(),
        state.settings.session_ttl_ns(),
        headers.get(USER_AGENT).and_then(|v| v.to_str().ok()),
    )
}

/// The answer of a successful sign-up or sign-in: the user, the CSRF token and the cookies.
fn signed_in(
    state: &SoulState,
    headers: &HeaderMap,
    status: StatusCode,
    user: &User,
    issued: &NewSession,
) -> Response {
    let body = SignedIn {
        user: UserView::from(user),
        csrf_token: issued.csrf.clone(),
    };
    (
        status,
        [(CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        session_cookies(state, headers, Some(issued)),
        axum::Json(body),
    )
        .into_response()
}

/// A `spawn_blocking` task (password hashing) that panicked.
fn blocking_failed(err: tokio::task::JoinError) -> ApiError {
    tracing::error!(error = %err, "password hashing task failed");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "an internal error occurred; it has been logged",
    )
}

fn weak_password(field: &'static str) -> ApiError {
    ApiError::field_error(
        "weak_password",
        field,
        format!(
            "{field}: the password must be {} to {} characters",
            password::MIN_LEN,
            password::MAX_LEN
        ),
    )
}

fn invalid_credentials() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_credentials",
        "the email or password is wrong",
    )
}

fn too_many_attempts(wait_secs: u64) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_attempts",
        format!("too many failed sign-in attempts; try again in {wait_secs} s"),
    )
    .with_retry_after(wait_secs)
}

/// The limiter key of an account: its normalized email (or the raw text, normalized alike, when it
/// is not an email, so malformed attempts are counted too).
fn account_key(email: Option<&Email>, raw: &str) -> String {
    match email {
        Some(email) => format!("email:{email}"),
        None => format!("email:{}", raw.trim().to_lowercase()),
    }
}

/// Creates an account and signs it in. The first account on an instance becomes instance admin;
/// with sign-up closed only that first one can be created.
#[utoipa::path(post, path = "/api/auth/signup", tag = "accounts", request_body = SignupInput,
    responses(
        (status = 201, body = SignedIn, description = "Signed in: `Set-Cookie` carries `prism_session` and `prism_csrf`",
            headers(("set-cookie" = String, description = "`prism_session` (HttpOnly, SameSite=Lax) and `prism_csrf` (SameSite=Strict); `Secure` behind TLS"))),
        (status = 403, description = "`signup_closed`: sign-up is closed and the instance has accounts", body = ErrorBody),
        (status = 409, description = "`email_taken` (emails are case-insensitive)", body = ErrorBody),
        (status = 422, description = "`invalid_email` (field `email`); `weak_password` (field `password`): 8 to 1024 characters; `invalid_field` (`name`: 1–200 characters)", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`: too many sign-ups from this address; wait `Retry-After` seconds", body = ErrorBody)),
    security(()))]
async fn signup(
    State(state): State<SoulState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    Json(input): Json<SignupInput>,
) -> ApiResult<Response> {
    let signup_closed =
        || ApiError::forbidden("signup_closed", "sign-up is closed on this instance");
    // A sign-up that gets as far as hashing costs an argon2 hash: those are limited per client
    // address like failed sign-ins, whether they succeed or not.
    let now = state.clock.now();
    let address = peer.map(|ip| format!("signup:{ip}"));
    let keys: Vec<&str> = address.as_deref().into_iter().collect();
    state
        .login_limiter
        .check(&keys, now)
        .map_err(too_many_attempts)?;
    // Refused before any validation or hashing; the store re-checks atomically on insert.
    if !state.settings.signup_open && state.store.count_users().await? > 0 {
        return Err(signup_closed());
    }
    let display_name = match input.name.as_deref() {
        Some(raw) if !raw.trim().is_empty() => name("name", raw)?,
        _ => String::new(),
    };
    let created = accounts::sign_up(
        state.store.as_ref(),
        state.clock.as_ref(),
        &input.email,
        &display_name,
        &input.password,
        state.settings.signup_open,
    )
    .await;
    if matches!(created, Ok(_) | Err(CreateUserError::EmailTaken)) {
        state.login_limiter.record_failure(&keys, now);
    }
    let user = created.map_err(|err| match err {
        CreateUserError::Email(_) => ApiError::field_error(
            "invalid_email",
            "email",
            "email: not an email address (local@domain, at most 254 characters)",
        ),
        CreateUserError::Password(_) => weak_password("password"),
        CreateUserError::EmailTaken => {
            ApiError::conflict("email_taken", "an account with this email already exists")
                .with_field("email")
        }
        CreateUserError::SignupClosed => signup_closed(),
        CreateUserError::Store(err) => err.into(),
    })?;
    tracing::info!(user_id = %user.id, is_admin = user.is_admin, "account created");
    let issued = start_session(&state, &headers, &user).await?;
    Ok(signed_in(
        &state,
        &headers,
        StatusCode::CREATED,
        &user,
        &issued,
    ))
}

/// Signs in with email and password. Failed attempts are limited per account and per client
/// address; past the limit the answer is `429 too_many_attempts` with `Retry-After`, whatever the
/// password.
#[utoipa::path(post, path = "/api/auth/login", tag = "accounts", request_body = LoginInput,
    responses(
        (status = 200, body = SignedIn, description = "Signed in: `Set-Cookie` carries `prism_session` and `prism_csrf`",
            headers(("set-cookie" = String, description = "`prism_session` (HttpOnly, SameSite=Lax) and `prism_csrf` (SameSite=Strict); `Secure` behind TLS"))),
        (status = 401, description = "`invalid_credentials`: unknown email or wrong password (indistinguishable)", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`; wait `Retry-After` seconds", body = ErrorBody,
            headers(("retry-after" = u64, description = "Seconds until attempts are accepted again")))),
    security(()))]
async fn login(
    State(state): State<SoulState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    Json(input): Json<LoginInput>,
) -> ApiResult<Response> {
    let now = state.clock.now();
    let email = Email::parse(&input.email).ok();
    let account = account_key(email.as_ref(), &input.email);
    let address = peer.map(|ip| format!("ip:{ip}"));
    let keys: Vec<&str> = std::iter::once(account.as_str())
        .chain(address.as_deref())
        .collect();
    state
        .login_limiter
        .check(&keys, now)
        .map_err(too_many_attempts)?;

    let user = match &email {
        Some(email) => state.store.find_user_by_email(email).await?,
        None => None,
    };
    // Unknown accounts are verified against a dummy hash, so both failures cost the same. A
    // password longer than any accepted one cannot match and is not hashed at all (that does not
    // depend on the account).
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let presented = input.password;
    let verified = if presented.chars().count() > password::MAX_LEN {
        false
    } else {
        tokio::task::spawn_blocking(move || password::verify(&presented, stored.as_deref()))
            .await
            .map_err(blocking_failed)?
    };
    let Some(user) = user.filter(|_| verified) else {
        state.login_limiter.record_failure(&keys, now);
        return Err(invalid_credentials());
    };
    state.login_limiter.clear(&account);
    let issued = start_session(&state, &headers, &user).await?;
    Ok(signed_in(&state, &headers, StatusCode::OK, &user, &issued))
}

/// Signs out: ends the session (if the request has one) and expires both cookies. A request with a
/// live session cookie needs the CSRF header like any change (so other sites cannot sign users
/// out); without a session — none, expired, or an API token — it only clears the cookies.
#[utoipa::path(post, path = "/api/auth/logout", tag = "accounts",
    responses(
        (status = 204, description = "Signed out; both cookies expired (`Max-Age=0`)",
            headers(("set-cookie" = String, description = "`prism_session` and `prism_csrf` with `Max-Age=0`"))),
        (status = 403, description = "`csrf_failed`: a live session cookie without its `X-CSRF-Token`", body = ErrorBody)),
    security(("session" = []), ()))]
async fn logout(
    State(state): State<SoulState>,
    headers: HeaderMap,
    MaybeCaller(caller): MaybeCaller,
) -> ApiResult<Response> {
    if let Some(Caller {
        via: Via::Session { token_hash },
        ..
    }) = &caller
    {
        state.store.delete_session(token_hash).await?;
    }
    Ok((
        StatusCode::NO_CONTENT,
        session_cookies(&state, &headers, None),
    )
        .into_response())
}

/// The caller's account, and whether they came with a session or an API token.
#[utoipa::path(get, path = "/api/me", tag = "accounts",
    responses((status = 200, body = MeView), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn get_me(caller: Caller) -> axum::Json<MeView> {
    axum::Json(MeView::new(&caller.user, &caller.via))
}

/// Changes the caller's display name.
#[utoipa::path(patch, path = "/api/me", tag = "accounts", request_body = ProfileInput,
    responses((status = 200, body = MeView),
        (status = 422, description = "`invalid_field` (`name`: 1–200 characters)", body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn update_me(
    State(state): State<SoulState>,
    caller: Caller,
    Json(input): Json<ProfileInput>,
) -> ApiResult<axum::Json<MeView>> {
    let new_name = name("name", &input.name)?;
    state
        .store
        .update_user_name(caller.user.id, &new_name, state.clock.now())
        .await?;
    let user = state.store.get_user(caller.user.id).await?;
    Ok(axum::Json(MeView::new(&user, &caller.via)))
}

/// Changes the caller's password and signs every session out. When the change comes from a browser
/// session, that browser gets a fresh session (new cookies) and stays signed in. API tokens keep
/// working (revoke them at `/api/tokens`). Wrong current passwords count as failed sign-ins.
#[utoipa::path(post, path = "/api/me/password", tag = "accounts", request_body = PasswordInput,
    responses(
        (status = 204, description = "Changed; other sessions ended. From a session: new cookies in `Set-Cookie`",
            headers(("set-cookie" = String, description = "A fresh `prism_session` and `prism_csrf` (session callers only)"))),
        (status = 403, description = "`wrong_password` (field `current_password`)", body = ErrorBody),
        (status = 422, description = "`weak_password` (field `new_password`): 8 to 1024 characters", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`", body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn change_password(
    State(state): State<SoulState>,
    headers: HeaderMap,
    caller: Caller,
    Json(input): Json<PasswordInput>,
) -> ApiResult<Response> {
    let now = state.clock.now();
    let account = account_key(Some(&caller.user.email), "");
    state
        .login_limiter
        .check(&[&account], now)
        .map_err(too_many_attempts)?;
    password::check_strength(&input.new_password).map_err(|_| weak_password("new_password"))?;
    let stored = caller.user.password_hash.clone();
    let PasswordInput {
        current_password,
        new_password,
    } = input;
    let new_hash = tokio::task::spawn_blocking(move || {
        (current_password.chars().count() <= password::MAX_LEN
            && password::verify(&current_password, Some(&stored)))
        .then(|| password::hash(&new_password))
    })
    .await
    .map_err(blocking_failed)?;
    let Some(new_hash) = new_hash else {
        state.login_limiter.record_failure(&[&account], now);
        return Err(ApiError::forbidden(
            "wrong_password",
            "current_password: the current password is wrong",
        )
        .with_field("current_password"));
    };
    let replacement = matches!(caller.via, Via::Session { .. })
        .then(|| new_session(&state, &headers, &caller.user));
    let ended = state
        .store
        .change_password(
            caller.user.id,
            &new_hash,
            now,
            replacement.as_ref().map(|r| &r.session),
        )
        .await?;
    state.login_limiter.clear(&account);
    tracing::info!(user_id = %caller.user.id, sessions_ended = ended, "password changed");
    Ok(match replacement {
        Some(issued) => (
            StatusCode::NO_CONTENT,
            session_cookies(&state, &headers, Some(&issued)),
        )
            .into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}
