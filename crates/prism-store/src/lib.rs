//! PRISM storage: the storage traits every plane uses, and their SQLite and PostgreSQL implementations.
//!
//! **Architecture invariant:** this is the only crate that contains SQL. Callers see domain types and
//! [`StoreError`], never `sqlx`.
//!
//! One implementation serves both databases: `sql.rs` is compiled twice, once inside [`sqlite`] and
//! once inside [`postgres`], each of which supplies the `Db` type, its pools and the few statements
//! that differ between dialects. Migrations live in `migrations/{sqlite,postgres}` with the same file
//! names; the conformance suite in `tests/it` runs every operation against both.

#![allow(
    clippy::duplicate_mod,
    reason = "sql.rs is compiled once per backend on purpose"
)]

pub mod analytics;
mod error;
pub mod feed;
mod migrate;
pub mod postgres;
pub mod sqlite;
mod traces;
mod traits;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

pub use analytics::{
    AnalyticsQuery, AnalyticsStore, EndpointKey, ExecutionAnalytics, ServiceAnalytics,
};
pub use error::{Conflict, Result, StoreError};
pub use feed::{FeedEvent, SpanSubscription};
pub use migrate::{MIGRATIONS, Migration, SCHEMA_VERSION};
pub use traces::{TraceFilter, TraceSummary};
pub use traits::*;

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub const fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A parsed and validated `DATABASE_URL`.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    raw: String,
    backend: Backend,
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Why a database URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidDatabaseUrl {
    #[error("unsupported scheme in {0:?}: expected sqlite://… or postgres://…")]
    Scheme(String),
    #[error("malformed URL {url:?}: {reason}")]
    Malformed { url: String, reason: String },
}

impl DatabaseUrl {
    /// Accepts `sqlite://PATH`, `sqlite:PATH`, `sqlite::memory:` and `postgres://` / `postgresql://` URLs.
    pub fn parse(raw: &str) -> std::result::Result<Self, InvalidDatabaseUrl> {
        let raw = raw.trim();
        let backend = if raw.starts_with("sqlite:") {
            Backend::Sqlite
        } else if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(InvalidDatabaseUrl::Scheme(redact(raw)));
        };
        let malformed = |reason: String| InvalidDatabaseUrl::Malformed {
            url: redact(raw),
            reason,
        };
        match backend {
            Backend::Sqlite => {
                let path = raw.trim_start_matches("sqlite:").trim_start_matches("//");
                if path.is_empty() {
                    return Err(malformed("no database file path".into()));
                }
                sqlx::sqlite::SqliteConnectOptions::from_str(raw)
                    .map_err(|e| malformed(e.to_string()))?;
            }
            Backend::Postgres => {
                let parsed = url::Url::parse(raw).map_err(|e| malformed(e.to_string()))?;
                if parsed.host_str().is_none_or(str::is_empty) {
                    return Err(malformed("no host".into()));
                }
                sqlx::postgres::PgConnectOptions::from_str(raw)
                    .map_err(|e| malformed(e.to_string()))?;
            }
        }
        Ok(Self {
            raw: raw.to_owned(),
            backend,
        })
    }

    /// The SQLite URL for a database file.
    pub fn sqlite_file(path: &std::path::Path) -> Self {
        Self {
            raw: format!("sqlite://{}", path.display()),
            backend: Backend::Sqlite,
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The URL with any password replaced by `***`, for logs and error messages.
    pub fn redacted(&self) -> String {
        redact(&self.raw)
    }
}

/// Replaces the password in `scheme://user:password@host…` by `***`. Works on text, not on a
/// parsed URL, so that malformed URLs are redacted too.
fn redact(raw: &str) -> String {
    let Some(scheme_end) = raw.find("://") else {
        return raw.to_owned();
    };
    let authority_start = scheme_end + 3;
    let authority_end = raw[authority_start..]
        .find(['/', '?', '#'])
        .map_or(raw.len(), |i| authority_start + i);
    let authority = &raw[authority_start..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:***{}",
            &raw[..authority_start],
            &authority[..colon],
            &raw[authority_start + at..]
        ),
        _ => raw.to_owned(),
    }
}

/// Connection settings.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Largest number of pooled connections (PostgreSQL), or of readers (SQLite; there is one writer).
    pub max_connections: u32,
    /// How long to wait for a connection before reporting the database unavailable.
    pub connect_timeout: Duration,
    /// Apply pending migrations when opening (the default). `false` only checks the version.
    pub migrate: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            connect_timeout: Duration::from_secs(5),
            migrate: true,
        }
    }
}

/// Opens the database a URL names, checks its schema version and (by default) migrates it.
pub async fn open(url: &DatabaseUrl, options: &StoreOptions) -> Result<Arc<dyn Store>> {
    match url.backend() {
        Backend::Sqlite => Ok(Arc::new(
            sqlite::SqliteStore::open(url.as_str(), options).await?,
        )),
        Backend::Postgres => Ok(Arc::new(
            postgres::PgStore::open(url.as_str(), options).await?,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_are_classified() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://./x.db").unwrap().backend(),
            Backend::Sqlite
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite::memory:").unwrap().backend(),
            Backend::Sqlite
        );
        assert_eq!(
            DatabaseUrl::parse("postgres://u:p@localhost:5432/prism")
                .unwrap()
                .backend(),
            Backend::Postgres
        );
        assert!(matches!(
            DatabaseUrl::parse("mysql://x"),
            Err(InvalidDatabaseUrl::Scheme(_))
        ));
        assert!(matches!(
            DatabaseUrl::parse("postgres://"),
            Err(InvalidDatabaseUrl::Malformed { .. })
        ));
        assert!(matches!(
            DatabaseUrl::parse("sqlite://"),
            Err(InvalidDatabaseUrl::Malformed { .. })
        ));
    }

    #[test]
    fn passwords_never_appear_in_redacted_urls() {
        let url = DatabaseUrl::parse("postgres://prism:s3cret@db:5432/prism").unwrap();
        assert!(!url.redacted().contains("s3cret"));
        assert!(!format!("{url:?}").contains("s3cret"));
        let err = DatabaseUrl::parse("postgres://prism:s3cret@db:notaport/prism").unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
        assert_eq!(
            redact("postgres://u:p@w@h:1/db?x=1"),
            "postgres://u:***@h:1/db?x=1"
        );
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
        assert_eq!(redact("sqlite://./a:b@c.db"), "sqlite://./a:b@c.db");
    }
}
