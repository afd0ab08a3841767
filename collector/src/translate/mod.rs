//! Translation of ingest requests into the store's data model.
//!
//! Data flow: a receiver decodes a request (OTLP metrics/logs/traces, Prometheus
//! remote-write 1.0) and hands it to one of [`otlp_metrics`], [`otlp_logs`],
//! [`otlp_traces`], [`remote_write`]. Each returns a [`Translated`]: the
//! [`WriteBatch`] to append to the WAL, plus the items that could not be translated,
//! aggregated by reason ([`Dropped`]). Translation never fails as a whole and never
//! panics: a bad item is dropped and counted, the rest goes through. The caller
//! decides what the sender sees — an empty batch with drops rejects the request
//! (gRPC `InvalidArgument` / HTTP 400 with the messages), otherwise the batch is
//! stored and the drops are reported (OTLP `partial_success`, remote-write 400) and
//! added to `sightline_collector_rejected_total{reason}`.
//!
//! Metrics follow the OpenTelemetry "Prometheus and OpenMetrics Compatibility"
//! specification the way Prometheus' own OTLP receiver implements it; see
//! [`metrics`] for the mapping and [`names`] for naming rules. What `count` means in
//! [`Dropped`]: OTLP data points (metrics), samples (remote-write; a series without
//! samples counts as one), log records, spans.

mod attributes;
mod exponential;
mod logs;
mod metrics;
pub mod names;
mod remote_write;
mod traces;

use std::collections::HashMap;

pub use sightline_store::{Label, Labels, LogRecord, Sample, Series, SpanRecord, WriteBatch};

use sightline_proto::otlp::collector::logs::v1::ExportLogsServiceRequest;
use sightline_proto::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use sightline_proto::otlp::collector::trace::v1::ExportTraceServiceRequest;
use sightline_proto::prometheus::WriteRequest;

/// Reasons an item is dropped; the values of `sightline_collector_rejected_total{reason}`.
pub mod reason {
    pub const INVALID_LABEL_NAME: &str = "invalid_label_name";
    pub const MISSING_METRIC_NAME: &str = "missing_metric_name";
    pub const INVALID_METRIC_NAME: &str = "invalid_metric_name";
    pub const DUPLICATE_LABEL: &str = "duplicate_label";
    pub const NON_FINITE_VALUE: &str = "non_finite_value";
    pub const INVALID_TIMESTAMP: &str = "invalid_timestamp";
    pub const DELTA_TEMPORALITY: &str = "delta_temporality";
    pub const INVALID_SPAN: &str = "invalid_span";
    pub const INVALID_DATA: &str = "invalid_data";
    /// Every reason, for pre-registering counters.
    pub const ALL: [&str; 9] = [
        INVALID_LABEL_NAME,
        MISSING_METRIC_NAME,
        INVALID_METRIC_NAME,
        DUPLICATE_LABEL,
        NON_FINITE_VALUE,
        INVALID_TIMESTAMP,
        DELTA_TEMPORALITY,
        INVALID_SPAN,
        INVALID_DATA,
    ];
}

/// Bit pattern of the Prometheus staleness marker (a NaN).
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The Prometheus staleness marker as a value.
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// True when `v` is the staleness marker (bit-exact).
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// Resource attributes promoted to labels on every metric series by default.
pub const DEFAULT_PROMOTED_RESOURCE_ATTRIBUTES: [&str; 14] = [
    "service.namespace",
    "host.name",
    "k8s.namespace.name",
    "k8s.pod.name",
    "k8s.container.name",
    "k8s.node.name",
    "k8s.deployment.name",
    "k8s.daemonset.name",
    "k8s.statefulset.name",
    "container.id",
    "container.name",
    "container.image.name",
    "cloud.region",
    "deployment.environment",
];

/// Resource attributes that become log stream labels (Loki's default OTLP index
/// labels plus `host.name`, which tells apart host-level log files of different nodes).
pub const LOG_STREAM_RESOURCE_ATTRIBUTES: [&str; 18] = [
    "service.name",
    "service.namespace",
    "service.instance.id",
    "deployment.environment",
    "deployment.environment.name",
    "cloud.region",
    "cloud.availability_zone",
    "host.name",
    "k8s.cluster.name",
    "k8s.namespace.name",
    "k8s.pod.name",
    "k8s.container.name",
    "container.name",
    "k8s.replicaset.name",
    "k8s.deployment.name",
    "k8s.statefulset.name",
    "k8s.daemonset.name",
    "k8s.cronjob.name",
];

