//! Notifications that spans of a trace were stored, for live trace views.
//!
//! The recorder announces the traces of every batch it committed ([`crate::SpanStore::notify_spans`])
//! and live streams subscribe ([`crate::SpanStore::subscribe_spans`]). On SQLite (one process) the
//! announcement goes through an in-process broadcast channel; on PostgreSQL it goes through
//! `NOTIFY prism_spans` and one `LISTEN` connection per process feeds the same broadcast channel,
//! so a stream served by one replica sees spans ingested by another.
//!
//! Notifications can be lost (a lagging subscriber, a reconnecting listener); those cases are
//! announced as [`FeedEvent::Resync`], after which subscribers re-read what they are showing.

use prism_domain::trace::TraceId;
use tokio::sync::broadcast;

/// Events a subscriber can fall behind by before it is told to resync.
pub const FEED_CAPACITY: usize = 4096;

/// The PostgreSQL notification channel.
pub const PG_CHANNEL: &str = "prism_spans";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedEvent {
    /// Spans of this trace were committed.
    Stored(TraceId),
    /// Some notifications may have been missed: re-read.
    Resync,
}

/// A subscription to [`FeedEvent`]s. A `Lagged` error from `recv` means "resync" too.
pub type SpanSubscription = broadcast::Receiver<FeedEvent>;

pub(crate) fn channel() -> broadcast::Sender<FeedEvent> {
    broadcast::channel(FEED_CAPACITY).0
}

/// The distinct trace ids of a batch, in first-seen order.
pub fn distinct_traces(traces: impl IntoIterator<Item = TraceId>) -> Vec<TraceId> {
    let mut seen = std::collections::HashSet::new();
    traces.into_iter().filter(|t| seen.insert(*t)).collect()
}
