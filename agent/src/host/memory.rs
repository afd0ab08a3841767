//! Memory from `/proc/meminfo`: `system.memory.usage{state}`, `system.memory.limit`,
//! `system.memory.utilization{state}`. The six states partition `MemTotal`, so a stacked
//! graph of them sums to the limit:
//! `used = MemTotal - MemFree - Buffers - Cached - SReclaimable - SUnreclaim`.

use std::collections::HashMap;

use crate::otlp_metric::{MetricSet, MetricSpec};

pub const MEMORY_USAGE: MetricSpec = MetricSpec::updown(
    "system.memory.usage",
    "By",
    "Bytes of memory in each state.",
);
pub const MEMORY_LIMIT: MetricSpec = MetricSpec::updown(
    "system.memory.limit",
    "By",
    "Total usable memory (MemTotal).",
);
pub const MEMORY_UTILIZATION: MetricSpec = MetricSpec::gauge(
    "system.memory.utilization",
    "1",
    "Fraction of total memory in each state.",
);

/// Memory readings in bytes, by state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Memory {
    pub total: u64,
    /// `(state attribute, bytes)`.
    pub states: [(&'static str, u64); 6],
}

/// Parse `/proc/meminfo` (`Key:   123 kB` lines) into bytes.
pub fn parse_meminfo(text: &str) -> Result<Memory, String> {
    let mut fields: HashMap<&str, u64> = HashMap::new();
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let mut parts = rest.split_ascii_whitespace();
        let Some(Ok(value)) = parts.next().map(str::parse::<u64>) else {
            continue;
        };
        let bytes = match parts.next() {
            Some("kB") => value.saturating_mul(1024),
            _ => value,
        };
        fields.insert(key.trim(), bytes);
    }
    let get = |k: &str| fields.get(k).copied().unwrap_or(0);
    let total = *fields
        .get("MemTotal")
        .ok_or_else(|| "MemTotal missing".to_string())?;
    let free = get("MemFree");
    let buffered = get("Buffers");
    let cached = get("Cached");
    let slab_reclaimable = get("SReclaimable");
    let slab_unreclaimable = get("SUnreclaim");
    let used = total
        .saturating_sub(free)
        .saturating_sub(buffered)
        .saturating_sub(cached)
        .saturating_sub(slab_reclaimable)
        .saturating_sub(slab_unreclaimable);
    Ok(Memory {
        total,
        states: [
            ("used", used),
            ("free", free),
            ("buffered", buffered),
            ("cached", cached),
            ("slab_reclaimable", slab_reclaimable),
            ("slab_unreclaimable", slab_unreclaimable),
        ],
    })
}

pub fn push_metrics(set: &mut MetricSet, mem: &Memory, start: u64) {
    for (state, bytes) in mem.states {
        set.push(&MEMORY_USAGE, start, &[("state", state)], bytes);
    }
    set.push(&MEMORY_LIMIT, start, &[], mem.total);
    if mem.total > 0 {
        for (state, bytes) in mem.states {
            set.push(
                &MEMORY_UTILIZATION,
                start,
                &[("state", state)],
                bytes as f64 / mem.total as f64,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fixtures::MEMINFO;

    #[test]
    fn states_partition_total() {
        let mem = parse_meminfo(MEMINFO).unwrap();
        assert_eq!(mem.total, 24_684_084 * 1024);
        assert_eq!(mem.states[1], ("free", 21_695_352 * 1024));
        assert_eq!(mem.states[4], ("slab_reclaimable", 137_988 * 1024));
        let sum: u64 = mem.states.iter().map(|(_, b)| b).sum();
        assert_eq!(sum, mem.total);
        assert_eq!(
            mem.states[0].1,
            (24_684_084 - 21_695_352 - 29_080 - 2_209_024 - 137_988 - 28_232) * 1024
        );
    }

    #[test]
    fn utilization_is_fraction_of_total() {
        let mem = parse_meminfo(MEMINFO).unwrap();
        let mut set = MetricSet::new(1);
        push_metrics(&mut set, &mem, 0);
        let names: Vec<_> = set.metrics().iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "system.memory.usage",
                "system.memory.limit",
                "system.memory.utilization"
            ]
        );
        assert_eq!(set.point_count(), 13);
    }

    #[test]
    fn missing_total_is_an_error() {
        assert!(parse_meminfo("MemFree: 12 kB\n").is_err());
        assert!(parse_meminfo("").is_err());
    }
}
