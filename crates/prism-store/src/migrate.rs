//! The schema migrations this build carries, one file per backend with the same name.
//!
//! Applied migrations are recorded in `prism_migrations` with a checksum. Opening a database whose
//! recorded version is higher than [`SCHEMA_VERSION`] is refused (a newer PRISM wrote it), and so is
//! one whose applied migration text differs from ours: the database is never touched in either case.

/// One schema step.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

macro_rules! migration {
    ($version:expr, $name:literal) => {
        Migration {
            version: $version,
            name: $name,
            sqlite: include_str!(concat!("../migrations/sqlite/", $name, ".sql")),
            postgres: include_str!(concat!("../migrations/postgres/", $name, ".sql")),
        }
    };
}

/// Every migration, in order. Never edit one that has shipped; add a new one.
pub const MIGRATIONS: &[Migration] = &[
    migration!(1, "0001_initial"),
    migration!(2, "0002_ingest_keys"),
    migration!(3, "0003_analytics"),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].version;

/// FNV-1a 64-bit of the migration text, as hex: enough to notice an edited migration.
pub(crate) fn checksum(sql: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in sql.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// The bookkeeping table, portable across both dialects.
pub(crate) const CREATE_MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS prism_migrations (
    version BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL,
    applied_at BIGINT NOT NULL
)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_dense_and_names_are_numbered() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i64 + 1);
            assert!(m.name.starts_with(&format!("{:04}_", m.version)));
        }
    }

    #[test]
    fn checksum_notices_edits() {
        assert_ne!(
            checksum("CREATE TABLE a (x INT)"),
            checksum("CREATE TABLE a (x INT) ")
        );
        assert_eq!(checksum("x"), checksum("x"));
    }
}
