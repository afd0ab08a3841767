//! Series label index, per tenant: series id ↔ labels, label postings for matchers,
//! and each series' time span and last sample (for out-of-order checks). The apply
//! thread mutates it; at every flush a snapshot is persisted to `index/series.idx`
//! together with the WAL position and part generation it corresponds to (the
//! checkpoint), so start-up needs neither a part scan nor a full WAL replay.

use crate::codec::{Dec, Enc};
use crate::layout::{io_err, sync_dir};
use crate::matcher::{matches_all, MatchOp, Matcher};
use crate::model::{Label, Labels};
use crate::wal::WalPos;
use crate::{Error, Result};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::Path;

const MAGIC: &[u8; 4] = b"SLIX";
const VERSION: u8 = 1;
pub(crate) const INDEX_FILE: &str = "series.idx";

/// What the store knows about one series.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct SeriesEntry {
    pub(crate) labels: Labels,
    pub(crate) min_ts: i64,
    /// Timestamp of the newest stored sample.
    pub(crate) max_ts: i64,
    /// Bits of the newest stored sample's value.
    pub(crate) last_bits: u64,
}

/// One tenant's series; a series id is its position in `series`.
#[derive(Clone, Debug, Default)]
pub(crate) struct TenantIndex {
    pub(crate) series: Vec<SeriesEntry>,
    by_labels: HashMap<Labels, u32>,
    /// label name → value → ascending series ids.
    postings: BTreeMap<String, BTreeMap<String, Vec<u32>>>,
}

impl TenantIndex {
    pub(crate) fn get(&self, labels: &Labels) -> Option<u32> {
        self.by_labels.get(labels).copied()
    }

    pub(crate) fn insert(&mut self, entry: SeriesEntry) -> u32 {
        let id = self.series.len() as u32;
        for l in entry.labels.iter() {
            self.postings
                .entry(l.name.clone())
                .or_default()
                .entry(l.value.clone())
                .or_default()
                .push(id);
        }
        self.by_labels.insert(entry.labels.clone(), id);
        self.series.push(entry);
        id
    }

    /// Ids (ascending) of series matching all `matchers` whose time span overlaps
    /// `[start, end]`. Equality matchers narrow through postings, the rest filter.
    pub(crate) fn select(&self, matchers: &[Matcher], start: i64, end: i64) -> Vec<u32> {
        let mut candidates: Option<Vec<u32>> = None;
        for m in matchers {
            let list: Vec<u32> = match m.op {
                MatchOp::Equal if !m.value.is_empty() => self
                    .postings
                    .get(&m.name)
                    .and_then(|v| v.get(&m.value))
                    .cloned()
                    .unwrap_or_default(),
                MatchOp::RegexMatch if !m.matches_empty() => {
                    let Some(values) = self.postings.get(&m.name) else {
                        return Vec::new();
                    };
                    let mut ids: Vec<u32> = values
                        .iter()
                        .filter(|(v, _)| m.matches_value(v))
                        .flat_map(|(_, ids)| ids.iter().copied())
                        .collect();
                    ids.sort_unstable();
                    ids
                }
                _ => continue,
            };
            candidates = Some(match candidates {
                None => list,
                Some(prev) => intersect(&prev, &list),
            });
        }
        let keep = |id: &u32| {
            let e = &self.series[*id as usize];
            e.min_ts <= end && e.max_ts >= start && matches_all(matchers, &e.labels)
        };
        match candidates {
            Some(c) => c.into_iter().filter(keep).collect(),
            None => (0..self.series.len() as u32).filter(keep).collect(),
        }
    }

    /// Ids matching any of `sets` (all series when `sets` is empty), ascending.
    pub(crate) fn select_any(&self, sets: &[Vec<Matcher>], start: i64, end: i64) -> Vec<u32> {
        if sets.is_empty() {
            return self.select(&[], start, end);
        }
        let mut all = BTreeSet::new();
        for s in sets {
            all.extend(self.select(s, start, end));
        }
        all.into_iter().collect()
    }

    fn rebuild(series: Vec<SeriesEntry>) -> TenantIndex {
        let mut t = TenantIndex::default();
        for e in series {
            t.insert(e);
        }
        t
    }
}

fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// The persisted state: everything in parts up to `generation`, everything in the WAL
/// before `wal_pos`, and the series index as of that point.
#[derive(Clone, Debug, Default)]
pub(crate) struct Checkpoint {
    pub(crate) generation: u64,
    pub(crate) wal_pos: WalPos,
    pub(crate) tenants: BTreeMap<String, Vec<SeriesEntry>>,
}

