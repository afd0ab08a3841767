//! Bounded on-disk store-and-forward buffer between collection and shipping.
//!
//! ```text
//! metrics spooler (BatchQueue) ─┐                          ┌─► shipper task: Exporter
//! logs spooler (ship.rs)  ──────┴─► Buffer::push ─► <dir>/<seq>.seg ─► Buffer::next ─► ack
//!   (fdatasync, then the log checkpoint may advance)          (segment deleted when every
//!                                                               frame in it is acked)
//! ```
//! Each push appends one frame (one encoded OTLP export request, see [`segment`]) to the
//! active segment and fdatasyncs it before returning: a pushed request survives an agent
//! crash. That is the ack point for log tailing: a file offset is checkpointed once the
//! records read before it are durably in the buffer (the buffer, not the collector, has
//! them; it re-sends them after a restart). The active segment rolls at `segment_bytes`.
//! The shipper reads frames in order, exports each with the [`crate::export::Exporter`]
//! (retrying until the collector acknowledges, or a permanent refusal), then acks it;
//! the read cursor (`<dir>/cursor.json`: segment and offset) is rewritten after every
//! ack (temp file + rename, no fsync: it survives a process crash; after a power loss
//! frames since the last writeback are sent again), so a restart resumes where shipping
//! stopped, re-sending at most the frame that was in flight — which the collector
//! deduplicates for logs (stream, offset) and accepts as an identical re-write for
//! metrics. A segment is deleted only when every frame in it was acked.
//!
//! Full (`max_bytes` of segments on disk): `backpressure` (default) makes `push` wait
//! for the shipper to free a segment (log tailing pauses through its gate; the metrics
//! queue keeps the newest batches in memory and drops the oldest, counted), or
//! `drop_oldest` deletes the oldest segment and counts the records in it that were not
//! shipped (`sightline_agent_buffer_records_dropped_total{reason="drop_oldest"}`).
//!
//! At start every segment is scanned: an incomplete last frame of the newest segment
//! (a write cut short) is cut off; a segment with a bad magic, CRC or length is moved to
//! `<dir>/corrupt/`, reported once at warn and counted
//! (`sightline_agent_buffer_corrupt_segments_total`), and its valid frames before the
//! damage are kept in a fresh file of the same sequence number. Frames read at run time
//! are checked again; a bad one quarantines the rest of its segment the same way.

pub mod config;
pub mod metrics;
pub mod segment;
pub mod ship;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::telemetry::Telemetry;
use crate::{Error, Result};
pub use segment::Signal;
use segment::{frame, parse_at, scan, ScanEnd, MAGIC};

/// What to do when the buffer holds `max_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenFull {
    /// `push` waits for space: collection pauses (default).
    #[default]
    Backpressure,
    /// Delete the oldest segment and count what was in it.
    DropOldest,
}

impl WhenFull {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "backpressure" => Some(Self::Backpressure),
            "drop_oldest" => Some(Self::DropOldest),
            _ => None,
        }
    }
}

/// The `buffer:` section, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BufferConfig {
    /// Default `<data-dir>/buffer`.
    pub dir: PathBuf,
    /// Bytes of segments on disk before the full-policy applies (default 256 MiB).
    pub max_bytes: u64,
    /// Size at which the active segment is closed and a new one started (default 8 MiB).
    pub segment_bytes: u64,
    pub when_full: WhenFull,
}

impl BufferConfig {
    pub const DEFAULT_MAX_BYTES: u64 = 256 << 20;
    pub const DEFAULT_SEGMENT_BYTES: u64 = 8 << 20;

    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            max_bytes: Self::DEFAULT_MAX_BYTES,
            segment_bytes: Self::DEFAULT_SEGMENT_BYTES,
            when_full: WhenFull::Backpressure,
        }
    }
}

/// One frame handed to the shipper.
#[derive(Debug, Clone)]
pub struct Record {
    pub signal: Signal,
    pub items: u64,
    pub payload: Vec<u8>,
    seq: u64,
    offset: u64,
    len: u64,
}

/// How a push ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Durably in the buffer.
    Stored,
    /// Larger than the whole buffer: dropped (counted).
    TooLarge,
    /// The buffer was closed while waiting for space: not stored.
    Closed,
}

