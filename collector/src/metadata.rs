//! Metric metadata (type, help, unit) per tenant, served by `GET /api/v1/metadata`.
//!
//! Data flow: the OTLP metrics receivers call [`from_otlp`] and remote write calls
//! [`from_remote_write`] on each request before translating it; once the request is
//! stored, [`MetadataStore::record`] merges the entries into the tenant's table (per
//! metric name the distinct `{type, help, unit}` entries, most recent first, at most
//! [`MAX_ENTRIES_PER_METRIC`]; at most [`MAX_METRICS_PER_TENANT`] names, later names are
//! dropped and logged once). A change schedules [`MetadataStore::persist`] (debounced
//! by a second, and run again at shutdown), which writes the whole table to
//! `<data_dir>/state/metadata.json` atomically (temp file, fsync, rename). The table
//! is loaded from that file at start-up, so it survives restarts; metadata is not in
//! the WAL, so what arrived in the last second before a crash may be missing until
//! the senders repeat it (OTLP SDKs send it with every export, Prometheus every
//! minute). An unreadable file is moved aside (`metadata.json.corrupt`) and logged.
//!
//! Names follow the series: OTLP metrics get the name [`crate::translate::names`]
//! builds (counters end in `_total`, histograms and summaries are listed under their
//! base name, as Prometheus lists a scraped family), and the unit is the Prometheus
//! unit word that name carries (`seconds`, `bytes`, `ratio`, ...).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sightline_proto::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use sightline_proto::otlp::metrics::v1::metric::Data;
use sightline_proto::prometheus::WriteRequest;

use crate::translate::names::{otlp_metric_name, MetricKind};

/// Distinct metadata entries kept per metric name.
pub const MAX_ENTRIES_PER_METRIC: usize = 10;
/// Metric names kept per tenant.
pub const MAX_METRICS_PER_TENANT: usize = 100_000;
/// Where the table lives under the data directory.
pub const METADATA_FILE: &str = "state/metadata.json";

/// One metadata entry, in Prometheus' `/api/v1/metadata` shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricMeta {
    /// `counter`, `gauge`, `histogram`, `gaugehistogram`, `summary`, `info`,
    /// `stateset` or `unknown`.
    #[serde(rename = "type")]
    pub kind: String,
    pub help: String,
    pub unit: String,
}

/// Tenant → metric name → entries (most recent first).
type Table = BTreeMap<String, BTreeMap<String, Vec<MetricMeta>>>;

/// Failure to read or write the metadata file.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct MetadataError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

/// The per-tenant metadata table and its file.
pub struct MetadataStore {
    path: PathBuf,
    table: Mutex<Table>,
    /// Serializes writers of the file.
    write_lock: Mutex<()>,
    dirty: AtomicBool,
    persist_scheduled: AtomicBool,
    limit_logged: AtomicBool,
}

impl MetadataStore {
    /// Loads `<data_dir>/state/metadata.json` (an empty table when it does not exist;
    /// a corrupt file is moved aside). Fails only when the directory cannot be made.
    pub fn open(data_dir: &Path) -> Result<MetadataStore, MetadataError> {
        let path = data_dir.join(METADATA_FILE);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| MetadataError {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let table = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<Table>(&bytes) {
                Ok(t) => t,
                Err(e) => {
                    let aside = path.with_extension("json.corrupt");
                    tracing::warn!(path = %path.display(), aside = %aside.display(), error = %e,
                        "metric metadata file is corrupt; moved aside, starting empty");
                    let _ = std::fs::rename(&path, &aside);
                    Table::new()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Table::new(),
            Err(source) => return Err(MetadataError { path, source }),
        };
        Ok(MetadataStore {
            path,
            table: Mutex::new(table),
            write_lock: Mutex::new(()),
            dirty: AtomicBool::new(false),
            persist_scheduled: AtomicBool::new(false),
            limit_logged: AtomicBool::new(false),
        })
    }

    /// Merges `entries` into `tenant`'s table; returns how many changed it.
    pub fn record(&self, tenant: &str, entries: Vec<(String, MetricMeta)>) -> usize {
        if entries.is_empty() {
            return 0;
        }
        let mut changed = 0;
        let mut table = self.table.lock();
        let metrics = table.entry(tenant.to_string()).or_default();
        for (name, meta) in entries {
            if !metrics.contains_key(&name) && metrics.len() >= MAX_METRICS_PER_TENANT {
                if !self.limit_logged.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        tenant,
                        limit = MAX_METRICS_PER_TENANT,
                        "metric metadata table is full; metadata of new metric names is dropped"
                    );
                }
                continue;
            }
            let list = metrics.entry(name).or_default();
            if list.first() == Some(&meta) {
                continue;
            }
            list.retain(|m| *m != meta);
            list.insert(0, meta);
            list.truncate(MAX_ENTRIES_PER_METRIC);
            changed += 1;
        }
        if changed > 0 {
            self.dirty.store(true, Ordering::SeqCst);
        }
        changed
    }

