//! Workspace roles and what each one may do. Authorization decisions elsewhere ask these questions;
//! they never compare role names themselves.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A member's role in a workspace. Ordered: `Viewer < Editor < Admin`, each including the one below.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything in the workspace and may send saved requests; changes nothing.
    Viewer,
    /// Also creates, changes and deletes collections, requests, environments and workflows.
    Editor,
    /// Also manages the workspace itself and its members.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Editor, Role::Admin];

    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }

    /// Read anything in the workspace, and send saved requests.
    pub fn can_read(self) -> bool {
        self >= Role::Viewer
    }

    /// Create, change or delete workspace content.
    pub fn can_edit(self) -> bool {
        self >= Role::Editor
    }

    /// Rename or delete the workspace, manage members.
    pub fn can_administer(self) -> bool {
        self >= Role::Admin
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one of `admin`, `editor`, `viewer`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: expected admin, editor or viewer")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_nest() {
        assert!(Role::Viewer.can_read() && !Role::Viewer.can_edit());
        assert!(Role::Editor.can_edit() && !Role::Editor.can_administer());
        assert!(Role::Admin.can_administer() && Role::Admin.can_edit());
    }

    #[test]
    fn parses_its_own_names_only() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("owner".parse::<Role>().is_err());
    }
}
