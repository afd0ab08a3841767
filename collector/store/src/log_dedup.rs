//! Exactly-once storage of tailed log records: drops re-sent records by
//! (tenant, `host.name`, `sightline.log.stream`, `sightline.log.offset`).
//!
//! The agent tags every tailed record with the fingerprint id of its file (stream) and
//! the byte offset where the record starts. After an agent crash, a lost ack or a
//! collector restart the agent sends a window of records again; this filter keeps the
//! first copy only. It runs on the store's apply thread (and in WAL replay) in WAL
//! order, so the live path and a replay decide identically. Records without both
//! attributes pass untouched.
//!
//! Memory is bounded: per stream the high-water mark, the newest [`WINDOW`] offsets
//! (sorted) and the largest offset evicted from that window (`floor`). A stream's
//! offsets only grow and re-sends are contiguous windows of what came before, so an
//! offset at or below `floor` has been seen. Streams idle for [`IDLE_EXPIRY_MS`] are
//! forgotten, and a tenant keeps at most [`MAX_STREAMS_PER_TENANT`] (the least
//! recently seen goes first): about 2.2 KiB per stream at most.
//!
//! Persistence: at every flush the state as of the flush's WAL position is written to
//! `index/log_dedup.<generation>` (temp file, fsync, rename, fsync of the directory;
//! CRC32 over the content) *before* the index checkpoint of that generation, and older
//! files are deleted after it. On open the file of the checkpoint's generation is
//! loaded and the WAL after the checkpoint is replayed through the filter, which
//! rebuilds the rest. A corrupt or missing file is reported; the store then starts
//! with what it has (a re-send may be stored twice, nothing is lost).

use crate::codec::{Dec, Enc};
use crate::layout::{io_err, sync_dir};
use crate::model::{AttrValue, LogRecord, WriteBatch};
use crate::{Error, Result};
use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Attribute naming the source file's fingerprint id.
pub const STREAM_ATTR: &str = "sightline.log.stream";
/// Attribute holding the record's start byte offset in that file.
pub const OFFSET_ATTR: &str = "sightline.log.offset";
/// Recent offsets kept per stream.
pub(crate) const WINDOW: usize = 256;
/// A stream not seen for this long (7 days) is forgotten.
pub(crate) const IDLE_EXPIRY_MS: i64 = 7 * 24 * 3600 * 1000;
/// Streams remembered per tenant.
pub(crate) const MAX_STREAMS_PER_TENANT: usize = 100_000;
/// How often idle streams are swept (ms of the store clock).
const SWEEP_EVERY_MS: i64 = 60_000;

const MAGIC: &[u8; 4] = b"SLDD";
const VERSION: u8 = 1;
const FILE_PREFIX: &str = "log_dedup.";

/// What the filter remembers of one stream.
#[derive(Clone, Debug, Default, PartialEq)]
struct StreamState {
    last_seen_ms: i64,
    /// Newest offsets, ascending, at most [`WINDOW`].
    recent: VecDeque<u64>,
    /// Largest offset evicted from `recent`; everything at or below it was seen.
    floor: Option<u64>,
}

impl StreamState {
    /// `true` if `offset` is new (and remembers it), `false` for a duplicate.
    fn admit(&mut self, offset: u64) -> bool {
        if self.floor.is_some_and(|f| offset <= f) {
            return false;
        }
        let at = match self.recent.back() {
            Some(&last) if offset > last => self.recent.len(),
            None => 0,
            _ => match self.recent.binary_search(&offset) {
                Ok(_) => return false,
                Err(i) => i,
            },
        };
        self.recent.insert(at, offset);
        while self.recent.len() > WINDOW {
            if let Some(evicted) = self.recent.pop_front() {
                self.floor = Some(self.floor.map_or(evicted, |f| f.max(evicted)));
            }
        }
        true
    }
}

/// The dedup state of every tenant (see the module docs).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct LogDedup {
    /// tenant → stream key (`host.name` NUL stream id) → state.
    tenants: HashMap<String, HashMap<String, StreamState>>,
    last_sweep_ms: i64,
}

fn attr<'a>(attrs: &'a [(String, AttrValue)], key: &str) -> Option<&'a AttrValue> {
    attrs.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// `(stream key, offset)` of a tailed record, `None` for any other record.
