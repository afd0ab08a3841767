//! Logs and spans as Arrow record batches and Parquet parts. One row per record;
//! attribute lists, resources, span events and links are JSON text (attribute lists as
//! JSON objects that keep the received key order); ids are binary. The same decoders
//! serve memtables and parts, so both paths return identical records.

use crate::model::{AttrValue, Attributes, LogRecord, SpanRecord};
use crate::{Error, Result};
use arrow::array::{
    Array, ArrayRef, BinaryArray, BinaryBuilder, Int32Array, Int64Array, RecordBatch, StringArray,
    StringBuilder, UInt32Array,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use std::fmt;
use std::sync::{Arc, OnceLock};

pub(crate) fn logs_schema() -> SchemaRef {
    static S: OnceLock<SchemaRef> = OnceLock::new();
    S.get_or_init(|| {
        Arc::new(Schema::new(vec![
            Field::new("timestamp_ns", DataType::Int64, false),
            Field::new("observed_timestamp_ns", DataType::Int64, false),
            Field::new("severity_number", DataType::Int32, false),
            Field::new("severity_text", DataType::Utf8, false),
            Field::new("body", DataType::Utf8, false),
            Field::new("attributes", DataType::Utf8, false),
            Field::new("resource", DataType::Utf8, false),
            Field::new("scope_name", DataType::Utf8, false),
            Field::new("scope_version", DataType::Utf8, false),
            Field::new("trace_id", DataType::Binary, false),
            Field::new("span_id", DataType::Binary, false),
            Field::new("flags", DataType::UInt32, false),
        ]))
    })
    .clone()
}

pub(crate) fn spans_schema() -> SchemaRef {
    static S: OnceLock<SchemaRef> = OnceLock::new();
    S.get_or_init(|| {
        Arc::new(Schema::new(vec![
            Field::new("trace_id", DataType::Binary, false),
            Field::new("span_id", DataType::Binary, false),
            Field::new("parent_span_id", DataType::Binary, false),
            Field::new("trace_state", DataType::Utf8, false),
            Field::new("name", DataType::Utf8, false),
            Field::new("kind", DataType::Int32, false),
            Field::new("start_time_ns", DataType::Int64, false),
            Field::new("end_time_ns", DataType::Int64, false),
            Field::new("attributes", DataType::Utf8, false),
            Field::new("events", DataType::Utf8, false),
            Field::new("links", DataType::Utf8, false),
            Field::new("status_code", DataType::Int32, false),
            Field::new("status_message", DataType::Utf8, false),
            Field::new("resource", DataType::Utf8, false),
            Field::new("scope_name", DataType::Utf8, false),
            Field::new("scope_version", DataType::Utf8, false),
        ]))
    })
    .clone()
}

/// `[("a", 1), ("b", "x")]` → `{"a":1,"b":"x"}`, in list order.
pub(crate) fn attrs_to_json(a: &Attributes) -> String {
    let mut s = String::from("{");
    for (i, (k, v)) in a.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&serde_json::Value::String(k.clone()).to_string());
        s.push(':');
        s.push_str(&v.to_string());
    }
    s.push('}');
    s
}

/// Inverse of [`attrs_to_json`], keeping key order and repeated keys.
pub(crate) fn attrs_from_json(s: &str) -> Result<Attributes> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Attributes;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<M: serde::de::MapAccess<'de>>(
            self,
            mut m: M,
        ) -> std::result::Result<Attributes, M::Error> {
            let mut out = Vec::new();
            while let Some((k, v)) = m.next_entry::<String, AttrValue>()? {
                out.push((k, v));
            }
            Ok(out)
        }
    }
    let mut de = serde_json::Deserializer::from_str(s);
    serde::Deserializer::deserialize_map(&mut de, V)
        .map_err(|e| Error::Parquet(format!("bad attributes json: {e}")))
}

fn strings<'a>(it: impl Iterator<Item = &'a str>) -> ArrayRef {
    let mut b = StringBuilder::new();
    for s in it {
        b.append_value(s);
    }
    Arc::new(b.finish())
}

fn binaries<'a>(it: impl Iterator<Item = &'a [u8]>) -> ArrayRef {
    let mut b = BinaryBuilder::new();
    for s in it {
        b.append_value(s);
    }
    Arc::new(b.finish())
}

