//! Test harness: a real collector on 127.0.0.1 port 0 in a temp dir, plus small
//! HTTP helpers (blocking `ureq` run off the async runtime) and OTLP builders.
#![allow(dead_code, clippy::unwrap_used)] // test support: a failure here is a failed test

use std::sync::Arc;

use sightline_collector::config::Config;
use sightline_collector::server::{self, Collector};
use sightline_proto::otlp::collector::logs::v1::ExportLogsServiceRequest;
use sightline_proto::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use sightline_proto::otlp::collector::trace::v1::ExportTraceServiceRequest;
use sightline_proto::otlp::common::v1::{any_value, AnyValue, KeyValue};
use sightline_proto::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use sightline_proto::otlp::metrics::v1::{
    metric, number_data_point, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
};
use sightline_proto::otlp::resource::v1::Resource;
use sightline_proto::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span};
use sightline_store::SystemClock;

pub struct TestCollector {
    pub collector: Option<Collector>,
    pub dir: tempfile::TempDir,
    pub http: String,
    pub otlp: String,
    pub grpc: String,
}

/// Starts a collector with `extra` YAML merged over a port-0 / temp-dir base.
pub async fn start(extra: &str) -> TestCollector {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::parse(extra).unwrap();
    cfg.server.grpc_addr = "127.0.0.1:0".into();
    cfg.server.otlp_http_addr = "127.0.0.1:0".into();
    cfg.server.http_addr = "127.0.0.1:0".into();
    cfg.storage.data_dir = dir.path().join("data");
    cfg.storage.min_free_bytes = 0;
    let listen = dir.path().join("listen.json");
    let c = server::start(&cfg, Arc::new(SystemClock), Some(&listen))
        .await
        .unwrap();
    let addrs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&listen).unwrap()).unwrap();
    TestCollector {
        http: format!("http://{}", addrs["http"].as_str().unwrap()),
        otlp: format!("http://{}", addrs["otlp_http"].as_str().unwrap()),
        grpc: format!("http://{}", addrs["grpc"].as_str().unwrap()),
        collector: Some(c),
        dir,
    }
}

impl TestCollector {
    pub async fn stop(mut self) {
        if let Some(c) = self.collector.take() {
            c.shutdown().await.unwrap();
        }
    }

    /// Sum of `sightline_collector_rejected_total` over all reasons, from `/metrics`.
    pub async fn rejected_total(&self) -> u64 {
        let text = get(&format!("{}/metrics", self.http), &[]).await.1;
        text.lines()
            .filter(|l| l.starts_with("sightline_collector_rejected_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }

    /// `sightline_collector_rejected_total{reason}` from `/metrics`.
    pub async fn rejected(&self, reason: &str) -> u64 {
        let text = get(&format!("{}/metrics", self.http), &[]).await.1;
        let prefix = format!("sightline_collector_rejected_total{{reason=\"{reason}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0) as u64
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// POST; returns status, content type and body.
pub async fn post(url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> (u16, String, Vec<u8>) {
    let url = url.to_string();
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let mut req = agent().post(&url);
        for (k, v) in &headers {
            req = req.header(k, v);
        }
        let mut resp = req.send(&body[..]).unwrap();
        let ct = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let body = resp.body_mut().read_to_vec().unwrap();
        (resp.status().as_u16(), ct, body)
    })
    .await
    .unwrap()
}

/// GET; returns status and body text.
pub async fn get(url: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let url = url.to_string();
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let mut req = agent().get(&url);
        for (k, v) in &headers {
            req = req.header(k, v);
        }
        let mut resp = req.call().unwrap();
        let body = resp.body_mut().read_to_string().unwrap();
        (resp.status().as_u16(), body)
    })
    .await
    .unwrap()
}

pub async fn get_json(url: &str, headers: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let (status, body) = get(url, headers).await;
    (
        status,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
    )
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

pub fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

pub fn resource(service: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![kv("service.name", service)],
        ..Default::default()
    })
}

/// One gauge with one point per `(time_ms, value)`.
pub fn gauge_request(
    service: &str,
    name: &str,
    points: &[(i64, f64)],
) -> ExportMetricsServiceRequest {
    let data_points = points
        .iter()
        .map(|&(t, v)| NumberDataPoint {
            time_unix_nano: (t as u64) * 1_000_000,
            value: Some(number_data_point::Value::AsDouble(v)),
            ..Default::default()
        })
        .collect();
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(service),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: name.into(),
                    data: Some(metric::Data::Gauge(Gauge { data_points })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

pub fn logs_request(service: &str, lines: &[(i64, &str)]) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(service),
            scope_logs: vec![ScopeLogs {
                log_records: lines
                    .iter()
                    .map(|&(t_ns, body)| LogRecord {
                        time_unix_nano: t_ns as u64,
                        observed_time_unix_nano: t_ns as u64,
                        body: Some(AnyValue {
                            value: Some(any_value::Value::StringValue(body.into())),
                        }),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

pub fn trace_request(
    service: &str,
    trace_id: [u8; 16],
    start_ns: i64,
) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(service),
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id: trace_id.to_vec(),
                    span_id: vec![7; 8],
                    name: "GET /".into(),
                    kind: 2,
                    start_time_unix_nano: start_ns as u64,
                    end_time_unix_nano: start_ns as u64 + 1000,
                    attributes: vec![kv("http.method", "GET")],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// `/api/v1/query` result for `query` at `t_ms`: `(labels, value)` pairs.
pub async fn instant(
    base: &str,
    query: &str,
    t_ms: i64,
    headers: &[(&str, &str)],
) -> Vec<(serde_json::Value, String)> {
    let url = format!(
        "{base}/api/v1/query?query={}&time={}",
        urlencode(query),
        t_ms as f64 / 1000.0
    );
    let (status, v) = get_json(&url, headers).await;
    assert_eq!(status, 200, "{v}");
    v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["metric"].clone(),
                r["value"][1].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
