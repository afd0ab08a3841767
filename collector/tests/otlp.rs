//! OTLP over gRPC and HTTP against a real collector: both encodings, both
//! compressions, and every kind of bad input answered with a status, a message and
//! a counter increment.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns fail the test on error

mod harness;

use harness::*;
use prost::Message;
use sightline_proto::otlp::collector::logs::v1::logs_service_client::LogsServiceClient;
use sightline_proto::otlp::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use sightline_proto::otlp::collector::metrics::v1::ExportMetricsServiceResponse;
use sightline_proto::otlp::collector::trace::v1::trace_service_client::TraceServiceClient;
use std::io::Write;
use tonic::codec::CompressionEncoding;

#[tokio::test]
async fn otlp_http_protobuf_and_json_round_trip() {
    let c = start("").await;
    let t = now_ms() - 1000;
    let body = gauge_request("checkout", "proto_gauge", &[(t, 1.5)]).encode_to_vec();
    let (status, ct, resp) = post(
        &format!("{}/v1/metrics", c.otlp),
        &[("content-type", "application/x-protobuf")],
        body,
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&resp));
    assert_eq!(ct, "application/x-protobuf");
    let resp = ExportMetricsServiceResponse::decode(&resp[..]).unwrap();
    assert!(resp.partial_success.is_none(), "{resp:?}");

    let json = serde_json::to_vec(&gauge_request("checkout", "json_gauge", &[(t, 2.0)])).unwrap();
    let (status, ct, resp) = post(
        &format!("{}/v1/metrics", c.otlp),
        &[("content-type", "application/json")],
        json,
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&resp));
    assert_eq!(ct, "application/json");
    serde_json::from_slice::<serde_json::Value>(&resp).unwrap();

    let got = instant(&c.http, r#"{__name__=~"proto_gauge.*"}"#, t + 1, &[]).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].1, "1.5");
    let got = instant(&c.http, r#"{__name__=~"json_gauge.*"}"#, t + 1, &[]).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].1, "2");

    // logs as JSON (hex ids, string nanos), read back through the Loki API
    let t_ns = t * 1_000_000;
    let logs = serde_json::json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "checkout"}}]},
        "scopeLogs": [{"logRecords": [
            {"timeUnixNano": t_ns.to_string(), "body": {"stringValue": "first line"},
             "traceId": "0102030405060708090a0b0c0d0e0f10", "spanId": "0102030405060708"},
            {"timeUnixNano": (t_ns + 1).to_string(), "body": {"stringValue": "second line"}}
        ]}]
    }]});
    let (status, _, resp) = post(
        &format!("{}/v1/logs", c.otlp),
        &[("content-type", "application/json")],
        serde_json::to_vec(&logs).unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&resp));
    let url = format!(
        "{}/loki/api/v1/query_range?query={}&start={}&end={}&limit=10",
        c.http,
        urlencode(r#"{service_name="checkout"}"#),
        t_ns - 1,
        t_ns + 10
    );
    let (status, v) = get_json(&url, &[]).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["resultType"], "streams");
    let values = v["data"]["result"][0]["values"].as_array().unwrap();
    assert_eq!(values.len(), 2, "{v}");
    assert_eq!(values[0][1], "second line", "backward is newest first");
    assert_eq!(values[0][0], (t_ns + 1).to_string());
    let fwd = get_json(&format!("{url}&direction=forward&limit=1"), &[])
        .await
        .1;
    assert_eq!(
        fwd["data"]["result"][0]["values"][0][1], "first line",
        "{fwd}"
    );
    let other = get_json(&url.replace("checkout", "nobody"), &[]).await.1;
    assert_eq!(other["data"]["result"].as_array().unwrap().len(), 0);

    // traces as protobuf, read back through the Tempo API
    let trace_id = [0xab; 16];
    let body = trace_request("checkout", trace_id, t_ns).encode_to_vec();
    let (status, _, _) = post(
        &format!("{}/v1/traces", c.otlp),
        &[("content-type", "application/x-protobuf")],
        body,
    )
    .await;
    assert_eq!(status, 200);
    let (status, v) = get_json(
        &format!("{}/api/traces/{}", c.http, hex::encode(trace_id)),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let span = &v["batches"][0]["scopeSpans"][0]["spans"][0];
    assert_eq!(span["traceId"], hex::encode(trace_id));
    assert_eq!(span["spanId"], "0707070707070707");
    assert_eq!(span["name"], "GET /");
    assert_eq!(span["startTimeUnixNano"], t_ns.to_string());
    let (status, _) = get(&format!("{}/api/traces/{}", c.http, "cd".repeat(16)), &[]).await;
    assert_eq!(status, 404);
    let (status, _) = get(&format!("{}/api/traces/not-hex", c.http), &[]).await;
    assert_eq!(status, 400);
    c.stop().await;
}

