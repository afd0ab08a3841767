//! Prometheus HTTP API subset: `/api/v1/series`, `/api/v1/labels`,
//! `/api/v1/label/<name>/values`, `/api/v1/metadata`, `/api/v1/query` and
//! `/api/v1/query_range` (full PromQL through `sightline-promql`).
//!
//! Data flow: parameters (GET query or POST form) → tenant → selectors parsed into
//! store matchers → store selects → JSON in Prometheus' format. Queries run off the
//! async workers, at most `query.max_concurrency` at once (more wait, within
//! `query.timeout`), with the `query:` limits as [`QueryOptions`]; a selector is
//! checked against `query.max_series` before its samples are loaded. Series, label
//! names and values are cut at `limit` and at `query.max_series`, with a warning
//! (`"warnings":[...]` next to `data`, as Prometheus answers). Every limit hit counts
//! in `sightline_collector_query_limit_hits_total{limit}`.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::{HeaderMap, StatusCode};
use serde_json::{json, Map, Value};
use sightline_store::{Labels, Matcher, Series, Store};

use super::params::{parse_duration_ms, ApiError, Params, MAX_TIME_MS, MIN_TIME_MS};
use super::selector::{parse_selector, SelectorError};
use crate::receiver::tenant_from_headers;
use crate::state::AppState;
use sightline_promql::{QueryOptions, QueryResult, Queryable};

/// Prometheus' limit on points per series in a range query.
const MAX_POINTS: i64 = 11_000;

fn success(data: Value) -> Response {
    Json(json!({"status": "success", "data": data})).into_response()
}

/// Success with warnings (omitted when there are none).
fn success_warned(data: Value, warnings: Vec<String>) -> Response {
    if warnings.is_empty() {
        return success(data);
    }
    Json(json!({"status": "success", "data": data, "warnings": warnings})).into_response()
}

/// Cuts `out` at the request's `limit` and at `query.max_series`, returning the
/// warning Prometheus gives for a truncated answer.
fn truncate<T>(
    state: &AppState,
    params: &Params,
    out: &mut Vec<T>,
    warnings: &mut Vec<String>,
) -> Result<(), ApiError> {
    if let Some(n) = limit(params)? {
        if out.len() > n {
            out.truncate(n);
            warnings.push("results truncated due to limit".into());
        }
    }
    let max = state.query.max_series;
    if out.len() > max {
        out.truncate(max);
        state.metrics.query_limit_hit("max_series");
        warnings.push(format!(
            "results truncated due to the server's query.max_series limit of {max}"
        ));
    }
    Ok(())
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
    let mut warnings = Vec::new();
    truncate(&state, &params, &mut out, &mut warnings)?;
    Ok(success_warned(
        Value::Array(out.iter().map(labels_json).collect()),
        warnings,
    ))
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
    let mut warnings = Vec::new();
    truncate(&state, &params, &mut out, &mut warnings)?;
    Ok(success_warned(json!(out), warnings))
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
    let mut warnings = Vec::new();
    truncate(&state, &params, &mut out, &mut warnings)?;
    Ok(success_warned(json!(out), warnings))
}

fn valid_label_name(n: &str) -> bool {
    !n.is_empty() && !n.chars().any(char::is_control)
}

/// One tenant's data in the store, as the PromQL engine sees it.
struct TenantData {
    store: Arc<Store>,
    tenant: String,
    /// `query.max_series`: checked on the index before any sample is loaded.
    max_series: usize,
}

impl Queryable for TenantData {
    fn select(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> sightline_promql::Result<Vec<Series>> {
        let storage = |e: sightline_store::Error| sightline_promql::Error::Storage(e.to_string());
        let n = self
            .store
            .series(&self.tenant, &[matchers.to_vec()], start_ms, end_ms)
            .map_err(storage)?
            .len();
        if n > self.max_series {
            return Err(sightline_promql::Error::TooManySeries(self.max_series));
        }
        self.store
            .select_series(&self.tenant, matchers, start_ms, end_ms)
            .map_err(storage)
    }
}

fn query_expr(params: &Params) -> Result<String, ApiError> {
    params
        .get("query")
        .map(str::to_string)
        .ok_or_else(|| ApiError::bad_data("missing parameter \"query\""))
}

fn timeout_error(state: &AppState, phase: &str) -> ApiError {
    state.metrics.query_limit_hit("timeout");
    ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        error_type: "timeout",
        message: format!("query timed out in {phase}"),
    }
}

/// The engine options from the `query:` section.
fn query_options(state: &AppState, timeout: std::time::Duration) -> QueryOptions {
    QueryOptions {
        max_samples: state.query.max_samples,
        timeout,
        max_series: state.query.max_series,
        ..QueryOptions::default()
    }
}

