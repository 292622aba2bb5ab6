//! Analytics of a workspace's executions and spans over a time window.
//!
//! `GET /api/workspaces/{id}/analytics?window=15m|1h|24h|7d|30d` (or `from`/`to` in RFC 3339), with
//! optional filters `collection_id` (the collection and all its folders), `request_id`, `method`,
//! `endpoint`, `protocol` and `status` (class: `1xx`…`5xx`, `grpc_ok`, `grpc_error`,
//! `no_response`). Answered from rollups written at ingest (`prism_store::analytics`), so the cost
//! does not grow with the number of executions. Windows are whole minutes in UTC (a preset window
//! starts on a series bucket, so it can be up to one bucket longer than named);
//! percentiles are within 0.99 % of the exact nearest-rank value; failure is
//! [`prism_domain::execution::is_failure`]. Span statistics follow the window only (spans do not
//! belong to saved requests).

use std::collections::{HashMap, HashSet};

use axum::extract::State;
use prism_domain::analytics::{
    LatencyStats, RELATIVE_ERROR, StatusClass, ceil_to, floor_to, last, series_step,
};
use prism_domain::request::Protocol;
use prism_domain::{CollectionId, RequestId, Timestamp, WorkspaceId};
use prism_store::{AnalyticsQuery, EndpointKey};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::{self, Action};
use super::auth::Caller;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{PathId, Query};
use super::{parse_time, time};
use crate::SoulState;

const MINUTE: i64 = 60_000_000_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
/// The longest custom range.
const MAX_RANGE_DAYS: i64 = 400;
/// Entries in each top-endpoints list.
const TOP: usize = 10;

