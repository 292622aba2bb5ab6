//! PRISM's dynamic gRPC client: runs a [`GrpcSpec`] — any method of any service, described by
//! pasted `.proto` files or discovered by server reflection — and describes what happened as a
//! [`GrpcOutcome`].
//!
//! Like the HTTP executor in `prism-intercept`, this is a library the data plane, the control
//! plane and the CLI share; it knows nothing about storage or routes. Two rules shape the API:
//!
//! - **Bad requests are errors, the target's behaviour is an outcome.** A proto that does not
//!   compile, an unknown method or JSON that does not fit the input type is a
//!   [`GrpcRequestError`] with a stable code, returned before anything is sent where possible.
//!   Everything the target does — refuse the connection, fail TLS, time out, answer with a
//!   non-OK status — is a [`GrpcOutcome`]. Nothing panics on any input.
//! - **Memory and caches are bounded.** Response messages are limited in size, count and total
//!   bytes ([`GrpcConfig`]); channels and reflected schemas are kept in small LRU caches.
//!
//! # Trace context
//!
//! Every call carries the `traceparent` (and `tracestate`) of the client span the caller started
//! with [`ClientSpanContext::start`]. The user's own `traceparent`/`tracestate` metadata rows are
//! not sent: the caller is expected to have continued that trace — pick the values out with
//! [`incoming_trace_metadata`] — so the server sees one coherent context.
//!
//! # Outbound policy
//!
//! Connections, including those for reflection, go through a connector that applies
//! [`GrpcConfig::egress`] to the host and to every resolved address before connecting.
//!
//! [`ClientSpanContext::start`]: prism_domain::trace_context::ClientSpanContext::start

mod cache;
mod call;
pub mod codec;
mod error;
mod metadata;
mod outcome;
mod reflection;
mod schema;
mod transport;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use prism_domain::egress::EgressPolicy;
use prism_domain::execution::ErrorKind;
use prism_domain::request::{GrpcSpec, ProtoSource};
use prism_domain::trace_context::ClientSpanContext;
use prost_reflect::prost_types::FileDescriptorProto;
use prost_reflect::{DescriptorPool, MethodDescriptor, ServiceDescriptor};
use tokio::time::Instant;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;

pub use error::{GrpcRequestError, ProtoLocation};
pub use metadata::{TRACEPARENT, TRACESTATE, incoming_trace_metadata};
pub use outcome::{
    GrpcExecutionError, GrpcOutcome, GrpcResponse, GrpcSentRequest, GrpcTimings, Header,
    StatusSource, status_name,
};
pub use schema::{MethodInfo, ServiceInfo};

use cache::BoundedCache;
use reflection::{ReflectionFailure, Reflector};
use transport::Target;

/// Instance-wide settings and limits (not overridable per request: they protect the process).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcConfig {
    /// Which targets may be reached. The default allows everything; shared deployments pass
    /// [`EgressPolicy::restricted`] plus their exceptions.
    pub egress: EgressPolicy,
    /// For specs without `timeout_ms`. Covers reflection, connecting and the whole call.
    pub default_timeout: Duration,
    /// Response messages kept per call; later ones are counted, not kept.
    pub max_messages: usize,
    /// The largest single response message accepted (also for reflection answers). A larger one
    /// ends the call with `RESOURCE_EXHAUSTED`, as in other gRPC clients.
    pub max_message_bytes: usize,
    /// Encoded bytes of response messages kept per call; later messages are counted, not kept.
    pub max_response_bytes: usize,
    /// Render fields with default values (`0`, `""`, `[]`) in response JSON. Off by default, as
    /// in canonical proto3 JSON.
    pub emit_default_fields: bool,
    /// Channels (HTTP/2 connections) kept open, one per address and TLS settings.
    pub max_channels: usize,
    /// Reflected schemas kept, one per address and TLS settings, each for `reflection_ttl`.
    pub reflection_cache_size: usize,
    pub reflection_ttl: Duration,
}

impl Default for GrpcConfig {
    fn default() -> Self {
        Self {
            egress: EgressPolicy::default(),
            default_timeout: Duration::from_secs(30),
            max_messages: 10_000,
            max_message_bytes: 4 * 1024 * 1024,
            max_response_bytes: 32 * 1024 * 1024,
            emit_default_fields: false,
            max_channels: 64,
            reflection_cache_size: 32,
            reflection_ttl: Duration::from_secs(60),
        }
    }
}

