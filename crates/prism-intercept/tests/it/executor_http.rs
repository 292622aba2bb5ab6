//! The HTTP executor against real upstream servers on loopback ports: each test asserts what the
//! upstream actually received, or what the executor reported about an upstream that misbehaved.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body as AxumBody, Bytes};
use axum::extract::{Multipart, State};
use axum::http::header::{CONTENT_TYPE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use prism_domain::egress::EgressPolicy;
use prism_domain::execution::ErrorKind;
use prism_domain::request::{
    Body, GraphqlSpec, HttpSettings, KeyValue, MultipartPart, MultipartValue, Protocol, RestSpec,
};
use prism_domain::trace_context::{ClientSpanContext, TraceParent};
use prism_intercept::executor::{
    BodyEncoding, ExecutorConfig, HttpExecutor, HttpOutcome, incoming_trace_headers,
};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// What the upstream received.
#[derive(Debug)]
struct Seen {
    method: Method,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Vec<u8>,
    /// Multipart fields, as parsed by axum's `Multipart` extractor.
    parts: Vec<Part>,
}

#[derive(Debug, PartialEq)]
struct Part {
    name: String,
    filename: Option<String>,
    content_type: Option<String>,
    data: Vec<u8>,
}

type Tx = mpsc::UnboundedSender<Seen>;

struct Upstream {
    addr: SocketAddr,
    seen: mpsc::UnboundedReceiver<Seen>,
}

impl Upstream {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The next request the upstream recorded (recorded before it answered, so by the time the
    /// executor returns, it is in the channel).
    async fn next(&mut self) -> Seen {
        self.seen
            .recv()
            .await
            .expect("the upstream recorded a request")
    }

    fn assert_nothing_more(&mut self) {
        if let Ok(seen) = self.seen.try_recv() {
            panic!("the upstream unexpectedly received {seen:?}");
        }
    }
}

fn seen(method: Method, uri: &Uri, headers: HeaderMap, body: Vec<u8>, parts: Vec<Part>) -> Seen {
    Seen {
        method,
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers,
        body,
        parts,
    }
}

async fn record(
    State(tx): State<Tx>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> &'static str {
    let _ = tx.send(seen(method, &uri, headers, body.to_vec(), Vec::new()));
    "recorded"
}

async fn multipart(
    State(tx): State<Tx>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    mut form: Multipart,
) -> &'static str {
    let mut parts = Vec::new();
    while let Some(field) = form
        .next_field()
        .await
        .expect("a well-formed multipart body")
    {
        parts.push(Part {
            name: field.name().unwrap_or_default().to_owned(),
            filename: field.file_name().map(str::to_owned),
            content_type: field.content_type().map(str::to_owned),
            data: field.bytes().await.unwrap().to_vec(),
        });
    }
    let _ = tx.send(seen(method, &uri, headers, Vec::new(), parts));
    "parsed"
}

/// Answers nothing, ever: the only way out is the client's timeout.
async fn never() -> &'static str {
    std::future::pending::<&'static str>().await
}

fn redirect(to: &'static str) -> Response {
    (StatusCode::FOUND, [(LOCATION, to)]).into_response()
}

fn schema() -> Value {
    json!({"queryType": {"name": "Query"}, "types": [{"kind": "OBJECT", "name": "Query"}]})
}

/// A small GraphQL-ish endpoint: checks the body shape, then answers a schema for introspection,
/// errors for queries mentioning `fail` (or any query when `?disabled`), and echoes otherwise.
async fn graphql(
    State(tx): State<Tx>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let _ = tx.send(seen(
        method,
        &uri,
        headers.clone(),
        body.to_vec(),
        Vec::new(),
    ));
    if headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) != Some("application/json") {
        return StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response();
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let Some(query) = request.get("query").and_then(Value::as_str) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let answer = if uri.query() == Some("disabled") {
        json!({"errors": [{"message": "introspection is disabled"}]})
    } else if query.contains("__schema") {
        json!({"data": {"__schema": schema()}})
    } else if query.contains("fail") {
        json!({"data": null, "errors": [{"message": "boom"}]})
    } else {
        json!({"data": {"echo": request}})
    };
    axum::Json(answer).into_response()
}

fn routes(tx: Tx) -> Router {
    Router::new()
        .route("/redirect", any(|| async { redirect("/landed") }))
        .route("/loop", any(|| async { redirect("/loop") }))
        .route(
            "/jump",
            any(|uri: Uri| async move {
                // `/jump?http://elsewhere/`: a redirect to whatever the query says.
                let to = uri.query().unwrap_or("/").to_owned();
                (StatusCode::FOUND, [(LOCATION, to)]).into_response()
            }),
        )
        .route("/never", any(never))
        .route(
            "/binary",
            get(|| async {
                (
                    [(CONTENT_TYPE, "application/octet-stream")],
                    vec![0u8, 0x9f, 0x92, 0x96, 0xff],
                )
            }),
        )
        .route(
            "/text",
            get(|| async { ([(CONTENT_TYPE, "text/plain; charset=utf-8")], "héllo wörld") }),
        )
        .route("/big", get(|| async { vec![b'a'; 100_000] }))
        .route(
            "/endless",
            get(|| async {
                let chunk = Bytes::from_static(&[b'x'; 8192]);
                AxumBody::from_stream(futures_util::stream::repeat_with(move || {
                    Ok::<_, Infallible>(chunk.clone())
                }))
            }),
        )
        .route(
            "/cookies",
            get(|| async {
                let mut headers = HeaderMap::new();
                headers.append(SET_COOKIE, "a=1; Path=/".parse().unwrap());
                headers.append(SET_COOKIE, "b=2; HttpOnly".parse().unwrap());
                (headers, "cookies")
            }),
        )
        .route("/multipart", post(multipart))
        .route("/graphql", post(graphql))
        .fallback(record)
        .with_state(tx)
}

