//! OTLP metrics → Prometheus series, per the OpenTelemetry "Prometheus and
//! OpenMetrics Compatibility" specification and Prometheus' OTLP receiver.
//!
//! For every resource, scope, metric and data point:
//! - the series name comes from [`names::otlp_metric_name`] (sanitized, unit suffix,
//!   `_total` for monotonic sums, `_ratio` for unit-`1` gauges);
//! - labels are, in increasing precedence: data point attributes (sanitized; values of
//!   attributes that sanitize to the same name are joined with `;` in the order of
//!   the original keys), promoted resource attributes (only where the point has no
//!   such label), `otel_scope_name`/`otel_scope_version`, `job`
//!   (`service.namespace/service.name`) and `instance` (`service.instance.id`), then
//!   `le`/`quantile` and `__name__`;
//! - gauges and non-monotonic sums become gauges, monotonic sums counters; histograms
//!   `_bucket{le}` (cumulative, `+Inf` = count), `_sum` (when set), `_count`;
//!   exponential histograms the same with boundaries from [`exponential`]; summaries
//!   `{quantile}` series, `_sum`, `_count`;
//! - sums and histograms must be cumulative: delta points cannot be accumulated
//!   without state across requests, so they are dropped (`delta_temporality`), as
//!   Prometheus does by default; unspecified temporality is `invalid_data`;
//! - a point flagged NO_RECORDED_VALUE becomes the staleness marker in each series;
//! - timestamps are truncated from ns to ms; a zero timestamp is `invalid_timestamp`;
//! - exemplars and `start_time_unix_nano` are ignored (no `_created` series).
//!
//! After each resource, one `target_info` gauge (value 1) carries the resource's
//! non-identifying attributes with its `job`/`instance`, at the latest sample
//! timestamp of that resource — only when the resource has such attributes and a
//! `job` or `instance`, as in Prometheus.

use std::collections::BTreeMap;

use sightline_proto::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use sightline_proto::otlp::common::v1::KeyValue;
use sightline_proto::otlp::metrics::v1::{
    metric::Data, number_data_point, AggregationTemporality, DataPointFlags,
    ExponentialHistogramDataPoint, HistogramDataPoint, NumberDataPoint, SummaryDataPoint,
};
use sightline_store::METRIC_NAME;

use super::attributes::any_value_to_label;
use super::exponential::{classic_buckets, MAX_SCALE, MIN_SCALE};
use super::names::{self, format_float, otlp_metric_name, MetricKind};
use super::{
    describe_labels, reason, stale_nan, DropLog, Label, Labels, Sample, SeriesSet,
    TranslateOptions, Translated, WriteBatch,
};

const NO_RECORDED_VALUE: u32 = DataPointFlags::NoRecordedValueMask as u32;
const SERVICE_NAME: &str = "service.name";
const SERVICE_NAMESPACE: &str = "service.namespace";
const SERVICE_INSTANCE_ID: &str = "service.instance.id";

pub(super) fn translate(req: ExportMetricsServiceRequest, opts: &TranslateOptions) -> Translated {
    let mut t = Translator {
        opts,
        out: SeriesSet::default(),
        drops: DropLog::default(),
        latest: None,
    };
    for rm in req.resource_metrics {
        let attrs = rm.resource.map(|r| r.attributes).unwrap_or_default();
        let resource = ResourceLabels::new(&attrs, opts);
        t.latest = None;
        for sm in rm.scope_metrics {
            let scope = sm.scope.unwrap_or_default();
            let ctx = Context {
                resource: &resource,
                scope_name: &scope.name,
                scope_version: &scope.version,
            };
            for metric in sm.metrics {
                t.metric(&ctx, metric.name, metric.unit, metric.data);
            }
        }
        if let (Some(ts), Some(labels)) = (t.latest, resource.target_info()) {
            t.out.push(
                labels,
                Sample {
                    timestamp_ms: ts,
                    value: 1.0,
                },
            );
        }
    }
    Translated {
        batch: WriteBatch::Metrics(t.out.finish()),
        dropped: t.drops.into_vec(),
    }
}

/// Labels derived once per resource.
struct ResourceLabels {
    job: Option<String>,
    instance: Option<String>,
    promoted: Vec<(String, String)>,
    /// Non-identifying attributes, sanitized and merged.
    info: BTreeMap<String, String>,
}

