//! `POST /rest`, `POST /graphql`, `POST /grpc` and `POST /run`: run a request against its target with trace
//! context and record it. `POST /grpc/services` lists what a gRPC server offers (nothing is run
//! or recorded).
//!
//! The JSON is snake_case and accepts upstream PRISM's request shapes (`headers` as an object,
//! `body` as a string, `operation_name`, `request_id`; `collection_id`/`created_by_id` ignored)
//! as well as PRISM's own (header lists with repeats and `enabled`, structured bodies, settings).
//!
//! What the target does — any status, GraphQL errors, DNS failures, refused connections,
//! timeouts, TLS failures, a blocked destination — is a **200 answer** describing the execution,
//! with `error_kind` set for failures. 4xx/5xx answers are reserved for problems with the call
//! itself (credentials, bad JSON, bad URL) and for overload; those record nothing.
//!
//! Order of work: authenticate, validate, authorize, *reserve recorder space*, execute, record.
//! Reserving before executing means an overloaded recorder refuses requests before anything has
//! happened instead of losing the record of something that did.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use prism_domain::execution::{ErrorKind, ExecutionSource};
use prism_domain::request::{
    Body, GraphqlSpec, GrpcSpec, GrpcTls, HttpSettings, KeyValue, ProtoFile, ProtoSource, Protocol,
    RequestSpec, RestSpec, SavedRequest,
};
use prism_domain::trace::Span;
use prism_domain::trace_context::ClientSpanContext;
use prism_domain::{ExecutionId, RequestId, WorkspaceId};
use prism_grpc::{
    GrpcOutcome, GrpcRequestError, GrpcSentRequest, Header as GrpcHeader, incoming_trace_metadata,
};
use prism_store::StoreError;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::auth::{Caller, authenticate, workspace_for_run};
use super::error::{ApiError, ErrorBody};
use crate::InterceptState;
use crate::capture::{Origin, capture_grpc, capture_http};
use crate::executor::{BodyEncoding, Header, HttpOutcome, SentRequest, incoming_trace_headers};
use prism_domain::trace::{SpanId, TraceId};

/// Header rows: upstream's `{"name": "value"}` object or PRISM's list of rows.
#[derive(Debug, Default)]
struct HeaderRows(Vec<KeyValue>);

impl<'de> Deserialize<'de> for HeaderRows {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match Value::deserialize(d)? {
            Value::Null => Ok(HeaderRows::default()),
            Value::Object(map) => map
                .into_iter()
                .map(|(name, value)| match value {
                    Value::String(value) => Ok(KeyValue::new(name, value)),
                    other => Err(D::Error::custom(format!(
                        "header {name:?} must be a string, not {other}"
                    ))),
                })
                .collect::<Result<_, _>>()
                .map(HeaderRows),
            list @ Value::Array(_) => serde_json::from_value(list)
                .map(HeaderRows)
                .map_err(D::Error::custom),
            other => Err(D::Error::custom(format!(
                "headers must be an object or a list of {{name, value}} rows, not {other}"
            ))),
        }
    }
}

/// A body: upstream's plain string (sent as is) or a structured [`Body`].
#[derive(Debug, Default)]
struct BodyInput(Body);

impl<'de> Deserialize<'de> for BodyInput {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match Value::deserialize(d)? {
            Value::Null => Ok(BodyInput(Body::None)),
            Value::String(text) if text.is_empty() => Ok(BodyInput(Body::None)),
            Value::String(text) => Ok(BodyInput(Body::Raw {
                text,
                content_type: None,
            })),
            object @ Value::Object(_) => serde_json::from_value(object)
                .map(BodyInput)
                .map_err(|e| D::Error::custom(format!("body: {e}"))),
            other => Err(D::Error::custom(format!(
                "body must be a string or an object with a `kind`, not {other}"
            ))),
        }
    }
}

/// GraphQL variables: a JSON object (upstream) or its text.
#[derive(Debug, Default)]
struct VariablesInput(Option<String>);

impl<'de> Deserialize<'de> for VariablesInput {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match Value::deserialize(d)? {
            Value::Null => Ok(VariablesInput(None)),
            Value::String(text) if text.trim().is_empty() => Ok(VariablesInput(None)),
            Value::String(text) => Ok(VariablesInput(Some(text))),
            object @ Value::Object(_) => Ok(VariablesInput(Some(object.to_string()))),
            other => Err(D::Error::custom(format!(
                "variables must be an object, not {other}"
            ))),
        }
    }
}

