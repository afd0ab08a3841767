//! The store's moving parts. Four threads, connected by bounded or ordered channels:
//!
//! `write()` ─► **wal** thread: drains every pending request, appends them as one
//! group, one fdatasync ─► **apply** thread: applies records in WAL order to the index
//! and memtables, answers each writer ─► (on flush) swaps the memtables out and hands
//! them to the **flusher** thread: writes the Parquet generation, publishes it, saves
//! the checkpoint, deletes covered WAL segments. The **ticker** asks for a flush when
//! the memtables are big or old enough (by the injected clock).
//!
//! A flush request travels through the WAL thread, which first rolls the segment, so a
//! checkpoint always sits at a segment boundary and whole segments can be deleted.

use crate::index::{Checkpoint, TenantIndex};
use crate::layout::{Signal, INDEX_DIR, WAL_DIR};
use crate::log_dedup::{self, LogDedup};
use crate::memtable::{self, MemTables};
use crate::model::WriteBatch;
use crate::parts::{self, Catalog};
use crate::wal::{self, WalPos, WalWriter};
use crate::{Clock, Error, RejectReason, Result, StoreConfig, WriteOutcome};
use parking_lot::RwLock;
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Most records one WAL group takes before it is written.
const MAX_GROUP_RECORDS: usize = 4096;
const MAX_GROUP_BYTES: usize = 16 << 20;

/// Counters behind [`crate::StoreStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) wal_records: AtomicU64,
    pub(crate) wal_fsyncs: AtomicU64,
    pub(crate) wal_bytes: AtomicU64,
    pub(crate) wal_replayed: AtomicU64,
    pub(crate) wal_truncated: AtomicU64,
    pub(crate) wal_corrupt: AtomicU64,
    pub(crate) wal_errors: AtomicU64,
    pub(crate) flushes: AtomicU64,
    pub(crate) flush_errors: AtomicU64,
    pub(crate) quarantined: AtomicU64,
    pub(crate) disk_full: AtomicU64,
    pub(crate) accepted: AtomicU64,
    pub(crate) out_of_order: AtomicU64,
    pub(crate) duplicate: AtomicU64,
    pub(crate) series_limit: AtomicU64,
    pub(crate) parts_read: AtomicU64,
    pub(crate) row_groups_read: AtomicU64,
    pub(crate) row_groups_pruned: AtomicU64,
    pub(crate) compactions: AtomicU64,
    pub(crate) compaction_errors: AtomicU64,
    /// Re-sent tailed log records dropped by [`crate::log_dedup`] (live and replay).
    pub(crate) log_duplicates: AtomicU64,
}

pub(crate) fn inc(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// Everything readers see, under one lock so a flush is published atomically.
#[derive(Default)]
pub(crate) struct State {
    pub(crate) index: HashMap<String, TenantIndex>,
    pub(crate) active: MemTables,
    /// Swapped-out memtables being written, oldest first, with their generation.
    pub(crate) frozen: Vec<(u64, Arc<MemTables>)>,
    pub(crate) catalog: Catalog,
    /// Which tailed log records were stored already (applied in WAL order).
    pub(crate) log_dedup: LogDedup,
}

pub(crate) struct Shared {
    pub(crate) root: PathBuf,
    pub(crate) config: StoreConfig,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) state: RwLock<State>,
    pub(crate) counters: Counters,
    pub(crate) flush_requested: AtomicBool,
    pub(crate) stop: AtomicBool,
    pub(crate) min_free_bytes: AtomicU64,
    /// Swapped-out generations not yet on disk; the ticker waits for 0 so a failing
    /// flush (disk full) does not pile up generations.
    pub(crate) flush_backlog: AtomicU64,
    /// Decoded metrics row groups (bounded LRU) for repeated range queries.
    pub(crate) part_cache: crate::part_cache::PartCache,
}

pub(crate) enum WalMsg {
    Append {
        tenant: String,
        batch: WriteBatch,
        payload: Vec<u8>,
        reply: oneshot::Sender<Result<WriteOutcome>>,
    },
    Flush {
        reply: Option<oneshot::Sender<Result<()>>>,
    },
}

