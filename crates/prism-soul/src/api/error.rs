//! The control plane's error answers: `{"code", "message", "request_id", "field"?, "details"?}`
//! with an HTTP status. Codes are stable snake_case and part of the API contract; messages are for people.

use std::borrow::Cow;

use axum::Json;
use axum::http::StatusCode;
use axum::http::header::RETRY_AFTER;
use axum::response::{IntoResponse, Response};
use prism_store::{Conflict, StoreError};
use serde::Serialize;
use utoipa::ToSchema;

/// The JSON body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable, snake_case.
    pub code: String,
    /// For people; may change.
    pub message: String,
    /// The request's id (also in the `X-Request-Id` header and in the server's logs).
    pub request_id: Option<String>,
    /// For validation errors: the offending field (a JSON path such as `headers[2].key`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Machine-readable specifics of some errors, e.g. `{"variables": ["a", "b"]}` for
    /// `unknown_variables`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: Cow<'static, str>,
    pub message: String,
    pub field: Option<String>,
    /// Serialized as `details` when present (boxed: errors travel in every `Result`).
    pub details: Option<Box<serde_json::Value>>,
    /// Seconds, sent as `Retry-After`.
    pub retry_after: Option<u64>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            field: None,
            details: None,
            retry_after: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// A 422 naming the field that is wrong.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        Self {
            field: Some(field.clone()),
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                format!("{field}: {}", message.into()),
            )
        }
    }

    /// Like [`Self::invalid_field`] with a more specific code (`weak_password`, `invalid_email`…).
    pub fn field_error(
        code: &'static str,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            field: Some(field.into()),
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
        }
    }

    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "sign in, or send `Authorization: Bearer <API token>`",
        )
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(Box::new(details));
        self
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "an internal error occurred; it has been logged",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(what) => {
                ApiError::not_found("not_found", format!("{what} not found"))
            }
            StoreError::Conflict(conflict) => {
                let code = match &conflict {
                    Conflict::EmailTaken => "email_taken",
                    Conflict::AlreadyMember => "already_member",
                    Conflict::LastAdmin => "last_admin",
                    Conflict::Cycle => "move_cycle",
                    Conflict::OtherWorkspace(_) => "other_workspace",
                    Conflict::MissingReference(_) => "missing_reference",
                    Conflict::InUse(_) => "in_use",
                    Conflict::Duplicate(_) => "duplicate",
                };
                ApiError::conflict(code, conflict.to_string())
            }
            err if err.is_transient() => {
                tracing::warn!(error = %err, "database unavailable while serving a request");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "database_unavailable",
                    "the database is unavailable; retry shortly",
                )
                .with_retry_after(2)
            }
            err => {
                tracing::error!(error = %err, "database error while serving a request");
                ApiError::internal()
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            code: self.code.into_owned(),
            message: self.message,
            request_id: prism_intercept::telemetry::current_request_id(),
            field: self.field,
            details: self.details.map(|d| *d),
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after
            && let Ok(value) = seconds.to_string().parse()
        {
            response.headers_mut().insert(RETRY_AFTER, value);
        }
        response
    }
}
