//! OTLP/HTTP: `POST /v1/traces`.
//!
//! Order of checks: content type (only to know how to answer), credentials (401 before any body
//! is read), then 415 for an unknown content type or encoding, the body up to the wire limit (413),
//! inflation and decoding (413 / 400), conversion, and the acknowledged write (200, or 429 / 503
//! with `Retry-After`).
//!
//! Replies, as the OTLP/HTTP specification prescribes, use the request's encoding: protobuf for
//! `application/x-protobuf` requests, JSON (proto3 mapping) otherwise — including requests with an
//! unknown content type, since JSON is the one a person can read. Success is an
//! `ExportTraceServiceResponse`; failure (4xx/5xx) is a `google.rpc.Status`:
//!
//! ```json
//! {"code": 3, "message": "the body is not valid gzip: …",
//!  "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "invalid_gzip", "domain": "prism"}]}
//! ```
//!
//! `code` is the matching gRPC code (the spec says clients must not act on it); `reason` is our
//! stable code. Retryable failures also carry a `google.rpc.RetryInfo` detail and the
//! `Retry-After` header (whole seconds), which is what OTLP exporters read.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http_body_util::BodyExt;
use prost::Message;

use super::decode::{Encoding, Format, decode_body};
use super::status::rpc_status;
use super::{IngestError, OtlpIngest, OtlpLimits, json};

/// Bodies above this size are decoded on the blocking pool rather than on a runtime worker.
const INLINE_DECODE_BYTES: usize = 1024 * 1024;

/// The OTLP/HTTP routes: `POST /v1/traces` (other methods get axum's 405).
pub fn http_routes(ingest: OtlpIngest) -> Router {
    Router::new()
        .route("/v1/traces", post(export_traces))
        .with_state(ingest)
}

/// `POST /v1/traces`
#[utoipa::path(post, path = "/v1/traces",
    request_body(content = Object, description = "An OTLP `ExportTraceServiceRequest`, as protobuf (`application/x-protobuf`) or OTLP/JSON (`application/json`)", content_type = "application/x-protobuf"),
    params(("Content-Encoding" = Option<String>, Header, description = "`gzip` or `identity`")),
    responses(
        (status = 200, description = "Committed: an `ExportTraceServiceResponse` (with `partial_success` for rejected spans), in the request's encoding", body = Object),
        (status = 400, description = "`invalid_otlp_body` / `invalid_gzip` (a `google.rpc.Status` with an `ErrorInfo` reason)", body = Object),
        (status = 401, description = "`missing_credentials` / `invalid_credentials`: send a workspace ingest key", body = Object),
        (status = 413, description = "`body_too_large`", body = Object),
        (status = 415, description = "`unsupported_media_type` / `unsupported_content_encoding`", body = Object),
        (status = 429, description = "`overloaded`, with `Retry-After`", body = Object),
        (status = 503, description = "`storage_unavailable` / `ingest_unavailable` / `shutting_down`, with `Retry-After`", body = Object),
    ),
    security(("bearer" = [])),
    tag = "traces"
)]
pub async fn export_traces(State(ingest): State<OtlpIngest>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let format = Format::from_headers(&parts.headers);
    let reply = format.as_ref().copied().unwrap_or(Format::Json);
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0);
    match handle(&ingest, &parts.headers, peer, format, body).await {
        Ok(response) => success(reply, &response),
        Err(err) => failure(reply, &err, &ingest.limits),
    }
}

async fn handle(
    ingest: &OtlpIngest,
    headers: &axum::http::HeaderMap,
    peer: Option<SocketAddr>,
    format: Result<Format, IngestError>,
    body: Body,
) -> Result<super::ExportTraceServiceResponse, IngestError> {
    let checked = async {
        let workspace = ingest.authorizer.authorize(headers, peer).await?;
        Ok::<_, IngestError>((workspace, format?, Encoding::from_headers(headers)?))
    };
    let (workspace, format, encoding) = match checked.await {
        Ok(checked) => checked,
        Err(err) => {
            drain(body).await;
            return Err(err);
        }
    };
    let body = read_body(body, headers, ingest.limits.max_body_bytes).await?;
    let limits = ingest.limits.clone();
    let size = body.len();
    let decode = move || {
        decode_body(&body, format, encoding, &limits)
            .map(|request| super::convert::to_spans(request, workspace))
    };
    let converted = if size > INLINE_DECODE_BYTES {
        tokio::task::spawn_blocking(decode)
            .await
            .map_err(|_| IngestError::InvalidBody("decoding failed".into()))??
    } else {
        decode()?
    };
    ingest.commit(converted.spans).await?;
    Ok(converted.response)
}

