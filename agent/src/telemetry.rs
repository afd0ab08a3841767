//! The agent's own metrics, served on `/metrics` in the OpenMetrics text format.
//!
//! Every stage updates these as it works: the collection loop (`collections`,
//! `collection_errors{source}`, `collected_points`), the queue (`queue_length`,
//! `dropped_points{reason="queue_full"}`) and the exporter (`export_requests{outcome}`,
//! `exported_points`, `export_retries`, `export_partial_successes`, `dropped_points{reason}`).
//! Names are `sightline_agent_<thing>[_total]`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabel {
    pub source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

/// Outcome label values of `sightline_agent_export_requests_total`.
pub mod outcome {
    pub const SUCCESS: &str = "success";
    pub const PARTIAL_SUCCESS: &str = "partial_success";
    pub const RETRYABLE_ERROR: &str = "retryable_error";
    pub const PERMANENT_ERROR: &str = "permanent_error";
    /// The collector cannot decode our compression; the exporter switched to another.
    pub const COMPRESSION_UNSUPPORTED: &str = "compression_unsupported";
}

/// Reason label values of `sightline_agent_dropped_points_total`.
pub mod reason {
    /// The queue was full; the oldest batch was dropped to make room.
    pub const QUEUE_FULL: &str = "queue_full";
    /// The collector answered with a non-retryable status.
    pub const PERMANENT_ERROR: &str = "permanent_error";
    /// Retrying took longer than `max_elapsed` (or the shutdown deadline).
    pub const RETRIES_EXHAUSTED: &str = "retries_exhausted";
    /// The collector accepted the request but rejected these points (partial success).
    pub const REJECTED: &str = "rejected";
    /// Still queued when the shutdown flush ran out of time.
    pub const SHUTDOWN: &str = "shutdown";
}

