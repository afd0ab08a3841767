//! The Loki API against a real collector: OTLP/HTTP logs in (logfmt and JSON
//! bodies, several streams, mined pattern ids), every endpoint and LogQL operator
//! out, checked against results computed by hand (including metric queries with
//! their step alignment), plus Loki's error answers and the query counters.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns fail the test on error

mod harness;

use harness::*;
use serde_json::{json, Value};

const S: i64 = 1_000_000_000;

/// One OTLP/JSON log record: (offset from t0 in s, body, pattern, severity number).
type Rec = (i64, &'static str, Option<&'static str>, i32);

fn resource_logs(service: &str, namespace: &str, t0: i64, recs: &[Rec]) -> Value {
    let records: Vec<Value> = recs
        .iter()
        .map(|(off, body, pattern, sev)| {
            let mut attrs = vec![json!({"key": "http.route", "value": {"stringValue": "/x"}})];
            if let Some(p) = pattern {
                attrs.push(json!({"key": "sightline.log.pattern", "value": {"stringValue": p}}));
            }
            json!({
                "timeUnixNano": (t0 + off * S).to_string(),
                "severityNumber": sev,
                "body": {"stringValue": body},
                "attributes": attrs,
            })
        })
        .collect();
    json!({
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": service}},
            {"key": "k8s.namespace.name", "value": {"stringValue": namespace}},
        ]},
        "scopeLogs": [{"logRecords": records}],
    })
}

async fn push(c: &TestCollector, t0: i64) {
    let api: &[Rec] = &[
        (1, "level=info msg=ok status=200 took=10ms", Some("p-ok"), 9),
        (
            2,
            "level=error msg=\"db down\" status=503 took=1.5s",
            Some("p-err"),
            17,
        ),
        (
            61,
            "level=info msg=ok status=200 took=20ms",
            Some("p-ok"),
            9,
        ),
        (
            120,
            "level=warn msg=slow status=200 took=900ms",
            Some("p-slow"),
            13,
        ),
    ];
    let web: &[Rec] = &[
        (
            3,
            r#"{"level":"info","req":{"method":"GET","status":200},"bytes":512}"#,
            None,
            0,
        ),
        (
            61,
            r#"{"level":"error","req":{"method":"POST","status":500},"bytes":64}"#,
            None,
            0,
        ),
        (62, "not json at all", None, 0),
    ];
    let worker: &[Rec] = &[(90, "job 42 finished", None, 9)];
    let body = json!({"resourceLogs": [
        resource_logs("api", "shop", t0, api),
        resource_logs("web", "shop", t0, web),
        resource_logs("worker", "batch", t0, worker),
    ]});
    let (status, _, resp) = post(
        &format!("{}/v1/logs", c.otlp),
        &[("content-type", "application/json")],
        serde_json::to_vec(&body).unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&resp));
}

/// GET `path` with `params` (URL-encoded here); returns status and JSON (or text).
async fn loki(c: &TestCollector, path: &str, params: &[(&str, String)]) -> (u16, Value) {
    loki_h(c, path, params, &[]).await
}

async fn loki_h(
    c: &TestCollector,
    path: &str,
    params: &[(&str, String)],
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let qs: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
        .collect();
    get_json(
        &format!("{}/loki/api/v1/{path}?{}", c.http, qs.join("&")),
        headers,
    )
    .await
}

fn range(t0: i64, from_s: i64, to_s: i64) -> Vec<(&'static str, String)> {
    vec![
        ("start", (t0 + from_s * S).to_string()),
        ("end", (t0 + to_s * S).to_string()),
    ]
}

fn with(
    mut p: Vec<(&'static str, String)>,
    extra: &[(&'static str, &str)],
) -> Vec<(&'static str, String)> {
    p.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    p
}

/// `(stream labels, [line])` of a streams answer, in answer order.
fn streams(v: &Value) -> Vec<(Value, Vec<String>)> {
    assert_eq!(v["status"], "success", "{v}");
    assert_eq!(v["data"]["resultType"], "streams", "{v}");
    v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let lines = s["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e[1].as_str().unwrap().to_string())
                .collect();
            (s["stream"].clone(), lines)
        })
        .collect()
}

/// `(metric labels, [(seconds since t0, value)])` of a matrix answer.
fn matrix(v: &Value, t0: i64) -> Vec<(Value, Vec<(i64, String)>)> {
    assert_eq!(v["data"]["resultType"], "matrix", "{v}");
    v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let pts = s["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    let t = p[0].as_i64().unwrap();
                    (t - t0 / S, p[1].as_str().unwrap().to_string())
                })
                .collect();
            (s["metric"].clone(), pts)
        })
        .collect()
}