fn key_of(r: &LogRecord) -> Option<(String, u64)> {
    let stream = attr(&r.attributes, STREAM_ATTR)?.as_str()?;
    let offset = match attr(&r.attributes, OFFSET_ATTR)? {
        AttrValue::Number(n) => n.as_u64()?,
        AttrValue::String(s) => s.parse().ok()?,
        _ => return None,
    };
    let host = attr(&r.resource, "host.name")
        .and_then(AttrValue::as_str)
        .unwrap_or("");
    Some((format!("{host}\0{stream}"), offset))
}

impl LogDedup {
    /// Removes re-sent tailed records from `batch`; returns how many were dropped.
    pub(crate) fn filter(&mut self, tenant: &str, batch: &mut WriteBatch, now_ms: i64) -> u64 {
        let WriteBatch::Logs(logs) = batch else {
            return 0;
        };
        if now_ms.saturating_sub(self.last_sweep_ms) >= SWEEP_EVERY_MS {
            self.sweep(now_ms);
        }
        if !logs
            .iter()
            .any(|r| r.attributes.iter().any(|(k, _)| k == STREAM_ATTR))
        {
            return 0;
        }
        let streams = self.tenants.entry(tenant.to_string()).or_default();
        let before = logs.len();
        logs.retain(|r| {
            let Some((key, offset)) = key_of(r) else {
                return true;
            };
            if !streams.contains_key(&key) && streams.len() >= MAX_STREAMS_PER_TENANT {
                evict_least_recent(streams);
            }
            let s = streams.entry(key).or_default();
            s.last_seen_ms = s.last_seen_ms.max(now_ms);
            s.admit(offset)
        });
        (before - logs.len()) as u64
    }

    /// Forgets streams idle for longer than [`IDLE_EXPIRY_MS`].
    fn sweep(&mut self, now_ms: i64) {
        self.last_sweep_ms = now_ms;
        let cutoff = now_ms.saturating_sub(IDLE_EXPIRY_MS);
        for streams in self.tenants.values_mut() {
            streams.retain(|_, s| s.last_seen_ms >= cutoff);
        }
        self.tenants.retain(|_, s| !s.is_empty());
    }

    /// Streams remembered, all tenants.
    pub(crate) fn streams(&self) -> usize {
        self.tenants.values().map(HashMap::len).sum()
    }

    fn encode(&self) -> Vec<u8> {
        let mut e = Enc {
            buf: Vec::with_capacity(1024),
        };
        e.buf.extend_from_slice(MAGIC);
        e.buf.push(VERSION);
        e.ivar(self.last_sweep_ms);
        e.uvar(self.tenants.len() as u64);
        for (tenant, streams) in &self.tenants {
            e.str(tenant);
            e.uvar(streams.len() as u64);
            for (key, s) in streams {
                e.str(key);
                e.ivar(s.last_seen_ms);
                e.uvar(s.floor.map_or(0, |f| f + 1));
                e.uvar(s.recent.len() as u64);
                let mut prev = 0;
                for &o in &s.recent {
                    e.uvar(o - prev);
                    prev = o;
                }
            }
        }
        let crc = crc32fast::hash(&e.buf);
        e.buf.extend_from_slice(&crc.to_le_bytes());
        e.buf
    }

    fn decode(buf: &[u8]) -> std::result::Result<LogDedup, String> {
        if buf.len() < 9 || &buf[..4] != MAGIC {
            return Err("bad magic".into());
        }
        let (body, crc) = buf.split_at(buf.len() - 4);
        let mut crc_bytes = [0u8; 4];
        crc_bytes.copy_from_slice(crc);
        if crc32fast::hash(body) != u32::from_le_bytes(crc_bytes) {
            return Err("checksum mismatch".into());
        }
        if body[4] != VERSION {
            return Err(format!("unknown version {}", body[4]));
        }
        let mut d = Dec { b: body, pos: 5 };
        let mut out = LogDedup {
            last_sweep_ms: d.ivar()?,
            ..Default::default()
        };
        for _ in 0..d.len()? {
            let tenant = d.string()?;
            let mut streams = HashMap::new();
            for _ in 0..d.len()? {
                let key = d.string()?;
                let last_seen_ms = d.ivar()?;
                let floor = d.uvar()?.checked_sub(1);
                let n = d.len()?;
                if n > WINDOW {
                    return Err(format!("{n} offsets in a window of {WINDOW}"));
                }
                let mut recent = VecDeque::with_capacity(n);
                let mut prev = 0u64;
                for _ in 0..n {
                    prev = prev.checked_add(d.uvar()?).ok_or("offset overflows u64")?;
                    recent.push_back(prev);
                }
                streams.insert(
                    key,
                    StreamState {
                        last_seen_ms,
                        recent,
                        floor,
                    },
                );
            }
            out.tenants.insert(tenant, streams);
        }
        if d.pos != body.len() {
            return Err(format!("{} trailing bytes", body.len() - d.pos));
        }
        Ok(out)
    }

