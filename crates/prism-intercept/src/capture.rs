//! Turns what an executor did into what PRISM stores: the execution row, its detail snapshot and
//! the client span (service `prism`) that the target's own spans hang below.
//!
//! Every caller that runs requests — the data-plane routes, the control plane in-process, the
//! workflow runner, the CLI — builds its records here, so one execution looks the same whoever
//! ran it.

use prism_domain::execution::{Execution, ExecutionDetail, ExecutionSource};
use prism_domain::request::Protocol;
use prism_domain::trace::{Attributes, Scope, Span, SpanKind, StatusCode};
use prism_domain::trace_context::ClientSpanContext;
use prism_domain::{ExecutionId, RequestId, Timestamp, UserId, WorkspaceId};
use serde_json::{Value, json};

use crate::endpoint::split_url;
use crate::executor::HttpOutcome;
use crate::recorder::Record;

/// PRISM's own service name in traces.
pub const SERVICE_NAME: &str = "prism";

/// Who ran a request, where it is recorded, and what it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    pub workspace_id: WorkspaceId,
    pub request_id: Option<RequestId>,
    pub source: ExecutionSource,
    pub created_by: Option<UserId>,
}

impl Origin {
    /// An execution row with what every protocol shares (ids, links, trace context, start);
    /// the outcome fields are empty for the protocol's capture to fill in.
    fn execution(
        &self,
        id: ExecutionId,
        protocol: Protocol,
        ctx: &ClientSpanContext,
        started_at: Timestamp,
    ) -> Execution {
        Execution {
            id,
            workspace_id: self.workspace_id,
            request_id: self.request_id,
            protocol,
            method: None,
            target: String::new(),
            endpoint: String::new(),
            status_code: None,
            failed: false,
            error_kind: None,
            error_message: None,
            started_at,
            duration_ns: 0,
            ttfb_ns: None,
            dns_ns: None,
            connect_ns: None,
            tls_ns: None,
            request_size: 0,
            response_size: 0,
            trace_id: ctx.trace_id,
            span_id: ctx.span_id,
            source: self.source,
            created_by: self.created_by,
        }
    }
}

/// The three records of one execution.
#[derive(Debug, Clone, PartialEq)]
pub struct Captured {
    pub execution: Execution,
    pub detail: ExecutionDetail,
    pub span: Span,
}

/// Counts an execution in `prism_executions_total` by protocol and outcome (`ok`, `failed`, or
/// the transport error kind).
fn count(execution: &Execution) {
    let outcome = match (execution.error_kind, execution.failed) {
        (Some(kind), _) => kind.as_str(),
        (None, true) => "failed",
        (None, false) => "ok",
    };
    metrics::counter!(
        "prism_executions_total",
        "protocol" => execution.protocol.as_str(),
        "outcome" => outcome
    )
    .increment(1);
}

impl Captured {
    pub fn into_record(self) -> Record {
        Record::Execution {
            execution: Box::new(self.execution),
            detail: Some(Box::new(self.detail)),
            span: Some(Box::new(self.span)),
        }
    }
}

