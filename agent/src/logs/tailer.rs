//! The tailing loop (one blocking thread).
//!
//! Every `poll_interval` each tracked file is checked and read:
//! - **rename rotation**: the path now names another inode (or nothing). The open file is
//!   read to its end, then released after two quiet polls (`rotations_total{style="rename"}`).
//! - **copytruncate**: the file shrank below the read offset, or its first bytes changed.
//!   The rotated copy next to it (same first bytes, at least as long) is read from the
//!   same offset to its end under the same stream id, so nothing written before the
//!   truncation is lost; the truncated file becomes a new stream (`style="truncate"`).
//! - complete lines are parsed ([`super::format`]), assembled ([`super::multiline`]) and
//!   handed to the [`Batcher`]; a token bucket per container (lines/s) stops reading a
//!   file when empty and resumes at the same offset later (`lines_held_back_total`).
//!
//! Discovery runs every few polls; new files start at offset 0, files with a checkpoint
//! resume at the acknowledged offset, rotated siblings are read only with a checkpoint.
//! A full [`Gate`] blocks the loop: tailing pauses instead of dropping.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::checkpoint::{fnv1a, stream_id, Checkpoints, Entry, PREFIX_BYTES};
use super::discovery::{FileMeta, Sources};
use super::format::{parse, Line};
use super::metrics::style;
use super::multiline::{Assembler, MultilineRule, Record};
use super::ship::{Batch, Batcher, Gate, Outgoing};
use crate::clock::unix_nanos;
use crate::telemetry::Telemetry;

/// Most bytes read from one file per poll (fairness between files).
const CHUNK: usize = 1 << 20;

/// What the tailer needs to know.
#[derive(Debug, Clone)]
pub struct TailerOptions {
    pub sources: Sources,
    pub poll_interval: Duration,
    pub max_line_bytes: usize,
    pub multiline: Option<MultilineRule>,
    /// Lines per second per container; `None` = unlimited.
    pub rate_limit: Option<f64>,
    pub batch_timeout: Duration,
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

struct Tracked {
    stream: String,
    path: PathBuf,
    path_text: String,
    file: File,
    dev: u64,
    ino: u64,
    prefix_len: u64,
    prefix_hash: u64,
    /// Next byte to read (start of the first line not consumed yet).
    offset: u64,
    meta: Arc<FileMeta>,
    assembler: Assembler,
    rotated_at: Option<Instant>,
    quiet_polls: u32,
    done: bool,
    /// (size, mtime) at the last truncation check: unchanged means not truncated, so
    /// an idle file costs one `fstat` and one `stat` per poll, no read.
    checked: Option<(u64, i64, i64)>,
}

/// Hash of the first `len` bytes, `None` if the file is shorter or unreadable.
fn prefix_hash(file: &File, len: u64) -> Option<u64> {
    let mut buf = vec![0u8; usize::try_from(len).ok()?];
    file.read_exact_at(&mut buf, 0).ok()?;
    Some(fnv1a(0, &buf))
}

/// The tailing loop; see the module docs.
pub struct Tailer {
    opts: TailerOptions,
    files: Vec<Tracked>,
    checkpoints: Arc<Mutex<Checkpoints>>,
    batcher: Batcher,
    batch_started: Option<Instant>,
    gate: Arc<Gate>,
    tx: mpsc::UnboundedSender<Batch>,
    telemetry: Arc<Telemetry>,
    buckets: HashMap<String, Bucket>,
    stop: Arc<AtomicBool>,
    last_discovery: Option<Instant>,
    first_discovery: bool,
    /// Streams read to their end whose last records may still await acknowledgement:
    /// their checkpoint entry still exists but they must not be picked up again.
    released: std::collections::HashSet<String>,
    /// Rotated files present at start-up without a checkpoint (old logs), or known copies.
    ignored: std::collections::HashSet<(u64, u64)>,
    /// `(directory, prefix_len, prefix_hash)` of files tailed in this run: a rotated file
    /// with one of these prefixes is a copy of content already read.
    known_prefixes: std::collections::VecDeque<(PathBuf, u64, u64)>,
    buf: Vec<u8>,
    /// Discovery ran in this pass: idle files are checked for renaming too (a file
    /// that grew is checked on every poll).
    rename_check_due: bool,
}

impl Tailer {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        opts: TailerOptions,
        checkpoints: Arc<Mutex<Checkpoints>>,
        batcher: Batcher,
        gate: Arc<Gate>,
        tx: mpsc::UnboundedSender<Batch>,
        telemetry: Arc<Telemetry>,
        stop: Arc<AtomicBool>,
    ) -> Self {
        Self {
            opts,
            files: Vec::new(),
            checkpoints,
            batcher,
            batch_started: None,
            gate,
            tx,
            telemetry,
            buckets: HashMap::new(),
            stop,
            last_discovery: None,
            first_discovery: true,
            released: std::collections::HashSet::new(),
            ignored: std::collections::HashSet::new(),
            known_prefixes: std::collections::VecDeque::new(),
            buf: Vec::new(),
            rename_check_due: true,
        }
    }

