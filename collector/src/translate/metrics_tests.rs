use super::super::{is_stale_nan, Dropped, NonFinitePolicy, Series};
use super::*;
use sightline_proto::otlp::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use sightline_proto::otlp::metrics::v1::{
    exponential_histogram_data_point::Buckets, summary_data_point::ValueAtQuantile,
    ExponentialHistogram, Gauge, Histogram, Metric, ResourceMetrics, ScopeMetrics, Sum, Summary,
};
use sightline_proto::otlp::resource::v1::Resource;

/// 2023-11-14T22:13:20Z plus 1.5 ms: truncates to ...001 ms.
const T: u64 = 1_700_000_000_001_500_000;
const T_MS: i64 = 1_700_000_000_001;
const CUMULATIVE: i32 = AggregationTemporality::Cumulative as i32;
const DELTA: i32 = AggregationTemporality::Delta as i32;

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        key_strindex: 0,
    }
}

fn attrs(pairs: &[(&str, &str)]) -> Vec<KeyValue> {
    pairs.iter().map(|(k, v)| kv(k, v)).collect()
}

fn metric(name: &str, unit: &str, data: Data) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        data: Some(data),
        ..Default::default()
    }
}

fn num(a: &[(&str, &str)], t: u64, v: f64) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs(a),
        time_unix_nano: t,
        value: Some(number_data_point::Value::AsDouble(v)),
        ..Default::default()
    }
}

fn gauge(points: Vec<NumberDataPoint>) -> Data {
    Data::Gauge(Gauge {
        data_points: points,
    })
}

fn sum(monotonic: bool, temporality: i32, points: Vec<NumberDataPoint>) -> Data {
    Data::Sum(Sum {
        data_points: points,
        aggregation_temporality: temporality,
        is_monotonic: monotonic,
    })
}

fn resource_metrics(resource: &[(&str, &str)], metrics: Vec<Metric>) -> ResourceMetrics {
    ResourceMetrics {
        resource: Some(Resource {
            attributes: attrs(resource),
            ..Default::default()
        }),
        scope_metrics: vec![ScopeMetrics {
            scope: Some(InstrumentationScope {
                name: "io.app".into(),
                version: "1.0".into(),
                ..Default::default()
            }),
            metrics,
            schema_url: String::new(),
        }],
        schema_url: String::new(),
    }
}

const SVC: &[(&str, &str)] = &[
    ("service.name", "checkout"),
    ("service.instance.id", "pod-1"),
];

fn run_with(rms: Vec<ResourceMetrics>, opts: &TranslateOptions) -> (Vec<Series>, Vec<Dropped>) {
    let t = translate(
        ExportMetricsServiceRequest {
            resource_metrics: rms,
        },
        opts,
    );
    match t.batch {
        WriteBatch::Metrics(s) => (s, t.dropped),
        other => panic!("unexpected batch {other:?}"),
    }
}

fn run(metrics: Vec<Metric>) -> (Vec<Series>, Vec<Dropped>) {
    run_with(
        vec![resource_metrics(SVC, metrics)],
        &TranslateOptions::default(),
    )
}

/// Labels every series of [`run`] carries besides its own.
fn with_common<'a>(pairs: &[(&'a str, &'a str)]) -> Labels {
    let mut all = vec![
        ("job", "checkout"),
        ("instance", "pod-1"),
        ("otel_scope_name", "io.app"),
        ("otel_scope_version", "1.0"),
    ];
    all.extend_from_slice(pairs);
    Labels::from_pairs(all)
}

fn find<'a>(series: &'a [Series], labels: &Labels) -> &'a Series {
    series
        .iter()
        .find(|s| &s.labels == labels)
        .unwrap_or_else(|| {
            panic!(
                "no series {labels:?} among {:#?}",
                series.iter().map(|s| &s.labels).collect::<Vec<_>>()
            )
        })
}

fn value(series: &[Series], pairs: &[(&str, &str)]) -> f64 {
    let s = find(series, &with_common(pairs));
    assert_eq!(s.samples.len(), 1, "{s:?}");
    assert_eq!(s.samples[0].timestamp_ms, T_MS);
    s.samples[0].value
}

fn reasons(dropped: &[Dropped]) -> Vec<(&'static str, u64)> {
    dropped.iter().map(|d| (d.reason, d.count)).collect()
}

fn names(series: &[Series]) -> Vec<&str> {
    let mut v: Vec<&str> = series
        .iter()
        .filter_map(|s| s.labels.metric_name())
        .collect();
    v.sort();
    v.dedup();
    v
}

