//! OTLP compatibility measured against the official OpenTelemetry Python SDK as the
//! client: `tests/python/send_otlp.py` exports a counter, an up-down counter, an
//! explicit-bucket histogram, an exponential histogram (View) and an observable gauge,
//! five log records and a two-span trace over OTLP/gRPC, and prints what it sent. The
//! test reads everything back through the collector's Prometheus, Loki and Tempo APIs
//! and compares names (OTel→Prometheus compatibility spec), labels, values and
//! timestamps. The Python SDK cannot produce summaries, so a second test sends one
//! with the tonic client.
//!
//! Python comes from `SIGHTLINE_PYTHON` (default `/var/tmp/sightline-venv/bin/python`).

// Test files: a failed unwrap is a failed test, also in helper functions.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;
use sightline_e2e::http_api::{labels, Http, InstantSample};
use sightline_e2e::metrics_text::Scrape;
use sightline_e2e::otlp_grpc;
use sightline_e2e::{now_ms, wait_for, Collector};
use sightline_proto::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use sightline_proto::otlp::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use sightline_proto::otlp::metrics::v1::summary_data_point::ValueAtQuantile;
use sightline_proto::otlp::metrics::v1::{
    metric, Metric, ResourceMetrics, ScopeMetrics, Summary, SummaryDataPoint,
};
use sightline_proto::otlp::resource::v1::Resource;

const DEFAULT_PYTHON: &str = "/var/tmp/sightline-venv/bin/python";
const INSTALL: &str = "python3 -m venv /var/tmp/sightline-venv && \
                       /var/tmp/sightline-venv/bin/pip install -r tests/python/requirements.txt";
const READ_TIMEOUT: Duration = Duration::from_secs(20);

fn python() -> PathBuf {
    let py = std::env::var_os("SIGHTLINE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| DEFAULT_PYTHON.into());
    assert!(
        py.is_file(),
        "Python interpreter {} not found (set SIGHTLINE_PYTHON or install the OpenTelemetry SDK: {INSTALL})",
        py.display()
    );
    py
}

/// Runs send_otlp.py (bounded: 120 s) and returns the JSON it printed.
fn send_with_python_sdk(endpoint: &str, base_ns: i64) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/send_otlp.py");
    let dir = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = Command::new(python())
        .arg(script)
        .args(["--endpoint", endpoint, "--base-ns", &base_ns.to_string()])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("start python");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "send_otlp.py did not finish in 120 s; stderr:\n{}",
                std::fs::read_to_string(&err_path).unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stderr = std::fs::read_to_string(&err_path).unwrap();
    assert!(
        !stderr.contains("ModuleNotFoundError"),
        "the OpenTelemetry Python SDK is not installed for {}: {INSTALL}\n{stderr}",
        python().display()
    );
    assert!(
        status.success(),
        "send_otlp.py failed ({status}):\n{stderr}"
    );
    let stdout = std::fs::read_to_string(&out_path).unwrap();
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("send_otlp.py output ({e}): {stdout}\n{stderr}"))
}

/// Waits until the instant query returns something, then returns it.
fn instant(http: &Http, promql: &str, time_s: f64) -> Vec<InstantSample> {
    wait_for(&format!("{promql} to be queryable"), READ_TIMEOUT, || {
        let r = http.query(promql, time_s);
        (!r.is_empty()).then_some(r)
    })
}

fn single(http: &Http, promql: &str, time_s: f64) -> InstantSample {
    let r = instant(http, promql, time_s);
    assert_eq!(r.len(), 1, "{promql}: expected one series, got {r:?}");
    r.into_iter().next().unwrap()
}

fn assert_close(what: &str, got: f64, want: f64) {
    assert!(
        (got - want).abs() <= 1e-9 * want.abs().max(1.0),
        "{what}: got {got}, want {want}"
    );
}

/// The metric's labels minus `__name__`.
fn plain_labels(s: &InstantSample) -> BTreeMap<String, String> {
    let mut l = s.metric.clone();
    l.remove("__name__");
    l
}

