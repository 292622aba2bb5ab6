//! Migrations: reopening is harmless, concurrent first opens migrate once, and newer or edited schemas are refused untouched.

use futures_util::future::join_all;
use prism_store::{Backend, MIGRATIONS, SCHEMA_VERSION, StoreError, StoreOptions};
use prism_testkit::TestDatabase;
use sqlx::Connection;

use crate::fixtures::user;

/// One row of `prism_migrations`: version, name, checksum, applied_at.
type MigrationRow = (i64, String, String, i64);

/// A direct sqlx connection to a test database, bypassing the store.
enum Raw {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

/// Runs the same expression on whichever connection `raw` holds.
macro_rules! on_raw {
    ($raw:expr, |$conn:ident| $body:expr) => {
        match $raw {
            Raw::Sqlite($conn) => $body,
            Raw::Postgres($conn) => $body,
        }
    };
}

impl Raw {
    async fn connect(db: &TestDatabase) -> Self {
        let url = db.url().as_str();
        match db.url().backend() {
            Backend::Sqlite => Raw::Sqlite(
                sqlx::SqliteConnection::connect(url)
                    .await
                    .expect("connect sqlite"),
            ),
            Backend::Postgres => Raw::Postgres(
                sqlx::PgConnection::connect(url)
                    .await
                    .expect("connect postgres"),
            ),
        }
    }

    async fn migration_rows(&mut self) -> Vec<MigrationRow> {
        const SQL: &str =
            "SELECT version, name, checksum, applied_at FROM prism_migrations ORDER BY version";
        on_raw!(self, |conn| sqlx::query_as(SQL)
            .fetch_all(conn)
            .await
            .expect("read prism_migrations"))
    }

    async fn count_users(&mut self) -> i64 {
        const SQL: &str = "SELECT COUNT(*) FROM users";
        on_raw!(self, |conn| sqlx::query_scalar(SQL)
            .fetch_one(conn)
            .await
            .expect("count users"))
    }

    async fn table_exists(&mut self, table: &str) -> bool {
        let count: i64 = match self {
            Raw::Sqlite(conn) => sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1")
                .bind(table)
                .fetch_one(conn)
                .await
                .expect("look up table"),
            Raw::Postgres(conn) => sqlx::query_scalar(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name = $1",
            )
            .bind(table)
            .fetch_one(conn)
            .await
            .expect("look up table"),
        };
        count == 1
    }

    async fn insert_migration(&mut self, version: i64, name: &str, checksum: &str) {
        const SQL: &str = "INSERT INTO prism_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)";
        on_raw!(self, |conn| sqlx::query(SQL)
            .bind(version)
            .bind(name)
            .bind(checksum)
            .bind(1_900_000_000_000_000_000_i64)
            .execute(conn)
            .await
            .map(|_| ())
            .expect("insert migration row"));
    }

    async fn set_checksum(&mut self, version: i64, checksum: &str) {
        const SQL: &str = "UPDATE prism_migrations SET checksum = $1 WHERE version = $2";
        let done = on_raw!(self, |conn| sqlx::query(SQL)
            .bind(checksum)
            .bind(version)
            .execute(conn)
            .await
            .expect("update checksum")
            .rows_affected());
        assert_eq!(done, 1);
    }

    async fn close(self) {
        on_raw!(self, |conn| conn
            .close()
            .await
            .expect("close raw connection"));
    }
}

fn options(migrate: bool) -> StoreOptions {
    StoreOptions {
        max_connections: 2,
        migrate,
        ..StoreOptions::default()
    }
}

/// Opens, stores one user, and closes: a database as a previous run of prism left it.
async fn prepare(db: &TestDatabase) {
    let store = db.open().await;
    store.insert_user(&user("ada@example.test")).await.unwrap();
    store.close().await;
}

pub async fn reopening_a_migrated_database_is_harmless(db: &TestDatabase) {
    let store = db.open().await;
    assert_eq!(store.backend(), db.url().backend());
    let ada = store.insert_user(&user("ada@example.test")).await.unwrap();
    store.close().await;

    let mut raw = Raw::connect(db).await;
    let rows = raw.migration_rows().await;
    let versions: Vec<_> = rows.iter().map(|r| (r.0, r.1.as_str())).collect();
    let expected: Vec<_> = MIGRATIONS.iter().map(|m| (m.version, m.name)).collect();
    assert_eq!(versions, expected, "each migration is recorded once");

    let store = db.open().await;
    assert_eq!(
        store.get_user(ada.id).await.unwrap(),
        ada,
        "data survives reopening"
    );
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    assert_eq!(store.backend(), db.url().backend());
    store.close().await;
    assert_eq!(
        raw.migration_rows().await,
        rows,
        "reopening applies nothing again"
    );

    // Opening without migrating is fine once the schema is current.
    let store = prism_store::open(db.url(), &options(false)).await.unwrap();
    store.ping().await.unwrap();
    assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    store.close().await;
    raw.close().await;
}

pub async fn concurrent_first_opens_migrate_once(db: &TestDatabase) {
    let options = options(true);
    let opens = (0..4).map(|_| prism_store::open(db.url(), &options));
    let stores: Vec<_> = join_all(opens)
        .await
        .into_iter()
        .map(|r| r.expect("concurrent open"))
        .collect();
    for store in &stores {
        assert_eq!(store.schema_version().await.unwrap(), SCHEMA_VERSION);
    }
    for store in stores {
        store.close().await;
    }
    let mut raw = Raw::connect(db).await;
    assert_eq!(raw.migration_rows().await.len(), MIGRATIONS.len());
    raw.close().await;
}

pub async fn unmigrated_database_is_refused_without_migrating(db: &TestDatabase) {
    let err = prism_store::open(db.url(), &options(false))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
    let mut raw = Raw::connect(db).await;
    assert!(!raw.table_exists("users").await, "nothing was migrated");
    raw.close().await;
}

pub async fn newer_schema_is_refused_and_left_untouched(db: &TestDatabase) {
    prepare(db).await;
    let mut raw = Raw::connect(db).await;
    let future = SCHEMA_VERSION + 1;
    raw.insert_migration(future, "9999_from_the_future", "0123456789abcdef")
        .await;
    let before = raw.migration_rows().await;

    for migrate in [true, false] {
        let err = prism_store::open(db.url(), &options(migrate))
            .await
            .unwrap_err();
        match err {
            StoreError::SchemaTooNew { found, supported } => {
                assert_eq!((found, supported), (future, SCHEMA_VERSION));
            }
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
    }

    assert_eq!(
        raw.migration_rows().await,
        before,
        "the bookkeeping is not modified"
    );
    assert_eq!(raw.count_users().await, 1, "the data is not modified");
    raw.close().await;
}

pub async fn changed_migration_is_refused_and_left_untouched(db: &TestDatabase) {
    prepare(db).await;
    let mut raw = Raw::connect(db).await;
    let first = &MIGRATIONS[0];
    raw.set_checksum(first.version, "0000000000000000").await;
    let before = raw.migration_rows().await;

    for migrate in [true, false] {
        let err = prism_store::open(db.url(), &options(migrate))
            .await
            .unwrap_err();
        match err {
            StoreError::MigrationChanged { version, name } => {
                assert_eq!((version, name.as_str()), (first.version, first.name));
            }
            other => panic!("expected MigrationChanged, got {other:?}"),
        }
    }

    assert_eq!(raw.migration_rows().await, before);
    assert_eq!(raw.count_users().await, 1);
    raw.close().await;
}