#[test]
fn gauge_with_resource_scope_promoted_attributes_and_target_info() {
    let resource = [
        ("service.name", "checkout"),
        ("service.namespace", "shop"),
        ("service.instance.id", "pod-1:8080"),
        ("k8s.pod.name", "checkout-abc"),
        ("host.arch", "amd64"),
    ];
    let m = metric(
        "process.runtime.memory",
        "By",
        gauge(vec![num(
            &[("pool.name", "heap"), ("1st", "yes")],
            T,
            1024.0,
        )]),
    );
    let (series, dropped) = run_with(
        vec![resource_metrics(&resource, vec![m])],
        &TranslateOptions::default(),
    );
    assert!(dropped.is_empty(), "{dropped:?}");
    assert_eq!(series.len(), 2);
    let g = find(
        &series,
        &Labels::from_pairs([
            ("__name__", "process_runtime_memory_bytes"),
            ("job", "shop/checkout"),
            ("instance", "pod-1:8080"),
            ("service_namespace", "shop"),
            ("k8s_pod_name", "checkout-abc"),
            ("otel_scope_name", "io.app"),
            ("otel_scope_version", "1.0"),
            ("pool_name", "heap"),
            ("key_1st", "yes"),
        ]),
    );
    assert_eq!(
        g.samples,
        vec![Sample {
            timestamp_ms: T_MS,
            value: 1024.0
        }]
    );
    let info = find(
        &series,
        &Labels::from_pairs([
            ("__name__", "target_info"),
            ("job", "shop/checkout"),
            ("instance", "pod-1:8080"),
            ("k8s_pod_name", "checkout-abc"),
            ("host_arch", "amd64"),
        ]),
    );
    assert_eq!(
        info.samples,
        vec![Sample {
            timestamp_ms: T_MS,
            value: 1.0
        }]
    );
}

#[test]
fn sums_become_counters_or_gauges() {
    let int_point = NumberDataPoint {
        time_unix_nano: T,
        value: Some(number_data_point::Value::AsInt(42)),
        ..Default::default()
    };
    let (series, dropped) = run(vec![
        metric(
            "http.server.requests",
            "{request}",
            sum(true, CUMULATIVE, vec![int_point]),
        ),
        metric(
            "queue.size",
            "{item}",
            sum(false, CUMULATIVE, vec![num(&[], T, -3.0)]),
        ),
        metric(
            "process.cpu.time",
            "s",
            sum(true, CUMULATIVE, vec![num(&[("state", "user")], T, 12.5)]),
        ),
        metric("cpu.utilization", "1", gauge(vec![num(&[], T, 0.25)])),
    ]);
    assert!(dropped.is_empty(), "{dropped:?}");
    assert_eq!(
        value(&series, &[("__name__", "http_server_requests_total")]),
        42.0
    );
    assert_eq!(value(&series, &[("__name__", "queue_size")]), -3.0);
    assert_eq!(
        value(
            &series,
            &[
                ("__name__", "process_cpu_time_seconds_total"),
                ("state", "user")
            ]
        ),
        12.5
    );
    assert_eq!(
        value(&series, &[("__name__", "cpu_utilization_ratio")]),
        0.25
    );
    // the resource has only identifying attributes: no target_info
    assert_eq!(series.len(), 4);
}

fn histogram_point(
    bounds: &[f64],
    counts: &[u64],
    count: u64,
    sum: Option<f64>,
) -> HistogramDataPoint {
    HistogramDataPoint {
        attributes: attrs(&[("http.route", "/cart")]),
        time_unix_nano: T,
        count,
        sum,
        bucket_counts: counts.to_vec(),
        explicit_bounds: bounds.to_vec(),
        ..Default::default()
    }
}

fn histogram(points: Vec<HistogramDataPoint>) -> Data {
    Data::Histogram(Histogram {
        data_points: points,
        aggregation_temporality: CUMULATIVE,
    })
}

#[test]
fn histogram_becomes_cumulative_buckets_sum_and_count() {
    let p = histogram_point(&[0.005, 0.5, 1.0, 2.5], &[1, 2, 3, 4, 5], 15, Some(12.5));
    let (series, dropped) = run(vec![metric(
        "http.server.request.duration",
        "s",
        histogram(vec![p]),
    )]);
    assert!(dropped.is_empty(), "{dropped:?}");
    let name = "http_server_request_duration_seconds";
    let bucket = format!("{name}_bucket");
    let route = ("http_route", "/cart");
    for (le, want) in [
        ("0.005", 1.0),
        ("0.5", 3.0),
        ("1", 6.0),
        ("2.5", 10.0),
        ("+Inf", 15.0),
    ] {
        assert_eq!(
            value(&series, &[("__name__", &bucket), route, ("le", le)]),
            want,
            "le={le}"
        );
    }
    assert_eq!(
        value(&series, &[("__name__", &format!("{name}_sum")), route]),
        12.5
    );
    assert_eq!(
        value(&series, &[("__name__", &format!("{name}_count")), route]),
        15.0
    );
    assert_eq!(series.len(), 7);
}

