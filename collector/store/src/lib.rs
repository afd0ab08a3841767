//! Sightline's embedded store.
//!
//! Data flow: [`Store::write`] appends one record per request to the write-ahead log
//! (`wal/`, segmented files, CRC per record) and returns only after the record is
//! fsync'd — concurrent writers share one fsync (group commit). The store's apply
//! thread then checks the ingest rules (out of order, duplicate, series limit) in WAL
//! order and adds the batch to per-tenant memtables (metrics column-wise per series,
//! logs and spans as Arrow record batches), which are flushed to Parquet parts under
//! `metrics/`, `logs/`, `traces/` partitioned by tenant and hour (rows sorted by series
//! and time, zstd; an hour's metrics parts are later merged). `index/` keeps each
//! tenant's series label index, checkpointed with every flush; WAL segments the flush
//! covers are deleted. On [`Store::open`] the WAL after the checkpoint is replayed, so
//! everything acknowledged survives a crash. Module map: `wal` (segments, replay),
//! `codec` (record payloads), `engine` (threads), `memtable` (ingest rules), `index`,
//! `parts`/`metrics_part`/`records_part` (Parquet), `compaction`, `query`, `layout`.
//! Reads ([`Store::select_series`], [`Store::series`], [`Store::label_names`],
//! [`Store::label_values`], [`Store::select_logs`], [`Store::select_spans`],
//! [`Store::scan_spans`] for trace search) merge
//! memtables and parts and never see another tenant's data.

pub mod clock;
mod codec;
mod compaction;
mod engine;
mod index;
mod layout;
pub mod log_dedup;
pub mod matcher;
mod memtable;
mod metrics_part;
pub mod model;
mod part_cache;
mod parts;
mod query;
mod records_part;
mod span_search;
mod wal;

use engine::{inc, Shared, WalMsg};
use index::Checkpoint;
use layout::{INDEX_DIR, WAL_DIR};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

pub use clock::{Clock, ManualClock, SystemClock};
pub use matcher::{MatchOp, Matcher};
pub use model::{
    AttrValue, Attributes, Label, Labels, LogRecord, Sample, Series, SpanRecord, WriteBatch,
    METRIC_NAME,
};
pub use span_search::SpanScan;

/// Errors of the store. [`Error::is_retryable`] tells receivers whether the sender
/// should retry (unavailable) or not (bad request).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("i/o error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("storage is full, retry later: {0}")]
    DiskFull(String),
    #[error("corrupt data in {path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("invalid matcher: {0}")]
    BadMatcher(String),
    #[error("store is shutting down")]
    Closed,
    #[error("parquet: {0}")]
    Parquet(String),
    /// One write larger than a WAL record may be; split the request.
    #[error("write of {bytes} bytes exceeds the {limit} byte limit of one request")]
    TooLarge { bytes: usize, limit: usize },
}

impl Error {
    /// True for conditions that clear up on their own (disk full, shutting down).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::DiskFull(_) | Error::Closed | Error::Io { .. })
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why individual samples of an otherwise accepted batch were not stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// Older than the newest sample already stored for its series.
    OutOfOrder,
    /// Same timestamp as a stored sample with a different value.
    Duplicate,
    /// The tenant's series limit would be exceeded by a new series.
    SeriesLimit,
}

impl RejectReason {
    /// Label value used in `sightline_collector_rejected_total{reason}`.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::OutOfOrder => "out_of_order",
            RejectReason::Duplicate => "duplicate",
            RejectReason::SeriesLimit => "series_limit",
        }
    }
}

/// Result of a write that reached the WAL.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WriteOutcome {
    /// Items stored (samples, log records, spans).
    pub accepted: u64,
    /// Samples not stored, by reason, with the first offending series as an example.
    pub rejected: Vec<Rejection>,
    /// Tailed log records not stored because they were stored before (a re-send; see
    /// [`log_dedup`]). Not an error for the sender.
    pub log_duplicates: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Rejection {
    pub reason: RejectReason,
    pub count: u64,
    /// Human-readable example, e.g. `out of order sample for series {__name__="up"} at 1700000000000`.
    pub example: String,
}

