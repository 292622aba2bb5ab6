//! OTLP ingest end to end: the HTTP route and the gRPC service served on loopback ports over a
//! real recorder and database; every test reads back what was stored. The last test drives the
//! real OpenTelemetry Python SDK against both endpoints.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as Av;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1 as otlp;
use prism_domain::trace::{
    Scope, Span, SpanEvent, SpanId, SpanKind, SpanLink, StatusCode, TraceId,
};
use prism_domain::user::{Email, User};
use prism_domain::workspace::Workspace;
use prism_domain::{Timestamp, UserId, WorkspaceId};
use prism_intercept::otlp::status::{ErrorInfo, RetryInfo, RpcStatus};
use prism_intercept::otlp::{
    IngestAuthorizer, IngestRejection, OtlpIngest, OtlpLimits, http_routes, serve_grpc,
};
use prism_intercept::recorder::{Recorder, RecorderConfig, RecorderTask};
use prism_store::Store;
use prost::Message;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const KEY: &str = "test-key";

// ---------------------------------------------------------------------------------------------
// Authorizers

/// Accepts `Authorization: Bearer test-key` or `x-prism-ingest-key: test-key` for one workspace.
#[derive(Debug)]
struct KeyAuthorizer {
    workspace: WorkspaceId,
}

#[async_trait::async_trait]
impl IngestAuthorizer for KeyAuthorizer {
    async fn authorize(
        &self,
        headers: &HeaderMap,
        _peer: Option<SocketAddr>,
    ) -> Result<Option<WorkspaceId>, IngestRejection> {
        let bearer = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.strip_prefix("Bearer ").unwrap_or("").to_owned());
        let key = bearer.or_else(|| {
            headers
                .get("x-prism-ingest-key")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        });
        match key {
            None => Err(IngestRejection::MissingCredentials),
            Some(key) if key == KEY => Ok(Some(self.workspace)),
            Some(_) => Err(IngestRejection::InvalidCredentials),
        }
    }
}

/// Lets anyone on the loopback interface in, unattributed; needs the peer address to decide.
#[derive(Debug)]
struct LoopbackAuthorizer;

