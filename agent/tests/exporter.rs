//! The exporter against a real tonic MetricsService: retries with growing backoff on
//! retryable statuses, never on permanent ones, compression negotiated, auth and tenant
//! metadata delivered, partial success counted.

// Test helpers outside #[test] fns: panicking on setup failure is the point.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use sightline_agent::clock::ManualClock;
use sightline_agent::export::batch::{agent_resource, agent_scope, build_batches};
use sightline_agent::export::queue::Batch;
use sightline_agent::export::retry::{retry_info_details, Jitter, RetryConfig};
use sightline_agent::export::{Compression, ExportOutcome, Exporter, ExporterConfig};
use sightline_agent::otlp_metric::{MetricSet, MetricSpec};
use sightline_agent::telemetry::{outcome, reason, Telemetry};
use sightline_proto::otlp::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceResponse,
};
use support::FakeCollector;
use tokio::sync::watch;
use tonic::{Code, Status};

const LOAD: MetricSpec = MetricSpec::gauge("system.cpu.load_average.1m", "{thread}", "load");

fn batch() -> Batch {
    let mut set = MetricSet::new(1_000);
    set.push(&LOAD, 0, &[], 0.5);
    set.push(&LOAD, 0, &[("x", "y")], 1.5);
    let mut b = build_batches(
        &agent_resource("test-host"),
        &agent_scope(),
        set.into_metrics(),
        1 << 20,
    );
    b.remove(0)
}

fn config(endpoint: &str, compression: Compression) -> ExporterConfig {
    ExporterConfig {
        endpoint: endpoint.to_string(),
        probe_interval: sightline_agent::export::endpoints::DEFAULT_PROBE_INTERVAL,
        compression,
        tls_ca: None,
        token: Some("s3cret".into()),
        tenant: Some("team-a".into()),
        timeout: Duration::from_secs(5),
        retry: RetryConfig {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            max_elapsed: Duration::from_secs(60),
            jitter: Jitter::None,
        },
    }
}

struct Harness {
    exporter: Exporter,
    clock: ManualClock,
    telemetry: Arc<Telemetry>,
    _deadline: watch::Sender<Option<std::time::SystemTime>>,
}

fn harness(cfg: &ExporterConfig) -> Harness {
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let telemetry = Arc::new(Telemetry::new());
    let (tx, rx) = watch::channel(None);
    let exporter = Exporter::new(cfg, Arc::new(clock.clone()), telemetry.clone(), rx).unwrap();
    Harness {
        exporter,
        clock,
        telemetry,
        _deadline: tx,
    }
}

#[tokio::test]
async fn retries_unavailable_with_growing_backoff_then_succeeds() {
    let server = FakeCollector::default();
    let (endpoint, _) = server.start().await;
    server.answer([
        Err(Status::unavailable("down")),
        Err(Status::unavailable("down")),
        Err(Status::unavailable("still down")),
    ]);
    let mut h = harness(&config(&endpoint, Compression::Zstd));
    let outcome = h.exporter.export(&batch()).await;
    assert_eq!(
        outcome,
        ExportOutcome::Sent {
            retries: 3,
            rejected: 0
        }
    );
    assert_eq!(
        h.clock.sleeps(),
        [
            Duration::from_millis(100),
            Duration::from_millis(200),
            Duration::from_millis(400)
        ]
    );
    assert_eq!(server.received().len(), 4);
    assert_eq!(h.telemetry.export_retries.get(), 3);
    assert_eq!(
        h.telemetry.export_requests_with(outcome::RETRYABLE_ERROR),
        3
    );
    assert_eq!(h.telemetry.export_requests_with(outcome::SUCCESS), 1);
    assert_eq!(h.telemetry.exported_points.get(), 2);
    let text = h.telemetry.encode();
    assert!(
        text.contains("sightline_agent_export_retries_total 3"),
        "{text}"
    );
}

#[tokio::test]
async fn full_jitter_waits_stay_under_growing_ceilings() {
    let server = FakeCollector::default();
    let (endpoint, _) = server.start().await;
    server.answer((0..5).map(|_| Err(Status::deadline_exceeded("slow"))));
    let mut cfg = config(&endpoint, Compression::Gzip);
    cfg.retry.jitter = Jitter::Full;
    let mut h = harness(&cfg);
    assert!(matches!(
        h.exporter.export(&batch()).await,
        ExportOutcome::Sent { retries: 5, .. }
    ));
    let sleeps = h.clock.sleeps();
    assert_eq!(sleeps.len(), 5);
    for (n, d) in sleeps.iter().enumerate() {
        assert!(
            *d <= Duration::from_millis(100) * 2u32.pow(n as u32),
            "{n}: {d:?}"
        );
    }
}

