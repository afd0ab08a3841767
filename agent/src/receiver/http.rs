//! OTLP/HTTP listener for applications: `POST /v1/metrics`, `/v1/logs`, `/v1/traces`,
//! protobuf or JSON, gzip / zstd / identity.
//!
//! Decoding is the collector's, shared through `sightline_proto::otlp_http`: content
//! type → body within `receiver.max_request_bytes` (on the wire and decompressed) →
//! protobuf / OTLP-JSON. Refusals answer a `google.rpc.Status` in the request's format
//! with 400 / 413 / 415 and are counted in `sightline_agent_receiver_rejected_total`;
//! a full queue answers 429 with `Retry-After`, shutdown 503.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use sightline_proto::otlp::collector::logs::v1::ExportLogsServiceRequest;
use sightline_proto::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use sightline_proto::otlp::collector::trace::v1::ExportTraceServiceRequest;
use sightline_proto::otlp_http::{error_response, ok_response, read_request, rejection, Format};

use super::forward::Refused;
use super::signal::AppSignal;
use super::{Receiver, PROTOCOL_HTTP};

#[derive(Clone)]
struct HttpState {
    receiver: Arc<Receiver>,
    /// The listener's address (the destination of every connection).
    local: SocketAddr,
}

fn router(state: HttpState) -> Router {
    Router::new()
        .route("/v1/metrics", post(export::<ExportMetricsServiceRequest>))
        .route("/v1/logs", post(export::<ExportLogsServiceRequest>))
        .route("/v1/traces", post(export::<ExportTraceServiceRequest>))
        .with_state(state)
}

async fn export<R: AppSignal>(
    State(state): State<HttpState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let receiver = &state.receiver;
    let format = match Format::from_headers(&headers) {
        Ok(f) => f,
        Err(e) => {
            receiver.reject(R::SIGNAL, &e);
            return rejection(Format::Json, &e).into_response();
        }
    };
    let request =
        match read_request::<R, _>(format, &headers, body, receiver.max_request_bytes).await {
            Ok(r) => r,
            Err(e) => {
                receiver.reject(R::SIGNAL, &e);
                return rejection(format, &e).into_response();
            }
        };
    match receiver
        .accept(request, Some(peer), Some(state.local), PROTOCOL_HTTP)
        .await
    {
        Ok(()) => ok_response(format, &R::Response::default()).into_response(),
        Err(Refused::Full { retry_after }) => error_response(
            format,
            StatusCode::TOO_MANY_REQUESTS,
            tonic::Code::ResourceExhausted,
            "agent forwarding queue is full; retry later".into(),
            u32::try_from(retry_after.as_secs().max(1)).unwrap_or(u32::MAX),
        )
        .into_response(),
        Err(Refused::Closed) => error_response(
            format,
            StatusCode::SERVICE_UNAVAILABLE,
            tonic::Code::Unavailable,
            "the agent is shutting down; retry".into(),
            1,
        )
        .into_response(),
    }
}

/// Serve `/v1/*` on `listener` until `shutdown` completes.
pub fn serve(
    receiver: Arc<Receiver>,
    listener: tokio::net::TcpListener,
    local: SocketAddr,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    let app = router(HttpState { receiver, local });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
        {
            tracing::error!(error = %e, "OTLP/HTTP receiver stopped");
        }
    })
}
