//! Bearer-token auth and tenant isolation: with `auth.tokens` configured, every read
//! and write endpoint refuses requests without a token or with an unknown one (401),
//! a token only ever sees its own tenant's data, a mismatching `X-Scope-OrgID` is
//! forbidden (403), the right token works, and no token ever reaches the logs.

// Test files: a failed unwrap is a failed test, also in helper functions.
#![allow(clippy::unwrap_used)]

use sightline_e2e::http_api::Http;
use sightline_e2e::otlp_grpc;
use sightline_e2e::remote_write::{self, series};
use sightline_e2e::{now_ms, now_ns, Collector, CollectorOptions};
use sightline_proto::otlp::collector::logs::v1::ExportLogsServiceRequest;
use sightline_proto::otlp::collector::trace::v1::ExportTraceServiceRequest;
use sightline_proto::otlp::common::v1::{any_value, AnyValue, KeyValue};
use sightline_proto::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use sightline_proto::otlp::resource::v1::Resource;
use sightline_proto::otlp::trace::v1::{ResourceSpans, ScopeSpans, Span};

const TOKEN_A: &str = "sl-e2e-token-A-3f9c1d7e5b";
const TOKEN_B: &str = "sl-e2e-token-B-8a2e64c0f1";
const WRONG_TOKEN: &str = "sl-e2e-wrong-token-77d0c5";
const TRACE_A: &str = "0af7651916cd43dd8448eb211c80319c";

fn config() -> String {
    format!("auth:\n  tokens:\n    - token: \"{TOKEN_A}\"\n      tenant: team-a\n    - token: \"{TOKEN_B}\"\n      tenant: team-b\n")
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

fn resource(service: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![kv("service.name", service)],
        ..Default::default()
    })
}