impl ResourceLabels {
    fn new(attrs: &[KeyValue], opts: &TranslateOptions) -> Self {
        // the last occurrence of a key wins, as in a map
        let get = |key: &str| {
            attrs
                .iter()
                .rev()
                .find(|kv| kv.key == key)
                .map(|kv| any_value_to_label(kv.value.as_ref()))
        };
        let namespace = get(SERVICE_NAMESPACE).filter(|s| !s.is_empty());
        let job = get(SERVICE_NAME).map(|name| match &namespace {
            Some(ns) => format!("{ns}/{name}"),
            None => name,
        });
        let instance = get(SERVICE_INSTANCE_ID);
        let promoted = opts
            .promote_resource_attributes
            .iter()
            .filter_map(|key| Some((names::sanitize_label_name(key)?, get(key)?)))
            .filter(|(_, v)| !v.is_empty())
            .collect();
        let info = merge_attributes(attrs.iter().filter(|kv| {
            ![SERVICE_NAME, SERVICE_NAMESPACE, SERVICE_INSTANCE_ID].contains(&kv.key.as_str())
        }));
        Self {
            job,
            instance,
            promoted,
            info,
        }
    }

    fn target_info(&self) -> Option<Labels> {
        if self.info.is_empty() || (self.job.is_none() && self.instance.is_none()) {
            return None;
        }
        let mut map = self.info.clone();
        if let Some(job) = &self.job {
            map.insert("job".into(), job.clone());
        }
        if let Some(instance) = &self.instance {
            map.insert("instance".into(), instance.clone());
        }
        map.insert(METRIC_NAME.into(), "target_info".into());
        Some(to_labels(map))
    }
}

struct Context<'a> {
    resource: &'a ResourceLabels,
    scope_name: &'a str,
    scope_version: &'a str,
}

/// Attribute keys sanitized to label names; values of keys that sanitize to the same
/// name are joined with `;` in the lexicographic order of the original keys.
fn merge_attributes<'a>(attrs: impl Iterator<Item = &'a KeyValue>) -> BTreeMap<String, String> {
    let mut sorted: Vec<(&str, String)> = attrs
        .map(|kv| (kv.key.as_str(), any_value_to_label(kv.value.as_ref())))
        .collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    for (key, value) in sorted {
        let Some(name) = names::sanitize_label_name(key) else {
            continue;
        };
        if value.is_empty() {
            continue;
        }
        match map.get_mut(&name) {
            Some(existing) => {
                existing.push(';');
                existing.push_str(&value);
            }
            None => {
                map.insert(name, value);
            }
        }
    }
    map
}

fn to_labels(map: BTreeMap<String, String>) -> Labels {
    Labels::new(
        map.into_iter()
            .map(|(name, value)| Label { name, value })
            .collect(),
    )
}

fn ts_ms(ns: u64) -> Option<i64> {
    // u64::MAX / 1e6 < i64::MAX, so the cast cannot wrap
    (ns != 0).then_some((ns / 1_000_000) as i64)
}

struct Translator<'o> {
    opts: &'o TranslateOptions,
    out: SeriesSet,
    drops: DropLog,
    /// Latest sample timestamp of the current resource.
    latest: Option<i64>,
}

