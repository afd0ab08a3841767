//! Parquet part files: writing a flush generation, finding parts at start-up, and
//! reading them with row-group pruning. A part is
//! `<signal>/<tenant>/<YYYYMMDDHH>/part-<generation>.parquet`; its footer carries
//! `sightline.*` key/value metadata (signal, tenant, generation, min/max time). Parts
//! are written as `.tmp`, fsync'd and renamed only when the whole generation is on disk.

use crate::layout::{self, create_dir_all, hour_of, io_err, part_dir, part_file_name, Signal};
use crate::memtable::{MemTables, TenantMem};
use crate::model::{LogRecord, SpanRecord};
use crate::records_part::{
    logs_from_batch, logs_schema, logs_to_batch, spans_from_batch, spans_schema, spans_to_batch,
};
use crate::{metrics_part, Error, Result};
use arrow::array::RecordBatch;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::statistics::Statistics;
use parquet::schema::types::ColumnPath;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One part file and its cached footer.
#[derive(Debug)]
pub(crate) struct PartMeta {
    pub(crate) signal: Signal,
    pub(crate) hour_ms: i64,
    pub(crate) generation: u64,
    pub(crate) path: PathBuf,
    pub(crate) bytes: u64,
    pub(crate) min_time: i64,
    pub(crate) max_time: i64,
    pub(crate) meta: ArrowReaderMetadata,
    /// Set when a merged part replaced this one: the file is deleted once the last
    /// reader lets go of it.
    pub(crate) obsolete: std::sync::atomic::AtomicBool,
}

impl Drop for PartMeta {
    fn drop(&mut self) {
        if self.obsolete.load(std::sync::atomic::Ordering::SeqCst) {
            if let Err(e) = std::fs::remove_file(&self.path) {
                tracing::warn!(path = %self.path.display(), "could not remove a merged-away part: {e}");
            }
        }
    }
}

/// Footer key listing the file names a merged part replaces.
pub(crate) const COMPACTED_FROM: &str = "sightline.compacted_from";

/// All parts, by signal and tenant, each list ordered by generation then hour.
pub(crate) type Catalog = BTreeMap<(Signal, String), Vec<Arc<PartMeta>>>;

fn pq_err(e: impl std::fmt::Display) -> Error {
    Error::Parquet(e.to_string())
}

fn kv<'a>(meta: &'a ArrowReaderMetadata, key: &str) -> Option<&'a str> {
    meta.metadata()
        .file_metadata()
        .key_value_metadata()?
        .iter()
        .find(|k| k.key == key)?
        .value
        .as_deref()
}

