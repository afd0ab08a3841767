//! Write-ahead log files. `wal/<seq>.wal` segments hold records
//! `len u32 LE · crc32(payload) u32 LE · payload`; records never span segments, and a
//! segment is rolled once it reaches the configured size. [`WalWriter`] appends a group
//! of records with one write and one fdatasync and truncates back on failure, so a
//! failed group never leaves a valid-looking record behind. [`replay`] reads all
//! segments in order: a torn record at a segment's tail is cut off, a corrupt record
//! elsewhere is copied to `quarantine/` and skipped.

use crate::layout::{create_dir_all, io_err, sync_dir, QUARANTINE_DIR};
use crate::{Error, Result};
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Largest payload accepted into one record.
pub(crate) const MAX_RECORD_BYTES: usize = 256 << 20;
const HEADER: usize = 8;

/// A position in the log: segment sequence number and byte offset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct WalPos {
    pub(crate) seg: u64,
    pub(crate) off: u64,
}

pub(crate) fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:016}.wal"))
}

/// Segment sequence numbers present in `dir`, ascending.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<u64>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
        let e = e.map_err(|e| io_err(dir, e))?;
        let name = e.file_name();
        if let Some(seq) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".wal"))
            .and_then(|n| n.parse().ok())
        {
            out.push(seq);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Appends record groups to the current segment.
pub(crate) struct WalWriter {
    dir: PathBuf,
    seq: u64,
    file: File,
    len: u64,
    segment_bytes: u64,
    /// Set when a failed group could not be truncated away: the next group starts a
    /// fresh segment.
    must_roll: bool,
}

impl WalWriter {
    /// Starts a new segment `seq` in `dir`.
    pub(crate) fn create(dir: &Path, seq: u64, segment_bytes: u64) -> Result<WalWriter> {
        let path = segment_path(dir, seq);
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)
            .map_err(|e| io_err(&path, e))?;
        sync_dir(dir)?;
        Ok(WalWriter {
            dir: dir.to_path_buf(),
            seq,
            file,
            len: 0,
            segment_bytes: segment_bytes.max(1),
            must_roll: false,
        })
    }

    /// Position where the next record will start.
    pub(crate) fn position(&self) -> WalPos {
        WalPos {
            seg: self.seq,
            off: self.len,
        }
    }

    /// Closes the current segment (if it holds anything) and starts the next one.
    pub(crate) fn roll(&mut self) -> Result<()> {
        if self.len == 0 && !self.must_roll {
            return Ok(());
        }
        *self = WalWriter::create(&self.dir, self.seq + 1, self.segment_bytes)?;
        Ok(())
    }

    /// Writes all `payloads` as records and fdatasyncs once. Returns each record's end
    /// position. On failure nothing of the group remains in the segment.
    pub(crate) fn append_group(&mut self, payloads: &[&[u8]]) -> Result<Vec<WalPos>> {
        if self.must_roll || self.len >= self.segment_bytes {
            self.roll()?;
        }
        let total: usize = payloads.iter().map(|p| p.len() + HEADER).sum();
        let mut buf = Vec::with_capacity(total);
        let mut ends = Vec::with_capacity(payloads.len());
        for p in payloads {
            buf.extend_from_slice(&(p.len() as u32).to_le_bytes());
            buf.extend_from_slice(&crc32fast::hash(p).to_le_bytes());
            buf.extend_from_slice(p);
            ends.push(WalPos {
                seg: self.seq,
                off: self.len + buf.len() as u64,
            });
        }
        let res = self
            .file
            .write_all(&buf)
            .and_then(|_| self.file.sync_data());
        if let Err(e) = res {
            let path = segment_path(&self.dir, self.seq);
            let undo = self
                .file
                .set_len(self.len)
                .and_then(|_| self.file.seek(SeekFrom::Start(self.len)).map(|_| ()))
                .and_then(|_| self.file.sync_data());
            if undo.is_err() {
                self.must_roll = true;
            }
            return Err(io_err(&path, e));
        }
        self.len += buf.len() as u64;
        Ok(ends)
    }
}

