//! OpenTelemetry trace ingest: OTLP/HTTP (`POST /v1/traces`, protobuf or JSON, gzip or identity)
//! and OTLP/gRPC (`TraceService/Export`), stored as [`prism_domain::trace::Span`]s.
//!
//! Why it is shaped this way:
//! - **An answer means "stored".** Spans go through [`Recorder::record_acked`], which resolves only
//!   after the database committed them, and only then does the exporter get its 200 / `OK`. When the
//!   recorder is overloaded the exporter hears 429 / `RESOURCE_EXHAUSTED`, when the database is down
//!   503 / `UNAVAILABLE`, both with a retry delay — OTLP exporters retry those, so nothing is lost
//!   and nothing needs spooling here. A retry of a batch that was in fact (partly) stored is
//!   harmless: spans are keyed by `(trace_id, span_id)` and stored once.
//! - **Bad spans do not sink good ones.** A span with an invalid id or impossible times is counted
//!   in the OTLP `partial_success` (with a reason) and the rest of the request is stored; only a
//!   body that cannot be decoded at all is refused as a whole (400).
//! - **Bounded work per request.** The body is read up to [`OtlpLimits::max_body_bytes`] and gzip is
//!   inflated up to [`OtlpLimits::max_decoded_bytes`] (a small gzip bomb cannot make us allocate
//!   gigabytes); gRPC messages are bounded by the same decoded limit through tonic.
//! - **Credentials are someone else's business.** An [`IngestAuthorizer`] turns request headers
//!   (and the peer address) into the workspace the spans belong to; this module only maps its
//!   verdict onto HTTP and gRPC.
//! - **Stable error codes.** Every refusal has a `code` (`invalid_otlp_body`, `invalid_gzip`,
//!   `unsupported_media_type`, `unsupported_content_encoding`, `body_too_large`,
//!   `missing_credentials`, `invalid_credentials`, `ingest_unavailable`, `overloaded`,
//!   `storage_unavailable`, `shutting_down`). The body of an OTLP/HTTP error is what the OTLP
//!   specification prescribes — a `google.rpc.Status`, protobuf-encoded for protobuf requests and
//!   JSON-encoded (proto3 JSON mapping) otherwise — with the code as the `reason` of a
//!   `google.rpc.ErrorInfo` detail (domain `prism`), plus a `google.rpc.RetryInfo` detail when a
//!   retry is expected. See [`http`] for the exact shapes.
//!
//! Module map: [`decode`] (content type, gzip, protobuf), [`json`] (the OTLP/JSON mapping),
//! [`convert`] (OTLP messages → domain spans, validation, NUL sanitizing), [`http`] (the axum
//! route), [`grpc`] (the tonic service), [`status`] (the `google.rpc` messages of error replies).

pub mod convert;
pub mod decode;
pub mod grpc;
pub mod http;
pub mod json;
pub mod status;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prism_domain::WorkspaceId;
use prism_domain::trace::Span;

use crate::recorder::{RecordError, Recorder};

pub use grpc::serve_grpc;
pub use http::http_routes;

/// Decides whom ingested spans belong to, from the request's headers (gRPC metadata for OTLP/gRPC)
/// and the peer address when known.
#[async_trait::async_trait]
pub trait IngestAuthorizer: Send + Sync + std::fmt::Debug {
    /// `Ok(workspace the spans belong to)` (`None` = unattributed) or `Err(rejection)`.
    async fn authorize(
        &self,
        headers: &HeaderMap,
        peer: Option<SocketAddr>,
    ) -> Result<Option<WorkspaceId>, IngestRejection>;
}

/// Why an authorizer refused a request: 401 `missing_credentials` / 401 `invalid_credentials` /
/// 503 `ingest_unavailable` over HTTP; `UNAUTHENTICATED` / `UNAUTHENTICATED` / `UNAVAILABLE` over
/// gRPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestRejection {
    MissingCredentials,
    InvalidCredentials,
    /// The authorizer could not decide (e.g. its key store is unreachable); the exporter retries.
    Unavailable,
}

/// Size limits and retry hints of the ingest endpoints.
#[derive(Debug, Clone)]
pub struct OtlpLimits {
    /// Largest OTLP/HTTP body accepted as it arrives on the wire (compressed or not) → 413.
    pub max_body_bytes: usize,
    /// Largest message after gzip inflation (also bounds identity bodies and gRPC messages) → 413.
    pub max_decoded_bytes: usize,
    /// Spans per acknowledged recorder write; a larger request is committed in several writes.
    pub chunk_spans: usize,
    /// `Retry-After` / `RetryInfo` when the recorder's queue stays full.
    pub overloaded_retry_after: Duration,
    /// `Retry-After` / `RetryInfo` when the database did not store the spans or the plane stops.
    pub unavailable_retry_after: Duration,
}

impl Default for OtlpLimits {
    fn default() -> Self {
        Self {
            max_body_bytes: 16 * 1024 * 1024,
            max_decoded_bytes: 32 * 1024 * 1024,
            chunk_spans: 4096,
            overloaded_retry_after: Duration::from_secs(1),
            unavailable_retry_after: Duration::from_secs(5),
        }
    }
}

/// Everything the ingest endpoints need; cheap to clone.
#[derive(Debug, Clone)]
pub struct OtlpIngest {
    pub recorder: Recorder,
    pub authorizer: Arc<dyn IngestAuthorizer>,
    pub limits: OtlpLimits,
}

impl OtlpIngest {
    /// Ingest with the default limits.
    pub fn new(recorder: Recorder, authorizer: Arc<dyn IngestAuthorizer>) -> Self {
        Self {
            recorder,
            authorizer,
            limits: OtlpLimits::default(),
        }
    }

