//! Prometheus remote-write 1.0 client: `WriteRequest` built with prost, snappy block
//! compressed, POSTed to `/api/v1/write` with the headers Prometheus sends.

use sightline_proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};
use sightline_proto::prost::Message;

use crate::http_api::{Http, Reply};

/// A series `name{labels}` with `(timestamp ms, value)` samples; labels sorted by
/// name as remote write requires.
pub fn series(name: &str, labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
    let mut all: Vec<Label> = std::iter::once(("__name__", name))
        .chain(labels.iter().copied())
        .map(|(n, v)| Label {
            name: n.to_string(),
            value: v.to_string(),
        })
        .collect();
    all.sort_by(|a, b| a.name.cmp(&b.name));
    TimeSeries {
        labels: all,
        samples: samples
            .iter()
            .map(|&(timestamp, value)| Sample { value, timestamp })
            .collect(),
        exemplars: vec![],
    }
}

/// A request holding `timeseries`.
pub fn request(timeseries: Vec<TimeSeries>) -> WriteRequest {
    WriteRequest {
        timeseries,
        metadata: vec![],
    }
}

/// Protobuf-encodes and snappy-compresses `req` (the remote-write body).
pub fn encode(req: &WriteRequest) -> Vec<u8> {
    compress(&req.encode_to_vec())
}

/// Snappy block compression (not the framed format), as remote write uses.
pub fn compress(raw: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(raw)
        .expect("snappy compress")
}

/// The standard remote-write 1.0 headers.
pub const HEADERS: [(&str, &str); 3] = [
    ("Content-Type", "application/x-protobuf"),
    ("Content-Encoding", "snappy"),
    ("X-Prometheus-Remote-Write-Version", "0.1.0"),
];

/// POSTs `req` to `/api/v1/write`. `Err` only for transport failures.
pub fn push(http: &Http, req: &WriteRequest) -> Result<Reply, ureq::Error> {
    push_body(http, &encode(req))
}

/// POSTs an already encoded body with the standard headers.
pub fn push_body(http: &Http, body: &[u8]) -> Result<Reply, ureq::Error> {
    http.post("/api/v1/write", &HEADERS, body)
}

/// POSTs `req` and asserts 2xx.
pub fn push_ok(http: &Http, req: &WriteRequest) {
    let reply = push(http, req).unwrap_or_else(|e| panic!("remote write to {}: {e}", http.base()));
    assert!(
        (200..300).contains(&reply.status),
        "remote write answered {}: {}",
        reply.status,
        reply.body
    );
}
