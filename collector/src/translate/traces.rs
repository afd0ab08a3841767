//! OTLP traces → [`SpanRecord`]s with resource, scope, typed attributes, status and
//! kind. Events and links are kept as OTLP/JSON-shaped values (ids in lowercase hex,
//! 64-bit times as decimal strings, attributes as one JSON object):
//! `[{"timeUnixNano":"1700000000000000000","name":"retry","attributes":{"n":1}}]`,
//! `[{"traceId":"0102..","spanId":"0a0b..","traceState":"..","attributes":{},"flags":1}]`
//! (`traceState`, `flags` and `droppedAttributesCount` only when set).
//!
//! Checks: `trace_id` is 16 and `span_id` 8 bytes, neither all zero; `parent_span_id`
//! is empty or 8 bytes (all zero counts as empty) — else `invalid_span`. Start and end
//! times must be set and fit `i64` nanoseconds — else `invalid_timestamp`.

use serde_json::{json, Map, Value};
use sightline_proto::otlp::collector::trace::v1::ExportTraceServiceRequest;
use sightline_proto::otlp::common::v1::InstrumentationScope;
use sightline_proto::otlp::trace::v1::span::{Event, Link};
use sightline_proto::otlp::trace::v1::Span;
use sightline_store::Attributes;

use super::attributes::{attributes_to_object, attributes_to_store};
use super::logs::{ns, optional_id};
use super::{reason, DropLog, SpanRecord, Translated, WriteBatch};

pub(super) fn translate(req: ExportTraceServiceRequest) -> Translated {
    let mut out = Vec::new();
    let mut drops = DropLog::default();
    for rs in req.resource_spans {
        let resource = rs
            .resource
            .map(|r| attributes_to_store(&r.attributes))
            .unwrap_or_default();
        for ss in rs.scope_spans {
            let scope = ss.scope.unwrap_or_default();
            for span in ss.spans {
                match record(span, &resource, &scope) {
                    Ok(rec) => out.push(rec),
                    Err((why, message)) => drops.add(why, 1, || message),
                }
            }
        }
    }
    Translated {
        batch: WriteBatch::Spans(out),
        dropped: drops.into_vec(),
    }
}

fn required_id(
    id: Vec<u8>,
    len: usize,
    what: &str,
    span: &str,
) -> Result<Vec<u8>, (&'static str, String)> {
    if id.len() != len {
        Err((
            reason::INVALID_SPAN,
            format!("span {span:?}: {what} has {} bytes, want {len}", id.len()),
        ))
    } else if id.iter().all(|b| *b == 0) {
        Err((
            reason::INVALID_SPAN,
            format!("span {span:?}: {what} is all zeros"),
        ))
    } else {
        Ok(id)
    }
}

fn record(
    s: Span,
    resource: &Attributes,
    scope: &InstrumentationScope,
) -> Result<SpanRecord, (&'static str, String)> {
    let trace_id = required_id(s.trace_id, 16, "trace_id", &s.name)?;
    let span_id = required_id(s.span_id, 8, "span_id", &s.name)?;
    let parent_span_id = optional_id(s.parent_span_id, 8, "parent_span_id")
        .map_err(|m| (reason::INVALID_SPAN, format!("span {:?}: {m}", s.name)))?;
    let (start, end) = match (ns(s.start_time_unix_nano), ns(s.end_time_unix_nano)) {
        (Some(start), Some(end)) if start != 0 && end != 0 => (start, end),
        _ => {
            return Err((
                reason::INVALID_TIMESTAMP,
                format!(
                    "span {:?} has start_time_unix_nano {} and end_time_unix_nano {}",
                    s.name, s.start_time_unix_nano, s.end_time_unix_nano
                ),
            ))
        }
    };
    let status = s.status.unwrap_or_default();
    Ok(SpanRecord {
        trace_id,
        span_id,
        parent_span_id,
        trace_state: s.trace_state,
        name: s.name,
        kind: s.kind,
        start_time_ns: start,
        end_time_ns: end,
        attributes: attributes_to_store(&s.attributes),
        events: Value::Array(s.events.iter().map(event_json).collect()),
        links: Value::Array(s.links.iter().map(link_json).collect()),
        status_code: status.code,
        status_message: status.message,
        resource: resource.clone(),
        scope_name: scope.name.clone(),
        scope_version: scope.version.clone(),
    })
}

fn event_json(e: &Event) -> Value {
    let mut m = Map::new();
    m.insert("timeUnixNano".into(), json!(e.time_unix_nano.to_string()));
    m.insert("name".into(), json!(e.name));
    m.insert("attributes".into(), attributes_to_object(&e.attributes));
    if e.dropped_attributes_count != 0 {
        m.insert(
            "droppedAttributesCount".into(),
            json!(e.dropped_attributes_count),
        );
    }
    Value::Object(m)
}