#[test]
fn histogram_without_sum_or_buckets() {
    let p = histogram_point(&[], &[], 4, None);
    let (series, dropped) = run(vec![metric("jobs", "", histogram(vec![p]))]);
    assert!(dropped.is_empty());
    assert_eq!(names(&series), vec!["jobs_bucket", "jobs_count"]);
    assert_eq!(
        value(
            &series,
            &[
                ("__name__", "jobs_bucket"),
                ("http_route", "/cart"),
                ("le", "+Inf")
            ]
        ),
        4.0
    );
}

#[test]
fn invalid_histograms_are_dropped() {
    let (series, dropped) = run(vec![metric(
        "h",
        "",
        histogram(vec![
            histogram_point(&[1.0, 1.0], &[1, 1, 1], 3, None),
            histogram_point(&[1.0, f64::NAN], &[1, 1, 1], 3, None),
            histogram_point(&[1.0, 2.0], &[1, 1], 2, None),
            histogram_point(&[1.0], &[5, 5], 3, None),
            histogram_point(&[1.0], &[1, 2], 3, Some(1.0)),
        ]),
    )]);
    assert_eq!(reasons(&dropped), vec![("invalid_data", 4)]);
    assert_eq!(
        dropped[0].message,
        r#"data point of metric "h": explicit bounds [1.0, 1.0] are not strictly increasing"#
    );
    assert_eq!(names(&series), vec!["h_bucket", "h_count", "h_sum"]);
}

fn exp_point(
    scale: i32,
    zero: u64,
    pos: (i32, &[u64]),
    neg: (i32, &[u64]),
    count: u64,
) -> ExponentialHistogramDataPoint {
    ExponentialHistogramDataPoint {
        time_unix_nano: T,
        count,
        sum: Some(3.0),
        scale,
        zero_count: zero,
        positive: Some(Buckets {
            offset: pos.0,
            bucket_counts: pos.1.to_vec(),
        }),
        negative: Some(Buckets {
            offset: neg.0,
            bucket_counts: neg.1.to_vec(),
        }),
        ..Default::default()
    }
}

fn exponential(points: Vec<ExponentialHistogramDataPoint>, temporality: i32) -> Data {
    Data::ExponentialHistogram(ExponentialHistogram {
        data_points: points,
        aggregation_temporality: temporality,
    })
}

#[test]
fn exponential_histogram_becomes_classic_buckets() {
    // scale 0 (base 2): negative bucket 1 holds [-4, -2), zero bucket, positive (1,2], (2,4]
    let p = exp_point(0, 1, (0, &[2, 3]), (1, &[4]), 10);
    let (series, dropped) = run(vec![metric(
        "latency",
        "ms",
        exponential(vec![p], CUMULATIVE),
    )]);
    assert!(dropped.is_empty(), "{dropped:?}");
    let bucket = "latency_milliseconds_bucket";
    for (le, want) in [
        ("-2", 4.0),
        ("0", 5.0),
        ("2", 7.0),
        ("4", 10.0),
        ("+Inf", 10.0),
    ] {
        assert_eq!(
            value(&series, &[("__name__", bucket), ("le", le)]),
            want,
            "le={le}"
        );
    }
    assert_eq!(
        value(&series, &[("__name__", "latency_milliseconds_sum")]),
        3.0
    );
    assert_eq!(
        value(&series, &[("__name__", "latency_milliseconds_count")]),
        10.0
    );
    assert_eq!(series.len(), 7);
}

#[test]
fn exponential_histogram_at_positive_scale() {
    // scale 1 (base sqrt 2), positive offset 1: (1.414, 2], (2, 2.828]; zero threshold 0.5
    let mut p = exp_point(1, 0, (1, &[1, 1]), (0, &[]), 2);
    p.zero_threshold = 0.5;
    let (series, dropped) = run(vec![metric("size", "By", exponential(vec![p], CUMULATIVE))]);
    assert!(dropped.is_empty(), "{dropped:?}");
    for (le, want) in [
        ("0.5", 0.0),
        ("2", 1.0),
        ("2.8284271247461903", 2.0),
        ("+Inf", 2.0),
    ] {
        assert_eq!(
            value(&series, &[("__name__", "size_bytes_bucket"), ("le", le)]),
            want,
            "le={le}"
        );
    }
}

