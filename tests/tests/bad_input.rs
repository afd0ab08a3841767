//! Bad input never crashes the collector: every malformed, oversized, out-of-order,
//! duplicate or invalid write is refused with the right status and a message naming
//! the problem, counted in `sightline_collector_rejected_total{reason}`, and the
//! process keeps serving afterwards.

// Test files: a failed unwrap is a failed test, also in helper functions.
#![allow(clippy::unwrap_used)]

use sightline_e2e::metrics_text::{rejected_increase, Scrape};
use sightline_e2e::otlp_grpc::{self, METRICS_EXPORT};
use sightline_e2e::remote_write::{self, series};
use sightline_e2e::{now_ms, Collector, CollectorOptions, Reply};

/// Protobuf that cannot decode: field 1 (length-delimited) claiming far more bytes
/// than follow.
const BROKEN_PROTOBUF: [u8; 8] = [0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02];

/// Asserts the refusal: status, a message containing one of `words`, and a
/// `rejected_total` reason containing one of `reason_words` that grew; then that the
/// collector still answers.
fn assert_refused(
    collector: &mut Collector,
    before: &Scrape,
    what: &str,
    reply: &Reply,
    status: u16,
    words: &[&str],
    reason_words: &[&str],
) {
    assert_eq!(
        reply.status, status,
        "{what}: expected HTTP {status}, got {}: {}",
        reply.status, reply.body
    );
    assert_message_names(what, &reply.body, words);
    assert_counted(collector, before, what, reason_words);
}

fn assert_message_names(what: &str, message: &str, words: &[&str]) {
    let lower = message.to_lowercase();
    assert!(
        words.iter().any(|w| lower.contains(w)),
        "{what}: message {message:?} names none of {words:?}"
    );
}

fn assert_counted(collector: &mut Collector, before: &Scrape, what: &str, reason_words: &[&str]) {
    let after = Scrape::fetch(&collector.http());
    let grown = rejected_increase(before, &after);
    println!("{what}: rejected_total increases by reason: {grown:?}");
    assert!(
        grown.keys().any(|r| reason_words.iter().any(|w| r.to_lowercase().contains(w))),
        "{what}: no sightline_collector_rejected_total{{reason~{reason_words:?}}} increased (increases: {grown:?})"
    );
    collector.process.assert_running();
    let ready = collector.http().get_ok("/-/ready", &[]);
    assert_eq!(
        ready.status, 200,
        "{what}: collector not ready afterwards: {}",
        ready.body
    );
}

fn post(http: &sightline_e2e::Http, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    http.post(path, headers, body)
        .unwrap_or_else(|e| panic!("POST {path}: {e}"))
}

#[test]
fn malformed_protobuf_over_grpc_is_invalid_argument() {
    let mut c = Collector::start();
    let before = Scrape::fetch(&c.http());
    let status = otlp_grpc::raw_unary(
        &c.grpc_endpoint(),
        METRICS_EXPORT,
        BROKEN_PROTOBUF.to_vec(),
        &[],
    )
    .expect_err("broken protobuf must be refused");
    assert_eq!(
        status.code(),
        tonic::Code::InvalidArgument,
        "gRPC status: {status:?}"
    );
    assert_message_names(
        "grpc broken protobuf",
        status.message(),
        &["decode", "protobuf", "malformed", "invalid"],
    );
    assert_counted(
        &mut c,
        &before,
        "grpc broken protobuf",
        &["decode", "protobuf", "malformed", "invalid"],
    );
}

#[test]
fn malformed_protobuf_over_http_is_400() {
    let mut c = Collector::start();

    // Remote write: valid snappy around invalid protobuf.
    let before = Scrape::fetch(&c.http());
    let reply =
        remote_write::push_body(&c.http(), &remote_write::compress(&BROKEN_PROTOBUF)).unwrap();
    let words = ["decode", "protobuf", "malformed", "invalid"];
    assert_refused(
        &mut c,
        &before,
        "remote write broken protobuf",
        &reply,
        400,
        &words,
        &words,
    );

    // Remote write: body that is not snappy at all.
    let before = Scrape::fetch(&c.http());
    let reply = remote_write::push_body(&c.http(), b"\xff\xff\xff\xff not snappy").unwrap();
    let words = ["snappy", "decompress", "decode", "corrupt"];
    assert_refused(
        &mut c,
        &before,
        "remote write not snappy",
        &reply,
        400,
        &words,
        &["snappy", "decompress", "decode", "malformed", "invalid"],
    );

    // OTLP/HTTP protobuf.
    let before = Scrape::fetch(&c.http());
    let reply = post(
        &c.otlp_http(),
        "/v1/metrics",
        &[("Content-Type", "application/x-protobuf")],
        &BROKEN_PROTOBUF,
    );
    let words = ["decode", "protobuf", "malformed", "invalid"];
    assert_refused(
        &mut c,
        &before,
        "otlp/http broken protobuf",
        &reply,
        400,
        &words,
        &words,
    );

    // OTLP/HTTP JSON that is not JSON.
    let before = Scrape::fetch(&c.http());
    let reply = post(
        &c.otlp_http(),
        "/v1/logs",
        &[("Content-Type", "application/json")],
        b"{\"resourceLogs\": [",
    );
    assert_refused(
        &mut c,
        &before,
        "otlp/http broken json",
        &reply,
        400,
        &["json", "decode", "parse", "invalid", "eof"],
        &["json", "decode", "malformed", "invalid"],
    );
}