impl Checkpoint {
    /// Writes `index/series.idx` atomically (temp file, fsync, rename, fsync dir).
    pub(crate) fn save(&self, dir: &Path) -> Result<()> {
        let mut e = Enc {
            buf: Vec::with_capacity(4096),
        };
        e.buf.extend_from_slice(MAGIC);
        e.buf.push(VERSION);
        e.uvar(self.generation);
        e.uvar(self.wal_pos.seg);
        e.uvar(self.wal_pos.off);
        e.uvar(self.tenants.len() as u64);
        for (tenant, series) in &self.tenants {
            e.str(tenant);
            e.uvar(series.len() as u64);
            for s in series {
                e.uvar(s.labels.len() as u64);
                for l in s.labels.iter() {
                    e.str(&l.name);
                    e.str(&l.value);
                }
                e.ivar(s.min_ts);
                e.ivar(s.max_ts);
                e.buf.extend_from_slice(&s.last_bits.to_le_bytes());
            }
        }
        let crc = crc32fast::hash(&e.buf);
        e.buf.extend_from_slice(&crc.to_le_bytes());
        let tmp = dir.join(format!("{INDEX_FILE}.tmp"));
        let path = dir.join(INDEX_FILE);
        let mut f = std::fs::File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
        let written = f.write_all(&e.buf).and_then(|_| f.sync_all());
        if let Err(err) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(io_err(&tmp, err));
        }
        std::fs::rename(&tmp, &path).map_err(|e| io_err(&path, e))?;
        sync_dir(dir)
    }

    /// Reads the checkpoint; `Ok(None)` when there is none yet.
    pub(crate) fn load(dir: &Path) -> Result<Option<Checkpoint>> {
        let path = dir.join(INDEX_FILE);
        let buf = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&path, e)),
        };
        let corrupt = |reason: String| Error::Corrupt {
            path: path.clone(),
            reason,
        };
        if buf.len() < 9 || &buf[..4] != MAGIC {
            return Err(corrupt("bad magic".into()));
        }
        let (body, crc) = buf.split_at(buf.len() - 4);
        let mut crc_bytes = [0u8; 4];
        crc_bytes.copy_from_slice(crc);
        if crc32fast::hash(body) != u32::from_le_bytes(crc_bytes) {
            return Err(corrupt("checksum mismatch".into()));
        }
        let mut d = Dec { b: body, pos: 5 };
        if body[4] != VERSION {
            return Err(corrupt(format!("unknown version {}", body[4])));
        }
        let parse = |d: &mut Dec<'_>| -> std::result::Result<Checkpoint, String> {
            let generation = d.uvar()?;
            let wal_pos = WalPos {
                seg: d.uvar()?,
                off: d.uvar()?,
            };
            let mut tenants = BTreeMap::new();
            for _ in 0..d.len()? {
                let tenant = d.string()?;
                let n = d.len()?;
                let mut series = Vec::with_capacity(n);
                for _ in 0..n {
                    let mut labels = Vec::new();
                    for _ in 0..d.len()? {
                        labels.push(Label {
                            name: d.string()?,
                            value: d.string()?,
                        });
                    }
                    series.push(SeriesEntry {
                        labels: Labels::new(labels),
                        min_ts: d.ivar()?,
                        max_ts: d.ivar()?,
                        last_bits: d.u64le()?,
                    });
                }
                tenants.insert(tenant, series);
            }
            Ok(Checkpoint {
                generation,
                wal_pos,
                tenants,
            })
        };
        parse(&mut d).map(Some).map_err(corrupt)
    }

    /// The in-memory index this checkpoint describes.
    pub(crate) fn into_index(self) -> HashMap<String, TenantIndex> {
        self.tenants
            .into_iter()
            .map(|(t, s)| (t, TenantIndex::rebuild(s)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pairs: &[(&str, &str)], min: i64, max: i64) -> SeriesEntry {
        SeriesEntry {
            labels: Labels::from_pairs(pairs.iter().copied()),
            min_ts: min,
            max_ts: max,
            last_bits: 7,
        }
    }

    #[test]
    fn select_uses_postings_regex_and_time_span() {
        let mut t = TenantIndex::default();
        t.insert(entry(&[("__name__", "up"), ("job", "node")], 0, 100));
        t.insert(entry(&[("__name__", "up"), ("job", "api")], 50, 200));
        t.insert(entry(&[("__name__", "cpu"), ("job", "node")], 0, 10));
        let eq = |n: &str, v: &str| Matcher::new(n, MatchOp::Equal, v).unwrap();
        assert_eq!(t.select(&[eq("__name__", "up")], 0, 1000), vec![0, 1]);
        assert_eq!(t.select(&[eq("__name__", "up")], 150, 1000), vec![1]);
        let re = Matcher::new("job", MatchOp::RegexMatch, "no.*").unwrap();
        assert_eq!(t.select(&[re], 0, 1000), vec![0, 2]);
        let nre = Matcher::new("job", MatchOp::RegexNoMatch, "no.*").unwrap();
        assert_eq!(t.select(&[nre], 0, 1000), vec![1]);
        assert_eq!(t.select(&[eq("job", "")], 0, 1000), Vec::<u32>::new());
        assert_eq!(t.select(&[eq("absent", "")], 0, 1000), vec![0, 1, 2]);
        assert_eq!(
            t.select_any(
                &[vec![eq("job", "api")], vec![eq("__name__", "cpu")]],
                0,
                1000
            ),
            vec![1, 2]
        );
    }

    #[test]
    fn checkpoint_round_trips_and_detects_corruption() {
        let d = tempfile::tempdir().unwrap();
        assert!(Checkpoint::load(d.path()).unwrap().is_none());
        let mut c = Checkpoint {
            generation: 3,
            wal_pos: WalPos { seg: 4, off: 5 },
            ..Default::default()
        };
        c.tenants
            .insert("a".into(), vec![entry(&[("x", "y")], -1, 9)]);
        c.save(d.path()).unwrap();
        let back = Checkpoint::load(d.path()).unwrap().unwrap();
        assert_eq!(
            (back.generation, back.wal_pos),
            (3, WalPos { seg: 4, off: 5 })
        );
        assert_eq!(back.tenants, c.tenants);
        let p = d.path().join(INDEX_FILE);
        let mut b = std::fs::read(&p).unwrap();
        b[10] ^= 1;
        std::fs::write(&p, b).unwrap();
        assert!(matches!(
            Checkpoint::load(d.path()),
            Err(Error::Corrupt { .. })
        ));
    }
}
