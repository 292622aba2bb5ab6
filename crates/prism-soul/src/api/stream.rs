//! `GET /api/traces/{trace_id}/stream`: a trace, live, as Server-Sent Events, for the browser.
//!
//! The data plane has the same stream (`/traces/stream`), but on its own port and with bearer
//! credentials only; this one takes the session cookie too. Both are the data plane's
//! [`live_trace`]: the spans already stored, then new ones as the store's span feed announces
//! them (from any replica on PostgreSQL), then `event: complete` after a quiet period.
//!
//! Visibility: the trace must belong to a workspace the caller is a member of. A trace that was
//! just sent has no execution or span stored yet, so the sender names the workspace with
//! `?workspace_id=`: membership of it is checked now, and spans are sent once the trace is
//! attributed to that workspace. Without it, a trace nobody can be seen to own is `404
//! trace_not_found` (the same answer whether it exists or not).

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use prism_domain::WorkspaceId;
use prism_domain::trace::TraceId;
use prism_intercept::api::stream::{Limits, Viewer, live_trace};
use serde::Deserialize;
use tokio::sync::Semaphore;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::{self, Action};
use super::auth::Caller;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{PathId, Query};
use crate::SoulState;

/// Live streams this process serves at once (each holds a task and a feed subscription).
const MAX_STREAMS: usize = 256;
/// Spans one stream sends before it ends.
const MAX_SPANS: usize = 10_000;
const DEFAULT_QUIET: Duration = Duration::from_secs(3);
const MIN_QUIET: Duration = Duration::from_millis(100);
const MAX_QUIET: Duration = Duration::from_secs(300);

static STREAMS: LazyLock<Arc<Semaphore>> = LazyLock::new(|| Arc::new(Semaphore::new(MAX_STREAMS)));

pub fn routes() -> OpenApiRouter<SoulState> {
    OpenApiRouter::new().routes(routes!(stream_trace))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// The workspace the trace was sent from, for a trace not stored yet.
    workspace_id: Option<String>,
    /// End after the trace was quiet this long (100–300000; default 3000).
    quiet_ms: Option<u64>,
}

/// A trace's spans, stored and live, as Server-Sent Events.
#[utoipa::path(get, path = "/api/traces/{trace_id}/stream", tag = "traces",
    params(("trace_id" = String, Path, description = "32 lowercase hex digits"), StreamQuery),
    responses(
        (status = 200, description = "`text/event-stream`: stored spans, then live ones (`data: <span>`, `id: <span id>`), then `event: complete` with `{trace_id, spans, reason}`", content_type = "text/event-stream", body = String),
        (status = 400, description = "`invalid_id` / `invalid_query`", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "`trace_not_found` / `workspace_not_found`", body = ErrorBody),
        (status = 503, description = "`too_many_streams`", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [])))]
async fn stream_trace(
    State(state): State<SoulState>,
    caller: Caller,
    PathId(trace): PathId<TraceId>,
    Query(query): Query<StreamQuery>,
) -> ApiResult<Response> {
    let viewer = match query.workspace_id.as_deref().filter(|w| !w.is_empty()) {
        Some(raw) => {
            let workspace: WorkspaceId = raw
                .parse()
                .map_err(|_| ApiError::invalid_field("workspace_id", "is not an id"))?;
            access::workspace(&state, &caller, workspace, Action::Read).await?;
            Viewer::Workspace(workspace)
        }
        None => {
            access::trace_workspaces(&state, &caller, trace).await?;
            Viewer::Member(caller.user.id)
        }
    };
    let quiet = query
        .quiet_ms
        .map_or(DEFAULT_QUIET, Duration::from_millis)
        .clamp(MIN_QUIET, MAX_QUIET);
    let permit = STREAMS.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_streams",
            "this server has as many live streams open as it allows; retry later",
        )
        .with_retry_after(5)
    })?;
    let limits = Limits {
        quiet,
        max_spans: MAX_SPANS,
    };
    Ok(live_trace(state.store.clone(), trace, limits, viewer, permit).into_response())
}
