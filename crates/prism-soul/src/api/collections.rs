//! Collections and the folders inside them, shown as a tree per workspace.
//!
//! `GET/POST /api/workspaces/{id}/collections`, `GET/PATCH/DELETE /api/collections/{id}`,
//! `POST /api/collections/{id}/duplicate`. A folder is a collection with a `parent_id`; siblings are
//! ordered by a 0-based `position` the store keeps dense. A parent (or move target) in another
//! workspace answers like a missing one, `404 collection_not_found`, so ids cannot be probed.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use prism_domain::collection::Collection;
use prism_domain::request::{RequestSpec, SavedRequest};
use prism_domain::{CollectionId, WorkspaceId};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::access::{self, Action};
use super::auth::Caller;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{Json, OptionalJson, PathId};
use super::{name, time};
use crate::SoulState;

/// How deep folders may nest. The tree is built and serialized recursively, so an unbounded depth
/// would let one editor exhaust the server's stack.
pub const MAX_DEPTH: usize = 32;

pub fn routes() -> OpenApiRouter<SoulState> {
    OpenApiRouter::new()
        .routes(routes!(list_collections, create_collection))
        .routes(routes!(
            get_collection,
            update_collection,
            delete_collection
        ))
        .routes(routes!(duplicate_collection))
}

/// A collection or folder with everything inside it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CollectionNode {
    pub id: String,
    pub name: String,
    /// `null` for a top-level collection.
    pub parent_id: Option<String>,
    /// 0-based rank among its siblings.
    pub position: i64,
    pub created_at: String,
    pub updated_at: String,
    /// The folders directly inside, by position, each with its own subtree.
    #[schema(no_recursion)]
    pub folders: Vec<CollectionNode>,
    /// The requests directly inside, by position.
    pub requests: Vec<RequestSummary>,
}

/// A saved request as the tree shows it (`GET /api/requests/{id}` has the rest).
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestSummary {
    pub id: String,
    pub name: String,
    /// `rest`, `graphql` or `grpc`.
    pub protocol: String,
    /// REST: the HTTP method; GraphQL: `POST`; gRPC: the method name.
    pub method: String,
    pub position: i64,
}

impl From<&SavedRequest> for RequestSummary {
    fn from(request: &SavedRequest) -> Self {
        Self {
            id: request.id.to_string(),
            name: request.name.clone(),
            protocol: request.spec.protocol().to_string(),
            method: match &request.spec {
                RequestSpec::Rest(rest) => rest.method.clone(),
                RequestSpec::Graphql(_) => "POST".to_owned(),
                RequestSpec::Grpc(grpc) => grpc.method.clone(),
            },
            position: request.position,
        }
    }
}

/// One workspace's collections and requests, indexed by parent for building nodes.
struct Tree<'a> {
    folders: HashMap<Option<CollectionId>, Vec<&'a Collection>>,
    requests: HashMap<CollectionId, Vec<&'a SavedRequest>>,
}

impl<'a> Tree<'a> {
    fn new(collections: &'a [Collection], requests: &'a [SavedRequest]) -> Self {
        let mut tree = Tree {
            folders: HashMap::new(),
            requests: HashMap::new(),
        };
        for collection in collections {
            tree.folders
                .entry(collection.parent_id)
                .or_default()
                .push(collection);
        }
        for request in requests {
            tree.requests
                .entry(request.collection_id)
                .or_default()
                .push(request);
        }
        // The store lists in order already; sorting here keeps the tree right whatever it does.
        for list in tree.folders.values_mut() {
            list.sort_by_key(|c| (c.position, c.id));
        }
        for list in tree.requests.values_mut() {
            list.sort_by_key(|r| (r.position, r.id));
        }
        tree
    }

    fn roots(&self) -> Vec<CollectionNode> {
        self.children(None, 0)
    }

