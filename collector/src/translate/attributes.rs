//! OTLP `AnyValue`/`KeyValue` conversions shared by the signal translators: to typed
//! JSON (what the store keeps for log and span attributes) and to label-value strings
//! (what metric labels carry, following the OpenTelemetry attribute specification:
//! strings as is, numbers and booleans in their usual text form, bytes as base64,
//! arrays and maps as JSON).

use base64::Engine as _;
use serde_json::{Map, Number, Value};
use sightline_proto::otlp::common::v1::{any_value, AnyValue, KeyValue};
use sightline_store::Attributes;

use super::names::format_attribute_double;

/// An OTLP value as typed JSON: string, bool, i64, f64 (non-finite doubles as the
/// strings `"NaN"`, `"Infinity"`, `"-Infinity"` as in OTLP/JSON), array, object,
/// bytes as base64. An absent value is `null`.
pub fn any_value_to_json(value: Option<&AnyValue>) -> Value {
    let Some(v) = value.and_then(|v| v.value.as_ref()) else {
        return Value::Null;
    };
    match v {
        any_value::Value::StringValue(s) => Value::String(s.clone()),
        any_value::Value::BoolValue(b) => Value::Bool(*b),
        any_value::Value::IntValue(i) => Value::Number((*i).into()),
        any_value::Value::DoubleValue(d) => double_to_json(*d),
        any_value::Value::ArrayValue(a) => Value::Array(
            a.values
                .iter()
                .map(|v| any_value_to_json(Some(v)))
                .collect(),
        ),
        any_value::Value::KvlistValue(kv) => {
            let mut map = Map::new();
            for item in &kv.values {
                map.insert(item.key.clone(), any_value_to_json(item.value.as_ref()));
            }
            Value::Object(map)
        }
        any_value::Value::BytesValue(b) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        // String-table references exist only in the profiles signal.
        any_value::Value::StringValueStrindex(_) => Value::Null,
    }
}

fn double_to_json(d: f64) -> Value {
    match Number::from_f64(d) {
        Some(n) => Value::Number(n),
        None if d.is_nan() => Value::String("NaN".into()),
        None if d > 0.0 => Value::String("Infinity".into()),
        None => Value::String("-Infinity".into()),
    }
}

/// Attribute list as the store keeps it: order as received, values typed.
pub fn attributes_to_store(kvs: &[KeyValue]) -> Attributes {
    kvs.iter()
        .map(|kv| (kv.key.clone(), any_value_to_json(kv.value.as_ref())))
        .collect()
}

/// Attributes as one JSON object (for span events and links).
pub fn attributes_to_object(kvs: &[KeyValue]) -> Value {
    let mut map = Map::new();
    for kv in kvs {
        map.insert(kv.key.clone(), any_value_to_json(kv.value.as_ref()));
    }
    Value::Object(map)
}

/// An OTLP value as a Prometheus label value.
pub fn any_value_to_label(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => format_attribute_double(*d),
        Some(any_value::Value::BytesValue(b)) => {
            base64::engine::general_purpose::STANDARD.encode(b)
        }
        Some(any_value::Value::StringValueStrindex(_)) | None => String::new(),
        Some(_) => any_value_to_json(value).to_string(),
    }
}

/// A stored (typed JSON) attribute value as a label value.
pub fn json_to_label(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) => format_attribute_double(f),
            _ => n.to_string(),
        },
        Value::Array(_) | Value::Object(_) => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_proto::otlp::common::v1::{ArrayValue, KeyValueList};

    pub(crate) fn av(v: any_value::Value) -> AnyValue {
        AnyValue { value: Some(v) }
    }

    #[test]
    fn values_convert_to_typed_json() {
        use any_value::Value as V;
        assert_eq!(
            any_value_to_json(Some(&av(V::StringValue("x".into())))),
            Value::from("x")
        );
        assert_eq!(
            any_value_to_json(Some(&av(V::BoolValue(true)))),
            Value::from(true)
        );
        assert_eq!(
            any_value_to_json(Some(&av(V::IntValue(-7)))),
            Value::from(-7i64)
        );
        assert_eq!(
            any_value_to_json(Some(&av(V::DoubleValue(1.5)))),
            Value::from(1.5)
        );
        assert_eq!(
            any_value_to_json(Some(&av(V::DoubleValue(f64::NAN)))),
            Value::from("NaN")
        );
        assert_eq!(
            any_value_to_json(Some(&av(V::BytesValue(b"hi".to_vec())))),
            Value::from("aGk=")
        );
        assert_eq!(any_value_to_json(None), Value::Null);
        let arr = av(V::ArrayValue(ArrayValue {
            values: vec![av(V::IntValue(1)), av(V::StringValue("a".into()))],
        }));
        assert_eq!(any_value_to_json(Some(&arr)), serde_json::json!([1, "a"]));
        let map = av(V::KvlistValue(KeyValueList {
            values: vec![KeyValue {
                key: "k".into(),
                value: Some(av(V::BoolValue(false))),
                key_strindex: 0,
            }],
        }));
        assert_eq!(
            any_value_to_json(Some(&map)),
            serde_json::json!({"k": false})
        );
        assert_eq!(any_value_to_label(Some(&map)), r#"{"k":false}"#);
        assert_eq!(any_value_to_label(Some(&arr)), r#"[1,"a"]"#);
    }

    #[test]
    fn values_convert_to_label_strings() {
        use any_value::Value as V;
        assert_eq!(
            any_value_to_label(Some(&av(V::StringValue("GET".into())))),
            "GET"
        );
        assert_eq!(any_value_to_label(Some(&av(V::BoolValue(false)))), "false");
        assert_eq!(any_value_to_label(Some(&av(V::IntValue(200)))), "200");
        assert_eq!(any_value_to_label(Some(&av(V::DoubleValue(0.5)))), "0.5");
        assert_eq!(
            any_value_to_label(Some(&av(V::BytesValue(vec![0xff])))),
            "/w=="
        );
        assert_eq!(any_value_to_label(None), "");
        assert_eq!(json_to_label(&Value::from(3i64)), "3");
        assert_eq!(json_to_label(&Value::from(2.0)), "2");
        assert_eq!(json_to_label(&Value::from("s")), "s");
        assert_eq!(json_to_label(&serde_json::json!(["a"])), r#"["a"]"#);
    }
}