#[test]
fn wrong_content_type_is_415() {
    let mut c = Collector::start();
    let valid = remote_write::encode(&remote_write::request(vec![series(
        "ct_probe",
        &[],
        &[(now_ms(), 1.0)],
    )]));

    let before = Scrape::fetch(&c.http());
    let reply = post(
        &c.otlp_http(),
        "/v1/metrics",
        &[("Content-Type", "text/plain")],
        b"hello",
    );
    assert_refused(
        &mut c,
        &before,
        "otlp/http text/plain",
        &reply,
        415,
        &["content-type", "content type", "media type"],
        &["content_type", "media", "unsupported"],
    );

    let before = Scrape::fetch(&c.http());
    let headers = [
        ("Content-Type", "application/json"),
        ("Content-Encoding", "snappy"),
    ];
    let reply = post(&c.http(), "/api/v1/write", &headers, &valid);
    assert_refused(
        &mut c,
        &before,
        "remote write application/json",
        &reply,
        415,
        &["content-type", "content type", "media type"],
        &["content_type", "media", "unsupported"],
    );
}

#[test]
fn unknown_compression_is_415() {
    let mut c = Collector::start();
    let valid = remote_write::encode(&remote_write::request(vec![series(
        "enc_probe",
        &[],
        &[(now_ms(), 1.0)],
    )]));

    let before = Scrape::fetch(&c.http());
    let headers = [
        ("Content-Type", "application/x-protobuf"),
        ("Content-Encoding", "br"),
    ];
    let reply = post(
        &c.otlp_http(),
        "/v1/metrics",
        &headers,
        b"\x0b\x02\x80hello\x03",
    );
    let words = ["encoding", "compression", "br"];
    assert_refused(
        &mut c,
        &before,
        "otlp/http Content-Encoding: br",
        &reply,
        415,
        &words,
        &["encoding", "compression"],
    );

    let before = Scrape::fetch(&c.http());
    let headers = [
        ("Content-Type", "application/x-protobuf"),
        ("Content-Encoding", "lz4"),
    ];
    let reply = post(&c.http(), "/api/v1/write", &headers, &valid);
    assert_refused(
        &mut c,
        &before,
        "remote write Content-Encoding: lz4",
        &reply,
        415,
        &["encoding", "compression", "lz4", "snappy"],
        &["encoding", "compression"],
    );
}

#[test]
fn oversize_request_is_413() {
    let mut c = Collector::start_with(CollectorOptions {
        config_yaml: Some("limits:\n  max_request_bytes: 4096\n".into()),
        ..Default::default()
    });
    // Incompressible label values, so the compressed body is well above the limit too.
    let t = now_ms();
    let many: Vec<_> = (0..1000u64)
        .map(|i| {
            let noise = format!(
                "{:016x}{:016x}",
                i.wrapping_mul(0x9e37_79b9_7f4a_7c15),
                (i + 7).wrapping_mul(0xc2b2_ae3d_27d4_eb4f)
            );
            series(
                "oversize_probe",
                &[("noise", noise.as_str())],
                &[(t, i as f64)],
            )
        })
        .collect();
    let body = remote_write::encode(&remote_write::request(many));
    assert!(body.len() > 4 * 4096, "test body only {} bytes", body.len());

    let before = Scrape::fetch(&c.http());
    let reply = remote_write::push_body(&c.http(), &body).unwrap();
    let words = ["too large", "size", "limit", "exceeds"];
    assert_refused(
        &mut c,
        &before,
        "oversize remote write",
        &reply,
        413,
        &words,
        &["size", "large", "limit"],
    );

    let before = Scrape::fetch(&c.http());
    let big = vec![b'x'; 64 * 1024];
    let reply = post(
        &c.otlp_http(),
        "/v1/metrics",
        &[("Content-Type", "application/x-protobuf")],
        &big,
    );
    assert_refused(
        &mut c,
        &before,
        "oversize otlp/http",
        &reply,
        413,
        &words,
        &["size", "large", "limit"],
    );

    // A small request still goes through.
    remote_write::push_ok(
        &c.http(),
        &remote_write::request(vec![series(
            "oversize_probe",
            &[("noise", "small")],
            &[(t, 1.0)],
        )]),
    );
}