fn link_json(l: &Link) -> Value {
    let mut m = Map::new();
    m.insert("traceId".into(), json!(hex::encode(&l.trace_id)));
    m.insert("spanId".into(), json!(hex::encode(&l.span_id)));
    if !l.trace_state.is_empty() {
        m.insert("traceState".into(), json!(l.trace_state));
    }
    m.insert("attributes".into(), attributes_to_object(&l.attributes));
    if l.dropped_attributes_count != 0 {
        m.insert(
            "droppedAttributesCount".into(),
            json!(l.dropped_attributes_count),
        );
    }
    if l.flags != 0 {
        m.insert("flags".into(), json!(l.flags));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_proto::otlp::common::v1::{any_value, AnyValue, KeyValue};
    use sightline_proto::otlp::resource::v1::Resource;
    use sightline_proto::otlp::trace::v1::{status::StatusCode, ResourceSpans, ScopeSpans, Status};

    fn kv(k: &str, v: any_value::Value) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue { value: Some(v) }),
            key_strindex: 0,
        }
    }

    fn base_span() -> Span {
        Span {
            trace_id: (1..=16).collect(),
            span_id: (1..=8).collect(),
            parent_span_id: vec![9; 8],
            trace_state: "vendor=x".into(),
            name: "GET /cart".into(),
            kind: 2,
            start_time_unix_nano: 1_700_000_000_000_000_000,
            end_time_unix_nano: 1_700_000_000_250_000_000,
            attributes: vec![kv(
                "http.route",
                any_value::Value::StringValue("/cart".into()),
            )],
            events: vec![Event {
                time_unix_nano: 1_700_000_000_100_000_000,
                name: "retry".into(),
                attributes: vec![kv("attempt", any_value::Value::IntValue(2))],
                dropped_attributes_count: 0,
            }],
            links: vec![Link {
                trace_id: vec![0xab; 16],
                span_id: vec![0xcd; 8],
                trace_state: String::new(),
                attributes: vec![kv("sampled", any_value::Value::BoolValue(true))],
                dropped_attributes_count: 1,
                flags: 256,
            }],
            status: Some(Status {
                message: "upstream timeout".into(),
                code: StatusCode::Error as i32,
            }),
            ..Default::default()
        }
    }

    fn run(spans: Vec<Span>) -> (Vec<SpanRecord>, Vec<super::super::Dropped>) {
        let req = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv(
                        "service.name",
                        any_value::Value::StringValue("cart".into()),
                    )],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "otel.http".into(),
                        version: "0.5".into(),
                        ..Default::default()
                    }),
                    spans,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        };
        let t = translate(req);
        match t.batch {
            WriteBatch::Spans(s) => (s, t.dropped),
            other => panic!("unexpected batch {other:?}"),
        }
    }

    #[test]
    fn span_keeps_everything() {
        let (out, dropped) = run(vec![base_span()]);
        assert!(dropped.is_empty());
        let s = &out[0];
        assert_eq!(s.trace_id, (1..=16).collect::<Vec<u8>>());
        assert_eq!(s.span_id, (1..=8).collect::<Vec<u8>>());
        assert_eq!(s.parent_span_id, vec![9; 8]);
        assert_eq!(s.trace_state, "vendor=x");
        assert_eq!(s.name, "GET /cart");
        assert_eq!(s.kind, 2);
        assert_eq!(s.start_time_ns, 1_700_000_000_000_000_000);
        assert_eq!(s.end_time_ns, 1_700_000_000_250_000_000);
        assert_eq!(
            s.attributes,
            vec![("http.route".to_string(), json!("/cart"))]
        );
        assert_eq!(
            s.events,
            json!([{"timeUnixNano": "1700000000100000000", "name": "retry", "attributes": {"attempt": 2}}])
        );
        assert_eq!(
            s.links,
            json!([{
                "traceId": "abababababababababababababababab",
                "spanId": "cdcdcdcdcdcdcdcd",
                "attributes": {"sampled": true},
                "droppedAttributesCount": 1,
                "flags": 256
            }])
        );
        assert_eq!(s.status_code, 2);
        assert_eq!(s.status_message, "upstream timeout");
        assert_eq!(
            s.resource,
            vec![("service.name".to_string(), json!("cart"))]
        );
        assert_eq!(s.scope_name, "otel.http");
        assert_eq!(s.scope_version, "0.5");
    }

    #[test]
    fn root_span_without_status_or_events() {
        let (out, dropped) = run(vec![Span {
            parent_span_id: vec![0; 8],
            status: None,
            events: vec![],
            links: vec![],
            ..base_span()
        }]);
        assert!(dropped.is_empty());
        assert!(out[0].parent_span_id.is_empty());
        assert_eq!(out[0].status_code, 0);
        assert_eq!(out[0].events, json!([]));
        assert_eq!(out[0].links, json!([]));
    }

    #[test]
    fn bad_ids_are_invalid_span() {
        let (out, dropped) = run(vec![
            Span {
                trace_id: vec![1; 8],
                ..base_span()
            },
            Span {
                trace_id: vec![0; 16],
                ..base_span()
            },
            Span {
                span_id: vec![],
                ..base_span()
            },
            Span {
                span_id: vec![0; 8],
                ..base_span()
            },
            Span {
                parent_span_id: vec![1; 4],
                ..base_span()
            },
            base_span(),
        ]);
        assert_eq!(out.len(), 1);
        assert_eq!(dropped.len(), 1);
        assert_eq!(dropped[0].reason, "invalid_span");
        assert_eq!(dropped[0].count, 5);
        assert_eq!(
            dropped[0].message,
            r#"span "GET /cart": trace_id has 8 bytes, want 16"#
        );
    }

    #[test]
    fn missing_times_are_invalid_timestamp() {
        let (out, dropped) = run(vec![
            Span {
                start_time_unix_nano: 0,
                ..base_span()
            },
            Span {
                end_time_unix_nano: 0,
                ..base_span()
            },
            Span {
                end_time_unix_nano: u64::MAX,
                ..base_span()
            },
        ]);
        assert!(out.is_empty());
        assert_eq!(dropped.len(), 1);
        assert_eq!(dropped[0].reason, "invalid_timestamp");
        assert_eq!(dropped[0].count, 3);
        assert_eq!(
            dropped[0].message,
            r#"span "GET /cart" has start_time_unix_nano 0 and end_time_unix_nano 1700000000250000000"#
        );
    }
}