    fn checkpoints(&self) -> std::sync::MutexGuard<'_, Checkpoints> {
        self.checkpoints.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Run until the stop flag is set; the last partial batch is handed over if a slot frees.
    pub fn run(mut self) {
        while !self.stop.load(Ordering::Acquire) {
            let started = Instant::now();
            // Every 2 s at the default 250 ms poll: a rotation triggers one at once, so
            // this only bounds how late a new container's first file is found.
            let discover_every = (self.opts.poll_interval * 8).max(Duration::from_millis(200));
            self.rename_check_due = self
                .last_discovery
                .is_none_or(|t| started.duration_since(t) >= discover_every);
            if self.rename_check_due {
                self.discover();
                self.last_discovery = Some(started);
            }
            let busy = self.poll_all();
            if self
                .batch_started
                .is_some_and(|t| t.elapsed() >= self.opts.batch_timeout)
            {
                self.send_batch();
            }
            if !busy {
                std::thread::sleep(
                    self.opts
                        .poll_interval
                        .saturating_sub(started.elapsed())
                        .max(Duration::from_millis(1)),
                );
            }
        }
        // Everything pending goes out with the last batch (re-read after restart if unacked).
        let mut files = std::mem::take(&mut self.files);
        for t in &mut files {
            let mut out = Vec::new();
            t.assembler.flush_all(&mut out);
            self.emit(t, out);
        }
        if !self.batcher.is_empty() && self.gate.acquire(Duration::from_secs(1)) {
            let batch = self.batcher.take();
            if self.tx.send(batch).is_err() {
                self.gate.release();
            }
        }
    }

