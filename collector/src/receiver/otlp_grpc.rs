//! OTLP/gRPC receiver: the generated `MetricsService`, `LogsService` and
//! `TraceService` servers backed by one handler.
//!
//! Data flow: tonic decompresses (gzip, zstd) and decodes the request within
//! `limits.max_request_bytes` (checked on the wire and after decompression) → the
//! tenant comes from `authorization` / `x-scope-orgid` metadata → translate →
//! [`crate::ingest::ingest`]. Failures tonic detects before our handler runs are
//! normalised by [`GrpcStatusLayer`]: a malformed protobuf body becomes
//! INVALID_ARGUMENT (tonic says INTERNAL), an oversize one RESOURCE_EXHAUSTED (tonic
//! says OUT_OF_RANGE for the wire size); the layer also counts every answer in
//! `sightline_collector_requests_total{protocol="grpc"}` and such rejections in
//! `sightline_collector_rejected_total`.

use std::sync::Arc;

use sightline_proto::grpc_status::{Answer, StatusLayer, StatusService};
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
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

use super::otlp_signal::OtlpRequest;
use super::ORG_ID_HEADER;
use crate::auth::AuthError;
use crate::ingest::{ingest, IngestError};
use crate::self_metrics::SelfMetrics;
use crate::state::AppState;

/// The handler behind all three services.
#[derive(Clone)]
pub struct OtlpGrpc {
    state: Arc<AppState>,
}

/// The three OTLP services, configured with compression and the size limit.
pub struct OtlpServices {
    pub metrics: MetricsServiceServer<OtlpGrpc>,
    pub logs: LogsServiceServer<OtlpGrpc>,
    pub traces: TraceServiceServer<OtlpGrpc>,
}

/// Builds the services for `state`.
pub fn services(state: Arc<AppState>) -> OtlpServices {
    let limit = state.limits.max_request_bytes;
    let h = OtlpGrpc { state };
    macro_rules! configure {
        ($server:ident) => {
            $server::new(h.clone())
                .accept_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Zstd)
                .send_compressed(CompressionEncoding::Gzip)
                .send_compressed(CompressionEncoding::Zstd)
                .max_decoding_message_size(limit)
        };
    }
    OtlpServices {
        metrics: configure!(MetricsServiceServer),
        logs: configure!(LogsServiceServer),
        traces: configure!(TraceServiceServer),
    }
}

impl OtlpGrpc {
    async fn handle<R: OtlpRequest>(
        &self,
        request: Request<R>,
    ) -> Result<Response<R::Response>, Status> {
        let state = &self.state;
        let md = request.metadata();
        let authorization = md.get("authorization").and_then(|v| v.to_str().ok());
        let org_id = md.get(ORG_ID_HEADER).and_then(|v| v.to_str().ok());
        let tenant = state.auth.resolve(authorization, org_id).map_err(|e| {
            state.metrics.rejected(e.reason(), 1);
            match e {
                AuthError::Unauthenticated(_) => Status::unauthenticated(e.to_string()),
                AuthError::WrongTenant(_) => Status::permission_denied(e.to_string()),
                AuthError::BadTenant(_) => Status::invalid_argument(e.to_string()),
            }
        })?;
        let request = request.into_inner();
        let metadata = request.metadata();
        let translated = request.translate(&state.translate);
        match ingest(state, &tenant, R::SIGNAL, "grpc", translated).await {
            Ok(outcome) => {
                state.record_metadata(&tenant, metadata);
                Ok(Response::new(R::response(&outcome)))
            }
            Err(IngestError::BadRequest(m)) => Err(Status::invalid_argument(m)),
            Err(IngestError::Unavailable(m)) => Err(Status::unavailable(m)),
            Err(IngestError::Internal(m)) => Err(Status::internal(m)),
        }
    }
}

#[tonic::async_trait]
impl MetricsService for OtlpGrpc {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        self.handle(request).await
    }
}

#[tonic::async_trait]
impl LogsService for OtlpGrpc {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        self.handle(request).await
    }
}

#[tonic::async_trait]
impl TraceService for OtlpGrpc {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.handle(request).await
    }
}

/// Tower layer around the gRPC server: `sightline_proto::grpc_status::StatusLayer`
/// reporting into the collector's counters; see the module docs.
#[derive(Clone)]
pub struct GrpcStatusLayer {
    pub metrics: Arc<SelfMetrics>,
}

impl<S> tower::Layer<S> for GrpcStatusLayer {
    type Service = StatusService<S>;
    fn layer(&self, inner: S) -> StatusService<S> {
        let metrics = self.metrics.clone();
        StatusLayer::new(Arc::new(move |a: &Answer<'_>| observe(&metrics, a))).layer(inner)
    }
}

fn observe(metrics: &SelfMetrics, a: &Answer<'_>) {
    if let Some(reason) = a.reason {
        metrics.rejected(reason, 1);
        tracing::debug!(
            message = a.message,
            reason,
            "gRPC request rejected before decoding finished"
        );
    }
    metrics.request("grpc", &format!("{:?}", a.code), a.seconds);
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use sightline_proto::grpc_status::normalise;
    use tonic::Code;

    #[test]
    fn rejections_before_the_handler_are_counted() {
        let m = SelfMetrics::new();
        let mut h = http::HeaderMap::new();
        h.insert("grpc-status", HeaderValue::from(13));
        h.insert(
            "grpc-message",
            HeaderValue::from_static("failed%20to%20decode%20Protobuf%20message:%20x"),
        );
        let (code, reason, message) = normalise(&mut h);
        observe(
            &m,
            &Answer {
                path: "/x",
                code,
                reason,
                message: &message,
                seconds: 0.0,
            },
        );
        assert_eq!(code, Code::InvalidArgument);
        assert_eq!(m.rejected_count("malformed"), 1);
    }
}
