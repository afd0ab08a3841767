//! The collector stores a tailed log record once per (stream, offset): the same OTLP
//! batch sent twice, again after a SIGKILL (WAL replay), and again after a flush to
//! Parquet and a restart is stored once; records without the attributes are untouched.

#![allow(clippy::unwrap_used)]

mod delivery_support;

use std::time::Duration;

use delivery_support::FixedCollector;
use sightline_e2e::otlp_grpc::export_logs;
use sightline_e2e::wait_for;
use sightline_proto::otlp::collector::logs::v1::ExportLogsServiceRequest;
use sightline_proto::otlp::common::v1::{any_value, AnyValue, KeyValue};
use sightline_proto::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use sightline_proto::otlp::resource::v1::Resource;

fn kv(k: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn s(v: &str) -> any_value::Value {
    any_value::Value::StringValue(v.into())
}

/// `n` records of stream `stream` at offsets 0, 100, 200, ...; `tagged = false` leaves
/// out the stream/offset attributes.
fn request(
    service: &str,
    stream: &str,
    n: u64,
    base_ns: u64,
    tagged: bool,
) -> ExportLogsServiceRequest {
    let records = (0..n)
        .map(|i| {
            let mut attributes = vec![kv("log.file.path", s("/var/log/x.log"))];
            if tagged {
                attributes.push(kv("sightline.log.stream", s(stream)));
                attributes.push(kv(
                    "sightline.log.offset",
                    any_value::Value::IntValue((i * 100) as i64),
                ));
            }
            LogRecord {
                time_unix_nano: base_ns + i * 1000,
                body: Some(AnyValue {
                    value: Some(s(&format!("line {i}"))),
                }),
                attributes,
                ..Default::default()
            }
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![kv("service.name", s(service)), kv("host.name", s("node-1"))],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn stored(c: &FixedCollector, service: &str, base_ns: u64) -> usize {
    c.http()
        .loki_query_range(
            &format!("{{service_name=\"{service}\"}}"),
            base_ns as i64 - 1,
            base_ns as i64 + 10_000_000,
            5_000,
        )
        .iter()
        .map(|s| s.values.len())
        .sum()
}

#[test]
fn log_dedup_keeps_one_copy_across_resends_restarts_and_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = FixedCollector::new(dir.path(), "storage:\n  flush_interval: 1h\n");
    c.start();
    let base = (sightline_e2e::now_ns() as u64) - 60_000_000_000;
    const N: u64 = 500;
    let tagged = request("dedup-svc", "stream-a", N, base, true);
    let plain = request("plain-svc", "", 20, base, false);
    let send = |c: &FixedCollector| {
        export_logs(&c.endpoint(), tagged.clone(), &[]).unwrap();
        export_logs(&c.endpoint(), plain.clone(), &[]).unwrap();
    };
    send(&c);
    send(&c);
    assert_eq!(stored(&c, "dedup-svc", base), N as usize);
    assert_eq!(
        stored(&c, "plain-svc", base),
        40,
        "untagged records are not deduplicated"
    );
    assert_eq!(c.duplicates_dropped(), N as f64);

    // SIGKILL: everything comes back from the WAL, and so does the dedup state
    c.kill();
    c.start();
    send(&c);
    assert_eq!(stored(&c, "dedup-svc", base), N as usize);
    assert_eq!(c.duplicates_dropped(), N as f64, "counted per process");

    // flush to Parquet (the dedup state is saved with the checkpoint), restart, resend,
    // and a resend that overlaps new records
    let reply = c.http().post("/api/v1/admin/flush", &[], &[]).unwrap();
    assert!(reply.status < 300, "flush: {}", reply.body);
    c.kill();
    c.start();
    let index = dir.path().join("data/index");
    let dedup_files: Vec<String> = std::fs::read_dir(&index)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("log_dedup."))
        .collect();
    assert_eq!(dedup_files.len(), 1, "{dedup_files:?}");
    send(&c);
    let more = request("dedup-svc", "stream-a", N + 100, base, true);
    export_logs(&c.endpoint(), more, &[]).unwrap();
    wait_for("stored count", Duration::from_secs(10), || {
        (stored(&c, "dedup-svc", base) == (N + 100) as usize).then_some(())
    });
    assert_eq!(c.duplicates_dropped(), (2 * N) as f64);
    println!(
        "log dedup: {N} records sent 5 times across 2 restarts and a flush: stored {}, duplicates dropped (last process) {}",
        stored(&c, "dedup-svc", base),
        c.duplicates_dropped()
    );
}
