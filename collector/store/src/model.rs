//! The data model the store keeps: Prometheus-style series, log records and spans,
//! already translated from their wire formats by the collector's receivers.

use serde::{Deserialize, Serialize};

/// Name of the label that holds the metric name.
pub const METRIC_NAME: &str = "__name__";

/// One label pair.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Label {
    pub name: String,
    pub value: String,
}

/// A label set, sorted by name, names unique, no empty values (an empty value means
/// "label absent", as in Prometheus). Includes `__name__` for metrics. Immutable and
/// shared: cloning is a reference-count increment (the query engine clones label sets
/// at every step of a range query).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(std::sync::Arc<Vec<Label>>);

impl Serialize for Labels {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // the same shape as the derived newtype of a Vec
        s.serialize_newtype_struct("Labels", self.0.as_slice())
    }
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename = "Labels")]
        struct Repr(Vec<Label>);
        Repr::deserialize(d).map(|r| Labels(std::sync::Arc::new(r.0)))
    }
}

impl Labels {
    /// Builds a label set: sorts by name, drops empty values; when a name repeats the
    /// last value wins.
    pub fn new(mut pairs: Vec<Label>) -> Self {
        pairs.retain(|l| !l.value.is_empty());
        // stable sort keeps input order among equal names, so the last one wins below
        pairs.sort_by(|a, b| a.name.cmp(&b.name));
        let mut out: Vec<Label> = Vec::with_capacity(pairs.len());
        for l in pairs {
            match out.last_mut() {
                Some(prev) if prev.name == l.name => *prev = l,
                _ => out.push(l),
            }
        }
        Labels(std::sync::Arc::new(out))
    }

    /// Builds a label set from `(name, value)` pairs.
    pub fn from_pairs<N: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        Self::new(
            pairs
                .into_iter()
                .map(|(n, v)| Label {
                    name: n.into(),
                    value: v.into(),
                })
                .collect(),
        )
    }

    /// The value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].value.as_str())
    }

    /// The metric name (`__name__`), if present.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Label> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn as_slice(&self) -> &[Label] {
        &self.0
    }
}

/// One sample: milliseconds since the Unix epoch and a value.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub timestamp_ms: i64,
    pub value: f64,
}

/// A series and some of its samples, oldest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub labels: Labels,
    pub samples: Vec<Sample>,
}

/// Attribute values keep their OTLP type: string, bool, integer (`i64`), double,
/// array, map (JSON object); bytes are base64 strings.
pub type AttrValue = serde_json::Value;

/// Ordered attribute list as received.
pub type Attributes = Vec<(String, AttrValue)>;

/// One log record with its resource and scope.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    /// Event time (ns since epoch); the observed time when the sender left it at 0.
    pub timestamp_ns: i64,
    pub observed_timestamp_ns: i64,
    pub severity_number: i32,
    pub severity_text: String,
    /// Body as text; a non-string OTLP body is stored as its JSON encoding.
    pub body: String,
    pub attributes: Attributes,
    pub resource: Attributes,
    pub scope_name: String,
    pub scope_version: String,
    /// 16 bytes or empty.
    pub trace_id: Vec<u8>,
    /// 8 bytes or empty.
    pub span_id: Vec<u8>,
    pub flags: u32,
}

/// One span with its resource and scope.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpanRecord {
    /// 16 bytes.
    pub trace_id: Vec<u8>,
    /// 8 bytes.
    pub span_id: Vec<u8>,
    /// 8 bytes or empty for a root span.
    pub parent_span_id: Vec<u8>,
    pub trace_state: String,
    pub name: String,
    /// OTLP `SpanKind` number.
    pub kind: i32,
    pub start_time_ns: i64,
    pub end_time_ns: i64,
    pub attributes: Attributes,
    /// OTLP events as JSON (`[{"timeUnixNano":..,"name":..,"attributes":{..}}]`).
    pub events: AttrValue,
    /// OTLP links as JSON.
    pub links: AttrValue,
    /// OTLP `Status.code` number.
    pub status_code: i32,
    pub status_message: String,
    pub resource: Attributes,
    pub scope_name: String,
    pub scope_version: String,
}

/// What one accepted request carries into the store. One request, one WAL record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum WriteBatch {
    Metrics(Vec<Series>),
    Logs(Vec<LogRecord>),
    Spans(Vec<SpanRecord>),
}

impl WriteBatch {
    /// Number of items (samples, log records or spans).
    pub fn item_count(&self) -> usize {
        match self {
            WriteBatch::Metrics(s) => s.iter().map(|s| s.samples.len()).sum(),
            WriteBatch::Logs(l) => l.len(),
            WriteBatch::Spans(s) => s.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_sort_dedup_and_drop_empty() {
        let l = Labels::from_pairs([("b", "1"), ("a", "x"), ("b", "2"), ("c", "")]);
        let names: Vec<_> = l
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect();
        assert_eq!(names, vec![("a", "x"), ("b", "2")]);
        assert_eq!(l.get("b"), Some("2"));
        assert_eq!(l.get("c"), None);
    }

    #[test]
    fn labels_serialize_as_the_plain_list_and_share_on_clone() {
        let l = Labels::from_pairs([("job", "a"), ("__name__", "up")]);
        let text = serde_json::to_string(&l).unwrap();
        assert_eq!(
            text,
            r#"[{"name":"__name__","value":"up"},{"name":"job","value":"a"}]"#
        );
        let back: Labels = serde_json::from_str(&text).unwrap();
        assert_eq!(back, l);
        let c = l.clone();
        assert!(std::ptr::eq(c.as_slice(), l.as_slice()));
    }
}
