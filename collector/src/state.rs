//! Shared state of a running collector: the store, the clock, self-metrics, the
//! token table and the limits every receiver and read API consults.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use sightline_store::{Clock, Store};

use crate::auth::Auth;
use crate::config::{Config, LimitsConfig, NonFinite, QueryLimits};
use crate::metadata::MetadataStore;
use crate::self_metrics::SelfMetrics;
use crate::spanmetrics::SpanMetrics;
use crate::translate::{NonFinitePolicy, TranslateOptions};

/// Everything a request handler needs. Shared as `Arc<AppState>`.
pub struct AppState {
    pub store: Arc<Store>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Arc<SelfMetrics>,
    /// RED metrics derived from ingested spans.
    pub spanmetrics: Arc<SpanMetrics>,
    pub auth: Auth,
    pub limits: LimitsConfig,
    pub translate: TranslateOptions,
    /// Read API limits (`query:` section).
    pub query: QueryLimits,
    /// One permit per PromQL query running (`query.max_concurrency`).
    pub query_slots: Arc<tokio::sync::Semaphore>,
    /// Metric metadata (type, help, unit) per tenant, for `/api/v1/metadata`.
    pub metadata: Arc<MetadataStore>,
    ready: AtomicBool,
}

impl AppState {
    /// Builds the state from a validated config and an opened store.
    pub fn new(cfg: &Config, store: Arc<Store>, clock: Arc<dyn Clock>) -> Result<AppState, String> {
        let metrics = Arc::new(SelfMetrics::new());
        let spanmetrics = Arc::new(SpanMetrics::new(
            cfg.self_monitoring.span_metrics_max_series,
            metrics.spanmetrics_spans.clone(),
            metrics.spanmetrics_overflow.clone(),
        ));
        let query = cfg.query.limits();
        let metadata = MetadataStore::open(&cfg.storage.data_dir).map_err(|e| e.to_string())?;
        Ok(AppState {
            query_slots: Arc::new(tokio::sync::Semaphore::new(query.max_concurrency)),
            query,
            metadata: Arc::new(metadata),
            store,
            clock,
            metrics,
            spanmetrics,
            auth: Auth::from_config(&cfg.auth)?,
            limits: cfg.limits.clone(),
            translate: TranslateOptions {
                non_finite: match cfg.ingest.non_finite {
                    NonFinite::Reject => NonFinitePolicy::Reject,
                    NonFinite::Accept => NonFinitePolicy::Accept,
                },
                promote_resource_attributes: cfg
                    .ingest
                    .promote_resource_attributes
                    .clone()
                    .unwrap_or_else(|| TranslateOptions::default().promote_resource_attributes),
            },
            ready: AtomicBool::new(false),
        })
    }

    /// `/-/ready` answers 200 once every listener is bound, 503 again while shutting down.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    /// Merges metric metadata of a stored request into the tenant's table and
    /// schedules saving it.
    pub fn record_metadata(
        &self,
        tenant: &str,
        entries: Vec<(String, crate::metadata::MetricMeta)>,
    ) {
        if self.metadata.record(tenant, entries) > 0 {
            self.metadata.schedule_persist();
        }
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }
}
