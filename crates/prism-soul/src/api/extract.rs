//! Request-body and path extractors whose failures are [`ApiError`]s with stable codes (axum's own
//! rejections are plain text).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// The largest JSON body the control plane accepts (saved requests may carry `.proto` files and
/// multipart file parts).
pub const MAX_BODY: usize = 8 * 1024 * 1024;

/// A JSON body. Malformed JSON is `400 invalid_json`; a value of the wrong shape is
/// `422 invalid_field` naming the field (`headers[2].key`).
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|ct| {
                let ct = ct.split(';').next().unwrap_or_default().trim();
                ct.eq_ignore_ascii_case("application/json") || ct.ends_with("+json")
            });
        if !json_type {
            return Err(ApiError::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json",
            ));
        }
        // The router allows bodies up to MAX_BODY (`DefaultBodyLimit` in `crate::router`).
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    e.status(),
                    "body_too_large",
                    format!("the body is larger than {MAX_BODY} bytes"),
                )
            } else {
                ApiError::new(
                    e.status(),
                    "invalid_body",
                    format!("could not read the body: {e}"),
                )
            }
        })?;
        parse_json(&bytes).map(Json)
    }
}

/// Parses JSON text into `T` with the error rules of [`Json`].
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize(&mut de) {
        Ok(value) => {
            de.end().map_err(|e| {
                ApiError::bad_request("invalid_json", format!("the body is not valid JSON: {e}"))
            })?;
            Ok(value)
        }
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                Err(ApiError::bad_request(
                    "invalid_json",
                    format!("the body is not valid JSON: {inner}"),
                ))
            } else {
                Err(ApiError::invalid_field(
                    field_path(&path, &inner.to_string()),
                    inner.to_string(),
                ))
            }
        }
    }
}

/// The JSON path a deserialization error is about. serde reports a missing field at the object
/// that should hold it, so its name is appended: `name`, `headers[0].value`.
pub fn field_path(path: &str, message: &str) -> String {
    let named = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next())
        .filter(|name| !name.is_empty());
    match (path, named) {
        (".", Some(name)) => name.to_owned(),
        (".", None) => "body".to_owned(),
        (path, Some(name)) => format!("{path}.{name}"),
        (path, None) => path.to_owned(),
    }
}

/// One id from the path (`/api/collections/{id}`); a malformed id is `400 invalid_id`.
#[derive(Debug, Clone, Copy)]
pub struct PathId<T>(pub T);

impl<T, S> FromRequestParts<S> for PathId<T>
where
    T: std::str::FromStr + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|e| ApiError::bad_request("invalid_path", e.to_string()))?;
        raw.parse()
            .map(PathId)
            .map_err(|_| ApiError::bad_request("invalid_id", format!("{raw:?} is not an id")))
    }
}

/// Query parameters; a malformed one is `400 invalid_query` naming it.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| Query(q.0))
            .map_err(|e| {
                ApiError::bad_request(
                    "invalid_query",
                    format!("query {query:?}: {}", e.body_text()),
                )
            })
    }
}

/// Like [`Json`], but an empty body stands for `T::default()` — for actions whose options are all
/// optional (`POST /api/collections/{id}/duplicate`), so a bare `POST` works.
#[derive(Debug)]
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let headers = req.headers();
        let declared_empty = headers
            .get(axum::http::header::CONTENT_LENGTH)
            .is_some_and(|len| len.as_bytes() == b"0");
        let no_body = !headers.contains_key(axum::http::header::CONTENT_LENGTH)
            && !headers.contains_key(axum::http::header::TRANSFER_ENCODING);
        if declared_empty || no_body {
            return Ok(OptionalJson(T::default()));
        }
        Json::<T>::from_request(req, state)
            .await
            .map(|Json(value)| OptionalJson(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Row {
        key: String,
        value: String,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Input {
        name: String,
        #[serde(default)]
        rows: Vec<Row>,
    }

    fn field(json: &str) -> (u16, Option<String>) {
        let err = parse_json::<Input>(json.as_bytes()).unwrap_err();
        (err.status.as_u16(), err.field)
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(field("{}"), (422, Some("name".into())));
        assert_eq!(field(r#"{"name": 1}"#), (422, Some("name".into())));
        assert_eq!(
            field(r#"{"name": "a", "rows": [{"key": "k"}]}"#),
            (422, Some("rows[0].value".into()))
        );
        assert_eq!(
            field(r#"{"name": "a", "colour": 1}"#),
            (422, Some("colour".into()))
        );
        assert_eq!(field("[]"), (422, Some("body".into())));
        assert_eq!(field(r#"{"name": "#), (400, None));
    }
}
