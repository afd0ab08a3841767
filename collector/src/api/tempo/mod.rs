//! Tempo read API subset, what Grafana's stock Tempo datasource calls:
//! `GET /api/traces/<id>` and `/api/v2/traces/<id>` (trace by id), `/api/search`
//! ([`search`]), `/api/search/tags`, `/api/v2/search/tags`,
//! `/api/search/tag/<tag>/values`, `/api/v2/search/tag/<tag>/values` ([`tags`]) and
//! `/api/echo`.
//!
//! Trace by id: the hex trace id (up to 32 digits, left-padded) selects the trace's
//! spans from the store (optionally only those starting in `start`..`end`, unix
//! seconds); they are grouped by resource and scope. With `Accept:
//! application/protobuf` (what Grafana's backend sends) the answer is protobuf: v1 a
//! `tempopb.Trace`, v2 a `tempopb.TraceByIDResponse` (`trace` = field 1), both
//! wire-identical to OTLP `TracesData` inside. Otherwise JSON: v1 Tempo's
//! `{"batches":[{resource, scopeSpans:[{scope, spans}]}]}`, v2
//! `{"trace":{"resourceSpans":[...]}}`, in OTLP JSON (hex ids, nanosecond timestamps
//! as strings, typed attribute values).

pub mod search;
pub mod tags;
pub mod traceql;

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::{header, HeaderMap, StatusCode};
use prost::Message;
use serde_json::{json, Value};
use sightline_proto::otlp::trace::v1::TracesData;
use sightline_store::{AttrValue, Attributes, SpanRecord};

use super::params::{Params, MAX_TIME_MS, MIN_TIME_MS};
use crate::receiver::tenant_from_headers;
use crate::state::AppState;

/// Content type of protobuf answers (what Grafana asks for in `Accept`).
const PROTOBUF: &str = "application/protobuf";

pub(crate) fn text(status: StatusCode, msg: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        msg + "\n",
    )
        .into_response()
}

/// Parses a hex trace id of 1-32 digits into 16 bytes.
pub fn parse_trace_id(s: &str) -> Option<Vec<u8>> {
    if s.is_empty() || s.len() > 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    hex::decode(format!("{s:0>32}")).ok()
}

/// `GET /api/echo`: `echo`, Grafana's Tempo data source health check.
pub async fn echo() -> Response {
    text(StatusCode::OK, "echo".into())
}

/// `GET /api/traces/<id>` (Tempo's v1 shape).
pub async fn trace_by_id(
    state: State<Arc<AppState>>,
    id: Path<String>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    trace_response(state, id, headers, params, false).await
}

/// `GET /api/v2/traces/<id>` (wrapped in `trace`).
pub async fn trace_by_id_v2(
    state: State<Arc<AppState>>,
    id: Path<String>,
    headers: HeaderMap,
    params: Params,
) -> Response {
    trace_response(state, id, headers, params, true).await
}

fn wants_protobuf(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| {
            let v = v.split(';').next().unwrap_or("").trim();
            v == PROTOBUF || v == "application/x-protobuf"
        })
}

async fn trace_response(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: Params,
    v2: bool,
) -> Response {
    let tenant = match tenant_from_headers(&state, &headers) {
        Ok(t) => t,
        Err((status, e)) => return text(status, e.to_string()),
    };
    let Some(trace_id) = parse_trace_id(&id) else {
        return text(
            StatusCode::BAD_REQUEST,
            format!("invalid trace id {id:?}: expected up to 32 hex digits"),
        );
    };
    let bound = |name: &str, default_ms: i64| -> Result<i64, String> {
        match params.get(name) {
            None => Ok(default_ms.saturating_mul(1_000_000)),
            Some(v) => match v.trim().parse::<f64>() {
                Ok(f) if f.is_finite() && f.abs() < 9.2e9 => Ok((f * 1e9) as i64),
                _ => Err(format!("invalid {name} {v:?}: expected unix epoch seconds")),
            },
        }
    };
    let (start, end) = match (bound("start", MIN_TIME_MS), bound("end", MAX_TIME_MS)) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(m), _) | (_, Err(m)) => return text(StatusCode::BAD_REQUEST, m),
    };
    let store = state.store.clone();
    let tid = trace_id.clone();
    let spans = tokio::task::spawn_blocking(move || {
        store.select_spans(&tenant, Some(tid.as_slice()), start, end)
    })
    .await
    .map_err(|e| e.to_string());
    let spans = match spans {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            let status = if e.is_retryable() {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            return text(status, e.to_string());
        }
        Err(e) => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("trace task failed: {e}"),
            )
        }
    };
    if spans.is_empty() {
        return text(
            StatusCode::NOT_FOUND,
            format!("trace {} not found", hex::encode(&trace_id)),
        );
    }
    let batches = batches(spans);
    if wants_protobuf(&headers) {
        return match protobuf(&batches, v2) {
            Ok(body) => ([(header::CONTENT_TYPE, PROTOBUF)], body).into_response(),
            Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, e),
        };
    }
    if v2 {
        Json(json!({"trace": {"resourceSpans": batches["batches"]}})).into_response()
    } else {
        Json(batches).into_response()
    }
}