#[test]
fn python_sdk_metrics_logs_and_traces_round_trip() {
    let c = Collector::start();
    let http = c.http();
    let before = Scrape::fetch(&http);
    let base_ns = (now_ms() - 30_000) * 1_000_000;
    let sent = send_with_python_sdk(&c.grpc_endpoint(), base_ns);
    println!("python sent: {sent}");

    let collect_start_ns = sent["collect_start_ns"].as_i64().unwrap();
    let collect_end_ns = sent["collect_end_ns"].as_i64().unwrap();
    let t = collect_end_ns as f64 / 1e9 + 1.0;
    let job = "job=\"e2e-python\",instance=\"e2e-python-1\"";

    // Monotonic cumulative sum, unit "1": `_total`, no unit suffix.
    let requests = instant(&http, &format!("http_requests_total{{{job}}}"), t);
    let mut got: Vec<(BTreeMap<String, String>, f64)> = requests
        .iter()
        .map(|s| (plain_labels(s), s.value))
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    // Resource → job/instance; the instrumentation scope → otel_scope_* (compat spec);
    // deployment.environment is on the collector's default promoted-attribute list.
    let base = [
        ("job", "e2e-python"),
        ("instance", "e2e-python-1"),
        ("deployment_environment", "e2e"),
        ("otel_scope_name", "sightline.e2e"),
        ("otel_scope_version", "1.0.0"),
    ];
    let with = |extra: &[(&str, &str)]| labels(&[&base[..], extra].concat());
    assert_eq!(
        got,
        vec![
            (
                with(&[("http_method", "GET"), ("http_status_code", "200")]),
                5.0
            ),
            (
                with(&[("http_method", "POST"), ("http_status_code", "500")]),
                4.0
            ),
        ],
        "http_requests_total"
    );

    // Non-monotonic sum → gauge; `{items}` annotation dropped.
    let queue = single(&http, &format!("queue_size{{{job}}}"), t);
    assert_eq!(plain_labels(&queue), with(&[("queue", "emails")]));
    assert_eq!(queue.value, 7.0);

    // Observable gauge, unit By → `_bytes`.
    let mem = single(&http, &format!("process_memory_used_bytes{{{job}}}"), t);
    assert_eq!(plain_labels(&mem), with(&[("memory_kind", "heap")]));
    assert_eq!(mem.value, 123456.0);

    // Explicit-bucket histogram, unit s: cumulative `_bucket{le}`, `_sum`, `_count`.
    let buckets = instant(
        &http,
        &format!("http_server_duration_seconds_bucket{{{job}}}"),
        t,
    );
    let mut by_le: Vec<(f64, f64)> = buckets
        .iter()
        .map(|s| {
            let le = s
                .metric
                .get("le")
                .unwrap_or_else(|| panic!("bucket without le: {s:?}"));
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap_or_else(|_| panic!("le {le:?}"))
            };
            assert_eq!(
                s.metric.get("http_route").map(String::as_str),
                Some("/checkout"),
                "{s:?}"
            );
            (le, s.value)
        })
        .collect();
    by_le.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert_eq!(
        by_le,
        vec![(0.1, 1.0), (0.5, 3.0), (1.0, 4.0), (f64::INFINITY, 5.0)],
        "histogram buckets"
    );
    assert_close(
        "histogram _sum",
        single(
            &http,
            &format!("http_server_duration_seconds_sum{{{job}}}"),
            t,
        )
        .value,
        3.25,
    );
    assert_eq!(
        single(
            &http,
            &format!("http_server_duration_seconds_count{{{job}}}"),
            t
        )
        .value,
        5.0
    );

    // Exponential histogram (View), unit ms: at least `_count` and `_sum`.
    let count = single(
        &http,
        &format!("rpc_client_latency_milliseconds_count{{{job}}}"),
        t,
    );
    assert_eq!(plain_labels(&count), with(&[("rpc_method", "Get")]));
    assert_eq!(count.value, 4.0);
    assert_close(
        "exp histogram _sum",
        single(
            &http,
            &format!("rpc_client_latency_milliseconds_sum{{{job}}}"),
            t,
        )
        .value,
        15.0,
    );

    // Timestamps: the point's time_unix_nano (collection time), not its start time.
    let start = (collect_start_ns / 1_000_000_000 - 5) as f64;
    let end = (collect_end_ns / 1_000_000_000 + 5) as f64;
    let range = http.query_range(
        &format!("http_requests_total{{{job},http_method=\"GET\"}}"),
        start,
        end,
        1.0,
    );
    assert_eq!(range.len(), 1, "{range:?}");
    let first = range[0].values.first().expect("points").0;
    assert!(
        first * 1e9 >= (collect_start_ns - 1_000_000) as f64 && first * 1e9 < (collect_end_ns + 1_000_000_000) as f64,
        "first point at {first}s, but the SDK collected between {collect_start_ns} and {collect_end_ns} ns"
    );

    check_logs(&http, &sent, base_ns);
    check_trace(&http, &sent);

    let after = Scrape::fetch(&http);
    for signal in ["metrics", "logs", "traces"] {
        let f = [("signal", signal), ("protocol", "grpc")];
        assert!(
            after.sum("sightline_collector_received_items_total", &f) > before.sum("sightline_collector_received_items_total", &f),
            "sightline_collector_received_items_total{{signal=\"{signal}\",protocol=\"grpc\"}} did not move"
        );
    }
}

