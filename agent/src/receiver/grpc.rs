//! OTLP/gRPC listener for applications: the generated `MetricsService`, `LogsService`
//! and `TraceService` servers backed by one handler.
//!
//! tonic decompresses (gzip, zstd) and decodes each request within
//! `receiver.max_request_bytes`; what it refuses before the handler runs is rewritten
//! and counted by `sightline_proto::grpc_status::StatusLayer` (malformed →
//! INVALID_ARGUMENT, too large → RESOURCE_EXHAUSTED). The handler passes the request
//! with the connection's addresses to [`Receiver::accept`]; a full queue answers
//! RESOURCE_EXHAUSTED with a `google.rpc.RetryInfo`, which OTLP exporters retry.

use std::sync::Arc;
use std::time::Duration;

use sightline_proto::grpc_status::{Answer, StatusLayer};
use sightline_proto::otlp::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use sightline_proto::otlp::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use sightline_proto::otlp::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use sightline_proto::otlp::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use sightline_proto::otlp::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use sightline_proto::otlp::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

use super::forward::Refused;
use super::signal::{self, AppSignal};
use super::{Receiver, PROTOCOL_GRPC};
use crate::telemetry::Telemetry;

/// The handler behind the three services.
#[derive(Clone)]
pub struct GrpcHandler {
    receiver: Arc<Receiver>,
}

impl GrpcHandler {
    async fn handle<R: AppSignal>(
        &self,
        request: Request<R>,
    ) -> Result<Response<R::Response>, Status> {
        let peer = request.remote_addr();
        let ours = request.local_addr();
        let r = request.into_inner();
        match self.receiver.accept(r, peer, ours, PROTOCOL_GRPC).await {
            Ok(()) => Ok(Response::new(R::Response::default())),
            Err(Refused::Full { retry_after }) => Err(resource_exhausted(retry_after)),
            Err(Refused::Closed) => Err(Status::unavailable("the agent is shutting down; retry")),
        }
    }
}

#[tonic::async_trait]
impl MetricsService for GrpcHandler {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        self.handle(request).await
    }
}

#[tonic::async_trait]
impl LogsService for GrpcHandler {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        self.handle(request).await
    }
}

#[tonic::async_trait]
impl TraceService for GrpcHandler {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.handle(request).await
    }
}

// google.rpc.Status / google.protobuf.Any / google.rpc.RetryInfo / google.protobuf.Duration,
// for the `grpc-status-details-bin` of a RESOURCE_EXHAUSTED answer.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<Any>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Any {
    #[prost(string, tag = "1")]
    type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    retry_delay: Option<ProtoDuration>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ProtoDuration {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

/// RESOURCE_EXHAUSTED with a `RetryInfo` (the OTLP signal for "retry later").
pub fn resource_exhausted(retry_after: Duration) -> Status {
    use prost::Message;
    let message = "agent forwarding queue is full; retry later".to_string();
    let info = RetryInfo {
        retry_delay: Some(ProtoDuration {
            seconds: i64::try_from(retry_after.as_secs()).unwrap_or(i64::MAX),
            nanos: i32::try_from(retry_after.subsec_nanos()).unwrap_or(0),
        }),
    };
    let status = RpcStatus {
        code: tonic::Code::ResourceExhausted as i32,
        message: message.clone(),
        details: vec![Any {
            type_url: "type.googleapis.com/google.rpc.RetryInfo".into(),
            value: info.encode_to_vec(),
        }],
    };
    Status::with_details(
        tonic::Code::ResourceExhausted,
        message,
        status.encode_to_vec().into(),
    )
}

/// The signal of a gRPC path, for counting rejections tonic made.
fn signal_of(path: &str) -> &'static str {
    if path.contains(".metrics.") {
        signal::METRICS
    } else if path.contains(".logs.") {
        signal::LOGS
    } else if path.contains(".trace.") {
        signal::TRACES
    } else {
        "unknown"
    }
}

fn observe(telemetry: &Telemetry, a: &Answer<'_>) {
    if let Some(reason) = a.reason {
        telemetry.receiver.rejected(signal_of(a.path), reason);
        tracing::debug!(
            path = a.path,
            message = a.message,
            reason,
            "OTLP/gRPC request from an application rejected"
        );
    }
}

/// Serve the three services on `listener` until `shutdown` completes.
pub fn serve(
    receiver: Arc<Receiver>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    let limit = receiver.max_request_bytes;
    let telemetry = receiver.telemetry.clone();
    let h = GrpcHandler { receiver };
    macro_rules! configure {
        ($server:ident) => {
            $server::new(h.clone())
                .accept_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Zstd)
                .max_decoding_message_size(limit)
        };
    }
    let layer = StatusLayer::new(Arc::new(move |a: &Answer<'_>| observe(&telemetry, a)));
    let router = tonic::transport::Server::builder()
        .layer(layer)
        .add_service(configure!(MetricsServiceServer))
        .add_service(configure!(LogsServiceServer))
        .add_service(configure!(TraceServiceServer));
    tokio::spawn(async move {
        if let Err(e) = router
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
            .await
        {
            tracing::error!(error = %e, "OTLP/gRPC receiver stopped");
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_info_is_what_the_exporter_reads() {
        let status = resource_exhausted(Duration::from_secs(2));
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        match crate::export::retry::classify(&status) {
            crate::export::retry::Disposition::Retryable { server_delay } => {
                assert_eq!(server_delay, Some(Duration::from_secs(2)))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            signal_of("/opentelemetry.proto.collector.trace.v1.TraceService/Export"),
            "traces"
        );
    }
}
