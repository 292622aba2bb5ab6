//! Analytics over executions and spans, answered from rollups written at ingest.
//!
//! **Why rollups.** Ten million executions cannot be scanned in 100 ms on two cores, by either
//! database. So every [`crate::ExecutionStore::insert_executions`] and
//! [`crate::SpanStore::insert_spans`] also adds what it stored to rollup rows, in the same
//! transaction: only rows that were actually new count (an idempotent retry adds nothing), and a
//! rolled-back batch leaves no trace in the rollups either.
//!
//! **Shape.** An execution rollup row is keyed by (workspace, granularity, bucket start, saved
//! request, protocol, method, endpoint template, status class) and holds the count, failures
//! ([`Execution::failed`], the one definition of failure), the exact sum and maximum of durations
//! and a log-bucketed histogram ([`prism_domain::analytics`]: percentiles within 0.99 % of the exact
//! nearest-rank value). A span rollup row is keyed by (workspace, granularity, bucket start,
//! service). Each row is written for three granularities — minute, hour, UTC day — and a window
//! is answered from the fewest buckets that cover it exactly
//! ([`prism_domain::analytics::cover`]): days in the middle, hours
//! and minutes at the edges (at most ~190 buckets per key for any window), capped at the series
//! step so that every bucket falls in one point of the time series. Windows are whole minutes.
//!
//! **Writing.** Histograms are opaque blobs to the databases, so a batch's rollups are merged
//! in Rust: read the batch's existing rollup rows, add, write back (`ON CONFLICT … DO UPDATE`).
//! On SQLite the single writer makes that atomic; on PostgreSQL a transaction-scoped advisory lock
//! per workspace serializes concurrent writers of one workspace's rollups (taken just before the
//! commit, after the bulk insert, so parallel ingest overlaps everything but the rollup update).

use std::collections::BTreeMap;

use async_trait::async_trait;
use prism_domain::analytics::{Granularity, LatencyStats, StatusClass};
use prism_domain::execution::Execution;
use prism_domain::request::Protocol;
use prism_domain::trace::{Span, StatusCode};
use prism_domain::{RequestId, Timestamp, WorkspaceId};
use uuid::Uuid;

use crate::Result;

/// What to aggregate. `from`/`to` must be whole minutes; `step` (the time-series bucket) a whole
/// number of minutes, hours or days.
#[derive(Debug, Clone)]
pub struct AnalyticsQuery {
    /// Inclusive.
    pub from: Timestamp,
    /// Exclusive.
    pub to: Timestamp,
    /// Width of a time-series point in nanoseconds; points are aligned to the epoch.
    pub step_ns: i64,
    /// Only these saved requests (`Some(empty)` matches nothing).
    pub request_ids: Option<Vec<RequestId>>,
    pub protocol: Option<Protocol>,
    /// The HTTP method (`""` is gRPC's).
    pub method: Option<String>,
    pub endpoint: Option<String>,
    pub status_class: Option<StatusClass>,
}

/// An endpoint: protocol, method (empty for gRPC) and URL template (or gRPC method path).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EndpointKey {
    pub protocol: Protocol,
    pub method: String,
    pub endpoint: String,
}

/// Executions of a window: overall, per time-series point (only points with executions, by
/// start) and per endpoint (by key).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExecutionAnalytics {
    pub total: LatencyStats,
    pub series: Vec<(Timestamp, LatencyStats)>,
    pub endpoints: Vec<(EndpointKey, LatencyStats)>,
}

/// One service's spans in a window; `stats.failures` counts spans with status `ERROR`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceAnalytics {
    pub service: String,
    pub stats: LatencyStats,
}

#[async_trait]
pub trait AnalyticsStore: Send + Sync {
    /// Aggregates a workspace's executions in `[query.from, query.to)`.
    async fn execution_analytics(
        &self,
        workspace: WorkspaceId,
        query: &AnalyticsQuery,
    ) -> Result<ExecutionAnalytics>;
    /// Aggregates a workspace's spans in `[from, to)` (whole minutes) per service, by service name.
    async fn span_analytics(
        &self,
        workspace: WorkspaceId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<ServiceAnalytics>>;
}

/// The coarsest rollup granularity whose buckets never straddle two series points of `step_ns`.
pub(crate) fn coarsest_for(step_ns: i64) -> Granularity {
    Granularity::ALL
        .into_iter()
        .rev()
        .find(|g| step_ns > 0 && step_ns % g.nanos() == 0)
        .unwrap_or(Granularity::Minute)
}

/// The key of an execution rollup row, borrowing the batch's strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ExecutionKey<'a> {
    pub workspace: Uuid,
    pub granularity: i64,
    pub bucket_start: i64,
    pub request: Uuid,
    pub protocol: &'a str,
    pub method: &'a str,
    pub endpoint: &'a str,
    pub status_class: &'a str,
}

/// The key of a span rollup row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SpanKey<'a> {
    pub workspace: Uuid,
    pub granularity: i64,
    pub bucket_start: i64,
    pub service: &'a str,
}

/// What a batch of newly stored executions adds to each rollup row (sorted by key, which is also
/// the order rows are locked and written in).
pub(crate) fn execution_rollups<'a>(
    executions: impl IntoIterator<Item = &'a Execution>,
) -> BTreeMap<ExecutionKey<'a>, LatencyStats> {
    let mut out: BTreeMap<ExecutionKey<'a>, LatencyStats> = BTreeMap::new();
    for e in executions {
        let class = StatusClass::of(e.protocol, e.status_code).as_str();
        for g in Granularity::ALL {
            let key = ExecutionKey {
                workspace: e.workspace_id.into(),
                granularity: g.seconds(),
                bucket_start: g.floor(e.started_at).nanos(),
                request: e.request_id.map_or(Uuid::nil(), Into::into),
                protocol: e.protocol.as_str(),
                method: e.method.as_deref().unwrap_or(""),
                endpoint: &e.endpoint,
                status_class: class,
            };
            out.entry(key).or_default().record(e.duration_ns, e.failed);
        }
    }
    out
}

/// What a batch of newly stored spans adds to each rollup row. Spans outside any workspace are
/// not counted (no workspace can see them).
pub(crate) fn span_rollups<'a>(
    spans: impl IntoIterator<Item = &'a Span>,
) -> BTreeMap<SpanKey<'a>, LatencyStats> {
    let mut out: BTreeMap<SpanKey<'a>, LatencyStats> = BTreeMap::new();
    for s in spans {
        let Some(workspace) = s.workspace_id else {
            continue;
        };
        let duration = s.end.nanos().saturating_sub(s.start.nanos());
        for g in Granularity::ALL {
            let key = SpanKey {
                workspace: workspace.into(),
                granularity: g.seconds(),
                bucket_start: g.floor(s.start).nanos(),
                service: &s.service,
            };
            out.entry(key)
                .or_default()
                .record(duration, s.status_code == StatusCode::Error);
        }
    }
    out
}

/// A 32-bit lock key per workspace (PostgreSQL advisory locks); collisions only serialize more.
pub(crate) fn workspace_lock_key(workspace: Uuid) -> i32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in workspace.as_bytes() {
        hash ^= u32::from(*byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash as i32
}
