//! Prometheus remote write 1.0: `POST /api/v1/write`.
//!
//! Data flow: `Content-Encoding: snappy` (block format) and an optional
//! `Content-Type: application/x-protobuf` are checked, the body is read within
//! `limits.max_request_bytes` and decompressed within the same limit, decoded as
//! `prometheus.WriteRequest`, translated and ingested. Success is `204 No Content`.
//! As in Prometheus, valid samples of a request are kept even when others are
//! rejected, and the rejection is reported as `400` with a plain-text message (the
//! sender must not retry a 4xx); retryable storage conditions answer `503`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{header, HeaderMap, HeaderValue, StatusCode};
use prost::Message;
use sightline_proto::prometheus::WriteRequest;

use super::tenant_from_headers;
use crate::ingest::{ingest, IngestError, Signal};
use crate::state::AppState;
use crate::translate;
use sightline_proto::http_body::{read_body, Encoding};
use sightline_proto::Error as BodyError;

fn text(status: StatusCode, msg: impl Into<String>) -> Response {
    let mut msg = msg.into();
    msg.push('\n');
    let mut resp = (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        msg,
    )
        .into_response();
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

/// Handler for `POST /api/v1/write`.
pub async fn write(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let metrics = &state.metrics;
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let raw = ct.to_str().unwrap_or("<non-ascii>");
        let essence = raw
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let proto = raw
            .split(';')
            .skip(1)
            .filter_map(|p| p.trim().strip_prefix("proto="))
            .next();
        if essence != "application/x-protobuf"
            || proto.is_some_and(|p| p != "prometheus.WriteRequest")
        {
            metrics.rejected("unsupported_content_type", 1);
            return text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "unsupported Content-Type {raw:?}: remote write 1.0 expects application/x-protobuf (prometheus.WriteRequest)"
                ),
            );
        }
    }
    let tenant = match tenant_from_headers(&state, &headers) {
        Ok(t) => t,
        Err((status, e)) => return text(status, e.to_string()),
    };
    let limit = state.limits.max_request_bytes;
    let bytes = async {
        if headers.get(header::CONTENT_ENCODING).is_none() {
            return Err(BodyError::UnsupportedEncoding(
                "missing Content-Encoding: remote write bodies must be snappy-compressed (Content-Encoding: snappy)".into(),
            ));
        }
        read_body(&headers, body, &[Encoding::Snappy], limit).await
    }
    .await;
    let bytes = match bytes {
        Ok(b) => b,
        Err(e) => {
            metrics.rejected(e.reason(), 1);
            return text(e.http_status(), e.to_string());
        }
    };
    let req = match WriteRequest::decode(bytes) {
        Ok(r) => r,
        Err(e) => {
            metrics.rejected("malformed", 1);
            return text(
                StatusCode::BAD_REQUEST,
                format!("invalid remote write protobuf body: {e}"),
            );
        }
    };
    let metadata = crate::metadata::from_remote_write(&req);
    let translated = translate::remote_write(req, &state.translate);
    let result = ingest(&state, &tenant, Signal::Metrics, "remote_write", translated).await;
    if result.is_ok() {
        state.record_metadata(&tenant, metadata);
    }
    match result {
        Ok(o) if o.rejected == 0 => StatusCode::NO_CONTENT.into_response(),
        Ok(o) => text(
            StatusCode::BAD_REQUEST,
            format!(
                "{} samples stored, {} rejected: {}",
                o.accepted, o.rejected, o.message
            ),
        ),
        Err(IngestError::BadRequest(m)) => text(StatusCode::BAD_REQUEST, m),
        Err(IngestError::Unavailable(m)) => text(StatusCode::SERVICE_UNAVAILABLE, m),
        Err(IngestError::Internal(m)) => text(StatusCode::INTERNAL_SERVER_ERROR, m),
    }
}
