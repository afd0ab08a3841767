//! The `query:` limits against a real collector: a PromQL query over each limit gets
//! exactly Prometheus' error shape and status, series/labels answers are cut with a
//! warning, POST form bodies work like GET, and
//! `sightline_collector_query_limit_hits_total{limit}` moves.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns fail the test on error

mod harness;

use harness::*;
use prost::Message;
use serde_json::{json, Value};

/// Five one-series metrics `m0`..`m4`, 60 samples each, one per second, ending `t`.
async fn push(c: &TestCollector, t: i64) {
    for i in 0..5 {
        let points: Vec<(i64, f64)> = (0..60).map(|k| (t - (59 - k) * 1000, k as f64)).collect();
        let body = gauge_request("svc", &format!("m{i}"), &points).encode_to_vec();
        let (status, _, resp) = post(
            &format!("{}/v1/metrics", c.otlp),
            &[("content-type", "application/x-protobuf")],
            body,
        )
        .await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&resp));
    }
}

async fn limit_hits(c: &TestCollector, limit: &str) -> u64 {
    let (_, text) = get(&format!("{}/metrics", c.http), &[]).await;
    let prefix = format!("sightline_collector_query_limit_hits_total{{limit=\"{limit}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0) as u64
}

async fn range_query(c: &TestCollector, q: &str, start_ms: i64, end_ms: i64) -> (u16, Value) {
    let url = format!(
        "{}/api/v1/query_range?query={}&start={}&end={}&step=1",
        c.http,
        urlencode(q),
        start_ms as f64 / 1000.0,
        end_ms as f64 / 1000.0
    );
    get_json(&url, &[]).await
}

#[tokio::test]
async fn query_limits_samples_series_and_truncation() {
    let c = start("query: {max_samples: 100, max_series: 3}\n").await;
    let t = now_ms() - 5_000;
    push(&c, t).await;

    // within the limits
    let (s, v) = range_query(&c, "m0", t - 59_000, t).await;
    assert_eq!(s, 200, "{v}");

    // two series, 120 samples loaded > max_samples 100
    let (s, v) = range_query(&c, r#"{__name__=~"m[01]"}"#, t - 59_000, t).await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(
        v,
        json!({"status": "error", "errorType": "execution",
               "error": "query processing would load too many samples into memory in query execution"})
    );
    assert_eq!(limit_hits(&c, "max_samples").await, 1);

    // five series > max_series 3, refused before loading samples
    let url = format!(
        "{}/api/v1/query?query={}&time={}",
        c.http,
        urlencode(r#"{__name__=~"m.*"}"#),
        t as f64 / 1000.0
    );
    let (s, v) = get_json(&url, &[]).await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["status"], "error");
    assert_eq!(v["errorType"], "execution");
    assert_eq!(v["error"], "query selects more than 3 series");
    assert_eq!(limit_hits(&c, "max_series").await, 1);

    // series / labels / label values: cut at max_series and at limit, with a warning
    let (s, v) = get_json(
        &format!(
            "{}/api/v1/series?match[]={}",
            c.http,
            urlencode(r#"{__name__=~"m.*"}"#)
        ),
        &[],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"].as_array().unwrap().len(), 3);
    assert!(
        v["warnings"][0].as_str().unwrap().contains("max_series"),
        "{v}"
    );
    assert_eq!(limit_hits(&c, "max_series").await, 2);
    let (_, v) = get_json(
        &format!("{}/api/v1/label/__name__/values?limit=2", c.http),
        &[],
    )
    .await;
    assert_eq!(v["data"], json!(["m0", "m1"]));
    assert_eq!(v["warnings"], json!(["results truncated due to limit"]));
    let (_, v) = get_json(&format!("{}/api/v1/labels?limit=1", c.http), &[]).await;
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    assert_eq!(v["warnings"], json!(["results truncated due to limit"]));
    let (_, v) = get_json(&format!("{}/api/v1/labels?limit=100", c.http), &[]).await;
    assert!(v.get("warnings").is_none(), "{v}");
    let (s, v) = get_json(&format!("{}/api/v1/labels?limit=x", c.http), &[]).await;
    assert_eq!((s, v["errorType"].as_str()), (400, Some("bad_data")));

    // POST form bodies work like GET, for queries and series (match[], start, end, limit)
    let form = format!(
        "query={}&start={}&end={}&step=15",
        urlencode("m0 + 1"),
        (t - 59_000) / 1000,
        t / 1000
    );
    let (s, _, body) = post(
        &format!("{}/api/v1/query_range", c.http),
        &[("content-type", "application/x-www-form-urlencoded")],
        form.into_bytes(),
    )
    .await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["resultType"], "matrix");
    let form = format!("query=m1&time={}", t as f64 / 1000.0);
    let (s, _, body) = post(
        &format!("{}/api/v1/query", c.http),
        &[("content-type", "application/x-www-form-urlencoded")],
        form.into_bytes(),
    )
    .await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["result"][0]["value"][1], "59");
    let form = format!(
        "match[]={}&match[]=m4&start={}&end={}&limit=1",
        urlencode("m3"),
        (t - 59_000) / 1000,
        t / 1000 + 1
    );
    let (s, _, body) = post(
        &format!("{}/api/v1/series", c.http),
        &[("content-type", "application/x-www-form-urlencoded")],
        form.into_bytes(),
    )
    .await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    assert_eq!(v["data"][0]["__name__"], "m3");
    assert_eq!(v["warnings"], json!(["results truncated due to limit"]));
    let form = format!("match[]=m4&start={}", t / 1000 + 3600);
    let (_, _, body) = post(
        &format!("{}/api/v1/labels", c.http),
        &[("content-type", "application/x-www-form-urlencoded")],
        form.into_bytes(),
    )
    .await;
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["data"], json!([]), "start after the data: {v}");
    c.stop().await;
}

#[tokio::test]
async fn query_limits_timeout() {
    let c = start("query: {timeout: 50ms}\n").await;
    let t = now_ms() - 5_000;
    push(&c, t).await;
    // a millisecond-step subquery over an hour: millions of steps
    let url = format!(
        "{}/api/v1/query?query={}&time={}",
        c.http,
        urlencode("count_over_time(m0[1h:1ms])"),
        t as f64 / 1000.0
    );
    let (s, v) = get_json(&url, &[]).await;
    assert_eq!(s, 503, "{v}");
    assert_eq!(v["status"], "error");
    assert_eq!(v["errorType"], "timeout");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("query timed out in "),
        "{v}"
    );
    assert_eq!(v.as_object().unwrap().len(), 3, "{v}");
    assert_eq!(limit_hits(&c, "timeout").await, 1);
    // the collector still answers
    let (s, _) = range_query(&c, "m0", t - 10_000, t).await;
    assert_eq!(s, 200);
    c.stop().await;
}

#[test]
fn query_limits_are_validated() {
    let cfg = sightline_collector::config::Config::parse(
        "query: {max_samples: 0, timeout: forever, max_concurrency: 0}\n",
    )
    .unwrap();
    let errs = cfg.validate().join("\n");
    for key in [
        "query.max_samples",
        "query.timeout",
        "query.max_concurrency",
    ] {
        assert!(errs.contains(key), "{key} missing in {errs}");
    }
}
