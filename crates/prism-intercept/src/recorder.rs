//! The write-behind recorder: executions and spans go into a bounded queue and are written to the
//! store in batches by one task, so request handling never waits on the database.
//!
//! Nothing is ever dropped:
//! - when the queue is full, callers wait (up to `enqueue_timeout`, then get
//!   [`RecordError::Overloaded`] to report upstream — still nothing was lost, it was never taken);
//! - when the database is unavailable, batches are retried with exponential backoff; records wait
//!   in memory up to `memory_limit`, beyond that they are appended to an on-disk spool
//!   (`<spool_dir>/*.jsonl`) which is replayed once the database answers again, and at start-up;
//! - on shutdown the queue is drained and flushed; whatever the database does not take is spooled.
//!
//! Records that the database refuses for good (e.g. their workspace was deleted in the meantime)
//! are retried one by one without their optional references, and if still refused are written to
//! `<spool_dir>/rejected.jsonl` with the reason and logged — reported, not silently lost.
//!
//! Span batches that need an acknowledgement (OTLP ingest answers only after the commit) are
//! written in the next batch and answered with the outcome; they are not spooled, because the
//! exporter retries them itself.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prism_domain::execution::{Execution, ExecutionDetail};
use prism_domain::trace::Span;
use prism_store::{Store, StoreError};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Tuning of the recorder.
#[derive(Debug, Clone)]
pub struct RecorderConfig {
    /// Records the queue holds before callers wait.
    pub queue_capacity: usize,
    /// Largest batch written in one go.
    pub batch_max: usize,
    /// How long the writer waits for more records once one arrived, so a steady trickle is
    /// written in a few transactions rather than one per record (0: write at once).
    pub linger: Duration,
    /// How long a caller waits for queue space before [`RecordError::Overloaded`].
    pub enqueue_timeout: Duration,
    /// Records kept in memory while the database is unavailable; more go to the spool.
    pub memory_limit: usize,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// Where the spool files live (created on first use).
    pub spool_dir: PathBuf,
    /// Acknowledged span batches are written as this many concurrent inserts (each its own
    /// transaction on its own connection). `None`: 4 on PostgreSQL, where one backend per
    /// connection is the limit, and 1 on SQLite, which has one writer anyway.
    pub parallel_writes: Option<usize>,
}

impl RecorderConfig {
    pub fn new(spool_dir: PathBuf) -> Self {
        Self {
            queue_capacity: 10_000,
            batch_max: 1_000,
            linger: Duration::from_millis(2),
            enqueue_timeout: Duration::from_secs(5),
            memory_limit: 50_000,
            retry_initial: Duration::from_millis(100),
            retry_max: Duration::from_secs(5),
            spool_dir,
            parallel_writes: None,
        }
    }
}

/// Why a record was not accepted. The caller still holds it and must report the failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("the recorder is overloaded; retry later")]
    Overloaded,
    #[error("the recorder is shutting down")]
    ShuttingDown,
    #[error("the database did not store the batch: {0}")]
    NotStored(String),
}

/// One durable unit: an execution with its snapshot and client span, or loose spans.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    Execution {
        execution: Box<Execution>,
        detail: Option<Box<ExecutionDetail>>,
        span: Option<Box<Span>>,
    },
    Spans {
        spans: Vec<Span>,
    },
}

impl Record {
    fn weight(&self) -> usize {
        match self {
            Record::Execution { .. } => 1,
            Record::Spans { spans } => spans.len().max(1),
        }
    }
}

enum Envelope {
    Durable(Record),
    Acked {
        spans: Vec<Span>,
        ack: oneshot::Sender<Result<u64, RecordError>>,
    },
}

/// Counters for metrics and tests.
#[derive(Debug, Default)]
pub struct RecorderStats {
    pub written: AtomicU64,
    pub spooled: AtomicU64,
    pub replayed: AtomicU64,
    pub rejected: AtomicU64,
    pub retries: AtomicU64,
}

/// The sending side; cheap to clone into every handler.
#[derive(Debug, Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Envelope>,
    enqueue_timeout: Duration,
    stats: Arc<RecorderStats>,
}

/// Queue space held for one record (see [`Recorder::reserve`]); dropping it frees the space.
#[derive(Debug)]
pub struct RecordSlot {
    permit: mpsc::OwnedPermit<Envelope>,
}

impl RecordSlot {
    /// Queues the record; never waits and never fails (the space is already held).
    pub fn record(self, record: Record) {
        self.permit.send(Envelope::Durable(record));
    }
}

