//! Prometheus remote write 1.0 against a real collector: success, every kind of
//! bad sample and body, and what the Prometheus read API returns afterwards.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns fail the test on error

mod harness;

use harness::*;
use prost::Message;
use sightline_proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};

fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
    TimeSeries {
        labels: labels
            .iter()
            .map(|(n, v)| Label {
                name: n.to_string(),
                value: v.to_string(),
            })
            .collect(),
        samples: samples
            .iter()
            .map(|&(t, v)| Sample {
                value: v,
                timestamp: t,
            })
            .collect(),
        exemplars: vec![],
    }
}

fn body(ts: Vec<TimeSeries>) -> Vec<u8> {
    let raw = WriteRequest {
        timeseries: ts,
        metadata: vec![],
    }
    .encode_to_vec();
    snap::raw::Encoder::new().compress_vec(&raw).unwrap()
}

const RW_HEADERS: [(&str, &str); 3] = [
    ("content-type", "application/x-protobuf"),
    ("content-encoding", "snappy"),
    ("x-prometheus-remote-write-version", "0.1.0"),
];

async fn write(c: &TestCollector, ts: Vec<TimeSeries>) -> (u16, String) {
    let (status, _, resp) = post(&format!("{}/api/v1/write", c.http), &RW_HEADERS, body(ts)).await;
    (status, String::from_utf8_lossy(&resp).into_owned())
}