/// All counters and gauges of the agent, registered in one registry.
#[derive(Debug)]
pub struct Telemetry {
    registry: Registry,
    pub collections: Counter,
    pub collection_errors: Family<SourceLabel, Counter>,
    pub collected_points: Counter,
    pub collection_duration_seconds: Gauge<f64, AtomicU64>,
    pub export_requests: Family<OutcomeLabel, Counter>,
    pub exported_points: Counter,
    pub export_retries: Counter,
    pub export_partial_successes: Counter,
    pub dropped_points: Family<ReasonLabel, Counter>,
    pub queue_length: Gauge,
    pub queue_capacity: Gauge,
    /// Containers found by discovery (`containers` module).
    pub containers_discovered: Counter,
    /// Containers that disappeared and were forgotten.
    pub containers_removed: Counter,
    /// Containers currently known.
    pub containers: Gauge,
    /// Container series folded into the overflow resource because of the series budget.
    pub series_overflow: Counter,
    /// Container metadata lookups that failed, by `source` (kubelet, docker).
    pub metadata_errors: Family<SourceLabel, Counter>,
    /// Log tailing and shipping (`sightline_agent_log_*`).
    pub logs: crate::logs::metrics::LogMetrics,
    /// Switches away from a failing collector endpoint.
    pub export_failovers: Counter,
    /// Index of the collector endpoint exports go to (0 = the first configured).
    pub export_active_endpoint: Gauge,
    /// The OTLP receiver for applications (`sightline_agent_receiver_*`).
    pub receiver: crate::receiver::metrics::ReceiverMetrics,
    /// Log records tagged with a pattern id at the edge.
    pub log_patterns_tagged: Counter,
    /// Patterns the edge miner currently holds.
    pub log_patterns: Gauge,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("sightline_agent");
        let t = Self {
            collections: Counter::default(),
            collection_errors: Family::default(),
            collected_points: Counter::default(),
            collection_duration_seconds: Gauge::default(),
            export_requests: Family::default(),
            exported_points: Counter::default(),
            export_retries: Counter::default(),
            export_partial_successes: Counter::default(),
            dropped_points: Family::default(),
            queue_length: Gauge::default(),
            queue_capacity: Gauge::default(),
            containers_discovered: Counter::default(),
            containers_removed: Counter::default(),
            containers: Gauge::default(),
            series_overflow: Counter::default(),
            metadata_errors: Family::default(),
            logs: crate::logs::metrics::LogMetrics::default(),
            export_failovers: Counter::default(),
            export_active_endpoint: Gauge::default(),
            receiver: Default::default(),
            log_patterns_tagged: Counter::default(),
            log_patterns: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "collections",
            "Host metric collections run",
            t.collections.clone(),
        );
        registry.register(
            "collection_errors",
            "Sources (cpu, memory, filesystem, ...) that failed during a collection",
            t.collection_errors.clone(),
        );
        registry.register(
            "collected_points",
            "Data points produced by collections",
            t.collected_points.clone(),
        );
        registry.register(
            "collection_duration_seconds",
            "Duration of the last collection",
            t.collection_duration_seconds.clone(),
        );
        registry.register(
            "export_requests",
            "OTLP export attempts by outcome",
            t.export_requests.clone(),
        );
        registry.register(
            "exported_points",
            "Data points accepted by the collector",
            t.exported_points.clone(),
        );
        registry.register(
            "export_retries",
            "Export attempts repeated after a retryable error",
            t.export_retries.clone(),
        );
        registry.register(
            "export_partial_successes",
            "Export responses carrying an OTLP partial_success",
            t.export_partial_successes.clone(),
        );
        registry.register(
            "dropped_points",
            "Data points dropped before or during export, by reason",
            t.dropped_points.clone(),
        );
        registry.register(
            "queue_length",
            "Batches waiting in the export queue",
            t.queue_length.clone(),
        );
        registry.register(
            "queue_capacity",
            "Capacity of the export queue in batches",
            t.queue_capacity.clone(),
        );
        registry.register(
            "containers_discovered",
            "Containers (and systemd services) found in the cgroup tree",
            t.containers_discovered.clone(),
        );
        registry.register(
            "containers_removed",
            "Containers that disappeared from the cgroup tree and were forgotten",
            t.containers_removed.clone(),
        );
        registry.register(
            "containers",
            "Containers currently known",
            t.containers.clone(),
        );
        registry.register(
            "series_overflow",
            "Container series folded into the overflow resource (series budget exceeded)",
            t.series_overflow.clone(),
        );
        registry.register(
            "container_metadata_errors",
            "Container metadata lookups that failed, by source",
            t.metadata_errors.clone(),
        );
        t.logs.register(&mut registry);
        registry.register(
            "export_failovers",
            "Switches from a failing collector endpoint to the next configured one",
            t.export_failovers.clone(),
        );
        registry.register(
            "export_active_endpoint",
            "Index of the collector endpoint exports currently go to (0 = first configured)",
            t.export_active_endpoint.clone(),
        );
        t.receiver.register(&mut registry);
        registry.register(
            "log_pattern_tagged",
            "Log records given a sightline.log.pattern id by the edge pattern miner",
            t.log_patterns_tagged.clone(),
        );
        registry.register(
            "log_patterns",
            "Log patterns the edge miner currently holds (bounded by logs.patterns.max_clusters)",
            t.log_patterns.clone(),
        );
        Self { registry, ..t }
    }

    /// Count one export attempt with `outcome` (see [`outcome`]).
    pub fn export_request(&self, outcome: &'static str) {
        self.export_requests
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    /// Count `points` dropped for `reason` (see [`reason`]).
    pub fn dropped(&self, reason: &'static str, points: u64) {
        self.dropped_points
            .get_or_create(&ReasonLabel { reason })
            .inc_by(points);
    }

    pub fn export_requests_with(&self, outcome: &'static str) -> u64 {
        self.export_requests
            .get_or_create(&OutcomeLabel { outcome })
            .get()
    }

    pub fn dropped_with(&self, reason: &'static str) -> u64 {
        self.dropped_points
            .get_or_create(&ReasonLabel { reason })
            .get()
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_prefix_and_total_suffix() {
        let t = Telemetry::new();
        t.collections.inc();
        t.export_request(outcome::SUCCESS);
        t.dropped(reason::QUEUE_FULL, 7);
        t.queue_length.set(3);
        let text = t.encode();
        assert!(
            text.contains("sightline_agent_collections_total 1"),
            "{text}"
        );
        assert!(text.contains("sightline_agent_export_requests_total{outcome=\"success\"} 1"));
        assert!(text.contains("sightline_agent_dropped_points_total{reason=\"queue_full\"} 7"));
        assert!(text.contains("sightline_agent_queue_length 3"));
        assert!(text.contains("sightline_agent_exported_points_total 0"));
        assert!(text.contains("sightline_agent_export_retries_total 0"));
        assert_eq!(t.dropped_with(reason::QUEUE_FULL), 7);
    }
}
