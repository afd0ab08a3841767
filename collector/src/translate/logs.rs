//! OTLP logs → [`LogRecord`]s, one per OTLP record, with the resource attributes,
//! scope name/version and typed attributes.
//!
//! - body: a string body as is; any other body as its JSON (`{"k":"v"}`, `42`,
//!   `true`, bytes as a base64 JSON string); no body is the empty string;
//! - timestamp: the event time, or the observed time when the event time is 0; both 0
//!   (or beyond year 2262, which does not fit `i64` nanoseconds) is `invalid_timestamp`;
//! - trace/span ids must be 16/8 bytes or empty (`invalid_span` otherwise); an
//!   all-zero id means "no trace" and is stored empty;
//! - a non-empty `event_name` is kept as the attribute `event.name` unless the record
//!   already has that attribute.

use sightline_proto::otlp::collector::logs::v1::ExportLogsServiceRequest;
use sightline_proto::otlp::common::v1::{any_value, InstrumentationScope};
use sightline_proto::otlp::logs::v1::LogRecord as OtlpLogRecord;
use sightline_store::Attributes;

use super::attributes::{any_value_to_json, attributes_to_store};
use super::{reason, DropLog, LogRecord, Translated, WriteBatch};

pub(super) fn translate(req: ExportLogsServiceRequest) -> Translated {
    let mut out = Vec::new();
    let mut drops = DropLog::default();
    for rl in req.resource_logs {
        let resource = rl
            .resource
            .map(|r| attributes_to_store(&r.attributes))
            .unwrap_or_default();
        for sl in rl.scope_logs {
            let scope = sl.scope.unwrap_or_default();
            for r in sl.log_records {
                match record(r, &resource, &scope) {
                    Ok(rec) => out.push(rec),
                    Err((why, message)) => drops.add(why, 1, || message),
                }
            }
        }
    }
    Translated {
        batch: WriteBatch::Logs(out),
        dropped: drops.into_vec(),
    }
}

/// An id that must be `len` bytes or empty; all zeros counts as empty.
pub(super) fn optional_id(id: Vec<u8>, len: usize, what: &str) -> Result<Vec<u8>, String> {
    if id.iter().all(|b| *b == 0) {
        Ok(Vec::new())
    } else if id.len() == len {
        Ok(id)
    } else {
        Err(format!("{what} has {} bytes, want {len} or none", id.len()))
    }
}

/// Nanoseconds as `i64`; `None` when they do not fit.
pub(super) fn ns(v: u64) -> Option<i64> {
    i64::try_from(v).ok()
}

