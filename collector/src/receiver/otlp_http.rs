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
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, StatusCode};
use sightline_proto::otlp::collector::logs::v1::ExportLogsServiceRequest;
use sightline_proto::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use sightline_proto::otlp::collector::trace::v1::ExportTraceServiceRequest;

use super::body::{decompress, read_limited, Encoding};
use super::otlp_signal::OtlpRequest;
use super::tenant_from_headers;
use crate::ingest::{ingest, IngestError};
use crate::state::AppState;

const PROTOBUF: &str = "application/x-protobuf";
const JSON: &str = "application/json";

/// Routes of the OTLP/HTTP listener.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/metrics", post(export::<ExportMetricsServiceRequest>))
        .route("/v1/logs", post(export::<ExportLogsServiceRequest>))
        .route("/v1/traces", post(export::<ExportTraceServiceRequest>))
        .with_state(state)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Protobuf,
    Json,
}

/// `google.rpc.Status`, the OTLP/HTTP error body.
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

fn encode<M: prost::Message + serde::Serialize>(format: Format, msg: &M) -> (HeaderValue, Vec<u8>) {
    match format {
        Format::Protobuf => (HeaderValue::from_static(PROTOBUF), msg.encode_to_vec()),
        // serializing generated messages into a Vec cannot fail
        Format::Json => (
            HeaderValue::from_static(JSON),
            serde_json::to_vec(msg).unwrap_or_default(),
        ),
    }
}

/// An error answer: HTTP status + `google.rpc.Status` body in the request's format.
fn error(format: Format, status: StatusCode, code: tonic::Code, message: String) -> Response {
    let (ct, body) = encode(
        format,
        &RpcStatus {
            code: code as i32,
            message,
        },
    );
    let mut resp = (status, [(header::CONTENT_TYPE, ct)], body).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    resp
}

fn content_format(headers: &HeaderMap) -> Result<Format, String> {
    let raw = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("<non-ascii>"))
        .unwrap_or("");
    let essence = raw
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        PROTOBUF => Ok(Format::Protobuf),
        JSON => Ok(Format::Json),
        "" => Err(format!("missing Content-Type: use {PROTOBUF} or {JSON}")),
        _ => Err(format!(
            "unsupported Content-Type {raw:?}: use {PROTOBUF} or {JSON}"
        )),
    }
}

async fn export<R: OtlpRequest>(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let metrics = &state.metrics;
    let format = match content_format(&headers) {
        Ok(f) => f,
        Err(msg) => {
            metrics.rejected("unsupported_content_type", 1);
            return error(
                Format::Json,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                tonic::Code::InvalidArgument,
                msg,
            );
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
    let bytes = match read_and_decompress(&state, &headers, body).await {
        Ok(b) => b,
        Err((status, msg)) => {
            let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
                tonic::Code::ResourceExhausted
            } else {
                tonic::Code::InvalidArgument
            };
            return error(format, status, code, msg);
        }
    };
    let decoded = match format {
        Format::Protobuf => {
            R::decode(bytes).map_err(|e| format!("invalid OTLP protobuf body: {e}"))
        }
        Format::Json => {
            serde_json::from_slice::<R>(&bytes).map_err(|e| format!("invalid OTLP JSON body: {e}"))
        }
    };
    let request = match decoded {
        Ok(r) => r,
        Err(msg) => {
            metrics.rejected("malformed", 1);
            tracing::debug!(%tenant, signal = R::SIGNAL.as_str(), %msg, "malformed OTLP/HTTP request");
            return error(
                format,
                StatusCode::BAD_REQUEST,
                tonic::Code::InvalidArgument,
                msg,
            );
        }
    };
    let metadata = request.metadata();
    let translated = request.translate(&state.translate);
    match ingest(&state, &tenant, R::SIGNAL, "otlp_http", translated).await {
        Ok(outcome) => {
            state.record_metadata(&tenant, metadata);
            let (ct, body) = encode(format, &R::response(&outcome));
            (StatusCode::OK, [(header::CONTENT_TYPE, ct)], body).into_response()
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

/// Reads the body within the limit and undoes gzip/zstd; errors are counted and
/// mapped to an HTTP status.
pub(crate) async fn read_and_decompress(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Bytes, (StatusCode, String)> {
    let limit = state.limits.max_request_bytes;
    let result = async {
        let enc = Encoding::from_headers(
            headers,
            &[Encoding::Identity, Encoding::Gzip, Encoding::Zstd],
        )?;
        let raw = read_limited(body, limit).await?;
        decompress(enc, raw, limit)
    }
    .await;
    result.map_err(|e| {
        state.metrics.rejected(e.reason(), 1);
        let status = match e {
            super::body::BodyError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            super::body::BodyError::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            super::body::BodyError::Malformed(_) => StatusCode::BAD_REQUEST,
        };
        (status, e.to_string())
    })
}
