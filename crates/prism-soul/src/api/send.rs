//! Sending requests: `POST /api/requests/{id}/send` runs a saved request (viewers may), and
//! `POST /api/workspaces/{id}/send` runs an unsaved one (editors). Variables are resolved from the
//! chosen environment (see [`crate::variables`]) here, then the request is handed to the data
//! plane, which runs and records it; its JSON answer — with `execution_id`, `trace_id` and
//! `traceparent` — is returned unchanged.
//!
//! Nothing is sent and nothing recorded when a variable cannot be resolved.

use axum::body::Bytes;
use axum::extract::State;
use prism_domain::environment::Environment;
use prism_domain::request::RequestSpec;
use prism_domain::{EnvironmentId, RequestId, WorkspaceId};
use prism_store::StoreError;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::{self, Action};
use super::auth::Caller;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{Json, PathId, parse_json};
use super::spec::RequestFields;
use crate::SoulState;
use crate::dataplane::Dispatch;
use crate::variables::Variables;

pub fn routes() -> OpenApiRouter<SoulState> {
    OpenApiRouter::new()
        .routes(routes!(send_saved))
        .routes(routes!(send_ad_hoc))
}

/// Options of a saved request's send. The body may be empty.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendInput {
    /// The environment whose variables fill `{{name}}`s; it must be in the request's workspace.
    #[serde(default)]
    pub environment_id: Option<String>,
}

/// An unsaved request: the body of a saved request plus where its variables come from.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AdHocSendInput {
    #[serde(flatten)]
    pub request: RequestFields,
    /// The environment whose variables fill `{{name}}`s (same workspace).
    #[serde(default)]
    pub environment_id: Option<String>,
    /// A saved request of the same workspace the execution is linked to in the history.
    #[serde(default)]
    pub request_id: Option<String>,
}

/// An optional id in a JSON body: blank is none, a malformed one is `422 invalid_field`.
pub(crate) fn optional_id<T: std::str::FromStr>(
    field: &str,
    raw: Option<&str>,
) -> ApiResult<Option<T>> {
    match raw.map(str::trim).filter(|r| !r.is_empty()) {
        None => Ok(None),
        Some(raw) => raw
            .parse()
            .map(Some)
            .map_err(|_| ApiError::invalid_field(field, format!("{raw:?} is not an id"))),
    }
}

/// A JSON body that may be empty (then `T::default()`).
fn optional_body<T: DeserializeOwned + Default>(bytes: &Bytes) -> ApiResult<T> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        parse_json(bytes)
    }
}

/// A store answer where "not found" is `not_found()`.
fn missing_as<T>(result: Result<T, StoreError>, not_found: fn() -> ApiError) -> ApiResult<T> {
    match result {
        Err(StoreError::NotFound(_)) => Err(not_found()),
        other => other.map_err(Into::into),
    }
}

/// The chosen environment, which must belong to `workspace` (otherwise it is as missing as one
/// that does not exist).
pub(crate) async fn environment(
    state: &SoulState,
    workspace: WorkspaceId,
    id: Option<EnvironmentId>,
) -> ApiResult<Option<Environment>> {
    let Some(id) = id else {
        return Ok(None);
    };
    let found = missing_as(
        state.store.get_environment(id).await,
        access::environment_not_found,
    )?;
    if found.workspace_id != workspace {
        return Err(access::environment_not_found());
    }
    Ok(Some(found))
}

/// `spec` with its `{{variables}}` filled from `environment` (none: no variables), or the
/// resolution's error (unknown names, cycles, undecryptable secrets).
pub(crate) fn resolve(
    state: &SoulState,
    environment: Option<&Environment>,
    spec: RequestSpec,
) -> ApiResult<RequestSpec> {
    let variables = Variables::new(
        environment.map_or(&[][..], |e| &e.variables[..]),
        &state.secrets,
    );
    Ok(variables.resolve(spec, state.clock.now())?)
}

/// Resolves the variables and hands the request to the data plane.
async fn dispatch(
    state: &SoulState,
    caller: &Caller,
    workspace: WorkspaceId,
    request_id: Option<RequestId>,
    environment: Option<&Environment>,
    spec: RequestSpec,
) -> ApiResult<axum::Json<Value>> {
    let spec = resolve(state, environment, spec)?;
    let answer = state
        .data_plane
        .run(Dispatch {
            workspace,
            user: caller.user.id,
            request_id,
            spec,
        })
        .await?;
    Ok(axum::Json(answer))
}