/// Owns the writer task; [`RecorderTask::shutdown`] drains and flushes.
#[derive(Debug)]
pub struct RecorderTask {
    stop: watch::Sender<bool>,
    join: JoinHandle<()>,
}

impl std::fmt::Debug for Envelope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Envelope::Durable(_) => f.write_str("Durable"),
            Envelope::Acked { spans, .. } => write!(f, "Acked({})", spans.len()),
        }
    }
}

impl Recorder {
    /// Starts the writer task. Spool files left by an earlier run are replayed by it first.
    pub fn start(store: Arc<dyn Store>, config: RecorderConfig) -> (Recorder, RecorderTask) {
        let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
        let (stop, stopped) = watch::channel(false);
        let stats = Arc::new(RecorderStats::default());
        let recorder = Recorder {
            tx,
            enqueue_timeout: config.enqueue_timeout,
            stats: stats.clone(),
        };
        let writer = Writer {
            store,
            backoff: config.retry_initial,
            config,
            rx,
            pending: VecDeque::new(),
            pending_weight: 0,
            acked: Vec::new(),
            next_attempt: Instant::now(),
            stats,
            spool_dirty: true,
        };
        let join = tokio::spawn(writer.run(stopped));
        (recorder, RecorderTask { stop, join })
    }

    /// Queues a record for writing; waits for space up to the configured timeout.
    pub async fn record(&self, record: Record) -> Result<(), RecordError> {
        self.send(Envelope::Durable(record)).await
    }

    /// Writes spans and returns only once they are committed (or the write failed).
    pub async fn record_acked(&self, spans: Vec<Span>) -> Result<u64, RecordError> {
        let (ack, done) = oneshot::channel();
        self.send(Envelope::Acked { spans, ack }).await?;
        done.await.map_err(|_| RecordError::ShuttingDown)?
    }

    async fn send(&self, envelope: Envelope) -> Result<(), RecordError> {
        match tokio::time::timeout(self.enqueue_timeout, self.tx.send(envelope)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(RecordError::ShuttingDown),
            Err(_) => Err(RecordError::Overloaded),
        }
    }

    /// Reserves queue space for one record before the work that produces it, so a request is
    /// only executed when its record is sure to be taken: an overloaded recorder turns requests
    /// away *before* anything happened instead of losing what did. Waits like [`Recorder::record`].
    pub async fn reserve(&self) -> Result<RecordSlot, RecordError> {
        match tokio::time::timeout(self.enqueue_timeout, self.tx.clone().reserve_owned()).await {
            Ok(Ok(permit)) => Ok(RecordSlot { permit }),
            Ok(Err(_)) => Err(RecordError::ShuttingDown),
            Err(_) => Err(RecordError::Overloaded),
        }
    }

    pub fn stats(&self) -> &RecorderStats {
        &self.stats
    }

    /// Records waiting in the queue (not counting those the writer already holds).
    pub fn queue_depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}

impl RecorderTask {
    /// Stops taking records, writes everything pending (spooling what the database refuses) and
    /// waits for the writer to finish.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(err) = self.join.await {
            tracing::error!(error = %err, "recorder task failed during shutdown");
        }
    }
}

/// Spans waiting to be committed, with the channel that hears the outcome.
type AckedSpans = (Vec<Span>, oneshot::Sender<Result<u64, RecordError>>);

struct Writer {
    store: Arc<dyn Store>,
    config: RecorderConfig,
    rx: mpsc::Receiver<Envelope>,
    pending: VecDeque<Record>,
    pending_weight: usize,
    acked: Vec<AckedSpans>,
    backoff: Duration,
    next_attempt: Instant,
    stats: Arc<RecorderStats>,
    /// Whether spool files may exist (checked at start; set when spooling; cleared after a replay).
    spool_dirty: bool,
}

impl Writer {
    async fn run(mut self, mut stopped: watch::Receiver<bool>) {
        self.replay_spool().await;
        loop {
            let waiting = !self.pending.is_empty() || !self.acked.is_empty();
            let mut arrived = false;
            tokio::select! {
                biased;
                _ = stopped.wait_for(|s| *s) => break,
                envelope = self.rx.recv() => match envelope {
                    Some(envelope) => {
                        self.take(envelope);
                        arrived = true;
                    }
                    None => break,
                },
                _ = tokio::time::sleep_until(self.next_attempt), if waiting => {}
            }
            if arrived {
                self.gather().await;
            }
            if Instant::now() >= self.next_attempt {
                self.flush().await;
            }
            if self.pending_weight > self.config.memory_limit {
                self.spool_overflow().await;
            }
        }
        self.drain_on_shutdown().await;
    }

