//! Per-file read positions that survive restarts.
//!
//! A file is known by its fingerprint: device, inode, and an FNV-1a hash of its first
//! `prefix_len` bytes (up to 1 KiB, as much as existed when the file was first seen). The
//! hash catches copytruncate (same inode, new content); the inode tells apart files with
//! equal first bytes. The stream id shipped with every record (`sightline.log.stream`) is
//! the hex of a hash over all three, fixed for the life of the file.
//!
//! The shipper calls [`Checkpoints::ack`] only after the collector acknowledged the
//! records read up to an offset, then [`Checkpoints::persist`] writes
//! `<data_dir>/logs/checkpoints.json` atomically (temporary file, fsync, rename, fsync of
//! the directory). A finished file (rotated away and read to its end) is forgotten once
//! its last records are acknowledged. A corrupt checkpoint file is renamed to
//! `checkpoints.json.corrupt` and tailing starts over (at-least-once is kept: lines are
//! re-sent, not lost).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Bytes hashed from the start of a file for its fingerprint.
pub const PREFIX_BYTES: usize = 1024;

/// FNV-1a, 64 bit: stable across versions and platforms (unlike `DefaultHasher`).
pub fn fnv1a(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = if seed == 0 {
        0xcbf2_9ce4_8422_2325
    } else {
        seed
    };
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The stream id of a file: hex of a hash over device, inode and the prefix hash.
pub fn stream_id(dev: u64, ino: u64, prefix_hash: u64) -> String {
    let mut h = fnv1a(0, &dev.to_le_bytes());
    h = fnv1a(h, &ino.to_le_bytes());
    h = fnv1a(h, &prefix_hash.to_le_bytes());
    format!("{h:016x}")
}

/// One tracked file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub stream: String,
    /// Last path the file was seen at (informational; matching uses dev/inode + prefix).
    pub path: PathBuf,
    pub dev: u64,
    pub ino: u64,
    pub prefix_len: u64,
    pub prefix_hash: u64,
    /// Everything before this offset was acknowledged by the collector.
    pub offset: u64,
    /// Rotated away and read to the end: forget once `offset` reaches `final_offset`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_offset: Option<u64>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct FileFormat {
    version: u32,
    files: Vec<Entry>,
}

/// All checkpoints of this agent, shared by the tailer and the shipper.
#[derive(Debug)]
pub struct Checkpoints {
    path: PathBuf,
    entries: BTreeMap<String, Entry>,
    dirty: bool,
}