/// Runs gRPC calls. Cheap to clone (an `Arc` inside); share one per process so channels and
/// reflected schemas are shared too. Channels belong to the Tokio runtime that created them, so
/// use an executor from one runtime.
#[derive(Debug, Clone)]
pub struct GrpcExecutor {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: GrpcConfig,
    policy: Arc<EgressPolicy>,
    channels: Mutex<BoundedCache<Target, Channel>>,
    reflected: Mutex<BoundedCache<Target, Arc<Reflected>>>,
}

/// What reflection has taught PRISM about one server so far.
#[derive(Debug)]
struct Reflected {
    services: Vec<String>,
    files: HashMap<String, FileDescriptorProto>,
    pool: DescriptorPool,
}

/// Why a schema could not be had.
enum SchemaFailure {
    Request(GrpcRequestError),
    Transport { kind: ErrorKind, message: String },
}

impl From<ReflectionFailure> for SchemaFailure {
    fn from(failure: ReflectionFailure) -> Self {
        match failure {
            ReflectionFailure::Request(err) => SchemaFailure::Request(err),
            ReflectionFailure::Transport { kind, message } => {
                SchemaFailure::Transport { kind, message }
            }
        }
    }
}

impl From<GrpcRequestError> for SchemaFailure {
    fn from(err: GrpcRequestError) -> Self {
        SchemaFailure::Request(err)
    }
}

