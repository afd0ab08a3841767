//! `GET /api/search`: Tempo's trace search.
//!
//! Data flow: parameters (`q` TraceQL subset, or `tags` logfmt + `minDuration` /
//! `maxDuration`; `limit` default 20; `spss` spans per span set, default 3;
//! `start`/`end` unix seconds, default the last hour) → [`scan`] reads the tenant's
//! spans in the range off the async workers (newest first, at most
//! `query.max_search_spans`) → spans are grouped by trace, each trace's root, start
//! and duration worked out → a trace matches when one of its spans satisfies the
//! filter (and its duration the bounds) → newest traces first, cut at `limit` →
//! Tempo's JSON: `{"traces":[{traceID, rootServiceName, rootTraceName,
//! startTimeUnixNano, durationMs, spanSet, spanSets}], "metrics":{inspectedTraces,
//! inspectedBytes}}`. A truncated scan still answers (Tempo also returns the first
//! results it finds) and counts `sightline_collector_query_limit_hits_total{limit="search_spans"}`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::{HeaderMap, StatusCode};
use serde_json::{json, Value};
use sightline_store::{SpanRecord, SpanScan};

use super::traceql::{self, attr, Cond, Scope, TraceFacts};
use super::{any_value, text};
use crate::api::params::Params;
use crate::receiver::tenant_from_headers;
use crate::state::AppState;

/// Default `limit` of a search (Tempo's default).
const DEFAULT_LIMIT: usize = 20;
/// Default spans per span set (`spss`).
const DEFAULT_SPSS: usize = 3;
/// Default search window when no `start` is given.
const DEFAULT_WINDOW_NS: i64 = 3_600 * 1_000_000_000;

/// A request error: answered as plain text with this status.
pub(super) type Reject = (StatusCode, String);

pub(super) fn bad(msg: impl Into<String>) -> Reject {
    (StatusCode::BAD_REQUEST, msg.into())
}

/// `start`/`end` in unix seconds (integer or float), as nanoseconds; defaults are
/// the last hour before `now_ms`.
pub(super) fn time_range(params: &Params, now_ms: i64) -> Result<(i64, i64), Reject> {
    let secs = |name: &str| -> Result<Option<i64>, Reject> {
        match params.get(name) {
            None => Ok(None),
            Some(v) => match v.trim().parse::<f64>() {
                Ok(f) if (0.0..9.2e9).contains(&f) => Ok(Some((f * 1e9) as i64)),
                _ => Err(bad(format!(
                    "invalid {name} {v:?}: expected unix epoch seconds"
                ))),
            },
        }
    };
    let end = secs("end")?.unwrap_or(now_ms.saturating_mul(1_000_000));
    let start = secs("start")?.unwrap_or(end.saturating_sub(DEFAULT_WINDOW_NS));
    if end < start {
        return Err(bad("invalid time range: end is before start"));
    }
    Ok((start, end))
}

/// A positive integer parameter, `default` when absent or 0.
pub(super) fn count_param(params: &Params, name: &str, default: usize) -> Result<usize, Reject> {
    match params.get(name) {
        None => Ok(default),
        Some(v) => match v.trim().parse::<usize>() {
            Ok(0) => Ok(default),
            Ok(n) => Ok(n),
            Err(_) => Err(bad(format!(
                "invalid {name} {v:?}: expected a non-negative integer"
            ))),
        },
    }
}

/// Scans the tenant's spans in `[start, end]` off the async workers; counts a hit of
/// the scan cap.
pub(super) async fn scan(
    state: &Arc<AppState>,
    tenant: String,
    start: i64,
    end: i64,
) -> Result<SpanScan, Reject> {
    let store = state.store.clone();
    let cap = state.query.max_search_spans;
    let scanned = tokio::task::spawn_blocking(move || store.scan_spans(&tenant, start, end, cap))
        .await
        .map_err(|e| {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("search task failed: {e}"),
            )
        })?
        .map_err(|e| {
            let status = if e.is_retryable() {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            (status, e.to_string())
        })?;
    if scanned.truncated {
        state.metrics.query_limit_hit("search_spans");
        tracing::debug!(cap, "trace search stopped at query.max_search_spans");
    }
    Ok(scanned)
}

/// One trace's spans and what search needs to know about it.
pub(super) struct TraceGroup {
    pub trace_id: Vec<u8>,
    pub spans: Vec<SpanRecord>,
    pub facts: TraceFacts,
    pub start_ns: i64,
    pub root_service: String,
    pub root_name: String,
}