/// How to translate metrics.
#[derive(Clone, Debug)]
pub struct TranslateOptions {
    /// What to do with NaN/±Inf sample values (the Prometheus stale marker, NaN with
    /// bits 0x7ff0000000000002, is always accepted).
    pub non_finite: NonFinitePolicy,
    /// Resource attributes copied onto every metric series as labels (sanitized
    /// names); a data point attribute of the same name wins.
    pub promote_resource_attributes: Vec<String>,
}

impl Default for TranslateOptions {
    fn default() -> Self {
        Self {
            non_finite: NonFinitePolicy::Reject,
            promote_resource_attributes: DEFAULT_PROMOTED_RESOURCE_ATTRIBUTES
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }
}

/// What to do with NaN and ±Inf sample values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NonFinitePolicy {
    /// Drop the sample with reason `non_finite_value`.
    Reject,
    /// Store it.
    Accept,
}

impl NonFinitePolicy {
    /// Whether a sample with value `v` is stored.
    pub fn allows(self, v: f64) -> bool {
        v.is_finite() || is_stale_nan(v) || self == NonFinitePolicy::Accept
    }
}

/// Items that could not be translated, by reason. `reason` is the label value of
/// `sightline_collector_rejected_total{reason}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Dropped {
    pub reason: &'static str,
    pub count: u64,
    /// The first example, human readable.
    pub message: String,
}

/// The result of translating one request.
#[derive(Clone, Debug)]
pub struct Translated {
    pub batch: WriteBatch,
    /// Aggregated: one entry per reason, in order of first occurrence.
    pub dropped: Vec<Dropped>,
}

impl Translated {
    /// Total number of dropped items.
    pub fn dropped_count(&self) -> u64 {
        self.dropped.iter().map(|d| d.count).sum()
    }