#[tokio::test]
async fn remote_write_and_read_back() {
    let c = start("").await;
    let t = now_ms() - 60_000;
    let (status, msg) = write(
        &c,
        vec![
            series(
                &[
                    ("__name__", "rw_up"),
                    ("job", "node"),
                    ("instance", "a:9100"),
                ],
                &[(t, 1.0), (t + 15_000, 0.0)],
            ),
            series(
                &[
                    ("__name__", "rw_up"),
                    ("job", "node"),
                    ("instance", "b:9100"),
                ],
                &[(t, 1.0)],
            ),
        ],
    )
    .await;
    assert_eq!(status, 204, "{msg}");

    let got = instant(&c.http, r#"rw_up{instance="a:9100"}"#, t + 20_000, &[]).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0["job"], "node");
    assert_eq!(got[0].0["__name__"], "rw_up");
    assert_eq!(got[0].1, "0");
    // outside the 5m lookback nothing is returned (Prometheus 2.x: the window [t-5m, t] is closed)
    assert!(instant(&c.http, "rw_up", t + 15_000 + 300_001, &[])
        .await
        .is_empty());

    let url = format!(
        "{}/api/v1/query_range?query=rw_up&start={}&end={}&step=15s",
        c.http,
        t as f64 / 1000.0,
        (t + 30_000) as f64 / 1000.0
    );
    let (status, v) = get_json(&url, &[]).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["resultType"], "matrix");
    let result = v["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 2);
    let a = result
        .iter()
        .find(|r| r["metric"]["instance"] == "a:9100")
        .unwrap();
    let values: Vec<&str> = a["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_str().unwrap())
        .collect();
    assert_eq!(values, vec!["1", "0", "0"]);

    let (status, v) = get_json(&format!("{}/api/v1/series?match[]=rw_up", c.http), &[]).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    let (_, v) = get_json(&format!("{}/api/v1/labels", c.http), &[]).await;
    let names: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"instance") && names.contains(&"__name__"),
        "{names:?}"
    );
    let (_, v) = get_json(&format!("{}/api/v1/label/instance/values", c.http), &[]).await;
    assert_eq!(v["data"], serde_json::json!(["a:9100", "b:9100"]));
    // POST form works like GET
    let (status, _, resp) = post(
        &format!("{}/api/v1/series", c.http),
        &[("content-type", "application/x-www-form-urlencoded")],
        b"match%5B%5D=rw_up%7Binstance%3D%22b%3A9100%22%7D".to_vec(),
    )
    .await;
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_slice(&resp).unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 1, "{v}");

    // constant arithmetic (Grafana's health check) is a scalar
    let (status, v) = get_json(
        &format!(
            "{}/api/v1/query?query={}&time=100",
            c.http,
            urlencode("1+1")
        ),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["data"],
        serde_json::json!({"resultType": "scalar", "result": [100, "2"]})
    );
    // full PromQL through the engine: an aggregation over both series
    let got = instant(&c.http, "sum by (job) (rw_up)", t + 10_000, &[]).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0["job"], "node");
    assert_eq!(got[0].1, "2");
    // an expression that does not parse is bad_data with the parser's message
    let (status, v) = get_json(
        &format!("{}/api/v1/query?query={}", c.http, urlencode("sum(rw_up")),
        &[],
    )
    .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["errorType"], "bad_data");
    assert!(!v["error"].as_str().unwrap().is_empty(), "{v}");
    let (status, v) = get_json(
        &format!("{}/api/v1/query?query=rw_up&time=yesterday", c.http),
        &[],
    )
    .await;
    assert_eq!(status, 400, "{v}");

    // format_query pretty-prints, and refuses what does not parse
    let (status, v) = get_json(
        &format!(
            "{}/api/v1/format_query?query={}",
            c.http,
            urlencode("sum(rate(rw_up{job='node'}[5m]))by(instance)")
        ),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let formatted = v["data"].as_str().unwrap();
    assert!(
        formatted.contains("sum by (instance)") && formatted.contains("rw_up{job=\"node\"}[5m]"),
        "{formatted}"
    );
    let (status, v) = get_json(
        &format!("{}/api/v1/format_query?query={}", c.http, urlencode("sum(")),
        &[],
    )
    .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["errorType"], "bad_data");
    let (status, v) = get_json(&format!("{}/api/v1/status/buildinfo", c.http), &[]).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["version"], "2.42.0");
    assert_eq!(v["data"]["application"], "sightline-collector");

    // an explicit flush writes the memtables to Parquet; the data reads back the same
    let (status, _, _) = post(&format!("{}/api/v1/admin/flush", c.http), &[], Vec::new()).await;
    assert_eq!(status, 204);
    let got = instant(&c.http, r#"rw_up{instance="a:9100"}"#, t + 20_000, &[]).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, "0");
    let parts = std::fs::read_dir(c.dir.path().join("data").join("metrics"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert!(parts > 0, "no metrics parts after the flush");
    c.stop().await;
}

#[tokio::test]
async fn bad_samples_are_refused_and_counted() {
    let c = start("").await;
    let t = now_ms() - 60_000;
    let (status, msg) = write(&c, vec![series(&[("__name__", "ok_metric")], &[(t, 1.0)])]).await;
    assert_eq!(status, 204, "{msg}");

    let cases: Vec<(&str, TimeSeries)> = vec![
        (
            "invalid label name",
            series(&[("__name__", "m"), ("bad-label", "x")], &[(t, 1.0)]),
        ),
        ("empty metric name", series(&[("job", "x")], &[(t, 1.0)])),
        (
            "NaN value",
            series(&[("__name__", "nan_metric")], &[(t, f64::NAN)]),
        ),
        (
            "out of order",
            series(&[("__name__", "ok_metric")], &[(t - 1000, 1.0)]),
        ),
        (
            "duplicate",
            series(&[("__name__", "ok_metric")], &[(t, 2.0)]),
        ),
    ];
    for (what, ts) in cases {
        let before = c.rejected_total().await;
        let (status, msg) = write(&c, vec![ts]).await;
        assert_eq!(status, 400, "{what}: {msg}");
        assert!(msg.len() > 10, "{what}: message too vague: {msg}");
        assert_eq!(c.rejected_total().await, before + 1, "{what}: {msg}");
    }
    assert_eq!(c.rejected("out_of_order").await, 1);
    assert_eq!(c.rejected("duplicate").await, 1);
    // valid samples of a mixed request are kept
    let (status, msg) = write(
        &c,
        vec![
            series(&[("__name__", "mixed_ok")], &[(t, 5.0)]),
            series(&[("__name__", "mixed"), ("bad-label", "x")], &[(t, 1.0)]),
        ],
    )
    .await;
    assert_eq!(status, 400, "{msg}");
    assert_eq!(instant(&c.http, "mixed_ok", t, &[]).await.len(), 1);

    // bodies
    let url = format!("{}/api/v1/write", c.http);
    let raw = WriteRequest::default().encode_to_vec();
    let (status, _, _) = post(
        &url,
        &[
            ("content-type", "application/x-protobuf"),
            ("content-encoding", "gzip"),
        ],
        raw.clone(),
    )
    .await;
    assert_eq!(status, 415);
    let (status, _, resp) = post(&url, &[("content-type", "application/x-protobuf")], raw).await;
    assert_eq!(status, 415, "{}", String::from_utf8_lossy(&resp));
    let (status, _, resp) = post(&url, &RW_HEADERS, b"definitely not snappy".to_vec()).await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&resp));
    let garbage = snap::raw::Encoder::new()
        .compress_vec(b"\x0a\xff\xff\xff\xff\x0f")
        .unwrap();
    let before = c.rejected("malformed").await;
    let (status, _, resp) = post(&url, &RW_HEADERS, garbage).await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&resp));
    assert!(String::from_utf8_lossy(&resp).contains("protobuf"));
    assert_eq!(c.rejected("malformed").await, before + 1);
    let (status, _, _) = post(
        &url,
        &[
            ("content-type", "application/json"),
            ("content-encoding", "snappy"),
        ],
        vec![],
    )
    .await;
    assert_eq!(status, 415);
    c.stop().await;
}

