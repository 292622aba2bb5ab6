//! The analytics SQL shared by both backends (compiled once per backend, like `sql.rs`): writing
//! rollups inside the ingest transactions, and answering [`AnalyticsStore`] from them.
//! The design is described in `analytics.rs`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr;

use async_trait::async_trait;
use futures_util::TryStreamExt;
use prism_domain::analytics::{Granularity, LatencyHistogram, LatencyStats, cover, floor_to};
use prism_domain::execution::Execution;
use prism_domain::request::Protocol;
use prism_domain::trace::Span;
use prism_domain::{Timestamp, WorkspaceId};
use sqlx::{QueryBuilder, Row};
use uuid::Uuid;

use super::{Db, Repo};
use crate::analytics::{
    AnalyticsQuery, AnalyticsStore, EndpointKey, ExecutionAnalytics, ExecutionKey,
    ServiceAnalytics, SpanKey, coarsest_for, execution_rollups, span_rollups, workspace_lock_key,
};
use crate::{Result, StoreError};

type Conn = <Db as sqlx::Database>::Connection;
type DbRow = <Db as sqlx::Database>::Row;

/// Rollup rows per statement: 13 parameters each stays far below SQLite's 32 766.
const ROLLUP_ROWS: usize = 500;

/// Advisory-lock classes ("PRex", "PRsp"): execution and span ingest do not wait for each other.
const EXECUTION_ROLLUP_LOCK: i32 = 0x5052_6578;
const SPAN_ROLLUP_LOCK: i32 = 0x5052_7370;

fn stats_from_row(row: &DbRow, count: &str, failures: &str) -> Result<LatencyStats> {
    let histogram: Vec<u8> = row.try_get("histogram")?;
    Ok(LatencyStats {
        count: u64::try_from(row.try_get::<i64, _>(count)?).unwrap_or(0),
        failures: u64::try_from(row.try_get::<i64, _>(failures)?).unwrap_or(0),
        sum_ns: row.try_get("duration_sum")?,
        max_ns: row.try_get("duration_max")?,
        histogram: LatencyHistogram::decode(&histogram)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
    })
}

fn clamp_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The distinct buckets a batch touches, per workspace and granularity.
fn buckets_of(
    keys: impl Iterator<Item = (Uuid, i64, i64)>,
) -> BTreeMap<(Uuid, i64), BTreeSet<i64>> {
    let mut out: BTreeMap<(Uuid, i64), BTreeSet<i64>> = BTreeMap::new();
    for (workspace, granularity, start) in keys {
        out.entry((workspace, granularity))
            .or_default()
            .insert(start);
    }
    out
}

/// SQLite's read of stored rollup rows: prefix lookups with `IN` lists of bucket starts.
async fn fetch_buckets_in_lists(
    conn: &mut sqlx::SqliteConnection,
    select: &str,
    buckets: &BTreeMap<(Uuid, i64), BTreeSet<i64>>,
) -> Result<Vec<sqlx::sqlite::SqliteRow>> {
    // One statement for all granularities (a `UNION ALL` of prefix lookups), in parts of at
    // most `ROLLUP_ROWS` buckets.
    let mut parts: Vec<Vec<(Uuid, i64, Vec<i64>)>> = vec![Vec::new()];
    let mut in_part = 0;
    for ((workspace, granularity), starts) in buckets {
        let starts: Vec<i64> = starts.iter().copied().collect();
        for piece in starts.chunks(ROLLUP_ROWS) {
            if in_part + piece.len() > ROLLUP_ROWS {
                parts.push(Vec::new());
                in_part = 0;
            }
            in_part += piece.len();
            if let Some(part) = parts.last_mut() {
                part.push((*workspace, *granularity, piece.to_vec()));
            }
        }
    }
    let mut rows = Vec::new();
    for part in parts.iter().filter(|p| !p.is_empty()) {
        let mut query = QueryBuilder::<sqlx::Sqlite>::new("");
        for (i, (workspace, granularity, starts)) in part.iter().enumerate() {
            if i > 0 {
                query.push(" UNION ALL ");
            }
            query
                .push(select)
                .push(" WHERE workspace_id = ")
                .push_bind(*workspace)
                .push(" AND granularity = ")
                .push_bind(*granularity)
                .push(" AND bucket_start IN (");
            let mut list = query.separated(", ");
            for start in starts {
                list.push_bind(*start);
            }
            query.push(")");
        }
        rows.extend(query.build().fetch_all(&mut *conn).await?);
    }
    Ok(rows)
}