async fn upstream() -> Upstream {
    let (tx, seen) = mpsc::unbounded_channel();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = routes(tx);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Upstream { addr, seen }
}

fn executor() -> HttpExecutor {
    HttpExecutor::new(ExecutorConfig::default())
}

fn rest(method: &str, url: String) -> RestSpec {
    RestSpec {
        method: method.into(),
        url,
        params: Vec::new(),
        headers: Vec::new(),
        body: Body::None,
        settings: HttpSettings::default(),
    }
}

fn disabled(name: &str, value: &str) -> KeyValue {
    KeyValue {
        name: name.into(),
        value: value.into(),
        enabled: false,
    }
}

fn new_context() -> ClientSpanContext {
    ClientSpanContext::start(None, None)
}

fn status(outcome: &HttpOutcome) -> u16 {
    outcome
        .status_code()
        .unwrap_or_else(|| panic!("no response: {:?}", outcome.error))
}

fn header_values<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect()
}

const INCOMING: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

#[tokio::test]
async fn traceparent_starts_a_new_trace_without_incoming_context() {
    let mut up = upstream().await;
    let ctx = new_context();
    let outcome = executor()
        .execute_rest(&rest("GET", up.url("/plain")), &ctx)
        .await;
    assert_eq!(status(&outcome), 200);

    let seen = up.next().await;
    let sent = header_values(&seen.headers, "traceparent");
    assert_eq!(sent.len(), 1);
    let parsed = TraceParent::parse(sent[0]).expect("a valid traceparent");
    assert_eq!(parsed.trace_id, ctx.trace_id);
    assert_eq!(parsed.parent_id, ctx.span_id);
    assert!(parsed.sampled());
    assert!(seen.headers.get("tracestate").is_none());
    // The snapshot lists what was sent.
    assert!(
        outcome
            .request
            .headers
            .iter()
            .any(|h| h.name == "traceparent" && h.value == sent[0])
    );
}

#[tokio::test]
async fn traceparent_continues_the_users_trace_and_is_sent_once() {
    let mut up = upstream().await;
    let mut spec = rest("GET", up.url("/traced"));
    spec.headers = vec![
        KeyValue::new("TraceParent", INCOMING),
        KeyValue::new("tracestate", "vendor=abc"),
    ];
    let (traceparent, tracestate) = incoming_trace_headers(&spec.headers);
    let ctx = ClientSpanContext::start(traceparent.as_deref(), tracestate.as_deref());
    let outcome = executor().execute_rest(&spec, &ctx).await;
    assert_eq!(status(&outcome), 200);

    let seen = up.next().await;
    let sent = header_values(&seen.headers, "traceparent");
    assert_eq!(sent.len(), 1, "traceparent sent once: {sent:?}");
    let parsed = TraceParent::parse(sent[0]).unwrap();
    assert_eq!(
        parsed.trace_id.to_hex(),
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "same trace"
    );
    assert_ne!(
        parsed.parent_id.to_hex(),
        "00f067aa0ba902b7",
        "a new child span"
    );
    assert_eq!(parsed.parent_id, ctx.span_id);
    assert_eq!(header_values(&seen.headers, "tracestate"), ["vendor=abc"]);
}

#[tokio::test]
async fn methods_including_head_options_and_custom_tokens_reach_the_upstream() {
    let mut up = upstream().await;
    let executor = executor();
    for method in ["GET", "DELETE", "HEAD", "OPTIONS", "PURGE"] {
        let outcome = executor
            .execute_rest(&rest(method, up.url("/m")), &new_context())
            .await;
        assert_eq!(status(&outcome), 200, "{method}");
        assert_eq!(outcome.request.method, method);
        let seen = up.next().await;
        assert_eq!(seen.method.as_str(), method);
        if method == "HEAD" {
            assert_eq!(outcome.response.unwrap().body.size, 0);
        }
    }
}

#[tokio::test]
async fn query_params_are_appended_repeated_and_disabled_ones_skipped() {
    let mut up = upstream().await;
    let mut spec = rest("GET", up.url("/search?keep=1"));
    spec.params = vec![
        KeyValue::new("tag", "a"),
        KeyValue::new("tag", "b"),
        disabled("hidden", "x"),
        KeyValue::new("q", "two words&more"),
    ];
    let outcome = executor().execute_rest(&spec, &new_context()).await;
    assert_eq!(status(&outcome), 200);
    let seen = up.next().await;
    assert_eq!(seen.path, "/search");
    assert_eq!(
        seen.query.as_deref(),
        Some("keep=1&tag=a&tag=b&q=two+words%26more")
    );
    assert!(
        outcome
            .request
            .url
            .ends_with("/search?keep=1&tag=a&tag=b&q=two+words%26more")
    );
}