fn check_logs(http: &Http, sent: &Value, base_ns: i64) {
    let want: Vec<(i64, String)> = sent["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["timestamp_ns"].as_i64().unwrap(),
                l["body"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let query = "{service_name=\"e2e-python\"}";
    let streams = wait_for("the Python SDK's log records", READ_TIMEOUT, || {
        let s = http.loki_query_range(query, base_ns - 1_000_000_000, base_ns + 1_000_000_000, 100);
        let n: usize = s.iter().map(|s| s.values.len()).sum();
        (n >= want.len()).then_some(s)
    });
    for s in &streams {
        assert_eq!(
            s.stream.get("service_name").map(String::as_str),
            Some("e2e-python"),
            "stream labels {:?}",
            s.stream
        );
        assert!(
            s.stream.keys().all(|k| !k.contains('.')),
            "unsanitized stream label in {:?}",
            s.stream
        );
    }
    let mut got: Vec<(i64, String)> = streams.into_iter().flat_map(|s| s.values).collect();
    got.sort();
    assert_eq!(got, want, "log lines and their exact nanosecond timestamps");
}

/// Normalizes an OTLP/JSON id (hex per the OTLP/JSON spec; base64 as protobuf JSON
/// would print it is accepted too) to lowercase hex.
fn id_hex(v: &Value) -> String {
    let s = v.as_str().unwrap_or_default();
    if s.is_empty() {
        return String::new();
    }
    if s.chars().all(|c| c.is_ascii_hexdigit()) && (s.len() == 16 || s.len() == 32) {
        return s.to_lowercase();
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s)
        .unwrap_or_else(|e| panic!("id {s:?}: {e}"));
    hex::encode(bytes)
}

fn attr<'a>(attrs: &'a Value, key: &str) -> Option<&'a Value> {
    attrs
        .as_array()?
        .iter()
        .find(|kv| kv["key"] == key)
        .map(|kv| &kv["value"])
}

fn as_i64(v: &Value) -> i64 {
    match v {
        Value::String(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("not an integer: {s:?}")),
        other => other
            .as_i64()
            .unwrap_or_else(|| panic!("not an integer: {other}")),
    }
}

fn kind_is(v: &Value, name: &str, number: i64) -> bool {
    v.as_i64() == Some(number) || v.as_str() == Some(&format!("SPAN_KIND_{name}"))
}