#[async_trait::async_trait]
impl IngestAuthorizer for LoopbackAuthorizer {
    async fn authorize(
        &self,
        _headers: &HeaderMap,
        peer: Option<SocketAddr>,
    ) -> Result<Option<WorkspaceId>, IngestRejection> {
        match peer {
            Some(addr) if addr.ip().is_loopback() => Ok(None),
            _ => Err(IngestRejection::MissingCredentials),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The app under test

struct App {
    http: SocketAddr,
    grpc: SocketAddr,
    store: Arc<dyn Store>,
    workspace: WorkspaceId,
    recorder: Recorder,
    task: RecorderTask,
    stop_grpc: oneshot::Sender<()>,
    grpc_done: tokio::task::JoinHandle<()>,
    client: reqwest::Client,
    _spool: tempfile::TempDir,
}

/// What the HTTP endpoint answered.
struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn retry_after(&self) -> Option<u64> {
        self.headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
    }

    /// The stable error code of an error reply, from either encoding.
    fn error_code(&self) -> String {
        if self.content_type() == "application/x-protobuf" {
            let status = RpcStatus::decode(self.body.as_slice()).expect("a google.rpc.Status");
            let info = ErrorInfo::decode(status.details[0].value.as_slice()).unwrap();
            assert_eq!(
                status.details[0].type_url,
                "type.googleapis.com/google.rpc.ErrorInfo"
            );
            assert!(!status.message.is_empty());
            info.reason
        } else {
            assert_eq!(self.content_type(), "application/json");
            let status: Value = serde_json::from_slice(&self.body).expect("a JSON Status");
            assert!(status["message"].as_str().is_some_and(|m| !m.is_empty()));
            assert_eq!(status["details"][0]["domain"], "prism");
            status["details"][0]["reason"].as_str().unwrap().to_owned()
        }
    }
}

async fn workspace(store: &dyn Store) -> WorkspaceId {
    let user = User {
        id: UserId::new(),
        email: Email::parse(&format!("{}@example.test", UserId::new())).unwrap(),
        name: "Otlp".into(),
        password_hash: "x".into(),
        is_admin: false,
        created_at: Timestamp(1),
        updated_at: Timestamp(1),
    };
    let user = store.insert_user(&user).await.unwrap();
    let ws = Workspace {
        id: WorkspaceId::new(),
        name: "ingest".into(),
        created_by: Some(user.id),
        created_at: Timestamp(1),
        updated_at: Timestamp(1),
    };
    store.insert_workspace(&ws, user.id).await.unwrap();
    ws.id
}

impl App {
    async fn start(store: Arc<dyn Store>) -> App {
        Self::start_with(store, |_, _| {}).await
    }

    async fn start_with(
        store: Arc<dyn Store>,
        tune: impl FnOnce(&mut RecorderConfig, &mut OtlpLimits),
    ) -> App {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let workspace = workspace(store.as_ref()).await;
        let spool = tempfile::tempdir().unwrap();
        let mut config = RecorderConfig::new(spool.path().to_path_buf());
        let mut limits = OtlpLimits::default();
        tune(&mut config, &mut limits);
        let (recorder, task) = Recorder::start(store.clone(), config);
        let ingest = OtlpIngest {
            recorder: recorder.clone(),
            authorizer: Arc::new(KeyAuthorizer { workspace }),
            limits,
        };

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http = listener.local_addr().unwrap();
        let app = http_routes(ingest.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let grpc = listener.local_addr().unwrap();
        let (stop_grpc, stopped) = oneshot::channel::<()>();
        let grpc_done = tokio::spawn(async move {
            serve_grpc(listener, ingest, async {
                let _ = stopped.await;
            })
            .await
            .unwrap()
        });
        App {
            http,
            grpc,
            store,
            workspace,
            recorder,
            task,
            stop_grpc,
            grpc_done,
            client: reqwest::Client::new(),
            _spool: spool,
        }
    }

    /// Stops the gRPC server (gracefully) and the recorder (flushing it).
    async fn stop(self) {
        let _ = self.stop_grpc.send(());
        self.grpc_done.await.unwrap();
        self.task.shutdown().await;
    }

    async fn post(
        &self,
        content_type: &str,
        encoding: Option<&str>,
        body: Vec<u8>,
        key: Option<&str>,
    ) -> Reply {
        let mut request = self
            .client
            .post(format!("http://{}/v1/traces", self.http))
            .header("content-type", content_type)
            .body(body);
        if let Some(encoding) = encoding {
            request = request.header("content-encoding", encoding);
        }
        if let Some(key) = key {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        let response = request.send().await.unwrap();
        Reply {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.bytes().await.unwrap().to_vec(),
        }
    }

    async fn post_proto(&self, request: &ExportTraceServiceRequest) -> ExportTraceServiceResponse {
        let reply = self
            .post(
                "application/x-protobuf",
                None,
                request.encode_to_vec(),
                Some(KEY),
            )
            .await;
        assert_eq!(
            reply.status,
            200,
            "{:?}",
            String::from_utf8_lossy(&reply.body)
        );
        assert_eq!(reply.content_type(), "application/x-protobuf");
        ExportTraceServiceResponse::decode(reply.body.as_slice()).unwrap()
    }

    async fn post_json(&self, request: &Value) -> Value {
        let reply = self
            .post(
                "application/json; charset=utf-8",
                None,
                serde_json::to_vec(request).unwrap(),
                Some(KEY),
            )
            .await;
        assert_eq!(
            reply.status,
            200,
            "{:?}",
            String::from_utf8_lossy(&reply.body)
        );
        assert_eq!(reply.content_type(), "application/json");
        serde_json::from_slice(&reply.body).unwrap()
    }

    async fn grpc_client(&self) -> TraceServiceClient<tonic::transport::Channel> {
        TraceServiceClient::connect(format!("http://{}", self.grpc))
            .await
            .unwrap()
    }

    async fn spans(&self, trace: [u8; 16]) -> Vec<Span> {
        self.store
            .list_trace_spans(TraceId::from_bytes(trace).unwrap())
            .await
            .unwrap()
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn trace_id(n: u8) -> [u8; 16] {
    let mut id = *TraceId::random().as_bytes();
    id[0] = n;
    id
}

// ---------------------------------------------------------------------------------------------
// A request using every field, in both encodings, and the spans it must become

const ROOT: [u8; 8] = [0x11; 8];
const CHILD: [u8; 8] = [0x22; 8];
const LINKED_TRACE: [u8; 16] = [0x33; 16];
const LINKED_SPAN: [u8; 8] = [0x44; 8];
const T0: u64 = 1_700_000_000_000_000_000;
const BIG: i64 = 9_007_199_254_740_993; // not representable as a double

fn kv(key: &str, value: Av) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        key_strindex: 0,
    }
}

fn rich_request(trace: [u8; 16]) -> ExportTraceServiceRequest {
    let root = otlp::Span {
        trace_id: trace.to_vec(),
        span_id: ROOT.to_vec(),
        name: "GET /checkout".into(),
        kind: 2,
        start_time_unix_nano: T0,
        end_time_unix_nano: T0 + 5_000_000,
        attributes: vec![kv("http.method", Av::StringValue("GET".into()))],
        status: Some(otlp::Status {
            message: String::new(),
            code: 1,
        }),
        flags: 0x101,
        ..Default::default()
    };
    let child = otlp::Span {
        trace_id: trace.to_vec(),
        span_id: CHILD.to_vec(),
        parent_span_id: ROOT.to_vec(),
        trace_state: "vendor=1".into(),
        name: "SELECT orders".into(),
        kind: 3,
        start_time_unix_nano: T0 + 1_000_000,
        end_time_unix_nano: T0 + 4_000_000,
        attributes: vec![
            kv("db.system", Av::StringValue("postgresql".into())),
            kv("rows", Av::IntValue(BIG)),
            kv("ratio", Av::DoubleValue(0.25)),
            kv("cached", Av::BoolValue(false)),
            kv("blob", Av::BytesValue(vec![0, 1, 2])),
            kv(
                "tags",
                Av::ArrayValue(ArrayValue {
                    values: vec![
                        AnyValue {
                            value: Some(Av::IntValue(1)),
                        },
                        AnyValue {
                            value: Some(Av::StringValue("two".into())),
                        },
                    ],
                }),
            ),
            kv(
                "nested",
                Av::KvlistValue(KeyValueList {
                    values: vec![kv("x", Av::StringValue("y".into()))],
                }),
            ),
            KeyValue {
                key: "empty".into(),
                value: None,
                key_strindex: 0,
            },
        ],
        events: vec![otlp::span::Event {
            time_unix_nano: T0 + 2_000_000,
            name: "retry".into(),
            attributes: vec![kv("attempt", Av::IntValue(2))],
            dropped_attributes_count: 0,
        }],
        links: vec![otlp::span::Link {
            trace_id: LINKED_TRACE.to_vec(),
            span_id: LINKED_SPAN.to_vec(),
            trace_state: "k=v".into(),
            attributes: vec![kv("link.kind", Av::StringValue("follows".into()))],
            dropped_attributes_count: 0,
            flags: 0,
        }],
        status: Some(otlp::Status {
            message: "boom".into(),
            code: 2,
        }),
        flags: 1,
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![otlp::ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", Av::StringValue("checkout".into())),
                    kv("host.name", Av::StringValue("web-1".into())),
                ],
                dropped_attributes_count: 0,
                entity_refs: vec![],
            }),
            scope_spans: vec![otlp::ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "io.prism.test".into(),
                    version: "1.2.3".into(),
                    attributes: vec![kv("lib.flag", Av::BoolValue(true))],
                    dropped_attributes_count: 0,
                }),
                spans: vec![root, child],
                schema_url: String::new(),
            }],
            schema_url: "https://opentelemetry.io/schemas/1.21.0".into(),
        }],
    }
}