impl Translator<'_> {
    fn metric(&mut self, ctx: &Context<'_>, name: String, unit: String, data: Option<Data>) {
        let points = data.as_ref().map_or(0, data_point_count);
        if name.is_empty() {
            let scope = ctx.scope_name;
            self.drops.add(reason::MISSING_METRIC_NAME, points, || {
                format!("metric without a name in scope {scope:?}")
            });
            return;
        }
        let Some(data) = data else {
            self.drops.add(reason::INVALID_DATA, 1, || {
                format!("metric {name:?} has no data")
            });
            return;
        };
        let (kind, temporality) = match &data {
            Data::Gauge(_) => (MetricKind::Gauge, None),
            Data::Sum(s) if s.is_monotonic => (
                MetricKind::MonotonicCounter,
                Some(s.aggregation_temporality),
            ),
            Data::Sum(s) => (
                MetricKind::NonMonotonicCounter,
                Some(s.aggregation_temporality),
            ),
            Data::Histogram(h) => (MetricKind::Histogram, Some(h.aggregation_temporality)),
            Data::ExponentialHistogram(h) => {
                (MetricKind::Histogram, Some(h.aggregation_temporality))
            }
            Data::Summary(_) => (MetricKind::Summary, None),
        };
        match temporality {
            Some(t) if t == AggregationTemporality::Delta as i32 => {
                self.drops.add(reason::DELTA_TEMPORALITY, points, || {
                    format!(
                        "metric {name:?} has delta temporality; only cumulative sums and histograms \
                         are accepted (configure the SDK for cumulative temporality)"
                    )
                });
                return;
            }
            Some(t) if t != AggregationTemporality::Cumulative as i32 => {
                self.drops.add(reason::INVALID_DATA, points, || {
                    format!("metric {name:?} has aggregation temporality {t}, not cumulative")
                });
                return;
            }
            _ => {}
        }
        let Some(prom) = otlp_metric_name(&name, &unit, kind) else {
            self.drops.add(reason::INVALID_METRIC_NAME, points, || {
                format!("metric name {name:?} has no character valid in a Prometheus name")
            });
            return;
        };
        match data {
            Data::Gauge(g) => g
                .data_points
                .into_iter()
                .for_each(|p| self.number_point(ctx, &prom, p)),
            Data::Sum(s) => s
                .data_points
                .into_iter()
                .for_each(|p| self.number_point(ctx, &prom, p)),
            Data::Histogram(h) => h
                .data_points
                .into_iter()
                .for_each(|p| self.histogram_point(ctx, &prom, p)),
            Data::ExponentialHistogram(h) => h
                .data_points
                .into_iter()
                .for_each(|p| self.exponential_point(ctx, &prom, p)),
            Data::Summary(s) => s
                .data_points
                .into_iter()
                .for_each(|p| self.summary_point(ctx, &prom, p)),
        }
    }

    /// Labels of a data point without `__name__` and `le`/`quantile`.
    fn base_labels(&self, ctx: &Context<'_>, attrs: &[KeyValue]) -> BTreeMap<String, String> {
        let mut map = merge_attributes(attrs.iter());
        for (name, value) in &ctx.resource.promoted {
            map.entry(name.clone()).or_insert_with(|| value.clone());
        }
        if !ctx.scope_name.is_empty() {
            map.insert("otel_scope_name".into(), ctx.scope_name.to_string());
        }
        if !ctx.scope_version.is_empty() {
            map.insert("otel_scope_version".into(), ctx.scope_version.to_string());
        }
        if let Some(job) = &ctx.resource.job {
            map.insert("job".into(), job.clone());
        }
        if let Some(instance) = &ctx.resource.instance {
            map.insert("instance".into(), instance.clone());
        }
        map
    }

    /// Stores one sample unless its value is refused by the non-finite policy.
    fn emit(
        &mut self,
        base: &BTreeMap<String, String>,
        name: &str,
        extra: Option<(&str, String)>,
        ts: i64,
        value: f64,
    ) {
        let mut map = base.clone();
        if let Some((n, v)) = extra {
            map.insert(n.to_string(), v);
        }
        map.insert(METRIC_NAME.into(), name.to_string());
        let labels = to_labels(map);
        if !self.opts.non_finite.allows(value) {
            self.drops.add(reason::NON_FINITE_VALUE, 1, || {
                format!(
                    "non-finite value {} in series {}",
                    format_float(value),
                    describe_labels(labels.iter().map(|l| (l.name.as_str(), l.value.as_str())))
                )
            });
            return;
        }
        self.out.push(
            labels,
            Sample {
                timestamp_ms: ts,
                value,
            },
        );
        self.latest = Some(self.latest.map_or(ts, |l| l.max(ts)));
    }

    fn timestamp(&mut self, metric: &str, time_unix_nano: u64) -> Option<i64> {
        let ts = ts_ms(time_unix_nano);
        if ts.is_none() {
            self.drops.add(reason::INVALID_TIMESTAMP, 1, || {
                format!("data point of metric {metric:?} has timestamp 0")
            });
        }
        ts
    }

    fn invalid(&mut self, metric: &str, what: impl FnOnce() -> String) {
        self.drops.add(reason::INVALID_DATA, 1, || {
            format!("data point of metric {metric:?}: {}", what())
        });
    }

    fn number_point(&mut self, ctx: &Context<'_>, name: &str, p: NumberDataPoint) {
        let Some(ts) = self.timestamp(name, p.time_unix_nano) else {
            return;
        };
        let value = if p.flags & NO_RECORDED_VALUE != 0 {
            stale_nan()
        } else {
            match p.value {
                Some(number_data_point::Value::AsDouble(v)) => v,
                Some(number_data_point::Value::AsInt(v)) => v as f64,
                None => return self.invalid(name, || "no value".into()),
            }
        };
        let base = self.base_labels(ctx, &p.attributes);
        self.emit(&base, name, None, ts, value);
    }

    fn histogram_point(&mut self, ctx: &Context<'_>, name: &str, p: HistogramDataPoint) {
        let Some(ts) = self.timestamp(name, p.time_unix_nano) else {
            return;
        };
        let stale = p.flags & NO_RECORDED_VALUE != 0;
        let bounds = &p.explicit_bounds;
        let counts = &p.bucket_counts;
        if !stale {
            if bounds.iter().any(|b| b.is_nan()) || bounds.windows(2).any(|w| w[0] >= w[1]) {
                return self.invalid(name, || {
                    format!("explicit bounds {bounds:?} are not strictly increasing")
                });
            }
            if !counts.is_empty() && counts.len() != bounds.len() + 1 {
                return self.invalid(name, || {
                    format!(
                        "{} bucket counts for {} explicit bounds",
                        counts.len(),
                        bounds.len()
                    )
                });
            }
            let total = counts.iter().fold(0u64, |a, c| a.saturating_add(*c));
            if total > p.count {
                return self.invalid(name, || {
                    format!("bucket counts add up to {total}, above count {}", p.count)
                });
            }
        }
        let v = |x: f64| if stale { stale_nan() } else { x };
        let base = self.base_labels(ctx, &p.attributes);
        if let Some(sum) = p.sum {
            self.emit(&base, &format!("{name}_sum"), None, ts, v(sum));
        }
        self.emit(&base, &format!("{name}_count"), None, ts, v(p.count as f64));
        let bucket = format!("{name}_bucket");
        if stale || !counts.is_empty() {
            let mut cumulative = 0u64;
            for (i, bound) in bounds.iter().enumerate() {
                cumulative = cumulative.saturating_add(counts.get(i).copied().unwrap_or(0));
                self.emit(
                    &base,
                    &bucket,
                    Some(("le", format_float(*bound))),
                    ts,
                    v(cumulative as f64),
                );
            }
        }
        self.emit(
            &base,
            &bucket,
            Some(("le", "+Inf".into())),
            ts,
            v(p.count as f64),
        );
    }

    fn exponential_point(
        &mut self,
        ctx: &Context<'_>,
        name: &str,
        p: ExponentialHistogramDataPoint,
    ) {
        let Some(ts) = self.timestamp(name, p.time_unix_nano) else {
            return;
        };
        let stale = p.flags & NO_RECORDED_VALUE != 0;
        if !(MIN_SCALE..=MAX_SCALE).contains(&p.scale) {
            return self.invalid(name, || {
                format!("scale {} outside [{MIN_SCALE}, {MAX_SCALE}]", p.scale)
            });
        }
        if p.zero_threshold.is_nan() || p.zero_threshold < 0.0 {
            return self.invalid(name, || {
                format!("zero threshold {} is negative or NaN", p.zero_threshold)
            });
        }
        let (buckets, total) = classic_buckets(
            p.scale,
            p.zero_threshold,
            p.zero_count,
            p.positive.as_ref(),
            p.negative.as_ref(),
        );
        if !stale && total > p.count {
            return self.invalid(name, || {
                format!("bucket counts add up to {total}, above count {}", p.count)
            });
        }
        let v = |x: f64| if stale { stale_nan() } else { x };
        let base = self.base_labels(ctx, &p.attributes);
        if let Some(sum) = p.sum {
            self.emit(&base, &format!("{name}_sum"), None, ts, v(sum));
        }
        self.emit(&base, &format!("{name}_count"), None, ts, v(p.count as f64));
        let bucket = format!("{name}_bucket");
        for (le, cumulative) in buckets {
            self.emit(
                &base,
                &bucket,
                Some(("le", format_float(le))),
                ts,
                v(cumulative as f64),
            );
        }
        self.emit(
            &base,
            &bucket,
            Some(("le", "+Inf".into())),
            ts,
            v(p.count as f64),
        );
    }

    fn summary_point(&mut self, ctx: &Context<'_>, name: &str, p: SummaryDataPoint) {
        let Some(ts) = self.timestamp(name, p.time_unix_nano) else {
            return;
        };
        let stale = p.flags & NO_RECORDED_VALUE != 0;
        if let Some(q) = p
            .quantile_values
            .iter()
            .find(|q| !(0.0..=1.0).contains(&q.quantile))
        {
            let q = q.quantile;
            return self.invalid(name, || format!("quantile {q} outside [0, 1]"));
        }
        let v = |x: f64| if stale { stale_nan() } else { x };
        let base = self.base_labels(ctx, &p.attributes);
        for q in &p.quantile_values {
            self.emit(
                &base,
                name,
                Some(("quantile", format_float(q.quantile))),
                ts,
                v(q.value),
            );
        }
        self.emit(&base, &format!("{name}_sum"), None, ts, v(p.sum));
        self.emit(&base, &format!("{name}_count"), None, ts, v(p.count as f64));
    }
}

fn data_point_count(data: &Data) -> u64 {
    (match data {
        Data::Gauge(g) => g.data_points.len(),
        Data::Sum(s) => s.data_points.len(),
        Data::Histogram(h) => h.data_points.len(),
        Data::ExponentialHistogram(h) => h.data_points.len(),
        Data::Summary(s) => s.data_points.len(),
    }) as u64
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
