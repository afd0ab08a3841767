//! The set of containers the agent currently knows, shared by discovery (which adds and
//! removes entries), metadata resolution (which names them), the collection loop (which
//! reads their cgroups and remembers what it last exported) and `GET /inventory`.
//!
//! A removed container whose series were exported moves to the `ended` list with its
//! last readings, so the next collection can end each series with one point flagged
//! `NO_RECORDED_VALUE` (the collector writes a staleness marker); after that nothing of
//! it is kept. Maps shrink when churn leaves them mostly empty, so memory follows the
//! number of live containers, not the number ever seen.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::cgroup_stats::ContainerStats;
use super::discovery::{CgroupPaths, Found, Identity};
use super::metadata::Metadata;

/// One live container.
#[derive(Debug, Clone)]
pub struct Entry {
    pub identity: Identity,
    pub cgroup_path: String,
    pub paths: CgroupPaths,
    pub first_seen: SystemTime,
    pub metadata: Metadata,
    /// Docker was asked about it (once is enough).
    pub docker_checked: bool,
    /// Readings of the last collection that exported this container's own series.
    pub last_stats: Option<ContainerStats>,
}

/// Sizes of the internal collections (for tests and debugging).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footprint {
    pub entries: usize,
    pub entries_capacity: usize,
    pub ended: usize,
    pub ended_capacity: usize,
}

/// What applying a scan changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    pub added: Vec<String>,
    pub removed: usize,
}

/// Live containers by key, plus removed ones whose series still need ending.
#[derive(Debug, Default)]
pub struct Inventory {
    entries: HashMap<String, Entry>,
    ended: Vec<Entry>,
}

/// One container as `GET /inventory` shows it.
#[derive(Debug, Serialize)]
pub struct InventoryItem {
    pub key: String,
    pub kind: &'static str,
    pub runtime: Option<&'static str>,
    pub container_id: Option<String>,
    pub pod_uid: Option<String>,
    pub qos: Option<String>,
    pub systemd_unit: Option<String>,
    pub cgroup_path: String,
    pub metadata: Metadata,
    /// RFC 3339, UTC.
    pub first_seen: String,
}

impl Inventory {
    /// Make the inventory match a full scan: add what is new, forget what is gone.
    pub fn apply(&mut self, mut found: HashMap<String, Found>, now: SystemTime) -> Changes {
        let mut changes = Changes::default();
        let gone: Vec<String> = self
            .entries
            .keys()
            .filter(|k| !found.contains_key(*k))
            .cloned()
            .collect();
        for key in gone {
            if let Some(entry) = self.entries.remove(&key) {
                changes.removed += 1;
                if entry.last_stats.is_some() {
                    self.ended.push(entry);
                }
            }
        }
        for (key, f) in found.drain() {
            match self.entries.get_mut(&key) {
                // Paths can change (v1 hierarchy appearing later); keep the rest.
                Some(e) => e.paths = f.paths,
                None => {
                    changes.added.push(key.clone());
                    self.entries.insert(
                        key,
                        Entry {
                            identity: f.identity,
                            cgroup_path: f.cgroup_path,
                            paths: f.paths,
                            first_seen: now,
                            metadata: Metadata::default(),
                            docker_checked: false,
                            last_stats: None,
                        },
                    );
                }
            }
        }
        self.shrink();
        changes
    }

    fn shrink(&mut self) {
        // After churn: give memory back once three quarters of the table is empty.
        if self.entries.len() * 4 < self.entries.capacity() {
            self.entries.shrink_to(self.entries.len() * 2);
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Entry> {
        self.entries.get_mut(key)
    }

    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.values()
    }

    /// Live entries, oldest first (ties by key), so a series budget keeps the long-lived.
    pub fn snapshot(&self) -> Vec<Entry> {
        let mut v: Vec<Entry> = self.entries.values().cloned().collect();
        v.sort_by(|a, b| (a.first_seen, &a.identity.key).cmp(&(b.first_seen, &b.identity.key)));
        v
    }

    /// Removed containers whose series must be ended now; the list is emptied.
    pub fn take_ended(&mut self) -> Vec<Entry> {
        std::mem::take(&mut self.ended)
    }

    pub fn footprint(&self) -> Footprint {
        Footprint {
            entries: self.entries.len(),
            entries_capacity: self.entries.capacity(),
            ended: self.ended.len(),
            ended_capacity: self.ended.capacity(),
        }
    }

    /// The `/inventory` document, oldest first.
    pub fn items(&self) -> Vec<InventoryItem> {
        self.snapshot()
            .into_iter()
            .map(|e| InventoryItem {
                kind: e.identity.kind.as_str(),
                runtime: e.identity.runtime.map(|r| r.as_str()),
                container_id: e.identity.container_id,
                pod_uid: e.identity.pod_uid,
                qos: e.identity.qos,
                systemd_unit: e.identity.unit,
                key: e.identity.key,
                cgroup_path: e.cgroup_path,
                metadata: e.metadata,
                first_seen: rfc3339(e.first_seen),
            })
            .collect()
    }
}

/// `2026-11-23T16:11:59.123Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::discovery::classify;
    use std::path::PathBuf;
    use std::time::Duration;

    fn found(id: &str) -> (String, Found) {
        let rel = format!("docker/{id}");
        let identity = classify(&rel).unwrap();
        (
            identity.key.clone(),
            Found {
                identity,
                cgroup_path: format!("/{rel}"),
                paths: CgroupPaths::V2(PathBuf::from("/x").join(&rel)),
            },
        )
    }

    fn id(n: usize) -> String {
        format!("{n:064x}")
    }

    #[test]
    fn adds_removes_and_ends_only_exported_series() {
        let mut inv = Inventory::default();
        let t0 = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let c = inv.apply([found(&id(1)), found(&id(2))].into_iter().collect(), t0);
        assert_eq!((c.added.len(), c.removed), (2, 0));
        inv.get_mut(&id(1)).unwrap().last_stats = Some(ContainerStats::default());
        let c = inv.apply(HashMap::new(), t0);
        assert_eq!((c.added.len(), c.removed), (0, 2));
        let ended = inv.take_ended();
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].identity.key, id(1));
        assert!(inv.take_ended().is_empty());
        assert!(inv.is_empty());
    }

    #[test]
    fn maps_shrink_after_churn() {
        let mut inv = Inventory::default();
        let baseline = inv.footprint();
        let t0 = UNIX_EPOCH;
        inv.apply((0..5_000).map(|n| found(&id(n))).collect(), t0);
        assert_eq!(inv.len(), 5_000);
        inv.apply(HashMap::new(), t0);
        assert_eq!(inv.footprint(), baseline);
    }

    #[test]
    fn items_are_oldest_first_with_rfc3339_times() {
        let mut inv = Inventory::default();
        let t0 = UNIX_EPOCH + Duration::from_millis(1_795_446_796_250);
        inv.apply([found(&id(2))].into_iter().collect(), t0);
        inv.apply(
            [found(&id(2)), found(&id(1))].into_iter().collect(),
            t0 + Duration::from_secs(1),
        );
        let items = inv.items();
        assert_eq!(items[0].key, id(2));
        assert_eq!(items[0].first_seen, "2026-11-23T15:13:16.250Z");
        assert_eq!(items[1].first_seen, "2026-11-23T15:13:17.250Z");
        assert_eq!(items[0].kind, "container");
        assert_eq!(items[0].runtime, Some("docker"));
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }
}
