//! Loki HTTP API subset on the HTTP listener, so Grafana's stock Loki data source
//! works against the collector: `query_range`, `query`, `labels`,
//! `label/<name>/values`, `series`, `index/stats` and `status/buildinfo` under
//! `/loki/api/v1/`
//! (GET, and POST with a form body).
//!
//! Data flow: parameters are parsed as Loki does (times in ns, float seconds or
//! RFC 3339; `step` as a duration or float seconds), the query by
//! [`crate::logql::parser`]; the work runs on a blocking thread, reading the
//! tenant's records through a [`LogSource`] over `Store::select_logs` (time
//! windows, paged) and evaluating with [`crate::logql::query`]. Answers use Loki's
//! JSON; errors are Loki's plain-text bodies (400 for bad queries and exceeded
//! limits). Each answer counts in
//! `sightline_collector_loki_queries_total{endpoint,outcome}`.
//!
//! Labels: a stream's labels are the indexed resource attributes
//! (`translate::log_stream_labels`). The mined pattern id (record attribute
//! `sightline.log.pattern`) and `detected_level` (from the OTLP severity) are
//! structured metadata: with Grafana's `X-Loki-Response-Encoding-Flags:
//! categorize-labels` they are returned per entry under `structuredMetadata`
//! (parser output under `parsed`), otherwise merged into the stream labels, as
//! Loki 3 does.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::{header, HeaderMap, StatusCode};
use serde_json::{json, Map, Value};
use sightline_store::{LogRecord, Matcher};

use super::params::{parse_duration_ms, parse_loki_time_ns, Params};
use crate::logql::ast::Expr;
use crate::logql::metric::{Series, Steps, Value as MetricValue};
use crate::logql::parser::{parse, parse_selector};
use crate::logql::pipeline::Category;
use crate::logql::query::{self, Direction, Entry, Limits, LogSource};
use crate::logql::Error as LogqlError;
use crate::receiver::tenant_from_headers;
use crate::state::AppState;

/// Records fetched from the store per page.
const PAGE: usize = 5_000;
/// Largest `limit` a query may ask for.
const MAX_LIMIT: usize = 50_000;
/// Default range of `query_range` when `start` is absent: one hour before `end`.
const DEFAULT_RANGE_NS: i64 = 3_600 * 1_000_000_000;
/// Default range of `labels`, `series`, `index/stats`: six hours, as Loki.
const DEFAULT_META_RANGE_NS: i64 = 6 * 3_600 * 1_000_000_000;
/// Most points per series of a range query (Loki's limit).
const MAX_POINTS: i64 = 11_000;
const NS_PER_S: i64 = 1_000_000_000;

/// A failed request: status, Loki's plain-text message and the counter outcome.
struct Failure {
    status: StatusCode,
    msg: String,
    outcome: &'static str,
}

fn bad(msg: impl Into<String>) -> Failure {
    Failure {
        status: StatusCode::BAD_REQUEST,
        msg: msg.into(),
        outcome: "bad_request",
    }
}

impl From<LogqlError> for Failure {
    fn from(e: LogqlError) -> Self {
        match e {
            LogqlError::Limit(m) => Failure {
                status: StatusCode::BAD_REQUEST,
                msg: m,
                outcome: "limit",
            },
            LogqlError::Store(e) => {
                let status = if e.is_retryable() {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::INTERNAL_SERVER_ERROR
                };
                Failure {
                    status,
                    msg: e.to_string(),
                    outcome: "error",
                }
            }
            e => bad(e.to_string()),
        }
    }
}

fn text(status: StatusCode, msg: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        msg + "\n",
    )
        .into_response()
}

/// What a handler needs on its blocking thread.
struct Request {
    state: Arc<AppState>,
    tenant: String,
    params: Params,
    categorize: bool,
    label: Option<String>,
}

type Handler = fn(&Request) -> Result<Value, Failure>;