pub(crate) struct Written {
    tenant: String,
    batch: WriteBatch,
    reply: oneshot::Sender<Result<WriteOutcome>>,
}

pub(crate) enum ApplyMsg {
    Records(Vec<Written>),
    Swap {
        pos: WalPos,
        reply: Option<oneshot::Sender<Result<()>>>,
    },
}

pub(crate) struct FlushJob {
    generation: u64,
    frozen: Arc<MemTables>,
    checkpoint: Checkpoint,
    /// The log dedup state as of `checkpoint.wal_pos`, saved before the checkpoint.
    log_dedup: LogDedup,
    published: bool,
    replies: Vec<oneshot::Sender<Result<()>>>,
}

/// A copy of an error for each waiter of a failed group.
pub(crate) fn dup_error(e: &Error) -> Error {
    match e {
        Error::Io { path, source } => Error::Io {
            path: path.clone(),
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
        Error::DiskFull(s) => Error::DiskFull(s.clone()),
        Error::Corrupt { path, reason } => Error::Corrupt {
            path: path.clone(),
            reason: reason.clone(),
        },
        Error::BadMatcher(s) => Error::BadMatcher(s.clone()),
        Error::Closed => Error::Closed,
        Error::Parquet(s) => Error::Parquet(s.clone()),
        Error::TooLarge { bytes, limit } => Error::TooLarge {
            bytes: *bytes,
            limit: *limit,
        },
    }
}

/// The WAL thread: group commit.
pub(crate) fn wal_loop(
    shared: Arc<Shared>,
    mut writer: WalWriter,
    mut rx: mpsc::Receiver<WalMsg>,
    apply_tx: std_mpsc::SyncSender<ApplyMsg>,
) {
    let c = &shared.counters;
    while let Some(first) = rx.blocking_recv() {
        let mut group: Vec<(Written, Vec<u8>)> = Vec::new();
        let mut bytes = 0usize;
        let mut flush = take(first, &mut group, &mut bytes);
        while flush.is_none() && group.len() < MAX_GROUP_RECORDS && bytes < MAX_GROUP_BYTES {
            match rx.try_recv() {
                Ok(m) => flush = take(m, &mut group, &mut bytes),
                Err(_) => break,
            }
        }
        if !group.is_empty() {
            let payloads: Vec<&[u8]> = group.iter().map(|(_, p)| p.as_slice()).collect();
            let total: usize = payloads.iter().map(|p| p.len() + 8).sum();
            match writer.append_group(&payloads) {
                Ok(_) => {
                    inc(&c.wal_fsyncs, 1);
                    inc(&c.wal_records, group.len() as u64);
                    inc(&c.wal_bytes, total as u64);
                    let written: Vec<Written> = group.into_iter().map(|(w, _)| w).collect();
                    if let Err(std_mpsc::SendError(ApplyMsg::Records(ws))) =
                        apply_tx.send(ApplyMsg::Records(written))
                    {
                        for w in ws {
                            let _ = w.reply.send(Err(Error::Closed));
                        }
                    }
                }
                Err(e) => {
                    if matches!(e, Error::DiskFull(_)) {
                        inc(&c.disk_full, 1);
                    } else {
                        inc(&c.wal_errors, 1);
                    }
                    tracing::warn!("WAL append failed, {} writes rejected: {e}", group.len());
                    for (w, _) in group {
                        let _ = w.reply.send(Err(dup_error(&e)));
                    }
                }
            }
        }
        if let Some(reply) = flush {
            match writer.roll() {
                Ok(()) => {
                    let _ = apply_tx.send(ApplyMsg::Swap {
                        pos: writer.position(),
                        reply,
                    });
                }
                Err(e) => {
                    shared.flush_requested.store(false, Ordering::SeqCst);
                    tracing::warn!("WAL roll before flush failed: {e}");
                    if let Some(r) = reply {
                        let _ = r.send(Err(e));
                    }
                }
            }
        }
    }
}

type FlushReply = Option<oneshot::Sender<Result<()>>>;

/// Adds an append to the group, or returns the reply slot of a flush request.
fn take(m: WalMsg, group: &mut Vec<(Written, Vec<u8>)>, bytes: &mut usize) -> Option<FlushReply> {
    match m {
        WalMsg::Append {
            tenant,
            batch,
            payload,
            reply,
        } => {
            *bytes += payload.len();
            group.push((
                Written {
                    tenant,
                    batch,
                    reply,
                },
                payload,
            ));
            None
        }
        WalMsg::Flush { reply } => Some(reply),
    }
}

/// The apply thread: makes written records visible, in WAL order; swaps memtables out
/// for flushes.
pub(crate) fn apply_loop(
    shared: Arc<Shared>,
    rx: std_mpsc::Receiver<ApplyMsg>,
    flush_tx: std_mpsc::Sender<FlushJob>,
    mut next_generation: u64,
) {
    let c = &shared.counters;
    for msg in rx {
        match msg {
            ApplyMsg::Records(ws) => {
                let now = shared.clock.now_ms();
                let mut outcomes = Vec::with_capacity(ws.len());
                {
                    let mut st = shared.state.write();
                    let st = &mut *st;
                    for mut w in ws {
                        let duplicates = st.log_dedup.filter(&w.tenant, &mut w.batch, now);
                        inc(&c.log_duplicates, duplicates);
                        let mut out = memtable::apply(
                            &mut st.index,
                            &mut st.active,
                            &w.tenant,
                            w.batch,
                            shared.config.max_series_per_tenant,
                            now,
                        );
                        if let Ok(o) = &mut out {
                            o.log_duplicates = duplicates;
                            count_outcome(c, o);
                        }
                        outcomes.push((w.reply, out));
                    }
                }
                for (reply, out) in outcomes {
                    let _ = reply.send(out);
                }
            }
            ApplyMsg::Swap { pos, reply } => {
                let generation = next_generation;
                next_generation += 1;
                let (frozen, tenants, log_dedup) = {
                    let mut st = shared.state.write();
                    let frozen = Arc::new(std::mem::take(&mut st.active));
                    st.frozen.push((generation, frozen.clone()));
                    let tenants = st
                        .index
                        .iter()
                        .map(|(t, ti)| (t.clone(), ti.series.clone()))
                        .collect();
                    (frozen, tenants, st.log_dedup.clone())
                };
                shared.flush_requested.store(false, Ordering::SeqCst);
                inc(&shared.flush_backlog, 1);
                let job = FlushJob {
                    generation,
                    frozen,
                    checkpoint: Checkpoint {
                        generation,
                        wal_pos: pos,
                        tenants,
                    },
                    log_dedup,
                    published: false,
                    replies: reply.into_iter().collect(),
                };
                if flush_tx.send(job).is_err() {
                    return;
                }
            }
        }
    }
}

pub(crate) fn count_outcome(c: &Counters, o: &WriteOutcome) {
    inc(&c.accepted, o.accepted);
    for r in &o.rejected {
        let counter = match r.reason {
            RejectReason::OutOfOrder => &c.out_of_order,
            RejectReason::Duplicate => &c.duplicate,
            RejectReason::SeriesLimit => &c.series_limit,
        };
        inc(counter, r.count);
    }
}

/// The flusher thread: writes generations in order, retrying a failed one before any
/// later one (a checkpoint implies all earlier generations are on disk).
pub(crate) fn flush_loop(shared: Arc<Shared>, rx: std_mpsc::Receiver<FlushJob>) {
    let mut queue: VecDeque<FlushJob> = VecDeque::new();
    let mut disconnected = false;
    while !(disconnected && queue.is_empty()) {
        match rx.recv_timeout(Duration::from_millis(if queue.is_empty() {
            1000
        } else {
            500
        })) {
            Ok(job) => queue.push_back(job),
            Err(std_mpsc::RecvTimeoutError::Timeout) => {}
            Err(std_mpsc::RecvTimeoutError::Disconnected) => disconnected = true,
        }
        while let Some(job) = queue.front_mut() {
            match run_job(&shared, job) {
                Ok(()) => {
                    shared.flush_backlog.fetch_sub(1, Ordering::SeqCst);
                    if let Some(job) = queue.pop_front() {
                        for r in job.replies {
                            let _ = r.send(Ok(()));
                        }
                    }
                    if queue.is_empty() {
                        crate::compaction::compact_metrics(&shared);
                    }
                }
                Err(e) => {
                    inc(&shared.counters.flush_errors, 1);
                    if matches!(e, Error::DiskFull(_)) {
                        inc(&shared.counters.disk_full, 1);
                    }
                    tracing::warn!(generation = job.generation, "flush failed, will retry: {e}");
                    for j in queue.iter_mut() {
                        for r in j.replies.drain(..) {
                            let _ = r.send(Err(dup_error(&e)));
                        }
                    }
                    if disconnected {
                        // shutting down: the data is still in the WAL
                        return;
                    }
                    break;
                }
            }
        }
    }
}

fn run_job(shared: &Shared, job: &mut FlushJob) -> Result<()> {
    if !job.published {
        let new_parts = parts::write_generation(&shared.root, job.generation, &job.frozen)?;
        let mut st = shared.state.write();
        for (tenant, p) in new_parts {
            st.catalog.entry((p.signal, tenant)).or_default().push(p);
        }
        st.frozen.retain(|(g, _)| *g != job.generation);
        job.published = true;
    }
    let index_dir = shared.root.join(INDEX_DIR);
    // Dedup state first: a crash before the checkpoint leaves the previous
    // generation's checkpoint and dedup file, which still agree.
    job.log_dedup.save(&index_dir, job.generation)?;
    job.checkpoint.save(&index_dir)?;
    if let Err(e) = log_dedup::remove_before(&index_dir, job.generation) {
        tracing::warn!("removing old log dedup files: {e}");
    }
    inc(&shared.counters.flushes, 1);
    let removed =
        wal::remove_segments_before(&shared.root.join(WAL_DIR), job.checkpoint.wal_pos.seg)?;
    tracing::debug!(generation = job.generation, removed, "flush done");
    Ok(())
}

/// The ticker thread: requests a flush when the memtables reach the size or age limit.
pub(crate) fn tick_loop(shared: Arc<Shared>, wal_tx: mpsc::Sender<WalMsg>) {
    let interval_ms =
        i64::try_from(shared.config.memtable_flush_interval.as_millis()).unwrap_or(i64::MAX);
    while !shared.stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
        let (bytes, oldest) = {
            let st = shared.state.read();
            (st.active.bytes, st.active.oldest_ms)
        };
        let now = shared.clock.now_ms();
        let due = bytes >= shared.config.memtable_flush_bytes
            || oldest.is_some_and(|o| now.saturating_sub(o) >= interval_ms);
        if due
            && shared.flush_backlog.load(Ordering::SeqCst) == 0
            && !shared.flush_requested.swap(true, Ordering::SeqCst)
            && wal_tx.try_send(WalMsg::Flush { reply: None }).is_err()
        {
            shared.flush_requested.store(false, Ordering::SeqCst);
        }
    }
}

/// Signals and their parts, for stats.
pub(crate) fn part_totals(st: &State) -> (u64, u64) {
    let mut n = 0;
    let mut bytes = 0;
    for ps in st.catalog.values() {
        n += ps.len() as u64;
        bytes += ps.iter().map(|p| p.bytes).sum::<u64>();
    }
    (n, bytes)
}

/// Bytes of parts of one signal (used by the bytes/sample report).
pub(crate) fn signal_bytes(st: &State, signal: Signal) -> u64 {
    st.catalog
        .iter()
        .filter(|((s, _), _)| *s == signal)
        .flat_map(|(_, ps)| ps.iter())
        .map(|p| p.bytes)
        .sum()
}