#[test]
fn invalid_exponential_histograms_are_dropped() {
    let (series, dropped) = run(vec![metric(
        "e",
        "",
        exponential(
            vec![
                exp_point(21, 0, (0, &[1]), (0, &[]), 1),
                exp_point(-11, 0, (0, &[1]), (0, &[]), 1),
                exp_point(0, 5, (0, &[1]), (0, &[]), 1),
                ExponentialHistogramDataPoint {
                    zero_threshold: -1.0,
                    ..exp_point(0, 0, (0, &[1]), (0, &[]), 1)
                },
            ],
            CUMULATIVE,
        ),
    )]);
    assert_eq!(reasons(&dropped), vec![("invalid_data", 4)]);
    assert_eq!(
        dropped[0].message,
        r#"data point of metric "e": scale 21 outside [-10, 20]"#
    );
    assert!(series.is_empty());
}

#[test]
fn summary_becomes_quantiles_sum_and_count() {
    let p = SummaryDataPoint {
        time_unix_nano: T,
        count: 20,
        sum: 100.0,
        quantile_values: vec![
            ValueAtQuantile {
                quantile: 0.5,
                value: 1.5,
            },
            ValueAtQuantile {
                quantile: 0.99,
                value: 9.0,
            },
            ValueAtQuantile {
                quantile: 1.0,
                value: 12.0,
            },
        ],
        ..Default::default()
    };
    let bad = SummaryDataPoint {
        quantile_values: vec![ValueAtQuantile {
            quantile: 1.5,
            value: 1.0,
        }],
        ..p.clone()
    };
    let (series, dropped) = run(vec![metric(
        "rpc.duration",
        "ms",
        Data::Summary(Summary {
            data_points: vec![p, bad],
        }),
    )]);
    assert_eq!(reasons(&dropped), vec![("invalid_data", 1)]);
    let name = "rpc_duration_milliseconds";
    assert_eq!(
        value(&series, &[("__name__", name), ("quantile", "0.5")]),
        1.5
    );
    assert_eq!(
        value(&series, &[("__name__", name), ("quantile", "0.99")]),
        9.0
    );
    assert_eq!(
        value(&series, &[("__name__", name), ("quantile", "1")]),
        12.0
    );
    assert_eq!(
        value(&series, &[("__name__", "rpc_duration_milliseconds_sum")]),
        100.0
    );
    assert_eq!(
        value(&series, &[("__name__", "rpc_duration_milliseconds_count")]),
        20.0
    );
}

