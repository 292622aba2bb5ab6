//! Workspaces and memberships.

use serde::{Deserialize, Serialize};

use crate::{Role, Timestamp, UserId, WorkspaceId};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workspace {
    pub id: WorkspaceId,
    pub name: String,
    pub created_by: Option<UserId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A user's role in a workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub workspace_id: WorkspaceId,
    pub user_id: UserId,
    pub role: Role,
    pub joined_at: Timestamp,
}

/// A membership together with the member's public profile, as listed to other members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub user_id: UserId,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub joined_at: Timestamp,
}

/// Names of workspaces, collections, requests, environments and workflows: 1–200 characters, trimmed.
pub fn validate_name(raw: &str) -> Result<String, InvalidName> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        Err(InvalidName(raw.to_owned()))
    } else {
        Ok(name.to_owned())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid name {0:?}: 1 to 200 characters, no control characters")]
pub struct InvalidName(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(validate_name("  Payments ").unwrap(), "Payments");
        assert!(validate_name("   ").is_err());
        assert!(validate_name(&"x".repeat(201)).is_err());
        assert!(validate_name("a\nb").is_err());
    }
}