fn record(
    r: OtlpLogRecord,
    resource: &Attributes,
    scope: &InstrumentationScope,
) -> Result<LogRecord, (&'static str, String)> {
    let bad_time = || {
        (
            reason::INVALID_TIMESTAMP,
            format!(
                "log record has time_unix_nano {} and observed_time_unix_nano {}",
                r.time_unix_nano, r.observed_time_unix_nano
            ),
        )
    };
    let observed = ns(r.observed_time_unix_nano).ok_or_else(bad_time)?;
    let time = ns(r.time_unix_nano).ok_or_else(bad_time)?;
    let timestamp = if time != 0 { time } else { observed };
    if timestamp == 0 {
        return Err(bad_time());
    }
    let trace_id = optional_id(r.trace_id, 16, "log record trace_id")
        .map_err(|m| (reason::INVALID_SPAN, m))?;
    let span_id =
        optional_id(r.span_id, 8, "log record span_id").map_err(|m| (reason::INVALID_SPAN, m))?;
    let body = match r.body.as_ref().and_then(|b| b.value.as_ref()) {
        None => String::new(),
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(_) => any_value_to_json(r.body.as_ref()).to_string(),
    };
    let mut attributes = attributes_to_store(&r.attributes);
    if !r.event_name.is_empty() && !attributes.iter().any(|(k, _)| k == "event.name") {
        attributes.push(("event.name".into(), r.event_name.into()));
    }
    Ok(LogRecord {
        timestamp_ns: timestamp,
        observed_timestamp_ns: observed,
        severity_number: r.severity_number,
        severity_text: r.severity_text,
        body,
        attributes,
        resource: resource.clone(),
        scope_name: scope.name.clone(),
        scope_version: scope.version.clone(),
        trace_id,
        span_id,
        flags: r.flags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sightline_proto::otlp::common::v1::{AnyValue, KeyValue, KeyValueList};
    use sightline_proto::otlp::logs::v1::{ResourceLogs, ScopeLogs};
    use sightline_proto::otlp::resource::v1::Resource;

    fn s(v: &str) -> AnyValue {
        AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }
    }

    fn kv(k: &str, v: AnyValue) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(v),
            key_strindex: 0,
        }
    }

    fn base_record() -> OtlpLogRecord {
        OtlpLogRecord {
            time_unix_nano: 1_700_000_000_123_456_789,
            observed_time_unix_nano: 1_700_000_000_200_000_000,
            severity_number: 17,
            severity_text: "ERROR".into(),
            body: Some(s("payment failed")),
            attributes: vec![kv(
                "http.status_code",
                AnyValue {
                    value: Some(any_value::Value::IntValue(502)),
                },
            )],
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            flags: 1,
            ..Default::default()
        }
    }

    fn run(records: Vec<OtlpLogRecord>) -> (Vec<LogRecord>, Vec<super::super::Dropped>) {
        let req = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![
                        kv("service.name", s("checkout")),
                        kv("k8s.pod.name", s("checkout-1")),
                    ],
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope {
                        name: "app.logger".into(),
                        version: "1.2".into(),
                        ..Default::default()
                    }),
                    log_records: records,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        };
        let t = translate(req);
        match t.batch {
            WriteBatch::Logs(l) => (l, t.dropped),
            other => panic!("unexpected batch {other:?}"),
        }
    }

    #[test]
    fn record_keeps_everything() {
        let (out, dropped) = run(vec![base_record()]);
        assert!(dropped.is_empty());
        assert_eq!(
            out,
            vec![LogRecord {
                timestamp_ns: 1_700_000_000_123_456_789,
                observed_timestamp_ns: 1_700_000_000_200_000_000,
                severity_number: 17,
                severity_text: "ERROR".into(),
                body: "payment failed".into(),
                attributes: vec![("http.status_code".into(), json!(502))],
                resource: vec![
                    ("service.name".into(), json!("checkout")),
                    ("k8s.pod.name".into(), json!("checkout-1"))
                ],
                scope_name: "app.logger".into(),
                scope_version: "1.2".into(),
                trace_id: vec![1; 16],
                span_id: vec![2; 8],
                flags: 1,
            }]
        );
    }

    #[test]
    fn structured_bodies_become_json() {
        let map = AnyValue {
            value: Some(any_value::Value::KvlistValue(KeyValueList {
                values: vec![
                    kv("msg", s("hi")),
                    kv(
                        "n",
                        AnyValue {
                            value: Some(any_value::Value::IntValue(3)),
                        },
                    ),
                ],
            })),
        };
        let int = AnyValue {
            value: Some(any_value::Value::IntValue(42)),
        };
        let (out, dropped) = run(vec![
            OtlpLogRecord {
                body: Some(map),
                ..base_record()
            },
            OtlpLogRecord {
                body: Some(int),
                ..base_record()
            },
            OtlpLogRecord {
                body: None,
                ..base_record()
            },
        ]);
        assert!(dropped.is_empty());
        assert_eq!(out[0].body, r#"{"msg":"hi","n":3}"#);
        assert_eq!(out[1].body, "42");
        assert_eq!(out[2].body, "");
    }

    #[test]
    fn timestamps_fall_back_to_observed_time() {
        let (out, dropped) = run(vec![
            OtlpLogRecord {
                time_unix_nano: 0,
                ..base_record()
            },
            OtlpLogRecord {
                time_unix_nano: 0,
                observed_time_unix_nano: 0,
                ..base_record()
            },
            OtlpLogRecord {
                time_unix_nano: u64::MAX,
                ..base_record()
            },
        ]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].timestamp_ns, 1_700_000_000_200_000_000);
        assert_eq!(dropped.len(), 1);
        assert_eq!(dropped[0].reason, "invalid_timestamp");
        assert_eq!(dropped[0].count, 2);
        assert_eq!(
            dropped[0].message,
            "log record has time_unix_nano 0 and observed_time_unix_nano 0"
        );
    }

    #[test]
    fn ids_must_have_the_right_length() {
        let (out, dropped) = run(vec![
            OtlpLogRecord {
                trace_id: vec![],
                span_id: vec![],
                ..base_record()
            },
            OtlpLogRecord {
                trace_id: vec![0; 16],
                span_id: vec![0; 8],
                ..base_record()
            },
            OtlpLogRecord {
                trace_id: vec![1; 15],
                ..base_record()
            },
            OtlpLogRecord {
                span_id: vec![1; 16],
                ..base_record()
            },
        ]);
        assert_eq!(out.len(), 2);
        assert!(out
            .iter()
            .all(|r| r.trace_id.is_empty() && r.span_id.is_empty()));
        assert_eq!(dropped.len(), 1);
        assert_eq!(dropped[0].reason, "invalid_span");
        assert_eq!(dropped[0].count, 2);
        assert_eq!(
            dropped[0].message,
            "log record trace_id has 15 bytes, want 16 or none"
        );
    }

    #[test]
    fn event_name_becomes_an_attribute() {
        let (out, _) = run(vec![
            OtlpLogRecord {
                event_name: "browser.click".into(),
                ..base_record()
            },
            OtlpLogRecord {
                event_name: "ignored".into(),
                attributes: vec![kv("event.name", s("kept"))],
                ..base_record()
            },
        ]);
        assert_eq!(
            out[0].attributes.last().unwrap(),
            &("event.name".to_string(), json!("browser.click"))
        );
        assert_eq!(
            out[1].attributes,
            vec![("event.name".to_string(), json!("kept"))]
        );
    }
}
