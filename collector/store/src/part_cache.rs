//! Decoded metrics row groups kept in memory, so the range queries a dashboard repeats
//! every refresh do not decompress and decode the same Parquet pages again.
//!
//! Data flow: [`crate::query`] prunes a part's row groups by statistics as before (the
//! read/pruned counters do not change), then asks [`PartCache::get_or_load`] for each
//! remaining group. A miss decodes the group once into three columns (series id, time,
//! value; sorted by series then time as the part is written) and keeps it; a hit finds a
//! series' samples by binary search instead of scanning every row. Memory is bounded:
//! entries are evicted least-recently-used first once their decoded size exceeds the
//! budget ([`DEFAULT_BUDGET_BYTES`]); a group larger than the whole budget is decoded
//! but not kept. Parts never change once written, and a merged-away part is simply
//! never asked for again, so entries need no invalidation.

use crate::model::Sample;
use crate::parts::{read_groups, PartMeta};
use crate::{metrics_part, Result};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Decoded bytes kept at most (20 bytes per sample: about 13 M samples).
pub const DEFAULT_BUDGET_BYTES: usize = 256 << 20;

/// One decoded row group.
#[derive(Debug, Default)]
pub(crate) struct DecodedGroup {
    ids: Vec<u32>,
    ts: Vec<i64>,
    vals: Vec<f64>,
}

impl DecodedGroup {
    fn bytes(&self) -> usize {
        self.ids.len() * (4 + 8 + 8)
    }

    /// Appends the samples of series `id` with `start <= t <= end`, oldest first.
    pub(crate) fn samples(&self, id: u32, start: i64, end: i64, out: &mut Vec<Sample>) {
        let lo = self.ids.partition_point(|&x| x < id);
        let hi = lo + self.ids[lo..].partition_point(|&x| x <= id);
        let ts = &self.ts[lo..hi];
        let a = lo + ts.partition_point(|&t| t < start);
        let b = lo + ts.partition_point(|&t| t <= end);
        out.extend((a..b).map(|i| Sample {
            timestamp_ms: self.ts[i],
            value: self.vals[i],
        }));
    }

    /// Decodes row group `rg` of a metrics part.
    pub(crate) fn decode(part: &PartMeta, rg: usize) -> Result<DecodedGroup> {
        let mut rows = Vec::new();
        for b in read_groups(part, vec![rg])? {
            metrics_part::read_batch(&b, |id| Some(id as usize), i64::MIN, i64::MAX, &mut rows)?;
        }
        if !rows.is_sorted_by_key(|&(id, t, _)| (id, t)) {
            rows.sort_by_key(|&(id, t, _)| (id, t));
        }
        let mut g = DecodedGroup {
            ids: Vec::with_capacity(rows.len()),
            ts: Vec::with_capacity(rows.len()),
            vals: Vec::with_capacity(rows.len()),
        };
        for (id, t, v) in rows {
            // ids come from a u32 column
            g.ids.push(id as u32);
            g.ts.push(t);
            g.vals.push(v);
        }
        Ok(g)
    }
}

type Key = (PathBuf, u64, usize);

#[derive(Default)]
struct Inner {
    entries: HashMap<Key, (Arc<DecodedGroup>, u64)>,
    bytes: usize,
    tick: u64,
}

/// Bounded LRU of decoded metrics row groups, shared by all readers.
pub(crate) struct PartCache {
    budget: usize,
    inner: Mutex<Inner>,
}

impl PartCache {
    pub(crate) fn new(budget: usize) -> Self {
        PartCache {
            budget,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Row group `rg` of `part`, decoded (from the cache when it is there).
    pub(crate) fn get(&self, part: &PartMeta, rg: usize) -> Result<Arc<DecodedGroup>> {
        self.get_or_load((part.path.clone(), part.generation, rg), || {
            DecodedGroup::decode(part, rg)
        })
    }

    fn get_or_load(
        &self,
        key: Key,
        load: impl FnOnce() -> Result<DecodedGroup>,
    ) -> Result<Arc<DecodedGroup>> {
        {
            let mut inner = self.inner.lock();
            inner.tick += 1;
            let tick = inner.tick;
            if let Some((g, used)) = inner.entries.get_mut(&key) {
                *used = tick;
                return Ok(g.clone());
            }
        }
        // decode outside the lock; two readers may decode the same group at once
        let g = Arc::new(load()?);
        let size = g.bytes();
        if size <= self.budget {
            let mut inner = self.inner.lock();
            while inner.bytes + size > self.budget {
                let Some(oldest) = inner
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, used))| *used)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                if let Some((old, _)) = inner.entries.remove(&oldest) {
                    inner.bytes -= old.bytes();
                }
            }
            inner.tick += 1;
            let tick = inner.tick;
            if let Some((old, _)) = inner.entries.insert(key, (g.clone(), tick)) {
                inner.bytes -= old.bytes();
            }
            inner.bytes += size;
        }
        Ok(g)
    }

    /// Decoded bytes held.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.inner.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_found_by_series_and_time() {
        let g = DecodedGroup {
            ids: vec![1, 1, 1, 4, 4, 9],
            ts: vec![10, 20, 30, 10, 40, 5],
            vals: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        };
        let get = |id, s, e| {
            let mut out = Vec::new();
            g.samples(id, s, e, &mut out);
            out.iter()
                .map(|x| (x.timestamp_ms, x.value))
                .collect::<Vec<_>>()
        };
        assert_eq!(get(1, 15, 30), vec![(20, 2.0), (30, 3.0)]);
        assert_eq!(get(4, 0, 100), vec![(10, 4.0), (40, 5.0)]);
        assert_eq!(get(9, 6, 100), vec![]);
        assert_eq!(get(2, 0, 100), vec![]);
        assert_eq!(get(10, 0, 100), vec![]);
        assert_eq!(g.bytes(), 120);
    }

    fn group(n: usize) -> DecodedGroup {
        DecodedGroup {
            ids: vec![1; n],
            ts: (0..n as i64).collect(),
            vals: vec![0.0; n],
        }
    }

    #[test]
    fn least_recently_used_groups_are_evicted_within_the_budget() {
        let c = PartCache::new(200); // 10 samples
        let key = |n| (PathBuf::from("p"), 1, n);
        let loads = std::cell::Cell::new(0);
        let load = |n: usize| {
            loads.set(loads.get() + 1);
            Ok(group(n))
        };
        c.get_or_load(key(0), || load(4)).unwrap();
        c.get_or_load(key(1), || load(4)).unwrap();
        assert_eq!((c.bytes(), loads.get()), (160, 2));
        // a hit does not load and makes 0 the most recently used
        c.get_or_load(key(0), || load(4)).unwrap();
        assert_eq!(loads.get(), 2);
        // 2 does not fit next to both: 1 (least recently used) goes
        c.get_or_load(key(2), || load(4)).unwrap();
        assert_eq!(c.bytes(), 160);
        c.get_or_load(key(0), || load(4)).unwrap();
        assert_eq!(loads.get(), 3);
        c.get_or_load(key(1), || load(4)).unwrap();
        assert_eq!(loads.get(), 4);
        // larger than the whole budget: returned, not kept
        let big = c.get_or_load(key(3), || load(11)).unwrap();
        assert_eq!(big.ids.len(), 11);
        assert!(c.bytes() <= 200);
        c.get_or_load(key(3), || load(11)).unwrap();
        assert_eq!(loads.get(), 6);
    }
}
