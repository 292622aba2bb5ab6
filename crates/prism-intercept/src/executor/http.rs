//! REST over HTTP, and the transport GraphQL shares: building the request (method, URL with
//! query parameters, headers with trace context, body), sending it on a cached reqwest client,
//! reading the response within the memory cap, and classifying transport errors into
//! [`ErrorKind`]s.

use std::error::Error as StdError;
use std::io;
use std::sync::Arc;
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use prism_domain::egress::EgressPolicy;
use prism_domain::execution::ErrorKind;
use prism_domain::request::{
    Body, HttpSettings, KeyValue, MultipartPart, MultipartValue, RestSpec,
};
use prism_domain::trace::TraceId;
use prism_domain::trace_context::ClientSpanContext;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::redirect::Policy;
use reqwest::{Method, Url};

use super::{
    BodyEncoding, BodySnapshot, ClientKey, ExecutionError, Header, HttpExecutor, HttpOutcome,
    ReceivedResponse, SentRequest, TRACEPARENT, TRACESTATE, Timings, nanos,
};
use super::{egress, timing};

/// The response buffer is pre-sized from `Content-Length` up to this, never more: the header may
/// lie, and the cap alone (10 MiB by default) is too much to reserve for every request.
const MAX_PREALLOCATION: usize = 1024 * 1024;

/// A request body ready to send, and the `Content-Type` it implies.
pub(super) struct EncodedBody {
    pub bytes: Vec<u8>,
    pub content_type: Option<String>,
    /// The generated type must replace the user's (multipart: it carries the boundary the body
    /// was written with; any other value would make the body unreadable).
    pub content_type_forced: bool,
}

/// What [`HttpExecutor::run`] needs from a REST or GraphQL spec.
pub(super) struct Plan<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub params: &'a [KeyValue],
    pub headers: &'a [KeyValue],
    /// Headers PRISM adds when the user did not set them (after the body's content type).
    pub default_headers: &'a [(HeaderName, &'static str)],
    /// `Err` holds why the body could not be built (an `InvalidRequest` outcome).
    pub body: Result<Option<EncodedBody>, String>,
    pub settings: &'a HttpSettings,
}

impl HttpExecutor {
    /// Runs a REST request. Never fails: every problem, including a request that cannot be built,
    /// is described in the returned outcome.
    ///
    /// `ctx` must come from [`ClientSpanContext::start`] called with the user's own
    /// `traceparent`/`tracestate` header values (see [`super::incoming_trace_headers`]): those
    /// rows are replaced by `ctx`'s headers rather than sent twice.
    ///
    /// The user's `Content-Length` is not sent (the transport computes it from the body; a wrong
    /// one would hang or corrupt the exchange).
    pub async fn execute_rest(&self, spec: &RestSpec, ctx: &ClientSpanContext) -> HttpOutcome {
        self.run(
            Plan {
                method: &spec.method,
                url: &spec.url,
                params: &spec.params,
                headers: &spec.headers,
                default_headers: &[],
                body: encode_body(&spec.body),
                settings: &spec.settings,
            },
            ctx,
        )
        .await
    }

