//! Prometheus HTTP API subset: `/api/v1/series`, `/api/v1/labels`,
//! `/api/v1/label/<name>/values`, `/api/v1/query` and `/api/v1/query_range` for
//! plain vector selectors.
//!
//! Data flow: parameters (GET query or POST form) → tenant → selectors parsed into
//! store matchers → store selects → JSON in Prometheus' format. An instant query at
//! `t` returns each series' latest sample in `(t-5m, t]`, skipping stale markers; a
//! range query evaluates that at `start, start+step, ..., end`.

use std::sync::Arc;

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

/// One tenant's data in the store, as the PromQL engine sees it.
struct TenantData {
    store: Arc<Store>,
    tenant: String,
}

impl Queryable for TenantData {
    fn select(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> sightline_promql::Result<Vec<Series>> {
        self.store
            .select_series(&self.tenant, matchers, start_ms, end_ms)
            .map_err(|e| sightline_promql::Error::Storage(e.to_string()))
    }
}

fn query_expr(params: &Params) -> Result<String, ApiError> {
    params
        .get("query")
        .map(str::to_string)
        .ok_or_else(|| ApiError::bad_data("missing parameter \"query\""))
}

/// Runs a PromQL evaluation off the async workers (the store reads files) and
/// answers in Prometheus' JSON shape, errors with Prometheus' errorType and status.
async fn evaluate<F>(state: &AppState, tenant: String, run: F) -> Result<Response, ApiError>
where
    F: FnOnce(&dyn Queryable) -> sightline_promql::Result<QueryResult> + Send + 'static,
{
    let data = TenantData {
        store: state.store.clone(),
        tenant,
    };
    let result = tokio::task::spawn_blocking(move || run(&data))
        .await
        .map_err(|e| ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error_type: "internal",
            message: format!("query task failed: {e}"),
        })?;
    match result {
        Ok(r) => Ok(success(r.to_prometheus_json())),
        Err(e) => {
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
    evaluate(&state, tenant, move |q| {
        sightline_promql::instant_query(q, &expr, t, &QueryOptions::default())
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
    evaluate(&state, tenant, move |q| {
        sightline_promql::range_query(q, &expr, start, end, step, &QueryOptions::default())
    })
    .await
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
