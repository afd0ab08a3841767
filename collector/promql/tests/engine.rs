//! Engine semantics on small hand-made data (cases in the spirit of Prometheus'
//! `promqltest` files), the limits, the JSON shape and the counters.

#![allow(clippy::unwrap_used)] // tests may unwrap (STYLE.md); helpers here are test code too

use std::time::Duration;

use sightline_promql::{
    instant_query, range_query, stats, Error, Labels, MemQueryable, QueryOptions, QueryResult,
    Sample, Series, STALE_NAN_BITS,
};

fn s(pairs: &[(&str, &str)], pts: &[(i64, f64)]) -> Series {
    Series {
        labels: Labels::from_pairs(pairs.iter().copied()),
        samples: pts
            .iter()
            .map(|&(t, v)| Sample {
                timestamp_ms: t * 1000,
                value: v,
            })
            .collect(),
    }
}

/// `load 5m: http_requests{job="api"} 0+10x10` and friends.
fn data() -> MemQueryable {
    let ramp: Vec<(i64, f64)> = (0..=10).map(|i| (i * 300, i as f64 * 10.0)).collect();
    let stale = f64::from_bits(STALE_NAN_BITS);
    MemQueryable::new(vec![
        s(&[("__name__", "http_requests"), ("job", "api")], &ramp),
        s(
            &[("__name__", "http_requests"), ("job", "web")],
            &ramp.iter().map(|&(t, v)| (t, v * 2.0)).collect::<Vec<_>>(),
        ),
        s(
            &[("__name__", "gone"), ("job", "api")],
            &[(0, 1.0), (60, 2.0), (120, stale)],
        ),
    ])
}

fn vector(r: QueryResult) -> Vec<(String, f64)> {
    match r {
        QueryResult::Vector(v) => v
            .into_iter()
            .map(|x| {
                (
                    x.labels
                        .iter()
                        .map(|l| format!("{}={}", l.name, l.value))
                        .collect::<Vec<_>>()
                        .join(","),
                    x.value,
                )
            })
            .collect(),
        other => panic!("expected vector, got {other:?}"),
    }
}

fn q(expr: &str, t: i64) -> Vec<(String, f64)> {
    vector(instant_query(&data(), expr, t * 1000, &QueryOptions::default()).unwrap())
}

#[test]
fn rate_and_increase_over_a_linear_counter() {
    // 10 per 5 m = 1/30 per second; exact samples at the window edges.
    assert_eq!(
        q("rate(http_requests{job=\"api\"}[10m])", 3000),
        vec![("job=api".into(), 10.0 / 300.0)]
    );
    assert_eq!(
        q("increase(http_requests{job=\"api\"}[10m])", 3000),
        vec![("job=api".into(), 20.0)]
    );
    assert_eq!(
        q("sum by (job) (http_requests)", 3000),
        vec![("job=api".into(), 100.0), ("job=web".into(), 200.0)]
    );
}

#[test]
fn staleness_marker_ends_lookback() {
    assert_eq!(q("gone", 100), vec![("__name__=gone,job=api".into(), 2.0)]);
    assert!(
        q("gone", 130).is_empty(),
        "stale marker hides the series at once"
    );
    assert!(
        q("http_requests", 3000 + 301).is_empty(),
        "lookback of 5 m ended"
    );
    assert_eq!(
        q("count_over_time(gone[5m])", 130),
        vec![("job=api".into(), 2.0)]
    );
}

#[test]
fn range_query_steps_and_scalar_results() {
    let r = range_query(
        &data(),
        "time()",
        0,
        600_000,
        300_000,
        &QueryOptions::default(),
    )
    .unwrap();
    let json = r.to_prometheus_json();
    assert_eq!(
        json.to_string(),
        r#"{"result":[{"metric":{},"values":[[0,"0"],[300,"300"],[600,"600"]]}],"resultType":"matrix"}"#
    );
    let r = range_query(
        &data(),
        "http_requests[5m]",
        0,
        600_000,
        300_000,
        &QueryOptions::default(),
    );
    assert_eq!(r.unwrap_err().prometheus_error(), ("bad_data", 400));
}

#[test]
fn errors_are_classified() {
    let d = data();
    let o = QueryOptions::default();
    let before = stats();
    assert_eq!(
        instant_query(&d, "sum(", 0, &o)
            .unwrap_err()
            .prometheus_error(),
        ("bad_data", 400)
    );
    let e = instant_query(&d, "http_requests + on() http_requests", 3_000_000, &o).unwrap_err();
    assert_eq!(e.prometheus_error(), ("execution", 422), "{e}");
    let small = QueryOptions {
        max_samples: 5,
        ..QueryOptions::default()
    };
    let e = instant_query(&d, "http_requests[1h]", 3_000_000, &small).unwrap_err();
    assert!(matches!(e, Error::TooManySamples));
    let zero = QueryOptions {
        timeout: Duration::ZERO,
        ..QueryOptions::default()
    };
    let e = range_query(&d, "http_requests", 0, 3_000_000, 1000, &zero).unwrap_err();
    assert_eq!(e.prometheus_error(), ("timeout", 503));
    let after = stats();
    assert!(after.queries_total >= before.queries_total + 4);
    assert!(after.errors_bad_data_total > before.errors_bad_data_total);
    assert!(after.errors_execution_total >= before.errors_execution_total + 2);
    assert!(after.samples_loaded_total > before.samples_loaded_total);
}
