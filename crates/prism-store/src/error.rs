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

#[cfg(test)]
mod tests {
    use super::is_transient_code;

    #[test]
    fn retryable_codes_are_transient() {
        for (code, message) in [
            ("08006", ""),
            ("53300", ""),
            ("57P01", ""),
            ("40001", ""),
            ("5", ""),
            ("517", ""),
            ("6", ""),
        ] {
            assert!(is_transient_code(Some(code), message), "{code}");
        }
        assert!(is_transient_code(
            Some("55000"),
            "database \"x\" is not currently accepting connections"
        ));
        for code in ["23505", "23503", "42P01", "55000", "19", "2067"] {
            assert!(!is_transient_code(Some(code), ""), "{code}");
        }
        assert!(!is_transient_code(None, ""));
    }
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
            sqlx::Error::Database(db) if is_transient_code(db.code().as_deref(), db.message()) => {
                StoreError::Unavailable(err.to_string())
            }
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

/// Database errors that say "not now" rather than "never": worth retrying.
///
/// PostgreSQL SQLSTATEs: class 08 (connection exception), class 53 (insufficient resources, e.g. too
/// many connections), 57P01–57P03 (shutdown, crash, starting up), 40001/40P01 (serialization failure,
/// deadlock), and 55000 when the database is not accepting connections. SQLite: BUSY and LOCKED
/// (primary codes 5 and 6, with any extended code).
fn is_transient_code(code: Option<&str>, message: &str) -> bool {
    let Some(code) = code else { return false };
    // SQLSTATEs are always five characters; SQLite's (extended) result codes are at most four digits.
    if code.len() != 5 {
        return code
            .parse::<i32>()
            .is_ok_and(|sqlite| matches!(sqlite & 0xff, 5 | 6));
    }
    code.starts_with("08")
        || code.starts_with("53")
        || matches!(code, "57P01" | "57P02" | "57P03" | "40001" | "40P01")
        || (code == "55000" && message.contains("accepting connections"))
}

impl From<serde_json::Error> for StoreError {
    fn from(err: serde_json::Error) -> Self {
        StoreError::Corrupt(err.to_string())
    }
}