/// Store configuration (the collector's `storage:` section maps onto it).
#[derive(Clone, Debug)]
pub struct StoreConfig {
    pub data_dir: PathBuf,
    /// WAL segment size before rolling to a new file.
    pub wal_segment_bytes: u64,
    /// Memtable size (approximate bytes, all tenants) that triggers a flush to Parquet.
    pub memtable_flush_bytes: usize,
    /// Age of the oldest unflushed data that triggers a flush.
    pub memtable_flush_interval: std::time::Duration,
    /// Keep at least this many bytes free on the data volume; below it writes fail
    /// with [`Error::DiskFull`].
    pub min_free_bytes: u64,
    /// Per-tenant active series limit.
    pub max_series_per_tenant: usize,
}

impl StoreConfig {
    /// Defaults for everything but the data directory: 64 MiB WAL segments, flush at
    /// 256 MiB or every 10 minutes, keep 256 MiB free, 1 M series per tenant.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        StoreConfig {
            data_dir: data_dir.into(),
            wal_segment_bytes: 64 << 20,
            memtable_flush_bytes: 256 << 20,
            memtable_flush_interval: std::time::Duration::from_secs(600),
            min_free_bytes: 256 << 20,
            max_series_per_tenant: 1_000_000,
        }
    }
}

/// Counters the collector exports on `/metrics` (as
/// `sightline_store_<field>`; `*_total` fields are counters, the rest gauges).
#[derive(Clone, Debug, Default)]
pub struct StoreStats {
    pub wal_records_total: u64,
    pub wal_fsyncs_total: u64,
    pub wal_bytes_total: u64,
    pub wal_replayed_records_total: u64,
    pub flushes_total: u64,
    /// Part files currently in the store (gauge).
    pub parts_total: u64,
    /// Series in the index, all tenants (gauge).
    pub series_total: u64,
    pub quarantined_files_total: u64,
    /// Writes or flushes refused for lack of space (min_free_bytes or ENOSPC).
    pub disk_full_total: u64,
    /// Torn records cut off WAL segment tails at start-up.
    pub wal_truncated_tails_total: u64,
    /// Corrupt WAL records skipped (and copied to `quarantine/`) at start-up.
    pub wal_corrupt_records_total: u64,
    /// WAL appends that failed for other I/O reasons.
    pub wal_errors_total: u64,
    pub flush_errors_total: u64,
    /// Items stored (samples, log records, spans), including idempotent resends.
    pub accepted_total: u64,
    pub rejected_out_of_order_total: u64,
    pub rejected_duplicate_total: u64,
    pub rejected_series_limit_total: u64,
    /// Approximate bytes held in memtables (gauge).
    pub memtable_bytes: u64,
    /// Bytes of all part files (gauge).
    pub parts_bytes: u64,
    /// Bytes of metrics part files (gauge).
    pub metrics_parts_bytes: u64,
    /// Part files opened by selects (parts outside the time range are not counted).
    pub parts_read_total: u64,
    /// Row groups decoded by selects.
    pub row_groups_read_total: u64,
    /// Row groups skipped thanks to their statistics.
    pub row_groups_pruned_total: u64,
    /// Hours whose metrics parts were merged into one.
    pub compactions_total: u64,
    pub compaction_errors_total: u64,
    /// Re-sent tailed log records dropped by the (stream, offset) dedup, including
    /// those dropped again during WAL replay.
    pub log_duplicates_total: u64,
    /// Log streams the dedup remembers (gauge).
    pub log_dedup_streams: u64,
}