/// Fields every run call may carry.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct Link {
    /// The saved request this execution belongs to (upstream sent `""` for none).
    #[serde(default)]
    request_id: Option<String>,
    #[serde(default)]
    workspace_id: Option<String>,
}

/// `POST /rest`. Unknown fields (upstream's `collection_id`, `created_by_id`) are ignored.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct RestCall {
    /// Any method token, including custom ones; empty or absent means GET.
    #[serde(default)]
    method: String,
    /// An absolute http(s) URL.
    url: String,
    /// Query parameters appended to the URL, in order; names may repeat.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    params: Vec<KeyValue>,
    /// Upstream's `{"name": "value"}` object, or a list of `{name, value, enabled}` rows
    /// (repeated names allowed). A `traceparent` here is continued, not overwritten.
    #[serde(default)]
    #[schema(value_type = Object)]
    headers: HeaderRows,
    /// Upstream's plain string (sent as is), or `{"kind": "raw"|"json"|"form"|"multipart", …}`.
    #[serde(default)]
    #[schema(value_type = Object)]
    body: BodyInput,
    /// `follow_redirects`, `max_redirects`, `timeout_ms`, `verify_tls`.
    #[serde(default)]
    #[schema(value_type = Object)]
    settings: HttpSettings,
    #[serde(flatten)]
    link: Link,
}

/// `POST /graphql`: sent as `POST` with a JSON body `{query, variables, operationName}`.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct GraphqlCall {
    url: String,
    query: String,
    /// A JSON object (or its text).
    #[serde(default)]
    #[schema(value_type = Object)]
    variables: VariablesInput,
    #[serde(default, alias = "operationName")]
    operation_name: Option<String>,
    /// As in `/rest`.
    #[serde(default)]
    #[schema(value_type = Object)]
    headers: HeaderRows,
    #[serde(default)]
    #[schema(value_type = Object)]
    settings: HttpSettings,
    #[serde(flatten)]
    link: Link,
}

/// The body, or a JSON error for one that is too large or broke off.
fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                rejection.status(),
                "body_too_large",
                "the request body is larger than this server accepts (max_request_body_bytes)",
            )
        } else {
            ApiError::bad_request("invalid_body", rejection.body_text())
        }
    })
}

fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|err| {
        let code = if err.is_syntax() || err.is_eof() {
            "invalid_json"
        } else {
            "invalid_request"
        };
        ApiError::bad_request(code, format!("request body: {err}"))
    })
}

fn parse_id<T: std::str::FromStr>(field: &str, text: Option<&str>) -> Result<Option<T>, ApiError> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|_| {
            ApiError::bad_request("invalid_id", format!("{field} {text:?} is not a valid id"))
        }),
    }
}