#[tokio::test]
async fn auth_and_tenants() {
    let c = start("auth:\n  tokens:\n    - {token: tok-a, tenant: team-a}\n    - {token: tok-b, tenant: team-b}\n").await;
    let t = now_ms() - 60_000;
    let url = format!("{}/api/v1/write", c.http);
    let b = body(vec![series(&[("__name__", "secret_metric")], &[(t, 42.0)])]);

    let mut h = RW_HEADERS.to_vec();
    let (status, _, _) = post(&url, &h, b.clone()).await;
    assert_eq!(status, 401);
    assert_eq!(c.rejected("unauthenticated").await, 1);
    h.push(("authorization", "Bearer wrong"));
    let (status, _, resp) = post(&url, &h, b.clone()).await;
    assert_eq!(status, 401);
    assert!(
        !String::from_utf8_lossy(&resp).contains("wrong"),
        "token echoed back"
    );
    assert_eq!(c.rejected("unauthenticated").await, 2);
    h.pop();
    h.push(("authorization", "Bearer tok-a"));
    let (status, _, resp) = post(&url, &h, b.clone()).await;
    assert_eq!(status, 204, "{}", String::from_utf8_lossy(&resp));
    h.push(("x-scope-orgid", "team-b"));
    let (status, _, _) = post(&url, &h, b.clone()).await;
    assert_eq!(status, 403);

    // reads: A sees its data, B does not, no token is refused
    assert_eq!(
        instant(
            &c.http,
            "secret_metric",
            t,
            &[("authorization", "Bearer tok-a")]
        )
        .await
        .len(),
        1
    );
    assert!(instant(
        &c.http,
        "secret_metric",
        t,
        &[("authorization", "Bearer tok-b")]
    )
    .await
    .is_empty());
    let (status, v) = get_json(&format!("{}/api/v1/query?query=secret_metric", c.http), &[]).await;
    assert_eq!(status, 401, "{v}");
    let (status, _) = get_json(
        &format!("{}/api/v1/query?query=secret_metric", c.http),
        &[
            ("authorization", "Bearer tok-b"),
            ("x-scope-orgid", "team-a"),
        ],
    )
    .await;
    assert_eq!(status, 403);
    for path in [
        "/api/v1/labels",
        "/api/v1/series?match[]=up",
        "/api/v1/label/job/values",
        "/api/traces/01",
        "/loki/api/v1/query_range?query=%7Ba%3D%22b%22%7D",
    ] {
        let (status, _) = get(&format!("{}{path}", c.http), &[]).await;
        assert_eq!(status, 401, "{path}");
    }
    let (status, _, _) = post(
        &format!("{}/v1/metrics", c.otlp),
        &[("content-type", "application/x-protobuf")],
        vec![],
    )
    .await;
    assert_eq!(status, 401);
    let mut client = sightline_proto::otlp::collector::metrics::v1::metrics_service_client::MetricsServiceClient::connect(c.grpc.clone())
        .await
        .unwrap();
    let err = client
        .export(gauge_request("s", "g", &[(t, 1.0)]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    let mut req = tonic::Request::new(gauge_request("s", "grpc_auth", &[(t, 1.0)]));
    req.metadata_mut()
        .insert("authorization", "Bearer tok-b".parse().unwrap());
    client.export(req).await.unwrap();
    assert_eq!(
        instant(
            &c.http,
            r#"{__name__=~"grpc_auth.*"}"#,
            t,
            &[("authorization", "Bearer tok-b")]
        )
        .await
        .len(),
        1
    );
    assert!(instant(
        &c.http,
        r#"{__name__=~"grpc_auth.*"}"#,
        t,
        &[("authorization", "Bearer tok-a")]
    )
    .await
    .is_empty());

    // health and self-metrics stay open
    for path in ["/-/ready", "/-/healthy", "/metrics"] {
        assert_eq!(
            get(&format!("{}{path}", c.http), &[]).await.0,
            200,
            "{path}"
        );
    }
    assert!(c.rejected("unauthenticated").await >= 9);
    c.stop().await;
}

#[tokio::test]
async fn tenants_from_org_id_without_auth() {
    let c = start("").await;
    let t = now_ms() - 60_000;
    let mut h = RW_HEADERS.to_vec();
    h.push(("x-scope-orgid", "tenant-x"));
    let (status, _, _) = post(
        &format!("{}/api/v1/write", c.http),
        &h,
        body(vec![series(&[("__name__", "org_metric")], &[(t, 1.0)])]),
    )
    .await;
    assert_eq!(status, 204);
    assert_eq!(
        instant(&c.http, "org_metric", t, &[("x-scope-orgid", "tenant-x")])
            .await
            .len(),
        1
    );
    assert!(
        instant(&c.http, "org_metric", t, &[]).await.is_empty(),
        "default tenant must not see tenant-x"
    );
    let (status, _) = get(
        &format!("{}/api/v1/labels", c.http),
        &[("x-scope-orgid", "../etc")],
    )
    .await;
    assert_eq!(status, 400);
    c.stop().await;
}