/// The batches as protobuf: OTLP `TracesData` (= `tempopb.Trace`), wrapped as field 1
/// of a `tempopb.TraceByIDResponse` for v2. The OTLP JSON built by [`batches`] is
/// read back into the OTLP types, so both encodings carry the same trace.
fn protobuf(batches: &Value, v2: bool) -> Result<Vec<u8>, String> {
    let data: TracesData = serde_json::from_value(json!({"resourceSpans": batches["batches"]}))
        .map_err(|e| format!("cannot encode the trace as protobuf: {e}"))?;
    let inner = data.encode_to_vec();
    if !v2 {
        return Ok(inner);
    }
    // field 1, wire type 2 (length-delimited), then the length as a varint
    let mut out = Vec::with_capacity(inner.len() + 11);
    out.push(0x0a);
    prost::encoding::encode_varint(inner.len() as u64, &mut out);
    out.extend_from_slice(&inner);
    Ok(out)
}

/// Spans of one instrumentation scope: `((name, version), spans)`.
type ScopeGroup = ((String, String), Vec<Value>);

/// Groups spans into Tempo v1 batches.
pub fn batches(mut spans: Vec<SpanRecord>) -> Value {
    spans.sort_by(|a, b| {
        a.start_time_ns
            .cmp(&b.start_time_ns)
            .then_with(|| a.span_id.cmp(&b.span_id))
    });
    // resource -> (scope name, version) -> spans, keeping first-seen order
    let mut groups: Vec<(Attributes, Vec<ScopeGroup>)> = Vec::new();
    for s in spans {
        let gi = match groups.iter().position(|(r, _)| *r == s.resource) {
            Some(i) => i,
            None => {
                groups.push((s.resource.clone(), Vec::new()));
                groups.len() - 1
            }
        };
        let scopes = &mut groups[gi].1;
        let key = (s.scope_name.clone(), s.scope_version.clone());
        let si = match scopes.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                scopes.push((key, Vec::new()));
                scopes.len() - 1
            }
        };
        scopes[si].1.push(span_json(&s));
    }
    let batches: Vec<Value> = groups
        .into_iter()
        .map(|(resource, scopes)| {
            let scope_spans: Vec<Value> = scopes
                .into_iter()
                .map(|((name, version), spans)| {
                    let mut scope = serde_json::Map::new();
                    if !name.is_empty() {
                        scope.insert("name".into(), json!(name));
                    }
                    if !version.is_empty() {
                        scope.insert("version".into(), json!(version));
                    }
                    json!({"scope": scope, "spans": spans})
                })
                .collect();
            json!({"resource": {"attributes": attributes_json(&resource)}, "scopeSpans": scope_spans})
        })
        .collect();
    json!({ "batches": batches })
}

fn span_json(s: &SpanRecord) -> Value {
    let mut span = serde_json::Map::new();
    span.insert("traceId".into(), json!(hex::encode(&s.trace_id)));
    span.insert("spanId".into(), json!(hex::encode(&s.span_id)));
    if !s.parent_span_id.is_empty() {
        span.insert("parentSpanId".into(), json!(hex::encode(&s.parent_span_id)));
    }
    if !s.trace_state.is_empty() {
        span.insert("traceState".into(), json!(s.trace_state));
    }
    span.insert("name".into(), json!(s.name));
    span.insert("kind".into(), json!(s.kind));
    span.insert(
        "startTimeUnixNano".into(),
        json!(s.start_time_ns.to_string()),
    );
    span.insert("endTimeUnixNano".into(), json!(s.end_time_ns.to_string()));
    span.insert("attributes".into(), attributes_json(&s.attributes));
    if let Some(events) = s.events.as_array().filter(|e| !e.is_empty()) {
        span.insert(
            "events".into(),
            Value::Array(events.iter().map(nested_json).collect()),
        );
    }
    if let Some(links) = s.links.as_array().filter(|e| !e.is_empty()) {
        span.insert(
            "links".into(),
            Value::Array(links.iter().map(nested_json).collect()),
        );
    }
    let mut status = serde_json::Map::new();
    if s.status_code != 0 {
        status.insert("code".into(), json!(s.status_code));
    }
    if !s.status_message.is_empty() {
        status.insert("message".into(), json!(s.status_message));
    }
    span.insert("status".into(), Value::Object(status));
    Value::Object(span)
}

