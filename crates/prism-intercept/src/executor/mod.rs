//! The HTTP executor: runs REST and GraphQL requests against their targets with W3C trace context
//! and describes what happened as an [`HttpOutcome`].
//!
//! This is a library, not a route: the data-plane routes, the control plane (in-process under
//! `prism up`) and the CLI all call [`HttpExecutor`] directly, and a recorder turns outcomes into
//! stored executions. Keeping the executor free of storage and HTTP-route concerns is what lets
//! those callers share one implementation of "run a request".
//!
//! Two rules shape the API:
//!
//! - **The target's failures are outcomes, not errors.** DNS failures, refused connections,
//!   timeouts, TLS problems and even requests that cannot be built are all reported in
//!   [`HttpOutcome::error`] with a [`prism_domain::execution::ErrorKind`], because for an API
//!   tester they are results to show and record. None of the `execute_*` functions returns
//!   `Result` or panics on bad input.
//! - **Memory is bounded.** Response bodies are kept up to [`ExecutorConfig::max_body_bytes`];
//!   past that the rest is counted but not stored, and reading stops entirely at
//!   [`ExecutorConfig::hard_read_limit`].
//!
//! # Trace context
//!
//! Every request carries the `traceparent` of the client span the caller started with
//! [`ClientSpanContext::start`] (and its `tracestate`, when there is one). If the user's headers
//! already contain `traceparent`/`tracestate`, those rows are **not** sent: the caller must have
//! passed their values to `ClientSpanContext::start` — use [`incoming_trace_headers`] to pick them
//! out — so the target sees one coherent context that continues the user's trace.
//!
//! [`ClientSpanContext::start`]: prism_domain::trace_context::ClientSpanContext::start

mod egress;
mod graphql;
mod http;
mod timing;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prism_domain::egress::EgressPolicy;
use prism_domain::execution::{ErrorKind, is_failure};
use prism_domain::request::{HttpSettings, KeyValue, Protocol};
use serde::Serialize;

pub use graphql::INTROSPECTION_QUERY;

/// The header names of W3C Trace Context, lowercase as `http` stores them.
pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";

/// Redirect limits above this are clamped: no real API needs more, and it keeps the number of
/// distinct cached clients (one per [`ClientKey`]) small.
pub const MAX_REDIRECTS_LIMIT: u32 = 100;

/// Instance-wide defaults and limits. Per-request [`HttpSettings`] override the `default_*` values;
/// the size limits are not overridable per request because they protect the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutorConfig {
    /// Response (and request snapshot) bytes kept in memory; the rest is counted, not stored.
    pub max_body_bytes: usize,
    /// Reading a response stops after this many bytes, so an endless body cannot keep a request
    /// running until its timeout; the reported size is then a lower bound.
    pub hard_read_limit: u64,
    pub default_timeout: Duration,
    pub default_follow_redirects: bool,
    pub default_max_redirects: u32,
    pub default_verify_tls: bool,
    /// Which targets may be reached (the SSRF guard); checked on the URL, on every resolved
    /// address and on every redirect.
    pub egress: EgressPolicy,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 10 * 1024 * 1024,
            hard_read_limit: 1024 * 1024 * 1024,
            default_timeout: Duration::from_secs(30),
            default_follow_redirects: true,
            default_max_redirects: 10,
            default_verify_tls: true,
            egress: EgressPolicy::allow_all(),
        }
    }
}

/// The settings that reqwest fixes per client rather than per request (redirect policy and TLS
/// verification). The executor keeps one client per distinct key, so connections are pooled
/// across requests that share settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientKey {
    pub follow_redirects: bool,
    /// 0 when `follow_redirects` is false (the limit is then irrelevant, so it must not split
    /// the cache).
    pub max_redirects: u32,
    pub verify_tls: bool,
}

/// Runs REST and GraphQL requests. Cheap to clone (an `Arc` inside); share one per process so the
/// cached clients and their connection pools are shared too.
#[derive(Debug, Clone)]
pub struct HttpExecutor {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: ExecutorConfig,
    /// `config.egress`, shared with the resolvers and redirect policies of the cached clients.
    egress: Arc<EgressPolicy>,
    /// Bounded in practice: two booleans and a clamped redirect limit.
    clients: Mutex<HashMap<ClientKey, reqwest::Client>>,
}

