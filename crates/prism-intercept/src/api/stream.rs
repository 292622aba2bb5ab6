//! `GET /traces/stream?traceId=…`: a trace, live, as Server-Sent Events.
//!
//! The stream first sends the trace's spans already stored, then each new span as it is
//! committed — by this process or, on PostgreSQL, by any other replica (the store's span feed is
//! LISTEN/NOTIFY there) — and ends with an `event: complete` once the trace has been quiet for
//! the quiet time (`quiet_ms`, default from the server settings). Spans are unnamed events
//! (`data: <span JSON>`, `id: <span id>`), so `EventSource.onmessage` sees them, as in upstream.
//!
//! Resources stay bounded whatever clients do: the number of open streams is capped (503
//! `too_many_streams` beyond it), each stream stops after `max_stream_spans` spans, events wait in
//! a small bounded channel (a slow client slows its own stream, nothing is dropped), and a client
//! that disconnects ends its task at the next event or tick.
//!
//! Visibility: a caller sees a trace once it is attributed to a workspace they belong to (through
//! an execution or an ingest key). Until then nothing is sent, so trace ids cannot be probed.

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use prism_domain::trace::{SpanId, TraceId};
use prism_domain::{UserId, WorkspaceId};
use prism_store::{FeedEvent, Store};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{OwnedSemaphorePermit, broadcast, mpsc};
use tokio::time::Instant;

use super::auth::{Caller, authenticate};
use super::error::{ApiError, ErrorBody};
use crate::InterceptState;

/// Bounds of `quiet_ms`.
const MIN_QUIET: Duration = Duration::from_millis(100);
const MAX_QUIET: Duration = Duration::from_secs(300);
/// Events buffered per stream before the stream waits for its client.
const EVENT_BUFFER: usize = 64;

#[derive(Debug, Deserialize)]
pub struct StreamQuery {
    #[serde(rename = "traceId", alias = "trace_id")]
    trace_id: Option<String>,
    quiet_ms: Option<u64>,
}

#[utoipa::path(get, path = "/traces/stream",
    params(
        ("traceId" = String, Query, description = "32 lowercase hex digits"),
        ("quiet_ms" = Option<u64>, Query, description = "End after the trace was quiet this long (100–300000; default from the server)"),
    ),
    responses(
        (status = 200, description = "`text/event-stream`: stored spans, then live ones (`data: <span>`, `id: <span id>`), then `event: complete` with `{trace_id, spans, reason}`", content_type = "text/event-stream", body = String),
        (status = 400, description = "`trace_id_required` / `invalid_trace_id`", body = ErrorBody),
        (status = 401, description = "`missing_credentials` / `invalid_credentials`", body = ErrorBody),
        (status = 503, description = "`too_many_streams`, with `Retry-After`", body = ErrorBody),
    ),
    security(("bearer" = [])),
    tag = "traces"
)]
pub async fn stream(
    State(state): State<InterceptState>,
    headers: HeaderMap,
    Query(query): Query<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let caller = authenticate(&state, &headers).await?;
    let raw = query.trace_id.as_deref().map(str::trim).unwrap_or_default();
    if raw.is_empty() {
        return Err(ApiError::bad_request(
            "trace_id_required",
            "traceId is required",
        ));
    }
    let trace: TraceId = raw.to_ascii_lowercase().parse().map_err(|_| {
        ApiError::bad_request(
            "invalid_trace_id",
            format!("traceId {raw:?} is not 32 hex digits (not all zero)"),
        )
    })?;
    let quiet = query
        .quiet_ms
        .map_or(state.settings.stream_quiet, Duration::from_millis)
        .clamp(MIN_QUIET, MAX_QUIET);
    let permit = state.streams.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_streams",
            "this server has as many live streams open as it allows; retry later",
        )
        .with_retry_after(5)
    })?;
    let viewer = match caller {
        Caller::Service { workspace_id, .. } => Viewer::Workspace(workspace_id),
        Caller::User { user_id, .. } => Viewer::Member(user_id),
    };
    Ok(live_trace(
        state.store.clone(),
        trace,
        Limits {
            quiet,
            max_spans: state.settings.max_stream_spans,
        },
        viewer,
        permit,
    ))
}

/// Who is watching a live trace, deciding when its spans may be sent.
#[derive(Debug, Clone, Copy)]
pub enum Viewer {
    /// Sees the trace once it is attributed to this workspace (a service credential, or a member
    /// whose membership of it was checked by the caller).
    Workspace(WorkspaceId),
    /// Sees the trace once it is attributed to any workspace this user belongs to.
    Member(UserId),
}

/// How long a live stream waits for more spans and how many it sends.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub quiet: Duration,
    pub max_spans: usize,
}

