//! What one gRPC execution did, in the shape the recorder and the API store and show.
//!
//! Mirrors `prism_intercept::executor::HttpOutcome`: the target's failures are data, not errors.
//! A non-OK gRPC status is a normal [`GrpcResponse`] (the server answered); only failures to get
//! an answer at all — refused connection, TLS, timeout, the outbound policy — set
//! [`GrpcOutcome::error`].

use prism_domain::execution::{ErrorKind, is_failure};
use prism_domain::request::Protocol;
use serde::Serialize;

/// Everything known about one execution. Serialized (snake_case) into execution details and API
/// responses.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GrpcOutcome {
    /// What PRISM sent (or was about to send).
    pub request: GrpcSentRequest,
    /// `None` when the call ended before response headers arrived.
    pub response: Option<GrpcResponse>,
    /// Why the call failed without a complete answer. May be set together with `response` when
    /// the call broke off after the headers (then `response.status_source` is `client`).
    pub error: Option<GrpcExecutionError>,
    pub timings: GrpcTimings,
    /// Protobuf-encoded bytes of the request messages (without the 5-byte gRPC frame headers).
    pub request_size: i64,
    /// Protobuf-encoded bytes of every response message received, including those not kept.
    pub response_size: i64,
}

impl GrpcOutcome {
    /// The call's gRPC status code, when there is a response.
    pub fn status_code(&self) -> Option<i32> {
        self.response.as_ref().map(|r| r.status_code)
    }

    pub fn error_kind(&self) -> Option<ErrorKind> {
        self.error.as_ref().map(|e| e.kind)
    }

    /// PRISM's one definition of failure: a transport error or a status other than OK.
    pub fn is_failure(&self) -> bool {
        is_failure(Protocol::Grpc, self.status_code(), self.error_kind(), false)
    }
}

/// The call as PRISM built it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GrpcSentRequest {
    /// The address as given.
    pub address: String,
    /// Fully qualified once the schema is known; as given before that.
    pub service: String,
    /// The HTTP/2 path, `/pkg.Service/Method`.
    pub method: String,
    /// The metadata PRISM set, in order: the user's enabled rows, then `traceparent` and
    /// `tracestate`. The transport adds `content-type`, `te`, `user-agent` and `grpc-timeout`.
    /// Values of `-bin` keys are base64.
    pub metadata: Vec<Header>,
    /// The request messages as encoded, in proto3 JSON.
    pub messages: Vec<serde_json::Value>,
}

/// What came back.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GrpcResponse {
    /// Response headers in the order received. Empty for a trailers-only response (an error status
    /// without messages), whose metadata is in `trailers`.
    pub headers: Vec<Header>,
    /// Trailing metadata, without `grpc-status` and `grpc-message` (see `status_*`).
    pub trailers: Vec<Header>,
    pub status_code: i32,
    /// `OK`, `NOT_FOUND`, `UNAVAILABLE`, …
    pub status_name: String,
    pub status_message: String,
    pub status_source: StatusSource,
    /// The kept response messages in proto3 JSON (field names as JSON names, well-known types in
    /// their canonical form).
    pub messages: Vec<serde_json::Value>,
    /// How many messages arrived, including those not kept.
    pub message_count: i64,
    /// Not every received message is in `messages`: the count or byte limit was reached, or a
    /// message was larger than `max_message_bytes` (then the call was ended there).
    pub truncated: bool,
}

/// Who decided the status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusSource {
    /// The server's `grpc-status`.
    Server,
    /// PRISM ended the call after headers arrived (deadline, broken connection, a message over
    /// the size limit) and reports the status a gRPC client would: `DEADLINE_EXCEEDED`,
    /// `UNAVAILABLE`, `RESOURCE_EXHAUSTED`, …
    Client,
}

/// One metadata entry. A list of these, not a map, because names repeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Header {
    pub name: String,
    pub value: String,
}

/// Why an execution failed, for people (`message`) and for analytics (`kind`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrpcExecutionError {
    pub kind: ErrorKind,
    pub message: String,
}

/// Durations in nanoseconds, measured by PRISM around the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct GrpcTimings {
    /// From the start of `execute` (including schema reflection) until the status or the failure.
    pub total_ns: i64,
    /// Until the response headers arrived.
    pub ttfb_ns: Option<i64>,
}

/// The canonical name of a gRPC status code, as in the gRPC spec (`UNKNOWN` for codes it does
/// not define).
pub fn status_name(code: i32) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "UNKNOWN",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(status: Option<i32>, error: Option<ErrorKind>) -> GrpcOutcome {
        GrpcOutcome {
            request: GrpcSentRequest {
                address: "a:1".into(),
                service: "s".into(),
                method: "/s/m".into(),
                metadata: vec![],
                messages: vec![],
            },
            response: status.map(|code| GrpcResponse {
                headers: vec![],
                trailers: vec![],
                status_code: code,
                status_name: status_name(code).into(),
                status_message: String::new(),
                status_source: StatusSource::Server,
                messages: vec![],
                message_count: 0,
                truncated: false,
            }),
            error: error.map(|kind| GrpcExecutionError {
                kind,
                message: "x".into(),
            }),
            timings: GrpcTimings::default(),
            request_size: 0,
            response_size: 0,
        }
    }

    #[test]
    fn failure_follows_the_domain_definition() {
        assert!(!outcome(Some(0), None).is_failure());
        assert!(outcome(Some(5), None).is_failure());
        assert!(outcome(None, Some(ErrorKind::Timeout)).is_failure());
        assert!(outcome(Some(4), Some(ErrorKind::Timeout)).is_failure());
        assert_eq!(outcome(Some(5), None).status_code(), Some(5));
        assert_eq!(
            outcome(None, Some(ErrorKind::Dns)).error_kind(),
            Some(ErrorKind::Dns)
        );
    }

    #[test]
    fn status_names_follow_the_spec() {
        assert_eq!(status_name(0), "OK");
        assert_eq!(status_name(5), "NOT_FOUND");
        assert_eq!(status_name(14), "UNAVAILABLE");
        assert_eq!(status_name(16), "UNAUTHENTICATED");
        assert_eq!(status_name(99), "UNKNOWN");
        assert_eq!(status_name(-1), "UNKNOWN");
    }

    #[test]
    fn serializes_in_snake_case() {
        let json = serde_json::to_value(outcome(Some(0), None)).unwrap();
        assert_eq!(json["response"]["status_source"], "server");
        assert_eq!(json["response"]["status_name"], "OK");
        assert!(json["timings"]["ttfb_ns"].is_null());
    }
}
