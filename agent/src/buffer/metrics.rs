//! Counters and gauges of the disk buffer, registered as `sightline_agent_buffer_*`.
//! "Records" are the items inside the buffered requests: data points, log records,
//! spans (label `signal`), so the dropped counter can be compared with what is missing
//! downstream.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use super::Signal;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SignalLabel {
    pub signal: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DropLabel {
    pub signal: &'static str,
    pub reason: &'static str,
}

/// `reason` values of `buffer_records_dropped_total`.
pub mod reason {
    /// `when_full: drop_oldest` deleted the segment holding them.
    pub const DROP_OLDEST: &str = "drop_oldest";
    /// The collector refused them for good.
    pub const PERMANENT_ERROR: &str = "permanent_error";
    /// One request larger than `max_bytes`.
    pub const TOO_LARGE: &str = "too_large";
}

/// Every `sightline_agent_buffer_*` metric.
#[derive(Debug, Default, Clone)]
pub struct BufferMetrics {
    pub bytes: Gauge,
    pub segments: Gauge,
    pub records_written: Family<SignalLabel, Counter>,
    pub records_shipped: Family<SignalLabel, Counter>,
    pub records_dropped: Family<DropLabel, Counter>,
    pub corrupt_segments: Counter,
    pub torn_tails: Counter,
    pub backpressure_seconds: Counter<f64, AtomicU64>,
    pub backpressure_events: Counter,
    pub write_errors: Counter,
}

impl BufferMetrics {
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "buffer_bytes",
            "Bytes of disk buffer segments",
            self.bytes.clone(),
        );
        r.register(
            "buffer_segments",
            "Disk buffer segment files",
            self.segments.clone(),
        );
        r.register(
            "buffer_records_written",
            "Records (points, log records, spans) written to the disk buffer",
            self.records_written.clone(),
        );
        r.register(
            "buffer_records_shipped",
            "Buffered records acknowledged by the collector",
            self.records_shipped.clone(),
        );
        r.register(
            "buffer_records_dropped",
            "Buffered records lost, by signal and reason (drop_oldest, permanent_error, too_large)",
            self.records_dropped.clone(),
        );
        r.register(
            "buffer_corrupt_segments",
            "Corrupt disk buffer segments moved to corrupt/",
            self.corrupt_segments.clone(),
        );
        r.register(
            "buffer_torn_tails",
            "Incomplete last frames cut off the newest segment at start-up",
            self.torn_tails.clone(),
        );
        r.register(
            "buffer_backpressure_seconds",
            "Time producers waited for buffer space (when_full: backpressure)",
            self.backpressure_seconds.clone(),
        );
        r.register(
            "buffer_backpressure_events",
            "Pushes that found the buffer full and waited",
            self.backpressure_events.clone(),
        );
        r.register(
            "buffer_write_errors",
            "Failed writes of buffer segments or the cursor",
            self.write_errors.clone(),
        );
    }

    pub fn written(&self, signal: Signal, n: u64) {
        self.records_written
            .get_or_create(&SignalLabel {
                signal: signal.as_str(),
            })
            .inc_by(n);
    }

    pub fn shipped(&self, signal: Signal, n: u64) {
        self.records_shipped
            .get_or_create(&SignalLabel {
                signal: signal.as_str(),
            })
            .inc_by(n);
    }

    pub fn dropped(&self, signal: Signal, reason: &'static str, n: u64) {
        self.records_dropped
            .get_or_create(&DropLabel {
                signal: signal.as_str(),
                reason,
            })
            .inc_by(n);
    }

    pub fn dropped_with(&self, signal: Signal, reason: &'static str) -> u64 {
        self.records_dropped
            .get_or_create(&DropLabel {
                signal: signal.as_str(),
                reason,
            })
            .get()
    }
}
