//! Workspaces and their members.
//!
//! `GET/POST /api/workspaces`, `GET/PATCH/DELETE /api/workspaces/{id}`,
//! `GET/POST /api/workspaces/{id}/members`, `PATCH/DELETE /api/workspaces/{id}/members/{user_id}`,
//! `POST /api/workspaces/{id}/leave`. The last admin can neither leave nor be demoted or removed.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use prism_domain::user::Email;
use prism_domain::workspace::{Member, Membership, Workspace};
use prism_domain::{Role, UserId, WorkspaceId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::{self, Action};
use super::auth::Caller;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{Json, PathId};
use super::{name, time};
use crate::SoulState;

pub fn routes() -> OpenApiRouter<SoulState> {
    OpenApiRouter::new()
        .routes(routes!(list_workspaces, create_workspace))
        .routes(routes!(get_workspace, update_workspace, delete_workspace))
        .routes(routes!(list_members, add_member))
        .routes(routes!(update_member, remove_member))
        .routes(routes!(leave_workspace))
}

/// A workspace as its members see it, with the caller's role.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkspaceView {
    pub id: String,
    pub name: String,
    /// The caller's role: `admin`, `editor` or `viewer`.
    pub role: String,
    pub created_at: String,
    pub updated_at: String,
}

impl WorkspaceView {
    pub fn new(workspace: &Workspace, role: Role) -> Self {
        Self {
            id: workspace.id.to_string(),
            name: workspace.name.clone(),
            role: role.to_string(),
            created_at: time(workspace.created_at),
            updated_at: time(workspace.updated_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberView {
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    pub joined_at: String,
}

impl From<&Member> for MemberView {
    fn from(m: &Member) -> Self {
        Self {
            user_id: m.user_id.to_string(),
            email: m.email.clone(),
            name: m.name.clone(),
            role: m.role.to_string(),
            joined_at: time(m.joined_at),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceInput {
    /// 1–200 characters.
    pub name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberInput {
    /// The email of an existing account.
    pub email: String,
    #[schema(value_type = String, example = "editor")]
    pub role: Role,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleInput {
    #[schema(value_type = String, example = "viewer")]
    pub role: Role,
}

/// The caller's workspaces, by name.
#[utoipa::path(get, path = "/api/workspaces", tag = "workspaces",
    responses((status = 200, body = Vec<WorkspaceView>), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn list_workspaces(
    State(state): State<SoulState>,
    caller: Caller,
) -> ApiResult<axum::Json<Vec<WorkspaceView>>> {
    let mine = state.store.list_workspaces_for_user(caller.user.id).await?;
    Ok(axum::Json(
        mine.iter()
            .map(|(w, r)| WorkspaceView::new(w, *r))
            .collect(),
    ))
}

/// Creates a workspace with the caller as its admin.
#[utoipa::path(post, path = "/api/workspaces", tag = "workspaces", request_body = WorkspaceInput,
    responses((status = 201, body = WorkspaceView), (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn create_workspace(
    State(state): State<SoulState>,
    caller: Caller,
    Json(input): Json<WorkspaceInput>,
) -> ApiResult<Response> {
    let now = state.clock.now();
    let workspace = Workspace {
        id: WorkspaceId::new(),
        name: name("name", &input.name)?,
        created_by: Some(caller.user.id),
        created_at: now,
        updated_at: now,
    };
    state
        .store
        .insert_workspace(&workspace, caller.user.id)
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(WorkspaceView::new(&workspace, Role::Admin)),
    )
        .into_response())
}

#[utoipa::path(get, path = "/api/workspaces/{id}", tag = "workspaces",
    params(("id" = String, Path)),
    responses((status = 200, body = WorkspaceView), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn get_workspace(
    State(state): State<SoulState>,
    caller: Caller,
    PathId(id): PathId<WorkspaceId>,
) -> ApiResult<axum::Json<WorkspaceView>> {
    let (workspace, role) = access::workspace(&state, &caller, id, Action::Read).await?;
    Ok(axum::Json(WorkspaceView::new(&workspace, role)))
}

/// Renames the workspace (admin).
#[utoipa::path(patch, path = "/api/workspaces/{id}", tag = "workspaces", request_body = WorkspaceInput,
    params(("id" = String, Path)),
    responses((status = 200, body = WorkspaceView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn update_workspace(
    State(state): State<SoulState>,
    caller: Caller,
    PathId(id): PathId<WorkspaceId>,
    Json(input): Json<WorkspaceInput>,
) -> ApiResult<axum::Json<WorkspaceView>> {
    let (_, role) = access::workspace(&state, &caller, id, Action::Administer).await?;
    let new_name = name("name", &input.name)?;
    state
        .store
        .update_workspace_name(id, &new_name, state.clock.now())
        .await?;
    let workspace = state.store.get_workspace(id).await?;
    Ok(axum::Json(WorkspaceView::new(&workspace, role)))
}

/// Deletes the workspace and everything in it (admin).
#[utoipa::path(delete, path = "/api/workspaces/{id}", tag = "workspaces",
    params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn delete_workspace(
    State(state): State<SoulState>,
    caller: Caller,
    PathId(id): PathId<WorkspaceId>,
) -> ApiResult<StatusCode> {
    access::workspace(&state, &caller, id, Action::Administer).await?;
    state.store.delete_workspace(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/workspaces/{id}/members", tag = "workspaces",
    params(("id" = String, Path)),
    responses((status = 200, body = Vec<MemberView>), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn list_members(
    State(state): State<SoulState>,
    caller: Caller,
    PathId(id): PathId<WorkspaceId>,
) -> ApiResult<axum::Json<Vec<MemberView>>> {
    access::workspace(&state, &caller, id, Action::Read).await?;
    let members = state.store.list_members(id).await?;
    Ok(axum::Json(members.iter().map(MemberView::from).collect()))
}

/// Adds an existing account by email with a role (admin).
#[utoipa::path(post, path = "/api/workspaces/{id}/members", tag = "workspaces", request_body = MemberInput,
    params(("id" = String, Path)),
    responses((status = 201, body = MemberView), (status = 409, description = "`already_member`", body = ErrorBody),
        (status = 422, description = "`unknown_user`, `invalid_field`", body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn add_member(
    State(state): State<SoulState>,
    caller: Caller,
    PathId(id): PathId<WorkspaceId>,
    Json(input): Json<MemberInput>,
) -> ApiResult<Response> {
    access::workspace(&state, &caller, id, Action::Administer).await?;
    let email = Email::parse(&input.email)
        .map_err(|e| ApiError::field_error("invalid_email", "email", e.to_string()))?;
    let user = state
        .store
        .find_user_by_email(&email)
        .await?
        .ok_or_else(|| {
            ApiError::field_error("unknown_user", "email", "no account has this email address")
        })?;
    let membership = Membership {
        workspace_id: id,
        user_id: user.id,
        role: input.role,
        joined_at: state.clock.now(),
    };
    state.store.insert_membership(&membership).await?;
    let view = MemberView {
        user_id: user.id.to_string(),
        email: user.email.as_str().to_owned(),
        name: user.name,
        role: input.role.to_string(),
        joined_at: time(membership.joined_at),
    };
    Ok((StatusCode::CREATED, axum::Json(view)).into_response())
}

fn member_path(raw: (String, String)) -> ApiResult<(WorkspaceId, UserId)> {
    let workspace = raw
        .0
        .parse()
        .map_err(|_| ApiError::bad_request("invalid_id", format!("{:?} is not an id", raw.0)))?;
    let user = raw
        .1
        .parse()
        .map_err(|_| ApiError::bad_request("invalid_id", format!("{:?} is not an id", raw.1)))?;
    Ok((workspace, user))
}

fn member_not_found() -> ApiError {
    ApiError::not_found("member_not_found", "no such member in this workspace")
}

/// Changes a member's role (admin). Demoting the last admin is `409 last_admin`.
#[utoipa::path(patch, path = "/api/workspaces/{id}/members/{user_id}", tag = "workspaces", request_body = RoleInput,
    params(("id" = String, Path), ("user_id" = String, Path)),
    responses((status = 200, body = MemberView), (status = 409, description = "`last_admin`", body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn update_member(
    State(state): State<SoulState>,
    caller: Caller,
    Path(raw): Path<(String, String)>,
    Json(input): Json<RoleInput>,
) -> ApiResult<axum::Json<MemberView>> {
    let (workspace, user) = member_path(raw)?;
    access::workspace(&state, &caller, workspace, Action::Administer).await?;
    if state
        .store
        .find_membership(workspace, user)
        .await?
        .is_none()
    {
        return Err(member_not_found());
    }
    state
        .store
        .update_membership_role(workspace, user, input.role)
        .await?;
    let member = state
        .store
        .list_members(workspace)
        .await?
        .into_iter()
        .find(|m| m.user_id == user)
        .ok_or_else(member_not_found)?;
    Ok(axum::Json(MemberView::from(&member)))
}

/// Removes a member (admin; anyone may remove themselves). Removing the last admin is
/// `409 last_admin`.
#[utoipa::path(delete, path = "/api/workspaces/{id}/members/{user_id}", tag = "workspaces",
    params(("id" = String, Path), ("user_id" = String, Path)),
    responses((status = 204), (status = 409, description = "`last_admin`", body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn remove_member(
    State(state): State<SoulState>,
    caller: Caller,
    Path(raw): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (workspace, user) = member_path(raw)?;
    let action = if user == caller.user.id {
        Action::Read
    } else {
        Action::Administer
    };
    access::workspace(&state, &caller, workspace, action).await?;
    if state
        .store
        .find_membership(workspace, user)
        .await?
        .is_none()
    {
        return Err(member_not_found());
    }
    state.store.delete_membership(workspace, user).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Leaves the workspace. The last admin cannot leave (`409 last_admin`).
#[utoipa::path(post, path = "/api/workspaces/{id}/leave", tag = "workspaces",
    params(("id" = String, Path)),
    responses((status = 204), (status = 409, description = "`last_admin`", body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn leave_workspace(
    State(state): State<SoulState>,
    caller: Caller,
    PathId(id): PathId<WorkspaceId>,
) -> ApiResult<StatusCode> {
    access::workspace(&state, &caller, id, Action::Read).await?;
    state.store.delete_membership(id, caller.user.id).await?;
    Ok(StatusCode::NO_CONTENT)
}