    /// `tenant`'s metadata, optionally of one metric, at most `limit` metrics
    /// (by name order) and `limit_per_metric` entries each (`None`: no limit).
    pub fn query(
        &self,
        tenant: &str,
        metric: Option<&str>,
        limit: Option<usize>,
        limit_per_metric: Option<usize>,
    ) -> BTreeMap<String, Vec<MetricMeta>> {
        let table = self.table.lock();
        let Some(metrics) = table.get(tenant) else {
            return BTreeMap::new();
        };
        let per = limit_per_metric.unwrap_or(usize::MAX);
        let pick = |(name, list): (&String, &Vec<MetricMeta>)| {
            (name.clone(), list.iter().take(per).cloned().collect())
        };
        match metric {
            Some(m) => metrics
                .get_key_value(m)
                .into_iter()
                .take(limit.unwrap_or(usize::MAX))
                .map(pick)
                .collect(),
            None => metrics
                .iter()
                .take(limit.unwrap_or(usize::MAX))
                .map(pick)
                .collect(),
        }
    }

    /// Writes the table to its file if it changed since the last write.
    pub fn persist(&self) -> Result<(), MetadataError> {
        let _writer = self.write_lock.lock();
        if !self.dirty.swap(false, Ordering::SeqCst) {
            return Ok(());
        }
        let bytes = {
            let table = self.table.lock();
            // a map of strings always serializes
            serde_json::to_vec(&*table).unwrap_or_default()
        };
        let result = write_atomically(&self.path, &bytes);
        if result.is_err() {
            self.dirty.store(true, Ordering::SeqCst);
        }
        result
    }

