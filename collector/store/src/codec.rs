//! Compact binary encoding of WAL payloads. One payload is one [`WriteBatch`] of one
//! tenant: `version u8 · tenant · kind u8 · body`. Integers are LEB128 varints (signed ones
//! zigzag), strings and byte strings are length-prefixed, sample timestamps are
//! delta-encoded per series and values are the raw little-endian `f64` bits, so NaN
//! payloads (Prometheus stale markers) survive bit for bit. Attribute values keep their
//! JSON type through a tagged encoding (no text round trip).

use crate::model::{Attributes, Label, Labels, LogRecord, Sample, Series, SpanRecord, WriteBatch};
use serde_json::Value;

const VERSION: u8 = 1;
const KIND_METRICS: u8 = 1;
const KIND_LOGS: u8 = 2;
const KIND_SPANS: u8 = 3;
/// Nesting limit for attribute values, so a hostile payload cannot overflow the stack.
const MAX_DEPTH: u32 = 64;

/// Encodes one batch of `tenant` into a WAL payload.
pub(crate) fn encode(tenant: &str, batch: &WriteBatch) -> Vec<u8> {
    let mut e = Enc {
        buf: Vec::with_capacity(256),
    };
    e.buf.push(VERSION);
    e.str(tenant);
    match batch {
        WriteBatch::Metrics(series) => {
            e.buf.push(KIND_METRICS);
            e.uvar(series.len() as u64);
            for s in series {
                e.uvar(s.labels.len() as u64);
                for l in s.labels.iter() {
                    e.str(&l.name);
                    e.str(&l.value);
                }
                e.uvar(s.samples.len() as u64);
                let mut prev = 0i64;
                for smp in &s.samples {
                    e.ivar(smp.timestamp_ms.wrapping_sub(prev));
                    prev = smp.timestamp_ms;
                }
                for smp in &s.samples {
                    e.buf.extend_from_slice(&smp.value.to_bits().to_le_bytes());
                }
            }
        }
        WriteBatch::Logs(logs) => {
            e.buf.push(KIND_LOGS);
            e.uvar(logs.len() as u64);
            for r in logs {
                e.ivar(r.timestamp_ns);
                e.ivar(r.observed_timestamp_ns);
                e.ivar(i64::from(r.severity_number));
                e.str(&r.severity_text);
                e.str(&r.body);
                e.attrs(&r.attributes);
                e.attrs(&r.resource);
                e.str(&r.scope_name);
                e.str(&r.scope_version);
                e.bytes(&r.trace_id);
                e.bytes(&r.span_id);
                e.uvar(u64::from(r.flags));
            }
        }
        WriteBatch::Spans(spans) => {
            e.buf.push(KIND_SPANS);
            e.uvar(spans.len() as u64);
            for s in spans {
                e.bytes(&s.trace_id);
                e.bytes(&s.span_id);
                e.bytes(&s.parent_span_id);
                e.str(&s.trace_state);
                e.str(&s.name);
                e.ivar(i64::from(s.kind));
                e.ivar(s.start_time_ns);
                e.ivar(s.end_time_ns);
                e.attrs(&s.attributes);
                e.value(&s.events);
                e.value(&s.links);
                e.ivar(i64::from(s.status_code));
                e.str(&s.status_message);
                e.attrs(&s.resource);
                e.str(&s.scope_name);
                e.str(&s.scope_version);
            }
        }
    }
    e.buf
}

