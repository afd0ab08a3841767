//! Building OTLP metric messages from readings.
//!
//! Collectors describe each metric once as a [`MetricSpec`] (name, unit, type — following
//! the OpenTelemetry hostmetrics receiver) and append data points to a [`MetricSet`],
//! which groups points of the same metric into one `Metric` message in first-seen order.
//! Sums are always cumulative; their `start_time_unix_nano` is given per point (boot
//! time for kernel counters, process start for the agent's own counters).

use std::collections::HashMap;

use sightline_proto::otlp::common::v1::{any_value, AnyValue, KeyValue};
use sightline_proto::otlp::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Gauge, Metric, NumberDataPoint, Sum,
};

/// OTLP point kind of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Last value, no start time.
    Gauge,
    /// Cumulative sum; `monotonic` sums become Prometheus counters (`_total`).
    Sum { monotonic: bool },
}

/// Static description of one metric.
#[derive(Debug, Clone, Copy)]
pub struct MetricSpec {
    pub name: &'static str,
    pub description: &'static str,
    /// UCUM unit as in the semantic conventions (`s`, `By`, `1`, `{packet}`).
    pub unit: &'static str,
    pub kind: Kind,
}

impl MetricSpec {
    pub const fn counter(
        name: &'static str,
        unit: &'static str,
        description: &'static str,
    ) -> Self {
        Self {
            name,
            description,
            unit,
            kind: Kind::Sum { monotonic: true },
        }
    }

    pub const fn updown(name: &'static str, unit: &'static str, description: &'static str) -> Self {
        Self {
            name,
            description,
            unit,
            kind: Kind::Sum { monotonic: false },
        }
    }

    pub const fn gauge(name: &'static str, unit: &'static str, description: &'static str) -> Self {
        Self {
            name,
            description,
            unit,
            kind: Kind::Gauge,
        }
    }
}

/// A point value: integers for counts and bytes, doubles for seconds and ratios.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Int(i64),
    Double(f64),
}

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Double(v)
    }
}

/// One string attribute as an OTLP `KeyValue`.
pub fn string_attr(key: &str, value: impl Into<String>) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

/// Metrics of one collection, all stamped with the same `time_unix_nano`.
#[derive(Debug)]
pub struct MetricSet {
    time_unix_nano: u64,
    metrics: Vec<Metric>,
    index: HashMap<&'static str, usize>,
    points: usize,
}

impl MetricSet {
    pub fn new(time_unix_nano: u64) -> Self {
        Self {
            time_unix_nano,
            metrics: Vec::new(),
            index: HashMap::new(),
            points: 0,
        }
    }

    /// Append one point. `start_unix_nano` is ignored for gauges.
    pub fn push(
        &mut self,
        spec: &MetricSpec,
        start_unix_nano: u64,
        attrs: &[(&str, &str)],
        value: impl Into<Value>,
    ) {
        let value = match value.into() {
            Value::Int(v) => number_data_point::Value::AsInt(v),
            Value::Double(v) => number_data_point::Value::AsDouble(v),
        };
        let point = NumberDataPoint {
            attributes: attrs.iter().map(|(k, v)| string_attr(k, *v)).collect(),
            start_time_unix_nano: match spec.kind {
                Kind::Gauge => 0,
                Kind::Sum { .. } => start_unix_nano,
            },
            time_unix_nano: self.time_unix_nano,
            value: Some(value),
            ..Default::default()
        };
        let idx = match self.index.get(spec.name) {
            Some(idx) => *idx,
            None => {
                self.metrics.push(empty_metric(spec));
                self.index.insert(spec.name, self.metrics.len() - 1);
                self.metrics.len() - 1
            }
        };
        if let Some(points) = self.metrics.get_mut(idx).and_then(points_mut) {
            points.push(point);
            self.points += 1;
        }
    }

    /// Number of data points pushed so far.
    pub fn point_count(&self) -> usize {
        self.points
    }

    pub fn metrics(&self) -> &[Metric] {
        &self.metrics
    }

    pub fn into_metrics(self) -> Vec<Metric> {
        self.metrics
    }
}

fn empty_metric(spec: &MetricSpec) -> Metric {
    let data = match spec.kind {
        Kind::Gauge => metric::Data::Gauge(Gauge {
            data_points: Vec::new(),
        }),
        Kind::Sum { monotonic } => metric::Data::Sum(Sum {
            data_points: Vec::new(),
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: monotonic,
        }),
    };
    Metric {
        name: spec.name.to_string(),
        description: spec.description.to_string(),
        unit: spec.unit.to_string(),
        data: Some(data),
        ..Default::default()
    }
}

/// The number data points of a gauge or sum metric.
pub fn points_mut(metric: &mut Metric) -> Option<&mut Vec<NumberDataPoint>> {
    match metric.data.as_mut()? {
        metric::Data::Gauge(g) => Some(&mut g.data_points),
        metric::Data::Sum(s) => Some(&mut s.data_points),
        _ => None,
    }
}

/// Number of data points of any kind in a metric.
pub fn point_count(metric: &Metric) -> usize {
    match &metric.data {
        Some(metric::Data::Gauge(g)) => g.data_points.len(),
        Some(metric::Data::Sum(s)) => s.data_points.len(),
        Some(metric::Data::Histogram(h)) => h.data_points.len(),
        Some(metric::Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(metric::Data::Summary(s)) => s.data_points.len(),
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPU: MetricSpec = MetricSpec::counter("system.cpu.time", "s", "CPU time");
    const LOAD: MetricSpec = MetricSpec::gauge("system.cpu.load_average.1m", "{thread}", "load");

    #[test]
    fn groups_points_by_metric_and_sets_start_only_on_sums() {
        let mut set = MetricSet::new(2_000);
        set.push(&CPU, 1_000, &[("cpu", "cpu0"), ("state", "user")], 1.5);
        set.push(&LOAD, 1_000, &[], 0.25);
        set.push(&CPU, 1_000, &[("cpu", "cpu0"), ("state", "idle")], 7.0);
        assert_eq!(set.point_count(), 3);
        let metrics = set.into_metrics();
        assert_eq!(metrics.len(), 2);
        assert_eq!(metrics[0].name, "system.cpu.time");
        assert_eq!(metrics[0].unit, "s");
        match &metrics[0].data {
            Some(metric::Data::Sum(s)) => {
                assert!(s.is_monotonic);
                assert_eq!(
                    s.aggregation_temporality,
                    AggregationTemporality::Cumulative as i32
                );
                assert_eq!(s.data_points.len(), 2);
                assert_eq!(s.data_points[1].start_time_unix_nano, 1_000);
                assert_eq!(s.data_points[1].time_unix_nano, 2_000);
                assert_eq!(s.data_points[1].attributes[1], string_attr("state", "idle"));
            }
            other => panic!("expected sum, got {other:?}"),
        }
        match &metrics[1].data {
            Some(metric::Data::Gauge(g)) => {
                assert_eq!(g.data_points[0].start_time_unix_nano, 0);
                assert_eq!(
                    g.data_points[0].value,
                    Some(number_data_point::Value::AsDouble(0.25))
                );
            }
            other => panic!("expected gauge, got {other:?}"),
        }
    }

    #[test]
    fn large_unsigned_values_saturate() {
        assert_eq!(Value::from(u64::MAX), Value::Int(i64::MAX));
        assert_eq!(Value::from(42u64), Value::Int(42));
    }
}
