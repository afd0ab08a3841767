//! Counters of the agent's OTLP receiver, registered in the agent's registry as
//! `sightline_agent_receiver_*`: what applications sent (`received`, by signal and
//! protocol), what was refused (`rejected`, by signal and reason), what reached the
//! collector (`forwarded`) or was lost after acceptance (`dropped`), and how many
//! resources got container attributes from the sending process (`attributed`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReceivedLabels {
    pub signal: &'static str,
    pub protocol: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SignalReason {
    pub signal: &'static str,
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SignalLabel {
    pub signal: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabel {
    pub source: &'static str,
}

/// Every `sightline_agent_receiver_*` metric.
#[derive(Debug, Default, Clone)]
pub struct ReceiverMetrics {
    /// Items (points, log records, spans) accepted from applications.
    pub received: Family<ReceivedLabels, Counter>,
    /// Requests refused, by signal and reason.
    pub rejected: Family<SignalReason, Counter>,
    /// Items the collector accepted.
    pub forwarded: Family<SignalLabel, Counter>,
    /// Items accepted from an application and then lost (permanent refusal, retries
    /// exhausted, shutdown), by signal and reason.
    pub dropped: Family<SignalReason, Counter>,
    /// Resources that got container attributes, by how the sender was identified
    /// (`local_process`, `pod_ip`).
    pub attributed: Family<SourceLabel, Counter>,
    /// Requests waiting to be forwarded.
    pub queue_length: Gauge,
}

impl ReceiverMetrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "receiver_received",
            "Items (data points, log records, spans) accepted from applications by the OTLP receiver",
            self.received.clone(),
        );
        registry.register(
            "receiver_rejected",
            "OTLP receiver requests refused, by signal and reason",
            self.rejected.clone(),
        );
        registry.register(
            "receiver_forwarded",
            "Items from applications accepted by the collector",
            self.forwarded.clone(),
        );
        registry.register(
            "receiver_dropped",
            "Items accepted from applications and lost before the collector took them, by reason",
            self.dropped.clone(),
        );
        registry.register(
            "receiver_attributed",
            "Resources from applications given container/pod attributes, by how the sender was found",
            self.attributed.clone(),
        );
        registry.register(
            "receiver_queue_length",
            "Application requests waiting to be forwarded",
            self.queue_length.clone(),
        );
    }

    pub fn received(&self, signal: &'static str, protocol: &'static str, n: u64) {
        self.received
            .get_or_create(&ReceivedLabels { signal, protocol })
            .inc_by(n);
    }

    pub fn rejected(&self, signal: &'static str, reason: &'static str) {
        self.rejected
            .get_or_create(&SignalReason { signal, reason })
            .inc();
    }

    pub fn forwarded(&self, signal: &'static str, n: u64) {
        self.forwarded
            .get_or_create(&SignalLabel { signal })
            .inc_by(n);
    }

    pub fn dropped(&self, signal: &'static str, reason: &'static str, n: u64) {
        self.dropped
            .get_or_create(&SignalReason { signal, reason })
            .inc_by(n);
    }

    pub fn attributed(&self, source: &'static str, n: u64) {
        self.attributed
            .get_or_create(&SourceLabel { source })
            .inc_by(n);
    }

    pub fn rejected_count(&self, signal: &'static str, reason: &'static str) -> u64 {
        self.rejected
            .get_or_create(&SignalReason { signal, reason })
            .get()
    }
}