fn body_len_hint(headers: &axum::http::HeaderMap) -> usize {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX)
}

/// Reads the whole body, refusing more than `limit` bytes (early, from `Content-Length`, when the
/// client announces it).
async fn read_body(
    mut body: Body,
    headers: &axum::http::HeaderMap,
    limit: usize,
) -> Result<Bytes, IngestError> {
    let too_large = IngestError::BodyTooLarge {
        limit,
        decoded: false,
    };
    let announced = body_len_hint(headers);
    if announced != usize::MAX && announced > limit {
        drain(body).await;
        return Err(too_large);
    }
    let mut buf = Vec::with_capacity(announced.min(limit));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|err| {
            // The client went away or sent a broken chunked body; nobody may be listening.
            IngestError::InvalidBody(format!("the body could not be read: {err}"))
        })?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                drain(body).await;
                return Err(too_large);
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(buf))
}

/// Reads and discards what is left of a refused request's body, up to a bound. Answering before
/// the client finished sending makes the server close a connection with unread data, which the
/// client sees as a reset instead of our answer; HTTP servers linger the same way (Go's discards
/// up to 256 KiB). A client sending more than the bound still gets the reset.
async fn drain(mut body: Body) {
    const DRAIN_BYTES: usize = 4 * 1024 * 1024;
    const DRAIN_TIME: Duration = Duration::from_secs(2);
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        let mut drained = 0;
        while let Some(Ok(frame)) = body.frame().await {
            if let Some(data) = frame.data_ref() {
                drained += data.len();
                if drained > DRAIN_BYTES {
                    break;
                }
            }
        }
    })
    .await;
}

fn success(format: Format, response: &super::ExportTraceServiceResponse) -> Response {
    let body = match format {
        Format::Protobuf => response.encode_to_vec(),
        Format::Json => json::response_body(response),
    };
    (
        StatusCode::OK,
        [(
            CONTENT_TYPE,
            HeaderValue::from_static(format.content_type()),
        )],
        body,
    )
        .into_response()
}

/// The one place where ingest errors become HTTP replies.
fn failure(format: Format, err: &IngestError, limits: &OtlpLimits) -> Response {
    let (status, grpc) = match err {
        IngestError::MissingCredentials | IngestError::InvalidCredentials => {
            (StatusCode::UNAUTHORIZED, tonic::Code::Unauthenticated)
        }
        IngestError::AuthUnavailable
        | IngestError::StorageUnavailable
        | IngestError::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, tonic::Code::Unavailable),
        IngestError::Overloaded => (
            StatusCode::TOO_MANY_REQUESTS,
            tonic::Code::ResourceExhausted,
        ),
        IngestError::UnsupportedMediaType(_) | IngestError::UnsupportedContentEncoding(_) => (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            tonic::Code::InvalidArgument,
        ),
        IngestError::BodyTooLarge { .. } => {
            (StatusCode::PAYLOAD_TOO_LARGE, tonic::Code::InvalidArgument)
        }
        IngestError::InvalidGzip(_) | IngestError::InvalidBody(_) => {
            (StatusCode::BAD_REQUEST, tonic::Code::InvalidArgument)
        }
    };
    let retry_after = err.retry_after(limits);
    let rpc = rpc_status(grpc as i32, err.to_string(), err.code(), retry_after);
    let body = match format {
        Format::Protobuf => rpc.encode_to_vec(),
        Format::Json => serde_json::to_vec(&rpc.to_json()).unwrap_or_default(),
    };
    let mut response = (
        status,
        [(
            CONTENT_TYPE,
            HeaderValue::from_static(format.content_type()),
        )],
        body,
    )
        .into_response();
    if let Some(delay) = retry_after {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(retry_after_secs(delay)));
    }
    if matches!(
        err,
        IngestError::MissingCredentials | IngestError::InvalidCredentials
    ) {
        response.headers_mut().insert(
            axum::http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer"),
        );
    }
    response
}

/// `Retry-After` takes whole seconds; round up so the client never comes back early.
fn retry_after_secs(delay: Duration) -> u64 {
    delay.as_secs() + u64::from(delay.subsec_nanos() > 0)
}