/// Checks what can be checked before anything is sent, with specific error codes.
fn validate_http(method: &str, url: &str) -> Result<(), ApiError> {
    if !method.is_empty() && axum::http::Method::from_bytes(method.trim().as_bytes()).is_err() {
        return Err(ApiError::bad_request(
            "invalid_method",
            format!("{method:?} is not a valid HTTP method token"),
        ));
    }
    let parsed = url::Url::parse(url.trim())
        .map_err(|e| ApiError::bad_request("invalid_url", format!("invalid URL {url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(ApiError::bad_request(
            "invalid_url",
            format!(
                "unsupported URL scheme {:?}: only http and https",
                parsed.scheme()
            ),
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(ApiError::bad_request(
            "invalid_url",
            format!("URL {url:?} has no host"),
        ));
    }
    Ok(())
}

/// The authenticated, authorized context of one run.
struct Prepared {
    caller: Caller,
    workspace_id: WorkspaceId,
    saved: Option<SavedRequest>,
}

async fn prepare(
    state: &InterceptState,
    headers: &HeaderMap,
    link: &Link,
) -> Result<Prepared, ApiError> {
    let caller = authenticate(state, headers).await?;
    let request_id: Option<RequestId> = parse_id("request_id", link.request_id.as_deref())?;
    let requested: Option<WorkspaceId> = parse_id("workspace_id", link.workspace_id.as_deref())?;
    let saved = match request_id {
        None => None,
        Some(id) => match state.store.get_request(id).await {
            Ok(saved) => Some(saved),
            Err(StoreError::NotFound(_)) => {
                return Err(ApiError::not_found(
                    "request_not_found",
                    format!("no saved request {id}"),
                ));
            }
            Err(err) => return Err(err.into()),
        },
    };
    let workspace_id = workspace_for_run(state, &caller, requested, saved.as_ref()).await?;
    Ok(Prepared {
        caller,
        workspace_id,
        saved,
    })
}

/// The refusals every run endpoint shares (documentation only; answers are [`ApiError`]s).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
enum RunErrors {
    /// Bad input: `invalid_json`, `invalid_request`, `invalid_url`, `invalid_method`,
    /// `invalid_id`, `workspace_required`, `workspace_mismatch`, `unknown_protocol`; for gRPC also
    /// `invalid_proto` (with file:line:column), `unknown_service`, `unknown_method`,
    /// `invalid_message`, `invalid_metadata`, `invalid_address`, `invalid_tls_config`,
    /// `reflection_failed`
    #[response(status = 400)]
    BadRequest(#[to_schema] ErrorBody),
    /// `missing_credentials` / `invalid_credentials`
    #[response(status = 401)]
    Unauthorized(#[to_schema] ErrorBody),
    /// `forbidden`: the role is below editor
    #[response(status = 403)]
    Forbidden(#[to_schema] ErrorBody),
    /// `workspace_not_found` / `request_not_found`
    #[response(status = 404)]
    NotFound(#[to_schema] ErrorBody),
    /// `body_too_large`
    #[response(status = 413)]
    TooLarge(#[to_schema] ErrorBody),
    /// `overloaded` / `shutting_down` / `database_unavailable`, with `Retry-After`; nothing was
    /// executed
    #[response(status = 503)]
    Unavailable(#[to_schema] ErrorBody),
}

/// `POST /rest`: run an HTTP request with trace context and record it.
#[utoipa::path(post, path = "/rest", request_body = RestCall,
    responses(
        (status = 200, description = "The execution, whatever the target did (see `error_kind`)", body = HttpAnswer),
        RunErrors,
    ),
    security(("bearer" = [])),
    tag = "run"
)]
pub async fn rest(
    State(state): State<InterceptState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let call: RestCall = parse_json(&body_bytes(body)?)?;
    let method = if call.method.trim().is_empty() {
        "GET".to_owned()
    } else {
        call.method
    };
    let spec = RestSpec {
        method,
        url: call.url,
        params: call.params,
        headers: call.headers.0,
        body: call.body.0,
        settings: call.settings,
    };
    run_spec(&state, &headers, &call.link, RequestSpec::Rest(spec)).await
}

/// `POST /graphql`: run a GraphQL operation; an `errors` array marks the execution failed.
#[utoipa::path(post, path = "/graphql", request_body = GraphqlCall,
    responses(
        (status = 200, description = "The execution, whatever the target did", body = HttpAnswer),
        RunErrors,
    ),
    security(("bearer" = [])),
    tag = "run"
)]
pub async fn graphql(
    State(state): State<InterceptState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let call: GraphqlCall = parse_json(&body_bytes(body)?)?;
    let spec = GraphqlSpec {
        url: call.url,
        query: call.query,
        variables: call.variables.0,
        operation_name: call.operation_name,
        headers: call.headers.0,
        settings: call.settings,
    };
    run_spec(&state, &headers, &call.link, RequestSpec::Graphql(spec)).await
}

/// `POST /run`: any protocol, as `{"protocol": "rest" | "graphql" | "grpc", …spec}`, or just
/// `{"request_id": …}` to run a saved request as saved.
#[utoipa::path(post, path = "/run",
    request_body(content = Object, description = "A request spec tagged with `protocol`, or `{request_id}`"),
    responses(
        (status = 200, description = "The execution (`/rest`'s or `/grpc`'s answer shape)", body = Object),
        RunErrors,
    ),
    security(("bearer" = [])),
    tag = "run"
)]
pub async fn run(
    State(state): State<InterceptState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let value: Value = parse_json(&body_bytes(body)?)?;
    let link: Link = serde_json::from_value(value.clone())
        .map_err(|e| ApiError::bad_request("invalid_request", format!("request body: {e}")))?;
    let spec = match value.get("protocol") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) if p.parse::<Protocol>().is_ok() => Some(
            serde_json::from_value::<RequestSpec>(value.clone()).map_err(|e| {
                ApiError::bad_request("invalid_request", format!("{p} request: {e}"))
            })?,
        ),
        Some(other) => {
            return Err(ApiError::bad_request(
                "unknown_protocol",
                format!("unknown protocol {other}: expected \"rest\", \"graphql\" or \"grpc\""),
            ));
        }
    };
    match spec {
        Some(spec) => run_spec(&state, &headers, &link, spec).await,
        None => {
            if link
                .request_id
                .as_deref()
                .is_none_or(|r| r.trim().is_empty())
            {
                return Err(ApiError::bad_request(
                    "invalid_request",
                    "give a `protocol` with the request, or the `request_id` of a saved request",
                ));
            }
            let prepared = prepare(&state, &headers, &link).await?;
            let spec = prepared
                .saved
                .as_ref()
                .map(|s| s.spec.clone())
                .expect("prepare loads the saved request when request_id is set");
            execute(&state, prepared, spec).await
        }
    }
}