/// Decodes a payload written by [`encode`]. Errors describe what was malformed.
pub(crate) fn decode(buf: &[u8]) -> Result<(String, WriteBatch), String> {
    let mut d = Dec { b: buf, pos: 0 };
    let v = d.u8()?;
    if v != VERSION {
        return Err(format!("unknown payload version {v}"));
    }
    let tenant = d.string()?;
    let batch = match d.u8()? {
        KIND_METRICS => {
            let n = d.len()?;
            let mut series = Vec::with_capacity(n.min(4096));
            for _ in 0..n {
                let nl = d.len()?;
                let mut labels = Vec::with_capacity(nl.min(256));
                for _ in 0..nl {
                    labels.push(Label {
                        name: d.string()?,
                        value: d.string()?,
                    });
                }
                let ns = d.len()?;
                let mut ts = Vec::with_capacity(ns.min(65536));
                let mut prev = 0i64;
                for _ in 0..ns {
                    prev = prev.wrapping_add(d.ivar()?);
                    ts.push(prev);
                }
                let mut samples = Vec::with_capacity(ts.len());
                for t in ts {
                    samples.push(Sample {
                        timestamp_ms: t,
                        value: f64::from_bits(d.u64le()?),
                    });
                }
                series.push(Series {
                    labels: Labels::new(labels),
                    samples,
                });
            }
            WriteBatch::Metrics(series)
        }
        KIND_LOGS => {
            let n = d.len()?;
            let mut logs = Vec::with_capacity(n.min(4096));
            for _ in 0..n {
                logs.push(LogRecord {
                    timestamp_ns: d.ivar()?,
                    observed_timestamp_ns: d.ivar()?,
                    severity_number: d.i32()?,
                    severity_text: d.string()?,
                    body: d.string()?,
                    attributes: d.attrs()?,
                    resource: d.attrs()?,
                    scope_name: d.string()?,
                    scope_version: d.string()?,
                    trace_id: d.bytes()?.to_vec(),
                    span_id: d.bytes()?.to_vec(),
                    flags: u32::try_from(d.uvar()?)
                        .map_err(|_| "flags out of range".to_string())?,
                });
            }
            WriteBatch::Logs(logs)
        }
        KIND_SPANS => {
            let n = d.len()?;
            let mut spans = Vec::with_capacity(n.min(4096));
            for _ in 0..n {
                spans.push(SpanRecord {
                    trace_id: d.bytes()?.to_vec(),
                    span_id: d.bytes()?.to_vec(),
                    parent_span_id: d.bytes()?.to_vec(),
                    trace_state: d.string()?,
                    name: d.string()?,
                    kind: d.i32()?,
                    start_time_ns: d.ivar()?,
                    end_time_ns: d.ivar()?,
                    attributes: d.attrs()?,
                    events: d.value(0)?,
                    links: d.value(0)?,
                    status_code: d.i32()?,
                    status_message: d.string()?,
                    resource: d.attrs()?,
                    scope_name: d.string()?,
                    scope_version: d.string()?,
                });
            }
            WriteBatch::Spans(spans)
        }
        k => return Err(format!("unknown batch kind {k}")),
    };
    if d.pos != buf.len() {
        return Err(format!("{} trailing bytes", buf.len() - d.pos));
    }
    Ok((tenant, batch))
}

/// Appends varints, strings and values to a byte buffer.
pub(crate) struct Enc {
    pub(crate) buf: Vec<u8>,
}

impl Enc {
    pub(crate) fn uvar(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }
    pub(crate) fn ivar(&mut self, v: i64) {
        self.uvar(((v << 1) ^ (v >> 63)) as u64);
    }
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.uvar(b.len() as u64);
        self.buf.extend_from_slice(b);
    }
    pub(crate) fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    fn attrs(&mut self, a: &Attributes) {
        self.uvar(a.len() as u64);
        for (k, v) in a {
            self.str(k);
            self.value(v);
        }
    }
    fn value(&mut self, v: &Value) {
        match v {
            Value::Null => self.buf.push(0),
            Value::Bool(false) => self.buf.push(1),
            Value::Bool(true) => self.buf.push(2),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    self.buf.push(3);
                    self.ivar(i);
                } else if let Some(u) = n.as_u64() {
                    self.buf.push(4);
                    self.uvar(u);
                } else {
                    self.buf.push(5);
                    let f = n.as_f64().unwrap_or(f64::NAN);
                    self.buf.extend_from_slice(&f.to_bits().to_le_bytes());
                }
            }
            Value::String(s) => {
                self.buf.push(6);
                self.str(s);
            }
            Value::Array(a) => {
                self.buf.push(7);
                self.uvar(a.len() as u64);
                for x in a {
                    self.value(x);
                }
            }
            Value::Object(m) => {
                self.buf.push(8);
                self.uvar(m.len() as u64);
                for (k, x) in m {
                    self.str(k);
                    self.value(x);
                }
            }
        }
    }
}