    pub(super) async fn run(&self, plan: Plan<'_>, ctx: &ClientSpanContext) -> HttpOutcome {
        let started = Instant::now();
        let max_body = self.config().max_body_bytes;
        let mut request = SentRequest {
            method: plan.method.to_owned(),
            url: plan.url.to_owned(),
            headers: Vec::new(),
            body: None,
        };
        let invalid =
            |request, message| failed(request, ErrorKind::InvalidRequest, message, 0, started);

        let Ok(method) = Method::from_bytes(plan.method.trim().as_bytes()) else {
            let message = format!("invalid HTTP method {:?}", plan.method);
            return invalid(request, message);
        };
        request.method = method.as_str().to_owned();
        let url = match build_url(plan.url, plan.params) {
            Ok(url) => url,
            Err(message) => return invalid(request, message),
        };
        request.url = url.to_string();
        if let Err(blocked) = self.egress().check_host(url.host_str().unwrap_or_default()) {
            return failed(request, ErrorKind::Blocked, blocked.to_string(), 0, started);
        }
        let body = match plan.body {
            Ok(body) => body,
            Err(message) => return invalid(request, message),
        };
        let (headers, listed) =
            match build_headers(plan.headers, body.as_ref(), plan.default_headers, ctx) {
                Ok(built) => built,
                Err(message) => return invalid(request, message),
            };
        request.headers = listed;
        let request_size = body.as_ref().map_or(0, |b| b.bytes.len());
        request.body = body.as_ref().map(|b| {
            let kept = &b.bytes[..b.bytes.len().min(max_body)];
            snapshot(
                kept.to_vec(),
                b.bytes.len() as u64,
                false,
                b.content_type.as_deref(),
            )
        });

        let client = match self.client(self.client_key(plan.settings)) {
            Ok(client) => client,
            Err(err) => {
                let message = format!("could not create the HTTP client: {}", describe(&err));
                return failed(request, ErrorKind::Other, message, request_size, started);
            }
        };
        let mut builder = client
            .request(method, url)
            .headers(headers)
            .timeout(self.timeout(plan.settings));
        if let Some(body) = body {
            builder = builder.body(body.bytes);
        }
        let (sent, phases) = timing::measured(builder.send()).await;
        let response = match sent {
            Ok(response) => response,
            Err(err) => {
                let (kind, message) = match egress::blocked_cause(&err) {
                    Some(blocked) => (ErrorKind::Blocked, blocked.to_string()),
                    None => (classify(&err), describe(&err)),
                };
                let mut outcome = failed(request, kind, message, request_size, started);
                outcome.timings.dns_ns = phases.unused_lookup_ns();
                return outcome;
            }
        };
        let ttfb = started.elapsed();
        let connection = phases.for_response(response.extensions());

        let status = response.status().as_u16();
        let http_version = format!("{:?}", response.version());
        let final_url = response.url().to_string();
        let response_headers: Vec<Header> = response
            .headers()
            .iter()
            .map(|(name, value)| Header {
                name: name.as_str().to_owned(),
                value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
            })
            .collect();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let read = read_body(response, max_body, self.config().hard_read_limit).await;
        let total = started.elapsed();

        HttpOutcome {
            request,
            response: Some(ReceivedResponse {
                status,
                http_version,
                url: final_url,
                headers: response_headers,
                body: snapshot(
                    read.stored,
                    read.size,
                    read.stopped,
                    content_type.as_deref(),
                ),
            }),
            error: read.error,
            graphql_errors: false,
            timings: Timings {
                total_ns: nanos(total),
                ttfb_ns: Some(nanos(ttfb)),
                dns_ns: connection.dns_ns,
                connect_ns: connection.connect_ns,
                tls_ns: None,
                connection_reused: connection.reused,
            },
            request_size: request_size as i64,
            response_size: i64::try_from(read.size).unwrap_or(i64::MAX),
        }
    }
}

/// An outcome without a response.
fn failed(
    request: SentRequest,
    kind: ErrorKind,
    message: String,
    request_size: usize,
    started: Instant,
) -> HttpOutcome {
    HttpOutcome {
        request,
        response: None,
        error: Some(ExecutionError { kind, message }),
        graphql_errors: false,
        timings: Timings {
            total_ns: nanos(started.elapsed()),
            ..Timings::default()
        },
        request_size: request_size as i64,
        response_size: 0,
    }
}

/// One reqwest client per [`ClientKey`]. The environment's proxy variables are ignored on
/// purpose: the outcome (DNS, connect, TLS errors; later the SSRF guard) must describe the target,
/// not a proxy. No `Referer` is added on redirects, so the target sees only what the user set.
/// The connector and the resolver are timed ([`timing`]).
pub(super) fn build_client(
    key: ClientKey,
    policy: &Arc<EgressPolicy>,
) -> reqwest::Result<reqwest::Client> {
    let open = policy.is_open();
    let redirect = match (key.follow_redirects, open) {
        (false, _) => Policy::none(),
        (true, true) => Policy::limited(key.max_redirects as usize),
        (true, false) => egress::redirect_policy(Arc::clone(policy), key.max_redirects as usize),
    };
    let builder = reqwest::Client::builder()
        .redirect(redirect)
        .tls_danger_accept_invalid_certs(!key.verify_tls)
        .referer(false)
        .no_proxy()
        .connector_layer(timing::ConnectTimingLayer);
    // Both resolvers time the lookup (see `timing`); only the policy's filters addresses.
    let builder = if open {
        builder.dns_resolver(Arc::new(timing::TimedResolver))
    } else {
        builder.dns_resolver(Arc::new(egress::PolicyResolver {
            policy: Arc::clone(policy),
        }))
    };
    builder.build()
}