    /// Converts a decoded request, stores its valid spans and returns the OTLP answer. Returns only
    /// after the spans are committed.
    pub(crate) async fn export(
        &self,
        request: ExportTraceServiceRequest,
        workspace: Option<WorkspaceId>,
    ) -> Result<ExportTraceServiceResponse, IngestError> {
        let converted = convert::to_spans(request, workspace);
        self.commit(converted.spans).await?;
        Ok(converted.response)
    }

    /// Writes spans through the recorder, in chunks of [`OtlpLimits::chunk_spans`] written
    /// concurrently (the writer task batches them together again). If any chunk fails the whole
    /// request is reported as failed: the exporter retries it, and the chunks that were stored are
    /// not duplicated because span inserts are idempotent.
    pub(crate) async fn commit(&self, spans: Vec<Span>) -> Result<(), IngestError> {
        if spans.is_empty() {
            return Ok(());
        }
        let chunk = self.limits.chunk_spans.max(1);
        let count = spans.len() as u64;
        let outcome = if spans.len() <= chunk {
            self.recorder.record_acked(spans).await.map(drop)
        } else {
            let mut spans = spans;
            let mut chunks = Vec::with_capacity(spans.len().div_ceil(chunk));
            while spans.len() > chunk {
                let rest = spans.split_off(chunk);
                chunks.push(std::mem::replace(&mut spans, rest));
            }
            chunks.push(spans);
            let results = futures_util::future::join_all(
                chunks
                    .into_iter()
                    .map(|chunk| self.recorder.record_acked(chunk)),
            )
            .await;
            results
                .into_iter()
                .find_map(Result::err)
                .map_or(Ok(()), Err)
        };
        if outcome.is_ok() {
            metrics::counter!("prism_otlp_spans_total", "result" => "accepted").increment(count);
        }
        outcome.map_err(|err| match err {
            RecordError::Overloaded => IngestError::Overloaded,
            RecordError::ShuttingDown => IngestError::ShuttingDown,
            RecordError::NotStored(reason) => {
                tracing::warn!(error = %reason, "otlp spans not stored; the exporter will retry");
                IngestError::StorageUnavailable
            }
        })
    }
}

/// Every way an ingest request can fail. One exhaustive `match` per transport turns it into a
/// reply ([`http`], [`grpc`]); the texts here are what the client sees, so they never carry
/// internal details (database errors are logged instead).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    #[error("no ingest credentials: send an ingest key as `Authorization: Bearer <key>`")]
    MissingCredentials,
    #[error("the ingest credentials are not valid")]
    InvalidCredentials,
    #[error("the credentials cannot be checked right now; retry later")]
    AuthUnavailable,
    #[error("unsupported content type {0:?}: send application/x-protobuf or application/json")]
    UnsupportedMediaType(String),
    #[error("unsupported content encoding {0:?}: send gzip or identity")]
    UnsupportedContentEncoding(String),
    #[error("the request body is larger than {limit} bytes{after}", after = if *.decoded { " after decompression" } else { "" })]
    BodyTooLarge { limit: usize, decoded: bool },
    #[error("the body is not valid gzip: {0}")]
    InvalidGzip(String),
    #[error("the body is not a valid OTLP ExportTraceServiceRequest: {0}")]
    InvalidBody(String),
    #[error("ingest is overloaded; retry later")]
    Overloaded,
    #[error("the spans could not be stored right now; retry later")]
    StorageUnavailable,
    #[error("the server is shutting down; retry later")]
    ShuttingDown,
}

impl IngestError {
    /// The stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            IngestError::MissingCredentials => "missing_credentials",
            IngestError::InvalidCredentials => "invalid_credentials",
            IngestError::AuthUnavailable => "ingest_unavailable",
            IngestError::UnsupportedMediaType(_) => "unsupported_media_type",
            IngestError::UnsupportedContentEncoding(_) => "unsupported_content_encoding",
            IngestError::BodyTooLarge { .. } => "body_too_large",
            IngestError::InvalidGzip(_) => "invalid_gzip",
            IngestError::InvalidBody(_) => "invalid_otlp_body",
            IngestError::Overloaded => "overloaded",
            IngestError::StorageUnavailable => "storage_unavailable",
            IngestError::ShuttingDown => "shutting_down",
        }
    }

    /// How long the client should wait before retrying, for the errors that are worth a retry.
    pub fn retry_after(&self, limits: &OtlpLimits) -> Option<Duration> {
        match self {
            IngestError::Overloaded => Some(limits.overloaded_retry_after),
            IngestError::AuthUnavailable
            | IngestError::StorageUnavailable
            | IngestError::ShuttingDown => Some(limits.unavailable_retry_after),
            IngestError::MissingCredentials
            | IngestError::InvalidCredentials
            | IngestError::UnsupportedMediaType(_)
            | IngestError::UnsupportedContentEncoding(_)
            | IngestError::BodyTooLarge { .. }
            | IngestError::InvalidGzip(_)
            | IngestError::InvalidBody(_) => None,
        }
    }
}

impl From<IngestRejection> for IngestError {
    fn from(rejection: IngestRejection) -> Self {
        match rejection {
            IngestRejection::MissingCredentials => IngestError::MissingCredentials,
            IngestRejection::InvalidCredentials => IngestError::InvalidCredentials,
            IngestRejection::Unavailable => IngestError::AuthUnavailable,
        }
    }
}

/// The OTLP answer for a request of which `rejected` spans were refused.
pub(crate) fn export_response(rejected: u64, error_message: String) -> ExportTraceServiceResponse {
    ExportTraceServiceResponse {
        partial_success: (rejected > 0 || !error_message.is_empty()).then(|| {
            ExportTracePartialSuccess {
                rejected_spans: i64::try_from(rejected).unwrap_or(i64::MAX),
                error_message,
            }
        }),
    }
}