/// The same request in OTLP/JSON, spelled the way SDKs spell it (ids in uppercase hex here, to
/// check case-insensitivity; 64-bit integers as strings).
fn rich_json(trace: [u8; 16]) -> Value {
    json!({"resourceSpans": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "checkout"}},
            {"key": "host.name", "value": {"stringValue": "web-1"}}
        ]},
        "schemaUrl": "https://opentelemetry.io/schemas/1.21.0",
        "scopeSpans": [{
            "scope": {"name": "io.prism.test", "version": "1.2.3",
                      "attributes": [{"key": "lib.flag", "value": {"boolValue": true}}]},
            "spans": [
                {"traceId": hex(&trace).to_uppercase(), "spanId": hex(&ROOT), "parentSpanId": "",
                 "name": "GET /checkout", "kind": 2, "flags": 257,
                 "startTimeUnixNano": T0.to_string(), "endTimeUnixNano": (T0 + 5_000_000).to_string(),
                 "attributes": [{"key": "http.method", "value": {"stringValue": "GET"}}],
                 "status": {"code": 1}},
                {"traceId": hex(&trace), "spanId": hex(&CHILD), "parentSpanId": hex(&ROOT),
                 "traceState": "vendor=1", "name": "SELECT orders", "kind": 3, "flags": 1,
                 "startTimeUnixNano": (T0 + 1_000_000).to_string(), "endTimeUnixNano": T0 + 4_000_000,
                 "attributes": [
                    {"key": "db.system", "value": {"stringValue": "postgresql"}},
                    {"key": "rows", "value": {"intValue": BIG.to_string()}},
                    {"key": "ratio", "value": {"doubleValue": 0.25}},
                    {"key": "cached", "value": {"boolValue": false}},
                    {"key": "blob", "value": {"bytesValue": "AAEC"}},
                    {"key": "tags", "value": {"arrayValue": {"values": [{"intValue": "1"}, {"stringValue": "two"}]}}},
                    {"key": "nested", "value": {"kvlistValue": {"values": [{"key": "x", "value": {"stringValue": "y"}}]}}},
                    {"key": "empty"}
                 ],
                 "events": [{"timeUnixNano": (T0 + 2_000_000).to_string(), "name": "retry",
                             "attributes": [{"key": "attempt", "value": {"intValue": "2"}}]}],
                 "links": [{"traceId": hex(&LINKED_TRACE), "spanId": hex(&LINKED_SPAN), "traceState": "k=v",
                            "attributes": [{"key": "link.kind", "value": {"stringValue": "follows"}}]}],
                 "status": {"code": 2, "message": "boom"}}
            ]
        }]
    }]})
}

fn object(value: Value) -> serde_json::Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

/// What [`rich_request`] must be stored as.
fn rich_spans(trace: [u8; 16], workspace: WorkspaceId) -> Vec<Span> {
    let trace_id = TraceId::from_bytes(trace).unwrap();
    let resource = object(json!({"service.name": "checkout", "host.name": "web-1"}));
    let scope = Scope {
        name: "io.prism.test".into(),
        version: Some("1.2.3".into()),
        attributes: object(json!({"lib.flag": true})),
    };
    let t = |offset: u64| Timestamp(i64::try_from(T0 + offset).unwrap());
    vec![
        Span {
            trace_id,
            span_id: SpanId::from_bytes(ROOT).unwrap(),
            parent_span_id: None,
            workspace_id: Some(workspace),
            name: "GET /checkout".into(),
            service: "checkout".into(),
            kind: SpanKind::Server,
            start: t(0),
            end: t(5_000_000),
            status_code: StatusCode::Ok,
            status_message: None,
            attributes: object(json!({"http.method": "GET"})),
            events: vec![],
            links: vec![],
            resource_attributes: resource.clone(),
            scope: scope.clone(),
            trace_state: None,
            flags: 0x101,
        },
        Span {
            trace_id,
            span_id: SpanId::from_bytes(CHILD).unwrap(),
            parent_span_id: Some(SpanId::from_bytes(ROOT).unwrap()),
            workspace_id: Some(workspace),
            name: "SELECT orders".into(),
            service: "checkout".into(),
            kind: SpanKind::Client,
            start: t(1_000_000),
            end: t(4_000_000),
            status_code: StatusCode::Error,
            status_message: Some("boom".into()),
            attributes: object(json!({
                "db.system": "postgresql", "rows": BIG, "ratio": 0.25, "cached": false,
                "blob": "AAEC", "tags": [1, "two"], "nested": {"x": "y"}, "empty": null
            })),
            events: vec![SpanEvent {
                time: t(2_000_000),
                name: "retry".into(),
                attributes: object(json!({"attempt": 2})),
            }],
            links: vec![SpanLink {
                trace_id: TraceId::from_bytes(LINKED_TRACE).unwrap(),
                span_id: SpanId::from_bytes(LINKED_SPAN).unwrap(),
                trace_state: Some("k=v".into()),
                attributes: object(json!({"link.kind": "follows"})),
            }],
            resource_attributes: resource,
            scope,
            trace_state: Some("vendor=1".into()),
            flags: 1,
        },
    ]
}