    fn children(&self, parent: Option<CollectionId>, depth: usize) -> Vec<CollectionNode> {
        self.folders
            .get(&parent)
            .map(|list| list.iter().map(|c| self.node(c, depth)).collect())
            .unwrap_or_default()
    }

    fn node(&self, collection: &Collection, depth: usize) -> CollectionNode {
        CollectionNode {
            id: collection.id.to_string(),
            name: collection.name.clone(),
            parent_id: collection.parent_id.map(|p| p.to_string()),
            position: collection.position,
            created_at: time(collection.created_at),
            updated_at: time(collection.updated_at),
            // The depth rule keeps real trees far shallower; this only guards against bad data.
            folders: if depth < 4 * MAX_DEPTH {
                self.children(Some(collection.id), depth + 1)
            } else {
                Vec::new()
            },
            requests: self
                .requests
                .get(&collection.id)
                .map(|list| list.iter().map(|r| RequestSummary::from(*r)).collect())
                .unwrap_or_default(),
        }
    }
}

/// The subtree of `collection`, read with one store call for the collections and one for the
/// requests of its workspace.
async fn subtree(state: &SoulState, collection: &Collection) -> ApiResult<CollectionNode> {
    let collections = state
        .store
        .list_collections(collection.workspace_id)
        .await?;
    let requests = state
        .store
        .list_workspace_requests(collection.workspace_id)
        .await?;
    let tree = Tree::new(&collections, &requests);
    let current = collections
        .iter()
        .find(|c| c.id == collection.id)
        .ok_or_else(access::collection_not_found)?;
    Ok(tree.node(current, 0))
}

/// `id` and the collections above it, nearest first (bounded, in case of bad data).
fn ancestors(collections: &[Collection], id: CollectionId) -> Vec<CollectionId> {
    let parents: HashMap<CollectionId, Option<CollectionId>> =
        collections.iter().map(|c| (c.id, c.parent_id)).collect();
    let mut chain = Vec::new();
    let mut cursor = Some(id);
    while let Some(at) = cursor {
        if chain.len() > collections.len() {
            break;
        }
        chain.push(at);
        cursor = parents.get(&at).copied().flatten();
    }
    chain
}

/// How many levels the subtree of `id` spans (a collection without folders spans 1).
fn height_of(collections: &[Collection], id: CollectionId) -> usize {
    let mut height = 0;
    let mut level = vec![id];
    while !level.is_empty() && height <= collections.len() {
        height += 1;
        level = collections
            .iter()
            .filter(|c| c.parent_id.is_some_and(|p| level.contains(&p)))
            .map(|c| c.id)
            .collect();
    }
    height
}

fn too_deep() -> ApiError {
    ApiError::invalid_field(
        "parent_id",
        format!("folders nest at most {MAX_DEPTH} levels deep"),
    )
}