/// Parses the URL, checks the scheme and appends the enabled parameters after any query the URL
/// already has (order kept, names may repeat).
pub(super) fn build_url(raw: &str, params: &[KeyValue]) -> Result<Url, String> {
    let mut url = Url::parse(raw.trim()).map_err(|e| format!("invalid URL {raw:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "unsupported URL scheme {:?} in {raw:?}: only http and https",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("URL {raw:?} has no host"));
    }
    let mut enabled = params.iter().filter(|p| p.enabled).peekable();
    if enabled.peek().is_some() {
        let mut query = url.query_pairs_mut();
        for param in enabled {
            query.append_pair(&param.name, &param.value);
        }
    }
    Ok(url)
}

/// The headers to send, as a map for reqwest and as an ordered list for the snapshot. Enabled
/// user rows first (repeated names appended, not replaced; rows with an empty name skipped as
/// blank editor lines), then the body's content type and `defaults` unless the user set them,
/// then the trace context.
fn build_headers(
    rows: &[KeyValue],
    body: Option<&EncodedBody>,
    defaults: &[(HeaderName, &'static str)],
    ctx: &ClientSpanContext,
) -> Result<(HeaderMap, Vec<Header>), String> {
    let mut map = HeaderMap::new();
    let mut listed = Vec::new();
    for row in rows.iter().filter(|r| r.enabled) {
        let name = row.name.trim();
        if name.is_empty() {
            continue;
        }
        let header_name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("invalid header name {name:?}"))?;
        // Trace context comes from `ctx` (built from these very values); the length from the body.
        if header_name == TRACEPARENT || header_name == TRACESTATE || header_name == CONTENT_LENGTH
        {
            continue;
        }
        let value = HeaderValue::from_bytes(row.value.as_bytes())
            .map_err(|_| format!("invalid value for header {name:?}: {:?}", row.value))?;
        push(&mut map, &mut listed, header_name, value, false);
    }
    if let Some(content_type) = body.and_then(|b| b.content_type.as_deref().map(|ct| (b, ct))) {
        let (body, content_type) = content_type;
        if body.content_type_forced || !map.contains_key(CONTENT_TYPE) {
            let value = HeaderValue::from_str(content_type)
                .map_err(|_| format!("invalid content type {content_type:?}"))?;
            push(&mut map, &mut listed, CONTENT_TYPE, value, true);
        }
    }
    for (name, value) in defaults {
        if !map.contains_key(name) {
            push(
                &mut map,
                &mut listed,
                name.clone(),
                HeaderValue::from_static(value),
                false,
            );
        }
    }
    let traceparent =
        HeaderValue::from_str(&ctx.traceparent()).map_err(|_| "invalid traceparent".to_owned())?;
    push(
        &mut map,
        &mut listed,
        HeaderName::from_static(TRACEPARENT),
        traceparent,
        true,
    );
    if let Some(tracestate) = &ctx.tracestate {
        let value = HeaderValue::from_str(tracestate)
            .map_err(|_| format!("invalid tracestate {tracestate:?}"))?;
        push(
            &mut map,
            &mut listed,
            HeaderName::from_static(TRACESTATE),
            value,
            true,
        );
    }
    Ok((map, listed))
}

/// Adds a header to both views; `replace` drops earlier values of the same name first.
fn push(
    map: &mut HeaderMap,
    listed: &mut Vec<Header>,
    name: HeaderName,
    value: HeaderValue,
    replace: bool,
) {
    if replace {
        listed.retain(|h| h.name != name.as_str());
        map.remove(&name);
    }
    listed.push(Header {
        name: name.as_str().to_owned(),
        value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
    });
    map.append(name, value);
}

/// The bytes of a REST body and the content type it implies. `Err` when it cannot be built.
pub(super) fn encode_body(body: &Body) -> Result<Option<EncodedBody>, String> {
    let (bytes, content_type, content_type_forced) = match body {
        Body::None => return Ok(None),
        Body::Raw { text, content_type } => (
            text.clone().into_bytes(),
            content_type
                .as_deref()
                .map(str::trim)
                .filter(|ct| !ct.is_empty())
                .map(str::to_owned),
            false,
        ),
        Body::Json { text } => (
            text.clone().into_bytes(),
            Some("application/json".to_owned()),
            false,
        ),
        Body::Form { fields } => {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            for field in fields.iter().filter(|f| f.enabled) {
                form.append_pair(&field.name, &field.value);
            }
            (
                form.finish().into_bytes(),
                Some("application/x-www-form-urlencoded".to_owned()),
                false,
            )
        }
        Body::Multipart { parts } => {
            let (bytes, boundary) = encode_multipart(parts)?;
            (
                bytes,
                Some(format!("multipart/form-data; boundary={boundary}")),
                true,
            )
        }
    };
    Ok(Some(EncodedBody {
        bytes,
        content_type,
        content_type_forced,
    }))
}

/// `multipart/form-data` (RFC 7578) written in memory, so its exact size is known and it can be
/// snapshotted like any other body. Returns the body and its boundary.
fn encode_multipart(parts: &[MultipartPart]) -> Result<(Vec<u8>, String), String> {
    let mut contents = Vec::new();
    for part in parts.iter().filter(|p| p.enabled) {
        let data = match &part.value {
            MultipartValue::Text { value } => value.clone().into_bytes(),
            MultipartValue::File { base64, .. } => {
                let cleaned: String = base64
                    .chars()
                    .filter(|c| !c.is_ascii_whitespace())
                    .collect();
                STANDARD
                    .decode(cleaned)
                    .map_err(|e| format!("multipart part {:?}: invalid base64: {e}", part.name))?
            }
        };
        contents.push((part, data));
    }
    // 128 random bits make a clash practically impossible; checking costs little and makes it
    // impossible.
    let boundary = loop {
        let candidate = format!("prism-{}", TraceId::random().to_hex());
        let clashes = contents.iter().any(|(_, data)| {
            data.windows(candidate.len())
                .any(|w| w == candidate.as_bytes())
        });
        if !clashes {
            break candidate;
        }
    };
    let mut out = Vec::new();
    for (part, data) in &contents {
        out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let name = escape_quoted(&part.name);
        match &part.value {
            MultipartValue::Text { .. } => {
                out.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n").as_bytes(),
                );
            }
            MultipartValue::File {
                filename,
                content_type,
                ..
            } => {
                let content_type = content_type
                    .as_deref()
                    .map(str::trim)
                    .filter(|ct| !ct.is_empty())
                    .unwrap_or("application/octet-stream");
                if content_type.contains(['\r', '\n']) {
                    return Err(format!(
                        "multipart part {:?}: invalid content type {content_type:?}",
                        part.name
                    ));
                }
                out.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{name}\"; filename=\"{}\"\r\n\
                         Content-Type: {content_type}\r\n",
                        escape_quoted(filename)
                    )
                    .as_bytes(),
                );
            }
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Ok((out, boundary))
}

/// Field and file names inside `"…"`, escaped the way browsers do (HTML's form-data encoding).
fn escape_quoted(s: &str) -> String {
    s.replace('"', "%22")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

struct ReadBody {
    stored: Vec<u8>,
    size: u64,
    stopped: bool,
    error: Option<ExecutionError>,
}

/// Reads the body chunk by chunk: keeps the first `cap` bytes, counts the rest, and stops once more
/// than `hard_limit` bytes were seen (dropping the response closes the connection).
async fn read_body(mut response: reqwest::Response, cap: usize, hard_limit: u64) -> ReadBody {
    let expected = response.content_length().unwrap_or(0);
    let mut stored = Vec::with_capacity(
        usize::try_from(expected)
            .unwrap_or(usize::MAX)
            .min(cap)
            .min(MAX_PREALLOCATION),
    );
    let mut size = 0u64;
    let mut stopped = false;
    let mut error = None;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                size += chunk.len() as u64;
                let room = cap.saturating_sub(stored.len());
                stored.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if size > hard_limit {
                    stopped = true;
                    break;
                }
            }
            Ok(None) => break,
            Err(err) => {
                let kind = if err.is_timeout() {
                    ErrorKind::Timeout
                } else {
                    ErrorKind::Io
                };
                error = Some(ExecutionError {
                    kind,
                    message: format!(
                        "reading the response body failed after {size} bytes: {}",
                        describe(&err)
                    ),
                });
                break;
            }
        }
    }
    ReadBody {
        stored,
        size,
        stopped,
        error,
    }
}