#[tokio::test]
async fn invalid_argument_is_not_retried_and_is_counted() {
    let server = FakeCollector::default();
    let (endpoint, _) = server.start().await;
    server.answer([
        Err(Status::invalid_argument("bad metric")),
        Err(Status::unauthenticated("who are you")),
        Err(Status::resource_exhausted("no retry info => permanent")),
    ]);
    let mut h = harness(&config(&endpoint, Compression::None));
    let b = batch();
    assert_eq!(
        h.exporter.export(&b).await,
        ExportOutcome::Permanent {
            code: Code::InvalidArgument,
            retries: 0
        }
    );
    assert_eq!(
        h.exporter.export(&b).await,
        ExportOutcome::Permanent {
            code: Code::Unauthenticated,
            retries: 0
        }
    );
    assert_eq!(
        h.exporter.export(&b).await,
        ExportOutcome::Permanent {
            code: Code::ResourceExhausted,
            retries: 0
        }
    );
    assert_eq!(server.received().len(), 3);
    assert!(h.clock.sleeps().is_empty());
    assert_eq!(h.telemetry.export_retries.get(), 0);
    assert_eq!(
        h.telemetry.export_requests_with(outcome::PERMANENT_ERROR),
        3
    );
    assert_eq!(h.telemetry.dropped_with(reason::PERMANENT_ERROR), 6);
}

#[tokio::test]
async fn resource_exhausted_with_retry_info_waits_the_server_delay() {
    let server = FakeCollector::default();
    let (endpoint, _) = server.start().await;
    let details = retry_info_details(Code::ResourceExhausted, "throttled", Duration::from_secs(3));
    server.answer([Err(Status::with_details(
        Code::ResourceExhausted,
        "throttled",
        details.into(),
    ))]);
    let mut h = harness(&config(&endpoint, Compression::Zstd));
    assert_eq!(
        h.exporter.export(&batch()).await,
        ExportOutcome::Sent {
            retries: 1,
            rejected: 0
        }
    );
    assert_eq!(h.clock.sleeps(), [Duration::from_secs(3)]);
}

#[tokio::test]
async fn gives_up_after_max_elapsed() {
    let server = FakeCollector::default();
    let (endpoint, _) = server.start().await;
    server.answer((0..100).map(|_| Err(Status::unavailable("down"))));
    let mut cfg = config(&endpoint, Compression::Zstd);
    cfg.retry.max_elapsed = Duration::from_secs(1);
    let mut h = harness(&cfg);
    // 100 + 200 + 400 = 700ms waited; the next 800ms would pass 1s.
    assert_eq!(
        h.exporter.export(&batch()).await,
        ExportOutcome::GaveUp {
            code: Code::Unavailable,
            retries: 3
        }
    );
    assert_eq!(h.telemetry.dropped_with(reason::RETRIES_EXHAUSTED), 2);
}