pub fn routes() -> OpenApiRouter<SoulState> {
    OpenApiRouter::new().routes(routes!(workspace_analytics))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AnalyticsParams {
    /// `15m`, `1h`, `24h` (the default), `7d` or `30d`, ending with the current minute and
    /// starting on a series bucket (so up to one bucket longer). Not with `from`/`to`.
    pub window: Option<String>,
    /// Start of a custom range (RFC 3339); rounded down to the minute.
    pub from: Option<String>,
    /// End of a custom range (RFC 3339, default now); rounded up to the minute. At most 400 days
    /// after `from`.
    pub to: Option<String>,
    /// Only requests in this collection or any of its folders.
    pub collection_id: Option<String>,
    pub request_id: Option<String>,
    /// HTTP method (`GET`…); gRPC endpoints have none.
    pub method: Option<String>,
    /// URL template (`/users/{id}`), GraphQL operation or gRPC method path, as listed in
    /// `top_endpoints`.
    pub endpoint: Option<String>,
    /// `rest`, `graphql` or `grpc`.
    pub protocol: Option<String>,
    /// Status class: `1xx`, `2xx`, `3xx`, `4xx`, `5xx`, `grpc_ok`, `grpc_error`, `no_response`.
    pub status: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LatencyView {
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SeriesPoint {
    /// Start of the bucket (RFC 3339).
    pub start: String,
    pub count: u64,
    pub failures: u64,
    pub p95_ms: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointView {
    pub protocol: String,
    /// Empty for gRPC.
    pub method: String,
    pub endpoint: String,
    pub count: u64,
    pub failures: u64,
    pub error_rate: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TopEndpoints {
    pub by_count: Vec<EndpointView>,
    pub by_p99: Vec<EndpointView>,
    pub by_error_rate: Vec<EndpointView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistogramBucket {
    /// Upper bound in milliseconds; each bucket is twice as wide as the previous one.
    pub le_ms: f64,
    pub count: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceView {
    pub service: String,
    pub spans: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub p95_ms: f64,
}

/// Everything the analytics page shows for a window. Latencies in milliseconds; zeros and empty
/// lists for a window without executions.
#[derive(Debug, Serialize, ToSchema)]
pub struct AnalyticsView {
    /// The window actually used (whole minutes, UTC).
    pub from: String,
    pub to: String,
    /// Width of a time-series point: 60, 3600 or 86400.
    pub bucket_seconds: i64,
    pub count: u64,
    pub successes: u64,
    pub failures: u64,
    pub error_rate: f64,
    pub latency_ms: LatencyView,
    /// Only buckets with executions, by start.
    pub series: Vec<SeriesPoint>,
    pub top_endpoints: TopEndpoints,
    pub histogram: Vec<HistogramBucket>,
    /// Per service: spans that started in the window, by name.
    pub services: Vec<ServiceView>,
    /// The largest relative error of a reported percentile (0.0099).
    pub percentile_error: f64,
}

/// Executions and spans of a workspace over a window: counts, failures, percentiles, a time
/// series, top endpoints, a latency histogram and per-service span statistics.
#[utoipa::path(get, path = "/api/workspaces/{id}/analytics", tag = "analytics",
    params(("id" = String, Path), AnalyticsParams),
    responses((status = 200, body = AnalyticsView), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn workspace_analytics(
    State(state): State<SoulState>,
    caller: Caller,
    PathId(id): PathId<WorkspaceId>,
    Query(params): Query<AnalyticsParams>,
) -> ApiResult<axum::Json<AnalyticsView>> {
    access::workspace(&state, &caller, id, Action::Read).await?;
    let (from, to, step) = window(&params, state.clock.now())?;
    let request_ids = requests(&state, id, &params).await?;
    let protocol = params
        .protocol
        .as_deref()
        .map(|p| {
            p.parse::<Protocol>()
                .map_err(|e| ApiError::invalid_field("protocol", e.to_string()))
        })
        .transpose()?;
    let status_class = params
        .status
        .as_deref()
        .map(|s| {
            s.parse::<StatusClass>()
                .map_err(|e| ApiError::invalid_field("status", e.to_string()))
        })
        .transpose()?;
    let query = AnalyticsQuery {
        from,
        to,
        step_ns: step,
        request_ids,
        protocol,
        method: params.method.clone().filter(|m| !m.is_empty()),
        endpoint: params.endpoint.clone().filter(|e| !e.is_empty()),
        status_class,
    };
    let executions = state.store.execution_analytics(id, &query).await?;
    let services = state.store.span_analytics(id, from, to).await?;
    let total = &executions.total;
    Ok(axum::Json(AnalyticsView {
        from: time(from),
        to: time(to),
        bucket_seconds: step / 1_000_000_000,
        count: total.count,
        successes: total.count - total.failures,
        failures: total.failures,
        error_rate: total.error_rate(),
        latency_ms: LatencyView {
            p50: total.quantile_ms(0.5),
            p90: total.quantile_ms(0.9),
            p95: total.quantile_ms(0.95),
            p99: total.quantile_ms(0.99),
            max: total.max_ms(),
            mean: total.mean_ms(),
        },
        series: executions
            .series
            .iter()
            .map(|(start, s)| SeriesPoint {
                start: time(*start),
                count: s.count,
                failures: s.failures,
                p95_ms: s.quantile_ms(0.95),
            })
            .collect(),
        top_endpoints: top_endpoints(&executions.endpoints),
        histogram: total
            .histogram
            .doublings()
            .into_iter()
            .map(|(le_ns, count)| HistogramBucket {
                le_ms: le_ns / 1e6,
                count,
            })
            .collect(),
        services: services
            .iter()
            .map(|s| ServiceView {
                service: s.service.clone(),
                spans: s.stats.count,
                errors: s.stats.failures,
                error_rate: s.stats.error_rate(),
                p95_ms: s.stats.quantile_ms(0.95),
            })
            .collect(),
        percentile_error: RELATIVE_ERROR,
    }))
}

/// The window `[from, to)` in whole minutes and the series step chosen from its length
/// ([`series_step`]). A preset window ends with the current minute and starts on a series bucket
/// ([`last`]); a custom range is rounded outward to whole minutes.
fn window(params: &AnalyticsParams, now: Timestamp) -> ApiResult<(Timestamp, Timestamp, i64)> {
    let custom = params.from.is_some() || params.to.is_some();
    let (from, to) = match (&params.window, custom) {
        (Some(_), true) => {
            return Err(ApiError::field_error(
                "invalid_range",
                "window",
                "give either `window` or `from`/`to`, not both",
            ));
        }
        (window, false) => {
            let length = match window.as_deref().unwrap_or("24h") {
                "15m" => 15 * MINUTE,
                "1h" => HOUR,
                "24h" => DAY,
                "7d" => 7 * DAY,
                "30d" => 30 * DAY,
                other => {
                    return Err(ApiError::field_error(
                        "invalid_window",
                        "window",
                        format!("unknown window {other:?}: expected 15m, 1h, 24h, 7d or 30d"),
                    ));
                }
            };
            return Ok(last(now, length));
        }
        (None, true) => {
            let from = parse_time("from", params.from.as_deref())?.ok_or_else(|| {
                ApiError::field_error("invalid_range", "from", "`to` needs `from`")
            })?;
            let to = parse_time("to", params.to.as_deref())?.unwrap_or(now);
            (floor_to(from, MINUTE), ceil_to(to, MINUTE))
        }
    };
    if from >= to {
        return Err(ApiError::field_error(
            "invalid_range",
            "from",
            "`from` must be before `to`",
        ));
    }
    if to.nanos().saturating_sub(from.nanos()) > MAX_RANGE_DAYS * DAY {
        return Err(ApiError::field_error(
            "range_too_large",
            "from",
            format!("at most {MAX_RANGE_DAYS} days"),
        ));
    }
    Ok((from, to, series_step(to.nanos() - from.nanos())))
}

/// The saved requests the filters allow (`None`: any, including ad-hoc executions). A
/// collection or request that is not in this workspace is refused like a missing one.
async fn requests(
    state: &SoulState,
    workspace: WorkspaceId,
    params: &AnalyticsParams,
) -> ApiResult<Option<Vec<RequestId>>> {
    let request = params
        .request_id
        .as_deref()
        .map(|raw| {
            raw.parse::<RequestId>()
                .map_err(|_| ApiError::invalid_field("request_id", "not an id"))
        })
        .transpose()?;
    let collection = params
        .collection_id
        .as_deref()
        .map(|raw| {
            raw.parse::<CollectionId>()
                .map_err(|_| ApiError::invalid_field("collection_id", "not an id"))
        })
        .transpose()?;
    if request.is_none() && collection.is_none() {
        return Ok(None);
    }
    let all = state.store.list_workspace_requests(workspace).await?;
    let mut allowed: Option<HashSet<RequestId>> = None;
    if let Some(request) = request {
        if !all.iter().any(|r| r.id == request) {
            return Err(ApiError::field_error(
                "request_not_found",
                "request_id",
                "no such request in this workspace",
            ));
        }
        allowed = Some(HashSet::from([request]));
    }
    if let Some(collection) = collection {
        let collections = state.store.list_collections(workspace).await?;
        if !collections.iter().any(|c| c.id == collection) {
            return Err(ApiError::field_error(
                "collection_not_found",
                "collection_id",
                "no such collection in this workspace",
            ));
        }
        // The collection and every folder below it.
        let mut children: HashMap<CollectionId, Vec<CollectionId>> = HashMap::new();
        for c in &collections {
            if let Some(parent) = c.parent_id {
                children.entry(parent).or_default().push(c.id);
            }
        }
        let mut inside = HashSet::from([collection]);
        let mut todo = vec![collection];
        while let Some(next) = todo.pop() {
            for child in children.get(&next).into_iter().flatten() {
                if inside.insert(*child) {
                    todo.push(*child);
                }
            }
        }
        let in_collection: HashSet<RequestId> = all
            .iter()
            .filter(|r| inside.contains(&r.collection_id))
            .map(|r| r.id)
            .collect();
        allowed = Some(match allowed {
            Some(one) => one.intersection(&in_collection).copied().collect(),
            None => in_collection,
        });
    }
    let mut ids: Vec<RequestId> = allowed.unwrap_or_default().into_iter().collect();
    ids.sort();
    Ok(Some(ids))
}

fn endpoint_view(key: &EndpointKey, stats: &LatencyStats) -> EndpointView {
    EndpointView {
        protocol: key.protocol.as_str().to_owned(),
        method: key.method.clone(),
        endpoint: key.endpoint.clone(),
        count: stats.count,
        failures: stats.failures,
        error_rate: stats.error_rate(),
        p50_ms: stats.quantile_ms(0.5),
        p95_ms: stats.quantile_ms(0.95),
        p99_ms: stats.quantile_ms(0.99),
    }
}

/// The busiest, slowest (P99) and most failing endpoints; ties broken by count, then name.
fn top_endpoints(endpoints: &[(EndpointKey, LatencyStats)]) -> TopEndpoints {
    let top = |score: &dyn Fn(&LatencyStats) -> f64| {
        let mut ranked: Vec<&(EndpointKey, LatencyStats)> = endpoints.iter().collect();
        ranked.sort_by(|a, b| {
            score(&b.1)
                .total_cmp(&score(&a.1))
                .then(b.1.count.cmp(&a.1.count))
                .then_with(|| a.0.endpoint.cmp(&b.0.endpoint))
                .then_with(|| a.0.method.cmp(&b.0.method))
        });
        ranked
            .into_iter()
            .take(TOP)
            .map(|(k, s)| endpoint_view(k, s))
            .collect()
    };
    TopEndpoints {
        by_count: top(&|s| s.count as f64),
        by_p99: top(&|s| s.quantile_ms(0.99)),
        by_error_rate: top(&|s| s.error_rate()),
    }
}
