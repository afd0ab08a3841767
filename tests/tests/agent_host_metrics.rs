//! The agent's host metrics reach the collector: with a 1 s interval, CPU, memory and
//! network series are queryable through the Prometheus API within a couple of
//! intervals, named and labelled per the OpenTelemetry host-metrics conventions
//! (`job="sightline-agent"`, `instance=<hostname>`), and the agent's own counters move.

// Test files: a failed unwrap is a failed test, also in helper functions.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use sightline_e2e::metrics_text::Scrape;
use sightline_e2e::{hostname, now_ms, wait_for, Agent, Collector};

/// Generous: the goal is two intervals (2 s), but a loaded CI machine is slow.
const FIRST_DATA_TIMEOUT: Duration = Duration::from_secs(30);

fn values_of(series: &[sightline_e2e::http_api::InstantSample], label: &str) -> BTreeSet<String> {
    series
        .iter()
        .filter_map(|s| s.metric.get(label).cloned())
        .collect()
}

#[test]
fn host_metrics_arrive_with_expected_names_and_labels() {
    let c = Collector::start();
    let http = c.http();
    let collector_before = Scrape::fetch(&http);
    let started = Instant::now();
    let mut agent = Agent::start(&c.grpc_endpoint(), "1s", &[]);
    let host = hostname();
    let selector = format!("{{job=\"sightline-agent\",instance=\"{host}\"}}");

    let cpu = wait_for(
        "system_cpu_time_seconds_total from the agent",
        FIRST_DATA_TIMEOUT,
        || {
            agent.process.assert_running();
            let r = http.query(
                &format!("system_cpu_time_seconds_total{selector}"),
                now_ms() as f64 / 1000.0,
            );
            (!r.is_empty()).then_some(r)
        },
    );
    println!(
        "first host metrics queryable {:?} after the agent started (interval 1s)",
        started.elapsed()
    );

    // CPU: one series per (cpu, state); counters of seconds, so non-negative.
    let states = values_of(&cpu, "state");
    for s in ["user", "system", "idle"] {
        assert!(states.contains(s), "cpu states {states:?} lack {s}");
    }
    let cpus = values_of(&cpu, "cpu");
    assert!(!cpus.is_empty(), "cpu series lack the cpu label: {cpu:?}");
    for s in &cpu {
        assert_eq!(
            s.metric.get("job").map(String::as_str),
            Some("sightline-agent"),
            "{s:?}"
        );
        assert_eq!(s.metric.get("instance"), Some(&host), "{s:?}");
        assert!(s.value >= 0.0 && s.value.is_finite(), "{s:?}");
    }

    // The other families may arrive in the same or the next export.
    let memory = wait_for("system_memory_usage_bytes", FIRST_DATA_TIMEOUT, || {
        let r = http.query(
            &format!("system_memory_usage_bytes{selector}"),
            now_ms() as f64 / 1000.0,
        );
        (!r.is_empty()).then_some(r)
    });
    let mem_states = values_of(&memory, "state");
    assert!(
        mem_states.contains("used"),
        "memory states {mem_states:?} lack used"
    );
    let used = memory
        .iter()
        .find(|s| s.metric.get("state").map(String::as_str) == Some("used"))
        .unwrap();
    assert!(used.value > 0.0, "used memory {used:?}");

    let net = wait_for("system_network_io_bytes_total", FIRST_DATA_TIMEOUT, || {
        let r = http.query(
            &format!("system_network_io_bytes_total{selector}"),
            now_ms() as f64 / 1000.0,
        );
        (!r.is_empty()).then_some(r)
    });
    let directions = values_of(&net, "direction");
    assert!(
        directions.contains("receive") && directions.contains("transmit"),
        "network directions {directions:?}"
    );
    let devices = values_of(&net, "device");
    assert!(
        devices.contains("lo"),
        "network devices {devices:?} lack lo"
    );

    // Counters advance between exports: CPU time of some (cpu, state) grows.
    let first_total: f64 = cpu.iter().map(|s| s.value).sum();
    wait_for(
        "cpu time to advance between exports",
        FIRST_DATA_TIMEOUT,
        || {
            let r = http.query(
                &format!("system_cpu_time_seconds_total{selector}"),
                now_ms() as f64 / 1000.0,
            );
            let total: f64 = r.iter().map(|s| s.value).sum();
            (total > first_total).then_some(())
        },
    );

    // The agent's own counters moved, and the collector counted what it received.
    let agent_first = Scrape::fetch(&agent.http());
    let moved = wait_for(
        "some sightline_agent_*_total counter to advance",
        FIRST_DATA_TIMEOUT,
        || {
            let now = Scrape::fetch(&agent.http());
            let grown: Vec<String> = now
                .samples
                .iter()
                .filter(|s| s.name.starts_with("sightline_agent_") && s.name.ends_with("_total"))
                .filter(|s| {
                    let before: f64 = agent_first
                        .samples
                        .iter()
                        .filter(|b| b.name == s.name && b.labels == s.labels)
                        .map(|b| b.value)
                        .sum();
                    s.value > before
                })
                .map(|s| format!("{}{:?}", s.name, s.labels))
                .collect();
            (!grown.is_empty()).then_some(grown)
        },
    );
    println!("agent counters that advanced: {moved:?}");
    let exported = agent_first
        .samples
        .iter()
        .filter(|s| s.name.starts_with("sightline_agent_") && s.name.ends_with("_total"))
        .filter(|s| {
            ["export", "sent", "shipped"]
                .iter()
                .any(|w| s.name.contains(w))
        })
        .map(|s| s.value)
        .sum::<f64>();
    assert!(
        exported > 0.0,
        "no sightline_agent_*{{export,sent,shipped}}*_total counter is positive: {:?}",
        agent_first.names()
    );

    let collector_after = Scrape::fetch(&http);
    let received = |s: &Scrape| {
        s.sum(
            "sightline_collector_received_items_total",
            &[("signal", "metrics"), ("protocol", "grpc")],
        )
    };
    assert!(
        received(&collector_after) > received(&collector_before),
        "sightline_collector_received_items_total{{signal=\"metrics\",protocol=\"grpc\"}} did not move"
    );
    agent.process.assert_running();
}
