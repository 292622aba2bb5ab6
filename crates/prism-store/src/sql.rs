//! The storage implementation shared by both backends.
//!
//! This file is compiled twice: as `sqlite::sql` and as `postgres::sql`. The parent module supplies
//! `Db` (the sqlx database), `Repo` (the store struct with `reader()`/`writer()` pools) and the few
//! dialect hooks (`begin_write`, `lock_user_creation`, `FOR_UPDATE`, `FOR_NO_KEY_UPDATE`, migration
//! locking). Everything
//! here is portable SQL: `$n` placeholders, `RETURNING`-free, `ON CONFLICT DO NOTHING`.

use std::str::FromStr;

use async_trait::async_trait;
use prism_domain::collection::Collection;
use prism_domain::environment::{Environment, Variable};
use prism_domain::execution::{Execution, ExecutionDetail};
use prism_domain::request::{Protocol, RequestSpec, SavedRequest};
use prism_domain::session::{ApiToken, IngestKey, Session};
use prism_domain::trace::{
    Scope, Span, SpanEvent, SpanId, SpanKind, SpanLink, StatusCode, TraceId,
};
use prism_domain::user::{Email, User};
use prism_domain::workflow::{Workflow, WorkflowRun, WorkflowRunStep, WorkflowStep};
use prism_domain::workspace::{Member, Membership, Workspace};
use prism_domain::{
    ApiTokenId, CollectionId, EnvironmentId, ExecutionId, IngestKeyId, RequestId, Role, Timestamp,
    UserId, WorkflowId, WorkflowRunId, WorkspaceId,
};
use sqlx::types::Json;
use sqlx::{Connection, Pool, QueryBuilder, Row};
use uuid::Uuid;

use super::{
    BACKEND, BEGIN_WRITE, Db, FOR_NO_KEY_UPDATE, FOR_UPDATE, Repo, begin_write, lock_user_creation,
};
use crate::migrate::{CREATE_MIGRATIONS_TABLE, MIGRATIONS, SCHEMA_VERSION, checksum};
use crate::traits::*;
use crate::{Backend, Conflict, Result, StoreError};
use crate::{TraceFilter, TraceSummary};

type DbRow = <Db as sqlx::Database>::Row;
type Tx = sqlx::Transaction<'static, Db>;

/// Rows per multi-row INSERT: stays under SQLite's 32 766 bound parameters for the widest table.
const BATCH_ROWS: usize = 500;

// ---------------------------------------------------------------------------------------------
// Migrations

pub(crate) async fn migrate(pool: &Pool<Db>, apply: bool) -> Result<()> {
    let mut conn = pool.acquire().await?;
    super::lock_migrations(&mut conn).await?;
    let result = apply_migrations(&mut conn, apply).await;
    let unlocked = super::unlock_migrations(&mut conn).await;
    result.and(unlocked)
}