fn logs(service: &str, t_ns: i64) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(service),
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    time_unix_nano: t_ns as u64,
                    observed_time_unix_nano: t_ns as u64,
                    body: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(format!(
                            "hello from {service}"
                        ))),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn trace(service: &str, trace_hex: &str, t_ns: i64) -> ExportTraceServiceRequest {
    let trace_id = (0..16)
        .map(|i| u8::from_str_radix(&trace_hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(service),
            scope_spans: vec![ScopeSpans {
                spans: vec![Span {
                    trace_id,
                    span_id: vec![0, 0, 0, 0, 0, 0, 0, 1],
                    name: "auth-span".into(),
                    start_time_unix_nano: t_ns as u64,
                    end_time_unix_nano: t_ns as u64 + 1_000_000,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Every read and write endpoint, as (description, request) pairs answering a status.
fn every_endpoint(http: &Http, otlp_http: &Http, t_s: f64) -> Vec<(String, u16)> {
    let (s, e) = ((t_s - 60.0).to_string(), (t_s + 60.0).to_string());
    let (sn, en) = (((t_s - 60.0) * 1e9) as i64, ((t_s + 60.0) * 1e9) as i64);
    let (sn, en) = (sn.to_string(), en.to_string());
    let rw = remote_write::encode(&remote_write::request(vec![series(
        "auth_probe",
        &[("who", "anyone")],
        &[(now_ms(), 9.0)],
    )]));
    let gets: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("/api/v1/query", vec![("query", "auth_probe"), ("time", &e)]),
        (
            "/api/v1/query_range",
            vec![
                ("query", "auth_probe"),
                ("start", &s),
                ("end", &e),
                ("step", "15"),
            ],
        ),
        (
            "/api/v1/series",
            vec![("match[]", "auth_probe"), ("start", &s), ("end", &e)],
        ),
        ("/api/v1/labels", vec![]),
        ("/api/v1/label/__name__/values", vec![]),
        (
            "/loki/api/v1/query_range",
            vec![
                ("query", "{service_name=\"svc-a\"}"),
                ("start", &sn),
                ("end", &en),
                ("limit", "10"),
            ],
        ),
    ];
    let mut out: Vec<(String, u16)> = gets
        .into_iter()
        .map(|(path, q)| {
            (
                format!("GET {path}"),
                http.get(path, &q, &[]).unwrap().status,
            )
        })
        .collect();
    let tempo = format!("/api/traces/{TRACE_A}");
    out.push((
        format!("GET {tempo}"),
        http.get(&tempo, &[], &[]).unwrap().status,
    ));
    out.push((
        "POST /api/v1/write".into(),
        remote_write::push_body(http, &rw).unwrap().status,
    ));
    let pb = [("Content-Type", "application/x-protobuf")];
    out.push((
        "POST otlp /v1/metrics".into(),
        otlp_http.post("/v1/metrics", &pb, &[]).unwrap().status,
    ));
    out.push((
        "POST otlp /v1/logs".into(),
        otlp_http.post("/v1/logs", &pb, &[]).unwrap().status,
    ));
    out.push((
        "POST otlp /v1/traces".into(),
        otlp_http.post("/v1/traces", &pb, &[]).unwrap().status,
    ));
    out
}

fn grpc_status(c: &Collector, metadata: &[(&'static str, &str)]) -> tonic::Code {
    match otlp_grpc::export_logs(&c.grpc_endpoint(), logs("svc-x", now_ns()), metadata) {
        Ok(()) => tonic::Code::Ok,
        Err(s) => s.code(),
    }
}

#[test]
fn tokens_and_tenants() {
    let c = Collector::start_with(CollectorOptions {
        config_yaml: Some(config()),
        env: vec![("RUST_LOG".into(), "debug".into())],
        ..Default::default()
    });
    let http = c.http();
    let otlp_http = c.otlp_http();
    let t = now_ms();
    let t_s = t as f64 / 1000.0;
    let bearer_a = format!("Bearer {TOKEN_A}");
    let bearer_b = format!("Bearer {TOKEN_B}");
    let bearer_wrong = format!("Bearer {WRONG_TOKEN}");

    // Each tenant writes its own data with its own token.
    let a = http.with_token(TOKEN_A);
    let b = http.with_token(TOKEN_B);
    remote_write::push_ok(
        &a,
        &remote_write::request(vec![series("auth_probe", &[("who", "a")], &[(t, 1.0)])]),
    );
    remote_write::push_ok(
        &b,
        &remote_write::request(vec![series("auth_probe", &[("who", "b")], &[(t, 2.0)])]),
    );
    otlp_grpc::export_logs(
        &c.grpc_endpoint(),
        logs("svc-a", t * 1_000_000),
        &[("authorization", &bearer_a)],
    )
    .unwrap();
    otlp_grpc::export_traces(
        &c.grpc_endpoint(),
        trace("svc-a", TRACE_A, t * 1_000_000),
        &[("authorization", &bearer_a)],
    )
    .unwrap();

    // No token, or an unknown one: 401 everywhere, Unauthenticated over gRPC.
    for (who, client, otlp) in [
        ("no token", http.clone(), otlp_http.clone()),
        (
            "wrong token",
            http.with_token(WRONG_TOKEN),
            otlp_http.with_token(WRONG_TOKEN),
        ),
        (
            "token without Bearer",
            http.with_header("Authorization", TOKEN_A),
            otlp_http.with_header("Authorization", TOKEN_A),
        ),
    ] {
        for (endpoint, status) in every_endpoint(&client, &otlp, t_s) {
            assert_eq!(
                status, 401,
                "{who}: {endpoint} answered {status}, expected 401"
            );
        }
    }
    assert_eq!(
        grpc_status(&c, &[]),
        tonic::Code::Unauthenticated,
        "gRPC without token"
    );
    assert_eq!(
        grpc_status(&c, &[("authorization", &bearer_wrong)]),
        tonic::Code::Unauthenticated,
        "gRPC wrong token"
    );

    // The right token works, and sees only its own tenant.
    let (q_a, q_b) = wait_both(&a, &b, t_s);
    assert_eq!(
        q_a,
        vec![("a".to_string(), 1.0)],
        "tenant A sees only its series"
    );
    assert_eq!(
        q_b,
        vec![("b".to_string(), 2.0)],
        "tenant B sees only its series"
    );
    let series_b = b.series("auth_probe", t_s - 60.0, t_s + 60.0);
    assert!(
        series_b
            .iter()
            .all(|l| l.get("who").map(String::as_str) == Some("b")),
        "B's /series leaked: {series_b:?}"
    );
    let values_b = b.prom_data("/api/v1/label/who/values", &[]);
    assert_eq!(
        values_b,
        serde_json::json!(["b"]),
        "B's label values leaked A's"
    );

    // Logs and traces: A reads them, B does not.
    let (sn, en) = (
        t * 1_000_000 - 60_000_000_000,
        t * 1_000_000 + 60_000_000_000,
    );
    let streams_a = sightline_e2e::wait_for(
        "tenant A's log line",
        std::time::Duration::from_secs(20),
        || {
            let s = a.loki_query_range("{service_name=\"svc-a\"}", sn, en, 100);
            (!s.is_empty()).then_some(s)
        },
    );
    assert!(
        streams_a
            .iter()
            .any(|s| s.values.iter().any(|(_, l)| l == "hello from svc-a")),
        "{streams_a:?}"
    );
    assert!(
        b.loki_query_range("{service_name=\"svc-a\"}", sn, en, 100)
            .is_empty(),
        "B read A's logs"
    );
    let trace_path = format!("/api/traces/{TRACE_A}");
    assert_eq!(a.get_ok(&trace_path, &[]).status, 200, "A reads its trace");
    assert_eq!(
        b.get_ok(&trace_path, &[]).status,
        404,
        "B must not find A's trace"
    );

    // Token A claiming tenant B through X-Scope-OrgID: 403 on reads and writes.
    let a_as_b = a.with_tenant("team-b");
    for (endpoint, status) in every_endpoint(
        &a_as_b,
        &otlp_http.with_token(TOKEN_A).with_tenant("team-b"),
        t_s,
    ) {
        assert_eq!(
            status, 403,
            "token A + X-Scope-OrgID team-b: {endpoint} answered {status}, expected 403"
        );
    }
    assert_eq!(
        grpc_status(
            &c,
            &[("authorization", &bearer_a), ("x-scope-orgid", "team-b")]
        ),
        tonic::Code::PermissionDenied,
        "gRPC token A as team-b"
    );
    // A matching X-Scope-OrgID is fine.
    let q = a.with_tenant("team-a").query("auth_probe", t_s);
    assert_eq!(q.len(), 1, "token A with its own X-Scope-OrgID: {q:?}");
    assert_eq!(
        grpc_status(&c, &[("authorization", &bearer_b)]),
        tonic::Code::Ok,
        "gRPC with token B"
    );

    // Tokens never reach the logs (RUST_LOG=debug).
    let stderr = c.stderr();
    assert!(
        !stderr.is_empty(),
        "collector wrote no log at all; cannot check for token leaks"
    );
    for token in [TOKEN_A, TOKEN_B, WRONG_TOKEN] {
        assert!(
            !stderr.contains(token),
            "token {token} appears in the collector's stderr"
        );
    }
}

/// Polls until both tenants' queries return, then returns `(who, value)` per tenant.
/// `(who label, value)` pairs a tenant sees.
type Seen = Vec<(String, f64)>;

fn wait_both(a: &Http, b: &Http, t_s: f64) -> (Seen, Seen) {
    let get = |h: &Http| -> Seen {
        h.query("auth_probe", t_s)
            .into_iter()
            .map(|s| (s.metric.get("who").cloned().unwrap_or_default(), s.value))
            .collect()
    };
    sightline_e2e::wait_for(
        "both tenants' samples to be queryable",
        std::time::Duration::from_secs(20),
        || {
            let (qa, qb) = (get(a), get(b));
            (!qa.is_empty() && !qb.is_empty()).then_some((qa, qb))
        },
    )
}