    /// All drop messages in one line, e.g. for an error response:
    /// `"invalid_label_name (2): invalid label name ...; non_finite_value (1): ..."`.
    pub fn dropped_summary(&self) -> String {
        self.dropped
            .iter()
            .map(|d| format!("{} ({}): {}", d.reason, d.count, d.message))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Translates OTLP metrics into Prometheus series (see [`metrics`]).
pub fn otlp_metrics(req: ExportMetricsServiceRequest, opts: &TranslateOptions) -> Translated {
    metrics::translate(req, opts)
}

/// Translates OTLP logs into log records.
pub fn otlp_logs(req: ExportLogsServiceRequest) -> Translated {
    logs::translate(req)
}

/// Translates OTLP traces into span records.
pub fn otlp_traces(req: ExportTraceServiceRequest) -> Translated {
    traces::translate(req)
}

/// Validates a Prometheus remote-write 1.0 request and turns it into series.
pub fn remote_write(req: WriteRequest, opts: &TranslateOptions) -> Translated {
    remote_write::translate(req, opts)
}

/// Loki-style stream labels for a log record's resource (used by the logs query
/// API): the [`LOG_STREAM_RESOURCE_ATTRIBUTES`] present, names sanitized
/// (`service.name` → `service_name`, `k8s.pod.name` → `k8s_pod_name`, ...). Like
/// Loki, `service_name` is `unknown_service` when the resource has no `service.name`.
pub fn log_stream_labels(resource: &sightline_store::Attributes) -> Labels {
    let mut pairs = Vec::new();
    for key in LOG_STREAM_RESOURCE_ATTRIBUTES {
        // the last occurrence wins, as in a map
        if let Some((_, v)) = resource.iter().rev().find(|(k, _)| k == key) {
            if let Some(name) = names::sanitize_label_name(key) {
                pairs.push(Label {
                    name,
                    value: attributes::json_to_label(v),
                });
            }
        }
    }
    if !pairs
        .iter()
        .any(|l| l.name == "service_name" && !l.value.is_empty())
    {
        pairs.retain(|l| l.name != "service_name");
        pairs.push(Label {
            name: "service_name".into(),
            value: "unknown_service".into(),
        });
    }
    Labels::new(pairs)
}

/// Collects drops by reason, keeping the first message of each.
#[derive(Default)]
pub(crate) struct DropLog {
    entries: Vec<Dropped>,
}

impl DropLog {
    pub(crate) fn add(
        &mut self,
        reason: &'static str,
        count: u64,
        message: impl FnOnce() -> String,
    ) {
        if count == 0 {
            return;
        }
        match self.entries.iter_mut().find(|d| d.reason == reason) {
            Some(d) => d.count += count,
            None => self.entries.push(Dropped {
                reason,
                count,
                message: message(),
            }),
        }
    }

    pub(crate) fn into_vec(self) -> Vec<Dropped> {
        self.entries
    }
}

/// Series being built: samples of the same label set are merged into one series,
/// sorted by time; of two samples with the same timestamp the later one wins.
#[derive(Default)]
pub(crate) struct SeriesSet {
    index: HashMap<Labels, usize>,
    series: Vec<Series>,
}

impl SeriesSet {
    pub(crate) fn push(&mut self, labels: Labels, sample: Sample) {
        match self.index.get(&labels) {
            Some(&i) => self.series[i].samples.push(sample),
            None => {
                self.index.insert(labels.clone(), self.series.len());
                self.series.push(Series {
                    labels,
                    samples: vec![sample],
                });
            }
        }
    }

    /// Adds several samples of one series (hashes the labels once).
    pub(crate) fn extend(&mut self, labels: Labels, samples: Vec<Sample>) {
        if samples.is_empty() {
            return;
        }
        match self.index.get(&labels) {
            Some(&i) => self.series[i].samples.extend(samples),
            None => {
                self.index.insert(labels.clone(), self.series.len());
                self.series.push(Series { labels, samples });
            }
        }
    }

    pub(crate) fn finish(self) -> Vec<Series> {
        let mut series = self.series;
        for s in &mut series {
            if s.samples
                .windows(2)
                .any(|w| w[0].timestamp_ms >= w[1].timestamp_ms)
            {
                s.samples.sort_by_key(|x| x.timestamp_ms); // stable: input order among equals
                let mut out: Vec<Sample> = Vec::with_capacity(s.samples.len());
                for x in s.samples.drain(..) {
                    match out.last_mut() {
                        Some(last) if last.timestamp_ms == x.timestamp_ms => *last = x,
                        _ => out.push(x),
                    }
                }
                s.samples = out;
            }
        }
        series
    }
}

/// Renders a label set like Prometheus does in messages: `{__name__="up", job="x"}`,
/// cut at about 200 characters.
pub(crate) fn describe_labels<'a>(labels: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::from("{");
    for (i, (n, v)) in labels.into_iter().enumerate() {
        if out.len() > 200 {
            out.push_str(", ...");
            break;
        }
        if i > 0 {
            out.push_str(", ");
        }
        let v = match v.char_indices().nth(100) {
            Some((cut, _)) => format!("{}...", &v[..cut]),
            None => v.to_string(),
        };
        out.push_str(&format!("{n}={v:?}"));
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stale_marker_is_accepted_by_every_policy() {
        let stale = stale_nan();
        assert!(stale.is_nan());
        assert!(NonFinitePolicy::Reject.allows(stale));
        assert!(!NonFinitePolicy::Reject.allows(f64::NAN));
        assert!(!NonFinitePolicy::Reject.allows(f64::INFINITY));
        assert!(!NonFinitePolicy::Reject.allows(f64::NEG_INFINITY));
        assert!(NonFinitePolicy::Reject.allows(1.5));
        assert!(NonFinitePolicy::Accept.allows(f64::NAN));
        assert!(NonFinitePolicy::Accept.allows(f64::NEG_INFINITY));
    }

    #[test]
    fn policy_deserializes_from_snake_case() {
        let p: NonFinitePolicy = serde_json::from_str("\"accept\"").unwrap();
        assert_eq!(p, NonFinitePolicy::Accept);
        let p: NonFinitePolicy = serde_json::from_str("\"reject\"").unwrap();
        assert_eq!(p, NonFinitePolicy::Reject);
        assert!(serde_json::from_str::<NonFinitePolicy>("\"drop\"").is_err());
    }

    #[test]
    fn default_options() {
        let o = TranslateOptions::default();
        assert_eq!(o.non_finite, NonFinitePolicy::Reject);
        assert_eq!(o.promote_resource_attributes.len(), 14);
        assert!(o
            .promote_resource_attributes
            .iter()
            .any(|a| a == "k8s.pod.name"));
    }

    #[test]
    fn drop_log_aggregates_by_reason_keeping_first_message() {
        let mut d = DropLog::default();
        d.add(reason::INVALID_DATA, 2, || "first".into());
        d.add(reason::NON_FINITE_VALUE, 1, || "nan".into());
        d.add(reason::INVALID_DATA, 3, || panic!("message built twice"));
        d.add(reason::INVALID_SPAN, 0, || "nothing".into());
        let v = d.into_vec();
        assert_eq!(v.len(), 2);
        assert_eq!(
            v[0],
            Dropped {
                reason: "invalid_data",
                count: 5,
                message: "first".into()
            }
        );
        assert_eq!(v[1].reason, "non_finite_value");
        let t = Translated {
            batch: WriteBatch::Metrics(vec![]),
            dropped: v,
        };
        assert_eq!(t.dropped_count(), 6);
        assert_eq!(
            t.dropped_summary(),
            "invalid_data (5): first; non_finite_value (1): nan"
        );
    }

    #[test]
    fn series_set_merges_sorts_and_dedups() {
        let mut s = SeriesSet::default();
        let a = Labels::from_pairs([("__name__", "a")]);
        let b = Labels::from_pairs([("__name__", "b")]);
        s.push(
            a.clone(),
            Sample {
                timestamp_ms: 20,
                value: 2.0,
            },
        );
        s.push(
            b.clone(),
            Sample {
                timestamp_ms: 5,
                value: 9.0,
            },
        );
        s.push(
            a.clone(),
            Sample {
                timestamp_ms: 10,
                value: 1.0,
            },
        );
        s.push(
            a.clone(),
            Sample {
                timestamp_ms: 20,
                value: 3.0,
            },
        );
        let out = s.finish();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].labels, a);
        assert_eq!(
            out[0].samples,
            vec![
                Sample {
                    timestamp_ms: 10,
                    value: 1.0
                },
                Sample {
                    timestamp_ms: 20,
                    value: 3.0
                }
            ]
        );
        assert_eq!(out[1].labels, b);
    }