async fn apply_migrations(
    conn: &mut <Db as sqlx::Database>::Connection,
    apply: bool,
) -> Result<()> {
    sqlx::raw_sql(CREATE_MIGRATIONS_TABLE)
        .execute(&mut *conn)
        .await?;
    for migration in MIGRATIONS {
        let mut tx = conn.begin_with(BEGIN_WRITE).await?;
        let applied: Vec<(i64, String, String)> =
            sqlx::query_as("SELECT version, name, checksum FROM prism_migrations ORDER BY version")
                .fetch_all(&mut *tx)
                .await?;
        if let Some(&(found, _, _)) = applied.last()
            && found > SCHEMA_VERSION
        {
            return Err(StoreError::SchemaTooNew {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        let sql = super::migration_sql(migration);
        match applied.iter().find(|(v, _, _)| *v == migration.version) {
            Some((_, _, sum)) if *sum != checksum(sql) => {
                return Err(StoreError::MigrationChanged {
                    version: migration.version,
                    name: migration.name.to_owned(),
                });
            }
            Some(_) => continue,
            None if !apply => {
                return Err(StoreError::Database(format!(
                    "database schema is at version {}, this prism needs {SCHEMA_VERSION}: run `prism migrate`",
                    applied.last().map_or(0, |a| a.0)
                )));
            }
            None => {}
        }
        sqlx::raw_sql(sql).execute(&mut *tx).await?;
        if migration.name == "0003_analytics" {
            // Executions stored before rollups existed are counted once, with the schema change.
            super::analytics_sql::backfill_execution_rollups(&mut tx).await?;
            super::analytics_sql::backfill_span_rollups(&mut tx).await?;
        }
        sqlx::query("INSERT INTO prism_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)")
            .bind(migration.version)
            .bind(migration.name)
            .bind(checksum(sql))
            .bind(prism_domain::Clock::now(&prism_domain::SystemClock).nanos())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(
            version = migration.version,
            name = migration.name,
            backend = BACKEND.as_str(),
            "applied migration"
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Row decoding helpers

fn corrupt(err: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(err.to_string())
}

fn parsed<T: FromStr>(row: &DbRow, column: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    let text: String = row.try_get(column)?;
    text.parse()
        .map_err(|e: T::Err| corrupt(format!("{column}: {e}")))
}

fn ts(row: &DbRow, column: &str) -> Result<Timestamp> {
    Ok(Timestamp(row.try_get(column)?))
}

fn opt_ts(row: &DbRow, column: &str) -> Result<Option<Timestamp>> {
    Ok(row.try_get::<Option<i64>, _>(column)?.map(Timestamp))
}

fn json<T: serde::de::DeserializeOwned>(row: &DbRow, column: &str) -> Result<T> {
    Ok(row.try_get::<Json<T>, _>(column)?.0)
}

fn id<T: From<Uuid>>(row: &DbRow, column: &str) -> Result<T> {
    Ok(T::from(row.try_get::<Uuid, _>(column)?))
}

fn opt_id<T: From<Uuid>>(row: &DbRow, column: &str) -> Result<Option<T>> {
    Ok(row.try_get::<Option<Uuid>, _>(column)?.map(T::from))
}

fn trace_id(row: &DbRow, column: &str) -> Result<TraceId> {
    let bytes: Vec<u8> = row.try_get(column)?;
    TraceId::from_slice(&bytes).ok_or_else(|| corrupt(format!("{column}: not a trace id")))
}

fn span_id(row: &DbRow, column: &str) -> Result<SpanId> {
    let bytes: Vec<u8> = row.try_get(column)?;
    SpanId::from_slice(&bytes).ok_or_else(|| corrupt(format!("{column}: not a span id")))
}

fn uuid<T: Into<Uuid>>(id: T) -> Uuid {
    id.into()
}

fn opt_uuid<T: Into<Uuid>>(id: Option<T>) -> Option<Uuid> {
    id.map(Into::into)
}

/// `NotFound` when an UPDATE or DELETE touched nothing.
fn expect_one(affected: u64, entity: &'static str) -> Result<()> {
    if affected == 0 {
        Err(StoreError::NotFound(entity))
    } else {
        Ok(())
    }
}

/// Maps a unique violation to a specific conflict, and a missing row to a specific entity.
fn on_unique(conflict: Conflict) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |err| match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(conflict),
        _ => StoreError::from(err),
    }
}

fn on_foreign_key(conflict: Conflict) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |err| match &err {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            StoreError::Conflict(conflict)
        }
        _ => StoreError::from(err),
    }
}

fn not_found(entity: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |err| match err {
        sqlx::Error::RowNotFound => StoreError::NotFound(entity),
        other => StoreError::from(other),
    }
}

// ---------------------------------------------------------------------------------------------
// Users

const USER_COLUMNS: &str = "id, email, name, password_hash, is_admin, created_at, updated_at";

fn user_from_row(row: &DbRow) -> Result<User> {
    let email: String = row.try_get("email")?;
    Ok(User {
        id: id(row, "id")?,
        email: Email::parse(&email).map_err(corrupt)?,
        name: row.try_get("name")?,
        password_hash: row.try_get("password_hash")?,
        is_admin: row.try_get("is_admin")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

impl Repo {
    /// Stores a user (admin if first); with `only_first`, nothing is stored when users exist.
    async fn insert_user_if(&self, user: &User, only_first: bool) -> Result<Option<User>> {
        let mut tx = begin_write(self.writer()).await?;
        lock_user_creation(&mut tx).await?;
        let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&mut *tx)
            .await?;
        if only_first && existing > 0 {
            return Ok(None);
        }
        let mut stored = user.clone();
        stored.is_admin = user.is_admin || existing == 0;
        sqlx::query(
            "INSERT INTO users (id, email, name, password_hash, is_admin, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(uuid(stored.id))
        .bind(stored.email.as_str())
        .bind(&stored.name)
        .bind(&stored.password_hash)
        .bind(stored.is_admin)
        .bind(stored.created_at.nanos())
        .bind(stored.updated_at.nanos())
        .execute(&mut *tx)
        .await
        .map_err(on_unique(Conflict::EmailTaken))?;
        tx.commit().await?;
        Ok(Some(stored))
    }
}

#[async_trait]
impl UserStore for Repo {
    async fn insert_user(&self, user: &User) -> Result<User> {
        let stored = self.insert_user_if(user, false).await?;
        Ok(stored.expect("an unconditional insert stores the user"))
    }

    async fn insert_first_user(&self, user: &User) -> Result<Option<User>> {
        self.insert_user_if(user, true).await
    }

    async fn get_user(&self, user: UserId) -> Result<User> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(uuid(user))
            .fetch_one(self.reader())
            .await
            .map_err(not_found("user"))?;
        user_from_row(&row)
    }

    async fn find_user_by_email(&self, email: &Email) -> Result<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(email.as_str())
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY email");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(user_from_row).collect()
    }

    async fn count_users(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(self.reader())
            .await?)
    }

    async fn update_user_name(&self, user: UserId, name: &str, now: Timestamp) -> Result<()> {
        let done = sqlx::query("UPDATE users SET name = $1, updated_at = $2 WHERE id = $3")
            .bind(name)
            .bind(now.nanos())
            .bind(uuid(user))
            .execute(self.writer())
            .await?;
        expect_one(done.rows_affected(), "user")
    }

    async fn update_user_password(
        &self,
        user: UserId,
        password_hash: &str,
        now: Timestamp,
    ) -> Result<()> {
        let done =
            sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
                .bind(password_hash)
                .bind(now.nanos())
                .bind(uuid(user))
                .execute(self.writer())
                .await?;
        expect_one(done.rows_affected(), "user")
    }

    async fn update_user_admin(&self, user: UserId, is_admin: bool, now: Timestamp) -> Result<()> {
        let done = sqlx::query("UPDATE users SET is_admin = $1, updated_at = $2 WHERE id = $3")
            .bind(is_admin)
            .bind(now.nanos())
            .bind(uuid(user))
            .execute(self.writer())
            .await?;
        expect_one(done.rows_affected(), "user")
    }
}

// ---------------------------------------------------------------------------------------------
// Workspaces and memberships

fn workspace_from_row(row: &DbRow) -> Result<Workspace> {
    Ok(Workspace {
        id: id(row, "id")?,
        name: row.try_get("name")?,
        created_by: opt_id(row, "created_by")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

fn membership_from_row(row: &DbRow) -> Result<Membership> {
    Ok(Membership {
        workspace_id: id(row, "workspace_id")?,
        user_id: id(row, "user_id")?,
        role: parsed(row, "role")?,
        joined_at: ts(row, "joined_at")?,
    })
}

/// Admins of a workspace other than `except`, locked against concurrent demotion (PostgreSQL).
async fn other_admins(tx: &mut Tx, workspace: WorkspaceId, except: UserId) -> Result<usize> {
    let sql = format!(
        "SELECT user_id FROM memberships WHERE workspace_id = $1 AND role = 'admin'{FOR_UPDATE}"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(uuid(workspace))
        .fetch_all(&mut **tx)
        .await?;
    let mut others = 0;
    for row in &rows {
        if id::<UserId>(row, "user_id")? != except {
            others += 1;
        }
    }
    Ok(others)
}

/// Serializes changes that read-then-write state shared across a workspace: memberships (the
/// last-admin rule) and the collection/request tree (sibling positions). PostgreSQL needs it; SQLite's
/// write transactions are already exclusive. Row locks on the rows being changed are not enough: two
/// admins demoting each other, or two moves renumbering the same siblings, each lock their own rows
/// first and then wait for the other's, which deadlocks, while two inserts computing `MAX(position) + 1`
/// lock nothing at all and take the same position. `NO KEY UPDATE` keeps inserts that merely
/// reference the workspace (executions, spans…) from waiting.
async fn lock_workspace(tx: &mut Tx, workspace: WorkspaceId) -> Result<()> {
    let sql = format!("SELECT id FROM workspaces WHERE id = $1{FOR_NO_KEY_UPDATE}");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(uuid(workspace))
        .fetch_optional(&mut **tx)
        .await?;
    Ok(())
}

async fn current_role(tx: &mut Tx, workspace: WorkspaceId, user: UserId) -> Result<Role> {
    let sql = format!(
        "SELECT role FROM memberships WHERE workspace_id = $1 AND user_id = $2{FOR_UPDATE}"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(uuid(workspace))
        .bind(uuid(user))
        .fetch_one(&mut **tx)
        .await
        .map_err(not_found("membership"))?;
    parsed(&row, "role")
}

#[async_trait]
impl WorkspaceStore for Repo {
    async fn insert_workspace(&self, workspace: &Workspace, owner: UserId) -> Result<()> {
        let mut tx = begin_write(self.writer()).await?;
        sqlx::query(
            "INSERT INTO workspaces (id, name, created_by, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(uuid(workspace.id))
        .bind(&workspace.name)
        .bind(opt_uuid(workspace.created_by))
        .bind(workspace.created_at.nanos())
        .bind(workspace.updated_at.nanos())
        .execute(&mut *tx)
        .await
        .map_err(on_unique(Conflict::Duplicate("workspace")))
        .map_err(|e| match e {
            StoreError::Conflict(Conflict::MissingReference(_)) => Conflict::MissingReference("user").into(),
            other => other,
        })?;
        sqlx::query("INSERT INTO memberships (workspace_id, user_id, role, joined_at) VALUES ($1, $2, 'admin', $3)")
            .bind(uuid(workspace.id))
            .bind(uuid(owner))
            .bind(workspace.created_at.nanos())
            .execute(&mut *tx)
            .await
            .map_err(on_foreign_key(Conflict::MissingReference("user")))?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_workspace(&self, workspace: WorkspaceId) -> Result<Workspace> {
        let row = sqlx::query(
            "SELECT id, name, created_by, created_at, updated_at FROM workspaces WHERE id = $1",
        )
        .bind(uuid(workspace))
        .fetch_one(self.reader())
        .await
        .map_err(not_found("workspace"))?;
        workspace_from_row(&row)
    }

    async fn list_workspaces_for_user(&self, user: UserId) -> Result<Vec<(Workspace, Role)>> {
        let rows = sqlx::query(
            "SELECT w.id, w.name, w.created_by, w.created_at, w.updated_at, m.role
             FROM workspaces w JOIN memberships m ON m.workspace_id = w.id
             WHERE m.user_id = $1 ORDER BY w.name, w.id",
        )
        .bind(uuid(user))
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|row| Ok((workspace_from_row(row)?, parsed(row, "role")?)))
            .collect()
    }

    async fn update_workspace_name(
        &self,
        workspace: WorkspaceId,
        name: &str,
        now: Timestamp,
    ) -> Result<()> {
        let done = sqlx::query("UPDATE workspaces SET name = $1, updated_at = $2 WHERE id = $3")
            .bind(name)
            .bind(now.nanos())
            .bind(uuid(workspace))
            .execute(self.writer())
            .await?;
        expect_one(done.rows_affected(), "workspace")
    }

    async fn delete_workspace(&self, workspace: WorkspaceId) -> Result<()> {
        let mut tx = begin_write(self.writer()).await?;
        // Workflows first: their steps reference requests without cascading, and PostgreSQL checks
        // that reference as soon as the cascade reaches the requests, before it reaches the steps.
        sqlx::query("DELETE FROM workflows WHERE workspace_id = $1")
            .bind(uuid(workspace))
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM workspaces WHERE id = $1")
            .bind(uuid(workspace))
            .execute(&mut *tx)
            .await?;
        expect_one(done.rows_affected(), "workspace")?;
        tx.commit().await?;
        Ok(())
    }

    async fn insert_membership(&self, membership: &Membership) -> Result<()> {
        sqlx::query("INSERT INTO memberships (workspace_id, user_id, role, joined_at) VALUES ($1, $2, $3, $4)")
            .bind(uuid(membership.workspace_id))
            .bind(uuid(membership.user_id))
            .bind(membership.role.as_str())
            .bind(membership.joined_at.nanos())
            .execute(self.writer())
            .await
            .map_err(|err| match &err {
                sqlx::Error::Database(db) if db.is_unique_violation() => Conflict::AlreadyMember.into(),
                sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                    Conflict::MissingReference("workspace or user").into()
                }
                _ => StoreError::from(err),
            })?;
        Ok(())
    }

    async fn find_membership(
        &self,
        workspace: WorkspaceId,
        user: UserId,
    ) -> Result<Option<Membership>> {
        let row = sqlx::query(
            "SELECT workspace_id, user_id, role, joined_at FROM memberships WHERE workspace_id = $1 AND user_id = $2",
        )
        .bind(uuid(workspace))
        .bind(uuid(user))
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(membership_from_row).transpose()
    }

    async fn list_members(&self, workspace: WorkspaceId) -> Result<Vec<Member>> {
        let rows = sqlx::query(
            "SELECT u.id, u.email, u.name, m.role, m.joined_at
             FROM memberships m JOIN users u ON u.id = m.user_id
             WHERE m.workspace_id = $1 ORDER BY u.email",
        )
        .bind(uuid(workspace))
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Member {
                    user_id: id(row, "id")?,
                    email: row.try_get("email")?,
                    name: row.try_get("name")?,
                    role: parsed(row, "role")?,
                    joined_at: ts(row, "joined_at")?,
                })
            })
            .collect()
    }

    async fn update_membership_role(
        &self,
        workspace: WorkspaceId,
        user: UserId,
        role: Role,
    ) -> Result<()> {
        let mut tx = begin_write(self.writer()).await?;
        lock_workspace(&mut tx, workspace).await?;
        let current = current_role(&mut tx, workspace, user).await?;
        if current == Role::Admin
            && role != Role::Admin
            && other_admins(&mut tx, workspace, user).await? == 0
        {
            return Err(Conflict::LastAdmin.into());
        }
        sqlx::query("UPDATE memberships SET role = $1 WHERE workspace_id = $2 AND user_id = $3")
            .bind(role.as_str())
            .bind(uuid(workspace))
            .bind(uuid(user))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_membership(&self, workspace: WorkspaceId, user: UserId) -> Result<()> {
        let mut tx = begin_write(self.writer()).await?;
        lock_workspace(&mut tx, workspace).await?;
        let current = current_role(&mut tx, workspace, user).await?;
        if current == Role::Admin && other_admins(&mut tx, workspace, user).await? == 0 {
            return Err(Conflict::LastAdmin.into());
        }
        sqlx::query("DELETE FROM memberships WHERE workspace_id = $1 AND user_id = $2")
            .bind(uuid(workspace))
            .bind(uuid(user))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Collections

const COLLECTION_COLUMNS: &str =
    "id, workspace_id, parent_id, name, position, created_by, created_at, updated_at";

fn collection_from_row(row: &DbRow) -> Result<Collection> {
    Ok(Collection {
        id: id(row, "id")?,
        workspace_id: id(row, "workspace_id")?,
        parent_id: opt_id(row, "parent_id")?,
        name: row.try_get("name")?,
        position: row.try_get("position")?,
        created_by: opt_id(row, "created_by")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

async fn collection_in(tx: &mut Tx, collection: CollectionId) -> Result<Collection> {
    let sql = format!("SELECT {COLLECTION_COLUMNS} FROM collections WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(uuid(collection))
        .fetch_one(&mut **tx)
        .await
        .map_err(not_found("collection"))?;
    collection_from_row(&row)
}

/// Ids of the collections under `parent` (top level of `workspace` when `None`), by position.
async fn sibling_collections(
    tx: &mut Tx,
    workspace: WorkspaceId,
    parent: Option<CollectionId>,
) -> Result<Vec<CollectionId>> {
    let rows = match parent {
        Some(parent) => {
            sqlx::query("SELECT id FROM collections WHERE parent_id = $1 ORDER BY position, id")
                .bind(uuid(parent))
                .fetch_all(&mut **tx)
                .await?
        }
        None => {
            sqlx::query(
                "SELECT id FROM collections WHERE workspace_id = $1 AND parent_id IS NULL ORDER BY position, id",
            )
            .bind(uuid(workspace))
            .fetch_all(&mut **tx)
            .await?
        }
    };
    rows.iter().map(|row| id(row, "id")).collect()
}

/// The position after the last sibling under `parent` (top level of `workspace` when `None`).
async fn next_collection_position(
    tx: &mut Tx,
    workspace: WorkspaceId,
    parent: Option<CollectionId>,
) -> Result<i64> {
    let query = match parent {
        Some(parent) => sqlx::query_scalar("SELECT COALESCE(MAX(position) + 1, 0) FROM collections WHERE parent_id = $1")
            .bind(uuid(parent)),
        None => sqlx::query_scalar(
            "SELECT COALESCE(MAX(position) + 1, 0) FROM collections WHERE workspace_id = $1 AND parent_id IS NULL",
        )
        .bind(uuid(workspace)),
    };
    Ok(query.fetch_one(&mut **tx).await?)
}

/// Writes positions 0.. in the given order (deletes leave gaps; moves close them).
async fn renumber(tx: &mut Tx, table: &'static str, ids: &[Uuid]) -> Result<()> {
    let sql = format!("UPDATE {table} SET position = $1 WHERE id = $2 AND position <> $1");
    for (position, row_id) in ids.iter().enumerate() {
        sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
            .bind(position as i64)
            .bind(*row_id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Inserts `item` into `list` at `position` (clamped; `None` appends).
fn place<T>(list: &mut Vec<T>, item: T, position: Option<i64>) {
    let at = position.map_or(list.len(), |p| {
        usize::try_from(p.max(0))
            .unwrap_or(usize::MAX)
            .min(list.len())
    });
    list.insert(at, item);
}

/// Writes one collection row as given (position included).
async fn insert_collection_row(
    tx: &mut Tx,
    collection: &Collection,
) -> std::result::Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO collections (id, workspace_id, parent_id, name, position, created_by, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(uuid(collection.id))
    .bind(uuid(collection.workspace_id))
    .bind(opt_uuid(collection.parent_id))
    .bind(&collection.name)
    .bind(collection.position)
    .bind(opt_uuid(collection.created_by))
    .bind(collection.created_at.nanos())
    .bind(collection.updated_at.nanos())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[async_trait]
impl CollectionStore for Repo {
    async fn insert_collection(&self, collection: &Collection) -> Result<Collection> {
        let mut tx = begin_write(self.writer()).await?;
        lock_workspace(&mut tx, collection.workspace_id).await?;
        if let Some(parent) = collection.parent_id {
            let parent = collection_in(&mut tx, parent).await.map_err(|e| match e {
                StoreError::NotFound(_) => Conflict::MissingReference("parent collection").into(),
                other => other,
            })?;
            if parent.workspace_id != collection.workspace_id {
                return Err(Conflict::OtherWorkspace("parent collection").into());
            }
        }
        let mut stored = collection.clone();
        stored.position =
            next_collection_position(&mut tx, collection.workspace_id, collection.parent_id)
                .await?;
        insert_collection_row(&mut tx, &stored)
            .await
            .map_err(on_foreign_key(Conflict::MissingReference("workspace")))?;
        tx.commit().await?;
        Ok(stored)
    }

    async fn get_collection(&self, collection: CollectionId) -> Result<Collection> {
        let sql = format!("SELECT {COLLECTION_COLUMNS} FROM collections WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(uuid(collection))
            .fetch_one(self.reader())
            .await
            .map_err(not_found("collection"))?;
        collection_from_row(&row)
    }

    async fn list_collections(&self, workspace: WorkspaceId) -> Result<Vec<Collection>> {
        // Top level first, then folders grouped by parent; callers build the tree from parent ids.
        let sql = format!(
            "SELECT {COLLECTION_COLUMNS} FROM collections WHERE workspace_id = $1
             ORDER BY CASE WHEN parent_id IS NULL THEN 0 ELSE 1 END, parent_id, position, id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(uuid(workspace))
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(collection_from_row).collect()
    }

    async fn update_collection_name(
        &self,
        collection: CollectionId,
        name: &str,
        now: Timestamp,
    ) -> Result<()> {
        let done = sqlx::query("UPDATE collections SET name = $1, updated_at = $2 WHERE id = $3")
            .bind(name)
            .bind(now.nanos())
            .bind(uuid(collection))
            .execute(self.writer())
            .await?;
        expect_one(done.rows_affected(), "collection")
    }

    async fn move_collection(
        &self,
        collection: CollectionId,
        parent: Option<CollectionId>,
        position: Option<i64>,
        now: Timestamp,
    ) -> Result<Collection> {
        let mut tx = begin_write(self.writer()).await?;
        let workspace = collection_in(&mut tx, collection).await?.workspace_id;
        lock_workspace(&mut tx, workspace).await?;
        // Read again under the lock: a concurrent move may have changed the parent meanwhile.
        let current = collection_in(&mut tx, collection).await?;
        if let Some(parent_id) = parent {
            let target = collection_in(&mut tx, parent_id)
                .await
                .map_err(|e| match e {
                    StoreError::NotFound(_) => {
                        Conflict::MissingReference("parent collection").into()
                    }
                    other => other,
                })?;
            if target.workspace_id != current.workspace_id {
                return Err(Conflict::OtherWorkspace("parent collection").into());
            }
            // Walk up from the new parent: meeting the moved collection means a cycle.
            let mut cursor = Some(target);
            while let Some(node) = cursor {
                if node.id == collection {
                    return Err(Conflict::Cycle.into());
                }
                cursor = match node.parent_id {
                    Some(up) => Some(collection_in(&mut tx, up).await?),
                    None => None,
                };
            }
        }
        if current.parent_id != parent {
            let mut old: Vec<Uuid> =
                sibling_collections(&mut tx, current.workspace_id, current.parent_id)
                    .await?
                    .into_iter()
                    .map(uuid)
                    .collect();
            old.retain(|c| *c != uuid(collection));
            renumber(&mut tx, "collections", &old).await?;
        }
        let mut new: Vec<Uuid> = sibling_collections(&mut tx, current.workspace_id, parent)
            .await?
            .into_iter()
            .map(uuid)
            .collect();
        new.retain(|c| *c != uuid(collection));
        place(&mut new, uuid(collection), position);
        sqlx::query("UPDATE collections SET parent_id = $1, updated_at = $2 WHERE id = $3")
            .bind(opt_uuid(parent))
            .bind(now.nanos())
            .bind(uuid(collection))
            .execute(&mut *tx)
            .await?;
        renumber(&mut tx, "collections", &new).await?;
        let moved = collection_in(&mut tx, collection).await?;
        tx.commit().await?;
        Ok(moved)
    }

    async fn delete_collection(&self, collection: CollectionId) -> Result<()> {
        let done = sqlx::query("DELETE FROM collections WHERE id = $1")
            .bind(uuid(collection))
            .execute(self.writer())
            .await
            .map_err(on_foreign_key(Conflict::InUse("request")))?;
        expect_one(done.rows_affected(), "collection")
    }

    async fn duplicate_collection(
        &self,
        collection: CollectionId,
        name: &str,
        now: Timestamp,
        actor: UserId,
    ) -> Result<Collection> {
        let mut tx = begin_write(self.writer()).await?;
        let workspace = collection_in(&mut tx, collection).await?.workspace_id;
        lock_workspace(&mut tx, workspace).await?;
        // Read under the lock: the subtree cannot change while it is copied.
        let original = collection_in(&mut tx, collection).await?;
        let sql = format!(
            "SELECT {COLLECTION_COLUMNS} FROM collections WHERE workspace_id = $1 ORDER BY position, id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(uuid(workspace))
            .fetch_all(&mut *tx)
            .await?;
        let mut children: std::collections::HashMap<CollectionId, Vec<Collection>> =
            std::collections::HashMap::new();
        for row in &rows {
            let folder = collection_from_row(row)?;
            if let Some(parent) = folder.parent_id {
                children.entry(parent).or_default().push(folder);
            }
        }
        // Parents before children, so every copied folder's parent exists when it is written.
        let mut subtree = vec![original.clone()];
        let mut next = 0;
        while let Some(node) = subtree.get(next) {
            let below = children.remove(&node.id).unwrap_or_default();
            subtree.extend(below);
            next += 1;
        }
        let copies: std::collections::HashMap<CollectionId, CollectionId> = subtree
            .iter()
            .map(|c| (c.id, CollectionId::new()))
            .collect();
        let root = copies[&original.id];
        let mut siblings: Vec<Uuid> = sibling_collections(&mut tx, workspace, original.parent_id)
            .await?
            .into_iter()
            .map(uuid)
            .collect();
        let after = siblings
            .iter()
            .position(|s| *s == uuid(original.id))
            .map_or(siblings.len(), |at| at + 1);
        siblings.insert(after, uuid(root));
        for node in &subtree {
            let is_root = node.id == original.id;
            let copy = Collection {
                id: copies[&node.id],
                workspace_id: workspace,
                parent_id: if is_root {
                    original.parent_id
                } else {
                    node.parent_id.map(|p| copies[&p])
                },
                name: if is_root {
                    name.to_owned()
                } else {
                    node.name.clone()
                },
                position: if is_root { after as i64 } else { node.position },
                created_by: Some(actor),
                created_at: now,
                updated_at: now,
            };
            insert_collection_row(&mut tx, &copy)
                .await
                .map_err(on_foreign_key(Conflict::MissingReference("user")))?;
        }
        renumber(&mut tx, "collections", &siblings).await?;
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM requests WHERE workspace_id = $1 ORDER BY collection_id, position, id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(uuid(workspace))
            .fetch_all(&mut *tx)
            .await?;
        for row in &rows {
            let request = request_from_row(row)?;
            let Some(&into) = copies.get(&request.collection_id) else {
                continue;
            };
            let copy = SavedRequest {
                id: RequestId::new(),
                collection_id: into,
                created_by: Some(actor),
                created_at: now,
                updated_at: now,
                ..request
            };
            insert_request_row(&mut tx, &copy).await?;
        }
        let copy = collection_in(&mut tx, root).await?;
        tx.commit().await?;
        Ok(copy)
    }
}

// ---------------------------------------------------------------------------------------------
// Saved requests

const REQUEST_COLUMNS: &str = "id, workspace_id, collection_id, name, position, protocol, spec, created_by, created_at, updated_at";

fn request_from_row(row: &DbRow) -> Result<SavedRequest> {
    let spec: RequestSpec = json(row, "spec")?;
    let protocol: Protocol = parsed(row, "protocol")?;
    if spec.protocol() != protocol {
        return Err(corrupt("requests.protocol disagrees with requests.spec"));
    }
    Ok(SavedRequest {
        id: id(row, "id")?,
        workspace_id: id(row, "workspace_id")?,
        collection_id: id(row, "collection_id")?,
        name: row.try_get("name")?,
        position: row.try_get("position")?,
        spec,
        created_by: opt_id(row, "created_by")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

async fn request_in(tx: &mut Tx, request: RequestId) -> Result<SavedRequest> {
    let sql = format!("SELECT {REQUEST_COLUMNS} FROM requests WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(uuid(request))
        .fetch_one(&mut **tx)
        .await
        .map_err(not_found("request"))?;
    request_from_row(&row)
}

async fn sibling_requests(tx: &mut Tx, collection: CollectionId) -> Result<Vec<Uuid>> {
    let rows =
        sqlx::query("SELECT id FROM requests WHERE collection_id = $1 ORDER BY position, id")
            .bind(uuid(collection))
            .fetch_all(&mut **tx)
            .await?;
    rows.iter()
        .map(|row| Ok(row.try_get::<Uuid, _>("id")?))
        .collect()
}

/// The collection a request goes into must exist and be in the request's workspace.
async fn check_request_collection(
    tx: &mut Tx,
    collection: CollectionId,
    workspace: WorkspaceId,
) -> Result<()> {
    let target = collection_in(tx, collection).await.map_err(|e| match e {
        StoreError::NotFound(_) => Conflict::MissingReference("collection").into(),
        other => other,
    })?;
    if target.workspace_id != workspace {
        return Err(Conflict::OtherWorkspace("collection").into());
    }
    Ok(())
}

/// Writes one request row as given (position included).
async fn insert_request_row(tx: &mut Tx, request: &SavedRequest) -> Result<()> {
    sqlx::query(
        "INSERT INTO requests (id, workspace_id, collection_id, name, position, protocol, spec, created_by, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(uuid(request.id))
    .bind(uuid(request.workspace_id))
    .bind(uuid(request.collection_id))
    .bind(&request.name)
    .bind(request.position)
    .bind(request.spec.protocol().as_str())
    .bind(Json(&request.spec))
    .bind(opt_uuid(request.created_by))
    .bind(request.created_at.nanos())
    .bind(request.updated_at.nanos())
    .execute(&mut **tx)
    .await
    .map_err(on_unique(Conflict::Duplicate("request")))?;
    Ok(())
}

#[async_trait]
impl RequestStore for Repo {
    async fn insert_request(&self, request: &SavedRequest) -> Result<SavedRequest> {
        let mut tx = begin_write(self.writer()).await?;
        lock_workspace(&mut tx, request.workspace_id).await?;
        check_request_collection(&mut tx, request.collection_id, request.workspace_id).await?;
        let mut stored = request.clone();
        stored.position = sqlx::query_scalar::<_, i64>(
            "SELECT COALESCE(MAX(position) + 1, 0) FROM requests WHERE collection_id = $1",
        )
        .bind(uuid(request.collection_id))
        .fetch_one(&mut *tx)
        .await?;
        insert_request_row(&mut tx, &stored).await?;
        tx.commit().await?;
        Ok(stored)
    }

    async fn get_request(&self, request: RequestId) -> Result<SavedRequest> {
        let sql = format!("SELECT {REQUEST_COLUMNS} FROM requests WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(uuid(request))
            .fetch_one(self.reader())
            .await
            .map_err(not_found("request"))?;
        request_from_row(&row)
    }

    async fn list_requests(&self, collection: CollectionId) -> Result<Vec<SavedRequest>> {
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM requests WHERE collection_id = $1 ORDER BY position, id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(uuid(collection))
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(request_from_row).collect()
    }

    async fn list_workspace_requests(&self, workspace: WorkspaceId) -> Result<Vec<SavedRequest>> {
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM requests WHERE workspace_id = $1 ORDER BY collection_id, position, id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(uuid(workspace))
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(request_from_row).collect()
    }

    async fn update_request(
        &self,
        request: RequestId,
        name: &str,
        spec: &RequestSpec,
        now: Timestamp,
    ) -> Result<SavedRequest> {
        let mut tx = begin_write(self.writer()).await?;
        let done = sqlx::query("UPDATE requests SET name = $1, protocol = $2, spec = $3, updated_at = $4 WHERE id = $5")
            .bind(name)
            .bind(spec.protocol().as_str())
            .bind(Json(spec))
            .bind(now.nanos())
            .bind(uuid(request))
            .execute(&mut *tx)
            .await?;
        expect_one(done.rows_affected(), "request")?;
        let updated = request_in(&mut tx, request).await?;
        tx.commit().await?;
        Ok(updated)
    }

    async fn move_request(
        &self,
        request: RequestId,
        collection: CollectionId,
        position: Option<i64>,
        now: Timestamp,
    ) -> Result<SavedRequest> {
        let mut tx = begin_write(self.writer()).await?;
        let workspace = request_in(&mut tx, request).await?.workspace_id;
        lock_workspace(&mut tx, workspace).await?;
        // Read again under the lock: a concurrent move may have changed the collection meanwhile.
        let current = request_in(&mut tx, request).await?;
        check_request_collection(&mut tx, collection, current.workspace_id).await?;
        if current.collection_id != collection {
            let mut old = sibling_requests(&mut tx, current.collection_id).await?;
            old.retain(|r| *r != uuid(request));
            renumber(&mut tx, "requests", &old).await?;
        }
        let mut new = sibling_requests(&mut tx, collection).await?;
        new.retain(|r| *r != uuid(request));
        place(&mut new, uuid(request), position);
        sqlx::query("UPDATE requests SET collection_id = $1, updated_at = $2 WHERE id = $3")
            .bind(uuid(collection))
            .bind(now.nanos())
            .bind(uuid(request))
            .execute(&mut *tx)
            .await?;
        renumber(&mut tx, "requests", &new).await?;
        let moved = request_in(&mut tx, request).await?;
        tx.commit().await?;
        Ok(moved)
    }

    async fn delete_request(&self, request: RequestId) -> Result<()> {
        let done = sqlx::query("DELETE FROM requests WHERE id = $1")
            .bind(uuid(request))
            .execute(self.writer())
            .await
            .map_err(on_foreign_key(Conflict::InUse("request")))?;
        expect_one(done.rows_affected(), "request")
    }

    async fn duplicate_request(
        &self,
        request: RequestId,
        name: &str,
        now: Timestamp,
        actor: UserId,
    ) -> Result<SavedRequest> {
        let mut tx = begin_write(self.writer()).await?;
        let workspace = request_in(&mut tx, request).await?.workspace_id;
        lock_workspace(&mut tx, workspace).await?;
        // Read again under the lock: a concurrent move may have changed the collection meanwhile.
        let original = request_in(&mut tx, request).await?;
        let mut siblings = sibling_requests(&mut tx, original.collection_id).await?;
        let after = siblings
            .iter()
            .position(|r| *r == uuid(request))
            .map_or(siblings.len(), |at| at + 1);
        let copy = SavedRequest {
            id: RequestId::new(),
            name: name.to_owned(),
            position: after as i64,
            created_by: Some(actor),
            created_at: now,
            updated_at: now,
            ..original
        };
        siblings.insert(after, uuid(copy.id));
        insert_request_row(&mut tx, &copy).await?;
        renumber(&mut tx, "requests", &siblings).await?;
        let stored = request_in(&mut tx, copy.id).await?;
        tx.commit().await?;
        Ok(stored)
    }
}

// ---------------------------------------------------------------------------------------------
// Environments

const ENVIRONMENT_COLUMNS: &str = "id, workspace_id, name, variables, created_at, updated_at";

fn environment_from_row(row: &DbRow) -> Result<Environment> {
    Ok(Environment {
        id: id(row, "id")?,
        workspace_id: id(row, "workspace_id")?,
        name: row.try_get("name")?,
        variables: json(row, "variables")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

#[async_trait]
impl EnvironmentStore for Repo {
    async fn insert_environment(&self, environment: &Environment) -> Result<()> {
        sqlx::query(
            "INSERT INTO environments (id, workspace_id, name, variables, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(uuid(environment.id))
        .bind(uuid(environment.workspace_id))
        .bind(&environment.name)
        .bind(Json(&environment.variables))
        .bind(environment.created_at.nanos())
        .bind(environment.updated_at.nanos())
        .execute(self.writer())
        .await
        .map_err(on_foreign_key(Conflict::MissingReference("workspace")))?;
        Ok(())
    }

    async fn get_environment(&self, environment: EnvironmentId) -> Result<Environment> {
        let sql = format!("SELECT {ENVIRONMENT_COLUMNS} FROM environments WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(uuid(environment))
            .fetch_one(self.reader())
            .await
            .map_err(not_found("environment"))?;
        environment_from_row(&row)
    }

    async fn list_environments(&self, workspace: WorkspaceId) -> Result<Vec<Environment>> {
        let sql = format!(
            "SELECT {ENVIRONMENT_COLUMNS} FROM environments WHERE workspace_id = $1 ORDER BY name, id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(uuid(workspace))
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(environment_from_row).collect()
    }

    async fn update_environment(
        &self,
        environment: EnvironmentId,
        name: &str,
        variables: &[Variable],
        now: Timestamp,
    ) -> Result<Environment> {
        let done = sqlx::query(
            "UPDATE environments SET name = $1, variables = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(name)
        .bind(Json(variables))
        .bind(now.nanos())
        .bind(uuid(environment))
        .execute(self.writer())
        .await?;
        expect_one(done.rows_affected(), "environment")?;
        let sql = format!("SELECT {ENVIRONMENT_COLUMNS} FROM environments WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(uuid(environment))
            .fetch_one(self.writer())
            .await?;
        environment_from_row(&row)
    }

    async fn delete_environment(&self, environment: EnvironmentId) -> Result<()> {
        let done = sqlx::query("DELETE FROM environments WHERE id = $1")
            .bind(uuid(environment))
            .execute(self.writer())
            .await?;
        expect_one(done.rows_affected(), "environment")
    }
}

// ---------------------------------------------------------------------------------------------
// Executions

const EXECUTION_COLUMNS: &str = "id, workspace_id, request_id, protocol, method, target, endpoint, status_code, failed, \
     error_kind, error_message, started_at, duration_ns, ttfb_ns, dns_ns, connect_ns, tls_ns, request_size, \
     response_size, trace_id, span_id, source, created_by";

fn execution_from_row(row: &DbRow) -> Result<Execution> {
    let error_kind: Option<String> = row.try_get("error_kind")?;
    Ok(Execution {
        id: id(row, "id")?,
        workspace_id: id(row, "workspace_id")?,
        request_id: opt_id(row, "request_id")?,
        protocol: parsed(row, "protocol")?,
        method: row.try_get("method")?,
        target: row.try_get("target")?,
        endpoint: row.try_get("endpoint")?,
        status_code: row.try_get("status_code")?,
        failed: row.try_get("failed")?,
        error_kind: error_kind.map(|k| k.parse()).transpose().map_err(corrupt)?,
        error_message: row.try_get("error_message")?,
        started_at: ts(row, "started_at")?,
        duration_ns: row.try_get("duration_ns")?,
        ttfb_ns: row.try_get("ttfb_ns")?,
        dns_ns: row.try_get("dns_ns")?,
        connect_ns: row.try_get("connect_ns")?,
        tls_ns: row.try_get("tls_ns")?,
        request_size: row.try_get("request_size")?,
        response_size: row.try_get("response_size")?,
        trace_id: trace_id(row, "trace_id")?,
        span_id: span_id(row, "span_id")?,
        source: parsed(row, "source")?,
        created_by: opt_id(row, "created_by")?,
    })
}

/// The multi-row insert of executions that skips stored ids; `returning` asks for the new ids.
fn execution_insert(chunk: &[Execution], returning: bool) -> QueryBuilder<Db> {
    let mut query =
        QueryBuilder::<Db>::new(format!("INSERT INTO executions ({EXECUTION_COLUMNS}) "));
    query.push_values(chunk, |mut row, e| {
        row.push_bind(uuid(e.id))
            .push_bind(uuid(e.workspace_id))
            .push_bind(opt_uuid(e.request_id))
            .push_bind(e.protocol.as_str())
            .push_bind(e.method.clone())
            .push_bind(e.target.clone())
            .push_bind(e.endpoint.clone())
            .push_bind(e.status_code)
            .push_bind(e.failed)
            .push_bind(e.error_kind.map(|k| k.as_str()))
            .push_bind(e.error_message.clone())
            .push_bind(e.started_at.nanos())
            .push_bind(e.duration_ns)
            .push_bind(e.ttfb_ns)
            .push_bind(e.dns_ns)
            .push_bind(e.connect_ns)
            .push_bind(e.tls_ns)
            .push_bind(e.request_size)
            .push_bind(e.response_size)
            .push_bind(e.trace_id.as_bytes().to_vec())
            .push_bind(e.span_id.as_bytes().to_vec())
            .push_bind(e.source.as_str())
            .push_bind(opt_uuid(e.created_by));
    });
    query.push(" ON CONFLICT (id) DO NOTHING");
    if returning {
        query.push(" RETURNING id");
    }
    query
}

/// Inserts executions into an open transaction, skipping stored ids; returns how many were new.
async fn insert_execution_rows(tx: &mut Tx, executions: &[Execution]) -> Result<u64> {
    let mut inserted = 0;
    for chunk in executions.chunks(BATCH_ROWS) {
        inserted += execution_insert(chunk, false)
            .build()
            .execute(&mut **tx)
            .await
            .map_err(on_foreign_key(Conflict::MissingReference(
                "workspace, request or user",
            )))?
            .rows_affected();
    }
    Ok(inserted)
}

/// Inserts request/response snapshots into an open transaction, skipping stored ones.
async fn insert_detail_rows(tx: &mut Tx, details: &[ExecutionDetail]) -> Result<u64> {
    let mut inserted = 0;
    for chunk in details.chunks(BATCH_ROWS) {
        let mut query = QueryBuilder::<Db>::new(
            "INSERT INTO execution_details (execution_id, request, response) ",
        );
        query.push_values(chunk, |mut row, d| {
            row.push_bind(uuid(d.execution_id))
                .push_bind(Json(&d.request))
                .push_bind(Json(&d.response));
        });
        query.push(" ON CONFLICT (execution_id) DO NOTHING");
        inserted += query
            .build()
            .execute(&mut **tx)
            .await
            .map_err(on_foreign_key(Conflict::MissingReference("execution")))?
            .rows_affected();
    }
    Ok(inserted)
}

/// Inserts spans into an open transaction, skipping stored `(trace_id, span_id)`s; returns how
/// many were new. The database executes each statement while the next one is encoded.
async fn insert_span_rows(tx: &mut Tx, spans: &[Span]) -> Result<u64> {
    let mut chunks = spans.chunks(<Db as InsertSpanRows>::ROWS_PER_STATEMENT);
    let mut next = chunks
        .next()
        .map(|chunk| <Db as InsertSpanRows>::prepare(chunk, false));
    let mut inserted = 0;
    while let Some(current) = next.take() {
        let following = chunks.next();
        // `join` polls in order: the statement is sent before the encoding starts.
        let (done, prepared) = futures_util::future::join(
            <Db as InsertSpanRows>::execute_prepared(tx, current),
            async { following.map(|chunk| <Db as InsertSpanRows>::prepare(chunk, false)) },
        )
        .await;
        inserted += done.map_err(on_foreign_key(Conflict::MissingReference("workspace")))?;
        next = prepared;
    }
    Ok(inserted)
}

#[async_trait]
impl ExecutionStore for Repo {
    async fn insert_executions(&self, executions: &[Execution]) -> Result<u64> {
        if executions.is_empty() {
            return Ok(0);
        }
        // Only rows that are new here count in the analytics rollups. The common case (every
        // row new) is seen from the affected-row count; only a batch that repeats stored rows (a
        // retry) is written again, in a fresh transaction, asking which rows are new.
        let mut tx = begin_write(self.writer()).await?;
        let mut inserted = insert_execution_rows(&mut tx, executions).await?;
        let fresh: Vec<&Execution> = if inserted == executions.len() as u64 {
            executions.iter().collect()
        } else {
            tx.rollback().await?;
            tx = begin_write(self.writer()).await?;
            let mut fresh = Vec::new();
            for chunk in executions.chunks(BATCH_ROWS) {
                let stored = execution_insert(chunk, true)
                    .build()
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(on_foreign_key(Conflict::MissingReference(
                        "workspace, request or user",
                    )))?;
                let mut ids = stored
                    .iter()
                    .map(|row| row.try_get::<Uuid, _>("id"))
                    .collect::<std::result::Result<std::collections::HashSet<Uuid>, _>>(
                )?;
                // `remove`: an id repeated within the batch counts once.
                fresh.extend(chunk.iter().filter(|e| ids.remove(&uuid(e.id))));
            }
            inserted = fresh.len() as u64;
            fresh
        };
        super::analytics_sql::add_execution_rollups(&mut tx, &fresh).await?;
        tx.commit().await?;
        Ok(inserted)
    }

    async fn insert_execution_details(&self, details: &[ExecutionDetail]) -> Result<u64> {
        if details.is_empty() {
            return Ok(0);
        }
        let mut tx = begin_write(self.writer()).await?;
        let inserted = insert_detail_rows(&mut tx, details).await?;
        tx.commit().await?;
        Ok(inserted)
    }

    async fn insert_recorded(
        &self,
        executions: &[Execution],
        details: &[ExecutionDetail],
        spans: &[Span],
    ) -> Result<()> {
        // The recorder's common case, every row new: one transaction (one commit) for the whole
        // batch. When some rows were stored before (a retried batch), the rollups must count
        // only the new ones: undo, and let the three inserts find out which rows are new.
        let mut tx = begin_write(self.writer()).await?;
        let executions_new = insert_execution_rows(&mut tx, executions).await?;
        insert_detail_rows(&mut tx, details).await?;
        let spans_new = insert_span_rows(&mut tx, spans).await?;
        if executions_new == executions.len() as u64 && spans_new == spans.len() as u64 {
            let executions: Vec<&Execution> = executions.iter().collect();
            super::analytics_sql::add_execution_rollups(&mut tx, &executions).await?;
            let spans: Vec<&Span> = spans.iter().collect();
            super::analytics_sql::add_span_rollups(&mut tx, &spans).await?;
            tx.commit().await?;
            return Ok(());
        }
        tx.rollback().await?;
        self.insert_executions(executions).await?;
        self.insert_execution_details(details).await?;
        self.insert_spans(spans).await?;
        Ok(())
    }

    async fn get_execution(&self, execution: ExecutionId) -> Result<Execution> {
        let sql = format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(uuid(execution))
            .fetch_one(self.reader())
            .await
            .map_err(not_found("execution"))?;
        execution_from_row(&row)
    }

    async fn find_execution_detail(
        &self,
        execution: ExecutionId,
    ) -> Result<Option<ExecutionDetail>> {
        let row = sqlx::query(
            "SELECT execution_id, request, response FROM execution_details WHERE execution_id = $1",
        )
        .bind(uuid(execution))
        .fetch_optional(self.reader())
        .await?;
        row.map(|row| {
            Ok(ExecutionDetail {
                execution_id: id(&row, "execution_id")?,
                request: json(&row, "request")?,
                response: json(&row, "response")?,
            })
        })
        .transpose()
    }

    async fn list_executions(
        &self,
        workspace: WorkspaceId,
        filter: &ExecutionFilter,
    ) -> Result<Vec<Execution>> {
        let mut query = QueryBuilder::<Db>::new(format!(
            "SELECT {EXECUTION_COLUMNS} FROM executions WHERE workspace_id = "
        ));
        query.push_bind(uuid(workspace));
        if let Some(request) = filter.request_id {
            query.push(" AND request_id = ").push_bind(uuid(request));
        }
        if let Some(protocol) = filter.protocol {
            query.push(" AND protocol = ").push_bind(protocol.as_str());
        }
        if let Some(min) = filter.status_min {
            query.push(" AND status_code >= ").push_bind(min);
        }
        if let Some(max) = filter.status_max {
            query.push(" AND status_code <= ").push_bind(max);
        }
        if let Some(failed) = filter.failed {
            query.push(" AND failed = ").push_bind(failed);
        }
        if let Some(from) = filter.from {
            query.push(" AND started_at >= ").push_bind(from.nanos());
        }
        if let Some(to) = filter.to {
            query.push(" AND started_at < ").push_bind(to.nanos());
        }
        if let Some(cursor) = filter.before {
            query
                .push(" AND (started_at < ")
                .push_bind(cursor.started_at.nanos())
                .push(" OR (started_at = ")
                .push_bind(cursor.started_at.nanos())
                .push(" AND id < ")
                .push_bind(uuid(cursor.id))
                .push("))");
        }
        query
            .push(" ORDER BY started_at DESC, id DESC LIMIT ")
            .push_bind(i64::from(filter.limit.clamp(1, 1000)));
        let rows = query.build().fetch_all(self.reader()).await?;
        rows.iter().map(execution_from_row).collect()
    }

    async fn list_trace_executions(&self, trace: TraceId) -> Result<Vec<Execution>> {
        let sql = format!(
            "SELECT {EXECUTION_COLUMNS} FROM executions WHERE trace_id = $1 ORDER BY started_at, id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(trace.as_bytes().to_vec())
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(execution_from_row).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Spans

const SPAN_COLUMNS: &str = "trace_id, span_id, parent_span_id, workspace_id, name, service, kind, start_ns, end_ns, \
     status_code, status_message, attributes, events, links, resource_attributes, scope, trace_state, flags";

fn span_from_row(row: &DbRow) -> Result<Span> {
    let parent: Option<Vec<u8>> = row.try_get("parent_span_id")?;
    let flags: i64 = row.try_get("flags")?;
    Ok(Span {
        trace_id: trace_id(row, "trace_id")?,
        span_id: span_id(row, "span_id")?,
        parent_span_id: parent
            .map(|p| SpanId::from_slice(&p).ok_or_else(|| corrupt("parent_span_id: not a span id")))
            .transpose()?,
        workspace_id: opt_id(row, "workspace_id")?,
        name: row.try_get("name")?,
        service: row.try_get("service")?,
        kind: SpanKind::from_code(row.try_get("kind")?),
        start: ts(row, "start_ns")?,
        end: ts(row, "end_ns")?,
        status_code: StatusCode::from_code(row.try_get("status_code")?),
        status_message: row.try_get("status_message")?,
        attributes: json(row, "attributes")?,
        events: json::<Vec<SpanEvent>>(row, "events")?,
        links: json::<Vec<SpanLink>>(row, "links")?,
        resource_attributes: json(row, "resource_attributes")?,
        scope: json::<Scope>(row, "scope")?,
        trace_state: row.try_get("trace_state")?,
        flags: u32::try_from(flags).map_err(corrupt)?,
    })
}

/// What trace search needs of each span to find the root and the services.
#[derive(Debug, Clone)]
struct TraceSpanHead {
    span_id: SpanId,
    parent: Option<SpanId>,
    service: String,
    name: String,
    start: i64,
}

/// PostgreSQL's bulk span insert (a macro, so that the `RETURNING` variant is a literal too).
macro_rules! pg_span_insert {
    () => {
        "INSERT INTO spans (trace_id, span_id, parent_span_id, workspace_id, name, \
             service, kind, start_ns, end_ns, status_code, status_message, attributes, events, \
             links, resource_attributes, scope, trace_state, flags) \
             SELECT r.trace_id, r.span_id, r.parent_span_id, r.workspace_id, r.name, r.service, \
             r.kind, r.start_ns, r.end_ns, r.status_code, r.status_message, r.attributes, \
             d.events[r.events], d.links[r.links], d.resources[r.resources], d.scopes[r.scopes], \
             r.trace_state, r.flags \
             FROM (SELECT unnest($1::bytea[]) AS trace_id, unnest($2::bytea[]) AS span_id, \
             unnest($3::bytea[]) AS parent_span_id, unnest($4::uuid[]) AS workspace_id, \
             unnest($5::text[]) AS name, unnest($6::text[]) AS service, unnest($7::int4[]) AS kind, \
             unnest($8::int8[]) AS start_ns, unnest($9::int8[]) AS end_ns, \
             unnest($10::int4[]) AS status_code, unnest($11::text[]) AS status_message, \
             unnest($12::jsonb[]) AS attributes, unnest($13::int4[]) AS events, \
             unnest($14::int4[]) AS links, unnest($15::int4[]) AS resources, \
             unnest($16::int4[]) AS scopes, unnest($17::text[]) AS trace_state, \
             unnest($18::int8[]) AS flags) r, \
             (SELECT $19::jsonb[] AS events, $20::jsonb[] AS links, $21::jsonb[] AS resources, \
             $22::jsonb[] AS scopes) d \
             ON CONFLICT (trace_id, span_id) DO NOTHING"
    };
}

/// The bulk span insert in each dialect. This file is compiled once per backend, so both impls
/// exist in both compilations and `Db` picks the one that runs.
///
/// Span ingest (OTLP) is the hottest write path, hence:
/// - when a batch takes several statements, the next statement's parameters are encoded (JSON
///   serialization, array building) while the database executes the current one;
/// - values are bound by reference, never cloned;
/// - JSON that repeats from one span to the next — a batch's spans share their resource and
///   scope, and most have no events or links — is serialized (SQLite) or sent and parsed
///   (PostgreSQL) once per run instead of once per row;
/// - on PostgreSQL one `INSERT … SELECT unnest(…)` over array parameters replaces multi-row
///   `VALUES` with thousands of parameters, whose planning and expression set-up dominated; SQLite
///   has no arrays and multi-row `VALUES` is its fastest form.
#[async_trait]
trait InsertSpanRows: sqlx::Database {
    /// Rows per statement.
    const ROWS_PER_STATEMENT: usize;
    /// A statement with its parameters encoded.
    type Prepared: Send;

    /// `returning`: the statement answers the `(trace_id, span_id)` of the rows it stored.
    fn prepare(spans: &[Span], returning: bool) -> Self::Prepared;

    /// Inserts the rows (skipping keys that exist); returns how many were new.
    async fn execute_prepared(
        tx: &mut sqlx::Transaction<'static, Self>,
        prepared: Self::Prepared,
    ) -> std::result::Result<u64, sqlx::Error>;

    /// Like [`Self::execute_prepared`] for a statement prepared with `returning`: the new rows.
    async fn fetch_prepared(
        tx: &mut sqlx::Transaction<'static, Self>,
        prepared: Self::Prepared,
    ) -> std::result::Result<Vec<Self::Row>, sqlx::Error>;
}

#[async_trait]
impl InsertSpanRows for sqlx::Sqlite {
    /// SQLite allows 32 766 bound parameters (18 per row); several statements per batch also let
    /// encoding overlap execution (the statement runs on sqlx's SQLite thread).
    const ROWS_PER_STATEMENT: usize = BATCH_ROWS;
    type Prepared = QueryBuilder<sqlx::Sqlite>;

    fn prepare(spans: &[Span], returning: bool) -> Self::Prepared {
        let mut resources = RepeatedJson::default();
        let mut scopes = RepeatedJson::default();
        let mut events = RepeatedJson::default();
        let mut links = RepeatedJson::default();
        let mut query =
            QueryBuilder::<sqlx::Sqlite>::new(format!("INSERT INTO spans ({SPAN_COLUMNS}) "));
        query.push_values(spans, |mut row, s| {
            row.push_bind(&s.trace_id.as_bytes()[..])
                .push_bind(&s.span_id.as_bytes()[..])
                .push_bind(s.parent_span_id.as_ref().map(|p| &p.as_bytes()[..]))
                .push_bind(opt_uuid(s.workspace_id))
                .push_bind(s.name.as_str())
                .push_bind(s.service.as_str())
                .push_bind(s.kind.code())
                .push_bind(s.start.nanos())
                .push_bind(s.end.nanos())
                .push_bind(s.status_code.code())
                .push_bind(s.status_message.as_deref())
                .push_bind(Json(&s.attributes))
                .push_bind(events.text(&s.events))
                .push_bind(links.text(&s.links))
                .push_bind(resources.text(&s.resource_attributes))
                .push_bind(scopes.text(&s.scope))
                .push_bind(s.trace_state.as_deref())
                .push_bind(i64::from(s.flags));
        });
        query.push(" ON CONFLICT (trace_id, span_id) DO NOTHING");
        if returning {
            query.push(" RETURNING trace_id, span_id");
        }
        query
    }

    async fn execute_prepared(
        tx: &mut sqlx::Transaction<'static, Self>,
        mut prepared: Self::Prepared,
    ) -> std::result::Result<u64, sqlx::Error> {
        Ok(prepared.build().execute(&mut **tx).await?.rows_affected())
    }

    async fn fetch_prepared(
        tx: &mut sqlx::Transaction<'static, Self>,
        mut prepared: Self::Prepared,
    ) -> std::result::Result<Vec<Self::Row>, sqlx::Error> {
        prepared.build().fetch_all(&mut **tx).await
    }
}

#[async_trait]
impl InsertSpanRows for sqlx::Postgres {
    /// One statement per batch: measured faster than 1 024-row statements with overlapped encoding
    /// (each execution of this statement costs the server more than encoding it costs us). The
    /// bound keeps one message reasonable for very large batches.
    const ROWS_PER_STATEMENT: usize = 10_000;
    type Prepared = sqlx::query::Query<'static, sqlx::Postgres, sqlx::postgres::PgArguments>;

    fn prepare(spans: &[Span], returning: bool) -> Self::Prepared {
        let n = spans.len();
        let mut trace_ids = Vec::with_capacity(n);
        let mut span_ids = Vec::with_capacity(n);
        let mut parents = Vec::with_capacity(n);
        let mut workspaces = Vec::with_capacity(n);
        let mut names = Vec::with_capacity(n);
        let mut services = Vec::with_capacity(n);
        let mut kinds = Vec::with_capacity(n);
        let mut starts = Vec::with_capacity(n);
        let mut ends = Vec::with_capacity(n);
        let mut status_codes = Vec::with_capacity(n);
        let mut status_messages = Vec::with_capacity(n);
        let mut attributes = Vec::with_capacity(n);
        let mut events = RepeatedJson::default();
        let mut links = RepeatedJson::default();
        let mut resources = RepeatedJson::default();
        let mut scopes = RepeatedJson::default();
        let mut trace_states = Vec::with_capacity(n);
        let mut flags = Vec::with_capacity(n);
        for s in spans {
            trace_ids.push(&s.trace_id.as_bytes()[..]);
            span_ids.push(&s.span_id.as_bytes()[..]);
            parents.push(s.parent_span_id.as_ref().map(|p| &p.as_bytes()[..]));
            workspaces.push(opt_uuid(s.workspace_id));
            names.push(s.name.as_str());
            services.push(s.service.as_str());
            kinds.push(s.kind.code());
            starts.push(s.start.nanos());
            ends.push(s.end.nanos());
            status_codes.push(s.status_code.code());
            status_messages.push(s.status_message.as_deref());
            attributes.push(Json(&s.attributes));
            events.index(&s.events);
            links.index(&s.links);
            resources.index(&s.resource_attributes);
            scopes.index(&s.scope);
            trace_states.push(s.trace_state.as_deref());
            flags.push(i64::from(s.flags));
        }
        // Repeated JSON columns arrive as distinct values plus a 1-based index per row.
        let sql = if returning {
            concat!(pg_span_insert!(), " RETURNING trace_id, span_id")
        } else {
            pg_span_insert!()
        };
        sqlx::query(sql)
            .bind(trace_ids)
            .bind(span_ids)
            .bind(parents)
            .bind(workspaces)
            .bind(names)
            .bind(services)
            .bind(kinds)
            .bind(starts)
            .bind(ends)
            .bind(status_codes)
            .bind(status_messages)
            .bind(attributes)
            .bind(events.indexes)
            .bind(links.indexes)
            .bind(resources.indexes)
            .bind(scopes.indexes)
            .bind(trace_states)
            .bind(flags)
            .bind(events.distinct)
            .bind(links.distinct)
            .bind(resources.distinct)
            .bind(scopes.distinct)
    }

    async fn execute_prepared(
        tx: &mut sqlx::Transaction<'static, Self>,
        prepared: Self::Prepared,
    ) -> std::result::Result<u64, sqlx::Error> {
        Ok(prepared.execute(&mut **tx).await?.rows_affected())
    }

    async fn fetch_prepared(
        tx: &mut sqlx::Transaction<'static, Self>,
        prepared: Self::Prepared,
    ) -> std::result::Result<Vec<Self::Row>, sqlx::Error> {
        prepared.fetch_all(&mut **tx).await
    }
}

/// One JSON column's values where consecutive rows often repeat the same value.
struct RepeatedJson<'a, T> {
    /// Distinct consecutive values (PostgreSQL).
    distinct: Vec<Json<&'a T>>,
    /// Per row, the 1-based position of its value in `distinct` (PostgreSQL).
    indexes: Vec<i32>,
    /// The last value serialized and its text (SQLite).
    last_text: Option<(&'a T, std::sync::Arc<str>)>,
}

impl<T> Default for RepeatedJson<'_, T> {
    fn default() -> Self {
        Self {
            distinct: Vec::new(),
            indexes: Vec::new(),
            last_text: None,
        }
    }
}

impl<'a, T: PartialEq + serde::Serialize> RepeatedJson<'a, T> {
    fn index(&mut self, value: &'a T) {
        if self.distinct.last().is_none_or(|last| last.0 != value) {
            self.distinct.push(Json(value));
        }
        self.indexes
            .push(i32::try_from(self.distinct.len()).unwrap_or(i32::MAX));
    }

    /// The value as JSON text, serialized only when it differs from the previous row's.
    fn text(&mut self, value: &'a T) -> std::sync::Arc<str> {
        match &self.last_text {
            Some((last, text)) if *last == value => text.clone(),
            _ => {
                // Serializing plain data (maps, strings, numbers) into a string cannot fail.
                let text: std::sync::Arc<str> = serde_json::to_string(value)
                    .unwrap_or_else(|_| "null".to_owned())
                    .into();
                self.last_text = Some((value, text.clone()));
                text
            }
        }
    }
}

#[async_trait]
impl SpanStore for Repo {
    async fn insert_spans(&self, spans: &[Span]) -> Result<u64> {
        if spans.is_empty() {
            return Ok(0);
        }
        let mut tx = begin_write(self.writer()).await?;
        let inserted = insert_span_rows(&mut tx, spans).await?;
        // Only spans that are new here count in the analytics rollups. When some were stored
        // before (an exporter's retry), the batch is written again in a fresh transaction, asking
        // which rows are new: rare, so the common case pays nothing for it.
        let fresh: Vec<&Span> = if inserted == spans.len() as u64 {
            spans.iter().collect()
        } else {
            tx.rollback().await?;
            tx = begin_write(self.writer()).await?;
            let mut fresh = Vec::new();
            for chunk in spans.chunks(<Db as InsertSpanRows>::ROWS_PER_STATEMENT) {
                let stored = <Db as InsertSpanRows>::fetch_prepared(
                    &mut tx,
                    <Db as InsertSpanRows>::prepare(chunk, true),
                )
                .await
                .map_err(on_foreign_key(Conflict::MissingReference("workspace")))?;
                let mut keys = stored
                    .iter()
                    .map(|row| Ok((trace_id(row, "trace_id")?, span_id(row, "span_id")?)))
                    .collect::<Result<std::collections::HashSet<_>>>()?;
                // `remove`: a span repeated within the batch counts once.
                fresh.extend(
                    chunk
                        .iter()
                        .filter(|s| keys.remove(&(s.trace_id, s.span_id))),
                );
            }
            fresh
        };
        super::analytics_sql::add_span_rollups(&mut tx, &fresh).await?;
        tx.commit().await?;
        Ok(fresh.len() as u64)
    }

    async fn list_trace_spans(&self, trace: TraceId) -> Result<Vec<Span>> {
        let sql = format!(
            "SELECT {SPAN_COLUMNS} FROM spans WHERE trace_id = $1 ORDER BY start_ns, span_id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(trace.as_bytes().to_vec())
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(span_from_row).collect()
    }

    async fn list_service_spans(
        &self,
        service: &str,
        from: Timestamp,
        to: Timestamp,
        limit: u32,
    ) -> Result<Vec<Span>> {
        let sql = format!(
            "SELECT {SPAN_COLUMNS} FROM spans WHERE service = $1 AND start_ns >= $2 AND start_ns < $3
             ORDER BY start_ns DESC, span_id LIMIT $4"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(service)
            .bind(from.nanos())
            .bind(to.nanos())
            .bind(i64::from(limit.clamp(1, 10_000)))
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(span_from_row).collect()
    }

    async fn list_trace_workspaces(&self, trace: TraceId) -> Result<Vec<WorkspaceId>> {
        let rows = sqlx::query(
            "SELECT workspace_id FROM executions WHERE trace_id = $1
             UNION
             SELECT workspace_id FROM spans WHERE trace_id = $2 AND workspace_id IS NOT NULL",
        )
        .bind(trace.as_bytes().to_vec())
        .bind(trace.as_bytes().to_vec())
        .fetch_all(self.reader())
        .await?;
        let mut ids = rows
            .iter()
            .map(|row| id(row, "workspace_id"))
            .collect::<Result<Vec<WorkspaceId>>>()?;
        ids.sort();
        Ok(ids)
    }

    async fn search_traces(
        &self,
        workspace: WorkspaceId,
        filter: &TraceFilter,
    ) -> Result<Vec<TraceSummary>> {
        // The workspace's traces. A trace that starts at or after `from` has every span (and
        // PRISM's executions, which start with their client span) at or after `from` too, so the
        // lower bound also narrows this part; the upper bound cannot (later spans may follow).
        let mut query = QueryBuilder::<Db>::new(
            "WITH owned AS (SELECT trace_id FROM spans WHERE workspace_id = ",
        );
        query.push_bind(uuid(workspace));
        if let Some(from) = filter.from {
            query.push(" AND start_ns >= ").push_bind(from.nanos());
        }
        query
            .push(" UNION SELECT trace_id FROM executions WHERE workspace_id = ")
            .push_bind(uuid(workspace));
        if let Some(from) = filter.from {
            query.push(" AND started_at >= ").push_bind(from.nanos());
        }
        query.push(
            "), summary AS (
                SELECT trace_id, MIN(start_ns) AS started_ns, MAX(end_ns) AS ended_ns,
                       COUNT(*) AS span_count,
                       SUM(CASE WHEN status_code = ",
        );
        query.push(StatusCode::Error.code().to_string()).push(
            " THEN 1 ELSE 0 END) AS error_count
                FROM spans WHERE trace_id IN (SELECT trace_id FROM owned)
                GROUP BY trace_id)
             SELECT trace_id, started_ns, ended_ns - started_ns AS duration_ns, span_count,
                    error_count
             FROM summary WHERE 1 = 1",
        );
        if let Some(from) = filter.from {
            query.push(" AND started_ns >= ").push_bind(from.nanos());
        }
        if let Some(to) = filter.to {
            query.push(" AND started_ns < ").push_bind(to.nanos());
        }
        if let Some(min) = filter.min_duration_ns {
            query.push(" AND ended_ns - started_ns >= ").push_bind(min);
        }
        if let Some(max) = filter.max_duration_ns {
            query.push(" AND ended_ns - started_ns <= ").push_bind(max);
        }
        match filter.error {
            Some(true) => {
                query.push(" AND error_count > 0");
            }
            Some(false) => {
                query.push(" AND error_count = 0");
            }
            None => {}
        }
        if filter.service.is_some() || filter.operation.is_some() {
            query.push(
                " AND EXISTS (SELECT 1 FROM spans matching WHERE matching.trace_id = summary.trace_id",
            );
            if let Some(service) = &filter.service {
                query
                    .push(" AND matching.service = ")
                    .push_bind(service.clone());
            }
            if let Some(operation) = &filter.operation {
                query
                    .push(" AND matching.name = ")
                    .push_bind(operation.clone());
            }
            query.push(")");
        }
        query
            .push(" ORDER BY started_ns DESC, trace_id DESC LIMIT ")
            .push_bind(i64::from(filter.limit.clamp(1, 1000)));
        let rows = query.build().fetch_all(self.reader()).await?;
        let mut found = Vec::with_capacity(rows.len());
        for row in &rows {
            found.push(TraceSummary {
                trace_id: trace_id(row, "trace_id")?,
                root_service: String::new(),
                root_operation: String::new(),
                started_at: ts(row, "started_ns")?,
                duration_ns: row.try_get("duration_ns")?,
                span_count: row.try_get("span_count")?,
                error_count: row.try_get("error_count")?,
                services: Vec::new(),
            });
        }
        if found.is_empty() {
            return Ok(found);
        }

        // Root span and services of the traces found.
        let mut query = QueryBuilder::<Db>::new(
            "SELECT trace_id, span_id, parent_span_id, service, name, start_ns FROM spans
             WHERE trace_id IN (",
        );
        let mut ids = query.separated(", ");
        for summary in &found {
            ids.push_bind(summary.trace_id.as_bytes().to_vec());
        }
        query.push(")");
        let rows = query.build().fetch_all(self.reader()).await?;
        let mut spans: std::collections::HashMap<TraceId, Vec<TraceSpanHead>> = Default::default();
        for row in &rows {
            let parent: Option<Vec<u8>> = row.try_get("parent_span_id")?;
            spans
                .entry(trace_id(row, "trace_id")?)
                .or_default()
                .push(TraceSpanHead {
                    span_id: span_id(row, "span_id")?,
                    parent: parent.and_then(|p| SpanId::from_slice(&p)),
                    service: row.try_get("service")?,
                    name: row.try_get("name")?,
                    start: row.try_get("start_ns")?,
                });
        }
        for summary in &mut found {
            let heads = spans.remove(&summary.trace_id).unwrap_or_default();
            let stored: std::collections::HashSet<SpanId> =
                heads.iter().map(|h| h.span_id).collect();
            let earliest = |candidates: &mut dyn Iterator<Item = &TraceSpanHead>| {
                candidates.min_by_key(|h| (h.start, h.span_id)).cloned()
            };
            let root = earliest(
                &mut heads
                    .iter()
                    .filter(|h| h.parent.is_none_or(|p| !stored.contains(&p))),
            )
            .or_else(|| earliest(&mut heads.iter()));
            if let Some(root) = root {
                summary.root_service = root.service;
                summary.root_operation = root.name;
            }
            let services: std::collections::BTreeSet<String> =
                heads.into_iter().map(|h| h.service).collect();
            summary.services = services.into_iter().collect();
        }
        Ok(found)
    }

    async fn notify_spans(&self, traces: &[TraceId]) -> Result<()> {
        super::notify_spans(self, traces).await
    }

    fn subscribe_spans(&self) -> crate::SpanSubscription {
        super::subscribe_spans(self)
    }
}

// ---------------------------------------------------------------------------------------------
// Workflows

const WORKFLOW_COLUMNS: &str =
    "id, workspace_id, name, description, created_by, created_at, updated_at";
const STEP_COLUMNS: &str = "id, workflow_id, position, name, request_id, retry_count, retry_backoff_ms, timeout_ms, condition, extract, assertions";
const RUN_COLUMNS: &str = "id, workflow_id, workspace_id, status, trigger, triggered_by, created_at, started_at, ended_at, error";
const RUN_STEP_COLUMNS: &str = "id, run_id, step_id, position, status, attempts, execution_id, started_at, ended_at, error, outputs";

fn workflow_from_row(row: &DbRow) -> Result<Workflow> {
    Ok(Workflow {
        id: id(row, "id")?,
        workspace_id: id(row, "workspace_id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        created_by: opt_id(row, "created_by")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

fn step_from_row(row: &DbRow) -> Result<WorkflowStep> {
    Ok(WorkflowStep {
        id: id(row, "id")?,
        workflow_id: id(row, "workflow_id")?,
        position: row.try_get("position")?,
        name: row.try_get("name")?,
        request_id: id(row, "request_id")?,
        retry_count: row.try_get("retry_count")?,
        retry_backoff_ms: row.try_get("retry_backoff_ms")?,
        timeout_ms: row.try_get("timeout_ms")?,
        condition: row.try_get("condition")?,
        extract: json(row, "extract")?,
        assertions: json(row, "assertions")?,
    })
}

fn run_from_row(row: &DbRow) -> Result<WorkflowRun> {
    Ok(WorkflowRun {
        id: id(row, "id")?,
        workflow_id: id(row, "workflow_id")?,
        workspace_id: id(row, "workspace_id")?,
        status: parsed(row, "status")?,
        trigger: row.try_get("trigger")?,
        triggered_by: opt_id(row, "triggered_by")?,
        created_at: ts(row, "created_at")?,
        started_at: opt_ts(row, "started_at")?,
        ended_at: opt_ts(row, "ended_at")?,
        error: row.try_get("error")?,
    })
}

fn run_step_from_row(row: &DbRow) -> Result<WorkflowRunStep> {
    Ok(WorkflowRunStep {
        id: id(row, "id")?,
        run_id: id(row, "run_id")?,
        step_id: opt_id(row, "step_id")?,
        position: row.try_get("position")?,
        status: parsed(row, "status")?,
        attempts: row.try_get("attempts")?,
        execution_id: opt_id(row, "execution_id")?,
        started_at: opt_ts(row, "started_at")?,
        ended_at: opt_ts(row, "ended_at")?,
        error: row.try_get("error")?,
        outputs: json(row, "outputs")?,
    })
}

#[async_trait]
impl WorkflowStore for Repo {
    async fn insert_workflow(&self, workflow: &Workflow) -> Result<()> {
        sqlx::query(
            "INSERT INTO workflows (id, workspace_id, name, description, created_by, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(uuid(workflow.id))
        .bind(uuid(workflow.workspace_id))
        .bind(&workflow.name)
        .bind(&workflow.description)
        .bind(opt_uuid(workflow.created_by))
        .bind(workflow.created_at.nanos())
        .bind(workflow.updated_at.nanos())
        .execute(self.writer())
        .await
        .map_err(on_foreign_key(Conflict::MissingReference("workspace")))?;
        Ok(())
    }

    async fn get_workflow(&self, workflow: WorkflowId) -> Result<Workflow> {
        let sql = format!("SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(uuid(workflow))
            .fetch_one(self.reader())
            .await
            .map_err(not_found("workflow"))?;
        workflow_from_row(&row)
    }

    async fn list_workflows(&self, workspace: WorkspaceId) -> Result<Vec<Workflow>> {
        let sql = format!(
            "SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE workspace_id = $1 ORDER BY created_at DESC, id DESC"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(uuid(workspace))
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(workflow_from_row).collect()
    }

    async fn update_workflow(
        &self,
        workflow: WorkflowId,
        name: &str,
        description: Option<&str>,
        now: Timestamp,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE workflows SET name = $1, description = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(name)
        .bind(description)
        .bind(now.nanos())
        .bind(uuid(workflow))
        .execute(self.writer())
        .await?;
        expect_one(done.rows_affected(), "workflow")
    }

    async fn delete_workflow(&self, workflow: WorkflowId) -> Result<()> {
        let done = sqlx::query("DELETE FROM workflows WHERE id = $1")
            .bind(uuid(workflow))
            .execute(self.writer())
            .await?;
        expect_one(done.rows_affected(), "workflow")
    }

    async fn replace_workflow_steps(
        &self,
        workflow: WorkflowId,
        steps: &[WorkflowStep],
    ) -> Result<Vec<WorkflowStep>> {
        let mut tx = begin_write(self.writer()).await?;
        // Locked so that concurrent replacements take turns instead of colliding on positions.
        let sql =
            format!("SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE id = $1{FOR_NO_KEY_UPDATE}");
        let owner = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(uuid(workflow))
            .fetch_one(&mut *tx)
            .await
            .map_err(not_found("workflow"))?;
        let owner = workflow_from_row(&owner)?;
        for step in steps {
            let request = request_in(&mut tx, step.request_id)
                .await
                .map_err(|e| match e {
                    StoreError::NotFound(_) => Conflict::MissingReference("request").into(),
                    other => other,
                })?;
            if request.workspace_id != owner.workspace_id {
                return Err(Conflict::OtherWorkspace("request").into());
            }
        }
        sqlx::query("DELETE FROM workflow_steps WHERE workflow_id = $1")
            .bind(uuid(workflow))
            .execute(&mut *tx)
            .await?;
        let mut stored = Vec::with_capacity(steps.len());
        for (position, step) in steps.iter().enumerate() {
            let mut step = step.clone();
            step.workflow_id = workflow;
            step.position = position as i64;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO workflow_steps ({STEP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            )))
            .bind(uuid(step.id))
            .bind(uuid(step.workflow_id))
            .bind(step.position)
            .bind(&step.name)
            .bind(uuid(step.request_id))
            .bind(step.retry_count)
            .bind(step.retry_backoff_ms)
            .bind(step.timeout_ms)
            .bind(&step.condition)
            .bind(Json(&step.extract))
            .bind(Json(&step.assertions))
            .execute(&mut *tx)
            .await
            .map_err(on_unique(Conflict::Duplicate("workflow step")))?;
            stored.push(step);
        }
        tx.commit().await?;
        Ok(stored)
    }

    async fn list_workflow_steps(&self, workflow: WorkflowId) -> Result<Vec<WorkflowStep>> {
        let sql = format!(
            "SELECT {STEP_COLUMNS} FROM workflow_steps WHERE workflow_id = $1 ORDER BY position"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(uuid(workflow))
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(step_from_row).collect()
    }

    async fn insert_workflow_run(&self, run: &WorkflowRun) -> Result<()> {
        let sql = format!(
            "INSERT INTO workflow_runs ({RUN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(uuid(run.id))
            .bind(uuid(run.workflow_id))
            .bind(uuid(run.workspace_id))
            .bind(run.status.as_str())
            .bind(&run.trigger)
            .bind(opt_uuid(run.triggered_by))
            .bind(run.created_at.nanos())
            .bind(run.started_at.map(Timestamp::nanos))
            .bind(run.ended_at.map(Timestamp::nanos))
            .bind(&run.error)
            .execute(self.writer())
            .await
            .map_err(on_foreign_key(Conflict::MissingReference("workflow")))?;
        Ok(())
    }

    async fn get_workflow_run(&self, run: WorkflowRunId) -> Result<WorkflowRun> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM workflow_runs WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(uuid(run))
            .fetch_one(self.reader())
            .await
            .map_err(not_found("workflow run"))?;
        run_from_row(&row)
    }

    async fn list_workflow_runs(
        &self,
        workflow: WorkflowId,
        limit: u32,
    ) -> Result<Vec<WorkflowRun>> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM workflow_runs WHERE workflow_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(uuid(workflow))
            .bind(i64::from(limit.clamp(1, 1000)))
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(run_from_row).collect()
    }

    async fn update_workflow_run(&self, run: &WorkflowRun) -> Result<()> {
        let done = sqlx::query("UPDATE workflow_runs SET status = $1, started_at = $2, ended_at = $3, error = $4 WHERE id = $5")
            .bind(run.status.as_str())
            .bind(run.started_at.map(Timestamp::nanos))
            .bind(run.ended_at.map(Timestamp::nanos))
            .bind(&run.error)
            .bind(uuid(run.id))
            .execute(self.writer())
            .await?;
        expect_one(done.rows_affected(), "workflow run")
    }

    async fn fail_unfinished_runs(&self, reason: &str, now: Timestamp) -> Result<u64> {
        let mut tx = begin_write(self.writer()).await?;
        sqlx::query(
            "UPDATE workflow_run_steps SET status = 'failed', ended_at = $1, error = $2
             WHERE status IN ('pending', 'running')",
        )
        .bind(now.nanos())
        .bind(reason)
        .execute(&mut *tx)
        .await?;
        let done = sqlx::query(
            "UPDATE workflow_runs SET status = 'failed', ended_at = $1, error = $2
             WHERE status IN ('pending', 'running')",
        )
        .bind(now.nanos())
        .bind(reason)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    async fn insert_run_step(&self, step: &WorkflowRunStep) -> Result<()> {
        let sql = format!(
            "INSERT INTO workflow_run_steps ({RUN_STEP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(uuid(step.id))
            .bind(uuid(step.run_id))
            .bind(opt_uuid(step.step_id))
            .bind(step.position)
            .bind(step.status.as_str())
            .bind(step.attempts)
            .bind(opt_uuid(step.execution_id))
            .bind(step.started_at.map(Timestamp::nanos))
            .bind(step.ended_at.map(Timestamp::nanos))
            .bind(&step.error)
            .bind(Json(&step.outputs))
            .execute(self.writer())
            .await
            .map_err(on_foreign_key(Conflict::MissingReference(
                "workflow run or step",
            )))?;
        Ok(())
    }

    async fn update_run_step(&self, step: &WorkflowRunStep) -> Result<()> {
        let done = sqlx::query(
            "UPDATE workflow_run_steps SET status = $1, attempts = $2, execution_id = $3, started_at = $4,
             ended_at = $5, error = $6, outputs = $7 WHERE id = $8",
        )
        .bind(step.status.as_str())
        .bind(step.attempts)
        .bind(opt_uuid(step.execution_id))
        .bind(step.started_at.map(Timestamp::nanos))
        .bind(step.ended_at.map(Timestamp::nanos))
        .bind(&step.error)
        .bind(Json(&step.outputs))
        .bind(uuid(step.id))
        .execute(self.writer())
        .await?;
        expect_one(done.rows_affected(), "workflow run step")
    }

    async fn list_run_steps(&self, run: WorkflowRunId) -> Result<Vec<WorkflowRunStep>> {
        let sql = format!(
            "SELECT {RUN_STEP_COLUMNS} FROM workflow_run_steps WHERE run_id = $1 ORDER BY position, id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(uuid(run))
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(run_step_from_row).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Sessions and API tokens

const SESSION_COLUMNS: &str =
    "token_hash, user_id, csrf_hash, created_at, expires_at, last_seen_at, user_agent";
const TOKEN_COLUMNS: &str =
    "id, user_id, name, prefix, token_hash, created_at, last_used_at, expires_at, revoked_at";

fn session_from_row(row: &DbRow) -> Result<Session> {
    Ok(Session {
        token_hash: row.try_get("token_hash")?,
        user_id: id(row, "user_id")?,
        csrf_hash: row.try_get("csrf_hash")?,
        created_at: ts(row, "created_at")?,
        expires_at: ts(row, "expires_at")?,
        last_seen_at: ts(row, "last_seen_at")?,
        user_agent: row.try_get("user_agent")?,
    })
}

fn token_from_row(row: &DbRow) -> Result<ApiToken> {
    Ok(ApiToken {
        id: id(row, "id")?,
        user_id: id(row, "user_id")?,
        name: row.try_get("name")?,
        prefix: row.try_get("prefix")?,
        token_hash: row.try_get("token_hash")?,
        created_at: ts(row, "created_at")?,
        last_used_at: opt_ts(row, "last_used_at")?,
        expires_at: opt_ts(row, "expires_at")?,
        revoked_at: opt_ts(row, "revoked_at")?,
    })
}

/// Inserts a session on `conn` (a pooled connection or a transaction).
async fn insert_session_in(
    conn: &mut <Db as sqlx::Database>::Connection,
    session: &Session,
) -> Result<()> {
    let sql =
        format!("INSERT INTO sessions ({SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)");
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(&session.token_hash)
        .bind(uuid(session.user_id))
        .bind(&session.csrf_hash)
        .bind(session.created_at.nanos())
        .bind(session.expires_at.nanos())
        .bind(session.last_seen_at.nanos())
        .bind(&session.user_agent)
        .execute(conn)
        .await
        .map_err(|err| match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                Conflict::Duplicate("session").into()
            }
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                Conflict::MissingReference("user").into()
            }
            _ => StoreError::from(err),
        })?;
    Ok(())
}

#[async_trait]
impl SessionStore for Repo {
    async fn insert_session(&self, session: &Session) -> Result<()> {
        let mut conn = self.writer().acquire().await?;
        insert_session_in(&mut conn, session).await
    }

    async fn find_session(&self, token_hash: &[u8], now: Timestamp) -> Result<Option<Session>> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE token_hash = $1 AND expires_at > $2"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(token_hash)
            .bind(now.nanos())
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn touch_session(
        &self,
        token_hash: &[u8],
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE sessions SET last_seen_at = $1, expires_at = $2 WHERE token_hash = $3",
        )
        .bind(now.nanos())
        .bind(expires_at.nanos())
        .bind(token_hash)
        .execute(self.writer())
        .await?;
        expect_one(done.rows_affected(), "session")
    }

    async fn delete_session(&self, token_hash: &[u8]) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn delete_user_sessions(&self, user: UserId) -> Result<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(uuid(user))
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected())
    }

    async fn change_password(
        &self,
        user: UserId,
        password_hash: &str,
        now: Timestamp,
        replacement: Option<&Session>,
    ) -> Result<u64> {
        let mut tx = begin_write(self.writer()).await?;
        let updated =
            sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
                .bind(password_hash)
                .bind(now.nanos())
                .bind(uuid(user))
                .execute(&mut *tx)
                .await?;
        expect_one(updated.rows_affected(), "user")?;
        let ended = sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(uuid(user))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if let Some(session) = replacement {
            insert_session_in(&mut tx, session).await?;
        }
        tx.commit().await?;
        Ok(ended)
    }

    async fn delete_expired_sessions(&self, now: Timestamp) -> Result<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now.nanos())
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl ApiTokenStore for Repo {
    async fn insert_api_token(&self, token: &ApiToken) -> Result<()> {
        let sql = format!(
            "INSERT INTO api_tokens ({TOKEN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(uuid(token.id))
            .bind(uuid(token.user_id))
            .bind(&token.name)
            .bind(&token.prefix)
            .bind(&token.token_hash)
            .bind(token.created_at.nanos())
            .bind(token.last_used_at.map(Timestamp::nanos))
            .bind(token.expires_at.map(Timestamp::nanos))
            .bind(token.revoked_at.map(Timestamp::nanos))
            .execute(self.writer())
            .await
            .map_err(|err| match &err {
                sqlx::Error::Database(db) if db.is_unique_violation() => {
                    Conflict::Duplicate("api token").into()
                }
                sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                    Conflict::MissingReference("user").into()
                }
                _ => StoreError::from(err),
            })?;
        Ok(())
    }

    async fn find_active_api_token(
        &self,
        token_hash: &[u8],
        now: Timestamp,
    ) -> Result<Option<ApiToken>> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL
             AND (expires_at IS NULL OR expires_at > $2)"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(token_hash)
            .bind(now.nanos())
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(token_from_row).transpose()
    }

    async fn list_api_tokens(&self, user: UserId) -> Result<Vec<ApiToken>> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE user_id = $1 ORDER BY created_at DESC, id DESC"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(uuid(user))
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(token_from_row).collect()
    }

    async fn revoke_api_token(
        &self,
        user: UserId,
        token: ApiTokenId,
        now: Timestamp,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 AND user_id = $3",
        )
        .bind(now.nanos())
        .bind(uuid(token))
        .bind(uuid(user))
        .execute(self.writer())
        .await?;
        expect_one(done.rows_affected(), "api token")
    }

    async fn touch_api_token(&self, token: ApiTokenId, now: Timestamp) -> Result<()> {
        let done = sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(now.nanos())
            .bind(uuid(token))
            .execute(self.writer())
            .await?;
        expect_one(done.rows_affected(), "api token")
    }
}

// ---------------------------------------------------------------------------------------------

#[async_trait]
impl Store for Repo {
    fn backend(&self) -> Backend {
        BACKEND
    }

    fn pool_stats(&self) -> crate::PoolStats {
        Repo::pool_stats(self)
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(self.reader()).await?;
        Ok(())
    }

    async fn schema_version(&self) -> Result<i64> {
        let version: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM prism_migrations")
            .fetch_one(self.reader())
            .await?;
        Ok(version.unwrap_or(0))
    }

    async fn close(&self) {
        self.close_pools().await;
    }
}

const INGEST_KEY_COLUMNS: &str =
    "id, workspace_id, name, prefix, key_hash, created_by, created_at, last_used_at, revoked_at";

fn ingest_key_from_row(row: &DbRow) -> Result<IngestKey> {
    Ok(IngestKey {
        id: id(row, "id")?,
        workspace_id: id(row, "workspace_id")?,
        name: row.try_get("name")?,
        prefix: row.try_get("prefix")?,
        key_hash: row.try_get("key_hash")?,
        created_by: opt_id(row, "created_by")?,
        created_at: ts(row, "created_at")?,
        last_used_at: opt_ts(row, "last_used_at")?,
        revoked_at: opt_ts(row, "revoked_at")?,
    })
}

#[async_trait]
impl IngestKeyStore for Repo {
    async fn insert_ingest_key(&self, key: &IngestKey) -> Result<()> {
        let sql = format!(
            "INSERT INTO ingest_keys ({INGEST_KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(uuid(key.id))
            .bind(uuid(key.workspace_id))
            .bind(&key.name)
            .bind(&key.prefix)
            .bind(&key.key_hash)
            .bind(key.created_by.map(uuid))
            .bind(key.created_at.nanos())
            .bind(key.last_used_at.map(Timestamp::nanos))
            .bind(key.revoked_at.map(Timestamp::nanos))
            .execute(self.writer())
            .await
            .map_err(|err| match &err {
                sqlx::Error::Database(db) if db.is_unique_violation() => {
                    Conflict::Duplicate("ingest key").into()
                }
                sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                    Conflict::MissingReference("workspace or user").into()
                }
                _ => StoreError::from(err),
            })?;
        Ok(())
    }

    async fn find_active_ingest_key(&self, key_hash: &[u8]) -> Result<Option<IngestKey>> {
        let sql = format!(
            "SELECT {INGEST_KEY_COLUMNS} FROM ingest_keys WHERE key_hash = $1 AND revoked_at IS NULL"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(key_hash)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(ingest_key_from_row).transpose()
    }

    async fn list_ingest_keys(&self, workspace: WorkspaceId) -> Result<Vec<IngestKey>> {
        let sql = format!(
            "SELECT {INGEST_KEY_COLUMNS} FROM ingest_keys WHERE workspace_id = $1
             ORDER BY created_at DESC, id DESC"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(uuid(workspace))
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(ingest_key_from_row).collect()
    }

    async fn revoke_ingest_key(
        &self,
        workspace: WorkspaceId,
        key: IngestKeyId,
        now: Timestamp,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE ingest_keys SET revoked_at = COALESCE(revoked_at, $1)
             WHERE id = $2 AND workspace_id = $3",
        )
        .bind(now.nanos())
        .bind(uuid(key))
        .bind(uuid(workspace))
        .execute(self.writer())
        .await?;
        expect_one(done.rows_affected(), "ingest key")
    }

    async fn touch_ingest_key(&self, key: IngestKeyId, now: Timestamp) -> Result<()> {
        let done = sqlx::query("UPDATE ingest_keys SET last_used_at = $1 WHERE id = $2")
            .bind(now.nanos())
            .bind(uuid(key))
            .execute(self.writer())
            .await?;
        expect_one(done.rows_affected(), "ingest key")
    }
}