/// What replay found besides the records.
#[derive(Debug, Default)]
pub(crate) struct ReplayReport {
    pub(crate) last_seq: Option<u64>,
    pub(crate) truncated_tails: u64,
    pub(crate) corrupt_records: u64,
    pub(crate) records: u64,
}

/// Replays every segment in `root/wal` in order, calling `apply(start, end, payload)`
/// for each intact record that starts at or after `from`. A record `apply` rejects is
/// quarantined like a checksum failure.
pub(crate) fn replay(
    root: &Path,
    from: WalPos,
    mut apply: impl FnMut(WalPos, WalPos, &[u8]) -> std::result::Result<(), String>,
) -> Result<ReplayReport> {
    let dir = root.join(crate::layout::WAL_DIR);
    let mut report = ReplayReport::default();
    for seq in list_segments(&dir)? {
        report.last_seq = Some(seq);
        if seq < from.seg {
            continue;
        }
        let path = segment_path(&dir, seq);
        let data = std::fs::read(&path).map_err(|e| io_err(&path, e))?;
        let mut off = 0usize;
        while off < data.len() {
            let rest = data.len() - off;
            let torn = |why: &str| format!("{why} at offset {off}, {rest} bytes dropped");
            if rest < HEADER {
                truncate(&path, off as u64, &torn("short header"))?;
                report.truncated_tails += 1;
                break;
            }
            let len = u32::from_le_bytes([data[off], data[off + 1], data[off + 2], data[off + 3]])
                as usize;
            let crc =
                u32::from_le_bytes([data[off + 4], data[off + 5], data[off + 6], data[off + 7]]);
            if len == 0 || len > MAX_RECORD_BYTES || len > rest - HEADER {
                truncate(&path, off as u64, &torn("incomplete record"))?;
                report.truncated_tails += 1;
                break;
            }
            let end = off + HEADER + len;
            let payload = &data[off + HEADER..end];
            let start_pos = WalPos {
                seg: seq,
                off: off as u64,
            };
            let end_pos = WalPos {
                seg: seq,
                off: end as u64,
            };
            if crc32fast::hash(payload) != crc {
                if end == data.len() {
                    truncate(&path, off as u64, &torn("checksum mismatch in last record"))?;
                    report.truncated_tails += 1;
                    break;
                }
                quarantine_record(root, seq, off, &data[off..end], "checksum mismatch")?;
                report.corrupt_records += 1;
            } else if start_pos >= from {
                match apply(start_pos, end_pos, payload) {
                    Ok(()) => report.records += 1,
                    Err(why) => {
                        quarantine_record(root, seq, off, &data[off..end], &why)?;
                        report.corrupt_records += 1;
                    }
                }
            }
            off = end;
        }
    }
    Ok(report)
}

fn truncate(path: &Path, len: u64, why: &str) -> Result<()> {
    tracing::warn!(path = %path.display(), "torn WAL tail truncated: {why}");
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| io_err(path, e))?;
    f.set_len(len)
        .and_then(|_| f.sync_all())
        .map_err(|e| io_err(path, e))
}

fn quarantine_record(root: &Path, seq: u64, off: usize, bytes: &[u8], why: &str) -> Result<()> {
    let qdir = root.join(QUARANTINE_DIR);
    create_dir_all(&qdir)?;
    let dest = qdir.join(format!("wal-{seq:016}-{off:012}.rec"));
    tracing::warn!(segment = seq, offset = off, dest = %dest.display(), "corrupt WAL record quarantined: {why}");
    std::fs::write(&dest, bytes).map_err(|e| io_err(&dest, e))
}

