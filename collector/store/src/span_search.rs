//! Span scans for trace search (Tempo's `/api/search`, tag names and values).
//!
//! Data flow: [`Store::scan_spans`] takes one snapshot of the tenant's trace parts and
//! memtable batches overlapping `[start_ns, end_ns]` (by span start time), then reads
//! them **newest first** — the active memtable, frozen memtables, then parts by
//! descending end time — decoding only the columns a search filters on or shows (ids,
//! name, kind, times, attributes, status, resource; events, links, trace state and
//! scope are skipped). Row groups are pruned by their start-time statistics. The scan
//! stops after `max_spans` spans, so a search over a busy hour holds a bounded number
//! of spans and prefers recent ones; [`SpanScan::truncated`] tells the caller.

use std::fs::File;
use std::sync::Arc;

use arrow::array::{Array, BinaryArray, Int32Array, Int64Array, RecordBatch, StringArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use parquet::file::statistics::Statistics;

use crate::engine::inc;
use crate::layout::{io_err, Signal};
use crate::model::SpanRecord;
use crate::parts::PartMeta;
use crate::records_part::attrs_from_json;
use crate::{Error, Result, Store};

/// Columns of the spans schema a search reads (indexes into `spans_schema()`):
/// trace_id, span_id, parent_span_id, name, kind, start_time_ns, end_time_ns,
/// attributes, status_code, status_message, resource.
const SEARCH_COLUMNS: [usize; 11] = [0, 1, 2, 4, 5, 6, 7, 8, 11, 12, 13];
/// Index of `start_time_ns` in the spans schema.
const START_COLUMN: usize = 6;

/// What [`Store::scan_spans`] found.
#[derive(Clone, Debug, Default)]
pub struct SpanScan {
    /// Spans starting in the range, newest sources first. `events` and `links` are
    /// `null`, `trace_state`, `scope_name` and `scope_version` empty (not read).
    pub spans: Vec<SpanRecord>,
    /// True when the scan stopped at `max_spans` before reading every source.
    pub truncated: bool,
    /// Bytes decoded: compressed column chunks of parts plus memtable batch memory.
    pub bytes_inspected: u64,
}

impl Store {
    /// Spans of `tenant` with `start_ns <= start_time_ns <= end_ns`, at most
    /// `max_spans`, read newest first with only the columns search needs (see the
    /// module docs).
    pub fn scan_spans(
        &self,
        tenant: &str,
        start_ns: i64,
        end_ns: i64,
        max_spans: usize,
    ) -> Result<SpanScan> {
        let shared = &self.shared;
        let (mut parts, batches) = {
            let st = shared.state.read();
            let parts: Vec<Arc<PartMeta>> = st
                .catalog
                .get(&(Signal::Traces, tenant.to_string()))
                .map(|ps| {
                    ps.iter()
                        .filter(|p| p.min_time <= end_ns && p.max_time >= start_ns)
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            // newest first: the active memtable's batches (last written last), then
            // the frozen generations from the most recent
            let mut batches: Vec<RecordBatch> = Vec::new();
            let mems = st
                .frozen
                .iter()
                .map(|(_, m)| m.as_ref())
                .chain(std::iter::once(&st.active));
            let mut per_mem: Vec<Vec<RecordBatch>> = mems
                .map(|m| {
                    m.tenants
                        .get(tenant)
                        .map(|t| t.spans.clone())
                        .unwrap_or_default()
                })
                .collect();
            per_mem.reverse();
            for mut b in per_mem {
                b.reverse();
                batches.extend(b);
            }
            (parts, batches)
        };
        parts.sort_by(|a, b| {
            b.max_time
                .cmp(&a.max_time)
                .then_with(|| b.generation.cmp(&a.generation))
        });
        let mut scan = SpanScan::default();
        for b in &batches {
            scan.bytes_inspected += b.get_array_memory_size() as u64;
            if decode(b, start_ns, end_ns, max_spans, &mut scan)? {
                return Ok(scan);
            }
        }
        for p in &parts {
            if read_part(shared, p, start_ns, end_ns, max_spans, &mut scan)? {
                return Ok(scan);
            }
        }
        Ok(scan)
    }
}

/// Reads one part's matching row groups; true when the cap was reached.
fn read_part(
    shared: &crate::engine::Shared,
    p: &PartMeta,
    start: i64,
    end: i64,
    max_spans: usize,
    scan: &mut SpanScan,
) -> Result<bool> {
    let md = p.meta.metadata();
    let total = md.num_row_groups();
    let groups: Vec<usize> = (0..total)
        .filter(|&rg| {
            match md.row_group(rg).column(START_COLUMN).statistics() {
                Some(Statistics::Int64(s)) => match (s.min_opt(), s.max_opt()) {
                    (Some(min), Some(max)) => *max >= start && *min <= end,
                    _ => true,
                },
                // no statistics: read the group
                _ => true,
            }
        })
        .collect();
    let c = &shared.counters;
    inc(&c.parts_read, 1);
    inc(&c.row_groups_read, groups.len() as u64);
    inc(&c.row_groups_pruned, (total - groups.len()) as u64);
    if groups.is_empty() {
        return Ok(false);
    }
    for &rg in &groups {
        let g = md.row_group(rg);
        scan.bytes_inspected += SEARCH_COLUMNS
            .iter()
            .filter(|&&i| i < g.num_columns())
            .map(|&i| g.column(i).compressed_size().max(0) as u64)
            .sum::<u64>();
    }
    let f = File::open(&p.path).map_err(|e| io_err(&p.path, e))?;
    let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(f, p.meta.clone());
    let mask = ProjectionMask::roots(builder.parquet_schema(), SEARCH_COLUMNS);
    let reader = builder
        .with_projection(mask)
        .with_row_groups(groups)
        .with_batch_size(8 * 1024)
        .build()
        .map_err(|e| Error::Parquet(e.to_string()))?;
    for batch in reader {
        let batch = batch.map_err(|e| Error::Corrupt {
            path: p.path.clone(),
            reason: e.to_string(),
        })?;
        if decode(&batch, start, end, max_spans, scan)? {
            return Ok(true);
        }
    }
    Ok(false)
}

fn col<'a, T: Array + 'static>(b: &'a RecordBatch, name: &str) -> Result<&'a T> {
    b.column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| Error::Parquet(format!("column {name} missing or of the wrong type")))
}

/// Appends the spans of `b` starting in `[start, end]`; true when the cap was reached.
fn decode(
    b: &RecordBatch,
    start: i64,
    end: i64,
    max_spans: usize,
    scan: &mut SpanScan,
) -> Result<bool> {
    let tid = col::<BinaryArray>(b, "trace_id")?;
    let sid = col::<BinaryArray>(b, "span_id")?;
    let pid = col::<BinaryArray>(b, "parent_span_id")?;
    let name = col::<StringArray>(b, "name")?;
    let kind = col::<Int32Array>(b, "kind")?;
    let st = col::<Int64Array>(b, "start_time_ns")?;
    let et = col::<Int64Array>(b, "end_time_ns")?;
    let attrs = col::<StringArray>(b, "attributes")?;
    let sc = col::<Int32Array>(b, "status_code")?;
    let sm = col::<StringArray>(b, "status_message")?;
    let res = col::<StringArray>(b, "resource")?;
    for i in 0..b.num_rows() {
        let t = st.value(i);
        if t < start || t > end {
            continue;
        }
        if scan.spans.len() >= max_spans {
            scan.truncated = true;
            return Ok(true);
        }
        scan.spans.push(SpanRecord {
            trace_id: tid.value(i).to_vec(),
            span_id: sid.value(i).to_vec(),
            parent_span_id: pid.value(i).to_vec(),
            trace_state: String::new(),
            name: name.value(i).to_string(),
            kind: kind.value(i),
            start_time_ns: t,
            end_time_ns: et.value(i),
            attributes: attrs_from_json(attrs.value(i))?,
            events: serde_json::Value::Null,
            links: serde_json::Value::Null,
            status_code: sc.value(i),
            status_message: sm.value(i).to_string(),
            resource: attrs_from_json(res.value(i))?,
            scope_name: String::new(),
            scope_version: String::new(),
        });
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ManualClock, StoreConfig, WriteBatch};
    use serde_json::json;

    fn span(trace: u8, id: u8, start: i64) -> SpanRecord {
        SpanRecord {
            trace_id: vec![trace; 16],
            span_id: vec![id; 8],
            parent_span_id: vec![],
            trace_state: "st".into(),
            name: format!("op{id}"),
            kind: 2,
            start_time_ns: start,
            end_time_ns: start + 5,
            attributes: vec![("http.status_code".into(), json!(500))],
            events: json!([{"name": "e"}]),
            links: json!([]),
            status_code: 2,
            status_message: "bad".into(),
            resource: vec![("service.name".into(), json!("api"))],
            scope_name: "lib".into(),
            scope_version: "1".into(),
        }
    }

    #[tokio::test]
    async fn scans_parts_and_memtables_newest_first_with_a_cap() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = StoreConfig::new(dir.path());
        cfg.min_free_bytes = 0;
        let store = Store::open(cfg, Arc::new(ManualClock::new(0))).unwrap();
        let hour = 3_600_000_000_000i64;
        // older spans go to a part, newer stay in the memtable
        store
            .write(
                "t",
                WriteBatch::Spans(vec![span(1, 1, hour), span(1, 2, hour + 10)]),
            )
            .await
            .unwrap();
        store.flush().await.unwrap();
        store
            .write("t", WriteBatch::Spans(vec![span(2, 3, 2 * hour)]))
            .await
            .unwrap();
        store
            .write("other", WriteBatch::Spans(vec![span(3, 4, hour)]))
            .await
            .unwrap();

        let all = store.scan_spans("t", 0, i64::MAX, 100).unwrap();
        assert!(!all.truncated);
        assert!(all.bytes_inspected > 0);
        let ids: Vec<u8> = all.spans.iter().map(|s| s.span_id[0]).collect();
        assert_eq!(ids, vec![3, 1, 2], "memtable first, then the part");
        let s = &all.spans[1];
        assert_eq!(s.name, "op1");
        assert_eq!(s.attributes, vec![("http.status_code".into(), json!(500))]);
        assert_eq!(s.resource, vec![("service.name".into(), json!("api"))]);
        assert_eq!(s.status_message, "bad");
        assert_eq!(s.events, serde_json::Value::Null, "not read");

        let capped = store.scan_spans("t", 0, i64::MAX, 2).unwrap();
        assert!(capped.truncated);
        assert_eq!(capped.spans.len(), 2);
        assert_eq!(capped.spans[0].span_id[0], 3, "the newest are kept");

        let ranged = store.scan_spans("t", hour + 5, hour + 20, 100).unwrap();
        assert_eq!(ranged.spans.len(), 1);
        assert_eq!(ranged.spans[0].span_id[0], 2);
        assert!(store
            .scan_spans("nobody", 0, i64::MAX, 10)
            .unwrap()
            .spans
            .is_empty());
    }
}