fn arrow_err(e: arrow::error::ArrowError) -> Error {
    Error::Parquet(e.to_string())
}

pub(crate) fn logs_to_batch(logs: &[LogRecord]) -> Result<RecordBatch> {
    let attrs: Vec<String> = logs.iter().map(|r| attrs_to_json(&r.attributes)).collect();
    let res: Vec<String> = logs.iter().map(|r| attrs_to_json(&r.resource)).collect();
    let cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(
            logs.iter().map(|r| r.timestamp_ns),
        )),
        Arc::new(Int64Array::from_iter_values(
            logs.iter().map(|r| r.observed_timestamp_ns),
        )),
        Arc::new(Int32Array::from_iter_values(
            logs.iter().map(|r| r.severity_number),
        )),
        strings(logs.iter().map(|r| r.severity_text.as_str())),
        strings(logs.iter().map(|r| r.body.as_str())),
        strings(attrs.iter().map(String::as_str)),
        strings(res.iter().map(String::as_str)),
        strings(logs.iter().map(|r| r.scope_name.as_str())),
        strings(logs.iter().map(|r| r.scope_version.as_str())),
        binaries(logs.iter().map(|r| r.trace_id.as_slice())),
        binaries(logs.iter().map(|r| r.span_id.as_slice())),
        Arc::new(UInt32Array::from_iter_values(logs.iter().map(|r| r.flags))),
    ];
    RecordBatch::try_new(logs_schema(), cols).map_err(arrow_err)
}

pub(crate) fn spans_to_batch(spans: &[SpanRecord]) -> Result<RecordBatch> {
    let attrs: Vec<String> = spans.iter().map(|r| attrs_to_json(&r.attributes)).collect();
    let res: Vec<String> = spans.iter().map(|r| attrs_to_json(&r.resource)).collect();
    let events: Vec<String> = spans.iter().map(|r| r.events.to_string()).collect();
    let links: Vec<String> = spans.iter().map(|r| r.links.to_string()).collect();
    let cols: Vec<ArrayRef> = vec![
        binaries(spans.iter().map(|r| r.trace_id.as_slice())),
        binaries(spans.iter().map(|r| r.span_id.as_slice())),
        binaries(spans.iter().map(|r| r.parent_span_id.as_slice())),
        strings(spans.iter().map(|r| r.trace_state.as_str())),
        strings(spans.iter().map(|r| r.name.as_str())),
        Arc::new(Int32Array::from_iter_values(spans.iter().map(|r| r.kind))),
        Arc::new(Int64Array::from_iter_values(
            spans.iter().map(|r| r.start_time_ns),
        )),
        Arc::new(Int64Array::from_iter_values(
            spans.iter().map(|r| r.end_time_ns),
        )),
        strings(attrs.iter().map(String::as_str)),
        strings(events.iter().map(String::as_str)),
        strings(links.iter().map(String::as_str)),
        Arc::new(Int32Array::from_iter_values(
            spans.iter().map(|r| r.status_code),
        )),
        strings(spans.iter().map(|r| r.status_message.as_str())),
        strings(res.iter().map(String::as_str)),
        strings(spans.iter().map(|r| r.scope_name.as_str())),
        strings(spans.iter().map(|r| r.scope_version.as_str())),
    ];
    RecordBatch::try_new(spans_schema(), cols).map_err(arrow_err)
}

/// Typed access to a batch's columns by name, with a clear error for a foreign file.
struct Cols<'a>(&'a RecordBatch);

impl<'a> Cols<'a> {
    fn get<T: Array + 'static>(&self, name: &str) -> Result<&'a T> {
        self.0
            .column_by_name(name)
            .and_then(|c| c.as_any().downcast_ref::<T>())
            .ok_or_else(|| Error::Parquet(format!("column {name} missing or of the wrong type")))
    }
}

