//! History and traces: what ran, and what it caused.
//!
//! - `GET /api/workspaces/{id}/executions`: executions newest first, filtered and paginated with an
//!   opaque cursor;
//! - `GET /api/executions/{id}`: one execution with the request as sent and the response as
//!   received;
//! - `GET /api/traces/{trace_id}`: every span of a trace, if the trace belongs to one of the
//!   caller's workspaces (see [`prism_store::SpanStore::list_trace_workspaces`]);
//! - `GET /api/workspaces/{id}/traces`: Jaeger-like trace search.
//!
//! Times are RFC 3339, durations milliseconds (fractional).

use axum::extract::State;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use prism_domain::execution::{Execution, ExecutionDetail};
use prism_domain::request::Protocol;
use prism_domain::trace::{Span, TraceId};
use prism_domain::{ExecutionId, RequestId, Timestamp, WorkspaceId};
use prism_store::{ExecutionCursor, ExecutionFilter, StoreError, TraceFilter, TraceSummary};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::{self, Action};
use super::auth::Caller;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{PathId, Query};
use super::{parse_time, time};
use crate::SoulState;

pub fn routes() -> OpenApiRouter<SoulState> {
    OpenApiRouter::new()
        .routes(routes!(list_executions))
        .routes(routes!(get_execution))
        .routes(routes!(get_trace))
        .routes(routes!(search_traces))
}

/// Executions per page unless `limit` says otherwise, and the most one page may hold.
const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 1000;
/// Traces per search unless `limit` says otherwise, and the most one search may return.
const DEFAULT_TRACES: u32 = 20;
const MAX_TRACES: u32 = 1000;

fn millis(ns: i64) -> f64 {
    ns as f64 / 1_000_000.0
}

/// One execution as the history shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExecutionView {
    pub id: String,
    pub workspace_id: String,
    /// The saved request it ran; `null` for ad-hoc requests (or after the request was deleted).
    pub request_id: Option<String>,
    /// `rest`, `graphql` or `grpc`.
    pub protocol: String,
    /// HTTP method; `null` for gRPC.
    pub method: Option<String>,
    /// The resolved URL, or for gRPC `address/package.Service/Method`.
    pub target: String,
    /// Grouping key for analytics (URL template or gRPC method).
    pub endpoint: String,
    /// HTTP status or gRPC status code; `null` when the target never answered.
    pub status_code: Option<i32>,
    pub failed: bool,
    /// `dns`, `connection_refused`, `connect`, `tls`, `timeout`, `invalid_request`, `blocked`,
    /// `io`, `protocol`, `other`.
    pub error_kind: Option<String>,
    pub error_message: Option<String>,
    pub started_at: String,
    pub duration_ms: f64,
    pub ttfb_ms: Option<f64>,
    pub dns_ms: Option<f64>,
    pub connect_ms: Option<f64>,
    pub tls_ms: Option<f64>,
    pub request_size: i64,
    pub response_size: i64,
    pub trace_id: String,
    pub span_id: String,
    /// `api`, `data_plane`, `workflow` or `cli`.
    pub source: String,
    pub created_by: Option<String>,
}

impl From<&Execution> for ExecutionView {
    fn from(e: &Execution) -> Self {
        Self {
            id: e.id.to_string(),
            workspace_id: e.workspace_id.to_string(),
            request_id: e.request_id.map(|r| r.to_string()),
            protocol: e.protocol.to_string(),
            method: e.method.clone(),
            target: e.target.clone(),
            endpoint: e.endpoint.clone(),
            status_code: e.status_code,
            failed: e.failed,
            error_kind: e.error_kind.map(|k| k.to_string()),
            error_message: e.error_message.clone(),
            started_at: time(e.started_at),
            duration_ms: millis(e.duration_ns),
            ttfb_ms: e.ttfb_ns.map(millis),
            dns_ms: e.dns_ns.map(millis),
            connect_ms: e.connect_ns.map(millis),
            tls_ms: e.tls_ns.map(millis),
            request_size: e.request_size,
            response_size: e.response_size,
            trace_id: e.trace_id.to_string(),
            span_id: e.span_id.to_string(),
            source: e.source.as_str().to_owned(),
            created_by: e.created_by.map(|u| u.to_string()),
        }
    }
}

