//! In-memory tables that hold what the WAL has but parts do not yet. Metrics are kept
//! column-wise per series (timestamps and values in two vectors, ids in order); logs and
//! spans as Arrow record batches, one per write. [`apply`] is the single place where a
//! batch becomes visible: it checks out-of-order, duplicate and series-limit rules
//! against the series index and appends what is accepted. The live path and WAL replay
//! both call it in WAL order, so rejections are decided identically on replay.

use crate::index::{SeriesEntry, TenantIndex};
use crate::model::{Labels, WriteBatch};
use crate::records_part::{logs_to_batch, spans_to_batch};
use crate::{RejectReason, Rejection, Result, WriteOutcome};
use arrow::record_batch::RecordBatch;
use std::collections::{BTreeMap, HashMap};

/// One series' unflushed samples, oldest first.
#[derive(Clone, Debug, Default)]
pub(crate) struct SeriesChunk {
    pub(crate) ts: Vec<i64>,
    pub(crate) vals: Vec<f64>,
}

/// One tenant's unflushed data.
#[derive(Clone, Debug, Default)]
pub(crate) struct TenantMem {
    pub(crate) metrics: BTreeMap<u32, SeriesChunk>,
    pub(crate) logs: Vec<RecordBatch>,
    pub(crate) spans: Vec<RecordBatch>,
}

/// All tenants' unflushed data.
#[derive(Debug, Default)]
pub(crate) struct MemTables {
    pub(crate) tenants: HashMap<String, TenantMem>,
    /// Approximate memory held.
    pub(crate) bytes: usize,
    /// Clock time of the first write since the last flush.
    pub(crate) oldest_ms: Option<i64>,
}

/// Counts per reason plus the first example, turned into [`Rejection`]s.
#[derive(Default)]
struct Rejections(BTreeMap<RejectReason, (u64, String)>);

impl Rejections {
    fn add(&mut self, reason: RejectReason, n: u64, example: impl FnOnce() -> String) {
        self.0.entry(reason).or_insert_with(|| (0, example())).0 += n;
    }
    fn into_vec(self) -> Vec<Rejection> {
        self.0
            .into_iter()
            .map(|(reason, (count, example))| Rejection {
                reason,
                count,
                example,
            })
            .collect()
    }
}

/// Prometheus-style `{a="b", c="d"}`.
pub(crate) fn format_labels(l: &Labels) -> String {
    let inner: Vec<String> = l
        .iter()
        .map(|l| format!("{}={:?}", l.name, l.value))
        .collect();
    format!("{{{}}}", inner.join(", "))
}

