//! The `data` object of Prometheus' HTTP API for a [`QueryResult`]: timestamps as
//! seconds (a JSON number with up to millisecond decimals), values as strings formatted
//! like Go's `strconv.FormatFloat(v, 'f', -1, 64)` (shortest round-trip digits, never
//! an exponent; `NaN`, `+Inf`, `-Inf`).

use serde_json::{json, Map, Value};
use sightline_store::Labels;

use crate::QueryResult;

/// Formats a sample value as Prometheus does.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        // Rust's Display prints the shortest round-trip digits without an exponent.
        format!("{v}")
    }
}

/// A millisecond timestamp as Prometheus' JSON number of seconds.
pub fn timestamp_json(ms: i64) -> Value {
    if ms % 1000 == 0 {
        json!(ms / 1000)
    } else {
        json!(ms as f64 / 1000.0)
    }
}

fn metric_json(l: &Labels) -> Value {
    let mut m = Map::new();
    for x in l.iter() {
        m.insert(x.name.clone(), Value::String(x.value.clone()));
    }
    Value::Object(m)
}

fn point(ms: i64, v: f64) -> Value {
    json!([timestamp_json(ms), format_value(v)])
}

impl QueryResult {
    /// `{"resultType": ..., "result": ...}` exactly as Prometheus' API `data` field.
    pub fn to_prometheus_json(&self) -> Value {
        match self {
            QueryResult::Vector(v) => json!({
                "resultType": "vector",
                "result": v.iter().map(|s| json!({
                    "metric": metric_json(&s.labels),
                    "value": point(s.timestamp_ms, s.value),
                })).collect::<Vec<_>>(),
            }),
            QueryResult::Matrix(m) => json!({
                "resultType": "matrix",
                "result": m.iter().map(|s| json!({
                    "metric": metric_json(&s.labels),
                    "values": s.samples.iter().map(|p| point(p.timestamp_ms, p.value)).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            }),
            QueryResult::Scalar {
                timestamp_ms,
                value,
            } => json!({
                "resultType": "scalar",
                "result": point(*timestamp_ms, *value),
            }),
            QueryResult::String {
                timestamp_ms,
                value,
            } => json!({
                "resultType": "string",
                "result": [timestamp_json(*timestamp_ms), value],
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_like_go_format_float_f() {
        assert_eq!(format_value(1.0), "1");
        assert_eq!(format_value(0.1), "0.1");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_value(1e21), "1000000000000000000000");
        assert_eq!(format_value(1.5e-7), "0.00000015");
        assert_eq!(format_value(-0.0), "-0");
    }

    #[test]
    fn scalar_json() {
        let r = QueryResult::Scalar {
            timestamp_ms: 1_500,
            value: 2.5,
        };
        assert_eq!(
            r.to_prometheus_json().to_string(),
            r#"{"result":[1.5,"2.5"],"resultType":"scalar"}"#
        );
    }
}