/// `count` minimal valid spans of one trace.
fn simple_request(trace: [u8; 16], count: usize) -> ExportTraceServiceRequest {
    let spans = (0..count)
        .map(|n| otlp::Span {
            trace_id: trace.to_vec(),
            span_id: (n as u64 + 1).to_be_bytes().to_vec(),
            name: format!("op {n}"),
            start_time_unix_nano: T0,
            end_time_unix_nano: T0 + 1,
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![otlp::ResourceSpans {
            resource: None,
            scope_spans: vec![otlp::ScopeSpans {
                scope: None,
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

// ---------------------------------------------------------------------------------------------
// Tests run on both backends

pub async fn protobuf_json_and_gzip_are_stored_with_every_field(store: Arc<dyn Store>) {
    let app = App::start(store).await;
    let cases: [(&str, [u8; 16]); 4] = [
        ("protobuf", trace_id(1)),
        ("json", trace_id(2)),
        ("gzip protobuf", trace_id(3)),
        ("gzip json", trace_id(4)),
    ];
    for (case, trace) in cases {
        let (content_type, body) = if case.ends_with("protobuf") {
            (
                "application/x-protobuf",
                rich_request(trace).encode_to_vec(),
            )
        } else {
            (
                "application/json",
                serde_json::to_vec(&rich_json(trace)).unwrap(),
            )
        };
        let (encoding, body) = if case.starts_with("gzip") {
            (Some("gzip"), gzip(&body))
        } else {
            (None, body)
        };
        let reply = app.post(content_type, encoding, body, Some(KEY)).await;
        assert_eq!(
            reply.status,
            200,
            "{case}: {:?}",
            String::from_utf8_lossy(&reply.body)
        );
        assert_eq!(reply.content_type(), content_type, "{case}");
        if content_type == "application/json" {
            assert_eq!(reply.body, b"{}", "{case}: full success");
        } else {
            let response = ExportTraceServiceResponse::decode(reply.body.as_slice()).unwrap();
            assert_eq!(response.partial_success, None, "{case}: full success");
        }
        assert_eq!(
            app.spans(trace).await,
            rich_spans(trace, app.workspace),
            "{case}: every field stored"
        );
    }
    app.stop().await;
}

pub async fn invalid_spans_are_reported_and_the_valid_ones_stored(store: Arc<dyn Store>) {
    let app = App::start(store).await;
    let trace = trace_id(5);
    let mut request = simple_request(trace, 3);
    let spans = &mut request.resource_spans[0].scope_spans[0].spans;
    spans.push(otlp::Span {
        trace_id: vec![0; 16],
        ..spans[0].clone()
    });
    spans.push(otlp::Span {
        span_id: vec![9; 7],
        ..spans[0].clone()
    });
    spans.push(otlp::Span {
        span_id: vec![9; 8],
        end_time_unix_nano: T0 - 1,
        ..spans[0].clone()
    });
    let response = app.post_proto(&request).await;
    let partial = response.partial_success.expect("partial success reported");
    assert_eq!(partial.rejected_spans, 3);
    assert!(
        partial.error_message.contains("invalid trace id")
            && partial.error_message.contains("invalid span id")
            && partial.error_message.contains("end time before start time"),
        "{}",
        partial.error_message
    );
    assert_eq!(
        app.spans(trace).await.len(),
        3,
        "the valid spans are stored"
    );

    // The same in JSON: counts are strings there.
    let trace = trace_id(6);
    let json = json!({"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": hex(&trace), "spanId": "0000000000000001", "name": "ok",
         "startTimeUnixNano": "10", "endTimeUnixNano": "20"},
        {"traceId": hex(&trace), "spanId": "0000000000000000", "name": "zero id",
         "startTimeUnixNano": "10", "endTimeUnixNano": "20"}
    ]}]}]});
    let answer = app.post_json(&json).await;
    assert_eq!(answer["partialSuccess"]["rejectedSpans"], "1", "{answer}");
    assert!(
        answer["partialSuccess"]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("invalid span id")
    );
    let stored = app.spans(trace).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].name, "ok");
    app.stop().await;
}

/// A refused request: (case, content type, content encoding, body, key, status, error code).
type Refusal = (
    &'static str,
    &'static str,
    Option<&'static str>,
    Vec<u8>,
    Option<&'static str>,
    u16,
    &'static str,
);

