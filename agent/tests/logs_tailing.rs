//! Log tailing end to end in-process: a real writer rotating both ways at a high rate,
//! a real LogsService; every line arrives exactly once. Collector outage: nothing lost,
//! in-flight batches stay under the limit.

#![allow(clippy::unwrap_used)]

mod logs_support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use logs_support::{seq_of, write_cri, LogsCollector};
use sightline_agent::clock::SystemClock;
use sightline_agent::export::retry::{Jitter, RetryConfig};
use sightline_agent::export::{Compression, ExporterConfig};
use sightline_agent::logs::{self, LogsConfig};
use sightline_agent::telemetry::Telemetry;
use tokio::sync::watch;

fn exporter(endpoint: &str) -> ExporterConfig {
    ExporterConfig {
        endpoint: endpoint.to_string(),
        probe_interval: sightline_agent::export::endpoints::DEFAULT_PROBE_INTERVAL,
        compression: Compression::Zstd,
        tls_ca: None,
        token: None,
        tenant: None,
        timeout: Duration::from_secs(5),
        retry: RetryConfig {
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(200),
            max_elapsed: Duration::from_secs(60),
            jitter: Jitter::Full,
        },
    }
}

fn config(root: &std::path::Path) -> (LogsConfig, std::path::PathBuf) {
    let pods = root.join("pods");
    let container = pods.join("prod_api-7d9f_0a1b-2c3d/api");
    std::fs::create_dir_all(&container).unwrap();
    let mut cfg = LogsConfig::new(root.join("data"));
    cfg.sources.pods_root = Some(pods);
    cfg.sources.docker_root = None;
    cfg.poll_interval = Duration::from_millis(20);
    cfg.batch_timeout = Duration::from_millis(50);
    cfg.batch_max_records = 500;
    cfg.max_in_flight = 4;
    (cfg, container)
}

