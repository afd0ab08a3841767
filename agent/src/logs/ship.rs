//! Batching, the in-flight bound, and shipping with checkpoint-after-ack.
//!
//! ```text
//! tailer thread ─► Batcher (≤ max_records / max_bytes / timeout) ─► Gate (≤ N unacked batches;
//!     full = the tailer blocks: backpressure, nothing dropped) ─► channel ─► shipper task
//!     ─► Exporter::export_logs (retry/backoff/compression/TLS/token) ─► on OK: Checkpoints::ack
//!     for every file in the batch, persist, release the gate slot
//! ```
//! Batches are shipped one at a time in order, so acknowledgements per file are in offset
//! order. A retryable failure is retried until it succeeds (the exporter's `max_elapsed`
//! only restarts the backoff); a permanent refusal drops the batch (counted in
//! `log_records_dropped_total{reason}`) and its offsets advance, since re-sending cannot
//! succeed. At shutdown the shipper stops at the flush deadline without acknowledging:
//! what was not acknowledged is read and sent again after the restart.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use sightline_proto::otlp::collector::logs::v1::ExportLogsServiceRequest;
use sightline_proto::otlp::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use sightline_proto::otlp::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use sightline_proto::otlp::resource::v1::Resource;
use tokio::sync::mpsc;

use super::checkpoint::Checkpoints;
use super::discovery::FileMeta;
use crate::export::{ExportOutcome, Exporter};
use crate::otlp_metric::string_attr;
use crate::telemetry::Telemetry;

/// Name of the instrumentation scope of shipped log records.
pub const SCOPE_NAME: &str = "sightline-agent/logs";

/// Bound on batches built and not yet acknowledged.
#[derive(Debug)]
pub struct Gate {
    used: Mutex<usize>,
    freed: Condvar,
    limit: usize,
    telemetry: Arc<Telemetry>,
}

impl Gate {
    pub fn new(limit: usize, telemetry: Arc<Telemetry>) -> Self {
        telemetry.logs.batches_in_flight_limit.set(limit as i64);
        Self {
            used: Mutex::new(0),
            freed: Condvar::new(),
            limit: limit.max(1),
            telemetry,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, usize> {
        self.used.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wait up to `wait` for a slot; `false` if none freed in time.
    pub fn acquire(&self, wait: Duration) -> bool {
        let mut used = self.lock();
        if *used >= self.limit {
            used = self
                .freed
                .wait_timeout_while(used, wait, |u| *u >= self.limit)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        if *used >= self.limit {
            return false;
        }
        *used += 1;
        self.telemetry.logs.batches_in_flight.set(*used as i64);
        true
    }

    pub fn release(&self) {
        let mut used = self.lock();
        *used = used.saturating_sub(1);
        self.telemetry.logs.batches_in_flight.set(*used as i64);
        self.freed.notify_all();
    }

    pub fn in_flight(&self) -> usize {
        *self.lock()
    }
}

/// One export request plus the offsets it acknowledges.
#[derive(Debug, Default)]
pub struct Batch {
    pub request: ExportLogsServiceRequest,
    pub records: usize,
    /// `(stream, offset)`: after the ack, everything before `offset` is delivered.
    pub acks: Vec<(String, u64)>,
    /// Streams read to their end; `(stream, final offset)`.
    pub finished: Vec<(String, u64)>,
}

#[derive(Debug)]
struct Group {
    stream: String,
    path: String,
    meta: Arc<FileMeta>,
    records: Vec<LogRecord>,
}

/// Collects records of many files into batches.
#[derive(Debug)]
pub struct Batcher {
    hostname: String,
    pub max_records: usize,
    pub max_bytes: usize,
    groups: Vec<Group>,
    records: usize,
    bytes: usize,
    acks: Vec<(String, u64)>,
    finished: Vec<(String, u64)>,
}

fn int_attr(key: &str, v: u64) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(
                i64::try_from(v).unwrap_or(i64::MAX),
            )),
        }),
        ..Default::default()
    }
}

/// What the tailer hands the batcher for one record.
#[derive(Debug)]
pub struct Outgoing<'a> {
    pub stream: &'a str,
    pub path: &'a str,
    pub meta: &'a Arc<FileMeta>,
    pub record: super::multiline::Record,
    pub observed: u64,
}

impl Batcher {
    pub fn new(hostname: String, max_records: usize, max_bytes: usize) -> Self {
        Self {
            hostname,
            max_records: max_records.max(1),
            max_bytes: max_bytes.max(1),
            groups: Vec::new(),
            records: 0,
            bytes: 0,
            acks: Vec::new(),
            finished: Vec::new(),
        }
    }

    pub fn is_full(&self) -> bool {
        self.records >= self.max_records || self.bytes >= self.max_bytes
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0 && self.acks.is_empty() && self.finished.is_empty()
    }

