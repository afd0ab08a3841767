//! Acknowledged means durable: a remote-write client streams batches (each a new
//! series with 20 samples) and records every batch the collector acknowledged; the
//! collector is SIGKILLed at a random moment (seeded RNG, seed printed; rerun with
//! `SIGHTLINE_CRASH_SEED=<seed>`), restarted on the same data dir, and every
//! acknowledged sample must be back with exact values and counts. Rounds accumulate on
//! one data dir, so later rounds also replay earlier replays, and some rounds run long
//! enough for memtables to be flushed to Parquet. A final graceful stop (SIGTERM) and
//! restart must keep everything too.

// Test files: a failed unwrap is a failed test, also in helper functions.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use sightline_e2e::http_api::Http;
use sightline_e2e::process::persistent_data_dir;
use sightline_e2e::remote_write::{self, series};
use sightline_e2e::{now_ms, Collector, CollectorOptions};

const SAMPLES_PER_BATCH: i64 = 20;
const ROUNDS: usize = 6;
const STORAGE_CONFIG: &str =
    "storage:\n  memtable_flush_bytes: 65536\n  flush_interval: 2s\n  wal_segment_bytes: 65536\n";

/// What one streaming round sent.
#[derive(Debug, Default)]
struct Round {
    /// First sample time (ms, whole second); sample j is at base + j s.
    base_ms: i64,
    /// Batches answered 2xx.
    acked: Vec<u64>,
    /// Batches sent whose answer never came (the kill hit them): may or may not be stored.
    in_flight: Vec<u64>,
    /// Batches refused with a non-2xx status (unexpected: the test fails).
    refused: Vec<(u64, u16, String)>,
}

fn batch_request(
    round: usize,
    batch: u64,
    base_ms: i64,
) -> sightline_proto::prometheus::WriteRequest {
    let samples: Vec<(i64, f64)> = (0..SAMPLES_PER_BATCH)
        .map(|j| (base_ms + j * 1000, expected_value(batch, j)))
        .collect();
    let (r, b) = (round.to_string(), batch.to_string());
    remote_write::request(vec![series(
        "crash_samples",
        &[("round", &r), ("batch", &b)],
        &samples,
    )])
}

fn expected_value(batch: u64, j: i64) -> f64 {
    (batch * 1000) as f64 + j as f64 + 0.5
}

/// Streams batches until the transport fails (the collector died) or `stop` is set.
fn stream(http: Http, round: usize, base_ms: i64, stop: Arc<AtomicBool>, out: Arc<Mutex<Round>>) {
    let mut batch = 0u64;
    while !stop.load(Ordering::Relaxed) {
        match remote_write::push(&http, &batch_request(round, batch, base_ms)) {
            Ok(r) if (200..300).contains(&r.status) => out.lock().unwrap().acked.push(batch),
            Ok(r) => out.lock().unwrap().refused.push((batch, r.status, r.body)),
            Err(_) => {
                out.lock().unwrap().in_flight.push(batch);
                return;
            }
        }
        batch += 1;
    }
}

fn parquet_files(dir: &Path) -> usize {
    let mut n = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                n += parquet_files(&p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                n += 1;
            }
        }
    }
    n
}

