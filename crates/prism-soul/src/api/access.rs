//! Authorization, decided in one place: what a caller may do in a workspace.
//!
//! - **viewer**: reads everything in the workspace and sends saved requests;
//! - **editor**: also creates, changes and deletes collections, requests, environments and
//!   workflows, reveals secrets and sends ad-hoc requests;
//! - **admin**: also renames or deletes the workspace and manages its members.
//!
//! A caller who is not a member gets `404` for the workspace and everything in it — the same
//! answer as for an id that does not exist — so ids cannot be probed. A member whose role is too
//! low gets `403 forbidden`.

use prism_domain::collection::Collection;
use prism_domain::environment::Environment;
use prism_domain::request::SavedRequest;
use prism_domain::trace::TraceId;
use prism_domain::workspace::Workspace;
use prism_domain::{CollectionId, EnvironmentId, RequestId, Role, WorkspaceId};
use prism_store::StoreError;

use super::auth::Caller;
use super::error::ApiError;
use crate::SoulState;

/// What the caller wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read anything; send a saved request.
    Read,
    /// Create, change or delete content; reveal secrets; send unsaved requests.
    Edit,
    /// Manage the workspace and its members.
    Administer,
}

impl Action {
    fn allowed(self, role: Role) -> bool {
        match self {
            Action::Read => role.can_read(),
            Action::Edit => role.can_edit(),
            Action::Administer => role.can_administer(),
        }
    }

    fn needs(self) -> Role {
        match self {
            Action::Read => Role::Viewer,
            Action::Edit => Role::Editor,
            Action::Administer => Role::Admin,
        }
    }
}

/// The caller's role in `workspace` if it allows `action`. `not_found` is the answer for
/// non-members (and must be the answer for a missing resource too).
pub async fn authorize(
    state: &SoulState,
    caller: &Caller,
    workspace: WorkspaceId,
    action: Action,
    not_found: impl FnOnce() -> ApiError,
) -> Result<Role, ApiError> {
    let membership = state
        .store
        .find_membership(workspace, caller.user.id)
        .await?
        .ok_or_else(not_found)?;
    if !action.allowed(membership.role) {
        return Err(ApiError::forbidden(
            "forbidden",
            format!(
                "this needs the {} role in the workspace; you are {}",
                action.needs(),
                membership.role
            ),
        ));
    }
    Ok(membership.role)
}

fn missing<T>(result: Result<T, StoreError>, not_found: fn() -> ApiError) -> Result<T, ApiError> {
    match result {
        Ok(value) => Ok(value),
        Err(StoreError::NotFound(_)) => Err(not_found()),
        Err(err) => Err(err.into()),
    }
}

pub fn workspace_not_found() -> ApiError {
    ApiError::not_found("workspace_not_found", "no such workspace")
}

pub fn collection_not_found() -> ApiError {
    ApiError::not_found("collection_not_found", "no such collection")
}

pub fn request_not_found() -> ApiError {
    ApiError::not_found("request_not_found", "no such request")
}

pub fn environment_not_found() -> ApiError {
    ApiError::not_found("environment_not_found", "no such environment")
}

/// A workspace the caller may act on, with the caller's role there.
pub async fn workspace(
    state: &SoulState,
    caller: &Caller,
    id: WorkspaceId,
    action: Action,
) -> Result<(Workspace, Role), ApiError> {
    let role = authorize(state, caller, id, action, workspace_not_found).await?;
    let workspace = missing(state.store.get_workspace(id).await, workspace_not_found)?;
    Ok((workspace, role))
}

/// A collection or folder the caller may act on.
pub async fn collection(
    state: &SoulState,
    caller: &Caller,
    id: CollectionId,
    action: Action,
) -> Result<(Collection, Role), ApiError> {
    let found = missing(state.store.get_collection(id).await, collection_not_found)?;
    let role = authorize(
        state,
        caller,
        found.workspace_id,
        action,
        collection_not_found,
    )
    .await?;
    Ok((found, role))
}

/// A saved request the caller may act on.
pub async fn request(
    state: &SoulState,
    caller: &Caller,
    id: RequestId,
    action: Action,
) -> Result<(SavedRequest, Role), ApiError> {
    let found = missing(state.store.get_request(id).await, request_not_found)?;
    let role = authorize(state, caller, found.workspace_id, action, request_not_found).await?;
    Ok((found, role))
}

/// An environment the caller may act on (its secret values still encrypted).
pub async fn environment(
    state: &SoulState,
    caller: &Caller,
    id: EnvironmentId,
    action: Action,
) -> Result<(Environment, Role), ApiError> {
    let found = missing(state.store.get_environment(id).await, environment_not_found)?;
    let role = authorize(
        state,
        caller,
        found.workspace_id,
        action,
        environment_not_found,
    )
    .await?;
    Ok((found, role))
}

pub fn trace_not_found() -> ApiError {
    ApiError::not_found("trace_not_found", "no such trace in your workspaces")
}

/// The caller's workspaces a trace belongs to (through its spans or its executions); a trace in
/// none of them is `404 trace_not_found`, like one that does not exist.
pub async fn trace_workspaces(
    state: &SoulState,
    caller: &Caller,
    trace: TraceId,
) -> Result<Vec<WorkspaceId>, ApiError> {
    let mut mine = Vec::new();
    for workspace in state.store.list_trace_workspaces(trace).await? {
        if state
            .store
            .find_membership(workspace, caller.user.id)
            .await?
            .is_some()
        {
            mine.push(workspace);
        }
    }
    if mine.is_empty() {
        return Err(trace_not_found());
    }
    Ok(mine)
}