/// Captures a REST or GraphQL execution. `started_at` is when the executor was called;
/// `operation` is the GraphQL operation name, if any.
pub fn capture_http(
    protocol: Protocol,
    outcome: &HttpOutcome,
    ctx: &ClientSpanContext,
    origin: &Origin,
    started_at: Timestamp,
    operation: Option<&str>,
) -> Captured {
    let id = ExecutionId::new();
    let (target, path) = split_url(&outcome.request.url);
    let operation = operation.map(str::trim).filter(|op| !op.is_empty());
    let endpoint = match (protocol, operation) {
        (Protocol::Graphql, Some(op)) => op.to_owned(),
        _ => path.clone(),
    };
    let status = outcome.status_code().map(i32::from);
    let failed = outcome.is_failure(protocol);
    let error_kind = outcome.error_kind();
    let error_message = outcome.error.as_ref().map(|e| e.message.clone());
    let duration_ns = outcome.timings.total_ns;

    let execution = Execution {
        method: Some(outcome.request.method.clone()),
        target: target.clone(),
        endpoint: endpoint.clone(),
        status_code: status,
        failed,
        error_kind,
        error_message: error_message.clone(),
        duration_ns,
        ttfb_ns: outcome.timings.ttfb_ns,
        dns_ns: outcome.timings.dns_ns,
        connect_ns: outcome.timings.connect_ns,
        tls_ns: outcome.timings.tls_ns,
        request_size: outcome.request_size,
        response_size: outcome.response_size,
        ..origin.execution(id, protocol, ctx, started_at)
    };

    let mut attributes = Attributes::new();
    attributes.insert("http.request.method".into(), json!(outcome.request.method));
    attributes.insert("url.full".into(), json!(outcome.request.url));
    if let Ok(url) = url::Url::parse(&outcome.request.url) {
        if let Some(host) = url.host_str() {
            attributes.insert("server.address".into(), json!(host));
        }
        if let Some(port) = url.port_or_known_default() {
            attributes.insert("server.port".into(), json!(port));
        }
    }
    if let Some(response) = &outcome.response {
        attributes.insert("http.response.status_code".into(), json!(response.status));
        attributes.insert(
            "network.protocol.version".into(),
            json!(response.http_version.trim_start_matches("HTTP/")),
        );
    }
    if let Some(op) = operation {
        attributes.insert("graphql.operation.name".into(), json!(op));
    }
    if outcome.graphql_errors {
        attributes.insert("graphql.errors".into(), json!(true));
    }
    let name = match protocol {
        Protocol::Graphql => format!("graphql {endpoint}"),
        _ => format!("{} {path}", outcome.request.method),
    };
    let span_status_message = error_message.clone().or_else(|| {
        failed.then(|| match status {
            Some(code) if outcome.graphql_errors && code < 400 => "GraphQL errors".to_owned(),
            Some(code) => format!("HTTP {code}"),
            None => "failed".to_owned(),
        })
    });
    let error_type = error_kind
        .map(|k| k.as_str().to_owned())
        .or_else(|| failed.then(|| status.map_or("failed".into(), |s| s.to_string())));
    let span = client_span(ClientSpanParts {
        ctx,
        workspace_id: origin.workspace_id,
        execution_id: id,
        protocol,
        name,
        start: started_at,
        duration_ns,
        attributes,
        failed,
        status_message: span_status_message,
        error_type,
    });

    let detail = ExecutionDetail {
        execution_id: id,
        request: serde_json::to_value(&outcome.request).unwrap_or(Value::Null),
        response: json!({
            "response": outcome.response,
            "error": outcome.error,
            "graphql_errors": outcome.graphql_errors,
            "timings": outcome.timings,
        }),
    };
    count(&execution);
    Captured {
        execution,
        detail,
        span,
    }
}

/// What differs between protocols in a client span.
pub struct ClientSpanParts<'a> {
    pub ctx: &'a ClientSpanContext,
    pub workspace_id: WorkspaceId,
    pub execution_id: ExecutionId,
    pub protocol: Protocol,
    pub name: String,
    pub start: Timestamp,
    pub duration_ns: i64,
    pub attributes: Attributes,
    pub failed: bool,
    pub status_message: Option<String>,
    /// OpenTelemetry's `error.type`: the error kind or status that made the call fail.
    pub error_type: Option<String>,
}

