//! A real gRPC server for the tests: tonic's transport on 127.0.0.1:0 (optionally TLS), tonic's
//! reflection services, and a hand-written `prism.test.v1.Tester` service.
//!
//! The service is written against tonic's low-level server APIs: the schema is compiled from the
//! same `.proto` text the tests paste (with protox, no protoc or build script), requests are
//! decoded and replies encoded as `DynamicMessage`s, and responses are framed by hand. Framing by
//! hand is what lets the server send custom trailers on success, binary metadata, trailers-only
//! errors and deliberately malformed status details — things tonic's generated servers cannot.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use http::{HeaderMap, HeaderValue, Request, Response};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use prism_domain::request::ProtoFile;
use prost::Message;
use prost::bytes::{BufMut, Bytes, BytesMut};
use prost_reflect::prost_types::FileDescriptorSet;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tower_service::Service;

pub const TESTER_PROTO: &str = r#"syntax = "proto3";
package prism.test.v1;

import "google/protobuf/empty.proto";
import "google/protobuf/struct.proto";
import "google/protobuf/timestamp.proto";
import "prism/test/v1/common.proto";

service Tester {
  rpc Echo(EchoRequest) returns (EchoReply);
  rpc Count(CountRequest) returns (stream CountReply);
  rpc Sum(stream Number) returns (Total);
  rpc Chat(stream EchoRequest) returns (stream EchoReply);
  rpc Fail(FailRequest) returns (google.protobuf.Empty);
  rpc Hang(google.protobuf.Empty) returns (google.protobuf.Empty);
}

message EchoRequest {
  string text = 1;
  google.protobuf.Timestamp sent_at = 2;
  prism.test.common.Tag tag = 3;
  google.protobuf.Struct extra = 4;
}

message EchoReply {
  string text = 1;
  google.protobuf.Timestamp sent_at = 2;
  prism.test.common.Tag tag = 3;
  google.protobuf.Struct extra = 4;
  // Every request metadata entry the server saw; repeated names joined with ",".
  map<string, string> received_metadata = 5;
}

message CountRequest {
  uint32 count = 1;
  uint32 payload_bytes = 2;
  // When non-zero, the stream ends with this status after the messages.
  int32 fail_code = 3;
}

message CountReply {
  uint32 index = 1;
  bytes payload = 2;
}

message Number { int64 value = 1; }

message Total {
  int64 sum = 1;
  uint32 count = 2;
}

message FailRequest {
  int32 code = 1;
  string message = 2;
  // Send a grpc-status-details-bin trailer that is not base64.
  bool bad_details = 3;
}
"#;

pub const COMMON_PROTO: &str = r#"syntax = "proto3";
package prism.test.common;

import "google/protobuf/timestamp.proto";

message Tag {
  string name = 1;
  google.protobuf.Timestamp at = 2;
}
"#;

pub const SERVICE: &str = "prism.test.v1.Tester";

/// The test schema as a user would paste it: two files importing each other and the WKTs.
pub fn proto_files() -> Vec<ProtoFile> {
    vec![
        ProtoFile {
            name: "prism/test/v1/tester.proto".into(),
            content: TESTER_PROTO.into(),
        },
        ProtoFile {
            name: "prism/test/v1/common.proto".into(),
            content: COMMON_PROTO.into(),
        },
    ]
}

