//! The PostgreSQL backend: one connection pool shared by readers and writers. Used by split
//! deployments (`prism soul`, several `prism intercept`) and available to `prism up`.

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Pool, Transaction};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use prism_domain::trace::TraceId;
use sqlx::postgres::PgListener;
use tokio::sync::{broadcast, watch};

use crate::feed::{FeedEvent, PG_CHANNEL, SpanSubscription};
use crate::{Backend, Result, StoreOptions};

pub(crate) type Db = sqlx::Postgres;
pub(crate) type Repo = PgStore;
pub(crate) const BACKEND: Backend = Backend::Postgres;
pub(crate) const FOR_UPDATE: &str = " FOR UPDATE";
/// Locks a row against concurrent writers without blocking inserts that reference it.
pub(crate) const FOR_NO_KEY_UPDATE: &str = " FOR NO KEY UPDATE";

#[path = "sql.rs"]
mod sql;

#[path = "analytics_sql.rs"]
mod analytics_sql;

/// Analytics aggregates: the sum of rollup durations as a float (never overflows) and the
/// concatenation of rollup histograms in hex.
pub(crate) const SUM_DURATIONS: &str = "CAST(SUM(duration_sum) AS DOUBLE PRECISION)";
pub(crate) const CONCAT_HISTOGRAMS: &str = "string_agg(encode(histogram, 'hex'), '')";

/// Advisory lock keys ("PRISM" in ASCII, plus a number) used to serialize work across processes.
const MIGRATION_LOCK: i64 = 0x5052_4953_4d01;
const USER_CREATION_LOCK: i64 = 0x5052_4953_4d02;

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: Pool<Db>,
    feed: Arc<PgFeed>,
}

/// The process's side of `LISTEN prism_spans`: one listener connection, started by the first
/// subscriber, fanned out to every subscriber through a broadcast channel.
#[derive(Debug)]
struct PgFeed {
    tx: broadcast::Sender<FeedEvent>,
    started: AtomicBool,
    /// Set when the store closes; stops the listener (and releases its connection).
    stop: watch::Sender<bool>,
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
        let (stop, _) = watch::channel(false);
        Ok(Self {
            pool,
            feed: Arc::new(PgFeed {
                tx: crate::feed::channel(),
                started: AtomicBool::new(false),
                stop,
            }),
        })
    }

    pub(crate) fn pool_stats(&self) -> crate::PoolStats {
        let idle = u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX);
        crate::PoolStats {
            in_use: self.pool.size().saturating_sub(idle),
            idle,
            max: self.pool.options().get_max_connections(),
        }
    }

    pub(crate) fn reader(&self) -> &Pool<Db> {
        &self.pool
    }

    pub(crate) fn writer(&self) -> &Pool<Db> {
        &self.pool
    }

    pub(crate) async fn close_pools(&self) {
        let _ = self.feed.stop.send(true);
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

/// `NOTIFY prism_spans` once per trace (payload: the trace id in hex), in one statement.
pub(crate) async fn notify_spans(store: &PgStore, traces: &[TraceId]) -> Result<()> {
    let hex: Vec<String> = crate::feed::distinct_traces(traces.iter().copied())
        .iter()
        .map(TraceId::to_hex)
        .collect();
    if hex.is_empty() {
        return Ok(());
    }
    sqlx::query("SELECT pg_notify($1, t) FROM unnest($2::text[]) AS t")
        .bind(PG_CHANNEL)
        .bind(&hex)
        .execute(&store.pool)
        .await?;
    Ok(())
}

pub(crate) fn subscribe_spans(store: &PgStore) -> SpanSubscription {
    let receiver = store.feed.tx.subscribe();
    if !store.feed.started.swap(true, Ordering::AcqRel) {
        tokio::spawn(listen(
            store.pool.clone(),
            store.feed.tx.clone(),
            store.feed.stop.subscribe(),
        ));
    }
    receiver
}

/// Keeps a `LISTEN` connection open until the store closes, reconnecting with backoff. Every
/// (re)connection is announced as [`FeedEvent::Resync`]: notifications sent while it was down
/// are gone, so subscribers re-read.
async fn listen(pool: Pool<Db>, tx: broadcast::Sender<FeedEvent>, mut stop: watch::Receiver<bool>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let connected = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(PG_CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let outcome = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            outcome = connected => outcome,
        };
        match outcome {
            Ok(mut listener) => {
                backoff = Duration::from_millis(100);
                let _ = tx.send(FeedEvent::Resync);
                loop {
                    let next = tokio::select! {
                        _ = stop.wait_for(|s| *s) => return,
                        next = listener.try_recv() => next,
                    };
                    match next {
                        Ok(Some(notification)) => {
                            if let Ok(trace) = notification.payload().parse() {
                                let _ = tx.send(FeedEvent::Stored(trace));
                            }
                        }
                        // The connection dropped: anything sent meanwhile is lost.
                        Ok(None) => {
                            let _ = tx.send(FeedEvent::Resync);
                        }
                        Err(err) => {
                            tracing::warn!(error = %err, "span notifications interrupted; reconnecting");
                            break;
                        }
                    }
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, retry_in_ms = backoff.as_millis() as u64,
                    "could not listen for span notifications");
            }
        }
        if pool.is_closed() {
            return;
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Serializes rollup updates of the same workspaces until the transaction ends: rollup rows are
/// read, merged and written back, which concurrent writers must not interleave. `keys` are sorted,
/// so two transactions always take them in the same order.
pub(crate) async fn lock_rollups(
    conn: &mut sqlx::PgConnection,
    class: i32,
    keys: &[i32],
) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, k) FROM unnest($2::int4[]) AS k")
        .bind(class)
        .bind(keys)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
