//! Trace search: which traces of a workspace match a Jaeger-like query, summarized.

use prism_domain::Timestamp;
use prism_domain::trace::TraceId;

/// Which traces to find. A trace belongs to a workspace as in
/// [`crate::SpanStore::list_trace_workspaces`]: one of its spans was reported into the workspace,
/// or one of the workspace's executions is in it. Only traces with at least one stored span are
/// found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceFilter {
    /// The trace has a span of this service (`service.name`)…
    pub service: Option<String>,
    /// …and (the same span, when both are given) of this name.
    pub operation: Option<String>,
    /// Inclusive bounds on the trace's duration: from its first span's start to its last span's end.
    pub min_duration_ns: Option<i64>,
    pub max_duration_ns: Option<i64>,
    /// `true`: some span has the error status; `false`: none has.
    pub error: Option<bool>,
    /// Inclusive lower and exclusive upper bound on the trace's start (its first span's start).
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    /// At most this many traces (clamped to 1..=1000), newest first.
    pub limit: u32,
}

/// One trace found by [`crate::SpanStore::search_traces`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceSummary {
    pub trace_id: TraceId,
    /// The service and name of the root span: the earliest span whose parent is not stored
    /// (the earliest span at all if every parent is).
    pub root_service: String,
    pub root_operation: String,
    pub started_at: Timestamp,
    pub duration_ns: i64,
    pub span_count: i64,
    /// Spans with the error status.
    pub error_count: i64,
    /// Every service with a span in the trace, sorted.
    pub services: Vec<String>,
}