    fn take(&mut self, envelope: Envelope) {
        match envelope {
            Envelope::Durable(record) => {
                self.pending_weight += record.weight();
                self.pending.push_back(record);
            }
            Envelope::Acked { spans, ack } => self.acked.push((spans, ack)),
        }
    }

    /// Takes what else is queued, waiting up to `linger` for more while the batch is not full
    /// (not while the database is backing off: then the records wait anyway).
    async fn gather(&mut self) {
        let deadline = Instant::now() + self.config.linger;
        let healthy = Instant::now() >= self.next_attempt;
        while self.pending_weight + self.acked.len() < self.config.batch_max {
            match self.rx.try_recv() {
                Ok(envelope) => self.take(envelope),
                Err(_) if !healthy || self.config.linger.is_zero() => break,
                Err(_) => match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                    Ok(Some(envelope)) => self.take(envelope),
                    Ok(None) | Err(_) => break,
                },
            }
        }
    }

    /// Writes acknowledged spans, then pending records in batches, until the queue is empty or the
    /// database fails (then backs off).
    async fn flush(&mut self) {
        if !self.acked.is_empty() {
            let acked = std::mem::take(&mut self.acked);
            let mut all: Vec<Span> = Vec::with_capacity(acked.iter().map(|(s, _)| s.len()).sum());
            let mut acks = Vec::with_capacity(acked.len());
            for (spans, ack) in acked {
                acks.push((spans.len() as u64, ack));
                all.extend(spans);
            }
            let outcome = self.insert_spans_parallel(&all).await;
            for (count, ack) in acks {
                let _ = ack.send(match &outcome {
                    Ok(_) => Ok(count),
                    Err(err) => Err(RecordError::NotStored(err.to_string())),
                });
            }
            if let Err(err) = outcome {
                self.failed(&err);
                return;
            }
            // After the acknowledgements: exporters wait for those, live views can wait longer.
            announce(self.store.as_ref(), &all).await;
        }
        while !self.pending.is_empty() {
            let batch = self.next_batch();
            let records = batch.len() as u64;
            match write_owned(self.store.as_ref(), batch).await {
                Ok(()) => {
                    self.stats.written.fetch_add(records, Ordering::Relaxed);
                    self.backoff = self.config.retry_initial;
                }
                Err((err, batch)) if err.is_transient() => {
                    self.requeue(batch);
                    self.failed(&err);
                    return;
                }
                Err((err, batch)) => self.isolate(batch, &err).await,
            }
        }
        self.replay_spool().await;
    }

    /// Inserts spans as up to `parallel_writes` concurrent inserts of contiguous slices. Inserts are
    /// idempotent, so when one slice fails the whole batch may be retried by its senders.
    async fn insert_spans_parallel(&self, spans: &[Span]) -> Result<u64, StoreError> {
        let parallel = self
            .config
            .parallel_writes
            .unwrap_or(match self.store.backend() {
                prism_store::Backend::Postgres => 4,
                prism_store::Backend::Sqlite => 1,
            });
        const MIN_SLICE: usize = 256;
        let slices = parallel.clamp(1, spans.len().div_ceil(MIN_SLICE).max(1));
        if slices == 1 {
            return self.store.insert_spans(spans).await;
        }
        let size = spans.len().div_ceil(slices);
        let results = futures_util::future::join_all(
            spans
                .chunks(size)
                .map(|slice| self.store.insert_spans(slice)),
        )
        .await;
        let mut written = 0;
        for result in results {
            written += result?;
        }
        Ok(written)
    }

    fn next_batch(&mut self) -> Vec<Record> {
        let mut batch = Vec::new();
        let mut weight = 0;
        while let Some(record) = self.pending.front() {
            if !batch.is_empty() && weight + record.weight() > self.config.batch_max {
                break;
            }
            let record = self.pending.pop_front().expect("front exists");
            weight += record.weight();
            self.pending_weight -= record.weight();
            batch.push(record);
        }
        batch
    }

    fn requeue(&mut self, batch: Vec<Record>) {
        for record in batch.into_iter().rev() {
            self.pending_weight += record.weight();
            self.pending.push_front(record);
        }
    }

    fn failed(&mut self, err: &StoreError) {
        self.stats.retries.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(error = %err, retry_in_ms = self.backoff.as_millis() as u64, pending = self.pending_weight,
            "recording failed; will retry");
        self.next_attempt = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(self.config.retry_max);
    }

    /// A batch the database refused for a reason other than availability: write its records one by
    /// one, dropping optional references that may have been deleted meanwhile; reject what remains.
    async fn isolate(&mut self, batch: Vec<Record>, batch_err: &StoreError) {
        tracing::warn!(error = %batch_err, records = batch.len(), "batch refused; writing records one by one");
        for record in batch {
            let single = [record];
            let outcome = match write_batch(self.store.as_ref(), &single).await {
                Ok(()) => Ok(()),
                Err(err) if err.is_transient() => Err(err),
                Err(_) => {
                    write_batch(
                        self.store.as_ref(),
                        &[without_optional_references(&single[0])],
                    )
                    .await
                }
            };
            let [record] = single;
            match outcome {
                Ok(()) => {
                    self.stats.written.fetch_add(1, Ordering::Relaxed);
                }
                Err(err) if err.is_transient() => {
                    self.pending_weight += record.weight();
                    self.pending.push_front(record);
                    self.failed(&err);
                    return;
                }
                Err(err) => self.reject(record, &err).await,
            }
        }
    }

    async fn reject(&mut self, record: Record, err: &StoreError) {
        self.stats.rejected.fetch_add(1, Ordering::Relaxed);
        tracing::error!(error = %err, "record refused by the database; kept in rejected.jsonl");
        #[derive(Serialize)]
        struct Rejected<'a> {
            reason: String,
            record: &'a Record,
        }
        let line = serde_json::to_string(&Rejected {
            reason: err.to_string(),
            record: &record,
        });
        match line {
            Ok(line) => {
                if let Err(io) =
                    append_lines(&self.config.spool_dir.join("rejected.jsonl"), &[line]).await
                {
                    tracing::error!(error = %io, "cannot write rejected.jsonl");
                }
            }
            Err(ser) => tracing::error!(error = %ser, "cannot serialize a rejected record"),
        }
    }

    /// Moves the newest records beyond the memory limit to a new spool file.
    async fn spool_overflow(&mut self) {
        let mut overflow = Vec::new();
        while self.pending_weight > self.config.memory_limit / 2 {
            let Some(record) = self.pending.pop_back() else {
                break;
            };
            self.pending_weight -= record.weight();
            overflow.push(record);
        }
        overflow.reverse();
        self.spool(overflow).await;
    }

    async fn spool(&mut self, records: Vec<Record>) {
        if records.is_empty() {
            return;
        }
        let lines: Vec<String> = records
            .iter()
            .filter_map(|r| serde_json::to_string(r).ok())
            .collect();
        let file = self
            .config
            .spool_dir
            .join(format!("pending-{}.jsonl", uuid::Uuid::now_v7()));
        match append_lines(&file, &lines).await {
            Ok(()) => {
                self.spool_dirty = true;
                self.stats
                    .spooled
                    .fetch_add(records.len() as u64, Ordering::Relaxed);
                tracing::warn!(records = records.len(), file = %file.display(), "database unavailable; records spooled to disk");
            }
            Err(err) => {
                // The disk is failing too: keep the records in memory rather than lose them.
                tracing::error!(error = %err, file = %file.display(), "cannot spool records; keeping them in memory");
                for record in records {
                    self.pending_weight += record.weight();
                    self.pending.push_back(record);
                }
            }
        }
    }

    /// Replays spool files, oldest first, while the database takes them. A file is removed only
    /// after all of its records are committed.
    async fn replay_spool(&mut self) {
        if !self.spool_dirty {
            return;
        }
        let Ok(mut entries) = tokio::fs::read_dir(&self.config.spool_dir).await else {
            return;
        };
        let mut files = Vec::new();
        while let Ok(Some(entry)) = entries.next_entry().await {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("pending-") && name.ends_with(".jsonl") {
                files.push(entry.path());
            }
        }
        files.sort();
        for file in files {
            let Ok(text) = tokio::fs::read_to_string(&file).await else {
                continue;
            };
            let mut records = Vec::new();
            for (n, line) in text.lines().enumerate() {
                match serde_json::from_str::<Record>(line) {
                    Ok(record) => records.push(record),
                    // A crash mid-append can leave a torn last line; anything else is reported.
                    Err(err) => {
                        tracing::error!(error = %err, line = n + 1, file = %file.display(), "unreadable spool line skipped")
                    }
                }
            }
            for chunk in records.chunks(self.config.batch_max.max(1)) {
                if let Err(err) = write_batch(self.store.as_ref(), chunk).await {
                    if err.is_transient() {
                        return; // still dirty: try again after the next successful write
                    }
                    for record in chunk {
                        if let Err(err) =
                            write_batch(self.store.as_ref(), std::slice::from_ref(record)).await
                        {
                            self.reject(record.clone(), &err).await;
                        }
                    }
                }
            }
            self.stats
                .replayed
                .fetch_add(records.len() as u64, Ordering::Relaxed);
            if let Err(err) = tokio::fs::remove_file(&file).await {
                tracing::error!(error = %err, file = %file.display(), "cannot remove replayed spool file");
            }
            tracing::info!(records = records.len(), file = %file.display(), "spooled records written");
        }
        self.spool_dirty = false;
    }

    async fn drain_on_shutdown(&mut self) {
        self.rx.close();
        while let Some(envelope) = self.rx.recv().await {
            self.take(envelope);
        }
        self.next_attempt = Instant::now();
        self.flush().await;
        // Acknowledged writes that failed were answered; durable ones go to disk.
        for (_, ack) in std::mem::take(&mut self.acked) {
            let _ = ack.send(Err(RecordError::ShuttingDown));
        }
        let rest: Vec<Record> = self.pending.drain(..).collect();
        self.pending_weight = 0;
        self.spool(rest).await;
    }
}