/// A page of executions.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExecutionPage {
    pub items: Vec<ExecutionView>,
    /// Pass as `cursor` for the next (older) page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// The request as sent and the response as received (bodies capped).
#[derive(Debug, Serialize, ToSchema)]
pub struct ExecutionSnapshot {
    #[schema(value_type = Object)]
    pub request: Value,
    #[schema(value_type = Object)]
    pub response: Value,
}

/// One execution with its snapshot.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExecutionWithDetail {
    #[serde(flatten)]
    pub execution: ExecutionView,
    /// `null` when the snapshot was not kept.
    pub detail: Option<ExecutionSnapshot>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExecutionQuery {
    /// Only executions of this saved request (of the same workspace).
    pub request_id: Option<String>,
    /// `rest`, `graphql` or `grpc`.
    pub protocol: Option<String>,
    /// `2xx`, `3xx`, `4xx`, `5xx` (HTTP status class), `failed` or `ok` (see the failure rule).
    pub status: Option<String>,
    /// RFC 3339; inclusive.
    pub from: Option<String>,
    /// RFC 3339; exclusive.
    pub to: Option<String>,
    /// 1 to 1000 (default 50).
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn limit(raw: Option<&str>, default: u32, max: u32) -> ApiResult<u32> {
    match raw {
        None => Ok(default),
        Some(text) => text
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| ApiError::invalid_field("limit", format!("must be 1 to {max}"))),
    }
}

fn time_window(
    from: Option<&str>,
    to: Option<&str>,
) -> ApiResult<(Option<Timestamp>, Option<Timestamp>)> {
    let from = parse_time("from", from)?;
    let to = parse_time("to", to)?;
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(ApiError::invalid_field("to", "is before `from`"));
    }
    Ok((from, to))
}

/// The opaque text of a page position: base64url of `<started_at nanos>:<execution id>`.
fn encode_cursor(cursor: ExecutionCursor) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{}", cursor.started_at.nanos(), cursor.id))
}

fn decode_cursor(text: &str) -> ApiResult<ExecutionCursor> {
    let invalid = || ApiError::invalid_field("cursor", "is not a cursor this API gave out");
    let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (nanos, id) = text.split_once(':').ok_or_else(invalid)?;
    Ok(ExecutionCursor {
        started_at: Timestamp::from_nanos(nanos.parse().map_err(|_| invalid())?),
        id: id.parse().map_err(|_| invalid())?,
    })
}

fn status_filter(filter: &mut ExecutionFilter, status: &str) -> ApiResult<()> {
    let class = |hundreds: i32, filter: &mut ExecutionFilter| {
        filter.status_min = Some(hundreds * 100);
        filter.status_max = Some(hundreds * 100 + 99);
    };
    match status {
        "2xx" => class(2, filter),
        "3xx" => class(3, filter),
        "4xx" => class(4, filter),
        "5xx" => class(5, filter),
        "failed" => filter.failed = Some(true),
        "ok" => filter.failed = Some(false),
        _ => {
            return Err(ApiError::invalid_field(
                "status",
                "must be 2xx, 3xx, 4xx, 5xx, failed or ok",
            ));
        }
    }
    Ok(())
}

/// The workspace's executions, newest first.
#[utoipa::path(get, path = "/api/workspaces/{id}/executions", tag = "history",
    params(("id" = String, Path), ExecutionQuery),
    responses(
        (status = 200, body = ExecutionPage),
        (status = 400, description = "`invalid_query` (unknown parameter)", body = ErrorBody),
        (status = 404, description = "`workspace_not_found`, `request_not_found`", body = ErrorBody),
        (status = 422, description = "`invalid_field` naming the parameter", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [])))]
