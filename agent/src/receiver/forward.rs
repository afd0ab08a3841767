//! The seam between the receiver and shipping: an [`AppRequest`] (an attributed
//! `Export*ServiceRequest`) is offered to a [`Sink`]; the application gets its OK only
//! when the sink took it.
//!
//! The sink used today is [`QueueSink`], a bounded in-memory queue (capacity in
//! requests) drained by [`forward`], which ships each request with the agent's
//! exporter (retry, compression, TLS, endpoint failover). Full-policy: **refuse** — the
//! application gets RESOURCE_EXHAUSTED with a `RetryInfo` (gRPC) or 429 with
//! `Retry-After` (HTTP) and its SDK retries; nothing accepted is dropped for lack of
//! room. To route application data through the agent's disk buffer instead, implement
//! [`Sink::offer`] as "append to the buffer" (refusing with [`Refused::Full`] when the
//! buffer's policy is backpressure and it is full) and ship from the buffer with
//! [`ship_one`].

use std::sync::Arc;
use std::time::Duration;

use sightline_proto::otlp::collector::logs::v1::ExportLogsServiceRequest;
use sightline_proto::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use sightline_proto::otlp::collector::trace::v1::ExportTraceServiceRequest;
use tokio::sync::mpsc;

use super::signal::{self, AppSignal};
use tonic::codec::CompressionEncoding;
use tonic::transport::Channel;

use crate::export::{Accepted, ExportOutcome, Exporter, LogsRpc, MetricsRpc, SignalRpc};
use crate::telemetry::Telemetry;

/// One request from an application, with container attributes added, ready to ship.
#[derive(Debug, Clone, PartialEq)]
pub enum AppRequest {
    Metrics(ExportMetricsServiceRequest),
    Logs(ExportLogsServiceRequest),
    Traces(ExportTraceServiceRequest),
}

impl AppRequest {
    pub fn signal(&self) -> &'static str {
        match self {
            AppRequest::Metrics(_) => signal::METRICS,
            AppRequest::Logs(_) => signal::LOGS,
            AppRequest::Traces(_) => signal::TRACES,
        }
    }

    /// Data points, log records or spans.
    pub fn items(&self) -> usize {
        match self {
            AppRequest::Metrics(r) => r.items(),
            AppRequest::Logs(r) => r.items(),
            AppRequest::Traces(r) => r.items(),
        }
    }
}

/// Why a sink did not take a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// No room now; the sender should retry after this long.
    Full { retry_after: Duration },
    /// The agent is shutting down.
    Closed,
}

/// Where accepted application requests go.
pub trait Sink: Send + Sync + 'static {
    /// Take `request` (durably or queued) or refuse it without blocking.
    fn offer(&self, request: AppRequest) -> Result<(), Refused>;
}

/// A bounded in-memory queue in front of [`forward`].
#[derive(Debug, Clone)]
pub struct QueueSink {
    tx: mpsc::Sender<AppRequest>,
    telemetry: Arc<Telemetry>,
    retry_after: Duration,
}

impl QueueSink {
    /// A queue of `capacity` requests and its receiving end (for [`forward`]).
    pub fn new(capacity: usize, telemetry: Arc<Telemetry>) -> (Self, mpsc::Receiver<AppRequest>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (
            Self {
                tx,
                telemetry,
                retry_after: Duration::from_secs(1),
            },
            rx,
        )
    }
}

impl Sink for QueueSink {
    fn offer(&self, request: AppRequest) -> Result<(), Refused> {
        match self.tx.try_send(request) {
            Ok(()) => {
                let queued = self.tx.max_capacity() - self.tx.capacity();
                self.telemetry.receiver.queue_length.set(queued as i64);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(_)) => Err(Refused::Full {
                retry_after: self.retry_after,
            }),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Refused::Closed),
        }
    }
}

/// Metrics from applications: the metrics RPC, counted as the receiver's.
#[derive(Debug)]
pub struct AppMetricsRpc;

impl SignalRpc for AppMetricsRpc {
    type Request = ExportMetricsServiceRequest;
    async fn call(
        channel: Channel,
        compression: Option<CompressionEncoding>,
        request: tonic::Request<Self::Request>,
    ) -> Result<Accepted, tonic::Status> {
        MetricsRpc::call(channel, compression, request).await
    }
    fn count_exported(telemetry: &Telemetry, n: u64) {
        telemetry.receiver.forwarded(signal::METRICS, n);
    }
    fn count_dropped(telemetry: &Telemetry, reason: &'static str, n: u64) {
        telemetry.receiver.dropped(signal::METRICS, reason, n);
    }
}

/// Logs from applications: the logs RPC, counted as the receiver's.
#[derive(Debug)]
pub struct AppLogsRpc;

impl SignalRpc for AppLogsRpc {
    type Request = ExportLogsServiceRequest;
    async fn call(
        channel: Channel,
        compression: Option<CompressionEncoding>,
        request: tonic::Request<Self::Request>,
    ) -> Result<Accepted, tonic::Status> {
        LogsRpc::call(channel, compression, request).await
    }
    fn count_exported(telemetry: &Telemetry, n: u64) {
        telemetry.receiver.forwarded(signal::LOGS, n);
    }
    fn count_dropped(telemetry: &Telemetry, reason: &'static str, n: u64) {
        telemetry.receiver.dropped(signal::LOGS, reason, n);
    }
}

/// Ship one request with `exporter` (retry, failover); the RPC types count what was
/// forwarded or lost in `sightline_agent_receiver_{forwarded,dropped}_total`.
pub async fn ship_one(exporter: &mut Exporter, request: &AppRequest) -> ExportOutcome {
    let items = request.items();
    match request {
        AppRequest::Metrics(r) => exporter.export_rpc::<AppMetricsRpc>(r, items).await,
        AppRequest::Logs(r) => exporter.export_rpc::<AppLogsRpc>(r, items).await,
        AppRequest::Traces(r) => exporter.export_traces(r, items).await,
    }
}

/// Drain the queue in order until it closes (the exporter gives up at the shutdown
/// deadline, counting what it could not send).
pub async fn forward(
    mut exporter: Exporter,
    mut rx: mpsc::Receiver<AppRequest>,
    telemetry: Arc<Telemetry>,
) {
    while let Some(request) = rx.recv().await {
        telemetry.receiver.queue_length.set(rx.len() as i64);
        ship_one(&mut exporter, &request).await;
    }
    telemetry.receiver.queue_length.set(0);
}