/// A trace as Server-Sent Events: the spans already stored, then new ones as the store's span
/// feed announces them, then `event: complete` after `limits.quiet` without new spans. Nothing is
/// sent until the trace is visible to `viewer`. `permit` is held for the stream's lifetime, so the
/// caller's semaphore bounds the number of open streams. Shared by the data plane's
/// `/traces/stream` and the control plane's `/api/traces/{id}/stream`.
pub fn live_trace(
    store: Arc<dyn Store>,
    trace: TraceId,
    limits: Limits,
    viewer: Viewer,
    permit: OwnedSemaphorePermit,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    // Subscribe before the first read, so nothing committed in between is missed.
    let feed = store.subscribe_spans();
    let (tx, rx) = mpsc::channel(EVENT_BUFFER);
    tokio::spawn(
        TraceStream {
            store,
            viewer,
            trace,
            limits,
            visible: false,
            sent: HashSet::new(),
            tx,
            _permit: permit,
        }
        .run(feed),
    );
    let events = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|event| (Ok(event), rx))
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}

struct TraceStream {
    store: Arc<dyn Store>,
    viewer: Viewer,
    trace: TraceId,
    limits: Limits,
    visible: bool,
    sent: HashSet<SpanId>,
    tx: mpsc::Sender<Event>,
    _permit: OwnedSemaphorePermit,
}

/// Why a stream ended.
enum End {
    Quiet,
    Limit,
    ClientGone,
    Failed,
}

impl TraceStream {
    async fn run(mut self, mut feed: prism_store::SpanSubscription) {
        let mut deadline = Instant::now() + self.limits.quiet;
        let end = 'stream: {
            match self.send_new().await {
                Ok(0) => {}
                Ok(_) => deadline = Instant::now() + self.limits.quiet,
                Err(end) => break 'stream end,
            }
            loop {
                let relevant = tokio::select! {
                    _ = tokio::time::sleep_until(deadline) => break 'stream End::Quiet,
                    _ = self.tx.closed() => break 'stream End::ClientGone,
                    event = feed.recv() => match event {
                        Ok(FeedEvent::Stored(trace)) => trace == self.trace,
                        Ok(FeedEvent::Resync) | Err(broadcast::error::RecvError::Lagged(_)) => true,
                        Err(broadcast::error::RecvError::Closed) => break 'stream End::Failed,
                    },
                };
                if !relevant {
                    continue;
                }
                // Announcements that queued up meanwhile are covered by the one re-read.
                while feed.try_recv().is_ok() {}
                match self.send_new().await {
                    Ok(0) => {}
                    Ok(_) => deadline = Instant::now() + self.limits.quiet,
                    Err(end) => break 'stream end,
                }
            }
        };
        let reason = match end {
            End::ClientGone => return,
            End::Quiet => "quiet",
            End::Limit => "limit",
            End::Failed => "failed",
        };
        let done = json!({
            "trace_id": self.trace,
            "spans": self.sent.len(),
            "reason": reason,
        });
        let _ = self
            .tx
            .send(Event::default().event("complete").data(done.to_string()))
            .await;
    }

    /// Sends the stored spans of the trace not sent yet; returns how many.
    async fn send_new(&mut self) -> Result<usize, End> {
        if !self.visible {
            self.visible = self.can_see().await.map_err(|_| End::Failed)?;
            if !self.visible {
                return Ok(0);
            }
        }
        let spans = match self.store.list_trace_spans(self.trace).await {
            Ok(spans) => spans,
            Err(err) => {
                tracing::warn!(error = %err, trace = %self.trace, "live stream could not read spans");
                return Err(End::Failed);
            }
        };
        let mut count = 0;
        for span in spans {
            if self.sent.contains(&span.span_id) {
                continue;
            }
            if self.sent.len() >= self.limits.max_spans {
                return Err(End::Limit);
            }
            let data = serde_json::to_string(&span).expect("spans serialize");
            let event = Event::default().id(span.span_id.to_hex()).data(data);
            if self.tx.send(event).await.is_err() {
                return Err(End::ClientGone);
            }
            self.sent.insert(span.span_id);
            count += 1;
        }
        Ok(count)
    }

    async fn can_see(&self) -> Result<bool, prism_store::StoreError> {
        let workspaces = self.store.list_trace_workspaces(self.trace).await?;
        match self.viewer {
            Viewer::Workspace(workspace_id) => Ok(workspaces.contains(&workspace_id)),
            Viewer::Member(user_id) => {
                for workspace in workspaces {
                    if self
                        .store
                        .find_membership(workspace, user_id)
                        .await?
                        .is_some()
                    {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
        }
    }
}
