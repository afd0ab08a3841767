//! `GET /api/v1/metadata` against a real collector: type, help and unit from OTLP
//! metric descriptions and from remote-write metadata, Prometheus' parameters, tenant
//! scoping, and the table surviving a restart on the same data directory.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns fail the test on error

mod harness;

use std::sync::Arc;

use harness::*;
use prost::Message;
use serde_json::{json, Value};
use sightline_collector::config::Config;
use sightline_collector::server;
use sightline_proto::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use sightline_proto::otlp::metrics::v1::{
    metric, AggregationTemporality, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum,
};
use sightline_proto::prometheus::{MetricMetadata, WriteRequest};
use sightline_store::SystemClock;

/// Starts a collector on `data_dir` (kept across restarts).
async fn start_on(data_dir: &std::path::Path, listen: &std::path::Path) -> TestCollector {
    let mut cfg = Config::default();
    cfg.server.grpc_addr = "127.0.0.1:0".into();
    cfg.server.otlp_http_addr = "127.0.0.1:0".into();
    cfg.server.http_addr = "127.0.0.1:0".into();
    cfg.storage.data_dir = data_dir.to_path_buf();
    cfg.storage.min_free_bytes = 0;
    let c = server::start(&cfg, Arc::new(SystemClock), Some(listen))
        .await
        .unwrap();
    let addrs: Value = serde_json::from_str(&std::fs::read_to_string(listen).unwrap()).unwrap();
    TestCollector {
        http: format!("http://{}", addrs["http"].as_str().unwrap()),
        otlp: format!("http://{}", addrs["otlp_http"].as_str().unwrap()),
        grpc: format!("http://{}", addrs["grpc"].as_str().unwrap()),
        collector: Some(c),
        dir: tempfile::tempdir().unwrap(),
    }
}

fn otlp_request(t_ms: i64) -> ExportMetricsServiceRequest {
    let ns = (t_ms as u64) * 1_000_000;
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource("shop"),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![
                    Metric {
                        name: "http.requests".into(),
                        description: "Requests served.".into(),
                        unit: "1".into(),
                        data: Some(metric::Data::Sum(Sum {
                            data_points: vec![NumberDataPoint {
                                time_unix_nano: ns,
                                value: Some(
                                    sightline_proto::otlp::metrics::v1::number_data_point::Value::AsInt(7),
                                ),
                                ..Default::default()
                            }],
                            aggregation_temporality: AggregationTemporality::Cumulative as i32,
                            is_monotonic: true,
                        })),
                        ..Default::default()
                    },
                    Metric {
                        name: "http.duration".into(),
                        description: "Time to answer.".into(),
                        unit: "s".into(),
                        data: Some(metric::Data::Histogram(Histogram {
                            data_points: vec![HistogramDataPoint {
                                time_unix_nano: ns,
                                count: 1,
                                sum: Some(0.5),
                                bucket_counts: vec![1, 0],
                                explicit_bounds: vec![1.0],
                                ..Default::default()
                            }],
                            aggregation_temporality: AggregationTemporality::Cumulative as i32,
                        })),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

const RW_HEADERS: [(&str, &str); 3] = [
    ("content-type", "application/x-protobuf"),
    ("content-encoding", "snappy"),
    ("x-prometheus-remote-write-version", "0.1.0"),
];

async fn metadata(c: &TestCollector, query: &str, headers: &[(&str, &str)]) -> Value {
    let (s, v) = get_json(&format!("{}/api/v1/metadata{query}", c.http), headers).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "success");
    v["data"].clone()
}

#[tokio::test]
async fn metadata_from_otlp_and_remote_write_survives_restart() {
    let root = tempfile::tempdir().unwrap();
    let data_dir = root.path().join("data");
    let listen = root.path().join("listen.json");
    let c = start_on(&data_dir, &listen).await;

    let (s, _, body) = post(
        &format!("{}/v1/metrics", c.otlp),
        &[("content-type", "application/x-protobuf")],
        otlp_request(now_ms() - 1000).encode_to_vec(),
    )
    .await;
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&body));
    let data = metadata(&c, "", &[]).await;
    assert_eq!(
        data,
        json!({
            "http_duration_seconds": [{"type": "histogram", "help": "Time to answer.", "unit": "seconds"}],
            "http_requests_total": [{"type": "counter", "help": "Requests served.", "unit": ""}],
        })
    );

    // Prometheus sends metadata in requests of their own, without samples
    let rw = WriteRequest {
        timeseries: vec![],
        metadata: vec![
            MetricMetadata {
                r#type: 1,
                metric_family_name: "node_cpu_seconds_total".into(),
                help: "Seconds the CPUs spent in each mode.".into(),
                unit: "seconds".into(),
            },
            MetricMetadata {
                r#type: 2,
                metric_family_name: "node_load1".into(),
                help: "1m load average.".into(),
                unit: String::new(),
            },
        ],
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&rw.encode_to_vec())
        .unwrap();
    let (s, _, resp) = post(&format!("{}/api/v1/write", c.http), &RW_HEADERS, body).await;
    assert_eq!(s, 204, "{}", String::from_utf8_lossy(&resp));
    assert_eq!(
        metadata(&c, "?metric=node_cpu_seconds_total", &[]).await,
        json!({"node_cpu_seconds_total": [{"type": "counter",
            "help": "Seconds the CPUs spent in each mode.", "unit": "seconds"}]})
    );
    assert_eq!(metadata(&c, "", &[]).await.as_object().unwrap().len(), 4);
    assert_eq!(
        metadata(&c, "?limit=2", &[])
            .await
            .as_object()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        metadata(&c, "?limit=-1", &[])
            .await
            .as_object()
            .unwrap()
            .len(),
        4
    );
    assert_eq!(metadata(&c, "?metric=nope", &[]).await, json!({}));
    assert_eq!(
        metadata(&c, "", &[("x-scope-orgid", "other")]).await,
        json!({}),
        "tenant scoped"
    );
    let (s, v) = get_json(&format!("{}/api/v1/metadata?limit=many", c.http), &[]).await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["errorType"], "bad_data");

    // a changed help text comes first; limit_per_metric cuts the older one
    let rw = WriteRequest {
        timeseries: vec![],
        metadata: vec![MetricMetadata {
            r#type: 2,
            metric_family_name: "node_load1".into(),
            help: "Load average over 1 minute.".into(),
            unit: String::new(),
        }],
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&rw.encode_to_vec())
        .unwrap();
    let (s, _, _) = post(&format!("{}/api/v1/write", c.http), &RW_HEADERS, body).await;
    assert_eq!(s, 204);
    let d = metadata(&c, "?metric=node_load1", &[]).await;
    assert_eq!(d["node_load1"].as_array().unwrap().len(), 2);
    assert_eq!(d["node_load1"][0]["help"], "Load average over 1 minute.");
    let d = metadata(&c, "?metric=node_load1&limit_per_metric=1", &[]).await;
    assert_eq!(d["node_load1"].as_array().unwrap().len(), 1);

    // restart on the same data directory: the table is still there
    let before = metadata(&c, "", &[]).await;
    c.stop().await;
    let c = start_on(&data_dir, &listen).await;
    assert_eq!(metadata(&c, "", &[]).await, before);
    c.stop().await;
}