#[derive(Debug, Clone, Default)]
struct SegMeta {
    len: u64,
    /// Items per signal in the whole segment.
    items: [u64; 3],
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Cursor {
    seq: u64,
    offset: u64,
}

struct Inner {
    segments: BTreeMap<u64, SegMeta>,
    /// The active segment (the last in `segments`).
    writer: File,
    active: u64,
    cursor: Cursor,
    /// Items per signal before the cursor in the cursor's segment (already shipped).
    read_items: [u64; 3],
    /// The frame handed out by `next` and not acked yet.
    in_flight: Option<(u64, u64)>,
    read_file: Option<(u64, File)>,
    cursor_dirty: bool,
    closed: bool,
}

/// The buffer; share it as `Arc<Buffer>`.
pub struct Buffer {
    cfg: BufferConfig,
    inner: Mutex<Inner>,
    data: Notify,
    space: Notify,
    telemetry: Arc<Telemetry>,
}

impl std::fmt::Debug for Buffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Buffer").field("cfg", &self.cfg).finish()
    }
}

const CURSOR_FILE: &str = "cursor.json";
const CORRUPT_DIR: &str = "corrupt";

fn seg_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.seg"))
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

fn list_segments(dir: &Path) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let e = e.map_err(|e| Error::io(dir, e))?;
        let name = e.file_name();
        if let Some(seq) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".seg"))
            .and_then(|n| n.parse::<u64>().ok())
        {
            out.push(seq);
        }
    }
    out.sort_unstable();
    Ok(out)
}

fn new_segment(dir: &Path, seq: u64) -> Result<File> {
    let path = seg_path(dir, seq);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    f.write_all(MAGIC).map_err(|e| Error::io(&path, e))?;
    f.sync_data().map_err(|e| Error::io(&path, e))?;
    sync_dir(dir);
    Ok(f)
}

fn items_of(frames: &[segment::FrameMeta]) -> [u64; 3] {
    let mut items = [0u64; 3];
    for f in frames {
        items[f.signal.index()] += u64::from(f.items);
    }
    items
}