async fn run_spec(
    state: &InterceptState,
    headers: &HeaderMap,
    link: &Link,
    spec: RequestSpec,
) -> Result<Response, ApiError> {
    validate(&spec)?;
    let prepared = prepare(state, headers, link).await?;
    execute(state, prepared, spec).await
}

fn validate(spec: &RequestSpec) -> Result<(), ApiError> {
    match spec {
        RequestSpec::Rest(rest) => validate_http(&rest.method, &rest.url),
        RequestSpec::Graphql(gql) => validate_http("POST", &gql.url),
        RequestSpec::Grpc(_) => Ok(()),
    }
}

async fn execute(
    state: &InterceptState,
    prepared: Prepared,
    spec: RequestSpec,
) -> Result<Response, ApiError> {
    // Service-credential calls come from the control plane (its API and web UI).
    let source = match prepared.caller {
        Caller::Service { .. } => ExecutionSource::Api,
        Caller::User { .. } => ExecutionSource::DataPlane,
    };
    let origin = Origin {
        workspace_id: prepared.workspace_id,
        request_id: prepared.saved.as_ref().map(|s| s.id),
        source,
        created_by: prepared.caller.user_id(),
    };
    execute_as(state, &origin, spec).await
}

/// Runs an already-authorized request in this process and records it under `origin` (the control
/// plane's path under `prism up`). The answer is the one `/run` gives: a JSON execution, or an
/// error for input the data plane refuses.
pub async fn run_in_process(
    state: &InterceptState,
    origin: &Origin,
    spec: RequestSpec,
) -> Result<Response, ApiError> {
    validate(&spec)?;
    execute_as(state, origin, spec).await
}

async fn execute_as(
    state: &InterceptState,
    origin: &Origin,
    spec: RequestSpec,
) -> Result<Response, ApiError> {
    match spec {
        RequestSpec::Rest(rest) => {
            let run = async |ctx: &ClientSpanContext| state.executor.execute_rest(&rest, ctx).await;
            run_http(state, origin, Protocol::Rest, &rest.headers, None, run).await
        }
        RequestSpec::Graphql(gql) => {
            let run =
                async |ctx: &ClientSpanContext| state.executor.execute_graphql(&gql, ctx).await;
            let operation = gql.operation_name.as_deref();
            run_http(
                state,
                origin,
                Protocol::Graphql,
                &gql.headers,
                operation,
                run,
            )
            .await
        }
        RequestSpec::Grpc(grpc) => {
            let slot = state.recorder.reserve().await?;
            let (traceparent, tracestate) = incoming_trace_metadata(&grpc.metadata);
            let ctx = ClientSpanContext::start(traceparent.as_deref(), tracestate.as_deref());
            let started_at = state.clock.now();
            let outcome = state
                .grpc
                .execute(&grpc, &ctx)
                .await
                .map_err(grpc_request_error)?;
            let captured = capture_grpc(&outcome, &ctx, origin, started_at);
            let answer = grpc_answer(&outcome, &captured.execution, &captured.span, &ctx);
            slot.record(captured.into_record());
            Ok(answer)
        }
    }
}

/// A request the executor refused (see [`GrpcRequestError::code`]): a 400, except a target that
/// could not be reached (only when listing services, which has no outcome to report it in): a
/// destination the outbound policy refuses is `403 blocked`, any other failure `502 unreachable`.
fn grpc_request_error(err: GrpcRequestError) -> ApiError {
    match err {
        GrpcRequestError::Unreachable {
            kind: ErrorKind::Blocked,
            message,
        } => ApiError::new(axum::http::StatusCode::FORBIDDEN, "blocked", message),
        GrpcRequestError::Unreachable { kind, message } => ApiError::new(
            axum::http::StatusCode::BAD_GATEWAY,
            "unreachable",
            format!("{message} ({})", kind.as_str()),
        ),
        other => ApiError::bad_request(other.code(), other.message()),
    }
}