    fn discover(&mut self) {
        let candidates = self.opts.sources.discover();
        let first = self.first_discovery;
        // Rotated files written after the last checkpoint write were rotated while the
        // agent was down without it ever seeing them: read them too.
        let last_checkpoint = self.checkpoints().modified();
        {
            let c = self.checkpoints.lock().unwrap_or_else(|e| e.into_inner());
            self.released.retain(|s| c.get(s).is_some());
        }
        if self.first_discovery {
            self.first_discovery = false;
            let present: Vec<(u64, u64)> = candidates
                .iter()
                .filter_map(|c| std::fs::metadata(&c.path).ok())
                .map(|m| (m.dev(), m.ino()))
                .collect();
            self.checkpoints()
                .retain(|e| present.contains(&(e.dev, e.ino)));
        }
        for c in candidates {
            let Ok(meta) = std::fs::metadata(&c.path) else {
                continue;
            };
            let (dev, ino) = (meta.dev(), meta.ino());
            if self.files.iter().any(|t| t.dev == dev && t.ino == ino) {
                continue;
            }
            let file = match File::open(&c.path) {
                Ok(f) => f,
                Err(e) => {
                    self.telemetry.logs.read_errors.inc();
                    tracing::debug!(path = %c.path.display(), error = %e, "cannot open log file");
                    continue;
                }
            };
            let mut resumed = self
                .checkpoints()
                .find(dev, ino)
                .find(|e| prefix_hash(&file, e.prefix_len) == Some(e.prefix_hash))
                .cloned();
            if resumed.is_none() && first && c.rotated {
                // A copytruncate copy made while the agent was down: same first bytes as a
                // checkpointed file in the same directory whose stream is not tracked yet.
                let tracked: Vec<&str> = self.files.iter().map(|t| t.stream.as_str()).collect();
                let mut cp = self.checkpoints();
                let found = cp
                    .entries()
                    .find(|e| {
                        e.path.parent() == c.path.parent()
                            && !tracked.contains(&e.stream.as_str())
                            && meta.len() >= e.offset
                            && prefix_hash(&file, e.prefix_len) == Some(e.prefix_hash)
                    })
                    .cloned();
                if let Some(e) = &found {
                    cp.relocate(&e.stream, &c.path, dev, ino);
                }
                resumed = found;
            }
            if resumed
                .as_ref()
                .is_some_and(|e| self.released.contains(&e.stream))
            {
                continue;
            }
            let unseen_rotation = first
                && c.rotated
                && last_checkpoint
                    .zip(meta.modified().ok())
                    .is_some_and(|(cp, m)| m > cp);
            if resumed.is_none() && c.rotated && !unseen_rotation {
                // Old rotated logs at start-up and copies of content already read are
                // skipped; a file created and rotated between two discoveries is read.
                let dir = c.path.parent().map(Path::to_path_buf);
                let is_copy = self.known_prefixes.iter().any(|(d, len, hash)| {
                    Some(d) == dir.as_ref() && prefix_hash(&file, *len) == Some(*hash)
                });
                if first || is_copy || self.ignored.contains(&(dev, ino)) {
                    self.ignored.insert((dev, ino));
                    continue;
                }
            }
            let entry = match resumed {
                Some(e) => e,
                None => {
                    let len = meta.len().min(PREFIX_BYTES as u64);
                    if len == 0 {
                        continue;
                    }
                    let Some(hash) = prefix_hash(&file, len) else {
                        continue;
                    };
                    let e = Entry {
                        stream: stream_id(dev, ino, hash),
                        path: c.path.clone(),
                        dev,
                        ino,
                        prefix_len: len,
                        prefix_hash: hash,
                        offset: 0,
                        final_offset: None,
                    };
                    self.checkpoints().register(e.clone());
                    e
                }
            };
            if self.files.iter().any(|t| t.stream == entry.stream) {
                continue;
            }
            tracing::debug!(path = %c.path.display(), stream = %entry.stream, offset = entry.offset, "tailing");
            let rotated = c.rotated || entry.final_offset.is_some();
            if let Some(dir) = c.path.parent() {
                if self.known_prefixes.len() >= 4096 {
                    self.known_prefixes.pop_front();
                }
                self.known_prefixes.push_back((
                    dir.to_path_buf(),
                    entry.prefix_len,
                    entry.prefix_hash,
                ));
            }
            self.files.push(Tracked {
                stream: entry.stream,
                path_text: c.path.display().to_string(),
                path: c.path,
                file,
                dev,
                ino,
                prefix_len: entry.prefix_len,
                prefix_hash: entry.prefix_hash,
                offset: entry.offset,
                meta: c.meta,
                assembler: Assembler::new(self.opts.multiline.clone(), self.opts.max_line_bytes),
                rotated_at: rotated.then(Instant::now),
                quiet_polls: 0,
                done: false,
                checked: None,
            });
        }
        self.telemetry
            .logs
            .files_watched
            .set(self.files.len() as i64);
    }

