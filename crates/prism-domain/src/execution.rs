//! Executions: every attempt to run a request, successful or not, of any protocol.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::request::Protocol;
use crate::trace::{SpanId, TraceId};
use crate::{ExecutionId, RequestId, Timestamp, UserId, WorkspaceId};

/// Why an execution failed without an answer from the target (or with an unusable one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    Dns,
    ConnectionRefused,
    Connect,
    Tls,
    Timeout,
    /// The request could not be built (bad URL, bad proto, bad JSON message, unknown variable…).
    InvalidRequest,
    /// Refused by PRISM's own outbound policy (SSRF guard).
    Blocked,
    /// The connection broke while sending or receiving.
    Io,
    /// A protocol violation by the target.
    Protocol,
    Other,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 10] = [
        ErrorKind::Dns,
        ErrorKind::ConnectionRefused,
        ErrorKind::Connect,
        ErrorKind::Tls,
        ErrorKind::Timeout,
        ErrorKind::InvalidRequest,
        ErrorKind::Blocked,
        ErrorKind::Io,
        ErrorKind::Protocol,
        ErrorKind::Other,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Dns => "dns",
            ErrorKind::ConnectionRefused => "connection_refused",
            ErrorKind::Connect => "connect",
            ErrorKind::Tls => "tls",
            ErrorKind::Timeout => "timeout",
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::Blocked => "blocked",
            ErrorKind::Io => "io",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Other => "other",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown error kind {0:?}")]
pub struct UnknownErrorKind(pub String);

impl FromStr for ErrorKind {
    type Err = UnknownErrorKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownErrorKind(s.to_owned()))
    }
}

/// How an execution was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionSource {
    /// The data-plane HTTP API (`/rest`, `/graphql`, `/grpc`).
    DataPlane,
    /// The control-plane API or web UI.
    Api,
    Workflow,
    Cli,
}

impl ExecutionSource {
    pub const ALL: [ExecutionSource; 4] = [
        ExecutionSource::DataPlane,
        ExecutionSource::Api,
        ExecutionSource::Workflow,
        ExecutionSource::Cli,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ExecutionSource::DataPlane => "data_plane",
            ExecutionSource::Api => "api",
            ExecutionSource::Workflow => "workflow",
            ExecutionSource::Cli => "cli",
        }
    }
}

impl FromStr for ExecutionSource {
    type Err = UnknownErrorKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ExecutionSource::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownErrorKind(s.to_owned()))
    }
}

/// The one definition of failure used everywhere (analytics, workflows, UI): a transport error, an
/// HTTP status ≥ 400, a GraphQL response with `errors`, or a gRPC status other than OK.
pub fn is_failure(
    protocol: Protocol,
    status_code: Option<i32>,
    error_kind: Option<ErrorKind>,
    graphql_errors: bool,
) -> bool {
    if error_kind.is_some() {
        return true;
    }
    match (protocol, status_code) {
        (_, None) => true,
        (Protocol::Grpc, Some(code)) => code != 0,
        (Protocol::Graphql, Some(code)) => code >= 400 || graphql_errors,
        (Protocol::Rest, Some(code)) => code >= 400,
    }
}

/// One recorded execution. The narrow row that analytics scans; bulky request/response snapshots
/// live in [`ExecutionDetail`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Execution {
    pub id: ExecutionId,
    pub workspace_id: WorkspaceId,
    /// The saved request this ran, if any (`None` for ad-hoc requests, or after the request was deleted).
    pub request_id: Option<RequestId>,
    pub protocol: Protocol,
    /// HTTP method, or `None` for gRPC.
    pub method: Option<String>,
    /// The resolved URL, or for gRPC `address/package.Service/Method`.
    pub target: String,
    /// Grouping key for analytics: method + URL template (ids and numbers replaced), or the gRPC method.
    pub endpoint: String,
    /// HTTP status, or gRPC status code; `None` when the target never answered.
    pub status_code: Option<i32>,
    /// See [`is_failure`].
    pub failed: bool,
    pub error_kind: Option<ErrorKind>,
    pub error_message: Option<String>,
    pub started_at: Timestamp,
    pub duration_ns: i64,
    pub ttfb_ns: Option<i64>,
    pub dns_ns: Option<i64>,
    pub connect_ns: Option<i64>,
    pub tls_ns: Option<i64>,
    pub request_size: i64,
    pub response_size: i64,
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub source: ExecutionSource,
    pub created_by: Option<UserId>,
}

/// The request as sent and the response as received (bodies capped), for reopening from history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionDetail {
    pub execution_id: ExecutionId,
    pub request: serde_json::Value,
    pub response: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_has_one_definition() {
        assert!(!is_failure(Protocol::Rest, Some(204), None, false));
        assert!(is_failure(Protocol::Rest, Some(404), None, false));
        assert!(is_failure(
            Protocol::Rest,
            None,
            Some(ErrorKind::Dns),
            false
        ));
        assert!(is_failure(Protocol::Graphql, Some(200), None, true));
        assert!(!is_failure(Protocol::Graphql, Some(200), None, false));
        assert!(!is_failure(Protocol::Grpc, Some(0), None, false));
        assert!(is_failure(Protocol::Grpc, Some(14), None, false));
    }

    #[test]
    fn error_kinds_round_trip() {
        for kind in ErrorKind::ALL {
            assert_eq!(kind.as_str().parse::<ErrorKind>(), Ok(kind));
        }
    }
}
