//! Counters of log tailing and shipping, registered in the agent's registry as
//! `sightline_agent_log_*`. The tailer moves the read/rotation/held-back counters, the
//! shipper the export/checkpoint ones.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::telemetry::ReasonLabel;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StyleLabel {
    pub style: &'static str,
}

/// Rotation styles (`style` label of `log_rotations_total`).
pub mod style {
    /// The file was renamed and a new one created at its path (kubelet, logrotate `create`).
    pub const RENAME: &str = "rename";
    /// The file was truncated in place (logrotate `copytruncate`).
    pub const TRUNCATE: &str = "truncate";
}

/// Every `sightline_agent_log_*` metric.
#[derive(Debug, Default, Clone)]
pub struct LogMetrics {
    pub files_watched: Gauge,
    pub lines_read: Counter,
    pub bytes_read: Counter,
    pub records_exported: Counter,
    pub rotations: Family<StyleLabel, Counter>,
    pub checkpoint_writes: Counter,
    pub checkpoint_errors: Counter,
    pub lines_held_back: Counter,
    pub batches_in_flight: Gauge,
    pub batches_in_flight_limit: Gauge,
    pub records_dropped: Family<ReasonLabel, Counter>,
    pub read_errors: Counter,
    pub invalid_lines: Counter,
    pub multiline_truncated: Counter,
}

impl LogMetrics {
    pub fn register(&self, registry: &mut Registry) {
        let r = registry;
        r.register(
            "log_files_watched",
            "Log files currently tailed",
            self.files_watched.clone(),
        );
        r.register(
            "log_lines_read",
            "Log lines read from files",
            self.lines_read.clone(),
        );
        r.register(
            "log_bytes_read",
            "Bytes read from log files",
            self.bytes_read.clone(),
        );
        r.register(
            "log_records_exported",
            "Log records acknowledged by the collector",
            self.records_exported.clone(),
        );
        r.register(
            "log_rotations",
            "Log file rotations seen, by style (rename, truncate)",
            self.rotations.clone(),
        );
        r.register(
            "log_checkpoint_writes",
            "Checkpoint files written (after acknowledgements)",
            self.checkpoint_writes.clone(),
        );
        r.register(
            "log_checkpoint_errors",
            "Checkpoint writes that failed",
            self.checkpoint_errors.clone(),
        );
        r.register(
            "log_lines_held_back",
            "Lines deferred by the per-container rate limit (read again later, not dropped)",
            self.lines_held_back.clone(),
        );
        r.register(
            "log_batches_in_flight",
            "Log batches built and not yet acknowledged",
            self.batches_in_flight.clone(),
        );
        r.register(
            "log_batches_in_flight_limit",
            "Maximum unacknowledged log batches before tailing pauses",
            self.batches_in_flight_limit.clone(),
        );
        r.register(
            "log_records_dropped",
            "Log records lost, by reason (permanent_error, rejected)",
            self.records_dropped.clone(),
        );
        r.register(
            "log_read_errors",
            "Errors reading or opening log files",
            self.read_errors.clone(),
        );
        r.register(
            "log_invalid_lines",
            "Lines that did not parse in their format (shipped raw)",
            self.invalid_lines.clone(),
        );
        r.register(
            "log_multiline_truncated",
            "Multiline records cut at the max_lines/max_bytes cap",
            self.multiline_truncated.clone(),
        );
    }

    pub fn rotation(&self, style: &'static str) {
        self.rotations.get_or_create(&StyleLabel { style }).inc();
    }

    pub fn dropped(&self, reason: &'static str, n: u64) {
        self.records_dropped
            .get_or_create(&ReasonLabel { reason })
            .inc_by(n);
    }
}