    /// One pass over all files; `true` if any file had more data than one chunk.
    fn poll_all(&mut self) -> bool {
        let mut files = std::mem::take(&mut self.files);
        let mut busy = false;
        let now = Instant::now();
        let tracked: Vec<(u64, u64)> = files.iter().map(|t| (t.dev, t.ino)).collect();
        for t in files.iter_mut() {
            if self.stop.load(Ordering::Acquire) {
                break;
            }
            let mut size = None;
            if t.rotated_at.is_none() {
                size = self.check_rotation(t, &tracked);
                if t.done {
                    continue;
                }
            }
            busy |= self.read(t, size);
            let mut out = Vec::new();
            t.assembler.flush_idle(now, &mut out);
            self.emit(t, out);
            if t.rotated_at.is_some() {
                self.maybe_release(t);
            }
        }
        let before = files.len();
        files.retain(|t| !t.done);
        if files.len() != before {
            self.last_discovery = None;
        }
        self.files = files;
        self.telemetry
            .logs
            .files_watched
            .set(self.files.len() as i64);
        busy
    }

    /// Detect truncation and renaming; returns the open file's size when it still is
    /// the same content (so `read` need not `fstat` again).
    fn check_rotation(&mut self, t: &mut Tracked, others: &[(u64, u64)]) -> Option<u64> {
        // Truncation first, through the open descriptor: a file may have been truncated
        // and then renamed between two polls; its copy still has to be finished.
        let stat = t.file.metadata().ok();
        let size = stat.as_ref().map_or(0, |m| m.len());
        let seen = stat.as_ref().map(|m| (m.len(), m.mtime(), m.mtime_nsec()));
        // The first bytes are compared only when size or mtime moved since the last check.
        let moved = seen.is_none() || seen != t.checked;
        let truncated =
            size < t.offset || (moved && prefix_hash(&t.file, t.prefix_len) != Some(t.prefix_hash));
        t.checked = seen;
        if truncated {
            t.checked = None;
            self.telemetry.logs.rotation(style::TRUNCATE);
            self.last_discovery = None;
            if let Some((path, file, dev, ino)) = find_copy(t, others) {
                tracing::debug!(path = %t.path.display(), copy = %path.display(), "log file truncated (copytruncate), finishing from the copy");
                self.checkpoints().relocate(&t.stream, &path, dev, ino);
                t.path_text = path.display().to_string();
                t.path = path;
                t.file = file;
                t.dev = dev;
                t.ino = ino;
            } else {
                tracing::warn!(path = %t.path.display(), offset = t.offset, "log file truncated and no rotated copy found; unread lines before the truncation are lost");
                // Nothing more to read from this content: release it now; the new
                // content is a new stream.
                let mut out = Vec::new();
                t.assembler.flush_all(&mut out);
                self.emit(t, out);
                self.batch_started.get_or_insert_with(Instant::now);
                self.batcher.finish(&t.stream, t.offset);
                self.released.insert(t.stream.clone());
                t.done = true;
            }
            t.rotated_at = Some(Instant::now());
            return None;
        }
        // An idle file is looked up by name only when discovery runs (which also finds
        // its successor): one `fstat` per poll is all an idle file costs.
        if !moved && !self.rename_check_due {
            return stat.is_some().then_some(size);
        }
        let renamed = match std::fs::metadata(&t.path) {
            Ok(m) => (m.dev(), m.ino()) != (t.dev, t.ino),
            Err(_) => true,
        };
        if renamed {
            t.rotated_at = Some(Instant::now());
            // The new file at this path is picked up right away.
            self.last_discovery = None;
            self.telemetry.logs.rotation(style::RENAME);
            tracing::debug!(path = %t.path.display(), "log file rotated (renamed), reading it to the end");
        }
        stat.is_some().then_some(size)
    }