impl Checkpoints {
    /// Load `<dir>/checkpoints.json` (creating `dir`); a corrupt file is set aside.
    pub fn load(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let path = dir.join("checkpoints.json");
        let mut entries = BTreeMap::new();
        match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<FileFormat>(&bytes) {
                Ok(f) => {
                    for e in f.files {
                        entries.insert(e.stream.clone(), e);
                    }
                }
                Err(e) => {
                    let aside = dir.join("checkpoints.json.corrupt");
                    tracing::error!(path = %path.display(), error = %e, aside = %aside.display(), "corrupt log checkpoint file set aside; tailing restarts from the beginning of each file");
                    std::fs::rename(&path, &aside).map_err(|e| Error::io(&path, e))?;
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&path, e)),
        }
        Ok(Self {
            path,
            entries,
            dirty: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The entry of a file with this device and inode whose prefix hash matches, if any.
    pub fn find(&self, dev: u64, ino: u64) -> impl Iterator<Item = &Entry> {
        self.entries
            .values()
            .filter(move |e| e.dev == dev && e.ino == ino)
    }

    /// Every entry.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// When the checkpoint file was last written (`None` if it does not exist).
    pub fn modified(&self) -> Option<std::time::SystemTime> {
        std::fs::metadata(&self.path).ok()?.modified().ok()
    }

    pub fn get(&self, stream: &str) -> Option<&Entry> {
        self.entries.get(stream)
    }

    /// Start tracking a file (its offset is where reading starts).
    pub fn register(&mut self, entry: Entry) {
        self.entries.entry(entry.stream.clone()).or_insert(entry);
        self.dirty = true;
    }

    /// The stream now reads from another file (copytruncate: the rotated copy).
    pub fn relocate(&mut self, stream: &str, path: &Path, dev: u64, ino: u64) {
        if let Some(e) = self.entries.get_mut(stream) {
            e.path = path.to_path_buf();
            e.dev = dev;
            e.ino = ino;
            self.dirty = true;
        }
    }

    /// The stream was read to its end at `final_offset`.
    pub fn finish(&mut self, stream: &str, final_offset: u64) {
        if let Some(e) = self.entries.get_mut(stream) {
            e.final_offset = Some(final_offset);
            self.dirty = true;
        }
        self.forget_done(stream);
    }

    /// The collector acknowledged everything before `offset` in `stream`.
    pub fn ack(&mut self, stream: &str, offset: u64) {
        if let Some(e) = self.entries.get_mut(stream) {
            if offset > e.offset {
                e.offset = offset;
                self.dirty = true;
            }
        }
        self.forget_done(stream);
    }

    fn forget_done(&mut self, stream: &str) {
        if self
            .entries
            .get(stream)
            .is_some_and(|e| e.final_offset.is_some_and(|f| e.offset >= f))
        {
            self.entries.remove(stream);
            self.dirty = true;
        }
    }

    /// Forget files that no longer exist (called after discovery at start-up).
    pub fn retain(&mut self, keep: impl Fn(&Entry) -> bool) {
        let before = self.entries.len();
        self.entries.retain(|_, e| keep(e));
        self.dirty |= self.entries.len() != before;
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The serialized checkpoint if anything changed since the last call.
    pub fn take_snapshot(&mut self) -> Option<Vec<u8>> {
        if !self.dirty {
            return None;
        }
        self.dirty = false;
        let f = FileFormat {
            version: 1,
            files: self.entries.values().cloned().collect(),
        };
        serde_json::to_vec_pretty(&f).ok()
    }

    /// Write the state now (tests and shutdown); see [`write_atomic`].
    pub fn persist(&mut self) -> Result<bool> {
        match self.take_snapshot() {
            Some(bytes) => write_atomic(&self.path, &bytes).map(|()| true),
            None => Ok(false),
        }
    }
}

/// Write `bytes` to `path` so readers see the old or the new content, never a mix:
/// temporary file, fsync, rename over, fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| Error::io(&tmp, e))?;
    f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(stream: &str, offset: u64) -> Entry {
        Entry {
            stream: stream.into(),
            path: "/x/0.log".into(),
            dev: 1,
            ino: 2,
            prefix_len: 10,
            prefix_hash: 3,
            offset,
            final_offset: None,
        }
    }

    #[test]
    fn acked_offsets_survive_a_reload_and_finished_files_are_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Checkpoints::load(dir.path()).unwrap();
        c.register(entry("a", 0));
        c.register(entry("b", 5));
        c.ack("a", 100);
        c.ack("a", 50); // never moves back
        c.finish("b", 40);
        assert!(c.persist().unwrap());
        assert!(!c.persist().unwrap(), "nothing changed");
        let c2 = Checkpoints::load(dir.path()).unwrap();
        assert_eq!(c2.get("a").unwrap().offset, 100);
        assert_eq!(c2.get("b").unwrap().final_offset, Some(40));
        let mut c2 = c2;
        c2.ack("b", 40);
        assert!(
            c2.get("b").is_none(),
            "fully acked finished file is forgotten"
        );
        assert_eq!(c2.find(1, 2).count(), 1);
    }

    #[test]
    fn corrupt_file_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("checkpoints.json"), b"{not json").unwrap();
        let c = Checkpoints::load(dir.path()).unwrap();
        assert!(c.is_empty());
        assert!(dir.path().join("checkpoints.json.corrupt").exists());
    }

    #[test]
    fn stream_ids_are_stable() {
        assert_eq!(stream_id(1, 2, 3), stream_id(1, 2, 3));
        assert_ne!(stream_id(1, 2, 3), stream_id(1, 3, 3));
        assert_eq!(fnv1a(0, b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(0, b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