#[tokio::test]
async fn repeated_request_headers_are_all_sent_and_disabled_ones_skipped() {
    let mut up = upstream().await;
    let mut spec = rest("GET", up.url("/headers"));
    spec.headers = vec![
        KeyValue::new("X-Multi", "one"),
        KeyValue::new("X-Other", "o"),
        KeyValue::new("x-multi", "two"),
        disabled("X-Off", "nope"),
        KeyValue::new("Content-Length", "999"),
    ];
    let outcome = executor().execute_rest(&spec, &new_context()).await;
    assert_eq!(status(&outcome), 200);
    let seen = up.next().await;
    assert_eq!(header_values(&seen.headers, "x-multi"), ["one", "two"]);
    assert_eq!(header_values(&seen.headers, "x-other"), ["o"]);
    assert!(seen.headers.get("x-off").is_none());
    // A user Content-Length is not sent: the body decides it.
    assert_ne!(
        seen.headers
            .get("content-length")
            .map(|v| v.to_str().unwrap()),
        Some("999")
    );
}

#[tokio::test]
async fn raw_body_uses_its_content_type_unless_a_header_sets_one() {
    let mut up = upstream().await;
    let executor = executor();
    let mut spec = rest("POST", up.url("/raw"));
    spec.body = Body::Raw {
        text: "<a>1</a>".into(),
        content_type: Some("text/plain".into()),
    };
    let outcome = executor.execute_rest(&spec, &new_context()).await;
    assert_eq!(status(&outcome), 200);
    assert_eq!(outcome.request_size, 8);
    let seen = up.next().await;
    assert_eq!(seen.body, b"<a>1</a>");
    assert_eq!(header_values(&seen.headers, "content-type"), ["text/plain"]);

    spec.headers = vec![KeyValue::new("content-type", "application/xml")];
    executor.execute_rest(&spec, &new_context()).await;
    let seen = up.next().await;
    assert_eq!(
        header_values(&seen.headers, "content-type"),
        ["application/xml"]
    );
    assert_eq!(seen.body, b"<a>1</a>");
}