/// Applies one batch of `tenant` to the index and memtables.
pub(crate) fn apply(
    index: &mut HashMap<String, TenantIndex>,
    mem: &mut MemTables,
    tenant: &str,
    batch: WriteBatch,
    max_series: usize,
    now_ms: i64,
) -> Result<WriteOutcome> {
    let mut accepted = 0u64;
    let mut rejected = Rejections::default();
    let mut added_bytes = 0usize;
    match batch {
        WriteBatch::Metrics(series) => {
            let tidx = index.entry(tenant.to_string()).or_default();
            let tmem = mem.tenants.entry(tenant.to_string()).or_default();
            for s in series {
                let Some(first) = s.samples.first() else {
                    continue;
                };
                let id = match tidx.get(&s.labels) {
                    Some(id) => id,
                    None if tidx.series.len() >= max_series => {
                        rejected.add(RejectReason::SeriesLimit, s.samples.len() as u64, || {
                            format!(
                                "series limit {max_series} reached, new series {} rejected",
                                format_labels(&s.labels)
                            )
                        });
                        continue;
                    }
                    None => {
                        added_bytes += 64
                            + s.labels
                                .iter()
                                .map(|l| l.name.len() + l.value.len() + 48)
                                .sum::<usize>();
                        tidx.insert(SeriesEntry {
                            labels: s.labels.clone(),
                            min_ts: first.timestamp_ms,
                            // below any real timestamp, so the first sample is "newer"
                            max_ts: i64::MIN,
                            last_bits: 0,
                        })
                    }
                };
                let entry = &mut tidx.series[id as usize];
                let chunk = tmem.metrics.entry(id).or_default();
                let fresh = entry.max_ts == i64::MIN && chunk.ts.is_empty();
                for (i, smp) in s.samples.iter().enumerate() {
                    let bits = smp.value.to_bits();
                    if !(fresh && i == 0) {
                        if smp.timestamp_ms < entry.max_ts {
                            rejected.add(RejectReason::OutOfOrder, 1, || {
                                format!(
                                    "out of order sample for series {} at {} (newest is {})",
                                    format_labels(&s.labels),
                                    smp.timestamp_ms,
                                    entry.max_ts
                                )
                            });
                            continue;
                        }
                        if smp.timestamp_ms == entry.max_ts {
                            if bits == entry.last_bits {
                                accepted += 1; // identical resend: a no-op
                            } else {
                                rejected.add(RejectReason::Duplicate, 1, || {
                                    format!(
                                        "duplicate sample for series {} at {} with a different value",
                                        format_labels(&s.labels),
                                        smp.timestamp_ms
                                    )
                                });
                            }
                            continue;
                        }
                    }
                    entry.min_ts = entry.min_ts.min(smp.timestamp_ms);
                    entry.max_ts = smp.timestamp_ms;
                    entry.last_bits = bits;
                    chunk.ts.push(smp.timestamp_ms);
                    chunk.vals.push(smp.value);
                    accepted += 1;
                    added_bytes += 16;
                }
                if chunk.ts.is_empty() {
                    tmem.metrics.remove(&id);
                }
            }
            if tmem.metrics.is_empty() && tmem.logs.is_empty() && tmem.spans.is_empty() {
                mem.tenants.remove(tenant);
            }
        }
        WriteBatch::Logs(logs) => {
            if !logs.is_empty() {
                let b = logs_to_batch(&logs)?;
                accepted += logs.len() as u64;
                added_bytes += b.get_array_memory_size();
                mem.tenants
                    .entry(tenant.to_string())
                    .or_default()
                    .logs
                    .push(b);
            }
        }
        WriteBatch::Spans(spans) => {
            if !spans.is_empty() {
                let b = spans_to_batch(&spans)?;
                accepted += spans.len() as u64;
                added_bytes += b.get_array_memory_size();
                mem.tenants
                    .entry(tenant.to_string())
                    .or_default()
                    .spans
                    .push(b);
            }
        }
    }
    if added_bytes > 0 {
        mem.bytes += added_bytes;
        mem.oldest_ms.get_or_insert(now_ms);
    }
    Ok(WriteOutcome {
        accepted,
        rejected: rejected.into_vec(),
        log_duplicates: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Sample, Series};

    fn batch(name: &str, samples: &[(i64, f64)]) -> WriteBatch {
        WriteBatch::Metrics(vec![Series {
            labels: Labels::from_pairs([("__name__", name)]),
            samples: samples
                .iter()
                .map(|&(t, v)| Sample {
                    timestamp_ms: t,
                    value: v,
                })
                .collect(),
        }])
    }

    #[test]
    fn prometheus_ingest_rules() {
        let (mut idx, mut mem) = (HashMap::new(), MemTables::default());
        let o = apply(
            &mut idx,
            &mut mem,
            "t",
            batch("a", &[(10, 1.0), (20, 2.0)]),
            2,
            0,
        )
        .unwrap();
        assert_eq!((o.accepted, o.rejected.len()), (2, 0));
        // same ts, same value: no-op; same ts other value: duplicate; older: out of order
        let o = apply(
            &mut idx,
            &mut mem,
            "t",
            batch("a", &[(20, 2.0), (20, 3.0), (15, 1.0), (30, 4.0)]),
            2,
            0,
        )
        .unwrap();
        assert_eq!(o.accepted, 2);
        let reasons: Vec<_> = o.rejected.iter().map(|r| (r.reason, r.count)).collect();
        assert_eq!(
            reasons,
            vec![(RejectReason::OutOfOrder, 1), (RejectReason::Duplicate, 1)]
        );
        assert!(
            o.rejected[0].example.contains(r#"{__name__="a"}"#),
            "{}",
            o.rejected[0].example
        );
        assert_eq!(mem.tenants["t"].metrics[&0].ts, vec![10, 20, 30]);
        apply(&mut idx, &mut mem, "t", batch("b", &[(1, 1.0)]), 2, 0).unwrap();
        let o = apply(
            &mut idx,
            &mut mem,
            "t",
            batch("c", &[(1, 1.0), (2, 2.0)]),
            2,
            0,
        )
        .unwrap();
        assert_eq!(o.rejected[0].reason, RejectReason::SeriesLimit);
        assert_eq!(o.rejected[0].count, 2);
        // other tenants have their own limit
        let o = apply(&mut idx, &mut mem, "u", batch("c", &[(1, 1.0)]), 2, 0).unwrap();
        assert_eq!(o.accepted, 1);
        // stale markers compare bit-exactly: resending one is a no-op
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        apply(&mut idx, &mut mem, "t", batch("a", &[(40, stale)]), 2, 0).unwrap();
        let o = apply(&mut idx, &mut mem, "t", batch("a", &[(40, stale)]), 2, 0).unwrap();
        assert_eq!((o.accepted, o.rejected.len()), (1, 0));
        let o = apply(&mut idx, &mut mem, "t", batch("a", &[(40, f64::NAN)]), 2, 0).unwrap();
        assert_eq!(o.rejected[0].reason, RejectReason::Duplicate);
    }
}