pub async fn refused_requests_store_nothing(store: Arc<dyn Store>) {
    let app = App::start_with(store, |_, limits| {
        limits.max_body_bytes = 64 * 1024;
        limits.max_decoded_bytes = 256 * 1024;
    })
    .await;
    let trace = trace_id(7);
    let valid = simple_request(trace, 2).encode_to_vec();
    let valid_json = serde_json::to_vec(&json!({"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": hex(&trace), "spanId": "0000000000000001", "name": "x",
         "startTimeUnixNano": "10", "endTimeUnixNano": "20"}]}]}]}))
    .unwrap();
    let mut truncated_gzip = gzip(&valid);
    truncated_gzip.truncate(truncated_gzip.len() - 5);
    let too_long = simple_request(trace, 3000).encode_to_vec();
    assert!(too_long.len() > 64 * 1024);
    let bomb = gzip(&vec![b' '; 1024 * 1024]);
    assert!(bomb.len() < 64 * 1024);
    let protobuf = "application/x-protobuf";
    let json_type = "application/json";

    let cases: Vec<Refusal> = vec![
        (
            "no key",
            protobuf,
            None,
            valid.clone(),
            None,
            401,
            "missing_credentials",
        ),
        (
            "wrong key",
            protobuf,
            None,
            valid.clone(),
            Some("nope"),
            401,
            "invalid_credentials",
        ),
        (
            "no key, json",
            json_type,
            None,
            valid_json.clone(),
            None,
            401,
            "missing_credentials",
        ),
        (
            "corrupt protobuf",
            protobuf,
            None,
            vec![0xff, 0xff, 0xff, 0x0a],
            Some(KEY),
            400,
            "invalid_otlp_body",
        ),
        (
            "corrupt gzip",
            protobuf,
            Some("gzip"),
            truncated_gzip,
            Some(KEY),
            400,
            "invalid_gzip",
        ),
        (
            "gzip of nothing",
            json_type,
            Some("gzip"),
            b"plain".to_vec(),
            Some(KEY),
            400,
            "invalid_gzip",
        ),
        (
            "bad json",
            json_type,
            None,
            b"{\"resourceSpans\": [".to_vec(),
            Some(KEY),
            400,
            "invalid_otlp_body",
        ),
        (
            "json with a bad id",
            json_type,
            None,
            br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}"#.to_vec(),
            Some(KEY),
            400,
            "invalid_otlp_body",
        ),
        (
            "protobuf sent as json",
            json_type,
            None,
            valid.clone(),
            Some(KEY),
            400,
            "invalid_otlp_body",
        ),
        (
            "unknown type",
            "text/plain",
            None,
            valid.clone(),
            Some(KEY),
            415,
            "unsupported_media_type",
        ),
        (
            "unknown encoding",
            protobuf,
            Some("br"),
            valid.clone(),
            Some(KEY),
            415,
            "unsupported_content_encoding",
        ),
        (
            "too large on the wire",
            protobuf,
            None,
            too_long,
            Some(KEY),
            413,
            "body_too_large",
        ),
        (
            "too large inflated",
            json_type,
            Some("gzip"),
            bomb,
            Some(KEY),
            413,
            "body_too_large",
        ),
    ];
    for (case, content_type, encoding, body, key, status, code) in cases {
        let reply = app.post(content_type, encoding, body, key).await;
        assert_eq!(
            reply.status,
            status,
            "{case}: {:?}",
            String::from_utf8_lossy(&reply.body)
        );
        assert_eq!(reply.error_code(), code, "{case}");
        let expected_type = if content_type == protobuf {
            protobuf
        } else {
            json_type
        };
        assert_eq!(
            reply.content_type(),
            expected_type,
            "{case}: answered in the request's encoding"
        );
        assert_eq!(reply.retry_after(), None, "{case}: not worth retrying");
        if status == 401 {
            assert!(reply.headers.contains_key("www-authenticate"), "{case}");
        }
    }
    // gRPC: tonic enforces the decoded-size limit before the service runs.
    let mut client = app.grpc_client().await;
    let huge = simple_request(trace, 8000);
    assert!(huge.encoded_len() > 256 * 1024);
    let mut call = tonic::Request::new(huge);
    call.metadata_mut()
        .insert("authorization", format!("Bearer {KEY}").parse().unwrap());
    assert_eq!(
        client.export(call).await.unwrap_err().code(),
        tonic::Code::OutOfRange
    );
    assert!(
        app.spans(trace).await.is_empty(),
        "nothing stored for refused requests"
    );

    let get = app
        .client
        .get(format!("http://{}/v1/traces", app.http))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status().as_u16(), 405);
    app.stop().await;
}

pub async fn duplicate_delivery_is_stored_once(store: Arc<dyn Store>) {
    let app = App::start(store).await;
    let trace = trace_id(8);
    app.post_proto(&rich_request(trace)).await;
    app.post_proto(&rich_request(trace)).await;
    app.post_json(&rich_json(trace)).await;
    let mut client = app.grpc_client().await;
    let mut call = tonic::Request::new(rich_request(trace));
    call.metadata_mut()
        .insert("authorization", format!("Bearer {KEY}").parse().unwrap());
    client.export(call).await.unwrap();
    assert_eq!(app.spans(trace).await, rich_spans(trace, app.workspace));
    app.stop().await;
}

