//! The two ends of the buffer that run as tasks: the metrics spooler (export queue ─►
//! buffer) and the shipper (buffer ─► [`Exporter`] ─► ack).
//!
//! The shipper sends one frame at a time, in order, and retries a retryable failure
//! until the collector acknowledges it (the exporter's `max_elapsed` only restarts its
//! backoff) or the shutdown deadline passes; then it stops without acking, so the frame
//! is sent again after the restart. A permanent refusal drops the frame (counted by the
//! exporter and as `buffer_records_dropped_total{reason="permanent_error"}`).

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::SystemTime;

use prost::Message;
use sightline_proto::otlp::collector::logs::v1::ExportLogsServiceRequest;
use sightline_proto::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use tokio::sync::watch;
use tonic::codec::CompressionEncoding;
use tonic::transport::Channel;

use super::{Buffer, Pushed, Record, Signal};
use crate::export::queue::BatchQueue;
use crate::export::{Accepted, ExportOutcome, Exporter, LogsRpc, MetricsRpc, SignalRpc};
use crate::telemetry::{reason, Telemetry};

/// Signal `S`'s RPC for buffered requests: a give-up after `max_elapsed` is not a loss
/// (the frame stays in the buffer and is tried again), so it is not counted as dropped.
#[derive(Debug)]
pub struct Buffered<S>(PhantomData<S>);

impl<S: SignalRpc> SignalRpc for Buffered<S> {
    type Request = S::Request;
    const GIVE_UP_KEEPS_DATA: bool = true;
    async fn call(
        channel: Channel,
        compression: Option<CompressionEncoding>,
        request: tonic::Request<Self::Request>,
    ) -> Result<Accepted, tonic::Status> {
        S::call(channel, compression, request).await
    }
    fn count_exported(telemetry: &Telemetry, n: u64) {
        S::count_exported(telemetry, n);
    }
    fn count_dropped(telemetry: &Telemetry, why: &'static str, n: u64) {
        if why != reason::RETRIES_EXHAUSTED {
            S::count_dropped(telemetry, why, n);
        }
    }
}

/// Send until acknowledged: `Some(true)` sent, `Some(false)` refused for good, `None`
/// stopped by the shutdown deadline.
async fn deliver<S: SignalRpc>(
    exporter: &mut Exporter,
    request: &S::Request,
    items: usize,
    deadline: &watch::Receiver<Option<SystemTime>>,
) -> Option<bool> {
    loop {
        match exporter.export_rpc::<S>(request, items).await {
            ExportOutcome::Sent { .. } => return Some(true),
            ExportOutcome::Permanent { .. } => return Some(false),
            ExportOutcome::GaveUp { .. } => {
                if deadline.borrow().is_some() {
                    return None;
                }
            }
        }
    }
}

async fn send(
    exporter: &mut Exporter,
    record: &Record,
    deadline: &watch::Receiver<Option<SystemTime>>,
) -> Option<bool> {
    let items = usize::try_from(record.items).unwrap_or(usize::MAX);
    match record.signal {
        Signal::Metrics => match ExportMetricsServiceRequest::decode(record.payload.as_slice()) {
            Ok(req) => deliver::<Buffered<MetricsRpc>>(exporter, &req, items, deadline).await,
            Err(e) => undecodable(record, &e),
        },
        Signal::Logs => match ExportLogsServiceRequest::decode(record.payload.as_slice()) {
            Ok(req) => deliver::<Buffered<LogsRpc>>(exporter, &req, items, deadline).await,
            Err(e) => undecodable(record, &e),
        },
        Signal::Traces => {
            tracing::warn!("buffered traces are not shipped by this agent version; dropped");
            Some(false)
        }
    }
}

fn undecodable(record: &Record, e: &prost::DecodeError) -> Option<bool> {
    // The CRC matched, so another version wrote it (or this is a bug): drop, counted.
    tracing::warn!(signal = record.signal.as_str(), error = %e, "buffered request does not decode; dropped");
    Some(false)
}

/// Ship buffered frames until the buffer is closed and drained or the deadline passes.
pub async fn ship(
    buffer: Arc<Buffer>,
    mut exporter: Exporter,
    deadline: watch::Receiver<Option<SystemTime>>,
) {
    while let Some(record) = buffer.next().await {
        match send(&mut exporter, &record, &deadline).await {
            Some(shipped) => buffer.ack(&record, shipped),
            None => {
                tracing::info!("buffer shipping stopped at the shutdown deadline; the rest is sent after the restart");
                break;
            }
        }
    }
    buffer.persist_cursor();
}

/// Move metric batches from the in-memory export queue into the buffer. Under
/// backpressure this waits, the queue fills and drops its oldest batch (counted as
/// `dropped_points_total{reason="queue_full"}`): memory holds only the newest batches.
pub async fn spool_metrics(queue: Arc<BatchQueue>, buffer: Arc<Buffer>, telemetry: Arc<Telemetry>) {
    while let Some(batch) = queue.pop().await {
        telemetry.queue_length.set(queue.len() as i64);
        let payload = batch.request.encode_to_vec();
        match buffer
            .push(Signal::Metrics, batch.points as u64, payload)
            .await
        {
            Pushed::Stored | Pushed::TooLarge => {}
            Pushed::Closed => telemetry.dropped(reason::SHUTDOWN, batch.points as u64),
        }
    }
}
