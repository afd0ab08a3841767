//! Log-pattern ids at the edge, in-process with a real OTLP/gRPC LogsService: a plain
//! log file written with two templates (numbers, ids and durations varying) is tailed
//! and shipped; every record carries `sightline.log.pattern`, lines of one template share
//! one id, the two templates get different ids, and the counter moved. With
//! `logs.patterns: false` no record carries the attribute.

#![allow(clippy::unwrap_used)]

mod logs_support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use logs_support::LogsCollector;
use sightline_agent::clock::SystemClock;
use sightline_agent::export::endpoints::DEFAULT_PROBE_INTERVAL;
use sightline_agent::export::retry::{Jitter, RetryConfig};
use sightline_agent::export::{Compression, ExporterConfig};
use sightline_agent::logs::patterns::{PatternsConfig, ATTRIBUTE};
use sightline_agent::logs::{self, LogsConfig};
use sightline_agent::telemetry::Telemetry;
use tokio::sync::watch;

fn exporter(endpoint: &str) -> ExporterConfig {
    ExporterConfig {
        endpoint: endpoint.to_string(),
        probe_interval: DEFAULT_PROBE_INTERVAL,
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

/// The pattern tagger is one per process: these tests take turns.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn ship_file(
    patterns: Option<PatternsConfig>,
    lines: &[String],
) -> (Vec<logs_support::Rec>, Arc<Telemetry>) {
    let _turn = SERIAL.lock().await;
    let server = LogsCollector::default();
    let endpoint = server.start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.log");
    let mut cfg = LogsConfig::new(dir.path().join("data"));
    cfg.sources.pods_root = None;
    cfg.sources.docker_root = None;
    cfg.sources.include = vec![format!("{}/*.log", dir.path().display())];
    cfg.poll_interval = Duration::from_millis(20);
    cfg.batch_timeout = Duration::from_millis(50);
    cfg.multiline = None;
    cfg.patterns = patterns;
    let mut f = std::fs::File::create(&file).unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
    f.sync_all().unwrap();
    let telemetry = Arc::new(Telemetry::new());
    let (_deadline_tx, deadline_rx) = watch::channel(None);
    let handle = logs::start(
        &cfg,
        "node-1",
        &exporter(&endpoint),
        Arc::new(SystemClock),
        telemetry.clone(),
        deadline_rx,
    )
    .unwrap();
    let started = Instant::now();
    while server.acked_len() < lines.len() && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    handle.finish(Duration::from_secs(2)).await;
    (server.acked(), telemetry)
}

fn lines() -> Vec<String> {
    (0..200)
        .map(|i| {
            if i % 2 == 0 {
                format!("GET /api/items/{i} returned 200 in {} ms", 3 + i % 17)
            } else {
                format!(
                    "worker {} picked job 0x{:x} from queue default",
                    i % 7,
                    i * 7919
                )
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pattern_ids_are_attached_and_stable_per_template() {
    let lines = lines();
    let (recs, telemetry) = ship_file(Some(PatternsConfig { max_clusters: 100 }), &lines).await;
    assert_eq!(recs.len(), lines.len());
    let mut by_template: BTreeMap<bool, BTreeSet<String>> = BTreeMap::new();
    for r in &recs {
        let id = r
            .attrs
            .get(ATTRIBUTE)
            .unwrap_or_else(|| panic!("no {ATTRIBUTE} on {:?}", r.body))
            .clone();
        assert_eq!(id.len(), 16, "{id}");
        by_template
            .entry(r.body.starts_with("GET "))
            .or_default()
            .insert(id);
    }
    let get_ids = &by_template[&true];
    let worker_ids = &by_template[&false];
    assert_eq!(get_ids.len(), 1, "one id for the GET template: {get_ids:?}");
    assert_eq!(
        worker_ids.len(),
        1,
        "one id for the worker template: {worker_ids:?}"
    );
    assert_ne!(get_ids, worker_ids);
    assert!(telemetry.log_patterns_tagged.get() >= lines.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patterns_off_means_no_attribute() {
    let lines = lines();
    let (recs, _) = ship_file(None, &lines[..10]).await;
    assert_eq!(recs.len(), 10);
    assert!(recs.iter().all(|r| !r.attrs.contains_key(ATTRIBUTE)));
}