/// Reads what [`Enc`] wrote; every read is bounds-checked.
pub(crate) struct Dec<'a> {
    pub(crate) b: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Dec<'a> {
    pub(crate) fn u8(&mut self) -> Result<u8, String> {
        let v = *self.b.get(self.pos).ok_or("unexpected end of payload")?;
        self.pos += 1;
        Ok(v)
    }
    pub(crate) fn u64le(&mut self) -> Result<u64, String> {
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_le_bytes(a))
    }
    pub(crate) fn uvar(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err("varint too long".into())
    }
    pub(crate) fn ivar(&mut self) -> Result<i64, String> {
        let u = self.uvar()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }
    fn i32(&mut self) -> Result<i32, String> {
        i32::try_from(self.ivar()?).map_err(|_| "i32 out of range".to_string())
    }
    /// A count; must not exceed the remaining bytes (every item takes at least one).
    pub(crate) fn len(&mut self) -> Result<usize, String> {
        let n = self.uvar()?;
        if n > (self.b.len() - self.pos) as u64 {
            return Err(format!("count {n} exceeds payload"));
        }
        Ok(n as usize)
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or("unexpected end of payload")?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = self.len()?;
        self.take(n)
    }
    pub(crate) fn string(&mut self) -> Result<String, String> {
        let b = self.bytes()?;
        String::from_utf8(b.to_vec()).map_err(|_| "invalid utf-8 string".to_string())
    }
    fn attrs(&mut self) -> Result<Attributes, String> {
        let n = self.len()?;
        let mut out = Vec::with_capacity(n.min(256));
        for _ in 0..n {
            out.push((self.string()?, self.value(0)?));
        }
        Ok(out)
    }
    fn value(&mut self, depth: u32) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return Err("attribute value nested too deeply".into());
        }
        Ok(match self.u8()? {
            0 => Value::Null,
            1 => Value::Bool(false),
            2 => Value::Bool(true),
            3 => Value::from(self.ivar()?),
            4 => Value::from(self.uvar()?),
            5 => Value::from(f64::from_bits(self.u64le()?)),
            6 => Value::String(self.string()?),
            7 => {
                let n = self.len()?;
                let mut a = Vec::with_capacity(n.min(256));
                for _ in 0..n {
                    a.push(self.value(depth + 1)?);
                }
                Value::Array(a)
            }
            8 => {
                let n = self.len()?;
                let mut m = serde_json::Map::new();
                for _ in 0..n {
                    let k = self.string()?;
                    m.insert(k, self.value(depth + 1)?);
                }
                Value::Object(m)
            }
            t => return Err(format!("unknown value tag {t}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn all_batch_kinds_round_trip_bit_exact() {
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        let metrics = WriteBatch::Metrics(vec![Series {
            labels: Labels::from_pairs([("__name__", "up"), ("job", "a")]),
            samples: vec![
                Sample {
                    timestamp_ms: -5,
                    value: 1.5,
                },
                Sample {
                    timestamp_ms: 1_700_000_000_000,
                    value: stale,
                },
                Sample {
                    timestamp_ms: i64::MAX,
                    value: -0.0,
                },
            ],
        }]);
        let (t, back) = decode(&encode("team-a", &metrics)).unwrap();
        assert_eq!(t, "team-a");
        let WriteBatch::Metrics(s) = back else {
            panic!("kind")
        };
        assert_eq!(s[0].samples[1].value.to_bits(), 0x7ff0_0000_0000_0002);
        assert_eq!(s[0].samples[2].value.to_bits(), (-0.0f64).to_bits());
        assert_eq!(s[0].samples[2].timestamp_ms, i64::MAX);

        let logs = WriteBatch::Logs(vec![LogRecord {
            timestamp_ns: 1,
            observed_timestamp_ns: 2,
            severity_number: -3,
            severity_text: "WARN".into(),
            body: "hello ✓".into(),
            attributes: vec![
                ("z".into(), json!(1)),
                ("a".into(), json!({"x": [1.25, true, null, u64::MAX, "s"]})),
            ],
            resource: vec![("service.name".into(), json!("api"))],
            scope_name: "s".into(),
            scope_version: "1".into(),
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            flags: 1,
        }]);
        assert_eq!(decode(&encode("", &logs)).unwrap().1, logs);

        let spans = WriteBatch::Spans(vec![SpanRecord {
            trace_id: vec![3; 16],
            span_id: vec![4; 8],
            parent_span_id: vec![],
            trace_state: "k=v".into(),
            name: "GET /".into(),
            kind: 2,
            start_time_ns: 10,
            end_time_ns: 20,
            attributes: vec![("http.status".into(), json!(200))],
            events: json!([{"name": "e", "timeUnixNano": "11"}]),
            links: json!([]),
            status_code: 1,
            status_message: "ok".into(),
            resource: vec![],
            scope_name: "".into(),
            scope_version: "".into(),
        }]);
        assert_eq!(decode(&encode("t", &spans)).unwrap().1, spans);
    }

    #[test]
    fn truncated_or_garbage_payloads_are_errors_not_panics() {
        let b = encode("t", &WriteBatch::Logs(vec![]));
        assert!(decode(&b).is_ok());
        let full = encode(
            "t",
            &WriteBatch::Metrics(vec![Series {
                labels: Labels::from_pairs([("a", "b")]),
                samples: vec![Sample {
                    timestamp_ms: 1,
                    value: 2.0,
                }],
            }]),
        );
        for cut in 0..full.len() {
            assert!(decode(&full[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode(&[1, 0, 9]).is_err());
        assert!(decode(&[
            1, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01
        ])
        .is_err());
    }
}