/// Deletes segments with a sequence number below `seg` (all their records are in
/// parts). Returns how many were removed.
pub(crate) fn remove_segments_before(dir: &Path, seg: u64) -> Result<usize> {
    let mut n = 0;
    for seq in list_segments(dir)? {
        if seq >= seg {
            break;
        }
        let p = segment_path(dir, seq);
        match std::fs::remove_file(&p) {
            Ok(()) => n += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::Io { path: p, source: e }),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(root: &Path, from: WalPos) -> (Vec<Vec<u8>>, ReplayReport) {
        let mut out = Vec::new();
        let r = replay(root, from, |_, _, p| {
            out.push(p.to_vec());
            Ok(())
        })
        .unwrap();
        (out, r)
    }

    #[test]
    fn groups_roll_segments_and_replay_in_order() {
        let d = tempfile::tempdir().unwrap();
        let wal = d.path().join("wal");
        std::fs::create_dir_all(&wal).unwrap();
        let mut w = WalWriter::create(&wal, 1, 20).unwrap();
        let ends = w.append_group(&[b"aaaa", b"bbbbbbbbbbbb"]).unwrap();
        assert_eq!(
            ends,
            vec![WalPos { seg: 1, off: 12 }, WalPos { seg: 1, off: 32 }]
        );
        w.append_group(&[b"cc"]).unwrap();
        assert_eq!(w.position(), WalPos { seg: 2, off: 10 });
        let (recs, r) = collect(d.path(), WalPos::default());
        assert_eq!(
            recs,
            vec![b"aaaa".to_vec(), b"bbbbbbbbbbbb".to_vec(), b"cc".to_vec()]
        );
        assert_eq!(
            (r.last_seq, r.truncated_tails, r.corrupt_records),
            (Some(2), 0, 0)
        );
        let (recs, _) = collect(d.path(), WalPos { seg: 1, off: 12 });
        assert_eq!(recs.len(), 2);
        assert_eq!(remove_segments_before(&wal, 2).unwrap(), 1);
        assert_eq!(list_segments(&wal).unwrap(), vec![2]);
    }

    #[test]
    fn enospc_is_disk_full_and_forces_a_fresh_segment() {
        let d = tempfile::tempdir().unwrap();
        let Ok(full) = OpenOptions::new().write(true).open("/dev/full") else {
            return;
        };
        let mut w = WalWriter::create(d.path(), 1, 1 << 20).unwrap();
        w.file = full; // every write fails with ENOSPC, and it cannot be truncated
        let e = w.append_group(&[b"x"]).unwrap_err();
        assert!(matches!(e, Error::DiskFull(_)), "{e}");
        assert!(w.must_roll);
        // the next group goes to a new, healthy segment
        assert_eq!(
            w.append_group(&[b"y"]).unwrap(),
            vec![WalPos { seg: 2, off: 9 }]
        );
    }

    #[test]
    fn torn_tail_is_truncated_and_corrupt_middle_quarantined() {
        let d = tempfile::tempdir().unwrap();
        let wal = d.path().join("wal");
        std::fs::create_dir_all(&wal).unwrap();
        let mut w = WalWriter::create(&wal, 1, 1 << 20).unwrap();
        w.append_group(&[b"first", b"second", b"third"]).unwrap();
        drop(w);
        let p = segment_path(&wal, 1);
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[8 + 5 + 8] ^= 0xff; // first payload byte of "second"
        bytes.extend_from_slice(&[9, 0, 0, 0, 1, 2]); // torn header + partial payload
        std::fs::write(&p, &bytes).unwrap();
        let (recs, r) = collect(d.path(), WalPos::default());
        assert_eq!(recs, vec![b"first".to_vec(), b"third".to_vec()]);
        assert_eq!((r.truncated_tails, r.corrupt_records), (1, 1));
        assert_eq!(
            std::fs::metadata(&p).unwrap().len() as usize,
            bytes.len() - 6
        );
        assert!(d.path().join("quarantine").read_dir().unwrap().count() == 1);
        // a checksum failure in the very last record is a torn write, not corruption
        let mut bytes = std::fs::read(&p).unwrap();
        let n = bytes.len();
        bytes[n - 1] ^= 0xff;
        std::fs::write(&p, &bytes).unwrap();
        let (recs, r) = collect(d.path(), WalPos::default());
        assert_eq!(recs, vec![b"first".to_vec()]);
        assert_eq!((r.truncated_tails, r.corrupt_records), (1, 1));
    }
}