#[test]
fn out_of_order_sample_is_400() {
    let mut c = Collector::start();
    let t = now_ms();
    remote_write::push_ok(
        &c.http(),
        &remote_write::request(vec![series("ooo_probe", &[], &[(t, 1.0)])]),
    );
    let before = Scrape::fetch(&c.http());
    let reply = remote_write::push(
        &c.http(),
        &remote_write::request(vec![series("ooo_probe", &[], &[(t - 10_000, 2.0)])]),
    )
    .unwrap();
    assert_refused(
        &mut c,
        &before,
        "out-of-order sample",
        &reply,
        400,
        &["out of order", "out-of-order", "out_of_order"],
        &["out_of_order"],
    );
    // The stored sample is untouched.
    let got = c.http().query("ooo_probe", t as f64 / 1000.0);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].value, 1.0);
}

#[test]
fn duplicate_sample_is_400() {
    let mut c = Collector::start();
    let t = now_ms();
    remote_write::push_ok(
        &c.http(),
        &remote_write::request(vec![series("dup_probe", &[], &[(t, 1.0)])]),
    );
    let before = Scrape::fetch(&c.http());
    let reply = remote_write::push(
        &c.http(),
        &remote_write::request(vec![series("dup_probe", &[], &[(t, 2.0)])]),
    )
    .unwrap();
    assert_refused(
        &mut c,
        &before,
        "duplicate sample",
        &reply,
        400,
        &["duplicate"],
        &["duplicate"],
    );
    let got = c.http().query("dup_probe", t as f64 / 1000.0);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].value, 1.0, "the first write wins");
}

#[test]
fn non_finite_values_are_rejected_by_policy() {
    let mut c = Collector::start_with(CollectorOptions {
        config_yaml: Some("ingest:\n  non_finite: reject\n".into()),
        ..Default::default()
    });
    let t = now_ms();
    for (what, v) in [
        ("NaN", f64::NAN),
        ("+Inf", f64::INFINITY),
        ("-Inf", f64::NEG_INFINITY),
    ] {
        let before = Scrape::fetch(&c.http());
        let reply = remote_write::push(
            &c.http(),
            &remote_write::request(vec![series("nan_probe", &[("v", what)], &[(t, v)])]),
        )
        .unwrap();
        assert_refused(
            &mut c,
            &before,
            &format!("{what} sample"),
            &reply,
            400,
            &["nan", "inf", "non-finite", "non_finite", "not finite"],
            &["nan", "finite", "inf"],
        );
        assert!(
            c.http()
                .query(&format!("nan_probe{{v=\"{what}\"}}"), t as f64 / 1000.0)
                .is_empty(),
            "{what} was stored"
        );
    }
}

#[test]
fn empty_metric_name_is_400() {
    let mut c = Collector::start();
    let before = Scrape::fetch(&c.http());
    let reply = remote_write::push(
        &c.http(),
        &remote_write::request(vec![series("", &[("job", "x")], &[(now_ms(), 1.0)])]),
    )
    .unwrap();
    assert_refused(
        &mut c,
        &before,
        "empty metric name",
        &reply,
        400,
        &["metric name", "__name__"],
        &["name"],
    );
}

#[test]
fn invalid_label_name_is_400() {
    let mut c = Collector::start();
    let before = Scrape::fetch(&c.http());
    let reply = remote_write::push(
        &c.http(),
        &remote_write::request(vec![series(
            "label_probe",
            &[("bad-label", "x")],
            &[(now_ms(), 1.0)],
        )]),
    )
    .unwrap();
    assert_refused(
        &mut c,
        &before,
        "invalid label name",
        &reply,
        400,
        &["label name", "bad-label"],
        &["label"],
    );
    assert!(
        c.http()
            .query("label_probe", now_ms() as f64 / 1000.0)
            .is_empty(),
        "series with invalid label was stored"
    );
}