async fn wait_for(server: &LogsCollector, want: usize, limit: Duration) {
    let started = Instant::now();
    while server.acked_len() < want && started.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn counts(server: &LogsCollector) -> HashMap<u64, usize> {
    let mut seen = HashMap::new();
    for r in server.acked() {
        let n = seq_of(&r.body).unwrap_or_else(|| panic!("no seq in {:?}", r.body));
        *seen.entry(n).or_insert(0) += 1;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_both_ways_at_high_rate_every_line_exactly_once() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let server = LogsCollector::default();
    let endpoint = server.start().await;
    let dir = tempfile::tempdir().unwrap();
    let (cfg, container) = config(dir.path());
    let telemetry = Arc::new(Telemetry::new());
    let (_deadline_tx, deadline_rx) = watch::channel(None);
    let handle = logs::start(
        &cfg,
        "node-a",
        &exporter(&endpoint),
        Arc::new(SystemClock),
        telemetry.clone(),
        deadline_rx,
    )
    .unwrap();
    const TOTAL: u64 = 60_000;
    let writer = {
        let container = container.clone();
        std::thread::spawn(move || write_cri(&container, TOTAL, 20_000, 7_000))
    };
    let (renames, truncates) = writer.join().unwrap();
    assert!(renames >= 4 && truncates >= 4, "{renames} {truncates}");
    wait_for(&server, TOTAL as usize, Duration::from_secs(60)).await;
    let seen = counts(&server);
    let missing: Vec<_> = (0..TOTAL)
        .filter(|n| !seen.contains_key(n))
        .take(10)
        .collect();
    let dups: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).take(10).collect();
    assert!(missing.is_empty(), "missing (first 10): {missing:?}");
    assert!(dups.is_empty(), "duplicates: {dups:?}");
    assert_eq!(server.acked_len() as u64, TOTAL);
    // Content, metadata and the merged partial line.
    let acked = server.acked();
    let r = acked.iter().find(|r| seq_of(&r.body) == Some(3)).unwrap();
    assert_eq!(r.body, "seq=3 part-one part-two");
    assert_eq!(r.resource["k8s.namespace.name"], "prod");
    assert_eq!(r.resource["k8s.pod.name"], "api-7d9f");
    assert_eq!(r.resource["k8s.pod.uid"], "0a1b-2c3d");
    assert_eq!(r.resource["k8s.container.name"], "api");
    assert_eq!(r.resource["k8s.node.name"], "node-a");
    assert_eq!(r.attrs["log.iostream"], "stdout");
    assert!(r.attrs["log.file.path"].contains("/api/0.log"));
    assert_eq!(r.time, 1_714_557_600_123_456_789);
    let info = acked.iter().find(|r| seq_of(&r.body) == Some(4)).unwrap();
    assert_eq!(info.severity, 9);
    // (stream, offset) is unique: the dedup key works.
    let mut keys = std::collections::HashSet::new();
    for r in &acked {
        assert!(keys.insert((r.stream.clone(), r.offset)), "{:?}", r.body);
    }
    let text = telemetry.encode();
    for needle in [
        "sightline_agent_log_rotations_total{style=\"rename\"}",
        "sightline_agent_log_rotations_total{style=\"truncate\"}",
    ] {
        assert!(text.contains(needle), "{needle} in\n{text}");
    }
    assert_eq!(telemetry.logs.records_exported.get(), TOTAL);
    assert!(telemetry.logs.lines_read.get() > TOTAL);
    assert!(telemetry.logs.bytes_read.get() > 0);
    assert!(telemetry.logs.checkpoint_writes.get() > 0);
    println!(
        "rotation test: {TOTAL} lines, {renames} renames, {truncates} copytruncates, {} checkpoint writes",
        telemetry.logs.checkpoint_writes.get()
    );
    handle.finish(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collector_down_nothing_lost_and_in_flight_bounded() {
    let server = LogsCollector::default();
    let endpoint = server.start().await;
    server.fail_for(Duration::from_secs(3));
    let dir = tempfile::tempdir().unwrap();
    let (mut cfg, container) = config(dir.path());
    cfg.max_in_flight = 3;
    cfg.batch_max_records = 200;
    let telemetry = Arc::new(Telemetry::new());
    let (_deadline_tx, deadline_rx) = watch::channel(None);
    let handle = logs::start(
        &cfg,
        "node-a",
        &exporter(&endpoint),
        Arc::new(SystemClock),
        telemetry.clone(),
        deadline_rx,
    )
    .unwrap();
    const TOTAL: u64 = 20_000;
    let writer = std::thread::spawn(move || write_cri(&container, TOTAL, 20_000, 1_000_000));
    let mut max_in_flight = 0;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        max_in_flight = max_in_flight.max(handle.in_flight());
        assert_eq!(server.acked_len(), 0, "collector is down");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    writer.join().unwrap();
    assert!(max_in_flight <= 3, "in flight {max_in_flight}");
    assert_eq!(max_in_flight, 3, "tailing filled the window and paused");
    assert!(server.failed() > 0);
    wait_for(&server, TOTAL as usize, Duration::from_secs(30)).await;
    let seen = counts(&server);
    assert_eq!(seen.len() as u64, TOTAL, "every line after the outage");
    assert!(seen.values().all(|c| *c == 1));
    assert!(telemetry.logs.batches_in_flight_limit.get() == 3);
    println!(
        "outage test: max in flight {max_in_flight}, {} failed attempts",
        server.failed()
    );
    handle.finish(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_plain_multiline_severity_and_rate_limit() {
    let server = LogsCollector::default();
    let endpoint = server.start().await;
    let dir = tempfile::tempdir().unwrap();
    let (mut cfg, _) = config(dir.path());
    let docker = dir.path().join("docker/c0ffee");
    std::fs::create_dir_all(&docker).unwrap();
    std::fs::write(
        docker.join("c0ffee-json.log"),
        concat!(
            r#"{"log":"WARN disk almost full\n","stream":"stderr","time":"2024-05-01T10:00:00.5Z"}"#,
            "\n",
            r#"{"log":"split ","stream":"stdout","time":"2024-05-01T10:00:01Z"}"#,
            "\n",
            r#"{"log":"message\n","stream":"stdout","time":"2024-05-01T10:00:01Z"}"#,
            "\n",
        ),
    )
    .unwrap();
    let app = dir.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    let mut plain = String::from(
        "ERROR request failed java.lang.IllegalStateException: boom\n\
         \tat com.example.Handler.run(Handler.java:42)\n\
         Caused by: java.io.IOException: reset\n\
         \t... 3 more\n",
    );
    for n in 0..300 {
        plain.push_str(&format!("seq={n} level=debug tick\n"));
    }
    std::fs::write(app.join("server.log"), plain).unwrap();
    cfg.sources.docker_root = Some(dir.path().join("docker"));
    cfg.sources.include = vec![format!("{}/app/*.log", dir.path().display())];
    cfg.rate_limit = Some(150.0);
    let telemetry = Arc::new(Telemetry::new());
    let (_deadline_tx, deadline_rx) = watch::channel(None);
    let handle = logs::start(
        &cfg,
        "node-b",
        &exporter(&endpoint),
        Arc::new(SystemClock),
        telemetry.clone(),
        deadline_rx,
    )
    .unwrap();
    wait_for(&server, 2 + 1 + 300, Duration::from_secs(20)).await;
    let acked = server.acked();
    assert_eq!(acked.len(), 303, "{acked:#?}");
    let warn = acked
        .iter()
        .find(|r| r.body == "WARN disk almost full")
        .unwrap();
    assert_eq!(warn.severity, 13);
    assert_eq!(warn.attrs["log.iostream"], "stderr");
    assert_eq!(warn.resource["container.id"], "c0ffee");
    assert_eq!(warn.time, 1_714_557_600_500_000_000);
    assert!(acked.iter().any(|r| r.body == "split message"));
    let trace = acked.iter().find(|r| r.body.starts_with("ERROR")).unwrap();
    assert_eq!(trace.body.lines().count(), 4, "{}", trace.body);
    assert_eq!(trace.severity, 17);
    assert_eq!(trace.offset, 0);
    let seqs: std::collections::HashSet<u64> =
        acked.iter().filter_map(|r| seq_of(&r.body)).collect();
    assert_eq!(seqs.len(), 300);
    assert!(acked
        .iter()
        .filter(|r| seq_of(&r.body).is_some())
        .all(|r| r.severity == 5));
    // 304 plain lines at 150 lines/s: reading paused, nothing dropped.
    assert!(telemetry.logs.lines_held_back.get() > 0);
    let text = telemetry.encode();
    assert!(
        text.contains("sightline_agent_log_lines_held_back_total"),
        "{text}"
    );
    assert!(
        text.contains("sightline_agent_log_files_watched 2"),
        "{text}"
    );
    handle.finish(Duration::from_secs(2)).await;
}
