//! Typed identifiers: one newtype per entity so a `UserId` can never be passed where a `WorkspaceId` is meant.
//!
//! Ids are UUID version 7: 48 bits of millisecond time (so new rows land at the end of B-tree indexes)
//! and 74 random bits from the operating system's generator, so they are neither predictable nor
//! colliding under concurrency — unlike upstream's ids derived from the clock alone.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An id string that is not a UUID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid id {0:?}: expected a UUID")]
pub struct InvalidId(pub String);

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh random, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an existing UUID (as read from storage).
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self).map_err(|_| InvalidId(s.to_owned()))
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }
    };
}

typed_id!(
    /// A user account.
    UserId
);
typed_id!(
    /// A workspace: the unit of sharing and authorization.
    WorkspaceId
);
typed_id!(
    /// A collection or a folder inside one (a folder is a collection with a parent).
    CollectionId
);
typed_id!(
    /// A saved request of any protocol.
    RequestId
);
typed_id!(
    /// An environment (a named set of variables).
    EnvironmentId
);
typed_id!(
    /// One recorded attempt to run a request.
    ExecutionId
);
typed_id!(
    /// A workflow definition.
    WorkflowId
);
typed_id!(
    /// One step of a workflow.
    WorkflowStepId
);
typed_id!(
    /// One run of a workflow.
    WorkflowRunId
);
typed_id!(
    /// The record of one step within one workflow run.
    WorkflowRunStepId
);
typed_id!(
    /// An API token (the id is public; the secret is only ever stored hashed).
    ApiTokenId
);
typed_id!(
    /// A workspace's OpenTelemetry ingest key (the secret is only ever stored hashed).
    IngestKeyId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_round_trip_through_text() {
        let a = UserId::new();
        let b = UserId::new();
        assert_ne!(a, b);
        let parsed: UserId = a.to_string().parse().unwrap();
        assert_eq!(parsed, a);
    }

    #[test]
    fn ids_are_uuid_v7() {
        assert_eq!(WorkspaceId::new().as_uuid().get_version_num(), 7);
    }

    #[test]
    fn malformed_id_is_rejected() {
        assert_eq!(
            "not-a-uuid".parse::<UserId>(),
            Err(InvalidId("not-a-uuid".into()))
        );
    }
}