    #[test]
    fn log_stream_labels_from_resource() {
        let res = vec![
            ("service.name".to_string(), json!("checkout")),
            ("k8s.pod.name".to_string(), json!("checkout-7d9f")),
            ("k8s.namespace.name".to_string(), json!("shop")),
            ("process.pid".to_string(), json!(42)),
            ("host.name".to_string(), json!("node-1")),
        ];
        let l = log_stream_labels(&res);
        let pairs: Vec<_> = l
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect();
        assert_eq!(
            pairs,
            vec![
                ("host_name", "node-1"),
                ("k8s_namespace_name", "shop"),
                ("k8s_pod_name", "checkout-7d9f"),
                ("service_name", "checkout"),
            ]
        );
        let l = log_stream_labels(&vec![("k8s.pod.name".to_string(), json!("p"))]);
        assert_eq!(l.get("service_name"), Some("unknown_service"));
        assert_eq!(l.get("k8s_pod_name"), Some("p"));
        let l = log_stream_labels(&vec![]);
        assert_eq!(l.len(), 1);
    }

    #[test]
    fn describe_labels_is_bounded() {
        assert_eq!(
            describe_labels([("__name__", "up"), ("job", "a\"b")]),
            r#"{__name__="up", job="a\"b"}"#
        );
        let long = "x".repeat(500);
        let many: Vec<(&str, &str)> = (0..10).map(|_| ("l", long.as_str())).collect();
        assert!(describe_labels(many).len() < 800);
    }
}
