//! Prometheus HTTP API subset: `/api/v1/series`, `/api/v1/labels`,
//! `/api/v1/label/<name>/values`, `/api/v1/query` and `/api/v1/query_range` for
//! plain vector selectors.
//!
//! Data flow: parameters (GET query or POST form) → tenant → selectors parsed into
//! store matchers → store selects → JSON in Prometheus' format. An instant query at
//! `t` returns each series' latest sample in `(t-5m, t]`, skipping stale markers; a
//! range query evaluates that at `start, start+step, ..., end`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::{HeaderMap, StatusCode};
use serde_json::{json, Map, Number, Value};
use sightline_store::{Labels, Matcher, Sample, Series};

use super::params::{parse_duration_ms, ApiError, Params, MAX_TIME_MS, MIN_TIME_MS};
use super::selector::{parse_query, parse_selector, Query, SelectorError};
use crate::receiver::tenant_from_headers;
use crate::state::AppState;

/// Lookback window of instant selectors.
pub const LOOKBACK_MS: i64 = 5 * 60 * 1000;
/// Prometheus' limit on points per series in a range query.
const MAX_POINTS: i64 = 11_000;
/// Bit pattern Prometheus writes as a staleness marker.
const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

fn is_stale(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

fn success(data: Value) -> Response {
    Json(json!({"status": "success", "data": data})).into_response()
}

fn tenant(state: &AppState, headers: &HeaderMap) -> Result<String, ApiError> {
    tenant_from_headers(state, headers).map_err(|(status, e)| ApiError::auth(status, &e))
}

fn selector_error(e: SelectorError) -> ApiError {
    ApiError::bad_data(e.to_string())
}

/// `match[]` parameters as matcher sets (empty when none are given).
fn match_sets(params: &Params) -> Result<Vec<Vec<Matcher>>, ApiError> {
    let mut sets = Vec::new();
    for m in params.all("match[]") {
        sets.extend(parse_selector(m).map_err(selector_error)?);
    }
    Ok(sets)
}

fn range(params: &Params) -> Result<(i64, i64), ApiError> {
    let start = params.time_ms("start", MIN_TIME_MS)?;
    let end = params.time_ms("end", MAX_TIME_MS)?;
    if end < start {
        return Err(ApiError::bad_data(
            "end timestamp must not be before start time",
        ));
    }
    Ok((start, end))
}

fn limit(params: &Params) -> Result<Option<usize>, ApiError> {
    match params.get("limit") {
        None => Ok(None),
        Some(v) => match v.parse::<usize>() {
            Ok(0) => Ok(None),
            Ok(n) => Ok(Some(n)),
            Err(_) => Err(ApiError::bad_data(format!(
                "invalid parameter \"limit\": {v:?} is not a non-negative integer"
            ))),
        },
    }
}

fn labels_json(labels: &Labels) -> Value {
    Value::Object(
        labels
            .iter()
            .map(|l| (l.name.clone(), Value::String(l.value.clone())))
            .collect::<Map<_, _>>(),
    )
}

/// A sample value as Prometheus writes it: shortest decimal, `NaN`, `+Inf`, `-Inf`.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// A timestamp as Prometheus writes it: seconds, with a fraction only when needed.
pub fn format_time(ms: i64) -> Value {
    if ms % 1000 == 0 {
        Value::Number(Number::from(ms / 1000))
    } else {
        Number::from_f64(ms as f64 / 1000.0)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
}

fn point(ms: i64, v: f64) -> Value {
    json!([format_time(ms), format_value(v)])
}

/// `GET|POST /api/v1/series`.
pub async fn series(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let tenant = tenant(&state, &headers)?;
    let sets = match_sets(&params)?;
    if sets.is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let (start, end) = range(&params)?;
    let mut out = state
        .store
        .series(&tenant, &sets, start, end)
        .map_err(ApiError::store)?;
    out.sort();
    out.dedup();
    if let Some(n) = limit(&params)? {
        out.truncate(n);
    }
    Ok(success(Value::Array(out.iter().map(labels_json).collect())))
}

/// `GET|POST /api/v1/labels`.
pub async fn label_names(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let tenant = tenant(&state, &headers)?;
    let sets = match_sets(&params)?;
    let (start, end) = range(&params)?;
    let mut out = state
        .store
        .label_names(&tenant, &sets, start, end)
        .map_err(ApiError::store)?;
    if let Some(n) = limit(&params)? {
        out.truncate(n);
    }
    Ok(success(json!(out)))
}

/// `GET /api/v1/label/<name>/values`.
pub async fn label_values(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let tenant = tenant(&state, &headers)?;
    if !valid_label_name(&name) {
        return Err(ApiError::bad_data(format!("invalid label name: {name:?}")));
    }
    let sets = match_sets(&params)?;
    let (start, end) = range(&params)?;
    let mut out = state
        .store
        .label_values(&tenant, &name, &sets, start, end)
        .map_err(ApiError::store)?;
    if let Some(n) = limit(&params)? {
        out.truncate(n);
    }
    Ok(success(json!(out)))
}

fn valid_label_name(n: &str) -> bool {
    !n.is_empty() && !n.chars().any(char::is_control)
}

/// Series matching any of `sets` with samples in `[start, end]`, merged by labels.
fn select(
    state: &AppState,
    tenant: &str,
    sets: &[Vec<Matcher>],
    start: i64,
    end: i64,
) -> Result<Vec<Series>, ApiError> {
    let mut merged: BTreeMap<Labels, Vec<Sample>> = BTreeMap::new();
    for set in sets {
        for s in state
            .store
            .select_series(tenant, set, start, end)
            .map_err(ApiError::store)?
        {
            let e = merged.entry(s.labels).or_default();
            if e.is_empty() {
                *e = s.samples;
            }
        }
    }
    Ok(merged
        .into_iter()
        .map(|(labels, samples)| Series { labels, samples })
        .collect())
}

/// The latest non-stale sample of `samples` (oldest first) in `(t - 5m, t]`.
fn latest_at(samples: &[Sample], t: i64) -> Option<Sample> {
    let idx = samples.partition_point(|s| s.timestamp_ms <= t);
    let s = *samples.get(idx.checked_sub(1)?)?;
    (s.timestamp_ms > t - LOOKBACK_MS && !is_stale(s.value)).then_some(s)
}

fn query_param(params: &Params) -> Result<Query, ApiError> {
    let q = params
        .get("query")
        .ok_or_else(|| ApiError::bad_data("missing parameter \"query\""))?;
    parse_query(q).map_err(selector_error)
}

/// `GET|POST /api/v1/query`.
pub async fn query(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let tenant = tenant(&state, &headers)?;
    let query = query_param(&params)?;
    let t = params.time_ms("time", state.clock.now_ms())?;
    let sets = match query {
        Query::Scalar(v) => {
            return Ok(success(
                json!({"resultType": "scalar", "result": point(t, v)}),
            ))
        }
        Query::Selector(sets) => sets,
    };
    let series = select(&state, &tenant, &sets, t - LOOKBACK_MS + 1, t)?;
    let result: Vec<Value> = series
        .iter()
        .filter_map(|s| {
            latest_at(&s.samples, t)
                .map(|p| json!({"metric": labels_json(&s.labels), "value": point(t, p.value)}))
        })
        .collect();
    Ok(success(json!({"resultType": "vector", "result": result})))
}

/// `GET|POST /api/v1/query_range`.
pub async fn query_range(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let tenant = tenant(&state, &headers)?;
    let query = query_param(&params)?;
    let start = params
        .get("start")
        .ok_or_else(|| ApiError::bad_data("missing parameter \"start\""))
        .and_then(|_| params.time_ms("start", 0))?;
    let end = params
        .get("end")
        .ok_or_else(|| ApiError::bad_data("missing parameter \"end\""))
        .and_then(|_| params.time_ms("end", 0))?;
    if end < start {
        return Err(ApiError::bad_data(
            "end timestamp must not be before start time",
        ));
    }
    let step_raw = params
        .get("step")
        .ok_or_else(|| ApiError::bad_data("missing parameter \"step\""))?;
    let step = parse_duration_ms(step_raw).ok_or_else(|| {
        ApiError::bad_data(format!(
            "invalid parameter \"step\": cannot parse {step_raw:?} to a valid duration"
        ))
    })?;
    if step <= 0 {
        return Err(ApiError::bad_data(
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    if (end - start) / step >= MAX_POINTS {
        return Err(ApiError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    let sets = match query {
        Query::Scalar(v) => {
            let values: Vec<Value> = (0..=(end - start) / step)
                .map(|i| point(start + i * step, v))
                .collect();
            let result = json!([{"metric": {}, "values": values}]);
            return Ok(success(json!({"resultType": "matrix", "result": result})));
        }
        Query::Selector(sets) => sets,
    };
    let series = select(&state, &tenant, &sets, start - LOOKBACK_MS + 1, end)?;
    let mut result = Vec::new();
    for s in &series {
        let mut values = Vec::new();
        let mut t = start;
        while t <= end {
            if let Some(p) = latest_at(&s.samples, t) {
                values.push(point(t, p.value));
            }
            t += step;
        }
        if !values.is_empty() {
            result.push(json!({"metric": labels_json(&s.labels), "values": values}));
        }
    }
    Ok(success(json!({"resultType": "matrix", "result": result})))
}

/// `POST /api/v1/admin/flush`: writes every memtable to Parquet parts now (so the
/// data directory holds only compact parts, e.g. before measuring its size or taking
/// a backup). Authenticated like every other API route; flushes all tenants.
pub async fn admin_flush(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    tenant(&state, &headers)?;
    state.store.flush().await.map_err(ApiError::store)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_times_look_like_prometheus() {
        assert_eq!(format_value(1.0), "1");
        assert_eq!(format_value(0.5), "0.5");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_value(1e21), "1000000000000000000000");
        assert_eq!(format_value(-0.25), "-0.25");
        assert_eq!(format_time(1_700_000_000_000).to_string(), "1700000000");
        assert_eq!(format_time(1_700_000_000_500).to_string(), "1700000000.5");
    }

    #[test]
    fn lookback_is_left_open_and_skips_stale() {
        let s = |t, v| Sample {
            timestamp_ms: t,
            value: v,
        };
        let samples = vec![
            s(1000, 1.0),
            s(2000, 2.0),
            s(3000, f64::from_bits(STALE_NAN_BITS)),
        ];
        assert_eq!(latest_at(&samples, 2500).unwrap().value, 2.0);
        assert_eq!(latest_at(&samples, 2000).unwrap().value, 2.0);
        assert!(latest_at(&samples, 999).is_none());
        assert!(
            latest_at(&samples, 3000).is_none(),
            "stale marker hides the series"
        );
        assert_eq!(
            latest_at(&samples[..2], 1000 + LOOKBACK_MS - 1)
                .unwrap()
                .value,
            2.0
        );
        assert!(
            latest_at(&samples[..1], 1000 + LOOKBACK_MS).is_none(),
            "(t-5m, t] excludes t-5m"
        );
    }
}
