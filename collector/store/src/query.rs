//! Reads. The series index answers label questions alone; samples, logs and spans are
//! gathered from parts (pruned by hour, time span and row-group statistics), frozen
//! memtables and the active memtable, taken as one consistent snapshot under the state
//! lock and decoded after it is released (metrics row groups through the bounded
//! decoded-group cache, `part_cache`). Everything is scoped to one tenant.

use crate::engine::Shared;
use crate::layout::Signal;
use crate::matcher::Matcher;
use crate::memtable::MemTables;
use crate::model::{Labels, LogRecord, Sample, Series, SpanRecord};
use crate::parts::{pruned_groups, read_pruned, PartMeta};
use crate::records_part::{logs_from_batch, spans_from_batch};
use crate::Result;
use arrow::array::RecordBatch;
use std::collections::BTreeSet;
use std::sync::Arc;

fn overlapping(parts: Option<&Vec<Arc<PartMeta>>>, start: i64, end: i64) -> Vec<Arc<PartMeta>> {
    parts
        .map(|ps| {
            ps.iter()
                .filter(|p| p.min_time <= end && p.max_time >= start)
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// Memtables oldest first: frozen generations, then the active one.
fn memtables(st: &crate::engine::State) -> impl Iterator<Item = &MemTables> {
    st.frozen
        .iter()
        .map(|(_, m)| m.as_ref())
        .chain(std::iter::once(&st.active))
}

impl Shared {
    pub(crate) fn select_series(
        &self,
        tenant: &str,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<Series>> {
        let (labels, mut samples, parts, ids) = {
            let st = self.state.read();
            let Some(ti) = st.index.get(tenant) else {
                return Ok(Vec::new());
            };
            let ids = ti.select(matchers, start, end);
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let labels: Vec<Labels> = ids
                .iter()
                .map(|&id| ti.series[id as usize].labels.clone())
                .collect();
            let parts = overlapping(
                st.catalog.get(&(Signal::Metrics, tenant.to_string())),
                start,
                end,
            );
            let mut mem: Vec<Vec<Sample>> = vec![Vec::new(); ids.len()];
            for m in memtables(&st) {
                let Some(t) = m.tenants.get(tenant) else {
                    continue;
                };
                for (slot, id) in ids.iter().enumerate() {
                    let Some(c) = t.metrics.get(id) else { continue };
                    let lo = c.ts.partition_point(|&x| x < start);
                    let hi = c.ts.partition_point(|&x| x <= end);
                    mem[slot].extend((lo..hi).map(|i| Sample {
                        timestamp_ms: c.ts[i],
                        value: c.vals[i],
                    }));
                }
            }
            (labels, mem, parts, ids)
        };
        if !parts.is_empty() {
            let (min_id, max_id) = (i64::from(ids[0]), i64::from(ids[ids.len() - 1]));
            let mut from_parts: Vec<Vec<Sample>> = vec![Vec::new(); ids.len()];
            for p in &parts {
                for rg in pruned_groups(p, &[(0, min_id, max_id), (1, start, end)], &self.counters)
                {
                    let group = self.part_cache.get(p, rg)?;
                    for (slot, &id) in ids.iter().enumerate() {
                        group.samples(id, start, end, &mut from_parts[slot]);
                    }
                }
            }
            for (slot, mut older) in from_parts.into_iter().enumerate() {
                if !older.is_empty() {
                    older.append(&mut samples[slot]);
                    samples[slot] = older;
                }
            }
        }
        let mut out: Vec<Series> = labels
            .into_iter()
            .zip(samples)
            .filter(|(_, s)| !s.is_empty())
            .map(|(labels, mut samples)| {
                if !samples.is_sorted_by_key(|s| s.timestamp_ms) {
                    samples.sort_by_key(|s| s.timestamp_ms);
                }
                Series { labels, samples }
            })
            .collect();
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(out)
    }

    /// Runs `f` over the label sets of the series matching any of `sets`.
    fn with_matching<T>(
        &self,
        tenant: &str,
        sets: &[Vec<Matcher>],
        start: i64,
        end: i64,
        f: impl FnOnce(&mut dyn Iterator<Item = &Labels>) -> T,
    ) -> Option<T> {
        let st = self.state.read();
        let ti = st.index.get(tenant)?;
        let ids = ti.select_any(sets, start, end);
        let mut it = ids.iter().map(|&id| &ti.series[id as usize].labels);
        Some(f(&mut it))
    }

    pub(crate) fn series(
        &self,
        tenant: &str,
        sets: &[Vec<Matcher>],
        start: i64,
        end: i64,
    ) -> Vec<Labels> {
        let mut v = self
            .with_matching(tenant, sets, start, end, |it| {
                it.cloned().collect::<Vec<_>>()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    pub(crate) fn label_names(
        &self,
        tenant: &str,
        sets: &[Vec<Matcher>],
        start: i64,
        end: i64,
    ) -> Vec<String> {
        self.with_matching(tenant, sets, start, end, |it| {
            it.flat_map(|l| l.iter().map(|l| l.name.clone()))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect()
        })
        .unwrap_or_default()
    }

    pub(crate) fn label_values(
        &self,
        tenant: &str,
        name: &str,
        sets: &[Vec<Matcher>],
        start: i64,
        end: i64,
    ) -> Vec<String> {
        self.with_matching(tenant, sets, start, end, |it| {
            it.filter_map(|l| l.get(name).map(str::to_string))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect()
        })
        .unwrap_or_default()
    }

    /// Parts of `signal` overlapping the range plus memtable batches (oldest first).
    fn record_sources(
        &self,
        tenant: &str,
        signal: Signal,
        start: i64,
        end: i64,
    ) -> (Vec<Arc<PartMeta>>, Vec<RecordBatch>) {
        let st = self.state.read();
        let parts = overlapping(st.catalog.get(&(signal, tenant.to_string())), start, end);
        let mut batches = Vec::new();
        for m in memtables(&st) {
            if let Some(t) = m.tenants.get(tenant) {
                batches.extend(
                    if signal == Signal::Logs {
                        &t.logs
                    } else {
                        &t.spans
                    }
                    .iter()
                    .cloned(),
                );
            }
        }
        (parts, batches)
    }

    pub(crate) fn select_logs(
        &self,
        tenant: &str,
        start: i64,
        end: i64,
        limit: usize,
    ) -> Result<Vec<LogRecord>> {
        let (parts, batches) = self.record_sources(tenant, Signal::Logs, start, end);
        let mut out = Vec::new();
        for p in &parts {
            for b in read_pruned(p, &[(0, start, end)], None, &self.counters)? {
                logs_from_batch(&b, start, end, &mut out)?;
            }
        }
        for b in &batches {
            logs_from_batch(b, start, end, &mut out)?;
        }
        out.sort_by_key(|r| r.timestamp_ns);
        out.truncate(limit);
        Ok(out)
    }

    pub(crate) fn select_spans(
        &self,
        tenant: &str,
        trace: Option<&[u8]>,
        start: i64,
        end: i64,
    ) -> Result<Vec<SpanRecord>> {
        let (parts, batches) = self.record_sources(tenant, Signal::Traces, start, end);
        let mut out = Vec::new();
        for p in &parts {
            for b in read_pruned(p, &[(6, start, end)], trace.map(|t| (0, t)), &self.counters)? {
                spans_from_batch(&b, trace, start, end, &mut out)?;
            }
        }
        for b in &batches {
            spans_from_batch(b, trace, start, end, &mut out)?;
        }
        out.sort_by(|a, b| {
            a.start_time_ns
                .cmp(&b.start_time_ns)
                .then_with(|| a.span_id.cmp(&b.span_id))
        });
        Ok(out)
    }
}
