//! OTLP/HTTP receiver: `POST /v1/metrics`, `/v1/logs`, `/v1/traces`.
//!
//! Data flow per request: content type (`application/x-protobuf` or
//! `application/json`) → tenant (auth) → `Content-Encoding` (gzip, zstd, identity) →
//! body read within `limits.max_request_bytes`, decompressed within the same limit →
//! protobuf / OTLP-JSON decode → translate → [`crate::ingest::ingest`]. Answers are
//! in the request's content type: the export response (with `partial_success` when
//! items were dropped) or a `google.rpc.Status` with a specific message, as the OTLP
//! specification asks. Retryable storage conditions answer 503 so senders retry.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use http::{HeaderMap, StatusCode};
use sightline_proto::otlp::collector::logs::v1::ExportLogsServiceRequest;
use sightline_proto::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use sightline_proto::otlp::collector::trace::v1::ExportTraceServiceRequest;
use sightline_proto::otlp_http::{error_response, ok_response, read_request, rejection, Format};

use super::otlp_signal::OtlpRequest;
use super::tenant_from_headers;
use crate::ingest::{ingest, IngestError};
use crate::state::AppState;

/// Routes of the OTLP/HTTP listener.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/metrics", post(export::<ExportMetricsServiceRequest>))
        .route("/v1/logs", post(export::<ExportLogsServiceRequest>))
        .route("/v1/traces", post(export::<ExportTraceServiceRequest>))
        .with_state(state)
}

fn error(format: Format, status: StatusCode, code: tonic::Code, message: String) -> Response {
    error_response(format, status, code, message, 1).into_response()
}

async fn export<R: OtlpRequest>(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let metrics = &state.metrics;
    let format = match Format::from_headers(&headers) {
        Ok(f) => f,
        Err(e) => {
            metrics.rejected(e.reason(), 1);
            return rejection(Format::Json, &e).into_response();
        }
    };
    let tenant = match tenant_from_headers(&state, &headers) {
        Ok(t) => t,
        Err((status, e)) => {
            let code = match status {
                StatusCode::UNAUTHORIZED => tonic::Code::Unauthenticated,
                StatusCode::FORBIDDEN => tonic::Code::PermissionDenied,
                _ => tonic::Code::InvalidArgument,
            };
            return error(format, status, code, e.to_string());
        }
    };
    let request = match read_request::<R, _>(format, &headers, body, state.limits.max_request_bytes)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            metrics.rejected(e.reason(), 1);
            tracing::debug!(%tenant, signal = R::SIGNAL.as_str(), error = %e, "OTLP/HTTP request rejected");
            return rejection(format, &e).into_response();
        }
    };
    let metadata = request.metadata();
    let translated = request.translate(&state.translate);
    match ingest(&state, &tenant, R::SIGNAL, "otlp_http", translated).await {
        Ok(outcome) => {
            state.record_metadata(&tenant, metadata);
            ok_response(format, &R::response(&outcome)).into_response()
        }
        Err(IngestError::BadRequest(m)) => error(
            format,
            StatusCode::BAD_REQUEST,
            tonic::Code::InvalidArgument,
            m,
        ),
        Err(IngestError::Unavailable(m)) => error(
            format,
            StatusCode::SERVICE_UNAVAILABLE,
            tonic::Code::Unavailable,
            m,
        ),
        Err(IngestError::Internal(m)) => error(
            format,
            StatusCode::INTERNAL_SERVER_ERROR,
            tonic::Code::Internal,
            m,
        ),
    }
}