/// The store. Cheap to share behind an `Arc`. Dropping it stops its threads after
/// they finish what they hold (unflushed data stays in the WAL).
pub struct Store {
    shared: Arc<Shared>,
    wal_tx: Option<mpsc::Sender<WalMsg>>,
    ticker: Option<std::thread::JoinHandle<()>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(f)
        .map_err(|e| Error::Io {
            path: PathBuf::from(name),
            source: e,
        })
}

impl Store {
    /// Opens (creating if needed) the data directory and replays the WAL.
    pub fn open(config: StoreConfig, clock: Arc<dyn Clock>) -> Result<Store> {
        let root = config.data_dir.clone();
        for d in [WAL_DIR, INDEX_DIR, layout::QUARANTINE_DIR] {
            layout::create_dir_all(&root.join(d))?;
        }
        let counters = engine::Counters::default();
        let (checkpoint, index_lost) = match Checkpoint::load(&root.join(INDEX_DIR)) {
            Ok(c) => (c, false),
            Err(e @ Error::Corrupt { .. }) => {
                let path = root.join(INDEX_DIR).join(index::INDEX_FILE);
                let dest = layout::quarantine(&root, &path)?;
                tracing::warn!(dest = %dest.display(), "series index quarantined, its metrics parts follow: {e}");
                inc(&counters.quarantined, 1);
                (None, true)
            }
            Err(e) => return Err(e),
        };
        let checkpoint = checkpoint.unwrap_or_default();
        let scan = parts::scan(
            &root,
            (!index_lost).then_some(checkpoint.generation),
            index_lost,
        )?;
        inc(&counters.quarantined, scan.quarantined);
        let max_part_gen = scan
            .catalog
            .values()
            .flat_map(|ps| ps.iter().map(|p| p.generation))
            .max()
            .unwrap_or(0);
        let next_generation = checkpoint.generation.max(max_part_gen) + 1;
        let from = checkpoint.wal_pos;
        let dedup_generation = if index_lost {
            max_part_gen
        } else {
            checkpoint.generation
        };
        let log_dedup = load_log_dedup(&root, dedup_generation, &counters)?;
        let mut state = engine::State {
            catalog: scan.catalog,
            index: checkpoint.into_index(),
            log_dedup,
            ..Default::default()
        };
        let now = clock.now_ms();
        let report = wal::replay(&root, from, |_, _, payload| {
            let (tenant, mut batch) = codec::decode(payload)?;
            inc(
                &counters.log_duplicates,
                state.log_dedup.filter(&tenant, &mut batch, now),
            );
            let out = memtable::apply(
                &mut state.index,
                &mut state.active,
                &tenant,
                batch,
                config.max_series_per_tenant,
                now,
            )
            .map_err(|e| e.to_string())?;
            engine::count_outcome(&counters, &out);
            Ok(())
        })?;
        inc(&counters.wal_replayed, report.records);
        inc(&counters.wal_truncated, report.truncated_tails);
        inc(&counters.wal_corrupt, report.corrupt_records);
        inc(&counters.quarantined, report.corrupt_records);
        let first_seg = report.last_seq.map_or(1, |s| s + 1).max(from.seg);
        let writer =
            wal::WalWriter::create(&root.join(WAL_DIR), first_seg, config.wal_segment_bytes)?;
        tracing::info!(
            data_dir = %root.display(),
            replayed = report.records,
            series = state.index.values().map(|t| t.series.len()).sum::<usize>(),
            "store opened"
        );
        let shared = Arc::new(Shared {
            min_free_bytes: std::sync::atomic::AtomicU64::new(config.min_free_bytes),
            flush_backlog: Default::default(),
            part_cache: part_cache::PartCache::new(part_cache::DEFAULT_BUDGET_BYTES),
            root,
            config,
            clock,
            state: parking_lot::RwLock::new(state),
            counters,
            flush_requested: Default::default(),
            stop: Default::default(),
        });
        let (wal_tx, wal_rx) = mpsc::channel(4096);
        let (apply_tx, apply_rx) = std::sync::mpsc::sync_channel(64);
        let (flush_tx, flush_rx) = std::sync::mpsc::channel();
        let mut threads = Vec::new();
        let s = shared.clone();
        threads.push(spawn("sl-store-wal", move || {
            engine::wal_loop(s, writer, wal_rx, apply_tx)
        })?);
        let s = shared.clone();
        threads.push(spawn("sl-store-apply", move || {
            engine::apply_loop(s, apply_rx, flush_tx, next_generation)
        })?);
        let s = shared.clone();
        threads.push(spawn("sl-store-flush", move || {
            engine::flush_loop(s, flush_rx)
        })?);
        let s = shared.clone();
        let t = wal_tx.clone();
        let ticker = Some(spawn("sl-store-tick", move || engine::tick_loop(s, t))?);
        if report.corrupt_records > 0 {
            // flush soon, so the segment with the bad record goes away and is not
            // quarantined again on the next start
            let _ = wal_tx.try_send(WalMsg::Flush { reply: None });
        }
        Ok(Store {
            shared,
            wal_tx: Some(wal_tx),
            ticker,
            threads,
        })
    }