/// An event or link as stored: its `attributes` may be a plain JSON object, which
/// becomes an OTLP key-value list; everything else is kept.
fn nested_json(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(obj) = v.as_object_mut() {
        if let Some(Value::Object(attrs)) = obj.get("attributes") {
            let list: Attributes = attrs.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            obj.insert("attributes".into(), attributes_json(&list));
        }
    }
    v
}

/// Attributes as an OTLP JSON `KeyValue` list.
pub fn attributes_json(attrs: &Attributes) -> Value {
    Value::Array(
        attrs
            .iter()
            .map(|(k, v)| json!({"key": k, "value": any_value(v)}))
            .collect(),
    )
}

/// A stored attribute value as an OTLP JSON `AnyValue`.
pub fn any_value(v: &AttrValue) -> Value {
    match v {
        Value::Null => json!({}),
        Value::Bool(b) => json!({ "boolValue": b }),
        Value::Number(n) if n.is_i64() || n.is_u64() => json!({ "intValue": n.to_string() }),
        Value::Number(n) => json!({ "doubleValue": n.as_f64() }),
        Value::String(s) => json!({ "stringValue": s }),
        Value::Array(items) => {
            json!({"arrayValue": {"values": items.iter().map(any_value).collect::<Vec<_>>()}})
        }
        Value::Object(map) => json!({"kvlistValue": {"values": map
            .iter()
            .map(|(k, v)| json!({"key": k, "value": any_value(v)}))
            .collect::<Vec<_>>()}}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(id: u8, resource: &str, start: i64) -> SpanRecord {
        SpanRecord {
            trace_id: vec![1; 16],
            span_id: vec![id; 8],
            parent_span_id: if id == 1 { vec![] } else { vec![1; 8] },
            trace_state: String::new(),
            name: format!("op{id}"),
            kind: 2,
            start_time_ns: start,
            end_time_ns: start + 10,
            attributes: vec![
                ("http.status_code".into(), json!(200)),
                ("ok".into(), json!(true)),
            ],
            events: json!([{"timeUnixNano": "5", "name": "e", "attributes": {"k": "v"}}]),
            links: json!([]),
            status_code: 2,
            status_message: "boom".into(),
            resource: vec![("service.name".into(), json!(resource))],
            scope_name: "lib".into(),
            scope_version: "1".into(),
        }
    }

    #[test]
    fn groups_by_resource_and_uses_otlp_json() {
        let v = batches(vec![span(2, "b", 20), span(1, "a", 10), span(3, "a", 30)]);
        let b = v["batches"].as_array().unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!(
            b[0]["resource"]["attributes"][0]["value"]["stringValue"],
            "a"
        );
        let spans = b[0]["scopeSpans"][0]["spans"].as_array().unwrap();
        assert_eq!(spans.len(), 2);
        assert_eq!(spans[0]["spanId"], "0101010101010101");
        assert_eq!(spans[0]["traceId"], "01010101010101010101010101010101");
        assert!(spans[0].get("parentSpanId").is_none());
        assert_eq!(spans[0]["startTimeUnixNano"], "10");
        assert_eq!(spans[0]["attributes"][0]["value"]["intValue"], "200");
        assert_eq!(spans[0]["attributes"][1]["value"]["boolValue"], true);
        assert_eq!(spans[0]["events"][0]["attributes"][0]["key"], "k");
        assert_eq!(spans[0]["status"]["code"], 2);
        assert_eq!(b[0]["scopeSpans"][0]["scope"]["name"], "lib");
    }

    #[test]
    fn trace_ids() {
        assert_eq!(parse_trace_id("1").unwrap(), {
            let mut v = vec![0; 16];
            v[15] = 1;
            v
        });
        assert_eq!(parse_trace_id(&"ab".repeat(16)).unwrap(), vec![0xab; 16]);
        assert!(parse_trace_id("xyz").is_none());
        assert!(parse_trace_id(&"a".repeat(33)).is_none());
    }
}
