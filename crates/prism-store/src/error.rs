//! The storage error type: what callers may match on, with driver detail kept out of their way.

/// Result of a storage operation.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row addressed does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The change would break a rule the store guarantees.
    #[error(transparent)]
    Conflict(#[from] Conflict),
    /// The database could not be reached or the pool timed out: retrying later may succeed.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database's schema was written by a newer PRISM.
    #[error(
        "database schema version {found} is newer than this prism supports ({supported}); upgrade prism"
    )]
    SchemaTooNew { found: i64, supported: i64 },
    /// An applied migration differs from the one this build carries.
    #[error("migration {version} ({name}) was changed after it was applied")]
    MigrationChanged { version: i64, name: String },
    /// A stored value could not be read back into its domain type.
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    /// Anything else the database reported.
    #[error("database error: {0}")]
    Database(String),
}

impl StoreError {
    /// True for errors where the same call may succeed later (connection loss, pool exhaustion).
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

/// Rules the store enforces atomically, so that concurrent callers cannot break them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error("the user is already a member of this workspace")]
    AlreadyMember,
    #[error("a workspace must keep at least one admin")]
    LastAdmin,
    #[error("a collection cannot be moved into itself or one of its folders")]
    Cycle,
    #[error("the {0} belongs to another workspace")]
    OtherWorkspace(&'static str),
    #[error("the referenced {0} does not exist")]
    MissingReference(&'static str),
    #[error("the {0} is still used by a workflow step")]
    InUse(&'static str),
    #[error("a {0} with this key already exists")]
    Duplicate(&'static str),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::RowNotFound => StoreError::NotFound("row"),
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(err.to_string()),
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(Conflict::Duplicate("row"))
            }
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                StoreError::Conflict(Conflict::MissingReference("row"))
            }
            sqlx::Error::Decode(_) | sqlx::Error::ColumnDecode { .. } => {
                StoreError::Corrupt(err.to_string())
            }
            _ => StoreError::Database(err.to_string()),
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(err: serde_json::Error) -> Self {
        StoreError::Corrupt(err.to_string())
    }
}