impl GrpcExecutor {
    pub fn new(config: GrpcConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                policy: Arc::new(config.egress.clone()),
                channels: Mutex::new(BoundedCache::new(config.max_channels, None)),
                reflected: Mutex::new(BoundedCache::new(
                    config.reflection_cache_size,
                    Some(config.reflection_ttl),
                )),
                config,
            }),
        }
    }

    pub fn config(&self) -> &GrpcConfig {
        &self.inner.config
    }

    /// The spec's timeout, or the instance default. `timeout_ms: 0` is taken literally.
    pub fn timeout(&self, spec: &GrpcSpec) -> Duration {
        spec.timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(self.inner.config.default_timeout)
    }

    /// Runs the call `spec` describes with `ctx`'s trace context.
    ///
    /// `Err` means the request itself is wrong (see [`GrpcRequestError::code`]); with pasted
    /// `.proto` files that is always known before anything is sent. Everything else, including
    /// an unreachable reflection server and non-OK statuses, is in the outcome.
    pub async fn execute(
        &self,
        spec: &GrpcSpec,
        ctx: &ClientSpanContext,
    ) -> Result<GrpcOutcome, GrpcRequestError> {
        let started = Instant::now();
        let timeout = self.timeout(spec);
        let deadline = started + timeout;
        let mut request = GrpcSentRequest {
            address: spec.address.clone(),
            service: spec.service.trim().to_owned(),
            method: format!("/{}/{}", spec.service.trim(), spec.method.trim()),
            metadata: Vec::new(),
            messages: Vec::new(),
        };

        let target = Target::parse(&spec.address, &spec.tls)?;
        let user_metadata = metadata::user_metadata(&spec.metadata)?;
        let outgoing = metadata::with_trace(user_metadata.clone(), ctx);
        request.metadata = outgoing.listed;
        let channel = self.channel(&target)?;

        let method = match &spec.proto {
            ProtoSource::Files { files } => {
                let pool = schema::compile_files(files)?;
                let service = schema::find_service(&pool, &spec.service)?;
                schema::find_method(&service, &spec.method)?
            }
            ProtoSource::Reflection => {
                let found = self
                    .reflected_method(&channel, &target, spec, &user_metadata.map, deadline)
                    .await;
                match found {
                    Ok(method) => method,
                    Err(SchemaFailure::Request(err)) => return Err(err),
                    Err(SchemaFailure::Transport { kind, message }) => {
                        return Ok(failed(request, kind, message, started));
                    }
                }
            }
        };
        let path = call::path_of(&method);
        request.service = method.parent_service().full_name().to_owned();
        request.method = path.clone();
        let messages = call::parse_messages(&method, &spec.message)?;
        let limits = call::Limits::from(&self.inner.config);
        let json_options = limits.json_options();
        request.messages = messages
            .iter()
            .map(|m| call::to_json(m, &json_options))
            .collect();
        let request_size = call::encoded_size(&messages);
        let path = PathAndQuery::from_maybe_shared(path).map_err(|_| {
            GrpcRequestError::UnknownMethod(format!(
                "{} is not usable as a gRPC path",
                request.method
            ))
        })?;

        let exchange = call::run(call::Call {
            channel,
            path,
            output: method.output(),
            messages,
            metadata: outgoing.map,
            timeout,
            deadline,
            limits,
        })
        .await;
        Ok(GrpcOutcome {
            request,
            response: exchange.response,
            error: exchange.error,
            timings: GrpcTimings {
                total_ns: nanos(started.elapsed()),
                ttfb_ns: exchange.headers_at.map(|at| nanos(at - started)),
            },
            request_size: i64::try_from(request_size).unwrap_or(i64::MAX),
            response_size: i64::try_from(exchange.response_size).unwrap_or(i64::MAX),
        })
    }

    /// The services (and their methods) `spec`'s schema source offers: the pasted files' services,
    /// or those the server lists by reflection (listed services whose files the server cannot
    /// provide are left out). `spec.service`, `method` and `message` are ignored.
    pub async fn list_services(
        &self,
        spec: &GrpcSpec,
    ) -> Result<Vec<ServiceInfo>, GrpcRequestError> {
        if let ProtoSource::Files { files } = &spec.proto {
            return Ok(schema::services(&schema::compile_files(files)?));
        }
        let deadline = Instant::now() + self.timeout(spec);
        let target = Target::parse(&spec.address, &spec.tls)?;
        let user_metadata = metadata::user_metadata(&spec.metadata)?;
        let channel = self.channel(&target)?;
        let unreachable = |failure: ReflectionFailure| match failure {
            ReflectionFailure::Request(err) => err,
            ReflectionFailure::Transport { kind, message } => {
                GrpcRequestError::Unreachable { kind, message }
            }
        };
        let mut reflector = Reflector::new(
            channel,
            user_metadata.map,
            self.inner.config.max_message_bytes,
            deadline,
            &spec.address,
        );
        let services = reflector.list_services().await.map_err(unreachable)?;
        let mut files = HashMap::new();
        for service in &services {
            if reflection::defines_service(&files, service) {
                continue;
            }
            // A service whose files cannot be had is left out, and so are the files fetched for
            // it so far (they may lack an import, which would spoil the whole pool).
            let before = files.clone();
            match reflector.fetch_symbol(service, &mut files).await {
                Ok(()) => {}
                Err(ReflectionFailure::Request(GrpcRequestError::ReflectionFailed(_))) => {
                    files = before;
                }
                Err(failure) => return Err(unreachable(failure)),
            }
        }
        let pool = reflection::build_pool(&files, &spec.address)?;
        let listed: Vec<ServiceInfo> = schema::services(&pool)
            .into_iter()
            .filter(|s| services.contains(&s.name))
            .collect();
        self.lock_reflected().insert(
            target,
            Arc::new(Reflected {
                services,
                files,
                pool,
            }),
            Instant::now().into_std(),
        );
        Ok(listed)
    }

    /// The method from the server's reflected schema: from the cache when it has the service,
    /// fetching what is missing otherwise. A cached schema that lacks the method (the server may
    /// have been redeployed) is fetched once more before giving up.
    async fn reflected_method(
        &self,
        channel: &Channel,
        target: &Target,
        spec: &GrpcSpec,
        metadata: &tonic::metadata::MetadataMap,
        deadline: Instant,
    ) -> Result<MethodDescriptor, SchemaFailure> {
        let mut cached = self.lock_reflected().get(target, Instant::now().into_std());
        if let Some(known) = &cached
            && let Ok(service) = schema::find_service(&known.pool, &spec.service)
        {
            if let Ok(method) = schema::find_method(&service, &spec.method) {
                return Ok(method);
            }
            // The service is known but the method is not: fetch afresh, without the old files.
            cached = None;
        }
        let service = self
            .reflect_service(channel, target, spec, metadata, deadline, cached)
            .await?;
        Ok(schema::find_method(&service, &spec.method)?)
    }

    async fn reflect_service(
        &self,
        channel: &Channel,
        target: &Target,
        spec: &GrpcSpec,
        metadata: &tonic::metadata::MetadataMap,
        deadline: Instant,
        cached: Option<Arc<Reflected>>,
    ) -> Result<ServiceDescriptor, SchemaFailure> {
        let mut reflector = Reflector::new(
            channel.clone(),
            metadata.clone(),
            self.inner.config.max_message_bytes,
            deadline,
            &spec.address,
        );
        let (mut services, mut files) = match cached {
            Some(cached) => (Some(cached.services.clone()), cached.files.clone()),
            None => (None, HashMap::new()),
        };
        let wanted = spec.service.trim().trim_start_matches('.');
        let full_name = match services.as_deref().map(|s| resolve_service(wanted, s)) {
            Some(Ok(name)) => name,
            // Not in the cached list: the server may have gained it since.
            _ => {
                let listed = reflector.list_services().await?;
                let name = resolve_service(wanted, &listed)?;
                services = Some(listed);
                name
            }
        };
        reflector.fetch_symbol(&full_name, &mut files).await?;
        let pool = reflection::build_pool(&files, &spec.address)?;
        let service = pool.get_service_by_name(&full_name).ok_or_else(|| {
            GrpcRequestError::ReflectionFailed(format!(
                "server reflection at {}: the descriptors the server sent do not define {full_name}",
                spec.address.trim()
            ))
        })?;
        self.lock_reflected().insert(
            target.clone(),
            Arc::new(Reflected {
                services: services.unwrap_or_default(),
                files,
                pool,
            }),
            Instant::now().into_std(),
        );
        Ok(service)
    }

    /// The cached channel for `target`, or a new one. Building a channel does not connect.
    fn channel(&self, target: &Target) -> Result<Channel, GrpcRequestError> {
        let now = Instant::now().into_std();
        if let Some(channel) = self.lock_channels().get(target, now) {
            return Ok(channel);
        }
        let channel = transport::channel(target, self.inner.policy.clone())?;
        self.lock_channels()
            .insert(target.clone(), channel.clone(), now);
        Ok(channel)
    }

    fn lock_channels(&self) -> MutexGuard<'_, BoundedCache<Target, Channel>> {
        self.inner
            .channels
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn lock_reflected(&self) -> MutexGuard<'_, BoundedCache<Target, Arc<Reflected>>> {
        self.inner
            .reflected
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A listed service by fully qualified name, or by simple name when exactly one has it.
fn resolve_service(wanted: &str, listed: &[String]) -> Result<String, GrpcRequestError> {
    if listed.iter().any(|s| s == wanted) {
        return Ok(wanted.to_owned());
    }
    let matches: Vec<&String> = listed
        .iter()
        .filter(|s| s.rsplit('.').next() == Some(wanted))
        .collect();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(GrpcRequestError::UnknownService(
            schema::unknown_service_message(wanted, listed),
        )),
        many => Err(GrpcRequestError::UnknownService(format!(
            "service name {wanted:?} is ambiguous: it matches {}; give the fully qualified name",
            many.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

impl From<&GrpcConfig> for call::Limits {
    fn from(config: &GrpcConfig) -> Self {
        call::Limits {
            max_messages: config.max_messages,
            max_message_bytes: config.max_message_bytes,
            max_response_bytes: config.max_response_bytes,
            emit_default_fields: config.emit_default_fields,
        }
    }
}

/// An outcome without a response.
fn failed(
    request: GrpcSentRequest,
    kind: ErrorKind,
    message: String,
    started: Instant,
) -> GrpcOutcome {
    GrpcOutcome {
        request,
        response: None,
        error: Some(GrpcExecutionError { kind, message }),
        timings: GrpcTimings {
            total_ns: nanos(started.elapsed()),
            ttfb_ns: None,
        },
        request_size: 0,
        response_size: 0,
    }
}

fn nanos(duration: Duration) -> i64 {
    i64::try_from(duration.as_nanos()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_services_resolve_by_full_or_unique_simple_name() {
        let listed = vec![
            "a.v1.Orders".to_owned(),
            "b.Orders".to_owned(),
            "a.Users".to_owned(),
        ];
        assert_eq!(
            resolve_service("a.v1.Orders", &listed).unwrap(),
            "a.v1.Orders"
        );
        assert_eq!(resolve_service("Users", &listed).unwrap(), "a.Users");
        let err = resolve_service("Orders", &listed).unwrap_err();
        assert!(err.to_string().contains("ambiguous"), "{err}");
        let err = resolve_service("Nope", &listed).unwrap_err();
        assert_eq!(err.code(), "unknown_service");
        assert!(
            err.to_string().contains("a.Users, a.v1.Orders, b.Orders"),
            "{err}"
        );
    }

    #[test]
    fn timeout_defaults_to_thirty_seconds() {
        let executor = GrpcExecutor::new(GrpcConfig::default());
        let spec: GrpcSpec =
            serde_json::from_str(r#"{"address":"x:1","service":"S","method":"M"}"#).unwrap();
        assert_eq!(executor.timeout(&spec), Duration::from_secs(30));
        let spec = GrpcSpec {
            timeout_ms: Some(250),
            ..spec
        };
        assert_eq!(executor.timeout(&spec), Duration::from_millis(250));
    }
}
