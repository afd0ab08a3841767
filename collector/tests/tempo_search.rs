//! Tempo API against a real collector, as Grafana's stock Tempo datasource uses it:
//! search by service, span name, duration, tags, TraceQL and time range; tag names
//! and values (v1 and v2); echo; trace by id as JSON and protobuf (v1 and v2);
//! bad requests answered 400; the scan cap counted.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns fail the test on error

mod harness;

use harness::*;
use prost::Message;
use serde_json::Value;
use sightline_proto::otlp::collector::trace::v1::ExportTraceServiceRequest;
use sightline_proto::otlp::common::v1::{any_value, AnyValue, KeyValue};
use sightline_proto::otlp::trace::v1::{
    status, ResourceSpans, ScopeSpans, Span, Status, TracesData,
};

const MS: i64 = 1_000_000;

fn int_kv(k: &str, v: i64) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(v)),
        }),
        ..Default::default()
    }
}

struct SpanSpec {
    service: &'static str,
    trace: u8,
    id: u8,
    parent: Option<u8>,
    name: &'static str,
    start_ns: i64,
    dur_ms: i64,
    status_code: Option<i64>,
    error: bool,
}

fn request(specs: &[&SpanSpec]) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: specs
            .iter()
            .map(|s| ResourceSpans {
                resource: resource(s.service),
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span {
                        trace_id: vec![s.trace; 16],
                        span_id: vec![s.id; 8],
                        parent_span_id: s.parent.map(|p| vec![p; 8]).unwrap_or_default(),
                        name: s.name.into(),
                        kind: 2,
                        start_time_unix_nano: s.start_ns as u64,
                        end_time_unix_nano: (s.start_ns + s.dur_ms * MS) as u64,
                        attributes: s
                            .status_code
                            .map(|c| vec![int_kv("http.status_code", c), kv("http.method", "GET")])
                            .unwrap_or_default(),
                        status: s.error.then(|| Status {
                            code: status::StatusCode::Error as i32,
                            message: "boom".into(),
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    }
}

/// GET returning status, content type and raw bytes.
async fn get_bytes(url: &str, accept: &str) -> (u16, String, Vec<u8>) {
    let url = url.to_string();
    let accept = accept.to_string();
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut resp = agent.get(&url).header("accept", &accept).call().unwrap();
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

async fn search(c: &TestCollector, query: &str) -> Value {
    let (status, v) = get_json(&format!("{}/api/search?{query}", c.http), &[]).await;
    assert_eq!(status, 200, "{query}: {v}");
    v
}

fn trace_ids(v: &Value) -> Vec<String> {
    v["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["traceID"].as_str().unwrap()[..2].to_string())
        .collect()
}

/// Pushes three traces: `aa` (api → db, 200 ms, error, 500), `bb` (api, 5 ms, 200)
/// within the last minutes, and `cc` (web, 1 s) two hours ago.
async fn push(c: &TestCollector) -> i64 {
    let now = now_ms() * MS;
    let t_a = now - 120_000 * MS;
    let t_b = now - 60_000 * MS;
    let t_c = now - 2 * 3_600_000 * MS;
    let specs = [
        SpanSpec {
            service: "api",
            trace: 0xaa,
            id: 1,
            parent: None,
            name: "GET /",
            start_ns: t_a,
            dur_ms: 200,
            status_code: Some(500),
            error: true,
        },
        SpanSpec {
            service: "db",
            trace: 0xaa,
            id: 2,
            parent: Some(1),
            name: "db query",
            start_ns: t_a + 10 * MS,
            dur_ms: 50,
            status_code: None,
            error: false,
        },
        SpanSpec {
            service: "api",
            trace: 0xbb,
            id: 3,
            parent: None,
            name: "GET /health",
            start_ns: t_b,
            dur_ms: 5,
            status_code: Some(200),
            error: false,
        },
        SpanSpec {
            service: "web",
            trace: 0xcc,
            id: 4,
            parent: None,
            name: "POST /cart",
            start_ns: t_c,
            dur_ms: 1000,
            status_code: Some(201),
            error: false,
        },
    ];
    // two requests, so the newer trace is in a newer memtable batch
    for part in [vec![&specs[0], &specs[1], &specs[3]], vec![&specs[2]]] {
        let (status, _, body) = post(
            &format!("{}/v1/traces", c.otlp),
            &[("content-type", "application/x-protobuf")],
            request(&part).encode_to_vec(),
        )
        .await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
    t_c
}

async fn check_search(c: &TestCollector, t_c: i64) {
    // default window: the last hour, newest first
    let v = search(c, "").await;
    assert_eq!(trace_ids(&v), vec!["bb", "aa"], "{v}");
    let a = &v["traces"][1];
    assert_eq!(a["rootServiceName"], "api");
    assert_eq!(a["rootTraceName"], "GET /");
    assert_eq!(a["durationMs"], 200);
    assert!(a["startTimeUnixNano"]
        .as_str()
        .unwrap()
        .parse::<i64>()
        .is_ok());
    assert_eq!(v["metrics"]["inspectedTraces"], 2);
    assert!(
        v["metrics"]["inspectedBytes"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );

    // tags (logfmt, case-insensitive substring), durations, limit
    let tags = |t: &str| format!("tags={}", urlencode(t));
    assert_eq!(
        trace_ids(&search(c, &tags("service.name=api")).await),
        vec!["bb", "aa"]
    );
    let v = search(c, &tags("service.name=DB")).await;
    assert_eq!(trace_ids(&v), vec!["aa"]);
    assert_eq!(
        v["traces"][0]["rootServiceName"], "api",
        "the root's service"
    );
    assert_eq!(
        trace_ids(&search(c, &tags("service.name=api http.status_code=500")).await),
        vec!["aa"]
    );
    assert_eq!(
        trace_ids(&search(c, &tags("name=health")).await),
        vec!["bb"]
    );
    assert!(trace_ids(&search(c, &tags("service.name=nope")).await).is_empty());
    assert_eq!(trace_ids(&search(c, "minDuration=100ms").await), vec!["aa"]);
    assert_eq!(trace_ids(&search(c, "maxDuration=10ms").await), vec!["bb"]);
    assert_eq!(trace_ids(&search(c, "limit=1").await), vec!["bb"]);

    // TraceQL, as Grafana's search builder writes it
    let q = |q: &str| format!("q={}", urlencode(q));
    let v = search(
        c,
        &q(r#"{ resource.service.name = "api" && span.http.status_code >= 500 && duration > 100ms && name = "GET /" }"#),
    )
    .await;
    assert_eq!(trace_ids(&v), vec!["aa"], "{v}");
    let set = &v["traces"][0]["spanSet"];
    assert_eq!(set["matched"], 1);
    let span = &set["spans"][0];
    assert_eq!(span["spanID"], "0101010101010101");
    assert_eq!(span["durationNanos"], (200 * MS).to_string());
    let keys: Vec<&str> = span["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, vec!["service.name", "http.status_code"]);
    assert_eq!(v["traces"][0]["spanSets"][0], *set);
    assert_eq!(
        trace_ids(&search(c, &q("{ status = error }")).await),
        vec!["aa"]
    );
    assert_eq!(
        trace_ids(&search(c, &q(r#"{ .service.name = "db" }"#)).await),
        vec!["aa"]
    );
    assert_eq!(
        trace_ids(&search(c, &q(r#"{ name =~ "GET.*" && duration < 10ms }"#)).await),
        vec!["bb"]
    );
    assert_eq!(trace_ids(&search(c, &q("{}")).await).len(), 2);

    // an explicit range finds the old trace
    let range = format!(
        "start={}&end={}",
        t_c / 1_000_000_000 - 1,
        t_c / 1_000_000_000 + 1
    );
    let v = search(c, &range).await;
    assert_eq!(trace_ids(&v), vec!["cc"], "{v}");
    assert_eq!(v["traces"][0]["durationMs"], 1000);
    let v = search(
        c,
        &format!("{range}&{}", q(r#"{ resource.service.name = "web" }"#)),
    )
    .await;
    assert_eq!(trace_ids(&v), vec!["cc"]);

    // bad requests are 400 with a message
    for bad in [
        q(r#"{ .a = "b" } | count() > 1"#),
        q(r#"{ .a = "#),
        "limit=ten".into(),
        "minDuration=fast".into(),
        "start=200&end=100".into(),
        tags("novalue"),
    ] {
        let (status, body) = get(&format!("{}/api/search?{bad}", c.http), &[]).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(!body.trim().is_empty());
    }
}

async fn check_tags(c: &TestCollector) {
    let (s, v) = get_json(&format!("{}/api/search/tags", c.http), &[]).await;
    assert_eq!(s, 200, "{v}");
    let names: Vec<&str> = v["tagNames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["http.method", "http.status_code", "service.name"]
    );
    let (_, v) = get_json(&format!("{}/api/search/tags?scope=intrinsic", c.http), &[]).await;
    assert!(v["tagNames"]
        .as_array()
        .unwrap()
        .contains(&Value::from("name")));
    let (s, _) = get(&format!("{}/api/search/tags?scope=bogus", c.http), &[]).await;
    assert_eq!(s, 400);

    let (s, v) = get_json(&format!("{}/api/v2/search/tags", c.http), &[]).await;
    assert_eq!(s, 200, "{v}");
    let scopes: Vec<&str> = v["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(scopes, vec!["resource", "span", "intrinsic"]);
    assert_eq!(v["scopes"][0]["tags"], serde_json::json!(["service.name"]));
    assert_eq!(
        v["scopes"][1]["tags"],
        serde_json::json!(["http.method", "http.status_code"])
    );
    let (_, v) = get_json(&format!("{}/api/v2/search/tags?scope=span", c.http), &[]).await;
    assert_eq!(v["scopes"].as_array().unwrap().len(), 1);

    let (s, v) = get_json(
        &format!("{}/api/search/tag/service.name/values", c.http),
        &[],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["tagValues"],
        serde_json::json!(["api", "db"]),
        "web is older than an hour"
    );

    let (_, v) = get_json(
        &format!("{}/api/v2/search/tag/resource.service.name/values", c.http),
        &[],
    )
    .await;
    assert_eq!(
        v["tagValues"],
        serde_json::json!([{"type": "string", "value": "api"}, {"type": "string", "value": "db"}])
    );
    let (_, v) = get_json(
        &format!("{}/api/v2/search/tag/span.http.status_code/values", c.http),
        &[],
    )
    .await;
    assert_eq!(
        v["tagValues"],
        serde_json::json!([{"type": "int", "value": "200"}, {"type": "int", "value": "500"}])
    );
    let url = format!(
        "{}/api/v2/search/tag/.service.name/values?q={}",
        c.http,
        urlencode("{ span.http.status_code = 500 }")
    );
    let (_, v) = get_json(&url, &[]).await;
    assert_eq!(
        v["tagValues"],
        serde_json::json!([{"type": "string", "value": "api"}])
    );
    let (_, v) = get_json(&format!("{}/api/v2/search/tag/status/values", c.http), &[]).await;
    assert_eq!(
        v["tagValues"],
        serde_json::json!([{"type": "keyword", "value": "error"}, {"type": "keyword", "value": "unset"}])
    );
    let (s, _) = get(
        &format!("{}/api/v2/search/tag/nonsense/values", c.http),
        &[],
    )
    .await;
    assert_eq!(s, 400);
}

#[derive(Clone, PartialEq, prost::Message)]
struct TraceByIdResponse {
    #[prost(message, optional, tag = "1")]
    trace: Option<TracesData>,
}

async fn check_trace_by_id(c: &TestCollector) {
    let id = "aa".repeat(16);
    let (s, ct, body) = get_bytes(
        &format!("{}/api/traces/{id}", c.http),
        "application/protobuf",
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(ct, "application/protobuf");
    let data = TracesData::decode(&body[..]).unwrap();
    let spans: Vec<&Span> = data
        .resource_spans
        .iter()
        .flat_map(|r| r.scope_spans.iter().flat_map(|s| s.spans.iter()))
        .collect();
    assert_eq!(spans.len(), 2);
    assert_eq!(spans[0].trace_id, vec![0xaa; 16]);
    assert_eq!(spans[0].name, "GET /");
    assert_eq!(spans[0].status.as_ref().unwrap().code, 2);
    assert_eq!(spans[1].parent_span_id, vec![1; 8]);

    let (s, ct, body) = get_bytes(
        &format!("{}/api/v2/traces/{id}", c.http),
        "application/protobuf",
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(ct, "application/protobuf");
    let wrapped = TraceByIdResponse::decode(&body[..]).unwrap();
    assert_eq!(wrapped.trace.unwrap(), data);

    let (s, v) = get_json(&format!("{}/api/v2/traces/{id}", c.http), &[]).await;
    assert_eq!(s, 200);
    assert_eq!(v["trace"]["resourceSpans"].as_array().unwrap().len(), 2);
    let (s, v) = get_json(&format!("{}/api/traces/{id}", c.http), &[]).await;
    assert_eq!(s, 200);
    assert_eq!(v["batches"].as_array().unwrap().len(), 2);
    let (s, _) = get(&format!("{}/api/traces/{}", c.http, "ab".repeat(16)), &[]).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn tempo_search_tags_and_traces_like_grafana() {
    let c = start("").await;
    let (s, body) = get(&format!("{}/api/echo", c.http), &[]).await;
    assert_eq!((s, body.trim()), (200, "echo"));
    let t_c = push(&c).await;

    check_search(&c, t_c).await;
    check_tags(&c).await;
    check_trace_by_id(&c).await;

    // the same answers once everything is in Parquet parts
    let (s, _, _) = post(&format!("{}/api/v1/admin/flush", c.http), &[], vec![]).await;
    assert_eq!(s, 204);
    check_search(&c, t_c).await;
    check_tags(&c).await;
    check_trace_by_id(&c).await;

    let (_, text) = get(&format!("{}/metrics", c.http), &[]).await;
    assert!(
        text.lines().any(|l| l
            .starts_with(r#"sightline_collector_requests_total{protocol="tempo_api",code="200"}"#)),
        "{text}"
    );
    assert!(text.contains(r#"sightline_collector_requests_total{protocol="tempo_api",code="400"}"#));
    c.stop().await;
}

#[tokio::test]
async fn tempo_search_scan_cap_is_counted() {
    let c = start("query: {max_search_spans: 2}\n").await;
    push(&c).await;
    // three spans in the last hour, two read (newest request first)
    let v = search(&c, "").await;
    assert_eq!(trace_ids(&v)[0], "bb", "{v}");
    let (_, text) = get(&format!("{}/metrics", c.http), &[]).await;
    assert!(
        text.contains(r#"sightline_collector_query_limit_hits_total{limit="search_spans"} 1"#),
        "{text}"
    );
    c.stop().await;
}