#[test]
fn delta_and_unspecified_temporality_are_dropped() {
    let (series, dropped) = run(vec![
        metric(
            "d.sum",
            "",
            sum(true, DELTA, vec![num(&[], T, 1.0), num(&[], T, 2.0)]),
        ),
        metric("d.updown", "", sum(false, DELTA, vec![num(&[], T, 1.0)])),
        metric(
            "d.hist",
            "",
            Data::Histogram(Histogram {
                data_points: vec![histogram_point(&[], &[], 1, None)],
                aggregation_temporality: DELTA,
            }),
        ),
        metric(
            "d.exp",
            "",
            exponential(vec![exp_point(0, 1, (0, &[]), (0, &[]), 1)], DELTA),
        ),
        metric("u.sum", "", sum(true, 0, vec![num(&[], T, 1.0)])),
        metric("ok", "", gauge(vec![num(&[], T, 1.0)])),
    ]);
    assert_eq!(
        reasons(&dropped),
        vec![("delta_temporality", 5), ("invalid_data", 1)]
    );
    assert!(
        dropped[0]
            .message
            .starts_with(r#"metric "d.sum" has delta temporality"#),
        "{}",
        dropped[0].message
    );
    assert_eq!(
        dropped[1].message,
        r#"metric "u.sum" has aggregation temporality 0, not cumulative"#
    );
    assert_eq!(names(&series), vec!["ok"]);
}

#[test]
fn no_recorded_value_becomes_the_stale_marker() {
    let flag = NO_RECORDED_VALUE;
    let g = NumberDataPoint {
        flags: flag,
        value: None,
        ..num(&[], T, 0.0)
    };
    let h = HistogramDataPoint {
        flags: flag,
        ..histogram_point(&[1.0, 2.0], &[], 0, Some(0.0))
    };
    let e = ExponentialHistogramDataPoint {
        flags: flag,
        ..exp_point(0, 0, (0, &[1]), (0, &[]), 1)
    };
    let s = SummaryDataPoint {
        flags: flag,
        time_unix_nano: T,
        quantile_values: vec![ValueAtQuantile {
            quantile: 0.5,
            value: 1.0,
        }],
        ..Default::default()
    };
    let (series, dropped) = run(vec![
        metric("g", "", gauge(vec![g])),
        metric("h", "", histogram(vec![h])),
        metric("e", "", exponential(vec![e], CUMULATIVE)),
        metric(
            "s",
            "",
            Data::Summary(Summary {
                data_points: vec![s],
            }),
        ),
    ]);
    assert!(dropped.is_empty(), "{dropped:?}");
    // g; h: sum, count, le 1, 2, +Inf; e: sum, count, le 0, 2, +Inf; s: quantile, sum, count
    assert_eq!(series.len(), 1 + 5 + 5 + 3);
    for s in &series {
        assert_eq!(s.samples.len(), 1);
        assert!(
            is_stale_nan(s.samples[0].value),
            "{:?} = {}",
            s.labels,
            s.samples[0].value
        );
    }
}

#[test]
fn zero_timestamps_and_missing_values_are_dropped_alone() {
    let no_value = NumberDataPoint {
        value: None,
        ..num(&[("k", "b")], T, 0.0)
    };
    let (series, dropped) = run(vec![metric(
        "g",
        "",
        gauge(vec![
            num(&[("k", "a")], 0, 1.0),
            no_value,
            num(&[("k", "c")], T, 3.0),
        ]),
    )]);
    assert_eq!(
        reasons(&dropped),
        vec![("invalid_timestamp", 1), ("invalid_data", 1)]
    );
    assert_eq!(
        dropped[0].message,
        r#"data point of metric "g" has timestamp 0"#
    );
    assert_eq!(dropped[1].message, r#"data point of metric "g": no value"#);
    assert_eq!(series.len(), 1);
    assert_eq!(value(&series, &[("__name__", "g"), ("k", "c")]), 3.0);
}

#[test]
fn non_finite_values_follow_the_policy() {
    let metrics = || {
        vec![
            metric(
                "g",
                "",
                gauge(vec![
                    num(&[("k", "nan")], T, f64::NAN),
                    num(&[("k", "inf")], T, f64::INFINITY),
                    num(&[("k", "ok")], T, 1.0),
                ]),
            ),
            metric(
                "h",
                "",
                histogram(vec![histogram_point(&[1.0], &[1, 0], 1, Some(f64::NAN))]),
            ),
        ]
    };
    let (series, dropped) = run(metrics());
    assert_eq!(reasons(&dropped), vec![("non_finite_value", 3)]);
    assert!(
        dropped[0]
            .message
            .starts_with(r#"non-finite value NaN in series {__name__="g", "#),
        "{}",
        dropped[0].message
    );
    assert_eq!(names(&series), vec!["g", "h_bucket", "h_count"]);
    let accept = TranslateOptions {
        non_finite: NonFinitePolicy::Accept,
        ..Default::default()
    };
    let (series, dropped) = run_with(vec![resource_metrics(SVC, metrics())], &accept);
    assert!(dropped.is_empty());
    assert!(value(&series, &[("__name__", "g"), ("k", "nan")]).is_nan());
    assert_eq!(
        value(&series, &[("__name__", "g"), ("k", "inf")]),
        f64::INFINITY
    );
    assert!(value(&series, &[("__name__", "h_sum"), ("http_route", "/cart")]).is_nan());
}

#[test]
fn bad_metric_names_and_missing_data() {
    let (series, dropped) = run(vec![
        metric("", "", gauge(vec![num(&[], T, 1.0), num(&[], T, 2.0)])),
        metric("...", "s", gauge(vec![num(&[], T, 1.0)])),
        Metric {
            name: "nodata".into(),
            ..Default::default()
        },
        metric("ok", "", gauge(vec![num(&[], T, 1.0)])),
    ]);
    assert_eq!(
        reasons(&dropped),
        vec![
            ("missing_metric_name", 2),
            ("invalid_metric_name", 1),
            ("invalid_data", 1)
        ]
    );
    assert_eq!(
        dropped[0].message,
        r#"metric without a name in scope "io.app""#
    );
    assert_eq!(
        dropped[1].message,
        r#"metric name "..." has no character valid in a Prometheus name"#
    );
    assert_eq!(dropped[2].message, r#"metric "nodata" has no data"#);
    assert_eq!(names(&series), vec!["ok"]);
}

#[path = "metrics_label_tests.rs"]
mod labels;
