//! The write path shared by every receiver.
//!
//! A receiver decodes its wire format, resolves the tenant, translates the request
//! (`crate::translate`) and hands the [`Translated`] result to [`ingest`], which
//! applies one policy for all protocols: a request whose every item was dropped by
//! translation is rejected as a whole (bad request); otherwise the batch is written
//! to the store (durable on return) and items dropped by translation or rejected by
//! the store are reported back as a partial success. Every rejected item and request
//! is counted in `sightline_collector_rejected_total{reason}`. Tailed log records the
//! store already holds (same `sightline.log.stream` and `sightline.log.offset`, see
//! `sightline_store::log_dedup`) are dropped as re-sends, counted in
//! `sightline_collector_log_duplicates_dropped_total`, and are not an error.

use crate::state::AppState;
use crate::translate::Translated;

/// Longest error message sent back to a client; the first few problems are enough.
const MAX_MESSAGE_PARTS: usize = 5;

/// Which signal a request carries (label value in self-metrics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Metrics,
    Logs,
    Traces,
}

impl Signal {
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Metrics => "metrics",
            Signal::Logs => "logs",
            Signal::Traces => "traces",
        }
    }
}

/// A request that was stored, possibly partially.
#[derive(Debug, Default, PartialEq)]
pub struct Ingested {
    pub accepted: u64,
    /// Items not stored (dropped by translation or rejected by the store).
    pub rejected: u64,
    /// Why items were not stored; empty when `rejected == 0`.
    pub message: String,
}

/// A request that was not stored at all.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum IngestError {
    /// Permanent: the sender must not retry (HTTP 400, gRPC INVALID_ARGUMENT).
    #[error("{0}")]
    BadRequest(String),
    /// Temporary: retry later (HTTP 503, gRPC UNAVAILABLE).
    #[error("{0}")]
    Unavailable(String),
    /// A storage fault that retrying will not fix (HTTP 500, gRPC INTERNAL).
    #[error("{0}")]
    Internal(String),
}

fn join_messages<'a>(parts: impl Iterator<Item = &'a str>) -> String {
    let parts: Vec<&str> = parts.filter(|m| !m.is_empty()).collect();
    let mut out = parts
        .iter()
        .take(MAX_MESSAGE_PARTS)
        .copied()
        .collect::<Vec<_>>()
        .join("; ");
    if parts.len() > MAX_MESSAGE_PARTS {
        out.push_str(&format!(
            "; and {} more problems",
            parts.len() - MAX_MESSAGE_PARTS
        ));
    }
    out
}

/// Stores one translated request for `tenant` (see the module docs for the policy).
pub async fn ingest(
    state: &AppState,
    tenant: &str,
    signal: Signal,
    protocol: &str,
    translated: Translated,
) -> Result<Ingested, IngestError> {
    let Translated { batch, dropped } = translated;
    let metrics = &state.metrics;
    for d in &dropped {
        metrics.rejected(d.reason, d.count);
    }
    let dropped_count: u64 = dropped.iter().map(|d| d.count).sum();
    if batch.item_count() == 0 {
        if dropped.is_empty() {
            return Ok(Ingested::default());
        }
        let message = join_messages(dropped.iter().map(|d| d.message.as_str()));
        tracing::warn!(tenant, signal = signal.as_str(), protocol, %message, "request rejected");
        return Err(IngestError::BadRequest(message));
    }
    let spans = crate::spanmetrics::observations(&batch);
    let outcome = match state.store.write(tenant, batch).await {
        Ok(o) => o,
        Err(e) if e.is_retryable() => {
            metrics.rejected("unavailable", 1);
            tracing::warn!(tenant, signal = signal.as_str(), protocol, error = %e, "write failed, sender should retry");
            return Err(IngestError::Unavailable(e.to_string()));
        }
        Err(e) => {
            metrics.rejected("storage_error", 1);
            tracing::error!(tenant, signal = signal.as_str(), protocol, error = %e, "write failed");
            return Err(IngestError::Internal(format!("storage error: {e}")));
        }
    };
    state
        .spanmetrics
        .record(tenant, spans, state.clock.now_ms());
    metrics.received(signal.as_str(), protocol, outcome.accepted);
    if outcome.log_duplicates > 0 {
        // A re-send after a lost ack or a crash: stored once already, success for the sender.
        metrics.log_duplicates_dropped(outcome.log_duplicates);
        tracing::debug!(
            tenant,
            protocol,
            duplicates = outcome.log_duplicates,
            "re-sent log records dropped"
        );
    }
    let mut store_rejected = 0;
    for r in &outcome.rejected {
        metrics.rejected(r.reason.as_str(), r.count);
        store_rejected += r.count;
    }
    let rejected = dropped_count + store_rejected;
    let store_messages: Vec<String> = outcome
        .rejected
        .iter()
        .map(|r| {
            format!(
                "{} rejected ({}): {}",
                r.count,
                r.reason.as_str(),
                r.example
            )
        })
        .collect();
    let message = join_messages(
        dropped
            .iter()
            .map(|d| d.message.as_str())
            .chain(store_messages.iter().map(String::as_str)),
    );
    if rejected > 0 {
        tracing::debug!(tenant, signal = signal.as_str(), protocol, rejected, %message, "partial success");
    }
    Ok(Ingested {
        accepted: outcome.accepted,
        rejected,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_capped() {
        let msgs: Vec<String> = (0..8).map(|i| format!("m{i}")).collect();
        let s = join_messages(msgs.iter().map(String::as_str));
        assert_eq!(s, "m0; m1; m2; m3; m4; and 3 more problems");
        assert_eq!(join_messages(["a", "", "b"].into_iter()), "a; b");
    }
}