/// Where a gRPC server is and how to learn its schema: the part of `/grpc`'s body that
/// `/grpc/services` takes too.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct GrpcTarget {
    /// `host:port` or an `http://` / `https://` URL (upstream: `server_address`).
    #[serde(alias = "server_address")]
    address: String,
    /// `{"kind": "reflection"}` or `{"kind": "files", "files": [{name, content}]}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    proto: Option<ProtoSource>,
    /// Upstream's single pasted file.
    #[serde(default)]
    proto_file: Option<String>,
    /// `{enabled, ca_pem, verify}`.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    tls: Option<GrpcTls>,
    /// Upstream's switch (its TLS never worked; here it means TLS with the system roots).
    #[serde(default)]
    use_tls: Option<bool>,
    /// As `headers` in `/rest` (also sent with reflection calls).
    #[serde(default)]
    #[schema(value_type = Object)]
    metadata: HeaderRows,
    /// Covers reflection, connecting and the call.
    #[serde(default)]
    timeout_ms: Option<u64>,
}

impl GrpcTarget {
    /// The spec of a call of `service`/`method` with `message` on this target.
    fn into_spec(self, service: String, method: String, message: String) -> GrpcSpec {
        let proto = match (self.proto, self.proto_file) {
            (Some(proto), _) => proto,
            (None, Some(text)) if !text.trim().is_empty() => ProtoSource::Files {
                files: vec![ProtoFile {
                    name: "uploaded.proto".into(),
                    content: text,
                }],
            },
            (None, _) => ProtoSource::Reflection,
        };
        let tls = self.tls.unwrap_or(GrpcTls {
            enabled: self.use_tls.unwrap_or(false),
            ca_pem: None,
            verify: None,
        });
        GrpcSpec {
            address: self.address,
            service,
            method,
            proto,
            tls,
            metadata: self.metadata.0,
            message,
            timeout_ms: self.timeout_ms,
        }
    }
}

/// `POST /grpc`: any method of any service, schema from server reflection (default) or pasted
/// `.proto` files.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct GrpcCall {
    #[serde(flatten)]
    target: GrpcTarget,
    /// Fully qualified (`pkg.Service`) or simple name.
    service: String,
    method: String,
    /// Upstream's name for the message JSON; `message` is PRISM's.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    body: Option<Value>,
    /// The request message (JSON object or its text); a JSON list for client/bidi streaming.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    message: Option<Value>,
    #[serde(flatten)]
    link: Link,
}

fn message_text(value: Option<Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text,
        Some(other) => other.to_string(),
    }
}

/// `POST /grpc`: call a gRPC method (any call kind) and record it.
#[utoipa::path(post, path = "/grpc", request_body = GrpcCall,
    responses(
        (status = 200, description = "The call; a non-OK status is a result (`status_code`), as are transport failures (`error_kind`)", body = GrpcAnswer),
        RunErrors,
    ),
    security(("bearer" = [])),
    tag = "run"
)]
pub async fn grpc(
    State(state): State<InterceptState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let call: GrpcCall = parse_json(&body_bytes(body)?)?;
    let message = message_text(call.message.or(call.body));
    let spec = call.target.into_spec(call.service, call.method, message);
    run_spec(&state, &headers, &call.link, RequestSpec::Grpc(spec)).await
}

/// `POST /grpc/services`: where a server is and how to learn its schema, as for `/grpc` (fields
/// for a call — `service`, `method`, `message` — are ignored).
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct GrpcServicesCall {
    #[serde(flatten)]
    target: GrpcTarget,
    /// The workspace to authorize against (as in `/grpc`; nothing is recorded).
    #[serde(default)]
    workspace_id: Option<String>,
}