impl HttpExecutor {
    /// Also installs rustls' ring provider as the process default if none is installed yet:
    /// reqwest is built without a provider of its own and would panic when building a client
    /// otherwise. (PRISM uses ring everywhere; an already installed provider is left alone.)
    pub fn new(config: ExecutorConfig) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Self {
            inner: Arc::new(Inner {
                egress: Arc::new(config.egress.clone()),
                config,
                clients: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn config(&self) -> &ExecutorConfig {
        &self.inner.config
    }

    /// The outbound-target policy every request of this executor is checked against.
    pub fn egress(&self) -> &EgressPolicy {
        &self.inner.egress
    }

    /// The client a request with these settings runs on (instance defaults filled in).
    pub fn client_key(&self, settings: &HttpSettings) -> ClientKey {
        let config = &self.inner.config;
        let max_redirects = settings
            .max_redirects
            .unwrap_or(config.default_max_redirects)
            .min(MAX_REDIRECTS_LIMIT);
        // "Follow at most 0 redirects" means "return the 3xx", not "fail on the first redirect".
        let follow_redirects = settings
            .follow_redirects
            .unwrap_or(config.default_follow_redirects)
            && max_redirects > 0;
        ClientKey {
            follow_redirects,
            max_redirects: if follow_redirects { max_redirects } else { 0 },
            verify_tls: settings.verify_tls.unwrap_or(config.default_verify_tls),
        }
    }

    /// The per-request timeout, covering connect, sending and reading the whole body (reqwest
    /// applies it to the body stream too). `timeout_ms: 0` is taken literally and times out at once.
    pub fn timeout(&self, settings: &HttpSettings) -> Duration {
        settings
            .timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(self.inner.config.default_timeout)
    }

    fn client(&self, key: ClientKey) -> Result<reqwest::Client, reqwest::Error> {
        let mut clients = self
            .inner
            .clients
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let client = http::build_client(key, &self.inner.egress)?;
        clients.insert(key, client.clone());
        Ok(client)
    }
}

/// Picks the user's own `traceparent` and `tracestate` out of a request's headers (enabled rows,
/// names compared case-insensitively, first row wins) so the caller can continue that trace:
///
/// ```
/// use prism_domain::request::KeyValue;
/// use prism_domain::trace_context::ClientSpanContext;
/// use prism_intercept::executor::incoming_trace_headers;
///
/// let headers = vec![KeyValue::new(
///     "TraceParent",
///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
/// )];
/// let (traceparent, tracestate) = incoming_trace_headers(&headers);
/// let ctx = ClientSpanContext::start(traceparent.as_deref(), tracestate.as_deref());
/// assert_eq!(ctx.trace_id.to_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// // then `executor.execute_rest(&spec, &ctx).await` sends a child of the user's span.
/// ```
pub fn incoming_trace_headers(headers: &[KeyValue]) -> (Option<String>, Option<String>) {
    let find = |wanted: &str| {
        headers
            .iter()
            .filter(|h| h.enabled)
            .find(|h| h.name.trim().eq_ignore_ascii_case(wanted))
            .map(|h| h.value.clone())
    };
    (find(TRACEPARENT), find(TRACESTATE))
}

/// Everything known about one execution. Serialized (snake_case) into execution details and API
/// responses.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HttpOutcome {
    /// What PRISM sent (or tried to send).
    pub request: SentRequest,
    /// `None` when the target never answered with a status line.
    pub response: Option<ReceivedResponse>,
    /// Why the execution failed without a usable answer. May be set together with `response`
    /// when the body broke off after the headers arrived.
    pub error: Option<ExecutionError>,
    /// GraphQL only: the response JSON has a non-empty `errors` array (always `false` for REST,
    /// and for a GraphQL response truncated at `max_body_bytes`, which cannot be parsed).
    pub graphql_errors: bool,
    pub timings: Timings,
    /// Request body bytes sent.
    pub request_size: i64,
    /// Response body bytes received, including those not stored (see [`BodySnapshot::size`]).
    pub response_size: i64,
}

impl HttpOutcome {
    pub fn status_code(&self) -> Option<u16> {
        self.response.as_ref().map(|r| r.status)
    }

    pub fn error_kind(&self) -> Option<ErrorKind> {
        self.error.as_ref().map(|e| e.kind)
    }

    /// PRISM's one definition of failure ([`prism_domain::execution::is_failure`]) applied to this
    /// outcome.
    pub fn is_failure(&self, protocol: Protocol) -> bool {
        is_failure(
            protocol,
            self.status_code().map(i32::from),
            self.error_kind(),
            self.graphql_errors,
        )
    }
}

/// The request as PRISM built it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SentRequest {
    pub method: String,
    /// With the query parameters appended; the URL as given when it could not be parsed.
    pub url: String,
    /// The headers PRISM set, in order (user rows, then defaults such as `content-type`, then
    /// trace context). The transport adds `host`, `content-length` and `accept: */*` (if absent).
    pub headers: Vec<Header>,
    /// `None` for a request without a body.
    pub body: Option<BodySnapshot>,
}

/// The response as received (after redirects, when they were followed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReceivedResponse {
    pub status: u16,
    /// `HTTP/1.1`, `HTTP/2.0`, …
    pub http_version: String,
    /// The URL that answered: differs from the request's when redirects were followed.
    pub url: String,
    /// In the order received, grouped by name; repeated headers (each `set-cookie`) stay separate
    /// entries. Values that are not UTF-8 are decoded lossily.
    pub headers: Vec<Header>,
    pub body: BodySnapshot,
}

/// One header line. A list of these, not a map, because names repeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Header {
    pub name: String,
    pub value: String,
}