/// How a record was taken apart by [`split`], to put it back together with [`join`].
enum Shape {
    Execution { detail: bool, span: bool },
    Spans(usize),
}

/// A batch taken apart into what the store inserts, without copying anything.
struct Parts {
    shapes: Vec<Shape>,
    executions: Vec<Execution>,
    details: Vec<ExecutionDetail>,
    spans: Vec<Span>,
}

fn split(batch: Vec<Record>) -> Parts {
    let mut parts = Parts {
        shapes: Vec::with_capacity(batch.len()),
        executions: Vec::new(),
        details: Vec::new(),
        spans: Vec::new(),
    };
    for record in batch {
        match record {
            Record::Execution {
                execution,
                detail,
                span,
            } => {
                parts.shapes.push(Shape::Execution {
                    detail: detail.is_some(),
                    span: span.is_some(),
                });
                parts.executions.push(*execution);
                parts.details.extend(detail.map(|d| *d));
                parts.spans.extend(span.map(|s| *s));
            }
            Record::Spans { spans } => {
                parts.shapes.push(Shape::Spans(spans.len()));
                parts.spans.extend(spans);
            }
        }
    }
    parts
}

/// The inverse of [`split`]: the same records, in the same order.
fn join(parts: Parts) -> Vec<Record> {
    let mut executions = parts.executions.into_iter();
    let mut details = parts.details.into_iter();
    let mut spans = parts.spans.into_iter();
    parts
        .shapes
        .into_iter()
        .map(|shape| match shape {
            Shape::Execution { detail, span } => Record::Execution {
                execution: Box::new(executions.next().expect("one execution per shape")),
                detail: detail.then(|| Box::new(details.next().expect("kept in order"))),
                span: span.then(|| Box::new(spans.next().expect("kept in order"))),
            },
            Shape::Spans(n) => Record::Spans {
                spans: spans.by_ref().take(n).collect(),
            },
        })
        .collect()
}