pub async fn nul_characters_are_stored_as_replacement_characters(store: Arc<dyn Store>) {
    let app = App::start(store).await;
    let trace = trace_id(9);
    let mut request = simple_request(trace, 1);
    request.resource_spans[0].resource = Some(Resource {
        attributes: vec![kv("service.name", Av::StringValue("svc\0x".into()))],
        dropped_attributes_count: 0,
        entity_refs: vec![],
    });
    let span = &mut request.resource_spans[0].scope_spans[0].spans[0];
    span.name = "a\0b".into();
    span.attributes = vec![
        kv("k\0", Av::StringValue("v\0".into())),
        kv(
            "list",
            Av::ArrayValue(ArrayValue {
                values: vec![AnyValue {
                    value: Some(Av::StringValue("\0".into())),
                }],
            }),
        ),
    ];
    span.status = Some(otlp::Status {
        message: "bad\0".into(),
        code: 2,
    });
    span.trace_state = "a=\0".into();
    span.events = vec![otlp::span::Event {
        time_unix_nano: T0,
        name: "e\0".into(),
        attributes: vec![],
        dropped_attributes_count: 0,
    }];
    let response = app.post_proto(&request).await;
    assert_eq!(response.partial_success, None);
    let stored = app.spans(trace).await;
    assert_eq!(stored.len(), 1, "stored despite NUL characters");
    let span = &stored[0];
    assert_eq!(span.name, "a\u{FFFD}b");
    assert_eq!(span.service, "svc\u{FFFD}x");
    assert_eq!(
        Value::Object(span.attributes.clone()),
        json!({"k\u{FFFD}": "v\u{FFFD}", "list": ["\u{FFFD}"]})
    );
    assert_eq!(span.status_message.as_deref(), Some("bad\u{FFFD}"));
    assert_eq!(span.trace_state.as_deref(), Some("a=\u{FFFD}"));
    assert_eq!(span.events[0].name, "e\u{FFFD}");
    app.stop().await;
}