/// A body as stored: text when it is UTF-8 text, base64 otherwise, capped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BodySnapshot {
    pub encoding: BodyEncoding,
    /// The stored bytes (at most `max_body_bytes`), as text or base64.
    pub data: String,
    /// Fewer bytes were stored than received.
    pub truncated: bool,
    /// The real size in bytes, counted in full even past the cap.
    pub size: u64,
    /// Reading stopped at `hard_read_limit`, so `size` is a lower bound.
    pub size_is_lower_bound: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyEncoding {
    Text,
    Base64,
}

/// Why an execution failed, for people (`message`) and for analytics (`kind`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExecutionError {
    pub kind: ErrorKind,
    pub message: String,
}

/// Durations in nanoseconds, measured by PRISM around the request.
///
/// The connection phases (`dns_ns`, `connect_ns`) describe the connection that carried the
/// (final) response, and only when this request opened it: a response on a connection reused
/// from the pool has `None` for both and `connection_reused: true`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Timings {
    /// From the start of the call until the body was read (or the failure).
    pub total_ns: i64,
    /// Until the response headers arrived (includes DNS, connect, TLS, sending the body and
    /// every redirect hop).
    pub ttfb_ns: Option<i64>,
    /// The host name lookup for the connection this request opened. `None` when the connection
    /// was reused, or the URL's host is an IP address (nothing to look up). Also set when the
    /// lookup succeeded but connecting failed.
    pub dns_ns: Option<i64>,
    /// Opening the connection after the lookup: the TCP connect and, for `https`, the TLS
    /// handshake too (reqwest's connector does both; they are not told apart). `None` when the
    /// connection was reused or never opened.
    pub connect_ns: Option<i64>,
    /// Always `None`: the TLS handshake is inside `connect_ns` (see there). Kept so the shape
    /// matches the recorded [`prism_domain::execution::Execution`].
    pub tls_ns: Option<i64>,
    /// Whether the response came on a pooled connection opened by an earlier request. `None`
    /// when no response arrived (or it does not say which connection carried it).
    pub connection_reused: Option<bool>,
}
/// The result of [`HttpExecutor::introspect`]: the schema when the target returned one, and the
/// full outcome either way (for showing or recording the exchange).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Introspection {
    /// `data.__schema` of the response.
    pub schema: Option<serde_json::Value>,
    /// When there is no schema, `outcome.error` says why.
    pub outcome: HttpOutcome,
}

impl Introspection {
    /// The schema, or the outcome explaining why there is none (boxed: outcomes are large).
    pub fn into_result(self) -> Result<serde_json::Value, Box<HttpOutcome>> {
        match self.schema {
            Some(schema) => Ok(schema),
            None => Err(Box::new(self.outcome)),
        }
    }
}

pub(crate) fn nanos(duration: Duration) -> i64 {
    i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incoming_trace_headers_are_found_case_insensitively_in_enabled_rows() {
        let headers = vec![
            KeyValue {
                name: "traceparent".into(),
                value: "disabled".into(),
                enabled: false,
            },
            KeyValue::new("X-Other", "1"),
            KeyValue::new("TraceParent", "tp"),
            KeyValue::new(" TRACESTATE ", "ts"),
            KeyValue::new("traceparent", "second"),
        ];
        assert_eq!(
            incoming_trace_headers(&headers),
            (Some("tp".into()), Some("ts".into()))
        );
        assert_eq!(incoming_trace_headers(&[]), (None, None));
    }

    #[test]
    fn client_key_fills_defaults_and_normalizes() {
        let executor = HttpExecutor::new(ExecutorConfig::default());
        let key = executor.client_key(&HttpSettings::default());
        assert_eq!(
            key,
            ClientKey {
                follow_redirects: true,
                max_redirects: 10,
                verify_tls: true
            }
        );
        let no_follow = |max| HttpSettings {
            follow_redirects: Some(false),
            max_redirects: Some(max),
            ..HttpSettings::default()
        };
        // The limit does not split the cache when redirects are not followed.
        assert_eq!(
            executor.client_key(&no_follow(3)),
            executor.client_key(&no_follow(7))
        );
        let zero = HttpSettings {
            max_redirects: Some(0),
            ..HttpSettings::default()
        };
        assert!(!executor.client_key(&zero).follow_redirects);
        let huge = HttpSettings {
            max_redirects: Some(u32::MAX),
            ..HttpSettings::default()
        };
        assert_eq!(
            executor.client_key(&huge).max_redirects,
            MAX_REDIRECTS_LIMIT
        );
    }

    #[test]
    fn timeout_defaults_to_thirty_seconds() {
        let executor = HttpExecutor::new(ExecutorConfig::default());
        assert_eq!(
            executor.timeout(&HttpSettings::default()),
            Duration::from_secs(30)
        );
        let short = HttpSettings {
            timeout_ms: Some(250),
            ..HttpSettings::default()
        };
        assert_eq!(executor.timeout(&short), Duration::from_millis(250));
    }
}