async fn list_executions(
    State(state): State<SoulState>,
    caller: Caller,
    PathId(workspace): PathId<WorkspaceId>,
    Query(query): Query<ExecutionQuery>,
) -> ApiResult<axum::Json<ExecutionPage>> {
    access::workspace(&state, &caller, workspace, Action::Read).await?;
    let page = limit(present(&query.limit), DEFAULT_PAGE, MAX_PAGE)?;
    let (from, to) = time_window(present(&query.from), present(&query.to))?;
    let mut filter = ExecutionFilter {
        from,
        to,
        // One more than asked tells whether another page follows.
        limit: page + 1,
        ..ExecutionFilter::default()
    };
    if let Some(protocol) = present(&query.protocol) {
        filter.protocol =
            Some(protocol.parse::<Protocol>().map_err(|_| {
                ApiError::invalid_field("protocol", "must be rest, graphql or grpc")
            })?);
    }
    if let Some(status) = present(&query.status) {
        status_filter(&mut filter, status)?;
    }
    if let Some(cursor) = present(&query.cursor) {
        filter.before = Some(decode_cursor(cursor)?);
    }
    if let Some(raw) = present(&query.request_id) {
        let id: RequestId = raw
            .parse()
            .map_err(|_| ApiError::invalid_field("request_id", format!("{raw:?} is not an id")))?;
        match state.store.get_request(id).await {
            Ok(saved) if saved.workspace_id == workspace => {}
            Ok(_) | Err(StoreError::NotFound(_)) => return Err(access::request_not_found()),
            Err(err) => return Err(err.into()),
        }
        filter.request_id = Some(id);
    }
    let mut found = state.store.list_executions(workspace, &filter).await?;
    let next_cursor = if found.len() > page as usize {
        found.truncate(page as usize);
        found.last().map(|last| {
            encode_cursor(ExecutionCursor {
                started_at: last.started_at,
                id: last.id,
            })
        })
    } else {
        None
    };
    Ok(axum::Json(ExecutionPage {
        items: found.iter().map(ExecutionView::from).collect(),
        next_cursor,
    }))
}

fn execution_not_found() -> ApiError {
    ApiError::not_found("execution_not_found", "no such execution")
}