#[tokio::test]
async fn grpc_gzip_and_zstd() {
    let c = start("").await;
    let t = now_ms() - 1000;
    for (i, enc) in [CompressionEncoding::Gzip, CompressionEncoding::Zstd]
        .into_iter()
        .enumerate()
    {
        let mut client = MetricsServiceClient::connect(c.grpc.clone())
            .await
            .unwrap()
            .send_compressed(enc);
        let name = format!("grpc_gauge_{i}");
        let resp = client
            .export(gauge_request("api", &name, &[(t, i as f64 + 0.25)]))
            .await
            .unwrap();
        assert!(resp.into_inner().partial_success.is_none());
        let got = instant(&c.http, &format!("{{__name__=~\"{name}.*\"}}"), t, &[]).await;
        assert_eq!(got.len(), 1, "{enc:?}: {got:?}");
        assert_eq!(got[0].1, format!("{}", i as f64 + 0.25));
    }
    let mut logs = LogsServiceClient::connect(c.grpc.clone())
        .await
        .unwrap()
        .send_compressed(CompressionEncoding::Zstd);
    logs.export(logs_request("api", &[(t * 1_000_000, "hello")]))
        .await
        .unwrap();
    let mut traces = TraceServiceClient::connect(c.grpc.clone())
        .await
        .unwrap()
        .send_compressed(CompressionEncoding::Gzip);
    traces
        .export(trace_request("api", [1; 16], t * 1_000_000))
        .await
        .unwrap();
    let (status, _) = get(&format!("{}/api/traces/{}", c.http, "01".repeat(16)), &[]).await;
    assert_eq!(status, 200);
    let metrics = get(&format!("{}/metrics", c.http), &[]).await.1;
    assert!(
        metrics.contains(
            r#"sightline_collector_received_items_total{signal="metrics",protocol="grpc"} 2"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"sightline_collector_requests_total{protocol="grpc",code="Ok"}"#),
        "{metrics}"
    );
    c.stop().await;
}

#[tokio::test]
async fn bad_otlp_http_input_is_refused_and_counted() {
    let c = start("limits: {max_request_bytes: 4096}").await;
    let url = format!("{}/v1/metrics", c.otlp);
    let good = gauge_request("svc", "g", &[(now_ms(), 1.0)]).encode_to_vec();
    // (what, headers, body, status, message fragment, reason)
    type Case<'a> = (
        &'a str,
        Vec<(&'a str, &'a str)>,
        Vec<u8>,
        u16,
        &'a str,
        &'a str,
    );
    let cases: Vec<Case<'_>> = vec![
        (
            "wrong content type",
            vec![("content-type", "text/plain")],
            good.clone(),
            415,
            "Content-Type",
            "unsupported_content_type",
        ),
        (
            "unknown encoding",
            vec![
                ("content-type", "application/x-protobuf"),
                ("content-encoding", "br"),
            ],
            good.clone(),
            415,
            "Content-Encoding",
            "unsupported_encoding",
        ),
        (
            "malformed protobuf",
            vec![("content-type", "application/x-protobuf")],
            b"\x0a\xff\xff\xff\xff\x0fgarbage".to_vec(),
            400,
            "invalid OTLP protobuf",
            "malformed",
        ),
        (
            "malformed json",
            vec![("content-type", "application/json")],
            b"{\"resourceMetrics\": 5}".to_vec(),
            400,
            "invalid OTLP JSON",
            "malformed",
        ),
        (
            "oversize",
            vec![("content-type", "application/x-protobuf")],
            vec![0u8; 5000],
            413,
            "4096 bytes",
            "too_large",
        ),
        (
            "corrupt gzip",
            vec![
                ("content-type", "application/x-protobuf"),
                ("content-encoding", "gzip"),
            ],
            b"not gzip".to_vec(),
            400,
            "gzip",
            "malformed",
        ),
    ];
    for (what, headers, body, want_status, want_msg, reason) in cases {
        let before = c.rejected(reason).await;
        let (status, _, resp) = post(&url, &headers, body).await;
        let text = String::from_utf8_lossy(&resp);
        assert_eq!(status, want_status, "{what}: {text}");
        assert!(text.contains(want_msg), "{what}: {text}");
        assert_eq!(c.rejected(reason).await, before + 1, "{what}");
    }
    // a gzip bomb: small on the wire, larger than the limit once decompressed
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(&vec![0u8; 100_000]).unwrap();
    let bomb = e.finish().unwrap();
    assert!(bomb.len() < 4096);
    let (status, _, resp) = post(
        &url,
        &[
            ("content-type", "application/x-protobuf"),
            ("content-encoding", "gzip"),
        ],
        bomb,
    )
    .await;
    assert_eq!(status, 413, "{}", String::from_utf8_lossy(&resp));
    assert!(String::from_utf8_lossy(&resp).contains("after decompression"));
    // JSON errors come back as JSON google.rpc.Status
    let (status, ct, resp) =
        post(&url, &[("content-type", "application/json")], b"[".to_vec()).await;
    assert_eq!((status, ct.as_str()), (400, "application/json"));
    let v: serde_json::Value = serde_json::from_slice(&resp).unwrap();
    assert_eq!(v["code"], 3);
    // the process is still serving
    let (status, _, _) = post(&url, &[("content-type", "application/x-protobuf")], good).await;
    assert_eq!(status, 200);
    c.stop().await;
}