/// The client span of an execution, in OpenTelemetry's shape.
pub fn client_span(parts: ClientSpanParts<'_>) -> Span {
    let mut attributes = parts.attributes;
    attributes.insert(
        "prism.execution.id".into(),
        json!(parts.execution_id.to_string()),
    );
    attributes.insert("prism.protocol".into(), json!(parts.protocol.as_str()));
    if let Some(error_type) = parts.error_type {
        attributes.insert("error.type".into(), json!(error_type));
    }
    let mut resource = Attributes::new();
    resource.insert("service.name".into(), json!(SERVICE_NAME));
    resource.insert("service.version".into(), json!(env!("CARGO_PKG_VERSION")));
    Span {
        trace_id: parts.ctx.trace_id,
        span_id: parts.ctx.span_id,
        parent_span_id: parts.ctx.parent_span_id,
        workspace_id: Some(parts.workspace_id),
        name: parts.name,
        service: SERVICE_NAME.to_owned(),
        kind: SpanKind::Client,
        start: parts.start,
        end: parts.start.plus_nanos(parts.duration_ns.max(0)),
        status_code: if parts.failed {
            StatusCode::Error
        } else {
            StatusCode::Unset
        },
        status_message: if parts.failed {
            parts.status_message
        } else {
            None
        },
        attributes,
        events: Vec::new(),
        links: Vec::new(),
        resource_attributes: resource,
        scope: Scope {
            name: SERVICE_NAME.to_owned(),
            version: Some(env!("CARGO_PKG_VERSION").to_owned()),
            attributes: Attributes::new(),
        },
        trace_state: parts.ctx.tracestate.clone(),
        flags: u32::from(parts.ctx.flags),
    }
}

/// Captures a gRPC call. The endpoint is the full method path (`/pkg.Service/Method`), the target
/// the address; the status code is the gRPC code.
pub fn capture_grpc(
    outcome: &prism_grpc::GrpcOutcome,
    ctx: &ClientSpanContext,
    origin: &Origin,
    started_at: Timestamp,
) -> Captured {
    let id = ExecutionId::new();
    let status = outcome.status_code();
    let failed = outcome.is_failure();
    let error_kind = outcome.error_kind();
    let error_message = outcome.error.as_ref().map(|e| e.message.clone());
    let duration_ns = outcome.timings.total_ns;
    let path = outcome.request.method.clone();
    let (service, method) = path
        .trim_start_matches('/')
        .split_once('/')
        .map(|(s, m)| (s.to_owned(), m.to_owned()))
        .unwrap_or_else(|| (outcome.request.service.clone(), path.clone()));

    let execution = Execution {
        target: outcome.request.address.clone(),
        endpoint: path.clone(),
        status_code: status,
        failed,
        error_kind,
        error_message: error_message.clone(),
        duration_ns,
        ttfb_ns: outcome.timings.ttfb_ns,
        request_size: outcome.request_size,
        response_size: outcome.response_size,
        ..origin.execution(id, Protocol::Grpc, ctx, started_at)
    };

    let mut attributes = Attributes::new();
    attributes.insert("rpc.system".into(), json!("grpc"));
    attributes.insert("rpc.service".into(), json!(service));
    attributes.insert("rpc.method".into(), json!(method));
    let authority = outcome
        .request
        .address
        .split("://")
        .last()
        .unwrap_or_default()
        .trim_end_matches('/');
    if let Some((host, port)) = authority.rsplit_once(':') {
        attributes.insert(
            "server.address".into(),
            json!(host.trim_matches(['[', ']'])),
        );
        if let Ok(port) = port.parse::<u16>() {
            attributes.insert("server.port".into(), json!(port));
        }
    }
    if let Some(response) = &outcome.response {
        attributes.insert("rpc.grpc.status_code".into(), json!(response.status_code));
    }
    let status_message = error_message.clone().or_else(|| {
        outcome.response.as_ref().and_then(|r| {
            (r.status_code != 0).then(|| format!("{}: {}", r.status_name, r.status_message))
        })
    });
    let error_type = error_kind.map(|k| k.as_str().to_owned()).or_else(|| {
        outcome
            .response
            .as_ref()
            .filter(|r| r.status_code != 0)
            .map(|r| r.status_name.clone())
    });
    let span = client_span(ClientSpanParts {
        ctx,
        workspace_id: origin.workspace_id,
        execution_id: id,
        protocol: Protocol::Grpc,
        name: format!("{service}/{method}"),
        start: started_at,
        duration_ns,
        attributes,
        failed,
        status_message,
        error_type,
    });
    let detail = ExecutionDetail {
        execution_id: id,
        request: serde_json::to_value(&outcome.request).unwrap_or(Value::Null),
        response: json!({
            "response": outcome.response,
            "error": outcome.error,
            "timings": outcome.timings,
        }),
    };
    count(&execution);
    Captured {
        execution,
        detail,
        span,
    }
}