#[tokio::test]
async fn json_body_defaults_to_application_json() {
    let mut up = upstream().await;
    let executor = executor();
    let mut spec = rest("PUT", up.url("/json"));
    spec.body = Body::Json {
        text: r#"{"name":"prism"}"#.into(),
    };
    let outcome = executor.execute_rest(&spec, &new_context()).await;
    assert_eq!(status(&outcome), 200);
    let seen = up.next().await;
    assert_eq!(seen.method, Method::PUT);
    assert_eq!(seen.body, br#"{"name":"prism"}"#);
    assert_eq!(
        header_values(&seen.headers, "content-type"),
        ["application/json"]
    );
    let snapshot = outcome.request.body.unwrap();
    assert_eq!(snapshot.encoding, BodyEncoding::Text);
    assert_eq!(snapshot.data, r#"{"name":"prism"}"#);

    spec.headers = vec![KeyValue::new("Content-Type", "application/vnd.api+json")];
    executor.execute_rest(&spec, &new_context()).await;
    let seen = up.next().await;
    assert_eq!(
        header_values(&seen.headers, "content-type"),
        ["application/vnd.api+json"]
    );
}

#[tokio::test]
async fn form_body_is_urlencoded() {
    let mut up = upstream().await;
    let mut spec = rest("POST", up.url("/form"));
    spec.body = Body::Form {
        fields: vec![
            KeyValue::new("a", "1"),
            disabled("skip", "me"),
            KeyValue::new("b", "two words&é"),
        ],
    };
    let outcome = executor().execute_rest(&spec, &new_context()).await;
    assert_eq!(status(&outcome), 200);
    let seen = up.next().await;
    assert_eq!(
        header_values(&seen.headers, "content-type"),
        ["application/x-www-form-urlencoded"]
    );
    assert_eq!(
        String::from_utf8(seen.body).unwrap(),
        "a=1&b=two+words%26%C3%A9"
    );
}

#[tokio::test]
async fn multipart_body_is_parsed_by_the_upstream() {
    let mut up = upstream().await;
    let file = vec![0u8, 1, 2, 254, 255, b'\r', b'\n', b'-', b'-'];
    let mut spec = rest("POST", up.url("/multipart"));
    // A user Content-Type cannot carry the generated boundary, so it is replaced.
    spec.headers = vec![KeyValue::new("Content-Type", "multipart/form-data")];
    spec.body = Body::Multipart {
        parts: vec![
            MultipartPart {
                name: "note".into(),
                value: MultipartValue::Text {
                    value: "hello wörld".into(),
                },
                enabled: true,
            },
            MultipartPart {
                name: "off".into(),
                value: MultipartValue::Text { value: "x".into() },
                enabled: false,
            },
            MultipartPart {
                name: "upload".into(),
                value: MultipartValue::File {
                    filename: "data.bin".into(),
                    content_type: Some("image/png".into()),
                    base64: STANDARD.encode(&file),
                },
                enabled: true,
            },
        ],
    };
    let outcome = executor().execute_rest(&spec, &new_context()).await;
    assert_eq!(status(&outcome), 200, "{:?}", outcome.response);
    let seen = up.next().await;
    assert_eq!(
        seen.parts,
        [
            Part {
                name: "note".into(),
                filename: None,
                content_type: None,
                data: "hello wörld".as_bytes().to_vec(),
            },
            Part {
                name: "upload".into(),
                filename: Some("data.bin".into()),
                content_type: Some("image/png".into()),
                data: file,
            },
        ]
    );
    let content_type = header_values(&seen.headers, "content-type");
    assert_eq!(content_type.len(), 1);
    assert!(content_type[0].starts_with("multipart/form-data; boundary="));
    assert_eq!(
        seen.headers["content-length"].to_str().unwrap(),
        outcome.request_size.to_string()
    );
}

#[tokio::test]
async fn invalid_base64_in_a_file_part_is_an_invalid_request() {
    let mut up = upstream().await;
    let mut spec = rest("POST", up.url("/multipart"));
    spec.body = Body::Multipart {
        parts: vec![MultipartPart {
            name: "upload".into(),
            value: MultipartValue::File {
                filename: "x".into(),
                content_type: None,
                base64: "%%%".into(),
            },
            enabled: true,
        }],
    };
    let outcome = executor().execute_rest(&spec, &new_context()).await;
    assert_eq!(outcome.error_kind(), Some(ErrorKind::InvalidRequest));
    up.assert_nothing_more();
}

#[tokio::test]
async fn no_body_sends_no_body_and_no_content_type() {
    let mut up = upstream().await;
    let outcome = executor()
        .execute_rest(&rest("POST", up.url("/empty")), &new_context())
        .await;
    assert_eq!(status(&outcome), 200);
    assert_eq!(outcome.request_size, 0);
    assert!(outcome.request.body.is_none());
    let seen = up.next().await;
    assert!(seen.body.is_empty());
    assert!(seen.headers.get("content-type").is_none());
}

#[tokio::test]
async fn redirects_are_followed_by_default() {
    let mut up = upstream().await;
    let outcome = executor()
        .execute_rest(&rest("GET", up.url("/redirect")), &new_context())
        .await;
    assert_eq!(status(&outcome), 200);
    let response = outcome.response.unwrap();
    assert!(response.url.ends_with("/landed"), "{}", response.url);
    let seen = up.next().await;
    assert_eq!(seen.path, "/landed");
    assert_eq!(
        header_values(&seen.headers, "traceparent").len(),
        1,
        "trace context survives the redirect"
    );
}

#[tokio::test]
async fn redirects_are_returned_when_not_followed() {
    let mut up = upstream().await;
    let mut spec = rest("GET", up.url("/redirect"));
    spec.settings.follow_redirects = Some(false);
    let outcome = executor().execute_rest(&spec, &new_context()).await;
    assert_eq!(status(&outcome), 302);
    assert!(outcome.error.is_none());
    let response = outcome.response.unwrap();
    assert!(
        response
            .headers
            .iter()
            .any(|h| h.name == "location" && h.value == "/landed")
    );
    // The request is complete, so a followed redirect would already have been recorded.
    up.assert_nothing_more();
}

#[tokio::test]
async fn too_many_redirects_is_a_protocol_error() {
    let up = upstream().await;
    let mut spec = rest("GET", up.url("/loop"));
    spec.settings.max_redirects = Some(3);
    let outcome = executor().execute_rest(&spec, &new_context()).await;
    assert_eq!(outcome.error_kind(), Some(ErrorKind::Protocol));
    assert!(outcome.response.is_none());
}

#[tokio::test]
async fn a_target_that_never_answers_times_out_quickly() {
    let up = upstream().await;
    let mut spec = rest("GET", up.url("/never"));
    spec.settings.timeout_ms = Some(200);
    let started = std::time::Instant::now();
    let outcome = executor().execute_rest(&spec, &new_context()).await;
    let error = outcome.error.as_ref().expect("an error");
    assert_eq!(error.kind, ErrorKind::Timeout, "{}", error.message);
    assert!(outcome.response.is_none());
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(outcome.timings.total_ns >= 200_000_000);
    assert!(outcome.is_failure(Protocol::Rest));
}

#[tokio::test]
async fn a_closed_port_is_connection_refused() {
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let outcome = executor()
        .execute_rest(&rest("GET", format!("http://{addr}/")), &new_context())
        .await;
    let error = outcome.error.expect("an error");
    assert_eq!(
        error.kind,
        ErrorKind::ConnectionRefused,
        "{}",
        error.message
    );
    assert!(!error.message.is_empty());
}

#[tokio::test]
async fn an_unresolvable_host_is_a_dns_error() {
    let outcome = executor()
        .execute_rest(
            &rest("GET", "http://prism-executor-test.invalid/".into()),
            &new_context(),
        )
        .await;
    let error = outcome.error.expect("an error");
    assert_eq!(error.kind, ErrorKind::Dns, "{}", error.message);
}

#[tokio::test]
async fn malformed_urls_and_other_schemes_are_invalid_requests() {
    let executor = executor();
    for url in [
        "not a url",
        "http://exa mple.com/",
        "ftp://127.0.0.1/file",
        "http://",
    ] {
        let outcome = executor
            .execute_rest(&rest("GET", url.into()), &new_context())
            .await;
        let error = outcome.error.expect("an error");
        assert_eq!(error.kind, ErrorKind::InvalidRequest, "{url}");
        assert!(error.message.contains(url), "{url}: {}", error.message);
        assert!(outcome.response.is_none());
    }
}

#[tokio::test]
async fn bad_method_tokens_and_bad_headers_are_invalid_requests() {
    let mut up = upstream().await;
    let executor = executor();
    for method in ["BAD METHOD", "", "GE(T", "G\r\nET"] {
        let outcome = executor
            .execute_rest(&rest(method, up.url("/")), &new_context())
            .await;
        assert_eq!(
            outcome.error_kind(),
            Some(ErrorKind::InvalidRequest),
            "{method:?}"
        );
    }
    for header in [
        KeyValue::new("Bad Name", "v"),
        KeyValue::new("X-Ok", "line\r\nInjected: yes"),
    ] {
        let mut spec = rest("GET", up.url("/"));
        spec.headers = vec![header.clone()];
        let outcome = executor.execute_rest(&spec, &new_context()).await;
        assert_eq!(
            outcome.error_kind(),
            Some(ErrorKind::InvalidRequest),
            "{header:?}"
        );
    }
    up.assert_nothing_more();
}

#[tokio::test]
async fn text_responses_are_text_and_binary_ones_base64() {
    let up = upstream().await;
    let executor = executor();
    let outcome = executor
        .execute_rest(&rest("GET", up.url("/text")), &new_context())
        .await;
    let body = outcome.response.unwrap().body;
    assert_eq!(body.encoding, BodyEncoding::Text);
    assert_eq!(body.data, "héllo wörld");
    assert_eq!(body.size, "héllo wörld".len() as u64);

    let outcome = executor
        .execute_rest(&rest("GET", up.url("/binary")), &new_context())
        .await;
    assert_eq!(outcome.response_size, 5);
    let body = outcome.response.unwrap().body;
    assert_eq!(body.encoding, BodyEncoding::Base64);
    assert_eq!(
        STANDARD.decode(&body.data).unwrap(),
        [0u8, 0x9f, 0x92, 0x96, 0xff]
    );
    assert!(!body.truncated);
}

#[tokio::test]
async fn a_large_response_is_truncated_and_its_real_size_reported() {
    let up = upstream().await;
    let executor = HttpExecutor::new(ExecutorConfig {
        max_body_bytes: 1000,
        ..ExecutorConfig::default()
    });
    let outcome = executor
        .execute_rest(&rest("GET", up.url("/big")), &new_context())
        .await;
    assert!(outcome.error.is_none());
    assert_eq!(outcome.response_size, 100_000);
    let body = outcome.response.unwrap().body;
    assert!(body.truncated);
    assert!(!body.size_is_lower_bound);
    assert_eq!(body.size, 100_000);
    assert_eq!(body.data, "a".repeat(1000));
}

#[tokio::test]
async fn an_endless_response_stops_at_the_hard_limit() {
    let up = upstream().await;
    let executor = HttpExecutor::new(ExecutorConfig {
        max_body_bytes: 1000,
        hard_read_limit: 1024 * 1024,
        ..ExecutorConfig::default()
    });
    let outcome = executor
        .execute_rest(&rest("GET", up.url("/endless")), &new_context())
        .await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    let body = outcome.response.unwrap().body;
    assert!(body.truncated);
    assert!(body.size_is_lower_bound);
    assert!(body.size > 1024 * 1024);
    assert_eq!(body.data.len(), 1000);
}

#[tokio::test]
async fn repeated_set_cookie_headers_stay_separate() {
    let up = upstream().await;
    let outcome = executor()
        .execute_rest(&rest("GET", up.url("/cookies")), &new_context())
        .await;
    let response = outcome.response.unwrap();
    let cookies: Vec<&str> = response
        .headers
        .iter()
        .filter(|h| h.name == "set-cookie")
        .map(|h| h.value.as_str())
        .collect();
    assert_eq!(cookies, ["a=1; Path=/", "b=2; HttpOnly"]);
}

#[tokio::test]
async fn timings_and_serialization() {
    let up = upstream().await;
    let outcome = executor()
        .execute_rest(&rest("GET", up.url("/timed")), &new_context())
        .await;
    let ttfb = outcome.timings.ttfb_ns.expect("ttfb");
    assert!(ttfb > 0 && ttfb <= outcome.timings.total_ns);
    // An IP literal is not looked up; the connection is new, so its connect time is known.
    assert_eq!(outcome.timings.dns_ns, None);
    assert!(
        outcome
            .timings
            .connect_ns
            .is_some_and(|c| c > 0 && c <= ttfb)
    );
    assert_eq!(outcome.timings.connection_reused, Some(false));
    assert_eq!(outcome.response.as_ref().unwrap().http_version, "HTTP/1.1");

    let json = serde_json::to_value(&outcome).unwrap();
    assert_eq!(json["response"]["status"], 200);
    assert_eq!(json["response"]["body"]["encoding"], "text");
    assert_eq!(json["graphql_errors"], false);
    assert!(json["timings"]["total_ns"].as_i64().unwrap() > 0);
    assert_eq!(json["timings"]["connection_reused"], false);
    assert!(json["error"].is_null());

    let failed = executor()
        .execute_rest(&rest("NOT VALID", up.url("/")), &new_context())
        .await;
    let json = serde_json::to_value(&failed).unwrap();
    assert_eq!(json["error"]["kind"], "invalid_request");
    assert!(json["response"].is_null());
}

/// Checks the phases of a request that opened its own connection: both measured, positive, and
/// together no longer than the time to first byte.
fn assert_new_connection(outcome: &HttpOutcome) {
    let t = outcome.timings;
    assert_eq!(t.connection_reused, Some(false), "{t:?}");
    let dns = t.dns_ns.expect("the lookup of localhost is measured");
    let connect = t.connect_ns.expect("the connect is measured");
    let ttfb = t.ttfb_ns.expect("ttfb");
    assert!(dns > 0 && connect > 0, "{t:?}");
    assert!(dns + connect <= ttfb && ttfb <= t.total_ns, "{t:?}");
    assert_eq!(t.tls_ns, None, "TLS is inside connect_ns");
}

fn assert_reused_connection(outcome: &HttpOutcome) {
    let t = outcome.timings;
    assert_eq!(t.connection_reused, Some(true), "{t:?}");
    assert_eq!(
        (t.dns_ns, t.connect_ns, t.tls_ns),
        (None, None, None),
        "{t:?}"
    );
    assert!(t.ttfb_ns.is_some_and(|ttfb| ttfb > 0 && ttfb <= t.total_ns));
}

#[tokio::test]
async fn a_new_connection_reports_dns_and_connect_and_a_reused_one_reports_neither() {
    let up = upstream().await;
    let url = format!("http://localhost:{}/timed", up.addr.port());
    let executor = executor();
    let first = executor
        .execute_rest(&rest("GET", url.clone()), &new_context())
        .await;
    assert_eq!(status(&first), 200, "{:?}", first.error);
    assert_new_connection(&first);
    // The same client again: the pooled connection carries it.
    let second = executor
        .execute_rest(&rest("GET", url.clone()), &new_context())
        .await;
    assert_eq!(status(&second), 200);
    assert_reused_connection(&second);
    let json = serde_json::to_value(&second).unwrap();
    assert_eq!(json["timings"]["connection_reused"], true);
    assert!(json["timings"]["dns_ns"].is_null());
    // Another executor has its own pool, so it opens (and times) a connection of its own.
    let fresh = self::executor()
        .execute_rest(&rest("GET", url), &new_context())
        .await;
    assert_new_connection(&fresh);
}

#[tokio::test]
async fn the_egress_policy_resolver_times_its_lookup_too() {
    let up = upstream().await;
    let mut policy = EgressPolicy::restricted();
    policy.allow_cidrs.push("127.0.0.0/8".parse().unwrap());
    policy.allow_cidrs.push("::1/128".parse().unwrap());
    let executor = guarded_executor(policy);
    let url = format!("http://localhost:{}/timed", up.addr.port());
    let first = executor
        .execute_rest(&rest("GET", url.clone()), &new_context())
        .await;
    assert_eq!(status(&first), 200, "{:?}", first.error);
    assert_new_connection(&first);
    let second = executor
        .execute_rest(&rest("GET", url), &new_context())
        .await;
    assert_reused_connection(&second);
}

#[tokio::test]
async fn a_refused_connection_still_reports_its_lookup() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let outcome = executor()
        .execute_rest(
            &rest("GET", format!("http://localhost:{port}/")),
            &new_context(),
        )
        .await;
    assert_eq!(outcome.error_kind(), Some(ErrorKind::ConnectionRefused));
    assert!(outcome.timings.dns_ns.is_some_and(|d| d > 0));
    assert_eq!(outcome.timings.connect_ns, None);
    assert_eq!(outcome.timings.connection_reused, None);
}

/// A one-shot server that reads the first request's head, answers with `raw` bytes and closes
/// the connection: for answers no well-behaved server would give.
async fn raw_upstream(raw: &'static [u8]) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        socket.write_all(raw).await.unwrap();
    });
    addr
}