    fn bucket_allows(&mut self, key: &str) -> bool {
        let Some(rate) = self.opts.rate_limit else {
            return true;
        };
        let now = Instant::now();
        let b = self.buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: rate,
            updated: now,
        });
        b.tokens = (b.tokens + now.duration_since(b.updated).as_secs_f64() * rate).min(rate);
        b.updated = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Read and process new complete lines; `true` if more data is waiting. `size` is the
    /// file's size if the caller just took it.
    fn read(&mut self, t: &mut Tracked, size: Option<u64>) -> bool {
        let size = match size.map_or_else(|| t.file.metadata().map(|m| m.len()), Ok) {
            Ok(s) => s,
            Err(_) => return false,
        };
        if size <= t.offset {
            t.quiet_polls += 1;
            return false;
        }
        let want = usize::try_from(size - t.offset).unwrap_or(CHUNK).min(CHUNK);
        self.buf.resize(want, 0);
        let n = match t.file.read_at(&mut self.buf, t.offset) {
            Ok(n) => n,
            Err(e) => {
                self.telemetry.logs.read_errors.inc();
                tracing::debug!(path = %t.path.display(), error = %e, "read failed");
                return false;
            }
        };
        let buf = std::mem::take(&mut self.buf);
        let data = &buf[..n];
        let mut pos = 0usize;
        let mut lines = 0u64;
        let mut out = Vec::new();
        let now = Instant::now();
        loop {
            let rest = &data[pos..];
            let (line_len, consumed) = match find_newline(rest) {
                Some(nl) => (nl, nl + 1),
                // A line longer than the cap is cut into pieces of the cap.
                None if rest.len() >= self.opts.max_line_bytes => {
                    (self.opts.max_line_bytes, self.opts.max_line_bytes)
                }
                None => break,
            };
            if !self.bucket_allows(&t.meta.container_key) {
                let held = rest.iter().filter(|b| **b == b'\n').count() as u64;
                self.telemetry.logs.lines_held_back.inc_by(held.max(1));
                break;
            }
            let start = t.offset + pos as u64;
            let raw = &rest[..line_len];
            let line: Line = match parse(t.meta.format, raw) {
                Ok(l) => l,
                Err(l) => {
                    self.telemetry.logs.invalid_lines.inc();
                    l
                }
            };
            t.assembler
                .push(start, start + consumed as u64, line, now, &mut out);
            pos += consumed;
            lines += 1;
        }
        self.buf = buf;
        t.offset += pos as u64;
        self.telemetry.logs.bytes_read.inc_by(pos as u64);
        self.telemetry.logs.lines_read.inc_by(lines);
        let truncated = t.assembler.take_truncated();
        self.telemetry.logs.multiline_truncated.inc_by(truncated);
        self.emit(t, out);
        if pos > 0 {
            t.quiet_polls = 0;
        } else {
            t.quiet_polls += 1;
        }
        pos > 0 && t.offset < size
    }

    fn emit(&mut self, t: &Tracked, records: Vec<Record>) {
        if records.is_empty() {
            return;
        }
        let observed = unix_nanos(std::time::SystemTime::now());
        for record in records {
            self.batcher.add(Outgoing {
                stream: &t.stream,
                path: &t.path_text,
                meta: &t.meta,
                record,
                observed,
            });
            self.batch_started.get_or_insert_with(Instant::now);
            if self.batcher.is_full() {
                self.send_batch();
            }
        }
        let safe = t
            .assembler
            .pending_start()
            .map_or(t.offset, |p| p.min(t.offset));
        self.batcher.ack_up_to(&t.stream, safe);
    }

    fn maybe_release(&mut self, t: &mut Tracked) {
        let grace = (self.opts.poll_interval * 2).max(Duration::from_millis(100));
        if t.quiet_polls < 2 || t.rotated_at.is_some_and(|r| r.elapsed() < grace) {
            return;
        }
        // A last line without `\n` in a finished file is a line too.
        let size = t.file.metadata().map(|m| m.len()).unwrap_or(t.offset);
        let mut out = Vec::new();
        if size > t.offset && size - t.offset <= self.opts.max_line_bytes as u64 {
            let mut tail = vec![0u8; (size - t.offset) as usize];
            if t.file.read_exact_at(&mut tail, t.offset).is_ok() {
                let line = parse(t.meta.format, &tail).unwrap_or_else(|l| l);
                t.assembler
                    .push(t.offset, size, line, Instant::now(), &mut out);
                t.offset = size;
            }
        }
        t.assembler.flush_all(&mut out);
        self.emit(t, out);
        self.batch_started.get_or_insert_with(Instant::now);
        self.batcher.finish(&t.stream, t.offset);
        self.released.insert(t.stream.clone());
        tracing::debug!(path = %t.path.display(), offset = t.offset, "rotated log file read to the end, released");
        t.done = true;
    }

    /// Hand the current batch to the shipper, waiting for an in-flight slot (backpressure).
    fn send_batch(&mut self) {
        if self.batcher.is_empty() {
            self.batch_started = None;
            return;
        }
        loop {
            if self.gate.acquire(Duration::from_millis(200)) {
                break;
            }
            if self.stop.load(Ordering::Acquire) {
                return;
            }
        }
        let batch = self.batcher.take();
        self.batch_started = None;
        if self.tx.send(batch).is_err() {
            self.gate.release();
        }
    }
}