/// Runs a saved request through the data plane (viewers may). The answer is the data plane's:
/// `execution_id`, `trace_id`, `traceparent`, `status`, `headers`, `body`, timings… (REST and
/// GraphQL) or `status_code`, `messages`… (gRPC). What the target does — any status, a refused
/// connection, a timeout — is a 200 answer with `error_kind` set.
#[utoipa::path(post, path = "/api/requests/{id}/send", tag = "send",
    params(("id" = String, Path)),
    request_body(content = SendInput, description = "Optional; may be empty"),
    responses(
        (status = 200, description = "The execution, as the data plane answers it", body = Object),
        (status = 400, description = "The data plane refused the resolved request: `invalid_url`, `invalid_method`, `invalid_request`, gRPC `invalid_proto`…", body = ErrorBody),
        (status = 404, description = "`request_not_found`, `environment_not_found`", body = ErrorBody),
        (status = 409, description = "`secret_undecryptable` (details: `{variables}`)", body = ErrorBody),
        (status = 422, description = "`unknown_variables` (details: `{variables}`), `variable_cycle` (details: `{cycle}`), `variables_too_large`, `invalid_field`", body = ErrorBody),
        (status = 502, description = "`data_plane_unavailable`, `data_plane_failed`", body = ErrorBody),
        (status = 503, description = "`overloaded`, `database_unavailable` (with Retry-After)", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [])))]
async fn send_saved(
    State(state): State<SoulState>,
    caller: Caller,
    PathId(id): PathId<RequestId>,
    body: Bytes,
) -> ApiResult<axum::Json<Value>> {
    let input: SendInput = optional_body(&body)?;
    let (saved, _) = access::request(&state, &caller, id, Action::Read).await?;
    let environment_id = optional_id("environment_id", input.environment_id.as_deref())?;
    let environment = environment(&state, saved.workspace_id, environment_id).await?;
    dispatch(
        &state,
        &caller,
        saved.workspace_id,
        Some(saved.id),
        environment.as_ref(),
        saved.spec,
    )
    .await
}

/// Runs an unsaved request (editors): the same body as a saved request (`protocol`, …), plus
/// `environment_id` and optionally the `request_id` of a saved request to link the execution to.
#[utoipa::path(post, path = "/api/workspaces/{id}/send", tag = "send",
    params(("id" = String, Path)),
    request_body = AdHocSendInput,
    responses(
        (status = 200, description = "The execution, as the data plane answers it", body = Object),
        (status = 400, description = "The data plane refused the resolved request", body = ErrorBody),
        (status = 403, description = "`forbidden`: viewers may send saved requests only", body = ErrorBody),
        (status = 404, description = "`workspace_not_found`, `request_not_found`, `environment_not_found`", body = ErrorBody),
        (status = 409, description = "`secret_undecryptable`", body = ErrorBody),
        (status = 422, description = "`invalid_field` (naming it), `unknown_variables`, `variable_cycle`, `variables_too_large`", body = ErrorBody),
        (status = 502, description = "`data_plane_unavailable`, `data_plane_failed`", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [])))]
async fn send_ad_hoc(
    State(state): State<SoulState>,
    caller: Caller,
    PathId(workspace): PathId<WorkspaceId>,
    Json(input): Json<AdHocSendInput>,
) -> ApiResult<axum::Json<Value>> {
    access::workspace(&state, &caller, workspace, Action::Edit).await?;
    let spec = input.request.into_spec()?;
    let request_id: Option<RequestId> = optional_id("request_id", input.request_id.as_deref())?;
    if let Some(id) = request_id {
        let saved = missing_as(state.store.get_request(id).await, access::request_not_found)?;
        if saved.workspace_id != workspace {
            return Err(access::request_not_found());
        }
    }
    let environment_id = optional_id("environment_id", input.environment_id.as_deref())?;
    let environment = environment(&state, workspace, environment_id).await?;
    dispatch(
        &state,
        &caller,
        workspace,
        request_id,
        environment.as_ref(),
        spec,
    )
    .await
}
