//! Loki read API subset: `GET /loki/api/v1/query_range` with a stream selector.
//!
//! Data flow: the selector (`{service_name="api"}`) is parsed into matchers on the
//! stream labels that `translate::log_stream_labels` derives from each record's
//! resource; records are read from the store in bounded pages, filtered, grouped
//! into streams and returned in Loki's JSON (`resultType: streams`). `backward`
//! (the default) returns the newest `limit` entries, scanning windows that grow
//! from `end` toward `start`; `forward` the oldest.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::{header, HeaderMap, StatusCode};
use serde_json::{json, Value};
use sightline_store::{Labels, LogRecord, Matcher};

use super::params::{parse_loki_time_ns, Params};
use super::selector::parse_selector;
use crate::receiver::tenant_from_headers;
use crate::state::AppState;
use crate::translate::log_stream_labels;

/// Records fetched from the store per page.
const PAGE: usize = 5_000;
/// Largest `limit` a query may ask for.
const MAX_LIMIT: usize = 50_000;
/// Default range when `start` is absent: one hour before `end`.
const DEFAULT_RANGE_NS: i64 = 3_600 * 1_000_000_000;
/// First backward window.
const FIRST_WINDOW_NS: i64 = 60 * 1_000_000_000;

fn text(status: StatusCode, msg: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        msg + "\n",
    )
        .into_response()
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Direction {
    Forward,
    Backward,
}

/// `GET /loki/api/v1/query_range`.
pub async fn query_range(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    let tenant = match tenant_from_headers(&state, &headers) {
        Ok(t) => t,
        Err((status, e)) => return text(status, e.to_string()),
    };
    match run(&state, &tenant, &params) {
        Ok(v) => Json(v).into_response(),
        Err((status, msg)) => text(status, msg),
    }
}

fn run(state: &AppState, tenant: &str, params: &Params) -> Result<Value, (StatusCode, String)> {
    let bad = |m: String| (StatusCode::BAD_REQUEST, m);
    let query = params
        .get("query")
        .ok_or_else(|| bad("missing parameter \"query\"".into()))?;
    let sets = parse_selector(query).map_err(|e| {
        bad(format!(
            "only stream selectors such as {{service_name=\"api\"}} are supported: {e}"
        ))
    })?;
    let time = |name: &str, default: i64| -> Result<i64, (StatusCode, String)> {
        match params.get(name) {
            None => Ok(default),
            Some(v) => parse_loki_time_ns(v).ok_or_else(|| {
                bad(format!(
                    "invalid parameter \"{name}\": cannot parse {v:?} as a timestamp"
                ))
            }),
        }
    };
    let now_ns = state.clock.now_ms().saturating_mul(1_000_000);
    let end = time("end", now_ns)?;
    let start = time("start", end.saturating_sub(DEFAULT_RANGE_NS))?;
    if end < start {
        return Err(bad("end timestamp must not be before start time".into()));
    }
    let limit = match params.get("limit") {
        None => 100,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| bad(format!("invalid parameter \"limit\": {v:?}")))?,
    };
    if limit == 0 || limit > MAX_LIMIT {
        return Err(bad(format!("limit must be between 1 and {MAX_LIMIT}")));
    }
    let direction = match params
        .get("direction")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("backward") => Direction::Backward,
        Some("forward") => Direction::Forward,
        Some(other) => {
            return Err(bad(format!(
                "invalid parameter \"direction\": {other:?} (use forward or backward)"
            )))
        }
    };
    let store_err = |e: sightline_store::Error| {
        let status = if e.is_retryable() {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        (status, e.to_string())
    };
    let matches = |r: &LogRecord| -> Option<Labels> {
        let labels = log_stream_labels(&r.resource);
        sets.iter()
            .any(|set: &Vec<Matcher>| set.iter().all(|m| m.matches(&labels)))
            .then_some(labels)
    };
    let entries: Vec<(Labels, LogRecord)> = match direction {
        Direction::Forward => {
            let mut out = Vec::new();
            scan(state, tenant, start, end, |r| {
                if let Some(l) = matches(&r) {
                    out.push((l, r));
                }
                out.len() < limit
            })
            .map_err(store_err)?;
            out
        }
        Direction::Backward => {
            // newest `limit` entries: scan growing windows back from `end`, keeping
            // the newest entries of each window (the window after is newer still)
            let mut out: VecDeque<(Labels, LogRecord)> = VecDeque::new();
            let mut hi = end;
            let mut width = FIRST_WINDOW_NS;
            loop {
                let lo = hi.saturating_sub(width - 1).max(start);
                let mut window: VecDeque<(Labels, LogRecord)> = VecDeque::new();
                let need = limit - out.len();
                scan(state, tenant, lo, hi, |r| {
                    if let Some(l) = matches(&r) {
                        window.push_back((l, r));
                        if window.len() > need {
                            window.pop_front();
                        }
                    }
                    true
                })
                .map_err(store_err)?;
                for e in window.into_iter().rev() {
                    out.push_front(e);
                }
                if out.len() >= limit || lo <= start {
                    break;
                }
                hi = lo - 1;
                width = width.saturating_mul(4);
            }
            out.into_iter().collect()
        }
    };
    Ok(render(entries, direction))
}

/// Feeds every record in `[start, end]` to `f`, oldest first, in pages; stops when
/// `f` returns false.
fn scan(
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
        let page = state.store.select_logs(tenant, from, end, PAGE)?;
        let full = page.len() >= PAGE;
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

fn render(entries: Vec<(Labels, LogRecord)>, direction: Direction) -> Value {
    let mut streams: BTreeMap<Labels, Vec<(i64, String)>> = BTreeMap::new();
    for (labels, r) in entries {
        streams
            .entry(labels)
            .or_default()
            .push((r.timestamp_ns, r.body));
    }
    let result: Vec<Value> = streams
        .into_iter()
        .map(|(labels, mut values)| {
            values.sort_by_key(|(t, _)| *t);
            if direction == Direction::Backward {
                values.reverse();
            }
            let stream: serde_json::Map<String, Value> = labels
                .iter()
                .map(|l| (l.name.clone(), Value::String(l.value.clone())))
                .collect();
            let values: Vec<Value> = values
                .into_iter()
                .map(|(t, line)| json!([t.to_string(), line]))
                .collect();
            json!({"stream": stream, "values": values})
        })
        .collect();
    json!({
        "status": "success",
        "data": {"resultType": "streams", "result": result, "stats": {}},
    })
}