/// Writes a batch it owns without copying the records; if the write fails the records come back
/// unchanged, for the caller to requeue or isolate.
async fn write_owned(
    store: &dyn Store,
    batch: Vec<Record>,
) -> Result<(), (StoreError, Vec<Record>)> {
    let parts = split(batch);
    let written = store
        .insert_recorded(&parts.executions, &parts.details, &parts.spans)
        .await;
    match written {
        Ok(()) => {
            announce(store, &parts.spans).await;
            Ok(())
        }
        Err(err) => Err((err, join(parts))),
    }
}

/// Writes a batch — executions, their details and all spans — in one transaction (see
/// `Store::insert_recorded`). Inserts are idempotent, so a retried batch is not duplicated.
async fn write_batch(store: &dyn Store, batch: &[Record]) -> Result<(), StoreError> {
    let mut executions = Vec::new();
    let mut details = Vec::new();
    let mut spans = Vec::new();
    for record in batch {
        match record {
            Record::Execution {
                execution,
                detail,
                span,
            } => {
                executions.push(execution.as_ref().clone());
                if let Some(detail) = detail {
                    details.push(detail.as_ref().clone());
                }
                if let Some(span) = span {
                    spans.push(span.as_ref().clone());
                }
            }
            Record::Spans { spans: more } => spans.extend(more.iter().cloned()),
        }
    }
    store.insert_recorded(&executions, &details, &spans).await?;
    announce(store, &spans).await;
    Ok(())
}

