//! Saved requests of the three protocols, inside collections and folders.
//!
//! `GET/POST /api/collections/{id}/requests`, `GET/PUT/PATCH/DELETE /api/requests/{id}`,
//! `POST /api/requests/{id}/duplicate`. A request's body is `{name, …}` plus the flat request
//! shape of [`RequestFields`] (the same the ad-hoc send takes); fields that do not apply to its
//! `protocol` are ignored. Moving into a collection of another workspace answers like a missing
//! collection, `404 collection_not_found`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use prism_domain::request::{RequestSpec, SavedRequest};
use prism_domain::{CollectionId, RequestId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::{self, Action};
use super::auth::Caller;
use super::collections::{DuplicateInput, copy_name};
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{Json, OptionalJson, PathId, field_path};
use super::spec::RequestFields;
use super::{name, time};
use crate::SoulState;

pub fn routes() -> OpenApiRouter<SoulState> {
    OpenApiRouter::new()
        .routes(routes!(list_requests, create_request))
        .routes(routes!(
            get_request,
            replace_request,
            update_request,
            delete_request
        ))
        .routes(routes!(duplicate_request))
}

/// A saved request: where it lives, and the request itself.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestView {
    pub id: String,
    pub workspace_id: String,
    pub collection_id: String,
    pub name: String,
    /// 0-based rank among the requests of its collection or folder.
    pub position: i64,
    pub created_at: String,
    pub updated_at: String,
    #[serde(flatten)]
    pub fields: RequestFields,
}

impl From<&SavedRequest> for RequestView {
    fn from(request: &SavedRequest) -> Self {
        Self {
            id: request.id.to_string(),
            workspace_id: request.workspace_id.to_string(),
            collection_id: request.collection_id.to_string(),
            name: request.name.clone(),
            position: request.position,
            created_at: time(request.created_at),
            updated_at: time(request.updated_at),
            fields: RequestFields::from_spec(&request.spec),
        }
    }
}

/// `{name, …RequestFields}`. Documents the body; it is parsed by [`parse_input`], because serde's
/// `flatten` would lose the path of a wrong field (`protocol`) and report the whole body instead.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RequestInput {
    /// 1–200 characters.
    pub name: String,
    #[serde(flatten)]
    pub fields: RequestFields,
}

/// The name and spec of a request body, or a 422 naming the field.
fn parse_input(mut body: Map<String, Value>) -> ApiResult<(String, RequestSpec)> {
    let raw_name = match body.remove("name") {
        Some(Value::String(text)) => text,
        Some(_) => return Err(ApiError::invalid_field("name", "must be a string")),
        None => return Err(ApiError::invalid_field("name", "is required")),
    };
    let new_name = name("name", &raw_name)?;
    let fields: RequestFields =
        serde_path_to_error::deserialize(Value::Object(body)).map_err(|err| {
            let path = err.path().to_string();
            let message = err.into_inner().to_string();
            ApiError::invalid_field(field_path(&path, &message), message)
        })?;
    Ok((new_name, fields.into_spec()?))
}

/// Rename and/or move. Omitted fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestPatch {
    pub name: Option<String>,
    /// Move into this collection or folder (same workspace); placed last unless `position` is set.
    #[schema(value_type = Option<String>)]
    pub collection_id: Option<CollectionId>,
    /// The new 0-based rank in the (new) collection; larger than the list means last.
    pub position: Option<i64>,
}