/// Runs a PromQL evaluation off the async workers (the store reads files) once a
/// `query.max_concurrency` slot is free, and answers in Prometheus' JSON shape,
/// errors with Prometheus' errorType and status. The time spent waiting for the slot
/// counts against `query.timeout`.
async fn evaluate<F>(state: &AppState, tenant: String, run: F) -> Result<Response, ApiError>
where
    F: FnOnce(&dyn Queryable, &QueryOptions) -> sightline_promql::Result<QueryResult>
        + Send
        + 'static,
{
    let started = Instant::now();
    let limit = state.query.timeout;
    let permit = match tokio::time::timeout(limit, state.query_slots.clone().acquire_owned()).await
    {
        Ok(Ok(p)) => p,
        Ok(Err(_)) => {
            return Err(ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                error_type: "unavailable",
                message: "shutting down".into(),
            })
        }
        Err(_) => return Err(timeout_error(state, "queue")),
    };
    let opts = query_options(state, limit.saturating_sub(started.elapsed()));
    let data = TenantData {
        store: state.store.clone(),
        tenant,
        max_series: state.query.max_series,
    };
    let task = tokio::task::spawn_blocking(move || {
        // the slot stays taken until the evaluation really ends
        let _permit = permit;
        run(&data, &opts)
    });
    // the engine checks the deadline between steps; this answers on time even when
    // one step (e.g. loading the data) overruns it
    let remaining = limit.saturating_sub(started.elapsed()) + std::time::Duration::from_millis(100);
    let result = match tokio::time::timeout(remaining, task).await {
        Ok(joined) => joined.map_err(|e| ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error_type: "internal",
            message: format!("query task failed: {e}"),
        })?,
        Err(_) => return Err(timeout_error(state, "query execution")),
    };
    match result {
        Ok(r) => Ok(success(r.to_prometheus_json())),
        Err(e) => {
            match &e {
                sightline_promql::Error::TooManySamples => {
                    state.metrics.query_limit_hit("max_samples")
                }
                sightline_promql::Error::TooManySeries(_) => {
                    state.metrics.query_limit_hit("max_series")
                }
                sightline_promql::Error::Timeout(_) => state.metrics.query_limit_hit("timeout"),
                _ => {}
            }
            let (error_type, status) = e.prometheus_error();
            Err(ApiError {
                status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                error_type,
                message: e.to_string(),
            })
        }
    }
}

/// `GET|POST /api/v1/query`.
pub async fn query(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let tenant = tenant(&state, &headers)?;
    let expr = query_expr(&params)?;
    let t = params.time_ms("time", state.clock.now_ms())?;
    evaluate(&state, tenant, move |q, opts| {
        sightline_promql::instant_query(q, &expr, t, opts)
    })
    .await
}

/// `GET|POST /api/v1/query_range`.
pub async fn query_range(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let tenant = tenant(&state, &headers)?;
    let expr = query_expr(&params)?;
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
    evaluate(&state, tenant, move |q, opts| {
        sightline_promql::range_query(q, &expr, start, end, step, opts)
    })
    .await
}

/// A Prometheus `limit`-style parameter: absent or negative means no limit.
fn signed_limit(params: &Params, name: &str) -> Result<Option<usize>, ApiError> {
    match params.get(name) {
        None => Ok(None),
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if n < 0 => Ok(None),
            Ok(n) => Ok(Some(n as usize)),
            Err(_) => Err(ApiError::bad_data(format!("{name} must be a number"))),
        },
    }
}

/// `GET /api/v1/metadata[?metric=&limit=&limit_per_metric=]`: type, help and unit
/// per metric name, from OTLP descriptions and remote-write metadata.
pub async fn metadata(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    let tenant = tenant(&state, &headers)?;
    let limit = signed_limit(&params, "limit")?;
    let per_metric = signed_limit(&params, "limit_per_metric")?;
    let table = state
        .metadata
        .query(&tenant, params.get("metric"), limit, per_metric);
    Ok(success(json!(table)))
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

/// `GET|POST /api/v1/format_query`: the expression pretty-printed (Prometheus' shape:
/// `{"status":"success","data":"<formatted>"}`; a parse error is `bad_data`).
pub async fn format_query(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, ApiError> {
    tenant(&state, &headers)?;
    let expr = query_expr(&params)?;
    let parsed =
        sightline_promql::plan::parse(&expr).map_err(|e| ApiError::bad_data(e.to_string()))?;
    Ok(success(Value::String(parsed.prettify())))
}

/// Prometheus release whose HTTP API and PromQL semantics the collector reproduces
/// (what the differential test compares against). Grafana reads it to pick features.
const PROMETHEUS_COMPATIBLE_VERSION: &str = "2.42.0";

/// `GET /api/v1/status/buildinfo`: Prometheus' fields, `version` being the Prometheus
/// release we are compatible with; our own version is in `sightlineVersion`.
pub async fn buildinfo(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    tenant(&state, &headers)?;
    Ok(success(json!({
        "version": PROMETHEUS_COMPATIBLE_VERSION,
        "revision": "",
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
        "application": "sightline-collector",
        "sightlineVersion": env!("CARGO_PKG_VERSION"),
    })))
}
