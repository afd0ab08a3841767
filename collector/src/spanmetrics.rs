//! Span metrics: request rate, errors and duration (RED) derived from ingested spans,
//! the way Tempo's metrics-generator and the OpenTelemetry `spanmetrics` connector
//! derive them.
//!
//! Data flow: [`crate::ingest`] turns a span batch into [`Observation`]s with
//! [`observations`] before writing it and, once the store acknowledged
//! the batch, adds them with [`SpanMetrics::record`] (a batch the sender must retry is
//! never counted). Each observation updates one cumulative counter and one latency
//! histogram per `(tenant, service, span_name, span_kind, status_code)`. The
//! self-monitoring task ([`crate::self_monitoring`]) calls [`SpanMetrics::collect`]
//! every interval and writes the current values as ordinary samples into the store:
//!
//! - `traces_spanmetrics_calls_total{service,span_name,span_kind,status_code}`
//! - `traces_spanmetrics_latency_bucket{...,le}`, `_sum` (seconds), `_count`
//!
//! Label values follow Tempo (`span_kind="SPAN_KIND_SERVER"`,
//! `status_code="STATUS_CODE_ERROR"`), so dashboards written for Tempo work unchanged.
//! Cardinality is bounded: each tenant keeps at most `max_series` label sets; spans of
//! further label sets are folded into one overflow set labelled
//! `otel_metric_overflow="true"` and counted in `sightline_spanmetrics_overflow_total`.
//! A label set that saw no span for [`IDLE_EXPIRY_MS`] is dropped.

use std::collections::HashMap;

use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use sightline_store::{Label, Labels, Sample, Series, SpanRecord, WriteBatch, METRIC_NAME};

/// Histogram bucket upper bounds in seconds (Tempo's defaults: 2 ms doubling to 16 s).
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048, 4.096, 8.192,
    16.384,
];

/// A label set without spans for this long is forgotten (its counters restart at 0
/// if it comes back, which `rate()` treats as a counter reset).
pub const IDLE_EXPIRY_MS: i64 = 15 * 60 * 1000;

/// Default label sets per tenant.
pub const DEFAULT_MAX_SERIES: usize = 10_000;

/// Label values of one span metrics series (without `le`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Dimensions {
    pub service: String,
    pub span_name: String,
    pub span_kind: &'static str,
    pub status_code: &'static str,
}

/// One span, reduced to what span metrics need.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    pub dims: Dimensions,
    pub seconds: f64,
}

/// The observations of a span batch (empty for metrics and logs); apply them with
/// [`SpanMetrics::record`] once the batch is stored.
pub fn observations(batch: &WriteBatch) -> Vec<Observation> {
    match batch {
        WriteBatch::Spans(spans) => SpanMetrics::observe_batch(spans),
        _ => Vec::new(),
    }
}

/// Tempo's label value for an OTLP `SpanKind` number.
pub fn span_kind_label(kind: i32) -> &'static str {
    match kind {
        1 => "SPAN_KIND_INTERNAL",
        2 => "SPAN_KIND_SERVER",
        3 => "SPAN_KIND_CLIENT",
        4 => "SPAN_KIND_PRODUCER",
        5 => "SPAN_KIND_CONSUMER",
        _ => "SPAN_KIND_UNSPECIFIED",
    }
}

/// Tempo's label value for an OTLP `Status.code` number.
pub fn status_code_label(code: i32) -> &'static str {
    match code {
        1 => "STATUS_CODE_OK",
        2 => "STATUS_CODE_ERROR",
        _ => "STATUS_CODE_UNSET",
    }
}

/// The span's `service.name` resource attribute (`unknown_service` when absent, as
/// the OpenTelemetry SDKs default it).
fn service_name(span: &SpanRecord) -> String {
    span.resource
        .iter()
        .find(|(k, _)| k == "service.name")
        .and_then(|(_, v)| v.as_str())
        .filter(|s| !s.is_empty())
        .unwrap_or("unknown_service")
        .to_string()
}