/// Groups spans by trace and works out each trace's root, start and duration.
pub(super) fn group(spans: Vec<SpanRecord>) -> Vec<TraceGroup> {
    let mut by_trace: HashMap<Vec<u8>, Vec<SpanRecord>> = HashMap::new();
    for s in spans {
        by_trace.entry(s.trace_id.clone()).or_default().push(s);
    }
    by_trace
        .into_iter()
        .map(|(trace_id, spans)| {
            let start = spans.iter().map(|s| s.start_time_ns).min().unwrap_or(0);
            let end = spans.iter().map(|s| s.end_time_ns).max().unwrap_or(start);
            let root = spans
                .iter()
                .filter(|s| s.parent_span_id.is_empty())
                .min_by_key(|s| s.start_time_ns);
            let root_service = root.and_then(|r| match attr(r, Scope::Resource, "service.name") {
                Some(Value::String(s)) => Some(s.clone()),
                _ => None,
            });
            let root_name = root.map(|r| r.name.clone());
            let facts = TraceFacts {
                root_name: root_name.clone(),
                root_service: root_service.clone(),
                duration_ns: end.saturating_sub(start),
            };
            TraceGroup {
                trace_id,
                start_ns: start,
                // what Tempo shows while the root span is missing
                root_service: root_service.unwrap_or_else(|| "<root span not yet received>".into()),
                root_name: root_name.unwrap_or_default(),
                facts,
                spans,
            }
        })
        .collect()
}

/// The filter of a search request.
enum Filter {
    TraceQl(Cond),
    /// `tags` pairs (all must match one span, case-insensitive substring).
    Tags(Vec<(String, String)>),
}

/// Parses Tempo's `tags` parameter: logfmt `k=v k2="v 2"`.
pub(super) fn parse_logfmt(s: &str) -> Result<Vec<(String, String)>, Reject> {
    let mut out = Vec::new();
    let mut rest = s.trim_start();
    while !rest.is_empty() {
        let eq = rest
            .find(|c: char| c == '=' || c.is_whitespace())
            .filter(|&i| rest.as_bytes()[i] == b'=')
            .ok_or_else(|| bad(format!("invalid tags {s:?}: expected key=value pairs")))?;
        let key = rest[..eq].to_string();
        if key.is_empty() {
            return Err(bad(format!("invalid tags {s:?}: empty key")));
        }
        rest = &rest[eq + 1..];
        let value;
        if let Some(q) = rest.strip_prefix('"') {
            let close = q
                .find('"')
                .ok_or_else(|| bad(format!("invalid tags {s:?}: unterminated quote")))?;
            value = q[..close].to_string();
            rest = &q[close + 1..];
        } else {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            value = rest[..end].to_string();
            rest = &rest[end..];
        }
        out.push((key, value));
        rest = rest.trim_start();
    }
    Ok(out)
}

/// A stored attribute value as the text tag search and tag values show.
pub(super) fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn tag_matches(span: &SpanRecord, key: &str, want: &str) -> bool {
    let want = want.to_lowercase();
    let has = |v: &str| v.to_lowercase().contains(&want);
    match key {
        "name" => has(&span.name),
        "status.code" => has(traceql::status_word(span.status_code)),
        "error" => (span.status_code == 2).to_string() == want,
        _ => attr(span, Scope::Any, key).is_some_and(|v| has(&value_text(v))),
    }
}

/// `GET /api/search`.
pub async fn search(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    match run(&state, &headers, &params).await {
        Ok(v) => Json(v).into_response(),
        Err((status, msg)) => text(status, msg),
    }
}

async fn run(state: &Arc<AppState>, headers: &HeaderMap, params: &Params) -> Result<Value, Reject> {
    let tenant = tenant_from_headers(state, headers).map_err(|(s, e)| (s, e.to_string()))?;
    let (start, end) = time_range(params, state.clock.now_ms())?;
    let limit = count_param(params, "limit", DEFAULT_LIMIT)?;
    let spss = count_param(params, "spss", DEFAULT_SPSS)?;
    let duration = |name: &str| -> Result<Option<i64>, Reject> {
        params
            .get(name)
            .map(|v| {
                traceql::parse_go_duration_ns(v)
                    .filter(|d| *d >= 0)
                    .ok_or_else(|| {
                        bad(format!(
                            "invalid {name} {v:?}: expected a duration like 100ms or 1.5s"
                        ))
                    })
            })
            .transpose()
    };
    let min_ns = duration("minDuration")?;
    let max_ns = duration("maxDuration")?;
    if let (Some(a), Some(b)) = (min_ns, max_ns) {
        if b < a {
            return Err(bad("invalid maxDuration: smaller than minDuration"));
        }
    }
    let filter = match params.get("q") {
        Some(q) => Filter::TraceQl(
            traceql::parse(q).map_err(|e| bad(format!("invalid TraceQL query {q:?}: {e}")))?,
        ),
        None => Filter::Tags(match params.get("tags") {
            Some(t) => parse_logfmt(t)?,
            None => Vec::new(),
        }),
    };
    let scanned = scan(state, tenant, start, end).await?;
    let inspected_bytes = scanned.bytes_inspected;
    let groups = group(scanned.spans);
    let inspected_traces = groups.len();
    let shown_attrs = match &filter {
        Filter::TraceQl(c) => c.attributes(),
        Filter::Tags(_) => Vec::new(),
    };
    let mut hits: Vec<(TraceGroup, Vec<usize>)> = Vec::new();
    for g in groups {
        let d = g.facts.duration_ns;
        if min_ns.is_some_and(|m| d < m) || max_ns.is_some_and(|m| d > m) {
            continue;
        }
        let matched: Vec<usize> = match &filter {
            Filter::TraceQl(c) => (0..g.spans.len())
                .filter(|&i| c.matches(&g.spans[i], &g.facts))
                .collect(),
            Filter::Tags(tags) => g
                .spans
                .iter()
                .position(|s| tags.iter().all(|(k, v)| tag_matches(s, k, v)))
                .into_iter()
                .collect(),
        };
        if !matched.is_empty() {
            hits.push((g, matched));
        }
    }
    hits.sort_by_key(|h| std::cmp::Reverse(h.0.start_ns));
    hits.truncate(limit);
    let with_spansets = matches!(filter, Filter::TraceQl(_));
    let traces: Vec<Value> = hits
        .iter()
        .map(|(g, matched)| trace_json(g, matched, with_spansets, spss, &shown_attrs))
        .collect();
    Ok(json!({
        "traces": traces,
        "metrics": {
            "inspectedTraces": inspected_traces,
            "inspectedBytes": inspected_bytes.to_string(),
        },
    }))
}