/// The requests directly in a collection or folder, by position.
#[utoipa::path(get, path = "/api/collections/{id}/requests", tag = "requests",
    params(("id" = String, Path, description = "collection id")),
    responses((status = 200, body = Vec<RequestView>), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn list_requests(
    State(state): State<SoulState>,
    caller: Caller,
    PathId(id): PathId<CollectionId>,
) -> ApiResult<axum::Json<Vec<RequestView>>> {
    access::collection(&state, &caller, id, Action::Read).await?;
    let requests = state.store.list_requests(id).await?;
    Ok(axum::Json(requests.iter().map(RequestView::from).collect()))
}

/// Saves a request at the end of a collection or folder (editor).
#[utoipa::path(post, path = "/api/collections/{id}/requests", tag = "requests",
    request_body = RequestInput,
    params(("id" = String, Path, description = "collection id")),
    responses((status = 201, body = RequestView), (status = 404, body = ErrorBody),
        (status = 422, description = "`invalid_field` naming the field", body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn create_request(
    State(state): State<SoulState>,
    caller: Caller,
    PathId(id): PathId<CollectionId>,
    Json(body): Json<Map<String, Value>>,
) -> ApiResult<Response> {
    let (collection, _) = access::collection(&state, &caller, id, Action::Edit).await?;
    let (new_name, spec) = parse_input(body)?;
    let now = state.clock.now();
    let stored = state
        .store
        .insert_request(&SavedRequest {
            id: RequestId::new(),
            workspace_id: collection.workspace_id,
            collection_id: id,
            name: new_name,
            position: 0,
            spec,
            created_by: Some(caller.user.id),
            created_at: now,
            updated_at: now,
        })
        .await?;
    Ok((StatusCode::CREATED, axum::Json(RequestView::from(&stored))).into_response())
}

#[utoipa::path(get, path = "/api/requests/{id}", tag = "requests",
    params(("id" = String, Path)),
    responses((status = 200, body = RequestView), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn get_request(
    State(state): State<SoulState>,
    caller: Caller,
    PathId(id): PathId<RequestId>,
) -> ApiResult<axum::Json<RequestView>> {
    let (request, _) = access::request(&state, &caller, id, Action::Read).await?;
    Ok(axum::Json(RequestView::from(&request)))
}

/// Replaces a request's name and contents, protocol included (editor).
#[utoipa::path(put, path = "/api/requests/{id}", tag = "requests",
    request_body = RequestInput,
    params(("id" = String, Path)),
    responses((status = 200, body = RequestView), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn replace_request(
    State(state): State<SoulState>,
    caller: Caller,
    PathId(id): PathId<RequestId>,
    Json(body): Json<Map<String, Value>>,
) -> ApiResult<axum::Json<RequestView>> {
    access::request(&state, &caller, id, Action::Edit).await?;
    let (new_name, spec) = parse_input(body)?;
    let updated = state
        .store
        .update_request(id, &new_name, &spec, state.clock.now())
        .await?;
    Ok(axum::Json(RequestView::from(&updated)))
}

/// Renames and/or moves a request (editor).
#[utoipa::path(patch, path = "/api/requests/{id}", tag = "requests",
    request_body = RequestPatch,
    params(("id" = String, Path)),
    responses((status = 200, body = RequestView),
        (status = 404, description = "`request_not_found`; `collection_not_found` for a target that is missing or in another workspace", body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn update_request(
    State(state): State<SoulState>,
    caller: Caller,
    PathId(id): PathId<RequestId>,
    Json(input): Json<RequestPatch>,
) -> ApiResult<axum::Json<RequestView>> {
    let (current, _) = access::request(&state, &caller, id, Action::Edit).await?;
    let new_name = input.name.as_deref().map(|n| name("name", n)).transpose()?;
    if input.position.is_some_and(|p| p < 0) {
        return Err(ApiError::invalid_field("position", "must be 0 or more"));
    }
    if let Some(target) = input.collection_id {
        match state.store.get_collection(target).await {
            Ok(found) if found.workspace_id == current.workspace_id => {}
            Ok(_) | Err(prism_store::StoreError::NotFound(_)) => {
                return Err(access::collection_not_found().with_field("collection_id"));
            }
            Err(err) => return Err(err.into()),
        }
    }
    let now = state.clock.now();
    let mut updated = current.clone();
    if input.collection_id.is_some() || input.position.is_some() {
        let target = input.collection_id.unwrap_or(current.collection_id);
        let position = match input.position {
            Some(position) => Some(position),
            // Same collection, no position: stays where it is.
            None if target == current.collection_id => Some(current.position),
            None => None,
        };
        updated = state.store.move_request(id, target, position, now).await?;
    }
    if let Some(new_name) = new_name {
        updated = state
            .store
            .update_request(id, &new_name, &updated.spec, now)
            .await?;
    }
    Ok(axum::Json(RequestView::from(&updated)))
}

/// Deletes a request (editor). While a workflow step runs it: `409 in_use`.
#[utoipa::path(delete, path = "/api/requests/{id}", tag = "requests",
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody),
        (status = 409, description = "`in_use`", body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn delete_request(
    State(state): State<SoulState>,
    caller: Caller,
    PathId(id): PathId<RequestId>,
) -> ApiResult<StatusCode> {
    access::request(&state, &caller, id, Action::Edit).await?;
    state.store.delete_request(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Copies a request right after the original, named `"<name> (copy)"` unless a `name` is given
/// (editor). The body is optional.
#[utoipa::path(post, path = "/api/requests/{id}/duplicate", tag = "requests",
    request_body(content = Option<DuplicateInput>, description = "optional"),
    params(("id" = String, Path)),
    responses((status = 201, body = RequestView), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn duplicate_request(
    State(state): State<SoulState>,
    caller: Caller,
    PathId(id): PathId<RequestId>,
    OptionalJson(input): OptionalJson<DuplicateInput>,
) -> ApiResult<Response> {
    let (original, _) = access::request(&state, &caller, id, Action::Edit).await?;
    let new_name = match input.name {
        Some(given) => name("name", &given)?,
        None => copy_name(&original.name),
    };
    let copy = state
        .store
        .duplicate_request(id, &new_name, state.clock.now(), caller.user.id)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(RequestView::from(&copy))).into_response())
}