/// The test schema compiled, and as a `FileDescriptorSet` for the reflection service.
fn compile(include_well_known_types: bool) -> (DescriptorPool, FileDescriptorSet) {
    struct Files;
    impl protox::file::FileResolver for Files {
        fn open_file(&self, name: &str) -> Result<protox::file::File, protox::Error> {
            proto_files()
                .into_iter()
                .find(|f| f.name == name)
                .map(|f| protox::file::File::from_source(name, &f.content))
                .unwrap_or_else(|| Err(protox::Error::file_not_found(name)))
        }
    }
    let mut resolver = protox::file::ChainFileResolver::new();
    resolver.add(Files);
    resolver.add(protox::file::GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.include_imports(true);
    compiler
        .open_file("prism/test/v1/tester.proto")
        .expect("the test schema compiles");
    let pool = compiler.descriptor_pool();
    let mut set = compiler.file_descriptor_set();
    if !include_well_known_types {
        set.file
            .retain(|f| !f.name().starts_with("google/protobuf/"));
    }
    (pool, set)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reflection {
    /// grpc.reflection.v1 and v1alpha, serving the well-known types too.
    Both,
    /// Only grpc.reflection.v1alpha, and without the well-known types' files.
    V1AlphaOnly,
    None,
}

/// A PEM certificate chain and key for the server.
#[derive(Debug, Clone)]
pub struct ServerIdentity {
    pub cert_pem: String,
    pub key_pem: String,
}

pub struct TestServer {
    pub addr: SocketAddr,
    /// Reflection streams opened so far (both versions).
    pub reflection_calls: Arc<AtomicUsize>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl TestServer {
    pub async fn start(reflection: Reflection) -> TestServer {
        Self::start_with(reflection, None).await
    }

    pub async fn start_with(reflection: Reflection, tls: Option<ServerIdentity>) -> TestServer {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (with_wkt, v1, v1alpha) = match reflection {
            Reflection::Both => (true, true, true),
            Reflection::V1AlphaOnly => (false, false, true),
            Reflection::None => (true, false, false),
        };
        let (pool, descriptors) = compile(with_wkt);
        let calls = Arc::new(AtomicUsize::new(0));

        let mut builder = Server::builder();
        if let Some(identity) = tls {
            builder = builder
                .tls_config(
                    ServerTlsConfig::new()
                        .identity(Identity::from_pem(identity.cert_pem, identity.key_pem)),
                )
                .unwrap();
        }
        let mut router = builder.add_service(Tester { pool });
        if v1 {
            let service = tonic_reflection::server::Builder::configure()
                .register_file_descriptor_set(descriptors.clone())
                .build_v1()
                .unwrap();
            router = router.add_service(Counted::new(service, calls.clone()));
        }
        if v1alpha {
            let service = tonic_reflection::server::Builder::configure()
                .register_file_descriptor_set(descriptors.clone())
                .build_v1alpha()
                .unwrap();
            router = router.add_service(Counted::new(service, calls.clone()));
        }
        let (shutdown, stopped) = oneshot::channel::<()>();
        tokio::spawn(
            router.serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
                let _ = stopped.await;
            }),
        );
        TestServer {
            addr,
            reflection_calls: calls,
            shutdown: Some(shutdown),
        }
    }

    /// `127.0.0.1:port`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// Counts the requests a service gets.
#[derive(Clone)]
struct Counted<S> {
    inner: S,
    calls: Arc<AtomicUsize>,
}

impl<S> Counted<S> {
    fn new(inner: S, calls: Arc<AtomicUsize>) -> Self {
        Self { inner, calls }
    }
}

impl<S: NamedService> NamedService for Counted<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<Request<B>> for Counted<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> S::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.call(request)
    }
}

/// `prism.test.v1.Tester`, implemented over `DynamicMessage`s.
#[derive(Clone)]
struct Tester {
    pool: DescriptorPool,
}

impl NamedService for Tester {
    const NAME: &'static str = SERVICE;
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl Service<Request<Body>> for Tester {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.handle(request).await) })
    }
}

impl Tester {
    async fn handle(&self, request: Request<Body>) -> Response<Body> {
        let service = self.pool.get_service_by_name(SERVICE).unwrap();
        let name = request
            .uri()
            .path()
            .rsplit('/')
            .next()
            .unwrap_or("")
            .to_owned();
        let Some(method) = service.methods().find(|m| m.name() == name) else {
            return trailers_only(12, "no such method", None);
        };
        let (parts, body) = request.into_parts();
        let bytes = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => return trailers_only(13, "could not read the request", None),
        };
        let requests: Vec<Value> = frames(&bytes)
            .into_iter()
            .map(|frame| to_json(&DynamicMessage::decode(method.input(), frame).unwrap()))
            .collect();
        let output = method.output();
        let first = requests.first().cloned().unwrap_or_else(|| json!({}));
        let echo = parts
            .headers
            .get("x-echo")
            .map(|v| v.to_str().unwrap().to_owned());