    /// Persists about a second from now (once for any number of calls meanwhile).
    /// Needs a Tokio runtime.
    pub fn schedule_persist(self: &Arc<Self>) {
        if !self.dirty.load(Ordering::SeqCst) || self.persist_scheduled.swap(true, Ordering::SeqCst)
        {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            me.persist_scheduled.store(false, Ordering::SeqCst);
            let m = me.clone();
            match tokio::task::spawn_blocking(move || m.persist()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot save metric metadata"),
                Err(e) => tracing::warn!(error = %e, "metric metadata save task failed"),
            }
        });
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), MetadataError> {
    use std::io::Write;
    let err = |source| MetadataError {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::File::create(&tmp).map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    f.sync_all().map_err(err)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(err)?;
    if let Some(dir) = path.parent() {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// The Prometheus unit word an OTLP unit adds to metric names (`s` → `seconds`,
/// `By/s` → `bytes_per_second`, `1` → `ratio`); empty for none.
fn unit_word(unit: &str, kind: MetricKind) -> String {
    const PROBE: &str = "sightlineunitprobe";
    otlp_metric_name(PROBE, unit, kind)
        .and_then(|n| {
            n.strip_prefix(PROBE)
                .map(|s| s.trim_start_matches('_').to_string())
        })
        .map(|s| {
            s.trim_end_matches("total")
                .trim_end_matches('_')
                .to_string()
        })
        .unwrap_or_default()
}

/// Metadata of the metrics in an OTLP request, under the names their series get.
pub fn from_otlp(req: &ExportMetricsServiceRequest) -> Vec<(String, MetricMeta)> {
    let mut out = Vec::new();
    for rm in &req.resource_metrics {
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                let (kind, type_name) = match &m.data {
                    Some(Data::Gauge(_)) => (MetricKind::Gauge, "gauge"),
                    Some(Data::Sum(s)) if s.is_monotonic => {
                        (MetricKind::MonotonicCounter, "counter")
                    }
                    Some(Data::Sum(_)) => (MetricKind::NonMonotonicCounter, "gauge"),
                    Some(Data::Histogram(_)) | Some(Data::ExponentialHistogram(_)) => {
                        (MetricKind::Histogram, "histogram")
                    }
                    Some(Data::Summary(_)) => (MetricKind::Summary, "summary"),
                    None => continue,
                };
                let Some(name) = otlp_metric_name(&m.name, &m.unit, kind) else {
                    continue;
                };
                out.push((
                    name,
                    MetricMeta {
                        kind: type_name.into(),
                        help: m.description.clone(),
                        unit: unit_word(&m.unit, kind),
                    },
                ));
            }
        }
    }
    out
}

/// The metadata a remote-write request carries (`metadata` field).
pub fn from_remote_write(req: &WriteRequest) -> Vec<(String, MetricMeta)> {
    req.metadata
        .iter()
        .filter(|m| !m.metric_family_name.is_empty())
        .map(|m| {
            let kind = match m.r#type {
                1 => "counter",
                2 => "gauge",
                3 => "histogram",
                4 => "gaugehistogram",
                5 => "summary",
                6 => "info",
                7 => "stateset",
                _ => "unknown",
            };
            (
                m.metric_family_name.clone(),
                MetricMeta {
                    kind: kind.into(),
                    help: m.help.clone(),
                    unit: m.unit.clone(),
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_proto::otlp::metrics::v1::{
        Gauge, Histogram, Metric, ResourceMetrics, ScopeMetrics, Sum,
    };
    use sightline_proto::prometheus::MetricMetadata;

    fn meta(kind: &str, help: &str) -> MetricMeta {
        MetricMeta {
            kind: kind.into(),
            help: help.into(),
            unit: String::new(),
        }
    }

    #[test]
    fn otlp_names_types_and_units() {
        let metric = |name: &str, unit: &str, data: Data| Metric {
            name: name.into(),
            unit: unit.into(),
            description: format!("about {name}"),
            data: Some(data),
            ..Default::default()
        };
        let req = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![
                        metric(
                            "http.server.duration",
                            "s",
                            Data::Histogram(Histogram::default()),
                        ),
                        metric(
                            "requests",
                            "1",
                            Data::Sum(Sum {
                                is_monotonic: true,
                                ..Default::default()
                            }),
                        ),
                        metric("queue.size", "{items}", Data::Sum(Sum::default())),
                        metric("cpu.usage", "1", Data::Gauge(Gauge::default())),
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let got = from_otlp(&req);
        let names: Vec<(&str, &str, &str)> = got
            .iter()
            .map(|(n, m)| (n.as_str(), m.kind.as_str(), m.unit.as_str()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("http_server_duration_seconds", "histogram", "seconds"),
                ("requests_total", "counter", ""),
                ("queue_size", "gauge", ""),
                ("cpu_usage_ratio", "gauge", "ratio"),
            ]
        );
        assert_eq!(got[0].1.help, "about http.server.duration");
    }

    #[test]
    fn remote_write_metadata() {
        let req = WriteRequest {
            metadata: vec![
                MetricMetadata {
                    r#type: 1,
                    metric_family_name: "http_requests_total".into(),
                    help: "Requests.".into(),
                    unit: String::new(),
                },
                MetricMetadata {
                    r#type: 3,
                    metric_family_name: String::new(),
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let got = from_remote_write(&req);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1.kind, "counter");
    }

    #[test]
    fn record_query_limits_and_persistence() {
        let dir = tempfile::tempdir().unwrap();
        let s = MetadataStore::open(dir.path()).unwrap();
        assert_eq!(
            s.record(
                "t",
                vec![
                    ("a".into(), meta("gauge", "A")),
                    ("b".into(), meta("counter", "B")),
                ]
            ),
            2
        );
        assert_eq!(s.record("t", vec![("a".into(), meta("gauge", "A"))]), 0);
        assert_eq!(s.record("t", vec![("a".into(), meta("gauge", "A2"))]), 1);
        assert_eq!(s.record("u", vec![("c".into(), meta("gauge", "C"))]), 1);
        let all = s.query("t", None, None, None);
        assert_eq!(all.len(), 2);
        assert_eq!(all["a"].len(), 2);
        assert_eq!(all["a"][0].help, "A2", "most recent first");
        assert_eq!(s.query("t", None, Some(1), None).len(), 1);
        assert_eq!(s.query("t", None, None, Some(1))["a"].len(), 1);
        assert_eq!(s.query("t", Some("b"), None, None).len(), 1);
        assert!(
            s.query("t", Some("c"), None, None).is_empty(),
            "tenant scoped"
        );
        s.persist().unwrap();
        drop(s);
        let s = MetadataStore::open(dir.path()).unwrap();
        assert_eq!(s.query("t", None, None, None)["a"][0].help, "A2");
        assert_eq!(s.query("u", None, None, None).len(), 1);

        std::fs::write(dir.path().join(METADATA_FILE), b"{not json").unwrap();
        let s = MetadataStore::open(dir.path()).unwrap();
        assert!(s.query("t", None, None, None).is_empty());
        assert!(dir.path().join("state/metadata.json.corrupt").exists());
    }
}
