//! `POST /api/workspaces/{id}/grpc/services`: the services and methods a gRPC server offers, for
//! the workbench's pickers. The control plane never contacts targets itself: the data plane lists
//! them (server reflection under its outbound policy, or the pasted `.proto` files) and records
//! nothing. Because it reaches an arbitrary address it needs the editor role, as an ad-hoc send
//! does; `{{variables}}` are resolved from the chosen environment the same way.

use axum::extract::State;
use prism_domain::request::RequestSpec;
use prism_domain::{EnvironmentId, WorkspaceId};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::{self, Action};
use super::auth::Caller;
use super::error::{ApiResult, ErrorBody};
use super::extract::{Json, PathId};
use super::send::{environment, optional_id, resolve};
use super::spec::RequestFields;
use crate::SoulState;

pub fn routes() -> OpenApiRouter<SoulState> {
    OpenApiRouter::new().routes(routes!(grpc_services))
}

/// A gRPC request's fields (`server_address`, `proto_files` — empty for server reflection —,
/// `use_tls`/`tls`, `metadata`, `timeout_ms`; `service`, `method` and `body` may be present and
/// are ignored) and where their variables come from.
#[derive(Debug, Deserialize, ToSchema)]
pub struct GrpcServicesInput {
    #[serde(flatten)]
    pub request: RequestFields,
    /// The environment whose variables fill `{{name}}`s (same workspace).
    #[serde(default)]
    pub environment_id: Option<String>,
}

/// Lists the services of a gRPC server, each with its methods: `{services: [{name, methods:
/// [{name, input_type, output_type, client_streaming, server_streaming}]}]}`, sorted by service
/// name. Nothing is recorded.
#[utoipa::path(post, path = "/api/workspaces/{id}/grpc/services", tag = "send",
    params(("id" = String, Path)),
    request_body = GrpcServicesInput,
    responses(
        (status = 200, description = "`{services: [{name, methods: [{name, input_type, output_type, client_streaming, server_streaming}]}]}`", body = Object),
        (status = 400, description = "`invalid_proto` (the message starts with file:line:column), `reflection_failed`, `invalid_address`, `invalid_metadata`, `invalid_tls_config`", body = ErrorBody),
        (status = 403, description = "`forbidden`: viewers may not list services; `blocked`: the data plane's outbound policy refuses the address", body = ErrorBody),
        (status = 404, description = "`workspace_not_found`, `environment_not_found`", body = ErrorBody),
        (status = 409, description = "`secret_undecryptable`", body = ErrorBody),
        (status = 422, description = "`invalid_field` (naming it), `unknown_variables`, `variable_cycle`, `variables_too_large`", body = ErrorBody),
        (status = 502, description = "`unreachable`: the server could not be reached; `data_plane_unavailable`, `data_plane_failed`", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [])))]
async fn grpc_services(
    State(state): State<SoulState>,
    caller: Caller,
    PathId(workspace): PathId<WorkspaceId>,
    Json(input): Json<GrpcServicesInput>,
) -> ApiResult<axum::Json<Value>> {
    access::workspace(&state, &caller, workspace, Action::Edit).await?;
    let server = input.request.into_grpc_server()?;
    let environment_id: Option<EnvironmentId> =
        optional_id("environment_id", input.environment_id.as_deref())?;
    let environment = environment(&state, workspace, environment_id).await?;
    let RequestSpec::Grpc(server) =
        resolve(&state, environment.as_ref(), RequestSpec::Grpc(server))?
    else {
        unreachable!("resolving variables keeps the protocol");
    };
    let answer = state
        .data_plane
        .grpc_services(workspace, caller.user.id, &server)
        .await?;
    Ok(axum::Json(answer))
}