        match name.as_str() {
            "Echo" => {
                let mut reply = first;
                reply["receivedMetadata"] = received_metadata(&parts.headers);
                let mut headers = HeaderMap::new();
                let mut trailers = ok_trailers();
                if let Some(echo) = &echo {
                    headers.insert("x-echo", HeaderValue::from_str(echo).unwrap());
                    trailers.insert("x-echo-trailer", HeaderValue::from_str(echo).unwrap());
                }
                if let Some(data) = parts.headers.get("x-data-bin") {
                    // The wire form as received (unpadded base64), echoed unchanged.
                    headers.insert("x-data-bin", data.clone());
                }
                respond(headers, vec![encode(&output, reply)], trailers)
            }
            "Count" => {
                let count = first["count"].as_u64().unwrap_or(0);
                let payload = vec![b'x'; first["payloadBytes"].as_u64().unwrap_or(0) as usize];
                let payload = base64_encode(&payload);
                let messages = (1..=count)
                    .map(|i| encode(&output, json!({ "index": i, "payload": payload })))
                    .collect();
                let fail_code = first["failCode"].as_i64().unwrap_or(0);
                let trailers = if fail_code == 0 {
                    ok_trailers()
                } else {
                    status_headers(fail_code, "failed after the messages")
                };
                respond(HeaderMap::new(), messages, trailers)
            }
            "Sum" => {
                let sum: i64 = requests
                    .iter()
                    .map(|r| r["value"].as_str().map_or(0, |v| v.parse::<i64>().unwrap()))
                    .sum();
                let reply = json!({ "sum": sum.to_string(), "count": requests.len() });
                respond(
                    HeaderMap::new(),
                    vec![encode(&output, reply)],
                    ok_trailers(),
                )
            }
            "Chat" => {
                let replies = requests
                    .iter()
                    .map(|r| encode(&output, json!({ "text": r["text"] })))
                    .collect();
                respond(HeaderMap::new(), replies, ok_trailers())
            }
            "Fail" => {
                let code = first["code"].as_i64().unwrap_or(2);
                let message = first["message"].as_str().unwrap_or("").to_owned();
                let details = first["badDetails"].as_bool().unwrap_or(false);
                trailers_only(code, &message, details.then_some("!!not base64!!"))
            }
            "Hang" => std::future::pending().await,
            _ => trailers_only(12, "not implemented", None),
        }
    }
}

/// Splits a gRPC request body into message payloads.
fn frames(mut bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while bytes.len() >= 5 {
        let len = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
        out.push(&bytes[5..5 + len]);
        bytes = &bytes[5 + len..];
    }
    out
}

fn encode(descriptor: &MessageDescriptor, json: Value) -> Bytes {
    let message = DynamicMessage::deserialize(descriptor.clone(), json).unwrap();
    let payload = message.encode_to_vec();
    let mut frame = BytesMut::with_capacity(payload.len() + 5);
    frame.put_u8(0);
    frame.put_u32(payload.len() as u32);
    frame.put_slice(&payload);
    frame.freeze()
}

fn to_json(message: &DynamicMessage) -> Value {
    serde_json::to_value(message).unwrap()
}

fn received_metadata(headers: &HeaderMap) -> Value {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in headers {
        if let Ok(value) = value.to_str() {
            map.entry(name.as_str().to_owned())
                .or_default()
                .push(value.to_owned());
        }
    }
    map.into_iter()
        .map(|(name, values)| (name, Value::String(values.join(","))))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

fn ok_trailers() -> HeaderMap {
    status_headers(0, "")
}

fn status_headers(code: i64, message: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("grpc-status", HeaderValue::from(code));
    if !message.is_empty() {
        headers.insert("grpc-message", HeaderValue::from_str(message).unwrap());
    }
    headers
}

fn respond(headers: HeaderMap, messages: Vec<Bytes>, trailers: HeaderMap) -> Response<Body> {
    let frames = messages
        .into_iter()
        .map(|m| Ok::<_, Infallible>(Frame::data(m)))
        .chain(std::iter::once(Ok(Frame::trailers(trailers))));
    let mut response = Response::new(Body::new(StreamBody::new(futures_util::stream::iter(
        frames,
    ))));
    *response.headers_mut() = headers;
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/grpc"));
    response
}

/// A response that is only headers carrying the status.
fn trailers_only(code: i64, message: &str, bad_details: Option<&str>) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.headers_mut() = status_headers(code, message);
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/grpc"));
    if let Some(details) = bad_details {
        response.headers_mut().insert(
            "grpc-status-details-bin",
            HeaderValue::from_str(details).unwrap(),
        );
    }
    response
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A CA and a certificate it signed for `localhost` and 127.0.0.1.
pub struct TestPki {
    pub ca_pem: String,
    pub server: ServerIdentity,
}

pub fn test_pki() -> TestPki {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "PRISM test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    TestPki {
        ca_pem: ca.pem(),
        server: ServerIdentity {
            cert_pem: leaf.pem(),
            key_pem: leaf_key.serialize_pem(),
        },
    }
}