/// Index of the first `\n`, eight bytes at a time (the tailer's inner loop).
fn find_newline(s: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    const NL: u64 = LO * b'\n' as u64;
    let mut chunks = s.chunks_exact(8);
    let mut base = 0usize;
    for c in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(c);
        let x = u64::from_le_bytes(word) ^ NL;
        // The lowest flagged byte is always a real zero byte of `x`, i.e. a `\n`.
        let zero = x.wrapping_sub(LO) & !x & HI;
        if zero != 0 {
            return Some(base + (zero.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|b| *b == b'\n')
        .map(|p| base + p)
}

/// The rotated copy of a truncated file: a sibling with the same first bytes holding at
/// least everything read so far.
fn find_copy(t: &Tracked, others: &[(u64, u64)]) -> Option<(PathBuf, File, u64, u64)> {
    let dir = t.path.parent()?;
    let name = t.path.file_name()?.to_string_lossy().into_owned();
    let prefix = format!("{name}.");
    let mut siblings: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with(&prefix) && !n.ends_with(".gz")
        })
        .map(|e| e.path())
        .collect();
    siblings.sort();
    siblings
        .into_iter()
        .find_map(|p| copy_candidate(t, others, &p))
}

fn copy_candidate(
    t: &Tracked,
    others: &[(u64, u64)],
    p: &Path,
) -> Option<(PathBuf, File, u64, u64)> {
    let f = File::open(p).ok()?;
    let m = f.metadata().ok()?;
    let (dev, ino) = (m.dev(), m.ino());
    if (dev, ino) == (t.dev, t.ino) || others.contains(&(dev, ino)) {
        return None;
    }
    (m.len() >= t.offset && prefix_hash(&f, t.prefix_len) == Some(t.prefix_hash))
        .then(|| (p.to_path_buf(), f, dev, ino))
}

#[cfg(test)]
mod tests {
    use super::find_newline;

    #[test]
    fn newline_search_matches_a_byte_scan() {
        let mut data = Vec::new();
        for i in 0..300u32 {
            // every byte value, including 0x0a neighbours (0x0b, 0x8a) and borrows (0x00, 0x01)
            data.push((i * 37 % 256) as u8);
        }
        for start in 0..data.len() {
            for len in [0, 1, 7, 8, 9, 15, 16, 17, 64, 200] {
                let s = &data[start..(start + len).min(data.len())];
                assert_eq!(find_newline(s), s.iter().position(|b| *b == b'\n'), "{s:?}");
            }
        }
        let mut line = vec![b'x'; 100];
        line[99] = b'\n';
        assert_eq!(find_newline(&line), Some(99));
        assert_eq!(find_newline(&[0x0a; 3]), Some(0));
        assert_eq!(find_newline(&[0x0b; 20]), None);
    }
}