/// Every stored rollup row of the given buckets, by primary-key prefix lookups (a row-value
/// `IN (VALUES …)` over the whole key was planned as a scan on PostgreSQL). Rows of other keys in
/// those buckets are read too and skipped by the caller; a batch of a few seconds touches few
/// buckets.
async fn fetch_buckets(
    conn: &mut Conn,
    select: &str,
    buckets: &BTreeMap<(Uuid, i64), BTreeSet<i64>>,
) -> Result<Vec<DbRow>> {
    <Db as ReadRollups>::fetch(conn, select, buckets).await
}

/// Reading stored rollup rows of some buckets, per dialect: `IN` lists on SQLite; on PostgreSQL a
/// join with the bucket keys as arrays, which its planner serves with primary-key lookups whatever
/// its statistics say.
#[async_trait]
trait ReadRollups: sqlx::Database {
    async fn fetch(
        conn: &mut <Self as sqlx::Database>::Connection,
        select: &str,
        buckets: &BTreeMap<(Uuid, i64), BTreeSet<i64>>,
    ) -> Result<Vec<<Self as sqlx::Database>::Row>>;
}

#[async_trait]
impl ReadRollups for sqlx::Sqlite {
    async fn fetch(
        conn: &mut sqlx::SqliteConnection,
        select: &str,
        buckets: &BTreeMap<(Uuid, i64), BTreeSet<i64>>,
    ) -> Result<Vec<sqlx::sqlite::SqliteRow>> {
        fetch_buckets_in_lists(conn, select, buckets).await
    }
}

#[async_trait]
impl ReadRollups for sqlx::Postgres {
    async fn fetch(
        conn: &mut sqlx::PgConnection,
        select: &str,
        buckets: &BTreeMap<(Uuid, i64), BTreeSet<i64>>,
    ) -> Result<Vec<sqlx::postgres::PgRow>> {
        let mut workspaces = Vec::new();
        let mut granularities = Vec::new();
        let mut starts = Vec::new();
        for ((workspace, granularity), bucket_starts) in buckets {
            for start in bucket_starts {
                workspaces.push(*workspace);
                granularities.push(*granularity);
                starts.push(*start);
            }
        }
        let sql = format!(
            "{select} r JOIN unnest($1::uuid[], $2::int8[], $3::int8[]) AS k(w, g, b) \
             ON r.workspace_id = k.w AND r.granularity = k.g AND r.bucket_start = k.b"
        );
        Ok(sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(workspaces)
            .bind(granularities)
            .bind(starts)
            .fetch_all(&mut *conn)
            .await?)
    }
}

/// Serializes rollup writers of the same workspaces (PostgreSQL; SQLite has one writer).
async fn lock_workspaces(conn: &mut Conn, class: i32, workspaces: BTreeSet<Uuid>) -> Result<()> {
    let mut keys: Vec<i32> = workspaces.into_iter().map(workspace_lock_key).collect();
    keys.sort_unstable();
    keys.dedup();
    super::lock_rollups(conn, class, &keys).await
}

/// Adds newly stored executions to their rollup rows (inside the transaction that stored them).
pub(crate) async fn add_execution_rollups(
    conn: &mut Conn,
    executions: &[&Execution],
) -> Result<()> {
    write_execution_rollups(conn, executions, Stored::Maybe).await
}

/// Whether rollup rows of a batch's buckets may already be stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stored {
    Maybe,
    /// The backfill fills empty tables one whole UTC day at a time, and every bucket lies within
    /// one day: nothing to read and merge (reading cost PostgreSQL most of the backfill, its
    /// planner having no statistics for tables created in the same transaction).
    None,
}

