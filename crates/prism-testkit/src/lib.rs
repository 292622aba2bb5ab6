//! Test support shared by every crate: a fresh database per test on SQLite (always) and on
//! PostgreSQL (when `PRISM_TEST_POSTGRES_URL` is set), dropped afterwards.

use std::future::Future;
use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Once};

use futures_util::FutureExt;
use prism_store::{DatabaseUrl, Store, StoreOptions};

/// The variable that points the tests at a PostgreSQL server (any database on it; tests create
/// their own).
pub const POSTGRES_ENV: &str = "PRISM_TEST_POSTGRES_URL";

/// A database that exists for one test.
#[derive(Debug)]
pub struct TestDatabase {
    url: DatabaseUrl,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    /// The temporary directory holding the SQLite file; removed on drop.
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    /// The server URL and the database name to drop.
    Postgres { admin_url: String, name: String },
}

impl TestDatabase {
    /// A new SQLite file in a temporary directory.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("create temp dir");
        let url = DatabaseUrl::sqlite_file(&dir.path().join("prism.db"));
        Self {
            url,
            cleanup: Cleanup::Sqlite(dir),
        }
    }

    /// A new, empty PostgreSQL database, or `None` (with a note on stderr) when
    /// `PRISM_TEST_POSTGRES_URL` is not set.
    pub async fn postgres() -> Option<Self> {
        let Ok(admin_url) = std::env::var(POSTGRES_ENV) else {
            note_postgres_skipped();
            return None;
        };
        let name = format!("prism_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = connect_admin(&admin_url).await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create test database");
        let mut url = url::Url::parse(&admin_url).expect("PRISM_TEST_POSTGRES_URL is a URL");
        url.set_path(&name);
        let url = DatabaseUrl::parse(url.as_str()).expect("test database URL");
        Some(Self {
            url,
            cleanup: Cleanup::Postgres { admin_url, name },
        })
    }

    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// Opens (and migrates) the database.
    pub async fn open(&self) -> Arc<dyn Store> {
        prism_store::open(
            &self.url,
            &StoreOptions {
                max_connections: 5,
                ..StoreOptions::default()
            },
        )
        .await
        .expect("open test database")
    }

    /// Removes the database. Call after closing every store opened on it.
    pub async fn destroy(self) {
        if let Cleanup::Postgres { admin_url, name } = &self.cleanup {
            let mut admin = connect_admin(admin_url).await;
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut admin)
            .await
            .expect("drop test database");
        }
    }
}

async fn connect_admin(url: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    sqlx::PgConnection::connect(url)
        .await
        .expect("connect to PRISM_TEST_POSTGRES_URL")
}

/// Prints once per test binary, bypassing the test harness's capture so the skip is visible.
fn note_postgres_skipped() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = writeln!(
            std::io::stderr(),
            "note: PostgreSQL tests skipped: {POSTGRES_ENV} is not set"
        );
    });
}

/// Runs `test` against a fresh database, then removes it, even when the test panics.
pub async fn with_database<F, Fut>(db: TestDatabase, test: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    let store = db.open().await;
    let outcome = AssertUnwindSafe(test(store.clone())).catch_unwind().await;
    store.close().await;
    db.destroy().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Runs `test` against a fresh SQLite database.
pub async fn on_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    with_database(TestDatabase::sqlite(), test).await;
}

/// Runs `test` against a fresh PostgreSQL database, or skips it (saying so) without one.
pub async fn on_postgres<F, Fut>(test: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    if let Some(db) = TestDatabase::postgres().await {
        with_database(db, test).await;
    }
}

/// Declares each listed async test function (taking `Arc<dyn Store>`) once per backend, as
/// `sqlite::NAME` and `postgres::NAME`.
#[macro_export]
macro_rules! for_each_backend {
    ($suite:path => $($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    use $suite as suite;
                    $crate::on_sqlite(suite::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    use $suite as suite;
                    $crate::on_postgres(suite::$name).await;
                }
            )*
        }
    };
}