/// Cumulative state of one label set.
#[derive(Clone, Debug)]
struct Aggregate {
    calls: u64,
    /// Per bucket (not cumulative); the last entry is `+Inf`.
    buckets: [u64; LATENCY_BUCKETS.len() + 1],
    sum: f64,
    last_seen_ms: i64,
}

impl Aggregate {
    fn new() -> Self {
        Aggregate {
            calls: 0,
            buckets: [0; LATENCY_BUCKETS.len() + 1],
            sum: 0.0,
            last_seen_ms: 0,
        }
    }

    fn add(&mut self, seconds: f64, now_ms: i64) {
        self.calls += 1;
        let i = LATENCY_BUCKETS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[i] += 1;
        self.sum += seconds;
        self.last_seen_ms = now_ms;
    }
}

#[derive(Default)]
struct TenantState {
    series: HashMap<Dimensions, Aggregate>,
    overflow: Option<Aggregate>,
}

/// Span metrics of every tenant. Shared by the ingest path and the writer task.
pub struct SpanMetrics {
    max_series: usize,
    tenants: Mutex<HashMap<String, TenantState>>,
    /// `sightline_spanmetrics_spans_total`: spans counted.
    spans_total: Counter,
    /// `sightline_spanmetrics_overflow_total`: spans folded into the overflow series.
    overflow_total: Counter,
}

impl SpanMetrics {
    /// Span metrics keeping at most `max_series` label sets per tenant, counting into
    /// the given self-metrics counters.
    pub fn new(max_series: usize, spans_total: Counter, overflow_total: Counter) -> Self {
        SpanMetrics {
            max_series: max_series.max(1),
            tenants: Mutex::new(HashMap::new()),
            spans_total,
            overflow_total,
        }
    }

    /// The observations for every span of a batch (no state changes).
    pub fn observe_batch(spans: &[SpanRecord]) -> Vec<Observation> {
        spans
            .iter()
            .map(|s| Observation {
                dims: Dimensions {
                    service: service_name(s),
                    span_name: s.name.clone(),
                    span_kind: span_kind_label(s.kind),
                    status_code: status_code_label(s.status_code),
                },
                // a span ending before it starts has no meaningful duration: count it as 0
                seconds: s.end_time_ns.saturating_sub(s.start_time_ns).max(0) as f64 / 1e9,
            })
            .collect()
    }

    /// Adds acknowledged observations for `tenant`.
    pub fn record(&self, tenant: &str, observations: Vec<Observation>, now_ms: i64) {
        if observations.is_empty() {
            return;
        }
        self.spans_total.inc_by(observations.len() as u64);
        let mut tenants = self.tenants.lock();
        let state = tenants.entry(tenant.to_string()).or_default();
        let mut overflowed = 0;
        for o in observations {
            let len = state.series.len();
            match state.series.get_mut(&o.dims) {
                Some(a) => a.add(o.seconds, now_ms),
                None if len < self.max_series => {
                    let mut a = Aggregate::new();
                    a.add(o.seconds, now_ms);
                    state.series.insert(o.dims, a);
                }
                None => {
                    state
                        .overflow
                        .get_or_insert_with(Aggregate::new)
                        .add(o.seconds, now_ms);
                    overflowed += 1;
                }
            }
        }
        if overflowed > 0 {
            self.overflow_total.inc_by(overflowed);
        }
    }

    /// Spans counted so far.
    pub fn spans_total(&self) -> u64 {
        self.spans_total.get()
    }

    /// Spans folded into an overflow series so far.
    pub fn overflow_total(&self) -> u64 {
        self.overflow_total.get()
    }

    /// Label sets currently tracked, all tenants (overflow sets included).
    pub fn active_series(&self) -> usize {
        self.tenants
            .lock()
            .values()
            .map(|t| t.series.len() + usize::from(t.overflow.is_some()))
            .sum()
    }