/// Stores `bytes` (already capped) as text when they are UTF-8 text, as base64 otherwise.
///
/// Text means: valid UTF-8 (a character cut in half by the cap is dropped), and — unless the
/// content type declares text — no NUL byte, which real text does not contain but binary formats
/// that happen to be valid UTF-8 do. A text content type with invalid UTF-8 (say Latin-1) is
/// stored as base64 so that no byte is lost.
pub(super) fn snapshot(
    bytes: Vec<u8>,
    size: u64,
    size_is_lower_bound: bool,
    content_type: Option<&str>,
) -> BodySnapshot {
    let truncated = (bytes.len() as u64) < size;
    let textual = content_type.is_some_and(is_textual);
    let text_len = match std::str::from_utf8(&bytes) {
        Ok(text) if textual || !text.contains('\0') => Some(bytes.len()),
        Ok(_) => None,
        Err(e) if truncated && e.error_len().is_none() => {
            let len = e.valid_up_to();
            (textual || !bytes[..len].contains(&0)).then_some(len)
        }
        Err(_) => None,
    };
    let (encoding, data) = match text_len {
        Some(len) => {
            let mut bytes = bytes;
            bytes.truncate(len);
            (
                BodyEncoding::Text,
                String::from_utf8(bytes).unwrap_or_default(),
            )
        }
        None => (BodyEncoding::Base64, STANDARD.encode(&bytes)),
    };
    BodySnapshot {
        encoding,
        data,
        truncated,
        size,
        size_is_lower_bound,
    }
}

