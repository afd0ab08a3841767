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

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http::HeaderValue;
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
use tonic::{Code, Request, Response, Status};

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

/// Tower layer around the gRPC server; see the module docs.
#[derive(Clone)]
pub struct GrpcStatusLayer {
    pub metrics: Arc<SelfMetrics>,
}

impl<S> tower::Layer<S> for GrpcStatusLayer {
    type Service = GrpcStatus<S>;
    fn layer(&self, inner: S) -> GrpcStatus<S> {
        GrpcStatus {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Clone)]
pub struct GrpcStatus<S> {
    inner: S,
    metrics: Arc<SelfMetrics>,
}

impl<S, ReqB, ResB> tower::Service<http::Request<ReqB>> for GrpcStatus<S>
where
    S: tower::Service<http::Request<ReqB>, Response = http::Response<ResB>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<ResB>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqB>) -> Self::Future {
        let start = Instant::now();
        let metrics = self.metrics.clone();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let mut resp = fut.await?;
            let code = normalise_status(&metrics, resp.headers_mut());
            metrics.request("grpc", &format!("{code:?}"), start.elapsed().as_secs_f64());
            Ok(resp)
        })
    }
}

/// Reads (and where needed rewrites) the trailers-only `grpc-status` of a response;
/// a response without one carries its status in the trailers, which only a
/// successful handler produces here.
fn normalise_status(metrics: &SelfMetrics, headers: &mut http::HeaderMap) -> Code {
    let Some(code) = headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse::<i32>().ok())
        .map(Code::from)
    else {
        return Code::Ok;
    };
    let message = headers
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .map(percent_decode)
        .unwrap_or_default();
    let (new_code, reason) = match code {
        Code::OutOfRange if message.contains("message length too large") => {
            (Code::ResourceExhausted, Some("too_large"))
        }
        Code::ResourceExhausted if message.starts_with("Error decompressing") => {
            (code, Some("too_large"))
        }
        Code::Internal
            if message.starts_with("failed to decode Protobuf message")
                || message.starts_with("Error decompressing")
                || message.starts_with("protocol error") =>
        {
            (Code::InvalidArgument, Some("malformed"))
        }
        Code::Unimplemented if message.starts_with("Content is compressed with") => {
            (code, Some("unsupported_encoding"))
        }
        _ => (code, None),
    };
    if let Some(reason) = reason {
        metrics.rejected(reason, 1);
        tracing::debug!(%message, reason, "gRPC request rejected before decoding finished");
    }
    if new_code != code {
        headers.insert("grpc-status", HeaderValue::from(new_code as i32));
    }
    new_code
}

/// Undoes the percent-encoding of `grpc-message`.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() && s.is_char_boundary(i + 3) {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("failed%20to%20decode"), "failed to decode");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("a%2"), "a%2");
    }

    #[test]
    fn tonic_decode_errors_become_invalid_argument() {
        let m = SelfMetrics::new();
        let mut h = http::HeaderMap::new();
        h.insert("grpc-status", HeaderValue::from(13));
        h.insert(
            "grpc-message",
            HeaderValue::from_static("failed%20to%20decode%20Protobuf%20message:%20x"),
        );
        assert_eq!(normalise_status(&m, &mut h), Code::InvalidArgument);
        assert_eq!(h.get("grpc-status").unwrap(), "3");
        assert_eq!(m.rejected_count("malformed"), 1);
        let mut h = http::HeaderMap::new();
        h.insert("grpc-status", HeaderValue::from(13));
        h.insert("grpc-message", HeaderValue::from_static("storage%20error"));
        assert_eq!(normalise_status(&m, &mut h), Code::Internal);
        assert_eq!(normalise_status(&m, &mut http::HeaderMap::new()), Code::Ok);
    }
}
