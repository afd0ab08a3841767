//! Crash safety with the real binary: SIGKILL mid-stream, restart from the checkpoint.
//! Every line is delivered at least once; re-sent lines (same stream and offset) are at
//! most the unacknowledged window; after dedup by (stream, offset) the set is exactly the
//! written lines.

#![allow(clippy::unwrap_used)]

mod logs_support;

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use logs_support::{seq_of, write_cri, LogsCollector};

const BATCH: usize = 500;
const IN_FLIGHT: usize = 4;

fn spawn_agent(endpoint: &str, root: &std::path::Path) -> Child {
    let config = root.join("agent.yaml");
    std::fs::write(
        &config,
        format!(
            "interval: 1h\nlogs:\n  poll_interval: 20ms\n  max_in_flight_batches: {IN_FLIGHT}\n  batch:\n    max_records: {BATCH}\n    timeout: 50ms\n  docker_root: \"\"\n"
        ),
    )
    .unwrap();
    Command::new(env!("CARGO_BIN_EXE_sightline-agent"))
        .arg("--config")
        .arg(&config)
        .arg("--endpoint")
        .arg(endpoint)
        .arg("--data-dir")
        .arg(root.join("data"))
        .arg("--pod-logs-root")
        .arg(root.join("pods"))
        .arg("--http-addr")
        .arg("127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_and_restart_resends_only_the_unacked_window() {
    let server = LogsCollector::default();
    let endpoint = server.start().await;
    let dir = tempfile::tempdir().unwrap();
    let container = dir.path().join("pods/default_writer_uid-1/app");
    std::fs::create_dir_all(&container).unwrap();
    const TOTAL: u64 = 60_000;
    let writer = {
        let c = container.clone();
        std::thread::spawn(move || write_cri(&c, TOTAL, 20_000, 9_000))
    };
    let mut agent = spawn_agent(&endpoint, dir.path());
    // Kill it while lines are streaming and some were acknowledged.
    let started = Instant::now();
    while server.acked_len() < 15_000 && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    agent.kill().unwrap(); // SIGKILL
    agent.wait().unwrap();
    let acked_before = server.acked_len();
    assert!(acked_before > 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut agent = spawn_agent(&endpoint, dir.path());
    writer.join().unwrap();
    let started = Instant::now();
    let all_seen = || {
        let seqs: HashSet<u64> = server
            .acked()
            .iter()
            .filter_map(|r| seq_of(&r.body))
            .collect();
        seqs.len() as u64 == TOTAL
    };
    while !all_seen() && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    agent.kill().unwrap();
    agent.wait().unwrap();

    let acked = server.acked();
    let mut by_key: HashMap<(String, i64), usize> = HashMap::new();
    for r in &acked {
        *by_key.entry((r.stream.clone(), r.offset)).or_insert(0) += 1;
    }
    let duplicates: usize = by_key.values().map(|c| c - 1).sum();
    let seqs: HashSet<u64> = acked.iter().filter_map(|r| seq_of(&r.body)).collect();
    let missing: Vec<u64> = (0..TOTAL).filter(|n| !seqs.contains(n)).take(10).collect();
    assert!(missing.is_empty(), "lost lines (first 10): {missing:?}");
    assert_eq!(
        by_key.len() as u64,
        TOTAL,
        "after dedup by (stream, offset)"
    );
    let window = (IN_FLIGHT + 1) * BATCH;
    assert!(
        duplicates <= window,
        "{duplicates} re-sent lines exceed the unacked window {window}"
    );
    // Duplicates are only ever the same line re-sent (same stream+offset = same body).
    let mut bodies: HashMap<(String, i64), &str> = HashMap::new();
    for r in &acked {
        let b = bodies
            .entry((r.stream.clone(), r.offset))
            .or_insert(&r.body);
        assert_eq!(*b, r.body);
    }
    println!(
        "crash test: {TOTAL} lines, {acked_before} acked before SIGKILL, {} records received, {duplicates} re-sent (window {window})",
        acked.len()
    );
}