/// Authenticates, runs `f` on a blocking thread, counts and renders the answer.
async fn serve(
    endpoint: &'static str,
    state: Arc<AppState>,
    headers: HeaderMap,
    params: Params,
    label: Option<String>,
    f: Handler,
) -> Response {
    let tenant = match tenant_from_headers(&state, &headers) {
        Ok(t) => t,
        Err((status, e)) => {
            state.metrics.loki_query(endpoint, "unauthorized");
            return text(status, e.to_string());
        }
    };
    let categorize = headers
        .get_all("x-loki-response-encoding-flags")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|f| f.trim() == "categorize-labels"));
    let req = Request {
        state: state.clone(),
        tenant,
        params,
        categorize,
        label,
    };
    let result = tokio::task::spawn_blocking(move || f(&req))
        .await
        .unwrap_or_else(|e| {
            Err(Failure {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                msg: format!("query task failed: {e}"),
                outcome: "error",
            })
        });
    match result {
        Ok(v) => {
            state.metrics.loki_query(endpoint, "success");
            Json(v).into_response()
        }
        Err(f) => {
            state.metrics.loki_query(endpoint, f.outcome);
            if f.status.is_server_error() {
                tracing::warn!(endpoint, error = %f.msg, "loki query failed");
            } else {
                tracing::debug!(endpoint, error = %f.msg, "loki query rejected");
            }
            text(f.status, f.msg)
        }
    }
}

/// `GET /loki/api/v1/status/buildinfo`: the Loki version whose API this subset
/// follows (Grafana reads it to pick features).
pub async fn buildinfo() -> Json<Value> {
    Json(json!({
        "version": "3.0.0",
        "revision": "sightline",
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": "",
    }))
}

/// `GET|POST /loki/api/v1/query_range`.
pub async fn query_range(State(s): State<Arc<AppState>>, h: HeaderMap, p: Params) -> Response {
    serve("query_range", s, h, p, None, run_query_range).await
}

/// `GET|POST /loki/api/v1/query` (instant).
pub async fn query(State(s): State<Arc<AppState>>, h: HeaderMap, p: Params) -> Response {
    serve("query", s, h, p, None, run_query).await
}

/// `GET|POST /loki/api/v1/labels`.
pub async fn labels(State(s): State<Arc<AppState>>, h: HeaderMap, p: Params) -> Response {
    serve("labels", s, h, p, None, run_labels).await
}

/// `GET|POST /loki/api/v1/label/<name>/values`.
pub async fn label_values(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    h: HeaderMap,
    p: Params,
) -> Response {
    serve("label_values", s, h, p, Some(name), run_labels).await
}

/// `GET|POST /loki/api/v1/series`.
pub async fn series(State(s): State<Arc<AppState>>, h: HeaderMap, p: Params) -> Response {
    serve("series", s, h, p, None, run_series).await
}

/// `GET|POST /loki/api/v1/index/stats`.
pub async fn index_stats(State(s): State<Arc<AppState>>, h: HeaderMap, p: Params) -> Response {
    serve("index_stats", s, h, p, None, run_index_stats).await
}

impl Request {
    fn now_ns(&self) -> i64 {
        self.state.clock.now_ms().saturating_mul(1_000_000)
    }

    fn time(&self, name: &str, default: i64) -> Result<i64, Failure> {
        match self.params.get(name) {
            None => Ok(default),
            Some(v) => loki_time_ns(v).ok_or_else(|| {
                bad(format!(
                    "invalid parameter \"{name}\": cannot parse {v:?} as a timestamp"
                ))
            }),
        }
    }

    /// `start` / `end` with `default_range` before `end` when `start` is absent.
    fn range(&self, default_range: i64) -> Result<(i64, i64), Failure> {
        let end = self.time("end", self.now_ns())?;
        let start = self.time("start", end.saturating_sub(default_range))?;
        if end < start {
            return Err(bad(
                "end timestamp must not be before or equal to start time",
            ));
        }
        Ok((start, end))
    }

    fn query(&self) -> Result<Expr, Failure> {
        let q = self
            .params
            .get("query")
            .ok_or_else(|| bad("missing parameter \"query\""))?;
        Ok(parse(q)?)
    }

    fn limit(&self) -> Result<usize, Failure> {
        let limit = match self.params.get("limit") {
            None => 100,
            Some(v) => v
                .parse::<usize>()
                .map_err(|_| bad(format!("invalid parameter \"limit\": {v:?}")))?,
        };
        if limit > MAX_LIMIT {
            return Err(Failure {
                status: StatusCode::BAD_REQUEST,
                msg: format!(
                    "max entries limit per query exceeded, limit > max_entries_limit_per_query \
                     ({limit} > {MAX_LIMIT})"
                ),
                outcome: "limit",
            });
        }
        Ok(limit)
    }