/// Every acknowledged batch of `round` is stored exactly; in-flight ones are stored
/// completely or not at all; nothing else is.
fn verify_round(http: &Http, round_no: usize, round: &Round) {
    let start = (round.base_ms / 1000) as f64;
    let end = start + (SAMPLES_PER_BATCH - 1) as f64;
    let result = http.query_range(
        &format!("crash_samples{{round=\"{round_no}\"}}"),
        start,
        end,
        1.0,
    );
    let mut stored: BTreeMap<u64, Vec<(f64, f64)>> = BTreeMap::new();
    for s in result {
        let batch: u64 = s.metric["batch"].parse().expect("batch label");
        assert!(
            stored.insert(batch, s.values).is_none(),
            "round {round_no}: batch {batch} returned twice"
        );
    }
    let expected = |batch: u64| -> Vec<(f64, f64)> {
        (0..SAMPLES_PER_BATCH)
            .map(|j| (start + j as f64, expected_value(batch, j)))
            .collect()
    };
    let mut missing = Vec::new();
    for &b in &round.acked {
        match stored.get(&b) {
            None => missing.push(b),
            Some(v) => assert_eq!(
                v,
                &expected(b),
                "round {round_no}: acknowledged batch {b} differs"
            ),
        }
    }
    assert!(
        missing.is_empty(),
        "round {round_no}: {} of {} acknowledged batches lost after restart: {:?}",
        missing.len(),
        round.acked.len(),
        &missing[..missing.len().min(20)]
    );
    let known: BTreeSet<u64> = round
        .acked
        .iter()
        .chain(&round.in_flight)
        .copied()
        .collect();
    for (b, v) in &stored {
        assert!(
            known.contains(b),
            "round {round_no}: batch {b} was never sent but is stored"
        );
        if round.in_flight.contains(b) {
            assert_eq!(
                v,
                &expected(*b),
                "round {round_no}: in-flight batch {b} stored partially"
            );
        }
    }
    // The series index agrees.
    let listed = http.series(
        &format!("crash_samples{{round=\"{round_no}\"}}"),
        start - 1.0,
        end + 1.0,
    );
    assert_eq!(
        listed.len(),
        stored.len(),
        "round {round_no}: /api/v1/series and query_range disagree"
    );
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let seed: u64 = std::env::var("SIGHTLINE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    println!("crash_safety seed = {seed} (rerun with SIGHTLINE_CRASH_SEED={seed})");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    let data = persistent_data_dir();
    // Small memtables, a short flush interval and small WAL segments: the long rounds
    // flush to Parquet and roll segments while being killed.
    let opts = CollectorOptions {
        data_dir: Some(data.path().to_path_buf()),
        config_yaml: Some(STORAGE_CONFIG.into()),
        ..Default::default()
    };
    let mut collector = Collector::start_with(opts.clone());
    let mut rounds: Vec<Round> = Vec::new();

    for round_no in 0..ROUNDS {
        // Mostly short rounds at random moments; two long ones to cross a flush.
        let run_ms: u64 = match round_no {
            0 => rng.random_range(0..50),
            2 | 4 => rng.random_range(6_000..9_000),
            _ => rng.random_range(100..2_500),
        };
        let base_ms = (now_ms() / 1000 - 60) * 1000;
        let out = Arc::new(Mutex::new(Round {
            base_ms,
            ..Default::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (http, out, stop) = (collector.http(), out.clone(), stop.clone());
            std::thread::spawn(move || stream(http, round_no, base_ms, stop, out))
        };
        std::thread::sleep(Duration::from_millis(run_ms));
        collector.process.kill();
        stop.store(true, Ordering::Relaxed);
        writer.join().expect("writer thread");
        let round = Arc::try_unwrap(out)
            .expect("writer finished")
            .into_inner()
            .unwrap();
        println!(
            "round {round_no}: killed after {run_ms} ms; {} batches acknowledged, {} in flight, parquet files on disk: {}",
            round.acked.len(),
            round.in_flight.len(),
            parquet_files(data.path())
        );
        assert!(
            round.refused.is_empty(),
            "round {round_no}: batches refused: {:?}",
            &round.refused[..round.refused.len().min(5)]
        );
        rounds.push(round);

        collector = Collector::start_with(opts.clone());
        let http = collector.http();
        for (i, r) in rounds.iter().enumerate() {
            verify_round(&http, i, r);
        }
    }
    let total: usize = rounds.iter().map(|r| r.acked.len()).sum();
    assert!(total > 0, "no batch was ever acknowledged");
    println!(
        "{total} acknowledged batches ({} samples) verified after {ROUNDS} kills",
        total as i64 * SAMPLES_PER_BATCH
    );

    // Graceful stop keeps everything as well.
    let code = collector.process.terminate(Duration::from_secs(30));
    assert_eq!(code, Some(0), "SIGTERM must stop the collector cleanly");
    let collector = Collector::start_with(opts);
    for (i, r) in rounds.iter().enumerate() {
        verify_round(&collector.http(), i, r);
    }
    let parts = parquet_files(data.path());
    println!("parquet files after the graceful restart: {parts}");
    assert!(
        parts > 0,
        "no Parquet part was ever flushed, so no round crossed a flush"
    );
}