/// Opens one part's footer.
pub(crate) fn load_part(
    path: &Path,
    signal: Signal,
    hour_ms: i64,
    generation: u64,
) -> Result<PartMeta> {
    let f = File::open(path).map_err(|e| io_err(path, e))?;
    let bytes = f.metadata().map_err(|e| io_err(path, e))?.len();
    let meta =
        ArrowReaderMetadata::load(&f, ArrowReaderOptions::new()).map_err(|e| Error::Corrupt {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    let expected = match signal {
        Signal::Metrics => metrics_part::schema(),
        Signal::Logs => logs_schema(),
        Signal::Traces => spans_schema(),
    };
    if meta.schema().fields() != expected.fields() {
        return Err(Error::Corrupt {
            path: path.to_path_buf(),
            reason: "unexpected schema".into(),
        });
    }
    let span = signal.units_per_hour();
    let first = (hour_ms / layout::HOUR_MS).saturating_mul(span);
    let min_time = kv(&meta, "sightline.min_time")
        .and_then(|v| v.parse().ok())
        .unwrap_or(first);
    let max_time = kv(&meta, "sightline.max_time")
        .and_then(|v| v.parse().ok())
        .unwrap_or(first.saturating_add(span - 1));
    Ok(PartMeta {
        signal,
        hour_ms,
        generation,
        path: path.to_path_buf(),
        bytes,
        min_time,
        max_time,
        meta,
        obsolete: Default::default(),
    })
}

/// What the start-up scan found.
#[derive(Default)]
pub(crate) struct ScanReport {
    pub(crate) catalog: Catalog,
    pub(crate) quarantined: u64,
    pub(crate) orphans_removed: u64,
}

/// Finds all parts. Parts of generations after `max_generation` (a flush that did not
/// reach its checkpoint) are deleted: their data is still in the WAL. Unreadable parts,
/// and metrics parts when `quarantine_metrics` (their series index is lost), go to
/// `quarantine/`.
pub(crate) fn scan(
    root: &Path,
    max_generation: Option<u64>,
    quarantine_metrics: bool,
) -> Result<ScanReport> {
    let mut rep = ScanReport::default();
    for signal in Signal::ALL {
        let sdir = root.join(signal.dir());
        create_dir_all(&sdir)?;
        for tdir in read_dir(&sdir)? {
            let Some(tenant) = tdir
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(layout::tenant_from_dir)
            else {
                tracing::warn!(path = %tdir.display(), "ignoring unexpected entry in part directory");
                continue;
            };
            for hdir in read_dir(&tdir)? {
                let Some(hour_ms) = hdir
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(layout::hour_from_dir)
                else {
                    tracing::warn!(path = %hdir.display(), "ignoring unexpected entry in part directory");
                    continue;
                };
                for file in read_dir(&hdir)? {
                    let name = file
                        .file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or_default()
                        .to_string();
                    if name.ends_with(".tmp") {
                        let _ = std::fs::remove_file(&file);
                        continue;
                    }
                    let Some(generation) = layout::part_gen(&name) else {
                        continue;
                    };
                    if max_generation.is_some_and(|m| generation > m) {
                        tracing::info!(path = %file.display(), "removing part of an unfinished flush");
                        std::fs::remove_file(&file).map_err(|e| io_err(&file, e))?;
                        rep.orphans_removed += 1;
                        continue;
                    }
                    let loaded = if quarantine_metrics && signal == Signal::Metrics {
                        Err(Error::Corrupt {
                            path: file.clone(),
                            reason: "series index lost".into(),
                        })
                    } else {
                        load_part(&file, signal, hour_ms, generation)
                    };
                    match loaded {
                        Ok(p) => rep
                            .catalog
                            .entry((signal, tenant.clone()))
                            .or_default()
                            .push(Arc::new(p)),
                        Err(e) => {
                            let dest = layout::quarantine(root, &file)?;
                            tracing::warn!(path = %file.display(), dest = %dest.display(), "part quarantined: {e}");
                            rep.quarantined += 1;
                        }
                    }
                }
            }
        }
    }
    for parts in rep.catalog.values_mut() {
        // a merge that crashed before deleting its inputs: the merged part wins
        let replaced: BTreeSet<PathBuf> = parts
            .iter()
            .filter_map(|p| {
                let from = kv(&p.meta, COMPACTED_FROM)?;
                let dir = p.path.parent()?;
                Some(from.split(',').map(|n| dir.join(n)).collect::<Vec<_>>())
            })
            .flatten()
            .collect();
        parts.retain(|p| {
            let gone = replaced.contains(&p.path);
            if gone {
                tracing::info!(path = %p.path.display(), "removing a part already merged");
                p.obsolete.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            !gone
        });
        parts.sort_by_key(|p| (p.generation, p.hour_ms));
    }
    Ok(rep)
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
        v.push(e.map_err(|e| io_err(dir, e))?.path());
    }
    v.sort();
    Ok(v)
}

fn records_props() -> WriterProperties {
    let mut b = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(6).unwrap_or_default()))
        .set_max_row_group_row_count(Some(64 * 1024));
    for c in [
        "timestamp_ns",
        "observed_timestamp_ns",
        "start_time_ns",
        "end_time_ns",
    ] {
        b = b
            .set_column_encoding(ColumnPath::from(c), Encoding::DELTA_BINARY_PACKED)
            .set_column_dictionary_enabled(ColumnPath::from(c), false);
    }
    // trace-by-id lookups skip row groups through a bloom filter (folded to the actual
    // number of distinct ids when the row group is written)
    b.set_column_bloom_filter_enabled(ColumnPath::from("trace_id"), true)
        .set_column_bloom_filter_fpp(ColumnPath::from("trace_id"), 0.01)
        .set_column_bloom_filter_max_ndv(ColumnPath::from("trace_id"), 64 * 1024)
        .build()
}

/// One part to be written.
pub(crate) struct Pending {
    pub(crate) signal: Signal,
    pub(crate) hour_ms: i64,
    pub(crate) batch: RecordBatch,
    pub(crate) min_time: i64,
    pub(crate) max_time: i64,
}