/// One execution with the request as sent and the response as received.
#[utoipa::path(get, path = "/api/executions/{id}", tag = "history",
    params(("id" = String, Path)),
    responses((status = 200, body = ExecutionWithDetail), (status = 404, description = "`execution_not_found`", body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn get_execution(
    State(state): State<SoulState>,
    caller: Caller,
    PathId(id): PathId<ExecutionId>,
) -> ApiResult<axum::Json<ExecutionWithDetail>> {
    let execution = match state.store.get_execution(id).await {
        Ok(execution) => execution,
        Err(StoreError::NotFound(_)) => return Err(execution_not_found()),
        Err(err) => return Err(err.into()),
    };
    access::authorize(
        &state,
        &caller,
        execution.workspace_id,
        Action::Read,
        execution_not_found,
    )
    .await?;
    let detail = state.store.find_execution_detail(id).await?;
    Ok(axum::Json(ExecutionWithDetail {
        execution: ExecutionView::from(&execution),
        detail: detail.map(
            |ExecutionDetail {
                 request, response, ..
             }| ExecutionSnapshot { request, response },
        ),
    }))
}

/// A span event.
#[derive(Debug, Serialize, ToSchema)]
pub struct SpanEventView {
    pub time: String,
    pub name: String,
    #[schema(value_type = Object)]
    pub attributes: serde_json::Map<String, Value>,
}

/// A span as OpenTelemetry describes it, times in RFC 3339.
#[derive(Debug, Serialize, ToSchema)]
pub struct SpanView {
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: Option<String>,
    /// The workspace the span was reported into, if any.
    pub workspace_id: Option<String>,
    pub name: String,
    /// `service.name` of the reporting resource (`prism` for PRISM's own client spans).
    pub service: String,
    /// `unspecified`, `internal`, `server`, `client`, `producer`, `consumer`.
    pub kind: String,
    pub start_time: String,
    pub end_time: String,
    pub duration_ms: f64,
    /// `unset`, `ok` or `error`.
    pub status_code: String,
    pub status_message: Option<String>,
    #[schema(value_type = Object)]
    pub attributes: serde_json::Map<String, Value>,
    pub events: Vec<SpanEventView>,
    /// `{trace_id, span_id, trace_state, attributes}`.
    #[schema(value_type = Vec<Object>)]
    pub links: Value,
    #[schema(value_type = Object)]
    pub resource_attributes: serde_json::Map<String, Value>,
    /// `{name, version, attributes}` of the instrumentation scope.
    #[schema(value_type = Object)]
    pub scope: Value,
    pub trace_state: Option<String>,
    pub flags: u32,
}

/// The wire name of a serde enum (`client`, `error`…).
fn wire_name<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

impl From<&Span> for SpanView {
    fn from(s: &Span) -> Self {
        Self {
            trace_id: s.trace_id.to_string(),
            span_id: s.span_id.to_string(),
            parent_span_id: s.parent_span_id.map(|p| p.to_string()),
            workspace_id: s.workspace_id.map(|w| w.to_string()),
            name: s.name.clone(),
            service: s.service.clone(),
            kind: wire_name(&s.kind),
            start_time: time(s.start),
            end_time: time(s.end),
            duration_ms: millis(s.end.nanos() - s.start.nanos()),
            status_code: wire_name(&s.status_code),
            status_message: s.status_message.clone(),
            attributes: s.attributes.clone(),
            events: s
                .events
                .iter()
                .map(|e| SpanEventView {
                    time: time(e.time),
                    name: e.name.clone(),
                    attributes: e.attributes.clone(),
                })
                .collect(),
            links: serde_json::to_value(&s.links).unwrap_or(Value::Null),
            resource_attributes: s.resource_attributes.clone(),
            scope: serde_json::to_value(&s.scope).unwrap_or(Value::Null),
            trace_state: s.trace_state.clone(),
            flags: s.flags,
        }
    }
}

/// A whole trace.
#[derive(Debug, Serialize, ToSchema)]
pub struct TraceView {
    pub trace_id: String,
    /// By start time.
    pub spans: Vec<SpanView>,
    /// Every service with a span in the trace, sorted.
    pub services: Vec<String>,
    /// The trace's executions in the caller's workspaces, by start.
    pub executions: Vec<ExecutionView>,
}

/// Every span of a trace that belongs to one of the caller's workspaces.
#[utoipa::path(get, path = "/api/traces/{trace_id}", tag = "history",
    params(("trace_id" = String, Path, description = "32 lowercase hex digits")),
    responses(
        (status = 200, body = TraceView),
        (status = 400, description = "`invalid_id`", body = ErrorBody),
        (status = 404, description = "`trace_not_found`", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [])))]