/// A message whose field 1 is a varint where the OTLP request has a message.
#[derive(Clone, PartialEq, prost::Message)]
struct NotOtlp {
    #[prost(uint64, tag = "1")]
    x: u64,
}

#[tokio::test]
async fn bad_grpc_input_is_refused_and_counted() {
    let c = start("limits: {max_request_bytes: 4096}").await;
    let channel = tonic::transport::Endpoint::from_shared(c.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.unwrap();
    let before = c.rejected("malformed").await;
    let err = grpc
        .unary(
            tonic::Request::new(NotOtlp { x: 42 }),
            http::uri::PathAndQuery::from_static(
                "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
            ),
            tonic_prost::ProstCodec::<NotOtlp, ExportMetricsServiceResponse>::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("decode"), "{err:?}");
    assert_eq!(c.rejected("malformed").await, before + 1);

    let mut client = MetricsServiceClient::new(channel);
    let big = gauge_request(&"x".repeat(5000), "g", &[(now_ms(), 1.0)]);
    let err = client.export(big.clone()).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err:?}");
    assert!(err.message().contains("4096"), "{err:?}");
    // compressed, the same request is small on the wire but too large decoded
    let mut gz = client.clone().send_compressed(CompressionEncoding::Gzip);
    let err = gz.export(big).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err:?}");
    assert_eq!(c.rejected("too_large").await, 2);
    let ok = client
        .export(gauge_request("svc", "g", &[(now_ms(), 1.0)]))
        .await;
    assert!(ok.is_ok(), "{ok:?}");
    c.stop().await;
}

#[tokio::test]
async fn dropped_points_are_a_partial_success() {
    let c = start("").await;
    let t = now_ms() - 1000;
    let mut client = MetricsServiceClient::connect(c.grpc.clone()).await.unwrap();
    // all points NaN: rejected as a whole
    let before = c.rejected_total().await;
    let err = client
        .export(gauge_request("svc", "nan_only", &[(t, f64::NAN)]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert!(!err.message().is_empty());
    assert_eq!(c.rejected_total().await, before + 1);
    // one good and one NaN point: stored, NaN reported
    let resp = client
        .export(gauge_request(
            "svc",
            "half_nan",
            &[(t - 10, f64::NAN), (t, 3.0)],
        ))
        .await
        .unwrap()
        .into_inner();
    let ps = resp.partial_success.expect("partial success");
    assert_eq!(ps.rejected_data_points, 1);
    assert!(!ps.error_message.is_empty());
    // an older point for the same series: out of order, reported by the store
    let resp = client
        .export(gauge_request("svc", "half_nan", &[(t - 5000, 1.0)]))
        .await
        .unwrap()
        .into_inner();
    let ps = resp.partial_success.expect("partial success");
    assert_eq!(ps.rejected_data_points, 1);
    assert!(
        ps.error_message.contains("out_of_order"),
        "{}",
        ps.error_message
    );
    assert_eq!(c.rejected("out_of_order").await, 1);
    c.stop().await;
}