fn check_trace(http: &Http, sent: &Value) {
    let trace_id = sent["trace_id"].as_str().unwrap();
    let path = format!("/api/traces/{trace_id}");
    let json = wait_for("the Python SDK's trace", READ_TIMEOUT, || {
        let r = http.get_ok(&path, &[]);
        (r.status == 200).then(|| r.json())
    });
    let batches = json["batches"]
        .as_array()
        .unwrap_or_else(|| panic!("no batches: {json}"));
    let mut spans = Vec::new();
    for b in batches {
        let res = &b["resource"]["attributes"];
        assert_eq!(
            attr(res, "service.name").map(|v| &v["stringValue"]),
            Some(&Value::from("e2e-python")),
            "{b}"
        );
        assert_eq!(
            attr(res, "service.instance.id").map(|v| &v["stringValue"]),
            Some(&Value::from("e2e-python-1"))
        );
        for ss in b["scopeSpans"]
            .as_array()
            .unwrap_or_else(|| panic!("no scopeSpans: {b}"))
        {
            assert_eq!(ss["scope"]["name"], "sightline.e2e.traces", "{ss}");
            spans.extend(ss["spans"].as_array().unwrap().iter().cloned());
        }
    }
    let want = sent["spans"].as_array().unwrap();
    assert_eq!(spans.len(), want.len(), "spans: {spans:?}");
    for w in want {
        let name = w["name"].as_str().unwrap();
        let s = spans
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("span {name} missing: {spans:?}"));
        assert_eq!(id_hex(&s["traceId"]), trace_id, "{name} traceId");
        assert_eq!(
            id_hex(&s["spanId"]),
            w["span_id"].as_str().unwrap(),
            "{name} spanId"
        );
        assert_eq!(
            id_hex(&s["parentSpanId"]),
            w["parent_span_id"].as_str().unwrap(),
            "{name} parentSpanId"
        );
        assert_eq!(
            as_i64(&s["startTimeUnixNano"]),
            w["start_ns"].as_i64().unwrap(),
            "{name} start"
        );
        assert_eq!(
            as_i64(&s["endTimeUnixNano"]),
            w["end_ns"].as_i64().unwrap(),
            "{name} end"
        );
        let kind = w["kind"].as_str().unwrap();
        let number = if kind == "SERVER" { 2 } else { 3 };
        assert!(
            kind_is(&s["kind"], kind, number),
            "{name} kind {}",
            s["kind"]
        );
        for (k, v) in w["attributes"].as_object().unwrap() {
            let got = attr(&s["attributes"], k)
                .unwrap_or_else(|| panic!("{name} lacks attribute {k}: {s}"));
            match v {
                Value::String(text) => assert_eq!(got["stringValue"], *text, "{name} {k}"),
                Value::Number(n) => {
                    assert_eq!(as_i64(&got["intValue"]), n.as_i64().unwrap(), "{name} {k}")
                }
                other => panic!("unexpected attribute value {other}"),
            }
        }
    }
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

#[test]
fn summary_from_tonic_client_round_trips() {
    let c = Collector::start();
    let http = c.http();
    let t_s = now_ms() / 1000 - 30;
    let t_ns = t_s as u64 * 1_000_000_000;
    let req = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", "e2e-rust"),
                    kv("service.instance.id", "rust-1"),
                ],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "sightline.e2e".into(),
                    ..Default::default()
                }),
                metrics: vec![Metric {
                    name: "rpc.server.duration".into(),
                    unit: "s".into(),
                    description: "RPC server latency".into(),
                    data: Some(metric::Data::Summary(Summary {
                        data_points: vec![SummaryDataPoint {
                            attributes: vec![kv("rpc.method", "List")],
                            start_time_unix_nano: t_ns - 60_000_000_000,
                            time_unix_nano: t_ns,
                            count: 10,
                            sum: 4.25,
                            quantile_values: vec![
                                ValueAtQuantile {
                                    quantile: 0.5,
                                    value: 0.3,
                                },
                                ValueAtQuantile {
                                    quantile: 0.99,
                                    value: 1.125,
                                },
                            ],
                            flags: 0,
                        }],
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    otlp_grpc::export_metrics(&c.grpc_endpoint(), req, &[]).expect("summary export");

    let job = "job=\"e2e-rust\",instance=\"rust-1\",rpc_method=\"List\"";
    let eval = t_s as f64 + 1.0;
    let mut quantiles: Vec<(String, f64)> = instant(
        &http,
        &format!("rpc_server_duration_seconds{{{job}}}"),
        eval,
    )
    .into_iter()
    .map(|s| {
        (
            s.metric.get("quantile").cloned().unwrap_or_default(),
            s.value,
        )
    })
    .collect();
    quantiles.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        quantiles,
        vec![("0.5".to_string(), 0.3), ("0.99".to_string(), 1.125)],
        "summary quantiles"
    );
    assert_eq!(
        single(
            &http,
            &format!("rpc_server_duration_seconds_sum{{{job}}}"),
            eval
        )
        .value,
        4.25
    );
    assert_eq!(
        single(
            &http,
            &format!("rpc_server_duration_seconds_count{{{job}}}"),
            eval
        )
        .value,
        10.0
    );

    // The sample sits exactly at time_unix_nano: the first range point is at t_s.
    let range = http.query_range(
        &format!("rpc_server_duration_seconds_count{{{job}}}"),
        (t_s - 3) as f64,
        (t_s + 3) as f64,
        1.0,
    );
    assert_eq!(range.len(), 1, "{range:?}");
    assert_eq!(
        range[0].values.first().map(|p| p.0),
        Some(t_s as f64),
        "first point of {:?}",
        range[0].values
    );
}