    /// Current values of every tracked label set as samples at `now_ms`, per tenant;
    /// forgets label sets idle for longer than [`IDLE_EXPIRY_MS`].
    pub fn collect(&self, now_ms: i64) -> Vec<(String, Vec<Series>)> {
        let mut tenants = self.tenants.lock();
        let mut out = Vec::with_capacity(tenants.len());
        for (tenant, state) in tenants.iter_mut() {
            state
                .series
                .retain(|_, a| now_ms - a.last_seen_ms <= IDLE_EXPIRY_MS);
            if state
                .overflow
                .as_ref()
                .is_some_and(|a| now_ms - a.last_seen_ms > IDLE_EXPIRY_MS)
            {
                state.overflow = None;
            }
            let mut series = Vec::new();
            for (dims, agg) in &state.series {
                let base = vec![
                    label("service", &dims.service),
                    label("span_name", &dims.span_name),
                    label("span_kind", dims.span_kind),
                    label("status_code", dims.status_code),
                ];
                push_series(&mut series, &base, agg, now_ms);
            }
            if let Some(agg) = &state.overflow {
                push_series(
                    &mut series,
                    &[label("otel_metric_overflow", "true")],
                    agg,
                    now_ms,
                );
            }
            if !series.is_empty() {
                out.push((tenant.clone(), series));
            }
        }
        tenants.retain(|_, s| !s.series.is_empty() || s.overflow.is_some());
        out
    }
}

fn label(name: &str, value: &str) -> Label {
    Label {
        name: name.to_string(),
        value: value.to_string(),
    }
}

/// One sample of a series named `name` with `base` labels plus `extra`.
fn one(name: &str, base: &[Label], extra: Option<Label>, value: f64, now_ms: i64) -> Series {
    let mut labels = base.to_vec();
    labels.push(label(METRIC_NAME, name));
    labels.extend(extra);
    Series {
        labels: Labels::new(labels),
        samples: vec![Sample {
            timestamp_ms: now_ms,
            value,
        }],
    }
}

