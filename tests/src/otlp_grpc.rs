//! OTLP/gRPC clients: the generated tonic clients for well-formed requests, and a
//! raw-bytes unary call for malformed ones. Each call runs on a small private tokio
//! runtime, so tests stay synchronous.

use sightline_proto::otlp::collector::logs::v1::{
    logs_service_client::LogsServiceClient, ExportLogsServiceRequest,
};
use sightline_proto::otlp::collector::metrics::v1::{
    metrics_service_client::MetricsServiceClient, ExportMetricsServiceRequest,
};
use sightline_proto::otlp::collector::trace::v1::{
    trace_service_client::TraceServiceClient, ExportTraceServiceRequest,
};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Request, Status};

/// gRPC method paths of the OTLP services.
pub const METRICS_EXPORT: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
pub const LOGS_EXPORT: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
pub const TRACES_EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

async fn channel(endpoint: &str) -> Result<Channel, Status> {
    Channel::from_shared(endpoint.to_string())
        .map_err(|e| Status::invalid_argument(e.to_string()))?
        .connect()
        .await
        .map_err(|e| Status::unavailable(format!("connect {endpoint}: {e}")))
}

fn with_metadata<T>(msg: T, metadata: &[(&'static str, &str)]) -> Request<T> {
    let mut req = Request::new(msg);
    for (k, v) in metadata {
        req.metadata_mut()
            .insert(*k, v.parse().expect("ascii metadata value"));
    }
    req
}

/// Sends an OTLP metrics export; `metadata` e.g. `[("authorization", "Bearer x")]`.
pub fn export_metrics(
    endpoint: &str,
    req: ExportMetricsServiceRequest,
    metadata: &[(&'static str, &str)],
) -> Result<(), Status> {
    runtime().block_on(async {
        let mut client = MetricsServiceClient::new(channel(endpoint).await?);
        let resp = client
            .export(with_metadata(req, metadata))
            .await?
            .into_inner();
        match resp.partial_success {
            Some(p) if p.rejected_data_points > 0 => Err(Status::invalid_argument(format!(
                "partial success: {} rejected: {}",
                p.rejected_data_points, p.error_message
            ))),
            _ => Ok(()),
        }
    })
}

/// Sends an OTLP logs export.
pub fn export_logs(
    endpoint: &str,
    req: ExportLogsServiceRequest,
    metadata: &[(&'static str, &str)],
) -> Result<(), Status> {
    runtime().block_on(async {
        let mut client = LogsServiceClient::new(channel(endpoint).await?);
        client
            .export(with_metadata(req, metadata))
            .await
            .map(|_| ())
    })
}

/// Sends an OTLP traces export.
pub fn export_traces(
    endpoint: &str,
    req: ExportTraceServiceRequest,
    metadata: &[(&'static str, &str)],
) -> Result<(), Status> {
    runtime().block_on(async {
        let mut client = TraceServiceClient::new(channel(endpoint).await?);
        client
            .export(with_metadata(req, metadata))
            .await
            .map(|_| ())
    })
}

/// A unary call to `path` whose request message is `body` verbatim (e.g. bytes that
/// are not valid protobuf). Returns the raw response message bytes.
pub fn raw_unary(
    endpoint: &str,
    path: &'static str,
    body: Vec<u8>,
    metadata: &[(&'static str, &str)],
) -> Result<Vec<u8>, Status> {
    runtime().block_on(async {
        let mut grpc = tonic::client::Grpc::new(channel(endpoint).await?);
        grpc.ready()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let resp = grpc
            .unary(
                with_metadata(body, metadata),
                PathAndQuery::from_static(path),
                RawCodec,
            )
            .await?;
        Ok(resp.into_inner())
    })
}

/// A codec passing message bytes through untouched.
#[derive(Clone, Copy, Debug, Default)]
struct RawCodec;

struct RawEncoder;
struct RawDecoder;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}

impl Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        use bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        use bytes::Buf;
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}