async fn get_trace(
    State(state): State<SoulState>,
    caller: Caller,
    PathId(trace): PathId<TraceId>,
) -> ApiResult<axum::Json<TraceView>> {
    let mine = access::trace_workspaces(&state, &caller, trace).await?;
    let spans = state.store.list_trace_spans(trace).await?;
    let mut services: Vec<String> = spans.iter().map(|s| s.service.clone()).collect();
    services.sort();
    services.dedup();
    let executions = state
        .store
        .list_trace_executions(trace)
        .await?
        .iter()
        .filter(|e| mine.contains(&e.workspace_id))
        .map(ExecutionView::from)
        .collect();
    Ok(axum::Json(TraceView {
        trace_id: trace.to_string(),
        spans: spans.iter().map(SpanView::from).collect(),
        services,
        executions,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TraceQuery {
    /// A span of this service…
    pub service: Option<String>,
    /// …with this name (the same span when both are given).
    pub operation: Option<String>,
    /// The whole trace lasted at least this long (milliseconds, may be fractional).
    pub min_duration_ms: Option<String>,
    /// …and at most this long.
    pub max_duration_ms: Option<String>,
    /// `true`: some span has the error status; `false`: none has.
    pub error: Option<String>,
    /// RFC 3339; the trace started at or after.
    pub from: Option<String>,
    /// RFC 3339; the trace started before.
    pub to: Option<String>,
    /// 1 to 1000 (default 20).
    pub limit: Option<String>,
}

/// A trace found by the search.
#[derive(Debug, Serialize, ToSchema)]
pub struct TraceSummaryView {
    pub trace_id: String,
    /// Service and name of the root span (the earliest span whose parent is not stored).
    pub root_service: String,
    pub root_operation: String,
    pub started_at: String,
    pub duration_ms: f64,
    pub span_count: i64,
    /// Spans with the error status.
    pub error_count: i64,
    pub services: Vec<String>,
}

impl From<TraceSummary> for TraceSummaryView {
    fn from(s: TraceSummary) -> Self {
        Self {
            trace_id: s.trace_id.to_string(),
            root_service: s.root_service,
            root_operation: s.root_operation,
            started_at: time(s.started_at),
            duration_ms: millis(s.duration_ns),
            span_count: s.span_count,
            error_count: s.error_count,
            services: s.services,
        }
    }
}

fn duration(field: &str, raw: Option<&str>) -> ApiResult<Option<i64>> {
    raw.map(|text| {
        text.parse::<f64>()
            .ok()
            .filter(|ms| ms.is_finite() && *ms >= 0.0 && *ms <= 1e12)
            .map(|ms| (ms * 1_000_000.0).round() as i64)
            .ok_or_else(|| {
                ApiError::invalid_field(field, "must be a number of milliseconds, 0 or more")
            })
    })
    .transpose()
}

/// The workspace's traces matching the search, newest first.
#[utoipa::path(get, path = "/api/workspaces/{id}/traces", tag = "history",
    params(("id" = String, Path), TraceQuery),
    responses(
        (status = 200, body = Vec<TraceSummaryView>),
        (status = 400, description = "`invalid_query` (unknown parameter)", body = ErrorBody),
        (status = 404, description = "`workspace_not_found`", body = ErrorBody),
        (status = 422, description = "`invalid_field` naming the parameter", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [])))]
async fn search_traces(
    State(state): State<SoulState>,
    caller: Caller,
    PathId(workspace): PathId<WorkspaceId>,
    Query(query): Query<TraceQuery>,
) -> ApiResult<axum::Json<Vec<TraceSummaryView>>> {
    access::workspace(&state, &caller, workspace, Action::Read).await?;
    let (from, to) = time_window(present(&query.from), present(&query.to))?;
    let min_duration_ns = duration("min_duration_ms", present(&query.min_duration_ms))?;
    let max_duration_ns = duration("max_duration_ms", present(&query.max_duration_ms))?;
    if let (Some(min), Some(max)) = (min_duration_ns, max_duration_ns)
        && min > max
    {
        return Err(ApiError::invalid_field(
            "max_duration_ms",
            "is less than `min_duration_ms`",
        ));
    }
    let error = match present(&query.error) {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => return Err(ApiError::invalid_field("error", "must be true or false")),
    };
    let filter = TraceFilter {
        service: present(&query.service).map(str::to_owned),
        operation: present(&query.operation).map(str::to_owned),
        min_duration_ns,
        max_duration_ns,
        error,
        from,
        to,
        limit: limit(present(&query.limit), DEFAULT_TRACES, MAX_TRACES)?,
    };
    let found = state.store.search_traces(workspace, &filter).await?;
    Ok(axum::Json(
        found.into_iter().map(TraceSummaryView::from).collect(),
    ))
}