#[tokio::test]
async fn a_body_cut_short_is_an_io_error_and_the_response_is_kept() {
    let addr =
        raw_upstream(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nX-Kept: yes\r\n\r\nonly this")
            .await;
    let outcome = executor()
        .execute_rest(&rest("GET", format!("http://{addr}/")), &new_context())
        .await;
    let error = outcome.error.as_ref().expect("an error");
    assert_eq!(error.kind, ErrorKind::Io, "{}", error.message);
    let response = outcome.response.as_ref().expect("the headers arrived");
    assert_eq!(response.status, 200);
    assert!(response.headers.iter().any(|h| h.name == "x-kept"));
    assert_eq!(response.body.data, "only this");
    assert_eq!(outcome.response_size, 9);
    assert!(outcome.is_failure(Protocol::Rest));
}

#[tokio::test]
async fn a_response_that_is_not_http_is_a_protocol_error() {
    let addr = raw_upstream(b"SSH-2.0-OpenSSH_9.6\r\n\r\n").await;
    let outcome = executor()
        .execute_rest(&rest("GET", format!("http://{addr}/")), &new_context())
        .await;
    let error = outcome.error.expect("an error");
    assert_eq!(error.kind, ErrorKind::Protocol, "{}", error.message);
    assert!(outcome.response.is_none());
}

// --- TLS -----------------------------------------------------------------------------------

/// A self-signed certificate for `localhost` and `127.0.0.1`, valid until 2126 (test only).
const CERT_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBnDCCAUOgAwIBAgIUTtiHx5/L7dasjpPhS86tngU0LFYwCgYIKoZIzj0EAwIw
FTETMBEGA1UEAwwKcHJpc20tdGVzdDAgFw0yNjEyMDEwMDM4NTBaGA8yMTI2MTEw
NzAwMzg1MFowFTETMBEGA1UEAwwKcHJpc20tdGVzdDBZMBMGByqGSM49AgEGCCqG
SM49AwEHA0IABGshOTdO6oeQBORQHA6E7LVqefQ6yuzm9ikiSJbxazu097kr4aCC
ohLcpiFlSKnnU0aFnFM7Mjd/9/qPQMFBTFWjbzBtMB0GA1UdDgQWBBSpO/Gf9lJ1
+Fqg+7zA8BAoksEqUTAfBgNVHSMEGDAWgBSpO/Gf9lJ1+Fqg+7zA8BAoksEqUTAP
BgNVHRMBAf8EBTADAQH/MBoGA1UdEQQTMBGCCWxvY2FsaG9zdIcEfwAAATAKBggq
hkjOPQQDAgNHADBEAiAl1xJ2CpjGJdJh1bjqNMjIBxjf3rcHX2B27A+wauCDKAIg
DkcfQnLSMtBK6x4cjyKscQJdr+5be2SBkA6fBrwOA10=
-----END CERTIFICATE-----
";

const KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg0TU7T23d/i3omWZL
gmllFeWuu7sH8DoMu0uNybYIM9qhRANCAARrITk3TuqHkATkUBwOhOy1ann0Osrs
5vYpIkiW8Ws7tPe5K+GggqIS3KYhZUip51NGhZxTOzI3f/f6j0DBQUxV
-----END PRIVATE KEY-----
";

/// Accepts TCP connections and completes the TLS handshake before axum sees them; failed
/// handshakes (a client rejecting the certificate) are skipped.
struct TlsListener {
    tcp: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

async fn tls_upstream() -> Upstream {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let cert = CertificateDer::from_pem_slice(CERT_PEM.as_bytes()).unwrap();
    let key = PrivateKeyDer::from_pem_slice(KEY_PEM.as_bytes()).unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];

    let (tx, seen) = mpsc::unbounded_channel();
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let listener = TlsListener {
        tcp,
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
    };
    let app = routes(tx);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Upstream { addr, seen }
}

#[tokio::test]
async fn tls_is_verified_by_default_and_can_be_switched_off() {
    let executor = executor();
    assert!(
        executor.client_key(&HttpSettings::default()).verify_tls,
        "TLS verification is on unless a request turns it off"
    );

    let mut up = tls_upstream().await;
    let url = format!("https://localhost:{}/secure", up.addr.port());
    let outcome = executor
        .execute_rest(&rest("GET", url.clone()), &new_context())
        .await;
    let error = outcome
        .error
        .expect("a self-signed certificate is rejected");
    assert_eq!(error.kind, ErrorKind::Tls, "{}", error.message);
    up.assert_nothing_more();

    let mut spec = rest("GET", url);
    spec.settings.verify_tls = Some(false);
    let outcome = executor.execute_rest(&spec, &new_context()).await;
    assert_eq!(status(&outcome), 200, "{:?}", outcome.error);
    // The connect time includes the TLS handshake (not measured apart).
    assert_new_connection(&outcome);
    // HTTP/2 negotiated over TLS with ALPN.
    assert_eq!(outcome.response.unwrap().http_version, "HTTP/2.0");
    let seen = up.next().await;
    assert_eq!(seen.path, "/secure");
    assert_eq!(header_values(&seen.headers, "traceparent").len(), 1);
}

// --- GraphQL -------------------------------------------------------------------------------

fn graphql_spec(url: String, query: &str) -> GraphqlSpec {
    GraphqlSpec {
        url,
        query: query.into(),
        variables: None,
        operation_name: None,
        headers: Vec::new(),
        settings: HttpSettings::default(),
    }
}

#[tokio::test]
async fn graphql_posts_query_variables_and_operation_name() {
    let mut up = upstream().await;
    let mut spec = graphql_spec(
        up.url("/graphql"),
        "query User($id: ID!) { user(id: $id) { name } }",
    );
    spec.variables = Some(r#"{"id": "42"}"#.into());
    spec.operation_name = Some("User".into());
    spec.headers = vec![KeyValue::new("Authorization", "Bearer t")];
    let ctx = new_context();
    let outcome = executor().execute_graphql(&spec, &ctx).await;
    assert_eq!(status(&outcome), 200);
    assert!(!outcome.graphql_errors);
    assert!(!outcome.is_failure(Protocol::Graphql));

    let seen = up.next().await;
    assert_eq!(seen.method, Method::POST);
    assert_eq!(
        header_values(&seen.headers, "content-type"),
        ["application/json"]
    );
    assert_eq!(header_values(&seen.headers, "authorization"), ["Bearer t"]);
    assert_eq!(
        TraceParent::parse(header_values(&seen.headers, "traceparent")[0])
            .unwrap()
            .trace_id,
        ctx.trace_id
    );
    let body: Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(
        body,
        json!({
            "query": "query User($id: ID!) { user(id: $id) { name } }",
            "variables": {"id": "42"},
            "operationName": "User",
        })
    );
}

#[tokio::test]
async fn graphql_omits_empty_variables_and_operation_name() {
    let mut up = upstream().await;
    let mut spec = graphql_spec(up.url("/graphql"), "{ ping }");
    spec.variables = Some("   ".into());
    spec.operation_name = Some(String::new());
    let outcome = executor().execute_graphql(&spec, &new_context()).await;
    assert_eq!(status(&outcome), 200);
    let seen = up.next().await;
    let body: Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(body, json!({"query": "{ ping }"}));
}

#[tokio::test]
async fn graphql_errors_are_flagged_and_the_status_kept() {
    let up = upstream().await;
    let outcome = executor()
        .execute_graphql(
            &graphql_spec(up.url("/graphql"), "{ fail }"),
            &new_context(),
        )
        .await;
    assert_eq!(status(&outcome), 200);
    assert!(outcome.graphql_errors);
    assert!(outcome.error.is_none());
    assert!(outcome.is_failure(Protocol::Graphql));
}

#[tokio::test]
async fn graphql_with_invalid_variables_is_an_invalid_request() {
    let mut up = upstream().await;
    let mut spec = graphql_spec(up.url("/graphql"), "{ ping }");
    spec.variables = Some("{not json".into());
    let outcome = executor().execute_graphql(&spec, &new_context()).await;
    let error = outcome.error.expect("an error");
    assert_eq!(error.kind, ErrorKind::InvalidRequest);
    assert!(error.message.contains("variables"), "{}", error.message);
    up.assert_nothing_more();
}

#[tokio::test]
async fn a_user_content_type_overrides_the_graphql_default() {
    let mut up = upstream().await;
    let mut spec = graphql_spec(up.url("/graphql"), "{ ping }");
    spec.headers = vec![KeyValue::new("content-type", "application/graphql+json")];
    let outcome = executor().execute_graphql(&spec, &new_context()).await;
    // The test endpoint insists on application/json, so it refuses this one.
    assert_eq!(status(&outcome), 415);
    let seen = up.next().await;
    assert_eq!(
        header_values(&seen.headers, "content-type"),
        ["application/graphql+json"]
    );
}

#[tokio::test]
async fn introspection_returns_the_schema() {
    let mut up = upstream().await;
    let introspection = executor()
        .introspect(
            &up.url("/graphql"),
            &[KeyValue::new("X-Api-Key", "k")],
            &HttpSettings::default(),
            &new_context(),
        )
        .await;
    let schema = introspection.into_result().expect("a schema");
    assert_eq!(schema, self::schema());
    let seen = up.next().await;
    assert_eq!(header_values(&seen.headers, "x-api-key"), ["k"]);
    let body: Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(
        body["query"],
        prism_intercept::executor::INTROSPECTION_QUERY
    );
    assert_eq!(body["operationName"], "IntrospectionQuery");
}

#[tokio::test]
async fn introspection_without_a_schema_says_why() {
    let up = upstream().await;
    let introspection = executor()
        .introspect(
            &up.url("/graphql?disabled"),
            &[],
            &HttpSettings::default(),
            &new_context(),
        )
        .await;
    assert!(introspection.schema.is_none());
    let outcome = introspection.into_result().unwrap_err();
    assert!(outcome.graphql_errors);
    let error = outcome.error.expect("an explanation");
    assert_eq!(error.kind, ErrorKind::Protocol);
    assert!(
        error.message.contains("introspection is disabled"),
        "{}",
        error.message
    );
}

fn guarded_executor(policy: EgressPolicy) -> HttpExecutor {
    HttpExecutor::new(ExecutorConfig {
        egress: policy,
        ..ExecutorConfig::default()
    })
}

#[tokio::test]
async fn egress_policy_blocks_internal_ip_literals_before_sending() {
    let mut up = upstream().await;
    let outcome = guarded_executor(EgressPolicy::restricted())
        .execute_rest(&rest("GET", up.url("/anything")), &new_context())
        .await;
    assert_eq!(outcome.error_kind(), Some(ErrorKind::Blocked));
    let message = &outcome.error.as_ref().unwrap().message;
    assert!(message.contains("loopback"), "{message}");
    assert!(outcome.response.is_none());
    up.assert_nothing_more();
}

#[tokio::test]
async fn egress_policy_checks_resolved_addresses_of_host_names() {
    let mut up = upstream().await;
    let url = format!("http://localhost:{}/anything", up.addr.port());
    let outcome = guarded_executor(EgressPolicy::restricted())
        .execute_rest(&rest("GET", url.clone()), &new_context())
        .await;
    assert_eq!(
        outcome.error_kind(),
        Some(ErrorKind::Blocked),
        "{outcome:?}"
    );
    up.assert_nothing_more();

    // An explicit range exception lets the same name through.
    let mut policy = EgressPolicy::restricted();
    policy.allow_cidrs.push("127.0.0.0/8".parse().unwrap());
    policy.allow_cidrs.push("::1/128".parse().unwrap());
    let outcome = guarded_executor(policy)
        .execute_rest(&rest("GET", url), &new_context())
        .await;
    assert_eq!(status(&outcome), 200);
    assert_eq!(up.next().await.path, "/anything");
}

#[tokio::test]
async fn egress_policy_checks_every_redirect_hop() {
    let mut up = upstream().await;
    // The first hop is allowed by name; the redirect goes to an IP literal, which is never
    // resolved, so only the redirect policy can stop it (unchecked it would be "refused").
    let mut policy = EgressPolicy::restricted();
    policy
        .allow_hosts
        .push(prism_domain::egress::HostPattern::new("127.0.0.1"));
    let target = format!("http://[::1]:{}/landed", up.addr.port());
    let outcome = guarded_executor(policy.clone())
        .execute_rest(
            &rest("GET", up.url(&format!("/jump?{target}"))),
            &new_context(),
        )
        .await;
    assert_eq!(
        outcome.error_kind(),
        Some(ErrorKind::Blocked),
        "{outcome:?}"
    );
    up.assert_nothing_more();

    // Without the redirect the allowed host is reachable.
    let outcome = guarded_executor(policy)
        .execute_rest(&rest("GET", up.url("/direct")), &new_context())
        .await;
    assert_eq!(status(&outcome), 200);
}

#[tokio::test]
async fn egress_deny_list_applies_even_when_internal_targets_are_allowed() {
    let mut up = upstream().await;
    let mut policy = EgressPolicy::allow_all();
    policy.deny_cidrs.push("127.0.0.0/8".parse().unwrap());
    let outcome = guarded_executor(policy)
        .execute_rest(&rest("GET", up.url("/x")), &new_context())
        .await;
    assert_eq!(outcome.error_kind(), Some(ErrorKind::Blocked));
    assert!(
        outcome.error.unwrap().message.contains("127.0.0.0/8"),
        "the message names the rule"
    );
    up.assert_nothing_more();
}
