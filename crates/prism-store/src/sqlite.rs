//! The SQLite backend: an embedded database file in WAL mode with one writer connection and a pool
//! of readers. Used by `prism up`.

use std::str::FromStr;
use std::time::{Duration, Instant};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, Transaction};

use prism_domain::trace::TraceId;
use tokio::sync::broadcast;

use crate::feed::{FeedEvent, SpanSubscription};
use crate::{Backend, Result, StoreOptions};

pub(crate) type Db = sqlx::Sqlite;
pub(crate) type Repo = SqliteStore;
pub(crate) const BACKEND: Backend = Backend::Sqlite;
/// SQLite has no row locks; its write transactions are exclusive (`BEGIN IMMEDIATE`).
pub(crate) const FOR_UPDATE: &str = "";
pub(crate) const FOR_NO_KEY_UPDATE: &str = "";

#[path = "sql.rs"]
mod sql;

#[path = "analytics_sql.rs"]
mod analytics_sql;

/// Analytics aggregates: the sum of rollup durations as a float (never overflows) and the
/// concatenation of rollup histograms in hex.
pub(crate) const SUM_DURATIONS: &str = "TOTAL(duration_sum)";
pub(crate) const CONCAT_HISTOGRAMS: &str = "group_concat(hex(histogram), '')";

/// Every write goes through one connection, so writers never race for SQLite's lock inside this
/// process; other processes (`prism user add` beside a running server) wait on `busy_timeout`.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: Pool<Db>,
    reader: Pool<Db>,
    /// One process owns the file, so span announcements stay in process.
    feed: broadcast::Sender<FeedEvent>,
}

impl SqliteStore {
    pub async fn open(url: &str, options: &StoreOptions) -> Result<Self> {
        let base = SqliteConnectOptions::from_str(url)
            .map_err(|e| crate::StoreError::Unavailable(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true)
            // Large write batches: keep their pages and the statement journal in memory instead
            // of spilling mid-transaction (16 MiB page cache per connection).
            .pragma("cache_size", "-16384")
            .pragma("temp_store", "memory");
        let writer = connect(
            SqlitePoolOptions::new()
                .max_connections(1)
                .acquire_timeout(options.connect_timeout),
            base.clone(),
            options.connect_timeout,
        )
        .await?;
        sql::migrate(&writer, options.migrate).await?;
        // An in-memory database exists once per connection: readers must share the writer.
        let reader = if url.contains(":memory:") {
            writer.clone()
        } else {
            connect(
                SqlitePoolOptions::new()
                    .max_connections(options.max_connections.max(1))
                    .acquire_timeout(options.connect_timeout),
                base.read_only(true),
                options.connect_timeout,
            )
            .await?
        };
        Ok(Self {
            writer,
            reader,
            feed: crate::feed::channel(),
        })
    }

    /// The writer and the readers together (one pool when the database is in memory).
    pub(crate) fn pool_stats(&self) -> crate::PoolStats {
        let mut pools = vec![&self.writer];
        if !self.reader.is_closed() && self.reader.options().get_max_connections() > 1 {
            pools.push(&self.reader);
        }
        let mut stats = crate::PoolStats::default();
        for pool in pools {
            let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX);
            stats.idle += idle;
            stats.in_use += pool.size().saturating_sub(idle);
            stats.max += pool.options().get_max_connections();
        }
        stats
    }

    pub(crate) fn reader(&self) -> &Pool<Db> {
        &self.reader
    }

    pub(crate) fn writer(&self) -> &Pool<Db> {
        &self.writer
    }

    pub(crate) async fn close_pools(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// Opens a pool, retrying while the database file is busy for a reason `busy_timeout` does not cover:
/// turning a new file into WAL mode needs an exclusive lock that SQLite will not wait for, so two
/// processes opening a fresh database at the same moment would otherwise see "database is locked".
async fn connect(
    pool: SqlitePoolOptions,
    connect: SqliteConnectOptions,
    timeout: Duration,
) -> Result<Pool<Db>> {
    let deadline = Instant::now() + timeout;
    loop {
        match pool.clone().connect_with(connect.clone()).await {
            Err(sqlx::Error::Database(err)) if is_busy(&*err) && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            result => return Ok(result?),
        }
    }
}

/// `SQLITE_BUSY` or one of its extended codes.
fn is_busy(err: &dyn sqlx::error::DatabaseError) -> bool {
    err.code()
        .and_then(|code| code.parse::<i32>().ok())
        .is_some_and(|code| code & 0xff == 5)
}

/// A write transaction that takes SQLite's write lock up front, so it can never fail half-way on
/// a lock upgrade.
pub(crate) const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

pub(crate) async fn begin_write(pool: &Pool<Db>) -> Result<Transaction<'static, Db>> {
    Ok(pool.begin_with(BEGIN_WRITE).await?)
}

/// Serializes "is this the first user?" decisions. The immediate transaction already does.
pub(crate) async fn lock_user_creation(_tx: &mut Transaction<'static, Db>) -> Result<()> {
    Ok(())
}

pub(crate) fn migration_sql(m: &crate::Migration) -> &'static str {
    m.sqlite
}

/// Each migration runs in a `BEGIN IMMEDIATE` transaction that re-reads the applied versions, which
/// already serializes processes migrating the same file.
pub(crate) async fn lock_migrations(_conn: &mut sqlx::SqliteConnection) -> Result<()> {
    Ok(())
}

pub(crate) async fn unlock_migrations(_conn: &mut sqlx::SqliteConnection) -> Result<()> {
    Ok(())
}

/// Announces stored spans to this process's subscribers (nobody else can open the file while
/// `prism up` serves it, so in-process is everywhere).
pub(crate) async fn notify_spans(store: &SqliteStore, traces: &[TraceId]) -> Result<()> {
    for trace in crate::feed::distinct_traces(traces.iter().copied()) {
        // No subscribers is not an error.
        let _ = store.feed.send(FeedEvent::Stored(trace));
    }
    Ok(())
}

pub(crate) fn subscribe_spans(store: &SqliteStore) -> SpanSubscription {
    store.feed.subscribe()
}

/// The one writer connection already serializes rollup updates.
pub(crate) async fn lock_rollups(
    _conn: &mut sqlx::SqliteConnection,
    _class: i32,
    _keys: &[i32],
) -> Result<()> {
    Ok(())
}