/// The answer of `/grpc/services`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct GrpcServices {
    /// Sorted by name.
    services: Vec<GrpcServiceView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct GrpcServiceView {
    /// Fully qualified, e.g. `acme.orders.v1.Orders`.
    name: String,
    /// In the order the schema declares them.
    methods: Vec<GrpcMethodView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct GrpcMethodView {
    name: String,
    /// Fully qualified message type names.
    input_type: String,
    output_type: String,
    /// Both streaming flags set: bidirectional streaming.
    client_streaming: bool,
    server_streaming: bool,
}

/// `POST /grpc/services`: the services and methods a gRPC server offers — by server reflection, or
/// from the pasted `.proto` files — for pickers in clients. Authorized like `/grpc` (it contacts
/// the target); nothing is recorded, as nothing is executed.
#[utoipa::path(post, path = "/grpc/services", request_body = GrpcServicesCall,
    responses(
        (status = 200, description = "The services and their methods", body = GrpcServices),
        (status = 400, description = "`invalid_json`, `invalid_request`, `invalid_id`, `workspace_required`, `invalid_proto` (the message starts with file:line:column), `invalid_address`, `invalid_tls_config`, `invalid_metadata`, `reflection_failed`", body = ErrorBody),
        (status = 401, description = "`missing_credentials` / `invalid_credentials`", body = ErrorBody),
        (status = 403, description = "`forbidden`: the role is below editor; `blocked`: the outbound policy refuses the address", body = ErrorBody),
        (status = 404, description = "`workspace_not_found`", body = ErrorBody),
        (status = 413, description = "`body_too_large`", body = ErrorBody),
        (status = 502, description = "`unreachable`: the server could not be reached (refused, DNS, TLS, timeout…)", body = ErrorBody),
        (status = 503, description = "`database_unavailable`", body = ErrorBody),
    ),
    security(("bearer" = [])),
    tag = "run"
)]
pub async fn grpc_services(
    State(state): State<InterceptState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let call: GrpcServicesCall = parse_json(&body_bytes(body)?)?;
    let link = Link {
        request_id: None,
        workspace_id: call.workspace_id,
    };
    prepare(&state, &headers, &link).await?;
    let spec = call
        .target
        .into_spec(String::new(), String::new(), String::new());
    grpc_services_in_process(&state, &spec).await
}

/// Lists the services `spec`'s schema source offers for an already-authorized caller (the control
/// plane's path under `prism up`): `/grpc/services`' answer or error. `spec`'s service, method and
/// message are ignored.
pub async fn grpc_services_in_process(
    state: &InterceptState,
    spec: &GrpcSpec,
) -> Result<Response, ApiError> {
    let services = state
        .grpc
        .list_services(spec)
        .await
        .map_err(grpc_request_error)?;
    let services = services
        .into_iter()
        .map(|service| GrpcServiceView {
            name: service.name,
            methods: service
                .methods
                .into_iter()
                .map(|m| GrpcMethodView {
                    name: m.name,
                    input_type: m.input_type,
                    output_type: m.output_type,
                    client_streaming: m.client_streaming,
                    server_streaming: m.server_streaming,
                })
                .collect(),
        })
        .collect();
    Ok(Json(GrpcServices { services }).into_response())
}

/// The answer of `/grpc`: upstream's fields plus PRISM's.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct GrpcAnswer<'a> {
    #[schema(value_type = String)]
    execution_id: ExecutionId,
    #[schema(value_type = String)]
    trace_id: TraceId,
    #[schema(value_type = String)]
    span_id: SpanId,
    traceparent: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    request_id: Option<RequestId>,
    #[schema(value_type = String)]
    workspace_id: WorkspaceId,
    /// The gRPC status code; `null` when the call never got one.
    status_code: Option<i32>,
    status_name: Option<&'a str>,
    status_message: Option<&'a str>,
    failed: bool,
    /// `dns`, `connection_refused`, `connect`, `tls`, `timeout`, `blocked`, `io`, `protocol`, …
    #[schema(value_type = Option<String>)]
    error_kind: Option<ErrorKind>,
    error_msg: &'a str,
    /// Upstream's field: the response message as JSON text (a JSON list when there were several).
    body: String,
    #[schema(value_type = Vec<Object>)]
    messages: &'a [Value],
    message_count: i64,
    truncated: bool,
    response_headers: BTreeMap<String, String>,
    response_trailers: BTreeMap<String, String>,
    #[schema(value_type = Vec<Object>)]
    header_list: &'a [GrpcHeader],
    #[schema(value_type = Vec<Object>)]
    trailer_list: &'a [GrpcHeader],
    response_size: i64,
    request_size: i64,
    request_duration: String,
    duration_ms: f64,
    ttfb_ms: Option<f64>,
    #[schema(value_type = Object)]
    request: &'a GrpcSentRequest,
    #[schema(value_type = Vec<Object>)]
    spans: [&'a Span; 1],
}

