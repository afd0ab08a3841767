//! The collector's own telemetry, served on `GET /metrics` (OpenMetrics text).
//!
//! Receivers and read APIs record into [`SelfMetrics`] as requests finish; at scrape
//! time the store's [`StoreStats`] are copied into `sightline_store_*` counters and
//! gauges, and the registry is encoded.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use sightline_store::StoreStats;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    limit: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ItemLabels {
    signal: String,
    protocol: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    protocol: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LokiQueryLabels {
    endpoint: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProtocolLabels {
    protocol: String,
}

fn duration_histogram() -> Histogram {
    // 1 ms .. ~16 s
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// Counters the store keeps, mirrored at scrape time.
struct StoreMetrics {
    wal_records: Counter,
    wal_fsyncs: Counter,
    wal_bytes: Counter,
    wal_replayed_records: Counter,
    flushes: Counter,
    quarantined_files: Counter,
    parts: Gauge<u64, AtomicU64>,
    series: Gauge<u64, AtomicU64>,
}

/// Counters of the PromQL engine (process-wide), mirrored at scrape time.
struct PromqlMetrics {
    queries: Counter,
    errors: Family<ReasonLabels, Counter>,
    samples_loaded: Counter,
}

/// Raises a mirrored counter to `v` (counters never go down).
fn mirror(c: &Counter, v: u64) {
    let cur = c.get();
    if v > cur {
        c.inc_by(v - cur);
    }
}

/// All self-metrics of one collector process.
pub struct SelfMetrics {
    registry: Registry,
    rejected: Family<ReasonLabels, Counter>,
    received: Family<ItemLabels, Counter>,
    log_duplicates: Counter,
    requests: Family<RequestLabels, Counter>,
    duration: Family<ProtocolLabels, Histogram, fn() -> Histogram>,
    limit_hits: Family<LimitLabels, Counter>,
    store: StoreMetrics,
    promql: PromqlMetrics,
    loki_queries: Family<LokiQueryLabels, Counter>,
    /// Span metrics and self-monitoring (`crate::spanmetrics`, `crate::self_monitoring`).
    pub spanmetrics_spans: Counter,
    pub spanmetrics_overflow: Counter,
    spanmetrics_series: Gauge<u64, AtomicU64>,
    self_monitoring_samples: Counter,
    self_monitoring_errors: Family<ReasonLabels, Counter>,
}

impl Default for SelfMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl SelfMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let rejected = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "sightline_collector_rejected",
            "Rejected requests and items (samples, log records, spans), by reason",
            rejected.clone(),
        );
        let received = Family::<ItemLabels, Counter>::default();
        registry.register(
            "sightline_collector_received_items",
            "Items accepted into the store, by signal and protocol",
            received.clone(),
        );
        let log_duplicates = Counter::default();
        registry.register(
            "sightline_collector_log_duplicates_dropped",
            "Tailed log records received again (same stream and offset) and not stored twice",
            log_duplicates.clone(),
        );
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "sightline_collector_requests",
            "Requests answered, by protocol and status code",
            requests.clone(),
        );
        let duration = Family::<ProtocolLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            duration_histogram as fn() -> Histogram,
        );
        registry.register(
            "sightline_collector_request_duration_seconds",
            "Time to answer a request, by protocol",
            duration.clone(),
        );
        let limit_hits = Family::<LimitLabels, Counter>::default();
        registry.register(
            "sightline_collector_query_limit_hits",
            "Read requests that hit a query limit (max_samples, max_series, timeout, search_spans, ...)",
            limit_hits.clone(),
        );
        let store = StoreMetrics {
            wal_records: Counter::default(),
            wal_fsyncs: Counter::default(),
            wal_bytes: Counter::default(),
            wal_replayed_records: Counter::default(),
            flushes: Counter::default(),
            quarantined_files: Counter::default(),
            parts: Gauge::default(),
            series: Gauge::default(),
        };
        registry.register(
            "sightline_store_wal_records",
            "WAL records written",
            store.wal_records.clone(),
        );
        registry.register(
            "sightline_store_wal_fsyncs",
            "WAL fsyncs (group commits)",
            store.wal_fsyncs.clone(),
        );
        registry.register(
            "sightline_store_wal_bytes",
            "WAL bytes written",
            store.wal_bytes.clone(),
        );
        registry.register(
            "sightline_store_wal_replayed_records",
            "WAL records replayed at start-up",
            store.wal_replayed_records.clone(),
        );
        registry.register(
            "sightline_store_flushes",
            "Memtable flushes to Parquet",
            store.flushes.clone(),
        );
        registry.register(
            "sightline_store_quarantined_files",
            "Corrupt files moved aside",
            store.quarantined_files.clone(),
        );
        registry.register(
            "sightline_store_parts",
            "Parquet parts on disk",
            store.parts.clone(),
        );
        registry.register(
            "sightline_store_series",
            "Series in the index, all tenants",
            store.series.clone(),
        );
        let promql = PromqlMetrics {
            queries: Counter::default(),
            errors: Family::default(),
            samples_loaded: Counter::default(),
        };
        registry.register(
            "sightline_promql_queries",
            "PromQL queries evaluated (instant and range)",
            promql.queries.clone(),
        );
        registry.register(
            "sightline_promql_query_errors",
            "PromQL queries that failed, by Prometheus errorType",
            promql.errors.clone(),
        );
        registry.register(
            "sightline_promql_samples_loaded",
            "Samples loaded from storage by PromQL queries",
            promql.samples_loaded.clone(),
        );
        let spanmetrics_spans = Counter::default();
        registry.register(
            "sightline_spanmetrics_spans",
            "Spans counted into traces_spanmetrics_* series",
            spanmetrics_spans.clone(),
        );
        let spanmetrics_overflow = Counter::default();
        registry.register(
            "sightline_spanmetrics_overflow",
            "Spans folded into the overflow series because of the series cap",
            spanmetrics_overflow.clone(),
        );
        let spanmetrics_series = Gauge::<u64, AtomicU64>::default();
        registry.register(
            "sightline_spanmetrics_series",
            "Span metrics label sets tracked, all tenants",
            spanmetrics_series.clone(),
        );
        let self_monitoring_samples = Counter::default();
        registry.register(
            "sightline_self_monitoring_samples",
            "Self-monitoring and span metrics samples written into the store",
            self_monitoring_samples.clone(),
        );
        let self_monitoring_errors = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "sightline_self_monitoring_errors",
            "Self-monitoring rounds that failed, by reason (scrape, write, rejected)",
            self_monitoring_errors.clone(),
        );
        let loki_queries = Family::<LokiQueryLabels, Counter>::default();
        registry.register(
            "sightline_collector_loki_queries",
            "Loki API requests answered, by endpoint and outcome (success, bad_request, limit, error, unauthorized)",
            loki_queries.clone(),
        );
        SelfMetrics {
            loki_queries,
            registry,
            rejected,
            received,
            log_duplicates,
            requests,
            duration,
            limit_hits,
            store,
            promql,
            spanmetrics_spans,
            spanmetrics_overflow,
            spanmetrics_series,
            self_monitoring_samples,
            self_monitoring_errors,
        }
    }

    /// Counts `n` rejected items (or one rejected request) for `reason`.
    pub fn rejected(&self, reason: &str, n: u64) {
        if n > 0 {
            self.rejected
                .get_or_create(&ReasonLabels {
                    reason: reason.to_string(),
                })
                .inc_by(n);
        }
    }

    /// Current value of `rejected_total{reason}` (for tests and logs).
    pub fn rejected_count(&self, reason: &str) -> u64 {
        self.rejected
            .get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            })
            .get()
    }

    /// Counts one read request that hit `limit` (`max_samples`, `max_series`,
    /// `timeout`, `search_spans`, ...).
    pub fn query_limit_hit(&self, limit: &str) {
        self.limit_hits
            .get_or_create(&LimitLabels {
                limit: limit.to_string(),
            })
            .inc();
    }

    /// Counts items accepted into the store.
    pub fn received(&self, signal: &str, protocol: &str, n: u64) {
        self.received
            .get_or_create(&ItemLabels {
                signal: signal.to_string(),
                protocol: protocol.to_string(),
            })
            .inc_by(n);
    }

    /// Counts re-sent log records the store recognised and did not store again.
    pub fn log_duplicates_dropped(&self, n: u64) {
        self.log_duplicates.inc_by(n);
    }

    /// Current value of `log_duplicates_dropped_total`.
    pub fn log_duplicates_dropped_count(&self) -> u64 {
        self.log_duplicates.get()
    }

    /// Records one answered request.
    pub fn request(&self, protocol: &str, code: &str, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                protocol: protocol.to_string(),
                code: code.to_string(),
            })
            .inc();
        self.duration
            .get_or_create(&ProtocolLabels {
                protocol: protocol.to_string(),
            })
            .observe(seconds);
    }

    /// Sets the number of tracked span metrics label sets.
    pub fn spanmetrics_series(&self, n: usize) {
        self.spanmetrics_series.set(n as u64);
    }

    /// Counts samples written by self-monitoring.
    pub fn self_monitoring_samples(&self, n: u64) {
        self.self_monitoring_samples.inc_by(n);
    }

    /// Counts one failed self-monitoring step.
    pub fn self_monitoring_error(&self, reason: &str) {
        self.self_monitoring_errors
            .get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Counts one answered Loki API request.
    pub fn loki_query(&self, endpoint: &str, outcome: &str) {
        self.loki_queries
            .get_or_create(&LokiQueryLabels {
                endpoint: endpoint.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// Encodes everything, after copying `stats` into the store metrics.
    pub fn encode(&self, stats: Option<&StoreStats>) -> String {
        if let Some(s) = stats {
            let m = &self.store;
            for (c, v) in [
                (&m.wal_records, s.wal_records_total),
                (&m.wal_fsyncs, s.wal_fsyncs_total),
                (&m.wal_bytes, s.wal_bytes_total),
                (&m.wal_replayed_records, s.wal_replayed_records_total),
                (&m.flushes, s.flushes_total),
                (&m.quarantined_files, s.quarantined_files_total),
            ] {
                mirror(c, v);
            }
            m.parts.set(s.parts_total);
            m.series.set(s.series_total);
        }
        let q = sightline_promql::stats();
        mirror(&self.promql.queries, q.queries_total);
        mirror(&self.promql.samples_loaded, q.samples_loaded_total);
        for (reason, v) in [
            ("bad_data", q.errors_bad_data_total),
            ("execution", q.errors_execution_total),
            ("timeout", q.errors_timeout_total),
            ("internal", q.errors_internal_total),
        ] {
            let c = self.promql.errors.get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            });
            mirror(&c, v);
        }
        let mut out = String::new();
        // encoding into a String cannot fail
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_show_up_in_the_text() {
        let m = SelfMetrics::new();
        m.rejected("unauthenticated", 1);
        m.rejected("out_of_order", 3);
        m.received("metrics", "grpc", 10);
        m.request("grpc", "Ok", 0.01);
        m.query_limit_hit("max_samples");
        let stats = StoreStats {
            wal_fsyncs_total: 7,
            series_total: 5,
            ..Default::default()
        };
        let text = m.encode(Some(&stats));
        assert!(
            text.contains(r#"sightline_collector_rejected_total{reason="unauthenticated"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"sightline_collector_rejected_total{reason="out_of_order"} 3"#),
            "{text}"
        );
        assert!(text.contains(
            r#"sightline_collector_received_items_total{signal="metrics",protocol="grpc"} 10"#
        ));
        assert!(text.contains(r#"sightline_collector_requests_total{protocol="grpc",code="Ok"} 1"#));
        assert!(text.contains("sightline_collector_request_duration_seconds_bucket"));
        assert!(
            text.contains(r#"sightline_collector_query_limit_hits_total{limit="max_samples"} 1"#),
            "{text}"
        );
        assert!(
            text.contains("sightline_store_wal_fsyncs_total 7"),
            "{text}"
        );
        assert!(text.contains("sightline_store_series 5"), "{text}");
        assert_eq!(m.rejected_count("out_of_order"), 3);
        // a second scrape with the same stats does not double count
        let text = m.encode(Some(&stats));
        assert!(
            text.contains("sightline_store_wal_fsyncs_total 7"),
            "{text}"
        );
    }

    #[test]
    fn promql_counters_are_mirrored() {
        let m = SelfMetrics::new();
        let data = sightline_promql::MemQueryable::default();
        let opts = sightline_promql::QueryOptions::default();
        assert!(sightline_promql::instant_query(&data, "sum(", 0, &opts).is_err());
        assert!(sightline_promql::instant_query(&data, "1+1", 0, &opts).is_ok());
        let text = m.encode(None);
        let value = |name: &str| -> f64 {
            text.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0)
        };
        // process-wide counters: other tests may have added to them
        assert!(value("sightline_promql_queries_total") >= 2.0, "{text}");
        assert!(
            value(r#"sightline_promql_query_errors_total{reason="bad_data"}"#) >= 1.0,
            "{text}"
        );
    }
}
