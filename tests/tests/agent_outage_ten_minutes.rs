//! The collector is down for ten minutes under steady load: a real writer process
//! appends log lines the whole time and the agent collects host metrics every second.
//! After the collector returns (same data dir, same port), every line is stored exactly
//! once (count and content hash), the host metrics of the outage are there, and the
//! agent's counters say nothing was dropped. This test really takes 11+ minutes.

#![allow(clippy::unwrap_used)]

mod delivery_support;

use std::time::{Duration, Instant};

use delivery_support::{
    agent_yaml, check, spawn_writer, stored_lines, wait_writer, AgentRun, FixedCollector,
};

const OUTAGE: Duration = Duration::from_secs(600);
const RATE: u64 = 100;

#[test]
fn outage_ten_minutes() {
    let dir = tempfile::tempdir().unwrap();
    let mut collector = FixedCollector::new(
        &dir.path().join("collector"),
        "storage:\n  flush_interval: 1m\n",
    );
    collector.start();
    let mut agent = AgentRun::new(
        dir.path(),
        &collector.endpoint(),
        &agent_yaml("  max_bytes: 256MiB\n"),
    );
    agent.start();
    // 30 s before, 600 s during and 30 s after the outage.
    let total = RATE * (30 + OUTAGE.as_secs() + 30);
    let base_ns = sightline_e2e::now_ns() - 14_400_000_000_000;
    let mut writer = spawn_writer(
        &dir.path().join("pods/default_writer_uid-1/app"),
        total,
        RATE,
        RATE * 120,
        base_ns,
        "alternate",
    );
    std::thread::sleep(Duration::from_secs(30));
    collector.kill();
    let down_at = sightline_e2e::now_ms();
    let started = Instant::now();
    let mut rss_max = 0;
    while started.elapsed() < OUTAGE {
        agent.proc.as_mut().unwrap().assert_running();
        rss_max = rss_max.max(agent.proc.as_ref().unwrap().rss_kib().unwrap_or(0));
        std::thread::sleep(Duration::from_secs(5));
    }
    let s = agent.scrape();
    let buffered = s.sum("sightline_agent_buffer_records_written_total", &[]);
    let buffer_bytes = s.sum("sightline_agent_buffer_bytes", &[]);
    collector.start();
    let up_at = sightline_e2e::now_ms();
    wait_writer(&mut writer, Duration::from_secs(300));
    let wait_started = Instant::now();
    let lines = loop {
        let lines = stored_lines(&collector.http(), base_ns, total);
        if check(&lines, total).missing.is_empty()
            || wait_started.elapsed() > Duration::from_secs(300)
        {
            break lines;
        }
        std::thread::sleep(Duration::from_secs(3));
    };
    let d = check(&lines, total);
    // Host metrics collected during the outage arrived too.
    let outage_s = (up_at - down_at) / 1000;
    let samples = collector.http().query(
        &format!("count_over_time(system_memory_usage_bytes[{}s])", outage_s),
        up_at as f64 / 1000.0,
    );
    let metric_samples = samples.first().map(|s| s.value).unwrap_or(0.0);
    let s = agent.scrape();
    let dropped_points = s.sum("sightline_agent_dropped_points_total", &[]) + 0.0;
    let buffer_dropped = s.sum("sightline_agent_buffer_records_dropped_total", &[]) + 0.0;
    println!(
        "outage_ten_minutes: collector down {outage_s}s; {total} lines written at {RATE}/s; \
         buffered during the outage {buffered} records ({buffer_bytes} bytes); stored {} \
         (distinct {}), duplicates {}, missing {}, hash {:016x} (expected {:016x}); \
         memory samples in the outage window {metric_samples}; agent RSS max {rss_max} KiB; \
         dropped points {dropped_points}, buffer records dropped {buffer_dropped}; \
         collector dropped {} re-sent log records",
        d.stored,
        d.distinct,
        d.duplicates,
        d.missing.len(),
        d.hash,
        d.expected_hash,
        collector.duplicates_dropped()
    );
    assert!(d.missing.is_empty(), "lost {} lines", d.missing.len());
    assert_eq!(d.duplicates, 0);
    assert_eq!(d.hash, d.expected_hash);
    assert_eq!(dropped_points, 0.0);
    assert_eq!(buffer_dropped, 0.0);
    // One sample per collection; allow for slow collections on a loaded machine.
    assert!(
        metric_samples >= (outage_s / 10) as f64,
        "{metric_samples} memory samples for a {outage_s}s outage"
    );
}