    fn direction(&self) -> Result<Direction, Failure> {
        match self
            .params
            .get("direction")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("backward") => Ok(Direction::Backward),
            Some("forward") => Ok(Direction::Forward),
            Some(other) => Err(bad(format!(
                "invalid parameter \"direction\": {other:?} (use forward or backward)"
            ))),
        }
    }

    /// Selectors of `match[]` (repeatable) or `query`, as `/series` and `/labels` take.
    fn selectors(&self, names: &[&str]) -> Result<Vec<Vec<Matcher>>, Failure> {
        let mut out = Vec::new();
        for n in names {
            for q in self.params.all(n) {
                if !q.trim().is_empty() {
                    out.push(parse_selector(q)?);
                }
            }
        }
        Ok(out)
    }

    fn source(&self) -> StoreSource<'_> {
        StoreSource {
            state: &self.state,
            tenant: &self.tenant,
        }
    }
}

fn run_query_range(req: &Request) -> Result<Value, Failure> {
    let expr = req.query()?;
    let (start, end) = req.range(DEFAULT_RANGE_NS)?;
    let limits = Limits::default();
    match expr {
        Expr::Log(log) => {
            let limit = req.limit()?;
            let direction = req.direction()?;
            // Loki's end is exclusive for log queries
            let last = if end > start { end - 1 } else { end };
            let entries =
                query::select_entries(&req.source(), &log, start, last, limit, direction, limits)?;
            Ok(render_streams(entries, direction, req.categorize))
        }
        Expr::Metric(m) => {
            let step = match req.params.get("step") {
                Some(v) => parse_step_ns(v)?,
                // Loki's default: range / 250, at least one second, whole seconds
                None => ((end - start) / NS_PER_S / 250).max(1) * NS_PER_S,
            };
            if (end - start) / step > MAX_POINTS {
                return Err(bad(format!(
                    "exceeded maximum resolution of {MAX_POINTS} points per timeseries. Try \
                     increasing the value of the step parameter"
                )));
            }
            let steps = Steps { start, end, step };
            let v = query::eval_metric(&req.source(), &m, steps, limits)?;
            Ok(render_metric(v, steps, true))
        }
    }
}

fn run_query(req: &Request) -> Result<Value, Failure> {
    let expr = req.query()?;
    let time = req.time("time", req.now_ns())?;
    match expr {
        Expr::Log(_) => Err(bad(
            "log queries are not supported as an instant query type, please change your query \
             to a range query type",
        )),
        Expr::Metric(m) => {
            let steps = Steps {
                start: time,
                end: time,
                step: NS_PER_S,
            };
            let v = query::eval_metric(&req.source(), &m, steps, Limits::default())?;
            Ok(render_metric(v, steps, false))
        }
    }
}

/// Loki's `parseTimestamp`: an integer of at most 10 digits is seconds, a longer one
/// nanoseconds; otherwise float seconds or RFC 3339.
fn loki_time_ns(v: &str) -> Option<i64> {
    let t = v.trim();
    let digits = t.strip_prefix('-').unwrap_or(t);
    if !digits.is_empty() && digits.len() <= 10 && digits.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse::<i64>().ok()?.checked_mul(NS_PER_S);
    }
    parse_loki_time_ns(t)
}