/// A parent the caller named: it must be a collection of `workspace` (anything else is answered
/// like a missing collection).
async fn parent_in(
    state: &SoulState,
    workspace: WorkspaceId,
    parent: CollectionId,
) -> ApiResult<Collection> {
    match state.store.get_collection(parent).await {
        Ok(found) if found.workspace_id == workspace => Ok(found),
        Ok(_) | Err(prism_store::StoreError::NotFound(_)) => {
            Err(access::collection_not_found().with_field("parent_id"))
        }
        Err(err) => Err(err.into()),
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CollectionInput {
    /// 1–200 characters.
    pub name: String,
    /// Makes it a folder inside this collection or folder (same workspace).
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub parent_id: Option<CollectionId>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    de: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(de).map(Some)
}

/// Rename and/or move. Omitted fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CollectionPatch {
    pub name: Option<String>,
    /// The new parent; `null` moves it to the top level; omitted keeps the parent.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub parent_id: Option<Option<CollectionId>>,
    /// The new 0-based rank among its (new) siblings; omitted puts it last when the parent
    /// changes and keeps it otherwise. Larger than the list means last.
    pub position: Option<i64>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DuplicateInput {
    /// The copy's name; default `"<name> (copy)"`.
    pub name: Option<String>,
}

/// `"<name> (copy)"`, shortening `name` so the result stays a valid name.
pub fn copy_name(original: &str) -> String {
    const SUFFIX: &str = " (copy)";
    let keep = 200 - SUFFIX.chars().count();
    let base: String = original.chars().take(keep).collect();
    format!("{}{SUFFIX}", base.trim_end())
}

/// The workspace's collections as a tree: top-level collections by position, each with its
/// folders and requests.
#[utoipa::path(get, path = "/api/workspaces/{id}/collections", tag = "collections",
    params(("id" = String, Path, description = "workspace id")),
    responses((status = 200, body = Vec<CollectionNode>), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn list_collections(
    State(state): State<SoulState>,
    caller: Caller,
    PathId(id): PathId<WorkspaceId>,
) -> ApiResult<axum::Json<Vec<CollectionNode>>> {
    access::workspace(&state, &caller, id, Action::Read).await?;
    let collections = state.store.list_collections(id).await?;
    let requests = state.store.list_workspace_requests(id).await?;
    Ok(axum::Json(Tree::new(&collections, &requests).roots()))
}

/// Creates a collection, or a folder when `parent_id` is set, after its last sibling (editor).
#[utoipa::path(post, path = "/api/workspaces/{id}/collections", tag = "collections",
    request_body = CollectionInput,
    params(("id" = String, Path, description = "workspace id")),
    responses((status = 201, body = CollectionNode),
        (status = 404, description = "`workspace_not_found`; `collection_not_found` for a parent that is missing or in another workspace", body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn create_collection(
    State(state): State<SoulState>,
    caller: Caller,
    PathId(id): PathId<WorkspaceId>,
    Json(input): Json<CollectionInput>,
) -> ApiResult<Response> {
    access::workspace(&state, &caller, id, Action::Edit).await?;
    let new_name = name("name", &input.name)?;
    if let Some(parent) = input.parent_id {
        parent_in(&state, id, parent).await?;
        let collections = state.store.list_collections(id).await?;
        if ancestors(&collections, parent).len() + 1 > MAX_DEPTH {
            return Err(too_deep());
        }
    }
    let now = state.clock.now();
    let stored = state
        .store
        .insert_collection(&Collection {
            id: CollectionId::new(),
            workspace_id: id,
            parent_id: input.parent_id,
            name: new_name,
            position: 0,
            created_by: Some(caller.user.id),
            created_at: now,
            updated_at: now,
        })
        .await?;
    let node = Tree::new(&[], &[]).node(&stored, 0);
    Ok((StatusCode::CREATED, axum::Json(node)).into_response())
}

/// A collection or folder with its subtree.
#[utoipa::path(get, path = "/api/collections/{id}", tag = "collections",
    params(("id" = String, Path)),
    responses((status = 200, body = CollectionNode), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn get_collection(
    State(state): State<SoulState>,
    caller: Caller,
    PathId(id): PathId<CollectionId>,
) -> ApiResult<axum::Json<CollectionNode>> {
    let (collection, _) = access::collection(&state, &caller, id, Action::Read).await?;
    Ok(axum::Json(subtree(&state, &collection).await?))
}

/// Renames and/or moves a collection or folder (editor). Moving it into itself or one of its
/// folders is `409 move_cycle`.
#[utoipa::path(patch, path = "/api/collections/{id}", tag = "collections",
    request_body = CollectionPatch,
    params(("id" = String, Path)),
    responses((status = 200, body = CollectionNode),
        (status = 404, description = "`collection_not_found` (also for a parent in another workspace)", body = ErrorBody),
        (status = 409, description = "`move_cycle`", body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn update_collection(
    State(state): State<SoulState>,
    caller: Caller,
    PathId(id): PathId<CollectionId>,
    Json(input): Json<CollectionPatch>,
) -> ApiResult<axum::Json<CollectionNode>> {
    let (current, _) = access::collection(&state, &caller, id, Action::Edit).await?;
    let new_name = input.name.as_deref().map(|n| name("name", n)).transpose()?;
    if input.position.is_some_and(|p| p < 0) {
        return Err(ApiError::invalid_field("position", "must be 0 or more"));
    }
    let now = state.clock.now();
    if input.parent_id.is_some() || input.position.is_some() {
        let parent = input.parent_id.unwrap_or(current.parent_id);
        if let Some(parent) = parent {
            parent_in(&state, current.workspace_id, parent).await?;
            let collections = state.store.list_collections(current.workspace_id).await?;
            let above = ancestors(&collections, parent);
            // A cycle is the store's to refuse (`409 move_cycle`); only a real move can be too deep.
            if !above.contains(&id) && above.len() + height_of(&collections, id) > MAX_DEPTH {
                return Err(too_deep());
            }
        }
        let position = match (input.parent_id, input.position) {
            (_, Some(position)) => Some(position),
            // Same parent, no position: stays where it is.
            (Some(p), None) if p == current.parent_id => Some(current.position),
            _ => None,
        };
        state
            .store
            .move_collection(id, parent, position, now)
            .await?;
    }
    if let Some(new_name) = new_name {
        state
            .store
            .update_collection_name(id, &new_name, now)
            .await?;
    }
    let updated = state.store.get_collection(id).await?;
    Ok(axum::Json(subtree(&state, &updated).await?))
}

/// Deletes a collection or folder with its folders and requests (editor). While a workflow step
/// runs one of those requests: `409 in_use`, and nothing is deleted.
#[utoipa::path(delete, path = "/api/collections/{id}", tag = "collections",
    params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody),
        (status = 409, description = "`in_use`", body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn delete_collection(
    State(state): State<SoulState>,
    caller: Caller,
    PathId(id): PathId<CollectionId>,
) -> ApiResult<StatusCode> {
    access::collection(&state, &caller, id, Action::Edit).await?;
    state.store.delete_collection(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Copies a collection or folder with its folders and requests (new ids), right after the original
/// (editor). The body is optional.
#[utoipa::path(post, path = "/api/collections/{id}/duplicate", tag = "collections",
    request_body(content = Option<DuplicateInput>, description = "optional"),
    params(("id" = String, Path)),
    responses((status = 201, body = CollectionNode), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn duplicate_collection(
    State(state): State<SoulState>,
    caller: Caller,
    PathId(id): PathId<CollectionId>,
    OptionalJson(input): OptionalJson<DuplicateInput>,
) -> ApiResult<Response> {
    let (original, _) = access::collection(&state, &caller, id, Action::Edit).await?;
    let new_name = match input.name {
        Some(given) => name("name", &given)?,
        None => copy_name(&original.name),
    };
    let copy = state
        .store
        .duplicate_collection(id, &new_name, state.clock.now(), caller.user.id)
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(subtree(&state, &copy).await?),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_names_stay_valid() {
        assert_eq!(copy_name("Users"), "Users (copy)");
        let long = copy_name(&"é".repeat(200));
        assert_eq!(long.chars().count(), 200);
        assert!(long.ends_with(" (copy)"));
        assert!(prism_domain::workspace::validate_name(&long).is_ok());
    }

    #[test]
    fn patch_tells_null_from_absent() {
        let absent: CollectionPatch = serde_json::from_str(r#"{"name": "x"}"#).unwrap();
        assert_eq!(absent.parent_id, None);
        let null: CollectionPatch = serde_json::from_str(r#"{"parent_id": null}"#).unwrap();
        assert_eq!(null.parent_id, Some(None));
        let id = CollectionId::new();
        let set: CollectionPatch =
            serde_json::from_str(&format!(r#"{{"parent_id": "{id}"}}"#)).unwrap();
        assert_eq!(set.parent_id, Some(Some(id)));
    }
}