/// Log records of `b` with `start <= timestamp_ns <= end`, appended to `out`.
pub(crate) fn logs_from_batch(
    b: &RecordBatch,
    start: i64,
    end: i64,
    out: &mut Vec<LogRecord>,
) -> Result<()> {
    let c = Cols(b);
    let ts = c.get::<Int64Array>("timestamp_ns")?;
    let obs = c.get::<Int64Array>("observed_timestamp_ns")?;
    let sevn = c.get::<Int32Array>("severity_number")?;
    let sevt = c.get::<StringArray>("severity_text")?;
    let body = c.get::<StringArray>("body")?;
    let attrs = c.get::<StringArray>("attributes")?;
    let res = c.get::<StringArray>("resource")?;
    let sn = c.get::<StringArray>("scope_name")?;
    let sv = c.get::<StringArray>("scope_version")?;
    let tid = c.get::<BinaryArray>("trace_id")?;
    let sid = c.get::<BinaryArray>("span_id")?;
    let flags = c.get::<UInt32Array>("flags")?;
    for i in 0..b.num_rows() {
        let t = ts.value(i);
        if t < start || t > end {
            continue;
        }
        out.push(LogRecord {
            timestamp_ns: t,
            observed_timestamp_ns: obs.value(i),
            severity_number: sevn.value(i),
            severity_text: sevt.value(i).to_string(),
            body: body.value(i).to_string(),
            attributes: attrs_from_json(attrs.value(i))?,
            resource: attrs_from_json(res.value(i))?,
            scope_name: sn.value(i).to_string(),
            scope_version: sv.value(i).to_string(),
            trace_id: tid.value(i).to_vec(),
            span_id: sid.value(i).to_vec(),
            flags: flags.value(i),
        });
    }
    Ok(())
}

fn json(s: &str) -> Result<AttrValue> {
    serde_json::from_str(s).map_err(|e| Error::Parquet(format!("bad json column: {e}")))
}

/// Spans of `b` starting in `[start, end]` (and of `trace` when given), appended to `out`.
pub(crate) fn spans_from_batch(
    b: &RecordBatch,
    trace: Option<&[u8]>,
    start: i64,
    end: i64,
    out: &mut Vec<SpanRecord>,
) -> Result<()> {
    let c = Cols(b);
    let tid = c.get::<BinaryArray>("trace_id")?;
    let sid = c.get::<BinaryArray>("span_id")?;
    let pid = c.get::<BinaryArray>("parent_span_id")?;
    let tstate = c.get::<StringArray>("trace_state")?;
    let name = c.get::<StringArray>("name")?;
    let kind = c.get::<Int32Array>("kind")?;
    let st = c.get::<Int64Array>("start_time_ns")?;
    let et = c.get::<Int64Array>("end_time_ns")?;
    let attrs = c.get::<StringArray>("attributes")?;
    let events = c.get::<StringArray>("events")?;
    let links = c.get::<StringArray>("links")?;
    let sc = c.get::<Int32Array>("status_code")?;
    let sm = c.get::<StringArray>("status_message")?;
    let res = c.get::<StringArray>("resource")?;
    let sn = c.get::<StringArray>("scope_name")?;
    let sv = c.get::<StringArray>("scope_version")?;
    for i in 0..b.num_rows() {
        let t = st.value(i);
        if t < start || t > end || trace.is_some_and(|want| tid.value(i) != want) {
            continue;
        }
        out.push(SpanRecord {
            trace_id: tid.value(i).to_vec(),
            span_id: sid.value(i).to_vec(),
            parent_span_id: pid.value(i).to_vec(),
            trace_state: tstate.value(i).to_string(),
            name: name.value(i).to_string(),
            kind: kind.value(i),
            start_time_ns: t,
            end_time_ns: et.value(i),
            attributes: attrs_from_json(attrs.value(i))?,
            events: json(events.value(i))?,
            links: json(links.value(i))?,
            status_code: sc.value(i),
            status_message: sm.value(i).to_string(),
            resource: attrs_from_json(res.value(i))?,
            scope_name: sn.value(i).to_string(),
            scope_version: sv.value(i).to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn attributes_keep_order_duplicates_and_types() {
        let a: Attributes = vec![
            ("z".into(), json!(1)),
            ("a".into(), json!(0.1 + 0.2)),
            ("z".into(), json!({"k": [true, null]})),
            ("q\"".into(), json!("v")),
        ];
        let s = attrs_to_json(&a);
        assert_eq!(attrs_from_json(&s).unwrap(), a);
        assert!(attrs_from_json("[1]").is_err());
    }
}
