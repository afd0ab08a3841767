//! Receivers: the wire protocols data arrives on. Each decodes its format, resolves
//! the tenant and passes the translated request to [`crate::ingest`].
//!
//! - [`otlp_grpc`]: OTLP/gRPC metrics, logs and traces services (gzip, zstd).
//! - [`otlp_http`]: OTLP/HTTP `/v1/{metrics,logs,traces}` (protobuf or JSON).
//! - [`remote_write`]: Prometheus remote write 1.0 at `/api/v1/write`.
//!
//! Body limits, decompression, OTLP/HTTP decoding and gRPC status normalisation are
//! shared with the agent's receiver and live in `sightline-proto`
//! (`http_body`, `otlp_http`, `grpc_status`).

pub mod otlp_grpc;
pub mod otlp_http;
pub mod otlp_signal;
pub mod remote_write;

use http::{HeaderMap, StatusCode};

use crate::auth::AuthError;
use crate::state::AppState;

/// Header naming the tenant (Cortex / Mimir / Loki / Tempo convention).
pub const ORG_ID_HEADER: &str = "x-scope-orgid";

/// HTTP status for an auth failure.
pub fn auth_status(e: &AuthError) -> StatusCode {
    match e {
        AuthError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        AuthError::WrongTenant(_) => StatusCode::FORBIDDEN,
        AuthError::BadTenant(_) => StatusCode::BAD_REQUEST,
    }
}

/// Resolves the tenant of an HTTP request, counting failures.
pub fn tenant_from_headers(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<String, (StatusCode, AuthError)> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    state
        .auth
        .resolve(
            get(http::header::AUTHORIZATION.as_str()),
            get(ORG_ID_HEADER),
        )
        .map_err(|e| {
            state.metrics.rejected(e.reason(), 1);
            tracing::debug!(reason = e.reason(), "request refused by auth");
            (auth_status(&e), e)
        })
}