pub async fn grpc_export_with_gzip_is_stored_and_credentials_checked(store: Arc<dyn Store>) {
    let app = App::start(store).await;
    let trace = trace_id(10);
    let mut client = app
        .grpc_client()
        .await
        .send_compressed(tonic::codec::CompressionEncoding::Gzip);
    let mut call = tonic::Request::new(rich_request(trace));
    call.metadata_mut()
        .insert("x-prism-ingest-key", KEY.parse().unwrap());
    let response = client.export(call).await.unwrap().into_inner();
    assert_eq!(response.partial_success, None);
    assert_eq!(app.spans(trace).await, rich_spans(trace, app.workspace));

    let other = trace_id(11);
    let refused = client
        .export(tonic::Request::new(rich_request(other)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    let mut call = tonic::Request::new(rich_request(other));
    call.metadata_mut()
        .insert("authorization", "Bearer wrong".parse().unwrap());
    assert_eq!(
        client.export(call).await.unwrap_err().code(),
        tonic::Code::Unauthenticated
    );
    // Partial success over gRPC too.
    let mut request = simple_request(other, 1);
    request.resource_spans[0].scope_spans[0].spans[0].span_id = vec![0; 8];
    let mut call = tonic::Request::new(request);
    call.metadata_mut()
        .insert("authorization", format!("Bearer {KEY}").parse().unwrap());
    let partial = client
        .export(call)
        .await
        .unwrap()
        .into_inner()
        .partial_success
        .unwrap();
    assert_eq!(partial.rejected_spans, 1);
    assert!(app.spans(other).await.is_empty());
    app.stop().await;
}

pub async fn large_requests_are_committed_in_chunks(store: Arc<dyn Store>) {
    let app = App::start_with(store, |_, limits| limits.chunk_spans = 100).await;
    let trace = trace_id(12);
    let response = app.post_proto(&simple_request(trace, 1050)).await;
    assert_eq!(response.partial_success, None);
    assert_eq!(app.spans(trace).await.len(), 1050);
    app.stop().await;
}

pub async fn storage_down_answers_503_and_unavailable_with_a_retry_delay(store: Arc<dyn Store>) {
    let app = App::start_with(store, |config, limits| {
        config.retry_initial = Duration::from_millis(1);
        config.retry_max = Duration::from_millis(1);
        limits.unavailable_retry_after = Duration::from_millis(2500);
    })
    .await;
    app.store.close().await;
    let trace = trace_id(13);
    let reply = app
        .post(
            "application/x-protobuf",
            None,
            simple_request(trace, 2).encode_to_vec(),
            Some(KEY),
        )
        .await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.error_code(), "storage_unavailable");
    assert_eq!(reply.retry_after(), Some(3), "rounded up to whole seconds");
    let status = RpcStatus::decode(reply.body.as_slice()).unwrap();
    assert!(
        !status.message.contains("pool") && !status.message.contains("closed"),
        "no internal detail leaks: {}",
        status.message
    );
    assert_eq!(
        status.details[1].type_url,
        "type.googleapis.com/google.rpc.RetryInfo"
    );

    let mut client = app.grpc_client().await;
    let mut call = tonic::Request::new(simple_request(trace, 2));
    call.metadata_mut()
        .insert("authorization", format!("Bearer {KEY}").parse().unwrap());
    let status = client.export(call).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert_retry_info(&status, Duration::from_millis(2500));
    app.stop().await;
}

fn assert_retry_info(status: &tonic::Status, delay: Duration) {
    let trailer = status
        .metadata()
        .get_bin("google.rpc.retryinfo-bin")
        .expect("the retry trailer the Python exporter reads")
        .to_bytes()
        .unwrap();
    let info = RetryInfo::decode(trailer.as_ref()).unwrap();
    let d = info.retry_delay.unwrap();
    assert_eq!(
        Duration::new(
            u64::try_from(d.seconds).unwrap(),
            u32::try_from(d.nanos).unwrap()
        ),
        delay
    );
    let details = RpcStatus::decode(status.details()).unwrap();
    let types: Vec<&str> = details
        .details
        .iter()
        .map(|d| d.type_url.as_str())
        .collect();
    assert_eq!(
        types,
        [
            "type.googleapis.com/google.rpc.ErrorInfo",
            "type.googleapis.com/google.rpc.RetryInfo"
        ]
    );
}

mod on {
    prism_testkit::for_each_backend!(crate::otlp =>
        protobuf_json_and_gzip_are_stored_with_every_field,
        invalid_spans_are_reported_and_the_valid_ones_stored,
        refused_requests_store_nothing,
        duplicate_delivery_is_stored_once,
        nul_characters_are_stored_as_replacement_characters,
        grpc_export_with_gzip_is_stored_and_credentials_checked,
        large_requests_are_committed_in_chunks,
        storage_down_answers_503_and_unavailable_with_a_retry_delay,
    );
}

// ---------------------------------------------------------------------------------------------
// SQLite-only scenarios

/// Another connection holds SQLite's write lock, so the writer is stuck on its first batch and the
/// one-slot queue fills: further exports wait the enqueue timeout and hear 429 (HTTP) or
/// `RESOURCE_EXHAUSTED` with a `RetryInfo` (gRPC). Once the lock goes, every export that was
/// accepted is answered 200 and stored; the refused ones stored nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overloaded_recorder_answers_429_with_retry_after() {
    use sqlx::Connection;
    let db = prism_testkit::TestDatabase::sqlite();
    let store = db.open().await;
    let app = App::start_with(store.clone(), |config, limits| {
        config.queue_capacity = 1;
        config.batch_max = 1;
        config.enqueue_timeout = Duration::from_millis(100);
        limits.overloaded_retry_after = Duration::from_secs(2);
    })
    .await;
    let mut blocker = sqlx::SqliteConnection::connect(db.url().as_str())
        .await
        .unwrap();
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut blocker)
        .await
        .unwrap();

    // At most one export is held by the blocked writer and one waits in the queue; the rest
    // must be refused after the bounded wait.
    let app = Arc::new(app);
    let mut pending = tokio::task::JoinSet::new();
    for n in 0..6 {
        let app = app.clone();
        let trace = trace_id(20 + n);
        pending.spawn(async move {
            let body = simple_request(trace, 3).encode_to_vec();
            let reply = app
                .post("application/x-protobuf", None, body, Some(KEY))
                .await;
            (trace, reply)
        });
    }
    // Refusals come after the ~100 ms enqueue timeout while the lock holds; the held exports
    // cannot finish before the lock goes.
    let mut finished = Vec::new();
    let mut refused = 0;
    while refused < 4 {
        let (trace, reply) = tokio::time::timeout(Duration::from_secs(4), pending.join_next())
            .await
            .expect("four exports are refused while the writer is blocked")
            .unwrap()
            .unwrap();
        assert_eq!(
            reply.status, 429,
            "nothing can be answered 200 while the lock holds"
        );
        refused += 1;
        finished.push((trace, reply));
    }
    assert_eq!(app.recorder.queue_depth(), 1, "the one-slot queue is full");
    // The queue is still full: a gRPC export is refused the same way.
    let mut client = app.grpc_client().await;
    let mut call = tonic::Request::new(simple_request(trace_id(30), 1));
    call.metadata_mut()
        .insert("authorization", format!("Bearer {KEY}").parse().unwrap());
    let status = client.export(call).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    assert_retry_info(&status, Duration::from_secs(2));

    sqlx::raw_sql("COMMIT").execute(&mut blocker).await.unwrap();
    blocker.close().await.unwrap();
    while let Some(joined) = pending.join_next().await {
        finished.push(joined.unwrap());
    }

    let mut accepted = 0;
    for (trace, reply) in &finished {
        match reply.status {
            429 => {
                assert_eq!(reply.error_code(), "overloaded");
                assert_eq!(reply.retry_after(), Some(2));
                assert!(
                    app.spans(*trace).await.is_empty(),
                    "refused export stored nothing"
                );
            }
            200 => {
                accepted += 1;
                assert_eq!(app.spans(*trace).await.len(), 3, "accepted export stored");
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(
        accepted >= 1,
        "the held exports complete once the lock goes"
    );
    assert!(app.spans(trace_id(30)).await.is_empty());
    let app = Arc::into_inner(app).expect("no other handle left");
    app.stop().await;
    store.close().await;
    db.destroy().await;
}

/// An authorizer that lets loopback peers in needs the peer address: served with `ConnectInfo`
/// the export is stored unattributed; served without it the same export is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_address_reaches_the_authorizer() {
    let db = prism_testkit::TestDatabase::sqlite();
    let store = db.open().await;
    let spool = tempfile::tempdir().unwrap();
    let (recorder, task) = Recorder::start(
        store.clone(),
        RecorderConfig::new(spool.path().to_path_buf()),
    );
    let ingest = OtlpIngest::new(recorder, Arc::new(LoopbackAuthorizer));
    let with_peer = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let with_peer_addr = with_peer.local_addr().unwrap();
    let app = http_routes(ingest.clone()).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(with_peer, app).await.unwrap() });
    let without = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let without_addr = without.local_addr().unwrap();
    let app = http_routes(ingest);
    tokio::spawn(async move { axum::serve(without, app).await.unwrap() });

    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let trace = trace_id(40);
    let post = |addr: SocketAddr| {
        client
            .post(format!("http://{addr}/v1/traces"))
            .header("content-type", "application/x-protobuf")
            .body(simple_request(trace, 1).encode_to_vec())
            .send()
    };
    assert_eq!(post(without_addr).await.unwrap().status().as_u16(), 401);
    assert_eq!(post(with_peer_addr).await.unwrap().status().as_u16(), 200);
    let stored = store
        .list_trace_spans(TraceId::from_bytes(trace).unwrap())
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].workspace_id, None, "unattributed");
    task.shutdown().await;
    store.close().await;
    db.destroy().await;
}

