//! Collections and the folders inside them. A folder is a collection with a parent; ordering among
//! siblings is an explicit `position`.

use serde::{Deserialize, Serialize};

use crate::{CollectionId, Timestamp, UserId, WorkspaceId};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collection {
    pub id: CollectionId,
    pub workspace_id: WorkspaceId,
    /// `None` for a top-level collection, the containing collection or folder otherwise.
    pub parent_id: Option<CollectionId>,
    pub name: String,
    /// 0-based rank among the siblings that share `parent_id`.
    pub position: i64,
    pub created_by: Option<UserId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}