fn joined(headers: &[GrpcHeader]) -> BTreeMap<String, String> {
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    for header in headers {
        map.entry(header.name.clone())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&header.value);
            })
            .or_insert_with(|| header.value.clone());
    }
    map
}

fn grpc_answer(
    outcome: &GrpcOutcome,
    execution: &prism_domain::execution::Execution,
    span: &Span,
    ctx: &ClientSpanContext,
) -> Response {
    let response = outcome.response.as_ref();
    let messages = response.map_or(&[][..], |r| &r.messages[..]);
    let body = match messages {
        [] => String::new(),
        [one] => one.to_string(),
        many => Value::Array(many.to_vec()).to_string(),
    };
    let answer = GrpcAnswer {
        execution_id: execution.id,
        trace_id: ctx.trace_id,
        span_id: ctx.span_id,
        traceparent: ctx.traceparent(),
        request_id: execution.request_id,
        workspace_id: execution.workspace_id,
        status_code: outcome.status_code(),
        status_name: response.map(|r| r.status_name.as_str()),
        status_message: response.map(|r| r.status_message.as_str()),
        failed: execution.failed,
        error_kind: execution.error_kind,
        error_msg: outcome
            .error
            .as_ref()
            .map(|e| e.message.as_str())
            .or_else(|| {
                response
                    .filter(|r| r.status_code != 0)
                    .map(|r| r.status_message.as_str())
            })
            .unwrap_or(""),
        body,
        messages,
        message_count: response.map_or(0, |r| r.message_count),
        truncated: response.is_some_and(|r| r.truncated),
        response_headers: joined(response.map_or(&[][..], |r| &r.headers[..])),
        response_trailers: joined(response.map_or(&[][..], |r| &r.trailers[..])),
        header_list: response.map_or(&[][..], |r| &r.headers[..]),
        trailer_list: response.map_or(&[][..], |r| &r.trailers[..]),
        response_size: outcome.response_size,
        request_size: outcome.request_size,
        request_duration: format!("{}ms", outcome.timings.total_ns / 1_000_000),
        duration_ms: millis(outcome.timings.total_ns),
        ttfb_ms: outcome.timings.ttfb_ns.map(millis),
        request: &outcome.request,
        spans: [span],
    };
    Json(answer).into_response()
}

/// Runs a REST or GraphQL request: reserve recorder space, continue or start the trace, execute,
/// capture, record, answer.
async fn run_http(
    state: &InterceptState,
    origin: &Origin,
    protocol: Protocol,
    headers: &[KeyValue],
    operation: Option<&str>,
    execute: impl AsyncFnOnce(&ClientSpanContext) -> HttpOutcome,
) -> Result<Response, ApiError> {
    let slot = state.recorder.reserve().await?;
    let (traceparent, tracestate) = incoming_trace_headers(headers);
    let ctx = ClientSpanContext::start(traceparent.as_deref(), tracestate.as_deref());
    let started_at = state.clock.now();
    let outcome = execute(&ctx).await;
    reject_invalid(&outcome)?;
    let captured = capture_http(protocol, &outcome, &ctx, origin, started_at, operation);
    let graphql = protocol == Protocol::Graphql;
    let answer = http_answer(&outcome, &captured.execution, &captured.span, &ctx, graphql);
    slot.record(captured.into_record());
    Ok(answer)
}

/// A request the executor refused to build (bad header, bad base64 file…) is the caller's
/// mistake: a 400, and nothing is recorded.
fn reject_invalid(outcome: &HttpOutcome) -> Result<(), ApiError> {
    match &outcome.error {
        Some(err) if err.kind == ErrorKind::InvalidRequest && outcome.response.is_none() => Err(
            ApiError::bad_request("invalid_request", err.message.clone()),
        ),
        _ => Ok(()),
    }
}