async fn write_execution_rollups(
    conn: &mut Conn,
    executions: &[&Execution],
    stored: Stored,
) -> Result<()> {
    if executions.is_empty() {
        return Ok(());
    }
    let mut rollups: Vec<(ExecutionKey<'_>, LatencyStats)> =
        execution_rollups(executions.iter().copied())
            .into_iter()
            .collect();
    lock_workspaces(
        conn,
        EXECUTION_ROLLUP_LOCK,
        rollups.iter().map(|(k, _)| k.workspace).collect(),
    )
    .await?;
    for chunk in rollups.chunks_mut(<Db as UpsertExecutionRollups>::ROWS) {
        let select = "SELECT workspace_id, granularity, bucket_start, request_id, protocol, \
                      method, endpoint, status_class, executions, failures, duration_sum, \
                      duration_max, histogram FROM execution_rollups";
        let buckets = buckets_of(
            chunk
                .iter()
                .map(|(k, _)| (k.workspace, k.granularity, k.bucket_start)),
        );
        let stored_rows = match stored {
            Stored::Maybe => fetch_buckets(conn, select, &buckets).await?,
            Stored::None => Vec::new(),
        };
        for row in stored_rows {
            let protocol: String = row.try_get("protocol")?;
            let method: String = row.try_get("method")?;
            let endpoint: String = row.try_get("endpoint")?;
            let status_class: String = row.try_get("status_class")?;
            let probe = ExecutionKey {
                workspace: row.try_get("workspace_id")?,
                granularity: row.try_get::<i64, _>("granularity")?,
                bucket_start: row.try_get("bucket_start")?,
                request: row.try_get("request_id")?,
                protocol: &protocol,
                method: &method,
                endpoint: &endpoint,
                status_class: &status_class,
            };
            if let Ok(at) = chunk.binary_search_by(|(k, _)| k.cmp(&probe)) {
                let stored = stats_from_row(&row, "executions", "failures")?;
                chunk[at].1.merge(&stored);
            }
        }
        <Db as UpsertExecutionRollups>::upsert(conn, chunk).await?;
    }
    Ok(())
}

/// Writing merged execution rollup rows back, per dialect (both impls exist in both compilations;
/// `Db` picks the one that runs). A batch of a few thousand executions makes a few thousand
/// rollup rows: multi-row `VALUES` on SQLite (its fastest form), one `INSERT … SELECT unnest(…)`
/// over arrays on PostgreSQL, where planning a 500-row `VALUES` with 6 500 parameters cost more
/// than executing it.
#[async_trait]
trait UpsertExecutionRollups: sqlx::Database {
    /// Rows per statement (and per read of stored rows).
    const ROWS: usize;
    async fn upsert(
        conn: &mut <Self as sqlx::Database>::Connection,
        rows: &[(ExecutionKey<'_>, LatencyStats)],
    ) -> Result<()>;
}

const EXECUTION_ROLLUP_CONFLICT: &str = " ON CONFLICT (workspace_id, granularity, bucket_start, \
     request_id, protocol, method, endpoint, status_class) DO UPDATE SET \
     executions = excluded.executions, failures = excluded.failures, \
     duration_sum = excluded.duration_sum, duration_max = excluded.duration_max, \
     histogram = excluded.histogram";

#[async_trait]
impl UpsertExecutionRollups for sqlx::Sqlite {
    const ROWS: usize = ROLLUP_ROWS;

    async fn upsert(
        conn: &mut sqlx::SqliteConnection,
        rows: &[(ExecutionKey<'_>, LatencyStats)],
    ) -> Result<()> {
        let mut upsert = QueryBuilder::<sqlx::Sqlite>::new(
            "INSERT INTO execution_rollups (workspace_id, granularity, bucket_start, request_id, \
             protocol, method, endpoint, status_class, executions, failures, duration_sum, \
             duration_max, histogram) ",
        );
        upsert.push_values(rows.iter(), |mut row, (k, s)| {
            row.push_bind(k.workspace)
                .push_bind(k.granularity)
                .push_bind(k.bucket_start)
                .push_bind(k.request)
                .push_bind(k.protocol)
                .push_bind(k.method)
                .push_bind(k.endpoint)
                .push_bind(k.status_class)
                .push_bind(clamp_i64(s.count))
                .push_bind(clamp_i64(s.failures))
                .push_bind(s.sum_ns)
                .push_bind(s.max_ns)
                .push_bind(s.histogram.encode());
        });
        upsert.push(EXECUTION_ROLLUP_CONFLICT);
        upsert.build().execute(&mut *conn).await?;
        Ok(())
    }
}

#[async_trait]
impl UpsertExecutionRollups for sqlx::Postgres {
    const ROWS: usize = 5_000;

    async fn upsert(
        conn: &mut sqlx::PgConnection,
        rows: &[(ExecutionKey<'_>, LatencyStats)],
    ) -> Result<()> {
        let column = |f: &dyn Fn(&(ExecutionKey<'_>, LatencyStats)) -> i64| -> Vec<i64> {
            rows.iter().map(f).collect()
        };
        let text = |f: &dyn for<'r> Fn(&'r ExecutionKey<'_>) -> &'r str| -> Vec<String> {
            rows.iter().map(|(k, _)| f(k).to_owned()).collect()
        };
        let sql = format!(
            "INSERT INTO execution_rollups (workspace_id, granularity, bucket_start, request_id, \
             protocol, method, endpoint, status_class, executions, failures, duration_sum, \
             duration_max, histogram) \
             SELECT * FROM unnest($1::uuid[], $2::int8[], $3::int8[], $4::uuid[], $5::text[], \
             $6::text[], $7::text[], $8::text[], $9::int8[], $10::int8[], $11::int8[], \
             $12::int8[], $13::bytea[]){EXECUTION_ROLLUP_CONFLICT}"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(rows.iter().map(|(k, _)| k.workspace).collect::<Vec<Uuid>>())
            .bind(column(&|(k, _)| k.granularity))
            .bind(column(&|(k, _)| k.bucket_start))
            .bind(rows.iter().map(|(k, _)| k.request).collect::<Vec<Uuid>>())
            .bind(text(&|k| k.protocol))
            .bind(text(&|k| k.method))
            .bind(text(&|k| k.endpoint))
            .bind(text(&|k| k.status_class))
            .bind(column(&|(_, s)| clamp_i64(s.count)))
            .bind(column(&|(_, s)| clamp_i64(s.failures)))
            .bind(column(&|(_, s)| s.sum_ns))
            .bind(column(&|(_, s)| s.max_ns))
            .bind(
                rows.iter()
                    .map(|(_, s)| s.histogram.encode())
                    .collect::<Vec<Vec<u8>>>(),
            )
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}

/// Adds newly stored spans to their rollup rows (inside the transaction that stored them).
pub(crate) async fn add_span_rollups(conn: &mut Conn, spans: &[&Span]) -> Result<()> {
    write_span_rollups(conn, spans, Stored::Maybe).await
}

async fn write_span_rollups(conn: &mut Conn, spans: &[&Span], stored: Stored) -> Result<()> {
    let mut rollups: Vec<(SpanKey<'_>, LatencyStats)> =
        span_rollups(spans.iter().copied()).into_iter().collect();
    if rollups.is_empty() {
        return Ok(());
    }
    lock_workspaces(
        conn,
        SPAN_ROLLUP_LOCK,
        rollups.iter().map(|(k, _)| k.workspace).collect(),
    )
    .await?;
    for chunk in rollups.chunks_mut(ROLLUP_ROWS) {
        let select = "SELECT workspace_id, granularity, bucket_start, service, spans, errors, \
                      duration_sum, duration_max, histogram FROM span_rollups";
        let buckets = buckets_of(
            chunk
                .iter()
                .map(|(k, _)| (k.workspace, k.granularity, k.bucket_start)),
        );
        let stored_rows = match stored {
            Stored::Maybe => fetch_buckets(conn, select, &buckets).await?,
            Stored::None => Vec::new(),
        };
        for row in stored_rows {
            let service: String = row.try_get("service")?;
            let probe = SpanKey {
                workspace: row.try_get("workspace_id")?,
                granularity: row.try_get::<i64, _>("granularity")?,
                bucket_start: row.try_get("bucket_start")?,
                service: &service,
            };
            if let Ok(at) = chunk.binary_search_by(|(k, _)| k.cmp(&probe)) {
                let stored = stats_from_row(&row, "spans", "errors")?;
                chunk[at].1.merge(&stored);
            }
        }
        let mut upsert = QueryBuilder::<Db>::new(
            "INSERT INTO span_rollups (workspace_id, granularity, bucket_start, service, spans, \
             errors, duration_sum, duration_max, histogram) ",
        );
        upsert.push_values(chunk.iter(), |mut row, (k, s)| {
            row.push_bind(k.workspace)
                .push_bind(k.granularity)
                .push_bind(k.bucket_start)
                .push_bind(k.service)
                .push_bind(clamp_i64(s.count))
                .push_bind(clamp_i64(s.failures))
                .push_bind(s.sum_ns)
                .push_bind(s.max_ns)
                .push_bind(s.histogram.encode());
        });
        upsert.push(
            " ON CONFLICT (workspace_id, granularity, bucket_start, service) DO UPDATE SET \
             spans = excluded.spans, errors = excluded.errors, duration_sum = excluded.duration_sum, \
             duration_max = excluded.duration_max, histogram = excluded.histogram",
        );
        upsert.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// Counts executions stored before the rollup tables existed (run once, by the migration that
/// creates them), a day of executions at a time so memory stays bounded.
pub(crate) async fn backfill_execution_rollups(conn: &mut Conn) -> Result<()> {
    let bounds: Option<(Option<i64>, Option<i64>)> =
        sqlx::query_as("SELECT MIN(started_at), MAX(started_at) FROM executions")
            .fetch_optional(&mut *conn)
            .await?;
    let Some((Some(first), Some(last))) = bounds else {
        return Ok(());
    };
    let day = Granularity::Day.nanos();
    let mut start = floor_to(Timestamp(first), day).nanos();
    while start <= last {
        let end = start.saturating_add(day);
        let rows = sqlx::query(
            "SELECT workspace_id, request_id, protocol, method, endpoint, status_code, failed, \
             started_at, duration_ns FROM executions WHERE started_at >= $1 AND started_at < $2",
        )
        .bind(start)
        .bind(end)
        .fetch_all(&mut *conn)
        .await?;
        let executions = rows
            .iter()
            .map(backfill_row)
            .collect::<Result<Vec<Execution>>>()?;
        let refs: Vec<&Execution> = executions.iter().collect();
        write_execution_rollups(conn, &refs, Stored::None).await?;
        if end == i64::MAX {
            break;
        }
        start = end;
    }
    Ok(())
}

/// Counts spans stored before the rollup tables existed, like [`backfill_execution_rollups`].
pub(crate) async fn backfill_span_rollups(conn: &mut Conn) -> Result<()> {
    let bounds: Option<(Option<i64>, Option<i64>)> = sqlx::query_as(
        "SELECT MIN(start_ns), MAX(start_ns) FROM spans WHERE workspace_id IS NOT NULL",
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some((Some(first), Some(last))) = bounds else {
        return Ok(());
    };
    let day = Granularity::Day.nanos();
    let mut start = floor_to(Timestamp(first), day).nanos();
    while start <= last {
        let end = start.saturating_add(day);
        let rows = sqlx::query(
            "SELECT workspace_id, service, start_ns, end_ns, status_code FROM spans \
             WHERE workspace_id IS NOT NULL AND start_ns >= $1 AND start_ns < $2",
        )
        .bind(start)
        .bind(end)
        .fetch_all(&mut *conn)
        .await?;
        let spans = rows
            .iter()
            .map(|row| {
                Ok(Span {
                    trace_id: prism_domain::trace::TraceId::random(),
                    span_id: prism_domain::trace::SpanId::random(),
                    parent_span_id: None,
                    workspace_id: Some(WorkspaceId::from(row.try_get::<Uuid, _>("workspace_id")?)),
                    name: String::new(),
                    service: row.try_get("service")?,
                    kind: prism_domain::trace::SpanKind::Unspecified,
                    start: Timestamp(row.try_get("start_ns")?),
                    end: Timestamp(row.try_get("end_ns")?),
                    status_code: prism_domain::trace::StatusCode::from_code(
                        row.try_get("status_code")?,
                    ),
                    status_message: None,
                    attributes: Default::default(),
                    events: Vec::new(),
                    links: Vec::new(),
                    resource_attributes: Default::default(),
                    scope: Default::default(),
                    trace_state: None,
                    flags: 0,
                })
            })
            .collect::<Result<Vec<Span>>>()?;
        let refs: Vec<&Span> = spans.iter().collect();
        write_span_rollups(conn, &refs, Stored::None).await?;
        if end == i64::MAX {
            break;
        }
        start = end;
    }
    Ok(())
}

/// The columns of an execution that rollups use; the rest is left empty.
fn backfill_row(row: &DbRow) -> Result<Execution> {
    let protocol: String = row.try_get("protocol")?;
    Ok(Execution {
        id: prism_domain::ExecutionId::new(),
        workspace_id: WorkspaceId::from(row.try_get::<Uuid, _>("workspace_id")?),
        request_id: row
            .try_get::<Option<Uuid>, _>("request_id")?
            .map(Into::into),
        protocol: Protocol::from_str(&protocol).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        method: row.try_get("method")?,
        target: String::new(),
        endpoint: row.try_get("endpoint")?,
        status_code: row.try_get("status_code")?,
        failed: row.try_get("failed")?,
        error_kind: None,
        error_message: None,
        started_at: Timestamp(row.try_get("started_at")?),
        duration_ns: row.try_get("duration_ns")?,
        ttfb_ns: None,
        dns_ns: None,
        connect_ns: None,
        tls_ns: None,
        request_size: 0,
        response_size: 0,
        trace_id: prism_domain::trace::TraceId::random(),
        span_id: prism_domain::trace::SpanId::random(),
        source: prism_domain::execution::ExecutionSource::Api,
        created_by: None,
    })
}

/// `… AND granularity = g AND bucket_start >= from AND bucket_start < to` for each piece of the
/// window, as one `UNION ALL` of primary-key range scans.
fn push_pieces(
    query: &mut QueryBuilder<Db>,
    select: &str,
    workspace: WorkspaceId,
    from: Timestamp,
    to: Timestamp,
    coarsest: Granularity,
    filters: impl Fn(&mut QueryBuilder<Db>),
) -> bool {
    let pieces = cover(from, to, coarsest);
    for (i, piece) in pieces.iter().enumerate() {
        if i > 0 {
            query.push(" UNION ALL ");
        }
        query
            .push(select)
            .push(" WHERE workspace_id = ")
            .push_bind(Uuid::from(workspace))
            .push(" AND granularity = ")
            .push_bind(piece.granularity.seconds())
            .push(" AND bucket_start >= ")
            .push_bind(piece.from.nanos())
            .push(" AND bucket_start < ")
            .push_bind(piece.to.nanos());
        filters(query);
    }
    !pieces.is_empty()
}

#[async_trait]
impl AnalyticsStore for Repo {
    async fn execution_analytics(
        &self,
        workspace: WorkspaceId,
        q: &AnalyticsQuery,
    ) -> Result<ExecutionAnalytics> {
        if q.request_ids.as_ref().is_some_and(Vec::is_empty) || q.step_ns <= 0 {
            return Ok(ExecutionAnalytics::default());
        }
        let filters = |query: &mut QueryBuilder<Db>| {
            if let Some(ids) = &q.request_ids {
                query.push(" AND request_id IN (");
                let mut list = query.separated(", ");
                for id in ids {
                    list.push_bind(Uuid::from(*id));
                }
                query.push(")");
            }
            if let Some(protocol) = q.protocol {
                query.push(" AND protocol = ").push_bind(protocol.as_str());
            }
            if let Some(method) = &q.method {
                query.push(" AND method = ").push_bind(method.clone());
            }
            if let Some(endpoint) = &q.endpoint {
                query.push(" AND endpoint = ").push_bind(endpoint.clone());
            }
            if let Some(class) = q.status_class {
                query.push(" AND status_class = ").push_bind(class.as_str());
            }
        };
        // The database sums the rollup rows of each series point and endpoint (and concatenates
        // their histograms, which is their sum, see `LatencyHistogram::encode`): a few rows per
        // point reach Rust instead of one per rollup key, as moving rows out of the database
        // costs more than anything done with them here.
        let step = q.step_ns;
        let mut query = QueryBuilder::<Db>::new(format!(
            "SELECT point, protocol, method, endpoint, \
             CAST(SUM(executions) AS BIGINT) AS executions, \
             CAST(SUM(failures) AS BIGINT) AS failures, {sum} AS duration_sum, \
             MAX(duration_max) AS duration_max, {histograms} AS histograms FROM (",
            sum = super::SUM_DURATIONS,
            histograms = super::CONCAT_HISTOGRAMS,
        ));
        let select = format!(
            "SELECT bucket_start - ((bucket_start % {step}) + {step}) % {step} AS point, \
             protocol, method, endpoint, executions, failures, duration_sum, duration_max, \
             histogram FROM execution_rollups"
        );
        if !push_pieces(
            &mut query,
            &select,
            workspace,
            q.from,
            q.to,
            coarsest_for(q.step_ns),
            filters,
        ) {
            return Ok(ExecutionAnalytics::default());
        }
        query.push(") r GROUP BY point, protocol, method, endpoint");
        let mut total = LatencyStats::default();
        let mut series: BTreeMap<Timestamp, LatencyStats> = BTreeMap::new();
        // Endpoints found so far, and where, by a hash of their key: rows are matched to an
        // endpoint by borrowed text, without allocating per row.
        let mut endpoints: Vec<(EndpointKey, LatencyStats)> = Vec::new();
        let mut index: HashMap<u64, Vec<usize>> = HashMap::new();
        let mut rows = query.build().fetch(self.reader());
        while let Some(row) = rows.try_next().await? {
            let mut histogram = LatencyHistogram::default();
            histogram
                .add_hex(row.try_get("histograms")?)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let stats = LatencyStats {
                count: u64::try_from(row.try_get::<i64, _>("executions")?).unwrap_or(0),
                failures: u64::try_from(row.try_get::<i64, _>("failures")?).unwrap_or(0),
                // Saturating, like the stored sums.
                sum_ns: row.try_get::<f64, _>("duration_sum")? as i64,
                max_ns: row.try_get("duration_max")?,
                histogram,
            };
            let start = Timestamp(row.try_get("point")?);
            series.entry(start).or_default().merge(&stats);
            let protocol: &str = row.try_get("protocol")?;
            let method: &str = row.try_get("method")?;
            let endpoint: &str = row.try_get("endpoint")?;
            let hash = {
                use std::hash::{Hash, Hasher};
                let mut h = std::collections::hash_map::DefaultHasher::new();
                (protocol, method, endpoint).hash(&mut h);
                h.finish()
            };
            let slots = index.entry(hash).or_default();
            let found = slots.iter().copied().find(|&i| {
                let k = &endpoints[i].0;
                k.protocol.as_str() == protocol && k.method == method && k.endpoint == endpoint
            });
            let at = match found {
                Some(at) => at,
                None => {
                    let protocol = Protocol::from_str(protocol)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    endpoints.push((
                        EndpointKey {
                            protocol,
                            method: method.to_owned(),
                            endpoint: endpoint.to_owned(),
                        },
                        LatencyStats::default(),
                    ));
                    slots.push(endpoints.len() - 1);
                    endpoints.len() - 1
                }
            };
            endpoints[at].1.merge(&stats);
            total.merge(&stats);
        }
        endpoints.sort_by(|a, b| {
            (a.0.protocol.as_str(), &a.0.method, &a.0.endpoint).cmp(&(
                b.0.protocol.as_str(),
                &b.0.method,
                &b.0.endpoint,
            ))
        });
        Ok(ExecutionAnalytics {
            total,
            series: series.into_iter().collect(),
            endpoints,
        })
    }

    async fn span_analytics(
        &self,
        workspace: WorkspaceId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<ServiceAnalytics>> {
        let mut query = QueryBuilder::<Db>::new("");
        let select = "SELECT service, spans, errors, duration_sum, duration_max, histogram \
                      FROM span_rollups";
        if !push_pieces(
            &mut query,
            select,
            workspace,
            from,
            to,
            Granularity::Day,
            |_| {},
        ) {
            return Ok(Vec::new());
        }
        let mut services: BTreeMap<String, LatencyStats> = BTreeMap::new();
        let mut rows = query.build().fetch(self.reader());
        while let Some(row) = rows.try_next().await? {
            let stats = stats_from_row(&row, "spans", "errors")?;
            services
                .entry(row.try_get("service")?)
                .or_default()
                .merge(&stats);
        }
        Ok(services
            .into_iter()
            .map(|(service, stats)| ServiceAnalytics { service, stats })
            .collect())
    }
}