fn parse_step_ns(v: &str) -> Result<i64, Failure> {
    let ns = match v.trim().parse::<f64>() {
        Ok(secs) if secs.is_finite() => (secs * 1e9) as i64,
        _ => parse_duration_ms(v)
            .map(|ms| ms.saturating_mul(1_000_000))
            .ok_or_else(|| bad(format!("invalid parameter \"step\": cannot parse {v:?}")))?,
    };
    if ns <= 0 {
        return Err(bad(
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    Ok(ns)
}

fn run_labels(req: &Request) -> Result<Value, Failure> {
    let (start, end) = req.range(DEFAULT_META_RANGE_NS)?;
    let selectors = req.selectors(&["query"])?;
    let streams = query::streams(&req.source(), &selectors, start, end, Limits::default())?;
    let mut out = BTreeSet::new();
    for labels in streams.keys() {
        for (k, v) in labels {
            match &req.label {
                None => out.insert(k.clone()),
                Some(name) if name == k => out.insert(v.clone()),
                Some(_) => false,
            };
        }
    }
    Ok(json!({"status": "success", "data": out.into_iter().collect::<Vec<_>>()}))
}

fn run_series(req: &Request) -> Result<Value, Failure> {
    let (start, end) = req.range(DEFAULT_META_RANGE_NS)?;
    let selectors = req.selectors(&["match[]", "match"])?;
    let streams = query::streams(&req.source(), &selectors, start, end, Limits::default())?;
    let data: Vec<Value> = streams.keys().map(|l| labels_json(l)).collect();
    Ok(json!({"status": "success", "data": data}))
}

fn run_index_stats(req: &Request) -> Result<Value, Failure> {
    let (start, end) = req.range(DEFAULT_META_RANGE_NS)?;
    let q = req
        .params
        .get("query")
        .ok_or_else(|| bad("missing parameter \"query\""))?;
    // Grafana sends the whole query; the stream selector is what counts
    let matchers = match parse(q)? {
        Expr::Log(l) => l.matchers,
        Expr::Metric(_) => parse_selector(q)?,
    };
    let streams = query::streams(&req.source(), &[matchers], start, end, Limits::default())?;
    let (entries, bytes) = streams
        .values()
        .fold((0, 0), |(e, b), s| (e + s.entries, b + s.bytes));
    Ok(json!({
        "streams": streams.len(),
        "chunks": streams.len(),
        "entries": entries,
        "bytes": bytes,
    }))
}

fn labels_json(labels: &[(String, String)]) -> Value {
    Value::Object(
        labels
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

fn str_map<'a>(it: impl Iterator<Item = (&'a str, &'a str)>) -> Map<String, Value> {
    it.map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect()
}

/// Loki `streams` JSON; entries arrive oldest first.
fn render_streams(entries: Vec<Entry>, direction: Direction, categorize: bool) -> Value {
    type Key = Vec<(String, String)>;
    let mut streams: BTreeMap<Key, Vec<Value>> = BTreeMap::new();
    for e in entries {
        let (key, value) = if categorize {
            let key: Key = e
                .labels
                .of(Category::Stream)
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let mut extra = Map::new();
            let meta = str_map(e.labels.of(Category::Meta));
            if !meta.is_empty() {
                extra.insert("structuredMetadata".into(), Value::Object(meta));
            }
            let parsed = str_map(e.labels.of(Category::Parsed));
            if !parsed.is_empty() {
                extra.insert("parsed".into(), Value::Object(parsed));
            }
            let value = if extra.is_empty() {
                json!([e.ts.to_string(), e.line])
            } else {
                json!([e.ts.to_string(), e.line, extra])
            };
            (key, value)
        } else {
            (e.labels.to_pairs(), json!([e.ts.to_string(), e.line]))
        };
        streams.entry(key).or_default().push(value);
    }
    let result: Vec<Value> = streams
        .into_iter()
        .map(|(labels, mut values)| {
            if direction == Direction::Backward {
                values.reverse();
            }
            json!({"stream": labels_json(&labels), "values": values})
        })
        .collect();
    let mut data = json!({"resultType": "streams", "result": result, "stats": {}});
    if categorize {
        data["encodingFlags"] = json!(["categorize-labels"]);
    }
    json!({"status": "success", "data": data})
}

/// A sample value as Prometheus/Loki print it.
fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        (if v > 0.0 { "+Inf" } else { "-Inf" }).into()
    } else {
        format!("{v}")
    }
}

/// A timestamp as float seconds (an integer when whole, as Prometheus prints it).
fn format_ts(ns: i64) -> Value {
    if ns % NS_PER_S == 0 {
        json!(ns / NS_PER_S)
    } else {
        json!(ns as f64 / 1e9)
    }
}

fn series_labels(s: &Series) -> Value {
    labels_json(&s.labels)
}

/// `matrix` (range) or `vector`/`scalar` (instant) JSON.
fn render_metric(v: MetricValue, steps: Steps, range: bool) -> Value {
    let data = match (v, range) {
        (MetricValue::Scalar(x), false) => {
            json!({"resultType": "scalar", "result": [format_ts(steps.start), format_value(x)]})
        }
        (MetricValue::Scalar(x), true) => {
            let values: Vec<Value> = steps
                .times()
                .map(|t| json!([format_ts(t), format_value(x)]))
                .collect();
            json!({"resultType": "matrix", "result": [{"metric": {}, "values": values}]})
        }
        (MetricValue::Vector(mut series), true) => {
            series.sort_by(|a, b| a.labels.cmp(&b.labels));
            let result: Vec<Value> = series
                .iter()
                .map(|s| {
                    let values: Vec<Value> = s
                        .points
                        .iter()
                        .map(|(t, x)| json!([format_ts(*t), format_value(*x)]))
                        .collect();
                    json!({"metric": series_labels(s), "values": values})
                })
                .collect();
            json!({"resultType": "matrix", "result": result})
        }
        (MetricValue::Vector(mut series), false) => {
            series.sort_by(|a, b| a.labels.cmp(&b.labels));
            let result: Vec<Value> = series
                .iter()
                .filter_map(|s| {
                    let (t, x) = s.points.last()?;
                    Some(json!({"metric": series_labels(s), "value": [format_ts(*t), format_value(*x)]}))
                })
                .collect();
            json!({"resultType": "vector", "result": result})
        }
    };
    let mut data = data;
    data["stats"] = json!({});
    json!({"status": "success", "data": data})
}

/// The tenant's records in the store, read in time windows of adaptive width
/// (each window paged), so a long range never loads at once.
struct StoreSource<'a> {
    state: &'a AppState,
    tenant: &'a str,
}

/// First window width of a forward scan.
const FIRST_SCAN_WINDOW_NS: i64 = 5 * 60 * NS_PER_S;

impl LogSource for StoreSource<'_> {
    fn scan(
        &self,
        start: i64,
        end: i64,
        f: &mut dyn FnMut(LogRecord) -> bool,
    ) -> crate::logql::Result<()> {
        let mut lo = start;
        let mut width = FIRST_SCAN_WINDOW_NS;
        while lo <= end {
            let hi = lo.saturating_add(width - 1).min(end);
            let mut n = 0usize;
            let mut stopped = false;
            scan_pages(self.state, self.tenant, lo, hi, |r| {
                n += 1;
                let go = f(r);
                stopped = !go;
                go
            })?;
            if stopped || hi >= end {
                return Ok(());
            }
            lo = hi + 1;
            if n < PAGE / 2 {
                width = width.saturating_mul(2);
            } else if n > PAGE && width > NS_PER_S {
                width /= 2;
            }
        }
        Ok(())
    }
}