/// The answer of `/rest` and `/graphql`: upstream's fields plus PRISM's.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct HttpAnswer<'a> {
    #[schema(value_type = String)]
    execution_id: ExecutionId,
    #[schema(value_type = String)]
    trace_id: TraceId,
    /// The client span, parent of the target's spans.
    #[schema(value_type = String)]
    span_id: SpanId,
    traceparent: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    request_id: Option<RequestId>,
    #[schema(value_type = String)]
    workspace_id: WorkspaceId,
    /// The target's HTTP status; `null` when it never answered.
    status: Option<u16>,
    failed: bool,
    /// `dns`, `connection_refused`, `connect`, `tls`, `timeout`, `blocked`, `io`, `protocol`, …
    #[schema(value_type = Option<String>)]
    error_kind: Option<ErrorKind>,
    /// Empty when there was no error (upstream's field).
    error_msg: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    graphql_errors: Option<bool>,
    http_version: Option<&'a str>,
    final_url: Option<&'a str>,
    /// Response headers by name, repeated values joined with ", " (upstream's shape);
    /// `Set-Cookie` is not joined but listed in `set_cookies`.
    headers: BTreeMap<String, String>,
    set_cookies: Vec<&'a str>,
    /// Every response header line in order, repeats kept.
    #[schema(value_type = Vec<Object>)]
    header_list: &'a [Header],
    body: &'a str,
    /// `text` or `base64`.
    #[schema(value_type = String)]
    body_encoding: BodyEncoding,
    body_truncated: bool,
    response_size: i64,
    request_size: i64,
    /// Upstream's `"123ms"`.
    request_duration: String,
    duration_ms: f64,
    ttfb_ms: Option<f64>,
    /// The host name lookup of the connection this request opened; `null` when the connection
    /// was reused or the host is an IP address.
    dns_ms: Option<f64>,
    /// Opening that connection after the lookup: TCP connect, and for `https` the TLS handshake
    /// too (not measured apart); `null` when the connection was reused.
    connect_ms: Option<f64>,
    /// Always `null`: the TLS handshake is included in `connect_ms`.
    tls_ms: Option<f64>,
    /// The response came on a pooled connection opened earlier; `null` without a response.
    connection_reused: Option<bool>,
    /// What PRISM sent.
    #[schema(value_type = Object)]
    request: &'a SentRequest,
    /// The client span as stored.
    #[schema(value_type = Vec<Object>)]
    spans: [&'a Span; 1],
}

fn millis(ns: i64) -> f64 {
    ns as f64 / 1_000_000.0
}

fn http_answer(
    outcome: &HttpOutcome,
    execution: &prism_domain::execution::Execution,
    span: &Span,
    ctx: &ClientSpanContext,
    graphql: bool,
) -> Response {
    let response = outcome.response.as_ref();
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    let mut set_cookies = Vec::new();
    for header in response.map_or(&[][..], |r| &r.headers[..]) {
        if header.name.eq_ignore_ascii_case("set-cookie") {
            set_cookies.push(header.value.as_str());
            continue;
        }
        headers
            .entry(header.name.clone())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&header.value);
            })
            .or_insert_with(|| header.value.clone());
    }
    let answer = HttpAnswer {
        execution_id: execution.id,
        trace_id: ctx.trace_id,
        span_id: ctx.span_id,
        traceparent: ctx.traceparent(),
        request_id: execution.request_id,
        workspace_id: execution.workspace_id,
        status: response.map(|r| r.status),
        failed: execution.failed,
        error_kind: execution.error_kind,
        error_msg: outcome.error.as_ref().map_or("", |e| e.message.as_str()),
        graphql_errors: graphql.then_some(outcome.graphql_errors),
        http_version: response.map(|r| r.http_version.as_str()),
        final_url: response.map(|r| r.url.as_str()),
        headers,
        set_cookies,
        header_list: response.map_or(&[][..], |r| &r.headers[..]),
        body: response.map_or("", |r| r.body.data.as_str()),
        body_encoding: response.map_or(BodyEncoding::Text, |r| r.body.encoding),
        body_truncated: response.is_some_and(|r| r.body.truncated),
        response_size: outcome.response_size,
        request_size: outcome.request_size,
        request_duration: format!("{}ms", outcome.timings.total_ns / 1_000_000),
        duration_ms: millis(outcome.timings.total_ns),
        ttfb_ms: outcome.timings.ttfb_ns.map(millis),
        dns_ms: outcome.timings.dns_ns.map(millis),
        connect_ms: outcome.timings.connect_ns.map(millis),
        tls_ms: outcome.timings.tls_ns.map(millis),
        connection_reused: outcome.timings.connection_reused,
        request: &outcome.request,
        spans: [span],
    };
    Json(answer).into_response()
}