    /// Writes `dir/log_dedup.<generation>` atomically.
    pub(crate) fn save(&self, dir: &Path, generation: u64) -> Result<()> {
        let path = file_path(dir, generation);
        let tmp = path.with_extension("tmp");
        let buf = self.encode();
        let mut f = std::fs::File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
        if let Err(err) = f.write_all(&buf).and_then(|_| f.sync_all()) {
            let _ = std::fs::remove_file(&tmp);
            return Err(io_err(&tmp, err));
        }
        std::fs::rename(&tmp, &path).map_err(|e| io_err(&path, e))?;
        sync_dir(dir)
    }

    /// Loads the newest state of a generation `<= generation`. Returns the state and
    /// the generation it belongs to (`None`: nothing usable, start empty). A corrupt
    /// file is an `Err(Error::Corrupt)` naming it, for the caller to quarantine.
    pub(crate) fn load(dir: &Path, generation: u64) -> Result<(LogDedup, Option<u64>)> {
        let Some(found) = generations(dir)?
            .into_iter()
            .filter(|g| *g <= generation)
            .max()
        else {
            return Ok((LogDedup::default(), None));
        };
        let path = file_path(dir, found);
        let buf = std::fs::read(&path).map_err(|e| io_err(&path, e))?;
        match LogDedup::decode(&buf) {
            Ok(d) => Ok((d, Some(found))),
            Err(reason) => Err(Error::Corrupt { path, reason }),
        }
    }
}

fn evict_least_recent(streams: &mut HashMap<String, StreamState>) {
    if let Some(k) = streams
        .iter()
        .min_by_key(|(_, s)| s.last_seen_ms)
        .map(|(k, _)| k.clone())
    {
        streams.remove(&k);
    }
}

fn file_path(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("{FILE_PREFIX}{generation:010}"))
}

/// Generations of the dedup files in `dir`.
fn generations(dir: &Path) -> Result<Vec<u64>> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(dir, e)),
    };
    Ok(rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_prefix(FILE_PREFIX)?
                .parse()
                .ok()
        })
        .collect())
}

