//! Sightline's embedded store.
//!
//! Data flow: [`Store::write`] appends one record per request to the write-ahead log
//! (`wal/`, segmented files, CRC per record) and returns only after the record is
//! fsync'd — concurrent writers share one fsync (group commit). The batch then goes
//! into per-tenant Arrow memtables, which are flushed to Parquet parts under
//! `metrics/`, `logs/`, `traces/` partitioned by tenant and hour (rows sorted by series
//! and time, zstd). `index/` keeps each tenant's series label index. On
//! [`Store::open`] the WAL is replayed, so everything acknowledged survives a crash.
//! Reads ([`Store::select_series`], [`Store::series`], [`Store::label_names`],
//! [`Store::label_values`], [`Store::select_logs`], [`Store::select_spans`]) merge
//! memtables and parts and never see another tenant's data.

pub mod clock;
pub mod matcher;
pub mod model;

use std::path::PathBuf;
use std::sync::Arc;

pub use clock::{Clock, ManualClock, SystemClock};
pub use matcher::{MatchOp, Matcher};
pub use model::{
    AttrValue, Attributes, Label, Labels, LogRecord, Sample, Series, SpanRecord, WriteBatch,
    METRIC_NAME,
};

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

/// Counters the collector exports on `/metrics`.
#[derive(Clone, Debug, Default)]
pub struct StoreStats {
    pub wal_records_total: u64,
    pub wal_fsyncs_total: u64,
    pub wal_bytes_total: u64,
    pub wal_replayed_records_total: u64,
    pub flushes_total: u64,
    pub parts_total: u64,
    pub series_total: u64,
    pub quarantined_files_total: u64,
}

/// The store. Cheap to share behind an `Arc`.
pub struct Store {
    _clock: Arc<dyn Clock>,
}

impl Store {
    /// Opens (creating if needed) the data directory and replays the WAL.
    pub fn open(_config: StoreConfig, _clock: Arc<dyn Clock>) -> Result<Store> {
        todo!("store helper")
    }

    /// Durably appends `batch` for `tenant`: returns after the WAL fsync.
    pub async fn write(&self, _tenant: &str, _batch: WriteBatch) -> Result<WriteOutcome> {
        todo!("store helper")
    }

    /// Series matching all `matchers`, with their samples in `[start_ms, end_ms]`.
    pub fn select_series(&self, _tenant: &str, _matchers: &[Matcher], _start_ms: i64, _end_ms: i64) -> Result<Vec<Series>> {
        todo!("store helper")
    }

    /// Label sets of series with samples in the range matching any of `matcher_sets`
    /// (all series when empty).
    pub fn series(&self, _tenant: &str, _matcher_sets: &[Vec<Matcher>], _start_ms: i64, _end_ms: i64) -> Result<Vec<Labels>> {
        todo!("store helper")
    }

    /// Sorted label names.
    pub fn label_names(&self, _tenant: &str, _matcher_sets: &[Vec<Matcher>], _start_ms: i64, _end_ms: i64) -> Result<Vec<String>> {
        todo!("store helper")
    }

    /// Sorted values of one label.
    pub fn label_values(&self, _tenant: &str, _name: &str, _matcher_sets: &[Vec<Matcher>], _start_ms: i64, _end_ms: i64) -> Result<Vec<String>> {
        todo!("store helper")
    }

    /// Log records with `start_ns <= timestamp_ns <= end_ns`, oldest first, at most `limit`.
    pub fn select_logs(&self, _tenant: &str, _start_ns: i64, _end_ns: i64, _limit: usize) -> Result<Vec<LogRecord>> {
        todo!("store helper")
    }

    /// Spans starting in `[start_ns, end_ns]`, optionally only one trace.
    pub fn select_spans(&self, _tenant: &str, _trace_id: Option<&[u8]>, _start_ns: i64, _end_ns: i64) -> Result<Vec<SpanRecord>> {
        todo!("store helper")
    }

    /// Flushes all memtables to Parquet parts (then the covered WAL segments can go).
    pub async fn flush(&self) -> Result<()> {
        todo!("store helper")
    }

    pub fn stats(&self) -> StoreStats {
        todo!("store helper")
    }
}