fn is_textual(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence.starts_with("text/")
        || [
            "json",
            "xml",
            "javascript",
            "yaml",
            "csv",
            "graphql",
            "x-www-form-urlencoded",
        ]
        .iter()
        .any(|t| essence.contains(t))
}

/// Maps a reqwest error to PRISM's error kinds by walking its source chain: reqwest's own
/// predicates first, then the typed causes (`rustls::Error`, `io::ErrorKind`), then hyper's and
/// the resolver's messages, which is all some causes expose.
pub(super) fn classify(err: &reqwest::Error) -> ErrorKind {
    if err.is_builder() {
        return ErrorKind::InvalidRequest;
    }
    if err.is_timeout() {
        return ErrorKind::Timeout;
    }
    let causes = causes(err);
    // The causes only: reqwest's own message contains the URL, which may contain anything.
    let text = causes
        .iter()
        .map(|c| c.to_string().to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(": ");
    if causes.iter().any(|c| c.is::<rustls::Error>())
        || ["certificate", "tls", "handshake"]
            .iter()
            .any(|t| text.contains(t))
    {
        return ErrorKind::Tls;
    }
    let io_kinds: Vec<io::ErrorKind> = causes
        .iter()
        .filter_map(|c| c.downcast_ref::<io::Error>().map(io::Error::kind))
        .collect();
    if io_kinds.contains(&io::ErrorKind::ConnectionRefused) {
        return ErrorKind::ConnectionRefused;
    }
    if err.is_dns() || text.contains("dns error") || text.contains("failed to lookup address") {
        return ErrorKind::Dns;
    }
    if err.is_connect() {
        return ErrorKind::Connect;
    }
    if err.is_redirect() {
        // Too many redirects, or a redirect to an unusable location: the target's doing.
        return ErrorKind::Protocol;
    }
    if err.is_body() || err.is_decode() || !io_kinds.is_empty() {
        return ErrorKind::Io;
    }
    if err.is_request() {
        // hyper's parse errors read "invalid HTTP …"; everything else is a broken exchange.
        return if text.contains("invalid") || text.contains("parse") {
            ErrorKind::Protocol
        } else {
            ErrorKind::Io
        };
    }
    ErrorKind::Other
}

/// The error's causes, outermost first. `io::Error::source` skips the error it wraps, so that
/// inner error is added explicitly (it is where rustls and resolver errors hide).
fn causes(err: &reqwest::Error) -> Vec<&(dyn StdError + 'static)> {
    let mut out: Vec<&(dyn StdError + 'static)> = Vec::new();
    let mut next = err.source();
    while let Some(cause) = next {
        out.push(cause);
        if let Some(inner) = cause
            .downcast_ref::<io::Error>()
            .and_then(io::Error::get_ref)
        {
            out.push(inner);
        }
        next = cause.source();
    }
    out
}

/// A one-line message: reqwest's summary followed by each distinct cause.
pub(super) fn describe(err: &reqwest::Error) -> String {
    let mut parts = vec![err.to_string()];
    for cause in causes(err) {
        let text = cause.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_text_is_kept_as_text_and_binary_as_base64() {
        let text = snapshot(b"{\"a\":1}".to_vec(), 7, false, Some("application/json"));
        assert_eq!(text.encoding, BodyEncoding::Text);
        assert_eq!(text.data, "{\"a\":1}");
        assert!(!text.truncated);

        let binary = snapshot(vec![0xff, 0x00, 0x10], 3, false, Some("text/plain"));
        assert_eq!(binary.encoding, BodyEncoding::Base64);
        assert_eq!(binary.data, STANDARD.encode([0xff, 0x00, 0x10]));

        // Valid UTF-8 with NUL bytes is binary unless the content type says text.
        let nul = snapshot(vec![b'a', 0, b'b'], 3, false, None);
        assert_eq!(nul.encoding, BodyEncoding::Base64);
        let nul_text = snapshot(vec![b'a', 0, b'b'], 3, false, Some("text/plain"));
        assert_eq!(nul_text.encoding, BodyEncoding::Text);
    }

    #[test]
    fn a_character_cut_by_the_cap_does_not_make_text_binary() {
        let full = "héllo".as_bytes();
        // Cut inside the two-byte "é".
        let cut = snapshot(full[..2].to_vec(), full.len() as u64, false, None);
        assert_eq!(cut.encoding, BodyEncoding::Text);
        assert_eq!(cut.data, "h");
        assert!(cut.truncated);
        assert_eq!(cut.size, full.len() as u64);
    }

    #[test]
    fn urls_keep_their_query_and_get_enabled_params_appended() {
        let params = vec![
            KeyValue::new("a", "1"),
            KeyValue::new("a", "2 3"),
            KeyValue {
                name: "off".into(),
                value: "x".into(),
                enabled: false,
            },
        ];
        let url = build_url("http://example.test/p?keep=yes", &params).unwrap();
        assert_eq!(url.as_str(), "http://example.test/p?keep=yes&a=1&a=2+3");
        assert!(build_url("ftp://example.test/", &[]).is_err());
        assert!(build_url("not a url", &[]).is_err());
        assert!(build_url("http://", &[]).is_err());
    }

    #[test]
    fn multipart_is_well_formed() {
        let parts = vec![
            MultipartPart {
                name: "note".into(),
                value: MultipartValue::Text { value: "hi".into() },
                enabled: true,
            },
            MultipartPart {
                name: "file".into(),
                value: MultipartValue::File {
                    filename: "a\"b.bin".into(),
                    content_type: None,
                    base64: STANDARD.encode([1, 2, 3]),
                },
                enabled: true,
            },
        ];
        let (body, boundary) = encode_multipart(&parts).unwrap();
        let expected = [
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n")
                .into_bytes(),
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
                 filename=\"a%22b.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .into_bytes(),
            vec![1, 2, 3],
            format!("\r\n--{boundary}--\r\n").into_bytes(),
        ]
        .concat();
        assert_eq!(body, expected);

        let bad = vec![MultipartPart {
            name: "file".into(),
            value: MultipartValue::File {
                filename: "x".into(),
                content_type: None,
                base64: "!!!".into(),
            },
            enabled: true,
        }];
        assert!(encode_multipart(&bad).is_err());
    }
}