/// Feeds every record in `[start, end]` to `f`, oldest first, in pages; stops when
/// `f` returns false.
fn scan_pages(
    state: &AppState,
    tenant: &str,
    start: i64,
    end: i64,
    mut f: impl FnMut(LogRecord) -> bool,
) -> Result<(), sightline_store::Error> {
    let mut from = start;
    // records at `from` already delivered by the previous page
    let mut skip_at_from = 0usize;
    loop {
        // asking for the skipped records too keeps a page of one timestamp moving
        let want = PAGE + skip_at_from;
        let page = state.store.select_logs(tenant, from, end, want)?;
        let full = page.len() >= want;
        let last_ts = page.last().map(|r| r.timestamp_ns);
        let mut delivered_at_last = 0usize;
        let mut skipped = 0usize;
        for r in page {
            if r.timestamp_ns == from && skipped < skip_at_from {
                skipped += 1;
                continue;
            }
            if Some(r.timestamp_ns) == last_ts {
                delivered_at_last += 1;
            }
            if !f(r) {
                return Ok(());
            }
        }
        match last_ts {
            Some(ts) if full => {
                if ts == from {
                    skip_at_from += delivered_at_last;
                } else {
                    from = ts;
                    skip_at_from = delivered_at_last;
                }
            }
            _ => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loki_times() {
        assert_eq!(loki_time_ns("1700000000"), Some(1_700_000_000 * NS_PER_S));
        assert_eq!(
            loki_time_ns("1700000000000000001"),
            Some(1_700_000_000_000_000_001)
        );
        assert_eq!(
            loki_time_ns("1700000000.5"),
            Some(1_700_000_000_500_000_000)
        );
        assert_eq!(
            loki_time_ns("2023-11-14T22:13:20Z"),
            Some(1_700_000_000 * NS_PER_S)
        );
        assert_eq!(loki_time_ns("soon"), None);
        assert_eq!(parse_step_ns("15s").ok(), Some(15 * NS_PER_S));
        assert_eq!(parse_step_ns("0.5").ok(), Some(NS_PER_S / 2));
        assert!(parse_step_ns("0").is_err());
        assert!(parse_step_ns("x").is_err());
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(0.25), "0.25");
        assert_eq!(format_ts(1_500_000_000), json!(1.5));
        assert_eq!(format_ts(2 * NS_PER_S), json!(2));
    }
}
