//! Shared state of a running collector: the store, the clock, self-metrics, the
//! token table and the limits every receiver and read API consults.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use sightline_store::{Clock, Store};

use crate::auth::Auth;
use crate::config::{Config, LimitsConfig, NonFinite};
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
        Ok(AppState {
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

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }
}