/// Tells live trace streams (in this and other processes) that spans of these traces are stored.
/// Best effort: the spans are committed either way, and streams resync when notifications may
/// have been lost.
async fn announce(store: &dyn Store, spans: &[Span]) {
    if spans.is_empty() {
        return;
    }
    let traces: Vec<_> = spans.iter().map(|s| s.trace_id).collect();
    if let Err(err) = store.notify_spans(&traces).await {
        tracing::debug!(error = %err, "could not announce stored spans");
    }
}

/// The record with references that may have been deleted since it was made cleared: the saved
/// request and the user (executions keep their history without them).
fn without_optional_references(record: &Record) -> Record {
    match record {
        Record::Execution {
            execution,
            detail,
            span,
        } => {
            let mut execution = execution.clone();
            execution.request_id = None;
            execution.created_by = None;
            Record::Execution {
                execution,
                detail: detail.clone(),
                span: span.clone(),
            }
        }
        Record::Spans { spans } => Record::Spans {
            spans: spans
                .iter()
                .cloned()
                .map(|mut s| {
                    s.workspace_id = None;
                    s
                })
                .collect(),
        },
    }
}

async fn append_lines(file: &Path, lines: &[String]) -> std::io::Result<()> {
    if let Some(dir) = file.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    let mut out = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .await?;
    let mut buf = String::new();
    for line in lines {
        buf.push_str(line);
        buf.push('\n');
    }
    out.write_all(buf.as_bytes()).await?;
    out.sync_data().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use prism_domain::execution::ExecutionSource;
    use prism_domain::request::Protocol;
    use prism_domain::trace::{SpanId, TraceId};
    use prism_domain::{ExecutionId, Timestamp, WorkspaceId};

    use super::*;

    fn execution(ws: WorkspaceId) -> Execution {
        Execution {
            id: ExecutionId::new(),
            workspace_id: ws,
            request_id: None,
            protocol: Protocol::Rest,
            method: Some("GET".into()),
            target: "http://t".into(),
            endpoint: "/".into(),
            status_code: Some(200),
            failed: false,
            error_kind: None,
            error_message: None,
            started_at: Timestamp::from_nanos(1),
            duration_ns: 1,
            ttfb_ns: None,
            dns_ns: None,
            connect_ns: None,
            tls_ns: None,
            request_size: 0,
            response_size: 0,
            trace_id: TraceId::random(),
            span_id: SpanId::random(),
            source: ExecutionSource::Api,
            created_by: None,
        }
    }

    fn span(name: &str) -> Span {
        Span {
            trace_id: TraceId::random(),
            span_id: SpanId::random(),
            parent_span_id: None,
            workspace_id: None,
            name: name.into(),
            service: "s".into(),
            kind: Default::default(),
            start: Timestamp::from_nanos(1),
            end: Timestamp::from_nanos(2),
            status_code: Default::default(),
            status_message: None,
            attributes: Default::default(),
            events: Vec::new(),
            links: Vec::new(),
            resource_attributes: Default::default(),
            scope: Default::default(),
            trace_state: None,
            flags: 1,
        }
    }

    #[test]
    fn split_and_join_give_back_the_same_records_in_order() {
        let ws = WorkspaceId::new();
        let with_all = execution(ws);
        let batch = vec![
            Record::Spans {
                spans: vec![span("a"), span("b")],
            },
            Record::Execution {
                detail: Some(Box::new(ExecutionDetail {
                    execution_id: with_all.id,
                    request: serde_json::json!({"r": 1}),
                    response: serde_json::json!({"s": 2}),
                })),
                span: Some(Box::new(span("client"))),
                execution: Box::new(with_all),
            },
            Record::Execution {
                execution: Box::new(execution(ws)),
                detail: None,
                span: None,
            },
            Record::Spans { spans: Vec::new() },
            Record::Spans {
                spans: vec![span("c")],
            },
        ];
        let before = serde_json::to_value(&batch).unwrap();
        let parts = split(batch);
        assert_eq!(parts.executions.len(), 2);
        assert_eq!(parts.details.len(), 1);
        assert_eq!(
            parts
                .spans
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>(),
            ["a", "b", "client", "c"]
        );
        assert_eq!(serde_json::to_value(join(parts)).unwrap(), before);
    }
}