#[tokio::test]
async fn unreachable_collector_is_retryable() {
    // Bind then drop a listener: the port is closed, connecting fails (Unavailable).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cfg = config(&format!("http://127.0.0.1:{port}"), Compression::Zstd);
    cfg.retry.max_elapsed = Duration::from_millis(500);
    let mut h = harness(&cfg);
    let outcome = h.exporter.export(&batch()).await;
    assert!(
        matches!(
            outcome,
            ExportOutcome::GaveUp {
                code: Code::Unavailable,
                retries: 2
            }
        ),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn compression_token_and_tenant_arrive() {
    let server = FakeCollector::default();
    let (endpoint, _) = server.start().await;
    for (compression, want) in [
        (Compression::Zstd, Some("zstd")),
        (Compression::Gzip, Some("gzip")),
        (Compression::None, None),
    ] {
        let mut h = harness(&config(&endpoint, compression));
        assert!(matches!(
            h.exporter.export(&batch()).await,
            ExportOutcome::Sent { .. }
        ));
        let last = server.received().pop().unwrap();
        assert_eq!(last.encoding.as_deref(), want, "{compression:?}");
        assert_eq!(last.authorization.as_deref(), Some("Bearer s3cret"));
        assert_eq!(last.tenant.as_deref(), Some("team-a"));
        assert_eq!(
            last.request,
            batch().request,
            "payload survives {compression:?}"
        );
    }
}

#[tokio::test]
async fn partial_success_is_counted() {
    let server = FakeCollector::default();
    let (endpoint, _) = server.start().await;
    server.answer([Ok(ExportMetricsServiceResponse {
        partial_success: Some(ExportMetricsPartialSuccess {
            rejected_data_points: 1,
            error_message: "NaN not allowed".into(),
        }),
    })]);
    let mut h = harness(&config(&endpoint, Compression::Zstd));
    assert_eq!(
        h.exporter.export(&batch()).await,
        ExportOutcome::Sent {
            retries: 0,
            rejected: 1
        }
    );
    assert_eq!(h.telemetry.export_partial_successes.get(), 1);
    assert_eq!(
        h.telemetry.export_requests_with(outcome::PARTIAL_SUCCESS),
        1
    );
    assert_eq!(h.telemetry.dropped_with(reason::REJECTED), 1);
    assert_eq!(h.telemetry.exported_points.get(), 1);
}

#[tokio::test]
async fn shutdown_deadline_stops_retrying() {
    let server = FakeCollector::default();
    let (endpoint, _) = server.start().await;
    server.answer((0..100).map(|_| Err(Status::unavailable("down"))));
    let cfg = config(&endpoint, Compression::Zstd);
    let clock = ManualClock::new(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let telemetry = Arc::new(Telemetry::new());
    let (tx, rx) = watch::channel(None);
    let mut exporter = Exporter::new(&cfg, Arc::new(clock.clone()), telemetry.clone(), rx).unwrap();
    use sightline_agent::clock::Clock;
    tx.send(Some(clock.now() + Duration::from_millis(250)))
        .unwrap();
    // 100ms fits, 100+200 would pass the 250ms deadline.
    assert_eq!(
        exporter.export(&batch()).await,
        ExportOutcome::GaveUp {
            code: Code::Unavailable,
            retries: 1
        }
    );
}

#[tokio::test]
async fn falls_back_to_a_compression_the_server_accepts() {
    use tonic::codec::CompressionEncoding;
    for (accepts, want) in [
        (
            vec![CompressionEncoding::Gzip],
            (Compression::Gzip, Some("gzip")),
        ),
        (vec![], (Compression::None, None)),
    ] {
        let server = FakeCollector::default();
        let (endpoint, _) = server.start_accepting(&accepts).await;
        let mut h = harness(&config(&endpoint, Compression::Zstd));
        assert_eq!(
            h.exporter.export(&batch()).await,
            ExportOutcome::Sent {
                retries: 0,
                rejected: 0
            }
        );
        assert_eq!(h.exporter.compression(), want.0);
        let received = server.received();
        assert_eq!(
            received.len(),
            1,
            "the undecodable request never reaches the handler"
        );
        assert_eq!(received[0].encoding.as_deref(), want.1);
        assert_eq!(
            h.telemetry
                .export_requests_with(outcome::COMPRESSION_UNSUPPORTED),
            1
        );
        // The next export uses the negotiated compression directly.
        h.exporter.export(&batch()).await;
        assert_eq!(
            h.telemetry
                .export_requests_with(outcome::COMPRESSION_UNSUPPORTED),
            1
        );
    }
}

/// Test PKI in `tests/tls/`: `a/` is a CA with a server certificate for 127.0.0.1 and
/// localhost, `b/` an unrelated CA. Valid 2000–2100; made with `openssl ca`.
fn tls_dir(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/tls")
        .join(name)
}

#[tokio::test]
async fn exports_over_tls_with_a_custom_ca() {
    let server = FakeCollector::default();
    let (endpoint, _) = server
        .start_tls(
            std::fs::read(tls_dir("a").join("server.pem")).unwrap(),
            std::fs::read(tls_dir("a").join("server.key")).unwrap(),
        )
        .await;
    let mut cfg = config(&endpoint, Compression::Zstd);
    cfg.tls_ca = Some(tls_dir("a").join("ca.pem"));
    let mut h = harness(&cfg);
    assert_eq!(
        h.exporter.export(&batch()).await,
        ExportOutcome::Sent {
            retries: 0,
            rejected: 0
        }
    );
    assert_eq!(
        server.received()[0].authorization.as_deref(),
        Some("Bearer s3cret")
    );

    // A CA that did not sign the server certificate: the handshake fails (retryable).
    cfg.tls_ca = Some(tls_dir("b").join("ca.pem"));
    cfg.retry.max_elapsed = Duration::from_millis(150);
    let mut h = harness(&cfg);
    let outcome = h.exporter.export(&batch()).await;
    assert!(
        matches!(
            outcome,
            ExportOutcome::GaveUp {
                code: Code::Unavailable,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn shutdown_wakes_a_waiting_retry() {
    let server = FakeCollector::default();
    let (endpoint, _) = server.start().await;
    server.answer((0..100).map(|_| Err(Status::unavailable("down"))));
    let mut cfg = config(&endpoint, Compression::Zstd);
    cfg.retry.initial_backoff = Duration::from_secs(600);
    cfg.retry.max_backoff = Duration::from_secs(600);
    cfg.retry.max_elapsed = Duration::from_secs(3_600);
    let telemetry = Arc::new(Telemetry::new());
    let (tx, rx) = watch::channel(None);
    let clock = Arc::new(sightline_agent::clock::SystemClock);
    let mut exporter = Exporter::new(&cfg, clock, telemetry.clone(), rx).unwrap();
    let task = tokio::spawn(async move { exporter.export(&batch()).await });
    // Let the first attempt fail and the 600s wait begin.
    for _ in 0..100 {
        if telemetry.export_retries.get() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(telemetry.export_retries.get(), 1);
    tx.send(Some(
        std::time::SystemTime::now() + Duration::from_millis(50),
    ))
    .unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("a shutdown deadline must end the 600s wait")
        .unwrap();
    // One more attempt right after the wake-up, then the next wait passes the deadline.
    assert_eq!(
        outcome,
        ExportOutcome::GaveUp {
            code: Code::Unavailable,
            retries: 1
        }
    );
    assert_eq!(server.received().len(), 2);
}