    /// Durably appends `batch` for `tenant`: returns after the WAL fsync.
    pub async fn write(&self, tenant: &str, batch: WriteBatch) -> Result<WriteOutcome> {
        if batch.item_count() == 0 {
            return Ok(WriteOutcome::default());
        }
        let tx = self.wal_tx.as_ref().ok_or(Error::Closed)?;
        let c = &self.shared.counters;
        let free = layout::free_bytes(&self.shared.root)?;
        let min_free = self.shared.min_free_bytes.load(Ordering::Relaxed);
        if free < min_free {
            inc(&c.disk_full, 1);
            return Err(Error::DiskFull(format!(
                "{} bytes free on the data volume, {} required",
                free, min_free
            )));
        }
        let payload = codec::encode(tenant, &batch);
        if payload.len() > wal::MAX_RECORD_BYTES {
            return Err(Error::TooLarge {
                bytes: payload.len(),
                limit: wal::MAX_RECORD_BYTES,
            });
        }
        let (reply, rx) = oneshot::channel();
        tx.send(WalMsg::Append {
            tenant: tenant.to_string(),
            batch,
            payload,
            reply,
        })
        .await
        .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Series matching all `matchers`, with their samples in `[start_ms, end_ms]`.
    pub fn select_series(
        &self,
        tenant: &str,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Series>> {
        self.shared
            .select_series(tenant, matchers, start_ms, end_ms)
    }

    /// Label sets of series with samples in the range matching any of `matcher_sets`
    /// (all series when empty).
    pub fn series(
        &self,
        tenant: &str,
        matcher_sets: &[Vec<Matcher>],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Labels>> {
        Ok(self.shared.series(tenant, matcher_sets, start_ms, end_ms))
    }

    /// Sorted label names.
    pub fn label_names(
        &self,
        tenant: &str,
        matcher_sets: &[Vec<Matcher>],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<String>> {
        Ok(self
            .shared
            .label_names(tenant, matcher_sets, start_ms, end_ms))
    }

    /// Sorted values of one label.
    pub fn label_values(
        &self,
        tenant: &str,
        name: &str,
        matcher_sets: &[Vec<Matcher>],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<String>> {
        Ok(self
            .shared
            .label_values(tenant, name, matcher_sets, start_ms, end_ms))
    }

    /// Log records with `start_ns <= timestamp_ns <= end_ns`, oldest first, at most `limit`.
    pub fn select_logs(
        &self,
        tenant: &str,
        start_ns: i64,
        end_ns: i64,
        limit: usize,
    ) -> Result<Vec<LogRecord>> {
        self.shared.select_logs(tenant, start_ns, end_ns, limit)
    }

    /// Spans starting in `[start_ns, end_ns]`, optionally only one trace.
    pub fn select_spans(
        &self,
        tenant: &str,
        trace_id: Option<&[u8]>,
        start_ns: i64,
        end_ns: i64,
    ) -> Result<Vec<SpanRecord>> {
        self.shared.select_spans(tenant, trace_id, start_ns, end_ns)
    }

    /// Flushes all memtables to Parquet parts (then the covered WAL segments can go).
    /// Returns after the parts and the index checkpoint are durable.
    pub async fn flush(&self) -> Result<()> {
        let tx = self.wal_tx.as_ref().ok_or(Error::Closed)?;
        let (reply, rx) = oneshot::channel();
        tx.send(WalMsg::Flush { reply: Some(reply) })
            .await
            .map_err(|_| Error::Closed)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Changes the free-space floor at run time (e.g. on config reload).
    pub fn set_min_free_bytes(&self, bytes: u64) {
        self.shared.min_free_bytes.store(bytes, Ordering::Relaxed);
    }

    pub fn stats(&self) -> StoreStats {
        let c = &self.shared.counters;
        let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let st = self.shared.state.read();
        let (parts_total, parts_bytes) = engine::part_totals(&st);
        StoreStats {
            wal_records_total: get(&c.wal_records),
            wal_fsyncs_total: get(&c.wal_fsyncs),
            wal_bytes_total: get(&c.wal_bytes),
            wal_replayed_records_total: get(&c.wal_replayed),
            flushes_total: get(&c.flushes),
            parts_total,
            series_total: st.index.values().map(|t| t.series.len() as u64).sum(),
            quarantined_files_total: get(&c.quarantined),
            disk_full_total: get(&c.disk_full),
            wal_truncated_tails_total: get(&c.wal_truncated),
            wal_corrupt_records_total: get(&c.wal_corrupt),
            wal_errors_total: get(&c.wal_errors),
            flush_errors_total: get(&c.flush_errors),
            accepted_total: get(&c.accepted),
            rejected_out_of_order_total: get(&c.out_of_order),
            rejected_duplicate_total: get(&c.duplicate),
            rejected_series_limit_total: get(&c.series_limit),
            memtable_bytes: (st.active.bytes
                + st.frozen.iter().map(|(_, m)| m.bytes).sum::<usize>())
                as u64,
            parts_bytes,
            metrics_parts_bytes: engine::signal_bytes(&st, layout::Signal::Metrics),
            parts_read_total: get(&c.parts_read),
            row_groups_read_total: get(&c.row_groups_read),
            row_groups_pruned_total: get(&c.row_groups_pruned),
            compactions_total: get(&c.compactions),
            compaction_errors_total: get(&c.compaction_errors),
            log_duplicates_total: get(&c.log_duplicates),
            log_dedup_streams: st.log_dedup.streams() as u64,
        }
    }
}

/// The log dedup state saved with the checkpoint of `generation` (or the newest older
/// one, reported). A corrupt file is quarantined and the store starts without it.
fn load_log_dedup(
    root: &std::path::Path,
    generation: u64,
    counters: &engine::Counters,
) -> Result<log_dedup::LogDedup> {
    let dir = root.join(INDEX_DIR);
    match log_dedup::LogDedup::load(&dir, generation) {
        Ok((d, found)) => {
            if generation > 0 && found != Some(generation) {
                tracing::warn!(
                    generation,
                    found = ?found,
                    "log dedup state of the checkpoint's generation is missing; records re-sent from before it may be stored twice"
                );
            }
            Ok(d)
        }
        Err(Error::Corrupt { path, reason }) => {
            let dest = layout::quarantine(root, &path)?;
            inc(&counters.quarantined, 1);
            tracing::warn!(dest = %dest.display(), %reason, "corrupt log dedup state quarantined; records re-sent from before it may be stored twice");
            Ok(log_dedup::LogDedup::default())
        }
        Err(e) => Err(e),
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
        self.wal_tx = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests;