fn trace_json(
    g: &TraceGroup,
    matched: &[usize],
    with_spansets: bool,
    spss: usize,
    shown: &[(Scope, String)],
) -> Value {
    let mut t = json!({
        "traceID": hex::encode(&g.trace_id),
        "rootServiceName": g.root_service,
        "rootTraceName": g.root_name,
        "startTimeUnixNano": g.start_ns.to_string(),
        "durationMs": g.facts.duration_ns / 1_000_000,
    });
    if with_spansets {
        let spans: Vec<Value> = matched
            .iter()
            .take(spss)
            .map(|&i| {
                let s = &g.spans[i];
                let attributes: Vec<Value> = shown
                    .iter()
                    .filter_map(|(scope, name)| {
                        attr(s, *scope, name).map(|v| json!({"key": name, "value": any_value(v)}))
                    })
                    .collect();
                json!({
                    "spanID": hex::encode(&s.span_id),
                    "name": s.name,
                    "startTimeUnixNano": s.start_time_ns.to_string(),
                    "durationNanos": s.end_time_ns.saturating_sub(s.start_time_ns).to_string(),
                    "attributes": attributes,
                })
            })
            .collect();
        let set = json!({"spans": spans, "matched": matched.len()});
        t["spanSet"] = set.clone();
        t["spanSets"] = json!([set]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logfmt_tags() {
        assert_eq!(
            parse_logfmt(r#"service.name=api  http.status_code=500 msg="a b""#).unwrap(),
            vec![
                ("service.name".to_string(), "api".to_string()),
                ("http.status_code".to_string(), "500".to_string()),
                ("msg".to_string(), "a b".to_string()),
            ]
        );
        assert!(parse_logfmt("").unwrap().is_empty());
        assert!(parse_logfmt("novalue").is_err());
        assert!(parse_logfmt("a=\"open").is_err());
        assert!(parse_logfmt("=x").is_err());
    }

    #[test]
    fn groups_find_root_and_duration() {
        let mk = |id: u8, parent: Option<u8>, start: i64, end: i64, svc: &str| SpanRecord {
            trace_id: vec![9; 16],
            span_id: vec![id; 8],
            parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
            trace_state: String::new(),
            name: format!("op{id}"),
            kind: 1,
            start_time_ns: start,
            end_time_ns: end,
            attributes: vec![],
            events: Value::Null,
            links: Value::Null,
            status_code: 0,
            status_message: String::new(),
            resource: vec![("service.name".into(), json!(svc))],
            scope_name: String::new(),
            scope_version: String::new(),
        };
        let g = group(vec![
            mk(2, Some(1), 10, 50, "db"),
            mk(1, None, 5, 40, "api"),
        ]);
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].root_service, "api");
        assert_eq!(g[0].root_name, "op1");
        assert_eq!(g[0].start_ns, 5);
        assert_eq!(g[0].facts.duration_ns, 45);
        let g = group(vec![mk(2, Some(1), 10, 50, "db")]);
        assert_eq!(g[0].root_service, "<root span not yet received>");
        assert!(tag_matches(
            &mk(2, Some(1), 0, 1, "Checkout"),
            "service.name",
            "check"
        ));
        assert!(tag_matches(&mk(2, Some(1), 0, 1, "x"), "name", "OP2"));
        assert!(!tag_matches(&mk(2, Some(1), 0, 1, "x"), "missing", "a"));
    }
}
