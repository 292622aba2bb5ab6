//! Environments: named sets of `{{variables}}` for a workspace.

use serde::{Deserialize, Serialize};

use crate::{EnvironmentId, Timestamp, WorkspaceId};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Environment {
    pub id: EnvironmentId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub variables: Vec<Variable>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// One variable. For a secret variable the control plane stores `value` encrypted; the store keeps
/// whatever text it is given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variable {
    /// JSON `key` (`name` is accepted).
    #[serde(rename = "key", alias = "name")]
    pub name: String,
    pub value: String,
    #[serde(default)]
    pub secret: bool,
    #[serde(default = "crate::request::default_true")]
    pub enabled: bool,
}