impl Buffer {
    /// Open (creating) the buffer directory: validate every segment, quarantine corrupt
    /// ones, load the cursor and start a new active segment.
    pub fn open(cfg: BufferConfig, telemetry: Arc<Telemetry>) -> Result<Arc<Buffer>> {
        let dir = cfg.dir.clone();
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let cursor: Cursor = std::fs::read(dir.join(CURSOR_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let seqs = list_segments(&dir)?;
        // A write cut short can only be in the newest segment holding frames (later
        // ones are empty segments created by restarts).
        let newest = seqs.iter().rev().copied().find(|s| {
            std::fs::metadata(seg_path(&dir, *s)).is_ok_and(|m| m.len() > MAGIC.len() as u64)
        });
        let mut segments = BTreeMap::new();
        for seq in seqs {
            let path = seg_path(&dir, seq);
            if seq < cursor.seq {
                // Fully shipped before the last stop; only the deletion was missed.
                let _ = std::fs::remove_file(&path);
                continue;
            }
            let data = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            let s = scan(&data);
            let keep = match &s.end {
                ScanEnd::Clean => data.len() as u64,
                ScanEnd::TornTail { at } if Some(seq) == newest => {
                    tracing::warn!(segment = %path.display(), at, "buffer segment ends in an incomplete frame (a write cut short); cut off");
                    telemetry.buffer.torn_tails.inc();
                    let f = std::fs::OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .map_err(|e| Error::io(&path, e))?;
                    f.set_len(s.valid_len().max(MAGIC.len() as u64))
                        .map_err(|e| Error::io(&path, e))?;
                    f.sync_all().map_err(|e| Error::io(&path, e))?;
                    s.valid_len()
                }
                ScanEnd::TornTail { at } | ScanEnd::Corrupt { at, .. } => {
                    let reason = match &s.end {
                        ScanEnd::Corrupt { reason, .. } => reason.clone(),
                        _ => "incomplete frame before the newest segment".into(),
                    };
                    quarantine(&dir, seq, &data, s.valid_len(), *at, &reason, &telemetry)?
                }
            };
            if keep <= MAGIC.len() as u64 {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            segments.insert(
                seq,
                SegMeta {
                    len: keep,
                    items: items_of(&s.frames),
                },
            );
        }
        let active = segments.keys().last().map_or(cursor.seq.max(1), |s| s + 1);
        let writer = new_segment(&dir, active)?;
        segments.insert(
            active,
            SegMeta {
                len: MAGIC.len() as u64,
                items: [0; 3],
            },
        );
        // Position the reader: the cursor if its segment survived and the offset is a
        // frame boundary, else the start of the oldest segment.
        let first = segments.keys().next().copied().unwrap_or(active);
        let (cursor, read_items) = match segments.get(&cursor.seq) {
            Some(_) if cursor.seq >= first => {
                let path = seg_path(&dir, cursor.seq);
                let data = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
                let frames = scan(&data).frames;
                let before: Vec<_> = frames
                    .iter()
                    .copied()
                    .filter(|f| f.offset < cursor.offset)
                    .collect();
                let boundary = cursor.offset == MAGIC.len() as u64
                    || before
                        .last()
                        .is_some_and(|f| f.offset + f.len == cursor.offset);
                if boundary {
                    (cursor, items_of(&before))
                } else {
                    tracing::warn!(
                        seq = cursor.seq,
                        offset = cursor.offset,
                        "buffer cursor is not at a frame boundary; re-reading its segment"
                    );
                    (
                        Cursor {
                            seq: cursor.seq,
                            offset: MAGIC.len() as u64,
                        },
                        [0; 3],
                    )
                }
            }
            _ => (
                Cursor {
                    seq: first,
                    offset: MAGIC.len() as u64,
                },
                [0; 3],
            ),
        };
        let buffer = Arc::new(Buffer {
            cfg,
            inner: Mutex::new(Inner {
                segments,
                writer,
                active,
                cursor,
                read_items,
                in_flight: None,
                read_file: None,
                cursor_dirty: true,
                closed: false,
            }),
            data: Notify::new(),
            space: Notify::new(),
            telemetry,
        });
        {
            let inner = buffer.lock();
            buffer.update_gauges(&inner);
            let pending: u64 = buffer.pending_items(&inner).iter().sum();
            tracing::info!(dir = %buffer.cfg.dir.display(), segments = inner.segments.len(), pending_records = pending, "disk buffer opened");
        }
        Ok(buffer)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn config(&self) -> &BufferConfig {
        &self.cfg
    }

    fn total_bytes(inner: &Inner) -> u64 {
        inner.segments.values().map(|s| s.len).sum()
    }

    /// Items not yet shipped, per signal.
    fn pending_items(&self, inner: &Inner) -> [u64; 3] {
        let mut out = [0u64; 3];
        for (seq, m) in &inner.segments {
            for (i, o) in out.iter_mut().enumerate() {
                *o += m.items[i];
                if *seq == inner.cursor.seq {
                    *o -= inner.read_items[i].min(m.items[i]);
                }
            }
        }
        out
    }

    fn update_gauges(&self, inner: &Inner) {
        let t = &self.telemetry.buffer;
        t.bytes.set(Self::total_bytes(inner) as i64);
        t.segments.set(inner.segments.len() as i64);
    }

    /// Append one encoded request of `items` items; waits for space under
    /// backpressure. Returns once the frame is fdatasync'd.
    pub async fn push(self: &Arc<Self>, signal: Signal, items: u64, payload: Vec<u8>) -> Pushed {
        let frame = Arc::new(frame(
            signal,
            u32::try_from(items).unwrap_or(u32::MAX),
            &payload,
        ));
        drop(payload);
        if frame.len() as u64 + MAGIC.len() as u64 > self.cfg.max_bytes {
            self.telemetry
                .buffer
                .dropped(signal, metrics::reason::TOO_LARGE, items);
            tracing::warn!(
                bytes = frame.len(),
                max_bytes = self.cfg.max_bytes,
                "request larger than the whole buffer dropped"
            );
            return Pushed::TooLarge;
        }
        let mut waited: Option<Instant> = None;
        loop {
            let space = self.space.notified();
            let this = self.clone();
            let f = frame.clone();
            let attempt = tokio::task::spawn_blocking(move || this.try_append(signal, items, &f))
                .await
                .unwrap_or_else(|e| Err(Error::Transport(format!("buffer task: {e}"))));
            match attempt {
                Ok(Some(())) => {
                    if let Some(w) = waited {
                        self.telemetry
                            .buffer
                            .backpressure_seconds
                            .inc_by(w.elapsed().as_secs_f64());
                    }
                    self.data.notify_one();
                    return Pushed::Stored;
                }
                Ok(None) => {}
                Err(e) => {
                    // Disk trouble: wait and try again (the caller's data stays unacked).
                    self.telemetry.buffer.write_errors.inc();
                    tracing::warn!(error = %e, "writing to the disk buffer failed; retrying");
                    if self.lock().closed {
                        return Pushed::Closed;
                    }
                    let _ = tokio::time::timeout(Duration::from_secs(1), space).await;
                    continue;
                }
            }
            if self.lock().closed {
                return Pushed::Closed;
            }
            if waited.is_none() {
                waited = Some(Instant::now());
                self.telemetry.buffer.backpressure_events.inc();
                tracing::debug!("disk buffer full: waiting for the shipper (backpressure)");
            }
            let _ = tokio::time::timeout(Duration::from_millis(500), space).await;
            // Count the wait as it happens, so the counter moves while producers wait.
            if let Some(w) = waited.replace(Instant::now()) {
                self.telemetry
                    .buffer
                    .backpressure_seconds
                    .inc_by(w.elapsed().as_secs_f64());
            }
        }
    }

    /// One attempt: `Ok(None)` when full under backpressure.
    fn try_append(&self, signal: Signal, items: u64, frame: &[u8]) -> Result<Option<()>> {
        let mut inner = self.lock();
        let need = frame.len() as u64;
        loop {
            if Self::total_bytes(&inner) + need <= self.cfg.max_bytes {
                break;
            }
            // The active segment fully shipped: start over in a new one.
            let active_len = inner.segments.get(&inner.active).map_or(0, |m| m.len);
            if inner.cursor.seq == inner.active
                && inner.cursor.offset >= active_len
                && inner.in_flight.is_none()
                && active_len > MAGIC.len() as u64
            {
                self.roll(&mut inner)?;
                continue;
            }
            match self.cfg.when_full {
                WhenFull::Backpressure => return Ok(None),
                WhenFull::DropOldest => {
                    if inner.segments.len() < 2 {
                        self.roll(&mut inner)?;
                    }
                    if !self.drop_oldest(&mut inner) {
                        return Ok(None);
                    }
                }
            }
        }
        let active = inner.active;
        let path = seg_path(&self.cfg.dir, active);
        inner
            .writer
            .write_all(frame)
            .and_then(|()| inner.writer.sync_data())
            .map_err(|e| Error::io(&path, e))?;
        if let Some(m) = inner.segments.get_mut(&active) {
            m.len += need;
            m.items[signal.index()] += items;
        }
        let t = &self.telemetry.buffer;
        t.written(signal, items);
        if inner
            .segments
            .get(&active)
            .is_some_and(|m| m.len >= self.cfg.segment_bytes)
        {
            self.roll(&mut inner)?;
        }
        self.update_gauges(&inner);
        Ok(Some(()))
    }

    fn roll(&self, inner: &mut Inner) -> Result<()> {
        let next = inner.active + 1;
        inner.writer = new_segment(&self.cfg.dir, next)?;
        inner.active = next;
        inner.segments.insert(
            next,
            SegMeta {
                len: MAGIC.len() as u64,
                items: [0; 3],
            },
        );
        self.finish_segments(inner);
        Ok(())
    }

    /// Delete the oldest segment (not the active one) and count what was unshipped in it.
    fn drop_oldest(&self, inner: &mut Inner) -> bool {
        let Some((&seq, meta)) = inner.segments.iter().next() else {
            return false;
        };
        if seq == inner.active {
            return false;
        }
        let meta = meta.clone();
        let mut lost = meta.items;
        if seq == inner.cursor.seq {
            for (i, l) in lost.iter_mut().enumerate() {
                *l = l.saturating_sub(inner.read_items[i]);
            }
        }
        // A frame being exported right now is accounted by the shipper.
        if let Some((s, off)) = inner.in_flight {
            if s == seq {
                if let Ok(f) = File::open(seg_path(&self.cfg.dir, seq)) {
                    let mut buf = [0u8; 13];
                    if f.read_exact_at(&mut buf, off).is_ok() {
                        let items = u32::from_le_bytes([buf[9], buf[10], buf[11], buf[12]]);
                        if let Some(sig) = Signal::ALL.iter().find(|x| **x as u8 == buf[8]) {
                            let i = sig.index();
                            lost[i] = lost[i].saturating_sub(u64::from(items));
                        }
                    }
                }
            }
        }
        for sig in Signal::ALL {
            let n = lost[sig.index()];
            if n > 0 {
                self.telemetry
                    .buffer
                    .dropped(sig, metrics::reason::DROP_OLDEST, n);
            }
        }
        tracing::debug!(seq, ?lost, "disk buffer full: oldest segment dropped");
        self.remove_segment(inner, seq);
        if inner.cursor.seq <= seq {
            self.move_cursor_to_next(inner, seq);
        }
        true
    }

    fn remove_segment(&self, inner: &mut Inner, seq: u64) {
        let path = seg_path(&self.cfg.dir, seq);
        if let Err(e) = std::fs::remove_file(&path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(segment = %path.display(), error = %e, "removing a buffer segment failed");
            }
        }
        inner.segments.remove(&seq);
        if inner.read_file.as_ref().is_some_and(|(s, _)| *s == seq) {
            inner.read_file = None;
        }
        self.space.notify_waiters();
    }

    fn move_cursor_to_next(&self, inner: &mut Inner, after: u64) {
        let next = inner
            .segments
            .range(after + 1..)
            .next()
            .map_or(inner.active, |(s, _)| *s);
        inner.cursor = Cursor {
            seq: next,
            offset: MAGIC.len() as u64,
        };
        inner.read_items = [0; 3];
        inner.cursor_dirty = true;
    }

    /// Delete segments before the cursor's and a finished cursor segment.
    fn finish_segments(&self, inner: &mut Inner) {
        loop {
            let seq = inner.cursor.seq;
            let Some(meta) = inner.segments.get(&seq) else {
                break;
            };
            if seq == inner.active || inner.cursor.offset < meta.len {
                break;
            }
            self.remove_segment(inner, seq);
            self.move_cursor_to_next(inner, seq);
            self.write_cursor(inner);
        }
        let stale: Vec<u64> = inner
            .segments
            .range(..inner.cursor.seq)
            .map(|(s, _)| *s)
            .collect();
        for s in stale {
            self.remove_segment(inner, s);
        }
        self.update_gauges(inner);
    }

    /// The next unshipped frame, waiting for one; `None` once closed and drained.
    pub async fn next(self: &Arc<Self>) -> Option<Record> {
        loop {
            let data = self.data.notified();
            let this = self.clone();
            let got = tokio::task::spawn_blocking(move || this.try_read())
                .await
                .unwrap_or(Ok(None));
            match got {
                Ok(Some(r)) => return Some(r),
                Ok(None) => {
                    if self.lock().closed {
                        return None;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reading the disk buffer failed; retrying");
                }
            }
            let _ = tokio::time::timeout(Duration::from_millis(500), data).await;
        }
    }

    fn try_read(&self) -> Result<Option<Record>> {
        let mut inner = self.lock();
        loop {
            self.finish_segments(&mut inner);
            let Cursor { seq, offset } = inner.cursor;
            let Some(meta) = inner.segments.get(&seq).cloned() else {
                return Ok(None);
            };
            if offset >= meta.len {
                return Ok(None);
            }
            let path = seg_path(&self.cfg.dir, seq);
            if inner.read_file.as_ref().map(|(s, _)| *s) != Some(seq) {
                let f = File::open(&path).map_err(|e| Error::io(&path, e))?;
                inner.read_file = Some((seq, f));
            }
            let Some((_, file)) = inner.read_file.as_ref() else {
                return Ok(None);
            };
            let mut header = [0u8; segment::HEADER];
            let mut bad = None;
            let mut record = None;
            match file.read_exact_at(&mut header, offset) {
                Err(e) => bad = Some(format!("reading frame header: {e}")),
                Ok(()) => {
                    let body =
                        u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as u64;
                    let end = offset + segment::HEADER as u64 + body;
                    if body > segment::MAX_BODY as u64 || end > meta.len {
                        bad = Some(format!("frame length {body} runs past the segment"));
                    } else {
                        let mut buf = vec![0u8; (end - offset) as usize];
                        match file.read_exact_at(&mut buf, offset) {
                            Err(e) => bad = Some(format!("reading frame: {e}")),
                            Ok(()) => match parse_at(&buf, 0) {
                                Ok(Some((m, payload))) => {
                                    record = Some(Record {
                                        signal: m.signal,
                                        items: u64::from(m.items),
                                        payload: payload.to_vec(),
                                        seq,
                                        offset,
                                        len: m.len,
                                    })
                                }
                                Ok(None) => bad = Some("empty frame".into()),
                                Err(ScanEnd::Corrupt { reason, .. }) => bad = Some(reason),
                                Err(_) => bad = Some("incomplete frame".into()),
                            },
                        }
                    }
                }
            }
            if let Some(r) = record {
                inner.in_flight = Some((seq, offset));
                return Ok(Some(r));
            }
            let reason = bad.unwrap_or_default();
            // Damaged after it was written: quarantine the rest of this segment.
            if seq == inner.active {
                self.roll(&mut inner)?;
            }
            let data = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            // The frames before `offset` were shipped already: keep none of it.
            quarantine(
                &self.cfg.dir,
                seq,
                &data,
                0,
                offset,
                &reason,
                &self.telemetry,
            )?;
            self.remove_segment(&mut inner, seq);
            self.move_cursor_to_next(&mut inner, seq);
        }
    }

    /// The shipper is done with `record` (acknowledged, or refused for good).
    pub fn ack(&self, record: &Record, shipped: bool) {
        let mut inner = self.lock();
        inner.in_flight = None;
        let t = &self.telemetry.buffer;
        if shipped {
            t.shipped(record.signal, record.items);
        } else {
            t.dropped(
                record.signal,
                metrics::reason::PERMANENT_ERROR,
                record.items,
            );
        }
        if inner.cursor.seq == record.seq && inner.cursor.offset == record.offset {
            inner.cursor.offset += record.len;
            inner.read_items[record.signal.index()] += record.items;
            inner.cursor_dirty = true;
        }
        self.finish_segments(&mut inner);
        self.write_cursor(&mut inner);
    }

    fn write_cursor(&self, inner: &mut Inner) {
        if !inner.cursor_dirty {
            return;
        }
        let path = self.cfg.dir.join(CURSOR_FILE);
        let tmp = self.cfg.dir.join("cursor.json.tmp");
        let bytes = serde_json::to_vec(&inner.cursor).unwrap_or_default();
        match std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, &path)) {
            Ok(()) => {
                inner.cursor_dirty = false;
            }
            Err(e) => {
                self.telemetry.buffer.write_errors.inc();
                tracing::warn!(path = %path.display(), error = %e, "writing the buffer cursor failed");
            }
        }
    }

    /// Stop: pushes waiting for space give up, `next` returns `None` once drained.
    pub fn close(&self) {
        self.lock().closed = true;
        self.space.notify_waiters();
        self.data.notify_waiters();
        self.data.notify_one();
    }

    /// Persist the read cursor now (shutdown).
    pub fn persist_cursor(&self) {
        let mut inner = self.lock();
        inner.cursor_dirty = true;
        self.write_cursor(&mut inner);
    }

    /// Records (items) stored and not yet shipped, per signal: metrics, logs, traces.
    pub fn pending(&self) -> [u64; 3] {
        let inner = self.lock();
        self.pending_items(&inner)
    }

    /// Bytes of segments on disk.
    pub fn bytes(&self) -> u64 {
        Self::total_bytes(&self.lock())
    }
}

/// Move segment `seq` to `<dir>/corrupt/` and, when it had valid frames before the
/// damage at `at`, keep `data[..valid_len]` under the original name. Returns the
/// length kept (0 if nothing).
fn quarantine(
    dir: &Path,
    seq: u64,
    data: &[u8],
    valid_len: u64,
    at: u64,
    reason: &str,
    telemetry: &Telemetry,
) -> Result<u64> {
    let path = seg_path(dir, seq);
    let corrupt = dir.join(CORRUPT_DIR);
    std::fs::create_dir_all(&corrupt).map_err(|e| Error::io(&corrupt, e))?;
    let mut dest = corrupt.join(format!("{seq:020}.seg"));
    let mut n = 1;
    while dest.exists() {
        dest = corrupt.join(format!("{seq:020}.seg.{n}"));
        n += 1;
    }
    std::fs::rename(&path, &dest).map_err(|e| Error::io(&path, e))?;
    telemetry.buffer.corrupt_segments.inc();
    tracing::warn!(segment = %path.display(), moved_to = %dest.display(), at, %reason, "corrupt disk buffer segment moved aside; the frames before the damage are kept, the rest is skipped");
    let keep = valid_len.min(data.len() as u64);
    if keep > MAGIC.len() as u64 {
        let mut f = File::create(&path).map_err(|e| Error::io(&path, e))?;
        f.write_all(&data[..keep as usize])
            .and_then(|()| f.sync_all())
            .map_err(|e| Error::io(&path, e))?;
        sync_dir(dir);
        Ok(keep)
    } else {
        Ok(0)
    }
}

#[cfg(test)]
mod tests;