fn tenant_pending(t: &TenantMem) -> Result<Vec<Pending>> {
    let mut out = Vec::new();
    // metrics: every hour any series touches
    let mut hours = BTreeSet::new();
    for c in t.metrics.values() {
        let mut i = 0;
        while i < c.ts.len() {
            let h = hour_of(Signal::Metrics, c.ts[i]);
            hours.insert(h);
            // timestamps are sorted and hour_of is monotonic: skip the rest of this hour
            i += c.ts[i..]
                .partition_point(|&x| hour_of(Signal::Metrics, x) <= h)
                .max(1);
        }
    }
    for h in hours {
        let batch = metrics_part::build_batch(
            t.metrics.iter().map(|(id, c)| (*id, c)),
            |x| hour_of(Signal::Metrics, x),
            h,
        )?;
        let (lo, hi) = t
            .metrics
            .values()
            .flat_map(|c| c.ts.iter())
            .filter(|&&x| hour_of(Signal::Metrics, x) == h)
            .fold((i64::MAX, i64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
        out.push(Pending {
            signal: Signal::Metrics,
            hour_ms: h,
            batch,
            min_time: lo,
            max_time: hi,
        });
    }
    let mut logs: Vec<LogRecord> = Vec::new();
    for b in &t.logs {
        logs_from_batch(b, i64::MIN, i64::MAX, &mut logs)?;
    }
    logs.sort_by_key(|r| r.timestamp_ns);
    for chunk in logs.chunk_by(|a, b| {
        hour_of(Signal::Logs, a.timestamp_ns) == hour_of(Signal::Logs, b.timestamp_ns)
    }) {
        out.push(Pending {
            signal: Signal::Logs,
            hour_ms: hour_of(Signal::Logs, chunk[0].timestamp_ns),
            batch: logs_to_batch(chunk)?,
            min_time: chunk[0].timestamp_ns,
            max_time: chunk[chunk.len() - 1].timestamp_ns,
        });
    }
    let mut spans: Vec<SpanRecord> = Vec::new();
    for b in &t.spans {
        spans_from_batch(b, None, i64::MIN, i64::MAX, &mut spans)?;
    }
    spans.sort_by_key(|r| r.start_time_ns);
    for chunk in spans.chunk_by(|a, b| {
        hour_of(Signal::Traces, a.start_time_ns) == hour_of(Signal::Traces, b.start_time_ns)
    }) {
        out.push(Pending {
            signal: Signal::Traces,
            hour_ms: hour_of(Signal::Traces, chunk[0].start_time_ns),
            batch: spans_to_batch(chunk)?,
            min_time: chunk[0].start_time_ns,
            max_time: chunk[chunk.len() - 1].start_time_ns,
        });
    }
    Ok(out)
}

pub(crate) fn write_one(
    path: &Path,
    p: &Pending,
    tenant: &str,
    generation: u64,
    extra: Vec<KeyValue>,
) -> Result<()> {
    let mut props = if p.signal == Signal::Metrics {
        metrics_part::writer_properties()
    } else {
        records_props()
    };
    let kvs = vec![
        KeyValue::new("sightline.signal".into(), p.signal.dir().to_string()),
        KeyValue::new("sightline.tenant".into(), tenant.to_string()),
        KeyValue::new("sightline.generation".into(), generation.to_string()),
        KeyValue::new("sightline.min_time".into(), p.min_time.to_string()),
        KeyValue::new("sightline.max_time".into(), p.max_time.to_string()),
    ]
    .into_iter()
    .chain(extra)
    .collect();
    props = props
        .into_builder()
        .set_key_value_metadata(Some(kvs))
        .build();
    let f = File::create(path).map_err(|e| io_err(path, e))?;
    let mut w = ArrowWriter::try_new(f, p.batch.schema(), Some(props)).map_err(pq_err)?;
    w.write(&p.batch).map_err(|e| disk_or_pq(path, e))?;
    let f = w.into_inner().map_err(|e| disk_or_pq(path, e))?;
    f.sync_all().map_err(|e| io_err(path, e))
}

fn disk_or_pq(path: &Path, e: parquet::errors::ParquetError) -> Error {
    match e {
        parquet::errors::ParquetError::External(inner) => {
            match inner.downcast::<std::io::Error>() {
                Ok(io) => io_err(path, *io),
                Err(other) => pq_err(other),
            }
        }
        other => pq_err(other),
    }
}

/// Writes every tenant's data of `mem` as generation `generation` and returns the new
/// parts. On error nothing of this generation is left on disk.
pub(crate) fn write_generation(
    root: &Path,
    generation: u64,
    mem: &MemTables,
) -> Result<Vec<(String, Arc<PartMeta>)>> {
    let mut written: Vec<(String, Signal, i64, PathBuf)> = Vec::new();
    let res = (|| -> Result<()> {
        let mut tenants: Vec<_> = mem.tenants.iter().collect();
        tenants.sort_by(|a, b| a.0.cmp(b.0));
        for (tenant, t) in tenants {
            for p in tenant_pending(t)? {
                let dir = part_dir(root, p.signal, tenant, p.hour_ms);
                create_dir_all(&dir)?;
                let path = dir.join(part_file_name(generation));
                let tmp = path.with_extension("parquet.tmp");
                written.push((tenant.clone(), p.signal, p.hour_ms, tmp.clone()));
                write_one(&tmp, &p, tenant, generation, Vec::new())?;
            }
        }
        Ok(())
    })();
    let cleanup = |w: &[(String, Signal, i64, PathBuf)]| {
        for (_, _, _, tmp) in w {
            let _ = std::fs::remove_file(tmp);
            let _ = std::fs::remove_file(tmp.with_extension(""));
        }
    };
    if let Err(e) = res {
        cleanup(&written);
        return Err(e);
    }
    let mut out = Vec::with_capacity(written.len());
    let mut dirs = BTreeSet::new();
    for (tenant, signal, hour_ms, tmp) in &written {
        let path = tmp.with_extension("");
        let step = std::fs::rename(tmp, &path)
            .map_err(|e| io_err(&path, e))
            .and_then(|_| load_part(&path, *signal, *hour_ms, generation));
        match step {
            Ok(p) => out.push((tenant.clone(), Arc::new(p))),
            Err(e) => {
                cleanup(&written);
                return Err(e);
            }
        }
        if let Some(d) = path.parent() {
            dirs.insert(d.to_path_buf());
            if let Some(dd) = d.parent() {
                dirs.insert(dd.to_path_buf());
            }
        }
    }
    for d in dirs {
        layout::sync_dir(&d)?;
    }
    Ok(out)
}

/// Min and max of an `i64` (or `i32`-stored unsigned) column in one row group.
fn rg_range(meta: &ArrowReaderMetadata, rg: usize, col: usize) -> Option<(i64, i64)> {
    match meta.metadata().row_group(rg).column(col).statistics()? {
        Statistics::Int64(s) => Some((*s.min_opt()?, *s.max_opt()?)),
        Statistics::Int32(s) => Some((
            i64::from(*s.min_opt()? as u32),
            i64::from(*s.max_opt()? as u32),
        )),
        _ => None,
    }
}

/// The row groups of `part` whose statistics may hold rows with `lo <= col <= hi` for
/// every `(col, lo, hi)` in `ranges`; counts the part as read and the groups as read or
/// pruned.
pub(crate) fn pruned_groups(
    part: &PartMeta,
    ranges: &[(usize, i64, i64)],
    counters: &crate::engine::Counters,
) -> Vec<usize> {
    let groups: Vec<usize> = (0..part.meta.metadata().num_row_groups())
        .filter(|&rg| {
            ranges
                .iter()
                .all(|&(col, lo, hi)| match rg_range(&part.meta, rg, col) {
                    Some((min, max)) => max >= lo && min <= hi,
                    None => true,
                })
        })
        .collect();
    let total = part.meta.metadata().num_row_groups();
    crate::engine::inc(&counters.parts_read, 1);
    crate::engine::inc(&counters.row_groups_read, groups.len() as u64);
    crate::engine::inc(&counters.row_groups_pruned, (total - groups.len()) as u64);
    groups
}

/// Decodes the row groups `groups` of `part`.
pub(crate) fn read_groups(part: &PartMeta, groups: Vec<usize>) -> Result<Vec<RecordBatch>> {
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let f = File::open(&part.path).map_err(|e| io_err(&part.path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(f, part.meta.clone())
        .with_row_groups(groups)
        .with_batch_size(64 * 1024)
        .build()
        .map_err(pq_err)?;
    reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Corrupt {
            path: part.path.clone(),
            reason: e.to_string(),
        })
}

/// Reads the row groups of `part` whose statistics may hold rows with `lo <= col <= hi`
/// for every `(col, lo, hi)` in `ranges`.
pub(crate) fn read_pruned(
    part: &PartMeta,
    ranges: &[(usize, i64, i64)],
    bloom: Option<(usize, &[u8])>,
    counters: &crate::engine::Counters,
) -> Result<Vec<RecordBatch>> {
    let Some((col, key)) = bloom else {
        let groups = pruned_groups(part, ranges, counters);
        return read_groups(part, groups);
    };
    let mut groups: Vec<usize> = (0..part.meta.metadata().num_row_groups())
        .filter(|&rg| {
            ranges
                .iter()
                .all(|&(col, lo, hi)| match rg_range(&part.meta, rg, col) {
                    Some((min, max)) => max >= lo && min <= hi,
                    None => true,
                })
        })
        .collect();
    let total = part.meta.metadata().num_row_groups();
    crate::engine::inc(&counters.parts_read, 1);
    let f = File::open(&part.path).map_err(|e| io_err(&part.path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(f, part.meta.clone());
    // a missing or unreadable filter keeps the row group
    groups.retain(
        |&rg| match builder.get_row_group_column_bloom_filter(rg, col) {
            Ok(Some(sbbf)) => sbbf.check(key),
            _ => true,
        },
    );
    crate::engine::inc(&counters.row_groups_read, groups.len() as u64);
    crate::engine::inc(&counters.row_groups_pruned, (total - groups.len()) as u64);
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let reader = builder
        .with_row_groups(groups)
        .with_batch_size(64 * 1024)
        .build()
        .map_err(pq_err)?;
    reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Corrupt {
            path: part.path.clone(),
            reason: e.to_string(),
        })
}