fn push_series(out: &mut Vec<Series>, base: &[Label], agg: &Aggregate, now_ms: i64) {
    out.push(one(
        "traces_spanmetrics_calls_total",
        base,
        None,
        agg.calls as f64,
        now_ms,
    ));
    let mut cumulative = 0;
    for (i, n) in agg.buckets.iter().enumerate() {
        cumulative += n;
        let le = LATENCY_BUCKETS
            .get(i)
            .map(|b| b.to_string())
            .unwrap_or_else(|| "+Inf".to_string());
        out.push(one(
            "traces_spanmetrics_latency_bucket",
            base,
            Some(label("le", &le)),
            cumulative as f64,
            now_ms,
        ));
    }
    out.push(one(
        "traces_spanmetrics_latency_sum",
        base,
        None,
        agg.sum,
        now_ms,
    ));
    out.push(one(
        "traces_spanmetrics_latency_count",
        base,
        None,
        agg.calls as f64,
        now_ms,
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn span(service: &str, name: &str, kind: i32, status: i32, ms: i64) -> SpanRecord {
        SpanRecord {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            parent_span_id: vec![],
            trace_state: String::new(),
            name: name.to_string(),
            kind,
            start_time_ns: 1_000_000_000,
            end_time_ns: 1_000_000_000 + ms * 1_000_000,
            attributes: vec![],
            events: json!([]),
            links: json!([]),
            status_code: status,
            status_message: String::new(),
            resource: vec![("service.name".to_string(), json!(service))],
            scope_name: String::new(),
            scope_version: String::new(),
        }
    }

    fn new(max: usize) -> SpanMetrics {
        SpanMetrics::new(max, Counter::default(), Counter::default())
    }

    fn value(series: &[Series], name: &str, pairs: &[(&str, &str)]) -> Option<f64> {
        series
            .iter()
            .find(|s| {
                s.labels.metric_name() == Some(name)
                    && pairs.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
            })
            .map(|s| s.samples[0].value)
    }

    #[test]
    fn counts_calls_errors_and_latency_buckets() {
        let m = new(100);
        let spans = vec![
            span("cart", "GET /cart", 2, 0, 3),
            span("cart", "GET /cart", 2, 0, 100),
            span("cart", "GET /cart", 2, 2, 5000),
            span("db", "SELECT", 3, 1, 1),
        ];
        m.record("t1", SpanMetrics::observe_batch(&spans), 10_000);
        let out = m.collect(20_000);
        assert_eq!(out.len(), 1);
        let (tenant, series) = &out[0];
        assert_eq!(tenant, "t1");
        let ok = [
            ("service", "cart"),
            ("span_name", "GET /cart"),
            ("span_kind", "SPAN_KIND_SERVER"),
            ("status_code", "STATUS_CODE_UNSET"),
        ];
        assert_eq!(
            value(series, "traces_spanmetrics_calls_total", &ok),
            Some(2.0)
        );
        let err = [("service", "cart"), ("status_code", "STATUS_CODE_ERROR")];
        assert_eq!(
            value(series, "traces_spanmetrics_calls_total", &err),
            Some(1.0)
        );
        let bucket = |le: &str| {
            let mut p = ok.to_vec();
            p.push(("le", le));
            value(series, "traces_spanmetrics_latency_bucket", &p)
        };
        assert_eq!(bucket("0.002"), Some(0.0));
        assert_eq!(bucket("0.004"), Some(1.0));
        assert_eq!(bucket("0.064"), Some(1.0));
        assert_eq!(bucket("0.128"), Some(2.0));
        assert_eq!(bucket("+Inf"), Some(2.0));
        let sum = value(series, "traces_spanmetrics_latency_sum", &ok).unwrap();
        assert!((sum - 0.103).abs() < 1e-9, "{sum}");
        assert_eq!(
            value(series, "traces_spanmetrics_latency_count", &ok),
            Some(2.0)
        );
        let db = [
            ("service", "db"),
            ("span_kind", "SPAN_KIND_CLIENT"),
            ("status_code", "STATUS_CODE_OK"),
        ];
        assert_eq!(
            value(series, "traces_spanmetrics_calls_total", &db),
            Some(1.0)
        );
        // every sample carries the collection time
        assert!(series.iter().all(|s| s.samples[0].timestamp_ms == 20_000));
        assert_eq!(m.spans_total(), 4);
        assert_eq!(m.overflow_total(), 0);
        // counters are cumulative across collections
        m.record("t1", SpanMetrics::observe_batch(&spans[..1]), 21_000);
        let out = m.collect(30_000);
        assert_eq!(
            value(&out[0].1, "traces_spanmetrics_calls_total", &ok),
            Some(3.0)
        );
    }

    #[test]
    fn cardinality_is_capped_with_an_overflow_series() {
        let m = new(2);
        let spans: Vec<SpanRecord> = (0..5)
            .map(|i| span("svc", &format!("op{i}"), 2, 0, 1))
            .collect();
        m.record("t", SpanMetrics::observe_batch(&spans), 0);
        assert_eq!(m.overflow_total(), 3);
        assert_eq!(m.active_series(), 3);
        let out = m.collect(1);
        let calls: Vec<&Series> = out[0]
            .1
            .iter()
            .filter(|s| s.labels.metric_name() == Some("traces_spanmetrics_calls_total"))
            .collect();
        assert_eq!(calls.len(), 3);
        assert_eq!(
            value(
                &out[0].1,
                "traces_spanmetrics_calls_total",
                &[("otel_metric_overflow", "true")]
            ),
            Some(3.0)
        );
        // another tenant has its own budget
        m.record("u", SpanMetrics::observe_batch(&spans[..2]), 0);
        assert_eq!(m.overflow_total(), 3);
    }

    #[test]
    fn idle_series_expire_and_defaults_apply() {
        let m = new(10);
        let mut s = span("", "x", 9, 7, 1);
        s.resource.clear();
        s.end_time_ns = s.start_time_ns - 5; // negative duration counts as 0
        m.record("t", SpanMetrics::observe_batch(&[s]), 0);
        let out = m.collect(1);
        let p = [
            ("service", "unknown_service"),
            ("span_kind", "SPAN_KIND_UNSPECIFIED"),
            ("status_code", "STATUS_CODE_UNSET"),
            ("le", "0.002"),
        ];
        assert_eq!(
            value(&out[0].1, "traces_spanmetrics_latency_bucket", &p),
            Some(1.0)
        );
        assert!(m.collect(IDLE_EXPIRY_MS + 1).is_empty());
        assert_eq!(m.active_series(), 0);
    }
}
