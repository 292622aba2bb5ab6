//! The PostgreSQL backend: one connection pool shared by readers and writers. Used by split
//! deployments (`prism soul`, several `prism intercept`) and available to `prism up`.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Pool, Transaction};

use crate::{Backend, Result, StoreOptions};

pub(crate) type Db = sqlx::Postgres;
pub(crate) type Repo = PgStore;
pub(crate) const BACKEND: Backend = Backend::Postgres;
pub(crate) const FOR_UPDATE: &str = " FOR UPDATE";
/// Locks a row against concurrent writers without blocking inserts that reference it.
pub(crate) const FOR_NO_KEY_UPDATE: &str = " FOR NO KEY UPDATE";

#[path = "sql.rs"]
mod sql;

/// Advisory lock keys ("PRISM" in ASCII, plus a number) used to serialize work across processes.
const MIGRATION_LOCK: i64 = 0x5052_4953_4d01;
const USER_CREATION_LOCK: i64 = 0x5052_4953_4d02;

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: Pool<Db>,
}

impl PgStore {
    pub async fn open(url: &str, options: &StoreOptions) -> Result<Self> {
        let connect = PgConnectOptions::from_str(url)
            .map_err(|e| crate::StoreError::Unavailable(e.to_string()))?
            .application_name("prism");
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.connect_timeout)
            .connect_with(connect)
            .await?;
        sql::migrate(&pool, options.migrate).await?;
        Ok(Self { pool })
    }

    pub(crate) fn reader(&self) -> &Pool<Db> {
        &self.pool
    }

    pub(crate) fn writer(&self) -> &Pool<Db> {
        &self.pool
    }

    pub(crate) async fn close_pools(&self) {
        self.pool.close().await;
    }
}

pub(crate) const BEGIN_WRITE: &str = "BEGIN";

pub(crate) async fn begin_write(pool: &Pool<Db>) -> Result<Transaction<'static, Db>> {
    Ok(pool.begin().await?)
}

/// Two sign-ups on an empty instance must not both become admin: hold a transaction-scoped lock.
pub(crate) async fn lock_user_creation(tx: &mut Transaction<'static, Db>) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(USER_CREATION_LOCK)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub(crate) fn migration_sql(m: &crate::Migration) -> &'static str {
    m.postgres
}

/// Several intercept replicas may start at once: only one migrates, the others wait and then see
/// the migrations applied.
pub(crate) async fn lock_migrations(conn: &mut sqlx::PgConnection) -> Result<()> {
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub(crate) async fn unlock_migrations(conn: &mut sqlx::PgConnection) -> Result<()> {
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
