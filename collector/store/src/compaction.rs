//! Merges an hour's metrics parts into one. Every flush writes one part per tenant and
//! hour, so with frequent flushes an hour collects many small parts, each paying again
//! for per-series offsets and compression warm-up. When an hour has
//! [`MIN_PARTS`] or more (or two, once the hour is over), the flusher thread (so never concurrently with a flush) reads
//! them, writes `part-<newest gen>-m.parquet` whose footer lists the files it replaces
//! (`sightline.compacted_from`), publishes it and marks the inputs obsolete; their files
//! are deleted when the last reader drops them. A crash after the merged part is renamed
//! into place is resolved at start-up: files it lists are deleted.

use crate::engine::{inc, Shared};
use crate::layout::{self, hour_of, io_err, Signal};
use crate::memtable::SeriesChunk;
use crate::parts::{load_part, write_one, PartMeta, Pending, COMPACTED_FROM};
use crate::{metrics_part, Error, Result};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::metadata::KeyValue;
use std::collections::BTreeMap;
use std::fs::File;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// An hour is merged once it has this many metrics parts...
pub(crate) const MIN_PARTS: usize = 4;
/// ...or two, once it is this long over (by the injected clock): late samples are rare.
const CLOSED_AFTER_MS: i64 = layout::HOUR_MS + 10 * 60_000;

/// Merges every hour that has collected [`MIN_PARTS`] metrics parts.
pub(crate) fn compact_metrics(shared: &Shared) {
    let now = shared.clock.now_ms();
    let groups: Vec<(String, i64, Vec<Arc<PartMeta>>)> = {
        let st = shared.state.read();
        let mut groups = Vec::new();
        for ((signal, tenant), parts) in &st.catalog {
            if *signal != Signal::Metrics {
                continue;
            }
            let mut by_hour: BTreeMap<i64, Vec<Arc<PartMeta>>> = BTreeMap::new();
            for p in parts {
                by_hour.entry(p.hour_ms).or_default().push(p.clone());
            }
            for (hour, ps) in by_hour {
                let closed = now.saturating_sub(hour) >= CLOSED_AFTER_MS;
                if ps.len() >= MIN_PARTS || (closed && ps.len() >= 2) {
                    groups.push((tenant.clone(), hour, ps));
                }
            }
        }
        groups
    };
    for (tenant, hour, inputs) in groups {
        match merge(shared, &tenant, hour, &inputs) {
            Ok(merged) => {
                let mut st = shared.state.write();
                if let Some(list) = st.catalog.get_mut(&(Signal::Metrics, tenant.clone())) {
                    list.retain(|p| !inputs.iter().any(|i| Arc::ptr_eq(i, p)));
                    list.push(Arc::new(merged));
                    list.sort_by_key(|p| (p.generation, p.hour_ms));
                }
                for i in &inputs {
                    i.obsolete.store(true, Ordering::SeqCst);
                }
                inc(&shared.counters.compactions, 1);
            }
            Err(e) => {
                inc(&shared.counters.compaction_errors, 1);
                tracing::warn!(tenant, hour = %layout::hour_dir(hour), "merging parts failed: {e}");
            }
        }
    }
}

fn merge(shared: &Shared, tenant: &str, hour: i64, inputs: &[Arc<PartMeta>]) -> Result<PartMeta> {
    let mut inputs: Vec<&Arc<PartMeta>> = inputs.iter().collect();
    inputs.sort_by_key(|p| p.generation);
    let mut series: BTreeMap<u32, SeriesChunk> = BTreeMap::new();
    let mut rows = Vec::new();
    for p in &inputs {
        let f = File::open(&p.path).map_err(|e| io_err(&p.path, e))?;
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(f, p.meta.clone())
            .with_batch_size(64 * 1024)
            .build()
            .map_err(|e| Error::Parquet(e.to_string()))?;
        for b in reader {
            let b = b.map_err(|e| Error::Corrupt {
                path: p.path.clone(),
                reason: e.to_string(),
            })?;
            rows.clear();
            metrics_part::read_batch(&b, |id| Some(id as usize), i64::MIN, i64::MAX, &mut rows)?;
            for &(id, t, v) in &rows {
                let c = series.entry(id as u32).or_default();
                c.ts.push(t);
                c.vals.push(v);
            }
        }
    }
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    for c in series.values_mut() {
        // generations are in acceptance order, which is time order per series
        if !c.ts.is_sorted() {
            let mut pairs: Vec<(i64, f64)> =
                c.ts.iter().copied().zip(c.vals.iter().copied()).collect();
            pairs.sort_by_key(|p| p.0);
            (c.ts, c.vals) = pairs.into_iter().unzip();
        }
        lo = lo.min(c.ts[0]);
        hi = hi.max(c.ts[c.ts.len() - 1]);
    }
    let batch = metrics_part::build_batch(
        series.iter().map(|(id, c)| (*id, c)),
        |t| hour_of(Signal::Metrics, t),
        hour,
    )?;
    let generation = inputs.iter().map(|p| p.generation).max().unwrap_or(0);
    let dir = layout::part_dir(&shared.root, Signal::Metrics, tenant, hour);
    let path = dir.join(layout::merged_part_file_name(generation));
    let tmp = path.with_extension("parquet.tmp");
    let names: Vec<String> = inputs
        .iter()
        .filter_map(|p| p.path.file_name()?.to_str().map(str::to_string))
        .collect();
    let pending = Pending {
        signal: Signal::Metrics,
        hour_ms: hour,
        batch,
        min_time: lo,
        max_time: hi,
    };
    let extra = vec![KeyValue::new(COMPACTED_FROM.into(), names.join(","))];
    let written = write_one(&tmp, &pending, tenant, generation, extra)
        .and_then(|_| std::fs::rename(&tmp, &path).map_err(|e| io_err(&path, e)))
        .and_then(|_| layout::sync_dir(&dir));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    load_part(&path, Signal::Metrics, hour, generation)
}