    pub fn add(&mut self, out: Outgoing<'_>) {
        let r = out.record;
        let mut attributes = vec![
            string_attr("log.file.path", out.path),
            string_attr("sightline.log.stream", out.stream),
            int_attr("sightline.log.offset", r.start),
        ];
        if let Some(s) = r.stream {
            attributes.push(string_attr("log.iostream", s));
        }
        super::patterns::attach(&r.message, &mut attributes);
        let (severity_number, severity_text) = super::format::severity(&r.message)
            .map(|(n, t)| (n, t.to_string()))
            .unwrap_or_default();
        self.bytes += r.message.len() + 96;
        let record = LogRecord {
            time_unix_nano: r.time,
            observed_time_unix_nano: out.observed,
            severity_number,
            severity_text,
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(r.message)),
            }),
            attributes,
            ..Default::default()
        };
        self.records += 1;
        match self.groups.last_mut() {
            Some(g) if g.stream == out.stream => g.records.push(record),
            _ => self.groups.push(Group {
                stream: out.stream.to_string(),
                path: out.path.to_string(),
                meta: out.meta.clone(),
                records: vec![record],
            }),
        }
    }

    /// Everything before `offset` in `stream` is in this or an earlier batch.
    pub fn ack_up_to(&mut self, stream: &str, offset: u64) {
        match self.acks.iter_mut().find(|(s, _)| s == stream) {
            Some((_, o)) => *o = (*o).max(offset),
            None => self.acks.push((stream.to_string(), offset)),
        }
    }

    pub fn finish(&mut self, stream: &str, offset: u64) {
        self.ack_up_to(stream, offset);
        self.finished.push((stream.to_string(), offset));
    }

    /// Take the current batch.
    pub fn take(&mut self) -> Batch {
        let scope = InstrumentationScope {
            name: SCOPE_NAME.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            ..Default::default()
        };
        let resource_logs = std::mem::take(&mut self.groups)
            .into_iter()
            .map(|g| {
                let mut attributes = vec![
                    string_attr("service.name", "sightline-agent"),
                    string_attr("host.name", &self.hostname),
                ];
                if g.meta.resource.iter().any(|(k, _)| k.starts_with("k8s.")) {
                    attributes.push(string_attr("k8s.node.name", &self.hostname));
                }
                attributes.extend(g.meta.resource.iter().map(|(k, v)| string_attr(k, v)));
                let _ = &g.path;
                ResourceLogs {
                    resource: Some(Resource {
                        attributes,
                        ..Default::default()
                    }),
                    scope_logs: vec![ScopeLogs {
                        scope: Some(scope.clone()),
                        log_records: g.records,
                        schema_url: String::new(),
                    }],
                    schema_url: String::new(),
                }
            })
            .collect();
        let batch = Batch {
            request: ExportLogsServiceRequest { resource_logs },
            records: self.records,
            acks: std::mem::take(&mut self.acks),
            finished: std::mem::take(&mut self.finished),
        };
        self.records = 0;
        self.bytes = 0;
        batch
    }
}

/// Ship batches in order until the channel closes (or the shutdown deadline passes).
pub async fn ship(
    mut exporter: Exporter,
    mut rx: mpsc::UnboundedReceiver<Batch>,
    gate: Arc<Gate>,
    checkpoints: Arc<Mutex<Checkpoints>>,
    telemetry: Arc<Telemetry>,
    shutting_down: tokio::sync::watch::Receiver<Option<std::time::SystemTime>>,
) {
    while let Some(batch) = rx.recv().await {
        if batch.records > 0 {
            loop {
                match exporter.export_logs(&batch.request, batch.records).await {
                    ExportOutcome::Sent { .. } | ExportOutcome::Permanent { .. } => break,
                    ExportOutcome::GaveUp { .. } => {
                        if shutting_down.borrow().is_some() {
                            tracing::info!("log shipping stopped at the shutdown deadline; unacknowledged lines are re-read after the restart");
                            return;
                        }
                    }
                }
            }
        }
        let snapshot = {
            let mut c = checkpoints.lock().unwrap_or_else(|e| e.into_inner());
            for (stream, offset) in &batch.acks {
                c.ack(stream, *offset);
            }
            for (stream, offset) in &batch.finished {
                c.finish(stream, *offset);
            }
            c.take_snapshot()
                .map(|bytes| (c.path().to_path_buf(), bytes))
        };
        if let Some((path, bytes)) = snapshot {
            let written =
                tokio::task::spawn_blocking(move || super::checkpoint::write_atomic(&path, &bytes))
                    .await;
            match written {
                Ok(Ok(())) => {
                    telemetry.logs.checkpoint_writes.inc();
                }
                Ok(Err(e)) => {
                    telemetry.logs.checkpoint_errors.inc();
                    tracing::warn!(error = %e, "writing the log checkpoint failed");
                }
                Err(e) => {
                    telemetry.logs.checkpoint_errors.inc();
                    tracing::warn!(error = %e, "checkpoint task failed");
                }
            }
        }
        gate.release();
    }
}