/// Deletes dedup files of generations before `generation` (after its checkpoint).
pub(crate) fn remove_before(dir: &Path, generation: u64) -> Result<usize> {
    let mut n = 0;
    for g in generations(dir)? {
        if g < generation {
            let p = file_path(dir, g);
            std::fs::remove_file(&p).map_err(|e| io_err(&p, e))?;
            n += 1;
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(host: &str, stream: Option<&str>, offset: u64, body: &str) -> LogRecord {
        let mut attributes = vec![("log.file.path".to_string(), json!("/x"))];
        if let Some(s) = stream {
            attributes.push((STREAM_ATTR.into(), json!(s)));
            attributes.push((OFFSET_ATTR.into(), json!(offset)));
        }
        LogRecord {
            timestamp_ns: 1,
            observed_timestamp_ns: 1,
            severity_number: 0,
            severity_text: String::new(),
            body: body.into(),
            attributes,
            resource: vec![("host.name".into(), json!(host))],
            scope_name: String::new(),
            scope_version: String::new(),
            trace_id: vec![],
            span_id: vec![],
            flags: 0,
        }
    }

    fn batch(stream: &str, offsets: impl IntoIterator<Item = u64>) -> WriteBatch {
        WriteBatch::Logs(
            offsets
                .into_iter()
                .map(|o| rec("h", Some(stream), o, &format!("line {o}")))
                .collect(),
        )
    }

    fn offsets(b: &WriteBatch) -> Vec<u64> {
        let WriteBatch::Logs(l) = b else { panic!() };
        l.iter().filter_map(|r| key_of(r).map(|k| k.1)).collect()
    }

    #[test]
    fn resent_windows_are_dropped_and_new_offsets_pass() {
        let mut d = LogDedup::default();
        let mut b = batch("s1", (0..10).map(|i| i * 10));
        assert_eq!(d.filter("t", &mut b, 0), 0);
        // re-send of the tail plus new records
        let mut b = batch("s1", (5..15).map(|i| i * 10));
        assert_eq!(d.filter("t", &mut b, 0), 5);
        assert_eq!(offsets(&b), vec![100, 110, 120, 130, 140]);
        // same offsets, other tenant / other stream / other host: all new
        let mut b = batch("s1", [0, 10]);
        assert_eq!(d.filter("u", &mut b, 0), 0);
        let mut b = batch("s2", [0, 10]);
        assert_eq!(d.filter("t", &mut b, 0), 0);
        let mut b = WriteBatch::Logs(vec![rec("other", Some("s1"), 0, "x")]);
        assert_eq!(d.filter("t", &mut b, 0), 0);
        // a gap inside the window is filled once
        let mut b = batch("s1", [155, 150, 155]);
        assert_eq!(d.filter("t", &mut b, 0), 1);
        assert_eq!(offsets(&b), vec![155, 150]);
        assert_eq!(d.streams(), 4);
    }

    #[test]
    fn records_without_the_attributes_are_untouched() {
        let mut d = LogDedup::default();
        let mk = || WriteBatch::Logs(vec![rec("h", None, 0, "a"), rec("h", None, 0, "a")]);
        for _ in 0..3 {
            let mut b = mk();
            assert_eq!(d.filter("t", &mut b, 0), 0);
            assert_eq!(b.item_count(), 2);
        }
        let mut m = WriteBatch::Metrics(vec![]);
        assert_eq!(d.filter("t", &mut m, 0), 0);
        assert_eq!(d.streams(), 0);
    }

    #[test]
    fn window_is_bounded_and_old_offsets_count_as_seen() {
        let mut d = LogDedup::default();
        let n = (WINDOW * 4) as u64;
        let mut b = batch("s", 0..n);
        assert_eq!(d.filter("t", &mut b, 0), 0);
        let s = &d.tenants["t"]["h\0s"];
        assert_eq!(s.recent.len(), WINDOW);
        assert_eq!(s.floor, Some(n - WINDOW as u64 - 1));
        // a full re-send from the start: every record is a duplicate
        let mut b = batch("s", 0..n);
        assert_eq!(d.filter("t", &mut b, 0), n);
    }

    #[test]
    fn idle_streams_expire_and_tenants_are_capped() {
        let mut d = LogDedup::default();
        let mut b = batch("old", [0]);
        d.filter("t", &mut b, 0);
        let mut b = batch("new", [0]);
        d.filter("t", &mut b, IDLE_EXPIRY_MS - 1);
        let mut b = batch("new", [1]);
        d.filter("t", &mut b, IDLE_EXPIRY_MS + SWEEP_EVERY_MS);
        assert_eq!(d.streams(), 1, "the idle stream was forgotten");
        let mut streams = HashMap::new();
        for i in 0..3 {
            streams.insert(
                format!("k{i}"),
                StreamState {
                    last_seen_ms: i,
                    ..Default::default()
                },
            );
        }
        evict_least_recent(&mut streams);
        assert!(!streams.contains_key("k0") && streams.len() == 2);
    }

    #[test]
    fn state_round_trips_through_files_by_generation() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = LogDedup::default();
        let mut b = batch("s", 0..(WINDOW as u64 + 5));
        d.filter("t", &mut b, 42);
        d.save(dir.path(), 3).unwrap();
        let mut later = d.clone();
        let mut b = batch("s2", [7]);
        later.filter("t", &mut b, 43);
        later.save(dir.path(), 5).unwrap();
        // the checkpoint says generation 4: the file of generation 3 is the one
        let (back, g) = LogDedup::load(dir.path(), 4).unwrap();
        assert_eq!((back.clone(), g), (d.clone(), Some(3)));
        let (back5, g) = LogDedup::load(dir.path(), 5).unwrap();
        assert_eq!((back5, g), (later, Some(5)));
        assert_eq!(LogDedup::load(dir.path(), 2).unwrap().1, None);
        // a loaded state still drops what it saw
        let mut back = back;
        let mut b = batch("s", [0, 3, WINDOW as u64 + 4, WINDOW as u64 + 5]);
        assert_eq!(back.filter("t", &mut b, 50), 3);
        assert_eq!(remove_before(dir.path(), 5).unwrap(), 1);
        assert_eq!(generations(dir.path()).unwrap(), vec![5]);
        // corruption is detected, not trusted
        let p = file_path(dir.path(), 5);
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[9] ^= 0x40;
        std::fs::write(&p, bytes).unwrap();
        assert!(matches!(
            LogDedup::load(dir.path(), 9),
            Err(Error::Corrupt { .. })
        ));
    }
}