// ---------------------------------------------------------------------------------------------
// The real OpenTelemetry Python SDK

const PYTHON_SCRIPT: &str = r#"
import sys
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode

mode = sys.argv[1]
if mode == "http":
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
else:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

results = []

class Recording(OTLPSpanExporter):
    def export(self, spans):
        result = super().export(spans)
        results.append(result)
        return result

provider = TracerProvider(resource=Resource.create({"service.name": "py-" + mode, "deployment.environment": "test"}))
provider.add_span_processor(SimpleSpanProcessor(Recording()))
tracer = provider.get_tracer("prism.python.test", "1.2.3")
with tracer.start_as_current_span("parent", kind=SpanKind.SERVER,
        attributes={"http.method": "GET", "n": 7, "ratio": 0.5, "ok": True, "tags": ["a", "b"]}) as parent:
    parent.add_event("started", {"step": 1})
    with tracer.start_as_current_span("child", kind=SpanKind.CLIENT) as child:
        child.set_attribute("db.system", "postgresql")
        child.set_status(Status(StatusCode.ERROR, "boom"))
print(format(parent.get_span_context().trace_id, "032x"), flush=True)
provider.force_flush(10000)
provider.shutdown()
failed = [r for r in results if r != SpanExportResult.SUCCESS]
sys.exit(4 if failed or not results else 0)
"#;

/// Whether python3 with the SDK and both exporters is installed; says why not on stderr.
async fn python_sdk_available() -> bool {
    let check = tokio::process::Command::new("python3")
        .args([
            "-c",
            "import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http, opentelemetry.exporter.otlp.proto.grpc",
        ])
        .output()
        .await;
    match check {
        Ok(out) if out.status.success() => true,
        Ok(out) => {
            eprintln!(
                "skipped: the OpenTelemetry Python SDK is not installed (python3 -m pip install opentelemetry-sdk opentelemetry-exporter-otlp-proto-http opentelemetry-exporter-otlp-proto-grpc): {}",
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            );
            false
        }
        Err(err) => {
            eprintln!("skipped: python3 is not available: {err}");
            false
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_exports_over_http_and_grpc() {
    if !python_sdk_available().await {
        return;
    }
    let db = prism_testkit::TestDatabase::sqlite();
    let store = db.open().await;
    let app = App::start(store.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("export.py");
    std::fs::write(&script, PYTHON_SCRIPT).unwrap();

    for mode in ["http", "grpc"] {
        let mut command = tokio::process::Command::new("python3");
        command
            .arg(&script)
            .arg(mode)
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env(
                "OTEL_EXPORTER_OTLP_HEADERS",
                format!("authorization=Bearer%20{KEY}"),
            )
            .env("OTEL_EXPORTER_OTLP_TIMEOUT", "10")
            .env("OTEL_TRACES_SAMPLER", "always_on");
        if mode == "http" {
            command.env(
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                format!("http://{}/v1/traces", app.http),
            );
        } else {
            command
                .env(
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    format!("http://{}", app.grpc),
                )
                .env("OTEL_EXPORTER_OTLP_TRACES_INSECURE", "true")
                .env("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip");
        }
        let out = tokio::time::timeout(Duration::from_secs(60), command.output())
            .await
            .expect("the exporter finishes")
            .unwrap();
        assert!(
            out.status.success(),
            "{mode}: python exited with {:?}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        let trace: TraceId = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
        let spans = store.list_trace_spans(trace).await.unwrap();
        assert_eq!(spans.len(), 2, "{mode}: {spans:?}");
        let parent = spans.iter().find(|s| s.name == "parent").unwrap();
        let child = spans.iter().find(|s| s.name == "child").unwrap();
        assert_eq!(child.parent_span_id, Some(parent.span_id), "{mode}");
        assert_eq!(parent.parent_span_id, None, "{mode}");
        for span in &spans {
            assert_eq!(span.service, format!("py-{mode}"));
            assert_eq!(span.workspace_id, Some(app.workspace));
            assert_eq!(span.scope.name, "prism.python.test");
            assert_eq!(span.scope.version.as_deref(), Some("1.2.3"));
            assert_eq!(span.resource_attributes["deployment.environment"], "test");
            assert_eq!(span.resource_attributes["telemetry.sdk.language"], "python");
            assert!(span.end >= span.start);
        }
        assert_eq!(parent.kind, SpanKind::Server);
        assert_eq!(
            Value::Object(parent.attributes.clone()),
            json!({"http.method": "GET", "n": 7, "ratio": 0.5, "ok": true, "tags": ["a", "b"]})
        );
        assert_eq!(parent.events.len(), 1);
        assert_eq!(parent.events[0].name, "started");
        assert_eq!(parent.events[0].attributes["step"], 1);
        assert_eq!(child.kind, SpanKind::Client);
        assert_eq!(child.attributes["db.system"], "postgresql");
        assert_eq!(child.status_code, StatusCode::Error);
        assert_eq!(child.status_message.as_deref(), Some("boom"));
    }
    app.stop().await;
    store.close().await;
    db.destroy().await;
}