fn pts(p: &[(i64, &str)]) -> Vec<(i64, String)> {
    p.iter().map(|(t, v)| (*t, v.to_string())).collect()
}

#[tokio::test]
async fn loki_api_serves_log_and_metric_queries() {
    let c = start("").await;
    // whole minutes, ten minutes ago: step timestamps are whole seconds
    let t0 = (now_ms() / 60_000 - 10) * 60_000 * 1_000_000;
    push(&c, t0).await;
    let all = range(t0, 0, 300);

    // --- labels, label values, series, index stats
    let (s, v) = loki(&c, "labels", &all).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v,
        json!({"status": "success", "data": ["k8s_namespace_name", "service_name"]})
    );
    let (_, v) = loki(&c, "label/service_name/values", &all).await;
    assert_eq!(v["data"], json!(["api", "web", "worker"]));
    let (_, v) = loki(
        &c,
        "label/service_name/values",
        &with(all.clone(), &[("query", r#"{k8s_namespace_name="shop"}"#)]),
    )
    .await;
    assert_eq!(v["data"], json!(["api", "web"]));
    let (_, v) = loki(
        &c,
        "series",
        &with(
            all.clone(),
            &[("match[]", r#"{service_name=~"api|worker"}"#)],
        ),
    )
    .await;
    assert_eq!(
        v,
        json!({"status": "success", "data": [
            {"k8s_namespace_name": "batch", "service_name": "worker"},
            {"k8s_namespace_name": "shop", "service_name": "api"},
        ]})
    );
    // POST form, two match[]
    let form = format!(
        "match[]={}&match[]={}&start={}&end={}",
        urlencode(r#"{service_name="web"}"#),
        urlencode(r#"{service_name="worker"}"#),
        t0,
        t0 + 300 * S
    );
    let (s, _, body) = post(
        &format!("{}/loki/api/v1/series", c.http),
        &[("content-type", "application/x-www-form-urlencoded")],
        form.into_bytes(),
    )
    .await;
    assert_eq!(s, 200);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 2, "{v}");
    let (_, v) = loki(
        &c,
        "index/stats",
        &with(all.clone(), &[("query", r#"{k8s_namespace_name="shop"}"#)]),
    )
    .await;
    let shop_lines = [
        "level=info msg=ok status=200 took=10ms",
        "level=error msg=\"db down\" status=503 took=1.5s",
        "level=info msg=ok status=200 took=20ms",
        "level=warn msg=slow status=200 took=900ms",
        r#"{"level":"info","req":{"method":"GET","status":200},"bytes":512}"#,
        r#"{"level":"error","req":{"method":"POST","status":500},"bytes":64}"#,
        "not json at all",
    ];
    let shop_bytes: usize = shop_lines.iter().map(|l| l.len()).sum();
    let api_bytes: usize = shop_lines[..4].iter().map(|l| l.len()).sum();
    assert_eq!(
        v,
        json!({"streams": 2, "chunks": 2, "entries": 7, "bytes": shop_bytes})
    );

    // --- log queries
    let q = |query: &str| with(all.clone(), &[("query", query)]);
    let (_, v) = loki(&c, "query_range", &q(r#"{service_name="api"}"#)).await;
    let st = streams(&v);
    // without categorize-labels, metadata (pattern, detected_level) splits streams
    assert_eq!(st.len(), 3, "{v}");
    assert_eq!(
        st.iter()
            .map(|(l, _)| l["pattern"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec!["p-err", "p-ok", "p-slow"]
    );
    assert_eq!(st[1].0["detected_level"], "info");
    assert_eq!(st[1].0["service_name"], "api");
    // backward: newest first within the stream
    assert_eq!(
        st[1].1,
        vec![
            "level=info msg=ok status=200 took=20ms",
            "level=info msg=ok status=200 took=10ms"
        ]
    );
    let (_, v) = loki(
        &c,
        "query_range",
        &with(q(r#"{service_name="api"}"#), &[("limit", "1")]),
    )
    .await;
    assert_eq!(
        streams(&v)[0].1,
        vec!["level=warn msg=slow status=200 took=900ms"]
    );
    let (_, v) = loki(
        &c,
        "query_range",
        &with(
            q(r#"{service_name="api"}"#),
            &[("limit", "1"), ("direction", "forward")],
        ),
    )
    .await;
    assert_eq!(
        streams(&v)[0].1,
        vec!["level=info msg=ok status=200 took=10ms"]
    );

    // categorize-labels (what Grafana asks for): stream labels stay the index labels
    let (_, v) = loki_h(
        &c,
        "query_range",
        &q(r#"{service_name="api"} | logfmt | status >= 500"#),
        &[("X-Loki-Response-Encoding-Flags", "categorize-labels")],
    )
    .await;
    assert_eq!(v["data"]["encodingFlags"], json!(["categorize-labels"]));
    let r = &v["data"]["result"];
    assert_eq!(r.as_array().unwrap().len(), 1, "{v}");
    assert_eq!(
        r[0]["stream"],
        json!({"k8s_namespace_name": "shop", "service_name": "api"})
    );
    let entry = &r[0]["values"][0];
    assert_eq!(entry[0], (t0 + 2 * S).to_string());
    assert_eq!(
        entry[2]["structuredMetadata"],
        json!({"detected_level": "error", "pattern": "p-err"})
    );
    assert_eq!(
        entry[2]["parsed"],
        json!({"level": "error", "msg": "db down", "status": "503", "took": "1.5s"})
    );

    let lines = |v: &Value| -> Vec<String> {
        let mut out: Vec<(String, String)> = v["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| {
                s["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| {
                        (
                            e[0].as_str().unwrap().to_string(),
                            e[1].as_str().unwrap().to_string(),
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        out.sort();
        out.into_iter().map(|(_, l)| l).collect()
    };
    let cases: &[(&str, &[&str])] = &[
        (
            r#"{service_name="api"} |= "status=200" != "warn""#,
            &[
                "level=info msg=ok status=200 took=10ms",
                "level=info msg=ok status=200 took=20ms",
            ],
        ),
        (
            r#"{service_name="api"} |~ "took=[0-9]+ms" !~ "900""#,
            &[
                "level=info msg=ok status=200 took=10ms",
                "level=info msg=ok status=200 took=20ms",
            ],
        ),
        (
            r#"{service_name=~".+"} |= "slow" or "job""#,
            &[
                "job 42 finished",
                "level=warn msg=slow status=200 took=900ms",
            ],
        ),
        (
            r#"{service_name="api"} | logfmt | took > 500ms and level!="error""#,
            &["level=warn msg=slow status=200 took=900ms"],
        ),
        (
            r#"{service_name="api"} | logfmt | level="error" or msg="slow""#,
            &[
                "level=error msg=\"db down\" status=503 took=1.5s",
                "level=warn msg=slow status=200 took=900ms",
            ],
        ),
        (
            r#"{service_name="api"} | pattern="p-ok" | logfmt | line_format "{{.level | upper}} {{.took}}""#,
            &["INFO 10ms", "INFO 20ms"],
        ),
        (
            r#"{service_name="web"} | json | __error__="" | req_status >= 500 | line_format "{{.req_method}} {{.bytes}}""#,
            &["POST 64"],
        ),
        (
            r#"{service_name="web"} | json | __error__!="" | line_format "{{.__error__}}""#,
            &["JSONParserErr"],
        ),
        (
            r#"{k8s_namespace_name="shop"} | detected_level="error""#,
            &["level=error msg=\"db down\" status=503 took=1.5s"],
        ),
        (
            r#"{service_name="api"} | logfmt | label_format lvl=level | lvl="warn""#,
            &["level=warn msg=slow status=200 took=900ms"],
        ),
    ];
    for (query, want) in cases {
        let (s, v) = loki(&c, "query_range", &q(query)).await;
        assert_eq!(s, 200, "{query}: {v}");
        assert_eq!(lines(&v), *want, "{query}: {v}");
    }
    // times as RFC 3339 and float seconds select the same entries; end is exclusive
    let secs = |off: i64| format!("{}.0", (t0 + off * S) / S);
    let (_, v) = loki(
        &c,
        "query_range",
        &[
            ("query", r#"{service_name="api"}"#.to_string()),
            ("start", secs(1)),
            ("end", secs(61)),
        ],
    )
    .await;
    assert_eq!(lines(&v).len(), 2, "{v}");
    let rfc = |off: i64| rfc3339(t0 + off * S);
    let (_, v) = loki(
        &c,
        "query_range",
        &[
            ("query", r#"{service_name="api"}"#.to_string()),
            ("start", rfc(1)),
            ("end", rfc(62)),
        ],
    )
    .await;
    assert_eq!(lines(&v).len(), 3, "{v}");

    // --- metric queries: steps at start, start+step, ...; windows (t-range, t]
    let mq = |query: &str, from: i64, to: i64, step: &str| {
        with(range(t0, from, to), &[("query", query), ("step", step)])
    };
    let (s, v) = loki(
        &c,
        "query_range",
        &mq(
            r#"sum by (level) (count_over_time({service_name="api"} | logfmt [1m]))"#,
            60,
            180,
            "60s",
        ),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    // t=60: (0,60] -> 1s info, 2s error; t=120: (60,120] -> 61s info, 120s warn; t=180: none
    assert_eq!(
        matrix(&v, t0),
        vec![
            (json!({"level": "error"}), pts(&[(60, "1")])),
            (json!({"level": "info"}), pts(&[(60, "1"), (120, "1")])),
            (json!({"level": "warn"}), pts(&[(120, "1")])),
        ]
    );
    // a step that does not divide the start: t = 30, 75, 120 (step 45s)
    let (_, v) = loki(
        &c,
        "query_range",
        &mq(
            r#"sum(count_over_time({k8s_namespace_name="shop"}[1m]))"#,
            30,
            120,
            "45",
        ),
    )
    .await;
    // (-30,30]: 1,2,3 -> 3; (15,75]: 61,61,62 -> 3; (60,120]: 61,61,62,120 -> 4
    assert_eq!(
        matrix(&v, t0),
        vec![(json!({}), pts(&[(30, "3"), (75, "3"), (120, "4")]))]
    );
    let (_, v) = loki(
        &c,
        "query_range",
        &mq(r#"rate({service_name="worker"}[2m])"#, 60, 120, "1m"),
    )
    .await;
    assert_eq!(
        matrix(&v, t0),
        vec![(
            json!({"detected_level": "info", "k8s_namespace_name": "batch", "service_name": "worker"}),
            pts(&[(120, &(1.0f64 / 120.0).to_string())])
        )]
    );
    let (_, v) = loki(
        &c,
        "query_range",
        &mq(
            r#"sum by (service_name) (bytes_over_time({k8s_namespace_name="shop"}[5m]))"#,
            300,
            300,
            "60s",
        ),
    )
    .await;
    assert_eq!(
        matrix(&v, t0),
        vec![
            (
                json!({"service_name": "api"}),
                pts(&[(300, &api_bytes.to_string())])
            ),
            (
                json!({"service_name": "web"}),
                pts(&[(300, &(shop_bytes - api_bytes).to_string())])
            ),
        ]
    );
    let (_, v) = loki(
        &c,
        "query_range",
        &mq(
            r#"sum by (pattern) (count_over_time({service_name="api"}[5m]))"#,
            300,
            300,
            "60s",
        ),
    )
    .await;
    assert_eq!(
        matrix(&v, t0),
        vec![
            (json!({"pattern": "p-err"}), pts(&[(300, "1")])),
            (json!({"pattern": "p-ok"}), pts(&[(300, "2")])),
            (json!({"pattern": "p-slow"}), pts(&[(300, "1")])),
        ]
    );
    let (_, v) = loki(
        &c,
        "query_range",
        &mq(
            r#"topk(1, sum by (service_name) (count_over_time({service_name=~".+"}[5m])))"#,
            300,
            300,
            "60s",
        ),
    )
    .await;
    assert_eq!(
        matrix(&v, t0),
        vec![(json!({"service_name": "api"}), pts(&[(300, "4")]))]
    );
    let (_, v) = loki(
        &c,
        "query_range",
        &mq(
            r#"max(max_over_time({service_name="api"} | logfmt | unwrap duration(took) [5m]))"#,
            300,
            300,
            "60s",
        ),
    )
    .await;
    assert_eq!(matrix(&v, t0), vec![(json!({}), pts(&[(300, "1.5")]))]);

    // instant queries: vector
    let (s, v) = loki(
        &c,
        "query",
        &[
            ("query", r#"sum by (level) (count_over_time({service_name="web"} | json | __error__="" [2m]))"#.into()),
            ("time", (t0 + 120 * S).to_string()),
        ],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["resultType"], "vector");
    let got: Vec<(Value, Value)> = v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["metric"].clone(), r["value"].clone()))
        .collect();
    let t120 = json!((t0 + 120 * S) / S);
    assert_eq!(
        got,
        vec![
            (json!({"level": "error"}), json!([t120, "1"])),
            (json!({"level": "info"}), json!([t120, "1"])),
        ]
    );

    // Grafana's "Save & test": an instant vector(1)+vector(1), and the build info
    let (s, v) = loki(
        &c,
        "query",
        &[
            ("query", "vector(1)+vector(1)".into()),
            ("time", "1700000000".into()),
        ],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["data"]["result"],
        json!([{"metric": {}, "value": [1_700_000_000i64, "2"]}])
    );
    let (s, v) = loki(&c, "status/buildinfo", &[]).await;
    assert_eq!(s, 200);
    assert!(v["version"].as_str().unwrap().starts_with('3'), "{v}");

    // --- errors: Loki's status and plain-text body
    let (s, v) = loki(&c, "query_range", &q(r#"{service_name="api"} | logfmt | "#)).await;
    assert_eq!(s, 400);
    assert!(
        v.as_str()
            .unwrap()
            .starts_with("parse error at line 1, col"),
        "{v}"
    );
    let (s, v) = loki(&c, "query", &[("query", r#"{service_name="api"}"#.into())]).await;
    assert_eq!(s, 400);
    assert!(v.as_str().unwrap().contains("instant query"), "{v}");
    let (s, v) = loki(
        &c,
        "query_range",
        &mq(
            r#"count_over_time({service_name="web"} | json [5m])"#,
            300,
            300,
            "60s",
        ),
    )
    .await;
    assert_eq!(s, 400);
    assert!(v.as_str().unwrap().contains("JSONParserErr"), "{v}");
    let (s, v) = loki(
        &c,
        "query_range",
        &with(q(r#"{service_name="api"}"#), &[("limit", "50001")]),
    )
    .await;
    assert_eq!(s, 400);
    assert!(v.as_str().unwrap().contains("max entries limit"), "{v}");
    let (s, _) = loki(
        &c,
        "query_range",
        &with(q(r#"{service_name="api"}"#), &[("start", "yesterday")]),
    )
    .await;
    assert_eq!(s, 400);
    let (s, v) = loki(
        &c,
        "query_range",
        &mq(r#"rate({service_name="api"}[1m])"#, 0, 300, "0.001"),
    )
    .await;
    assert_eq!(s, 400);
    assert!(v.as_str().unwrap().contains("maximum resolution"), "{v}");
    let (s, v) = loki(
        &c,
        "series",
        &with(all.clone(), &[("match[]", r#"{a=~".*"}"#)]),
    )
    .await;
    assert_eq!(s, 400, "{v}");

    // --- counters
    let text = get(&format!("{}/metrics", c.http), &[]).await.1;
    let count = |labels: &str| -> f64 {
        let prefix = format!("sightline_collector_loki_queries_total{{{labels}}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    assert!(
        count(r#"endpoint="query_range",outcome="success""#) >= 20.0,
        "{text}"
    );
    assert_eq!(
        count(r#"endpoint="query_range",outcome="bad_request""#),
        4.0,
        "{text}"
    );
    assert_eq!(
        count(r#"endpoint="query_range",outcome="limit""#),
        1.0,
        "{text}"
    );
    assert_eq!(
        count(r#"endpoint="query",outcome="bad_request""#),
        1.0,
        "{text}"
    );
    assert_eq!(
        count(r#"endpoint="labels",outcome="success""#),
        1.0,
        "{text}"
    );
    assert_eq!(
        count(r#"endpoint="series",outcome="bad_request""#),
        1.0,
        "{text}"
    );
    assert_eq!(
        count(r#"endpoint="index_stats",outcome="success""#),
        1.0,
        "{text}"
    );
    c.stop().await;
}

/// `2024-01-02T03:04:05.5Z` for a nanosecond timestamp.
fn rfc3339(ns: i64) -> String {
    let secs = ns.div_euclid(S);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}
