//! The HTTP API listener (default `:9090`): Prometheus read API and remote write,
//! Loki and Tempo read APIs, self-metrics and health endpoints.
//!
//! Every route except `/metrics`, `/-/ready` and `/-/healthy` is tenant-scoped and
//! authenticated (see [`crate::auth`]). [`track_requests`] counts every answer of
//! this listener and of the OTLP/HTTP listener.

pub mod loki;
pub mod params;
pub mod prometheus;
pub mod selector;
pub mod tempo;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use http::{header, StatusCode};

use crate::receiver::remote_write;
use crate::state::AppState;

/// Routes of the HTTP API listener.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/api/v1/write", post(remote_write::write))
        .route(
            "/api/v1/series",
            get(prometheus::series).post(prometheus::series),
        )
        .route(
            "/api/v1/labels",
            get(prometheus::label_names).post(prometheus::label_names),
        )
        .route("/api/v1/label/{name}/values", get(prometheus::label_values))
        .route("/api/v1/metadata", get(prometheus::metadata))
        .route(
            "/api/v1/query",
            get(prometheus::query).post(prometheus::query),
        )
        .route(
            "/api/v1/query_range",
            get(prometheus::query_range).post(prometheus::query_range),
        )
        .route("/api/v1/admin/flush", post(prometheus::admin_flush))
        .route(
            "/api/v1/format_query",
            get(prometheus::format_query).post(prometheus::format_query),
        )
        .route("/api/v1/status/buildinfo", get(prometheus::buildinfo))
        .route(
            "/loki/api/v1/query_range",
            get(loki::query_range).post(loki::query_range),
        )
        .route("/loki/api/v1/query", get(loki::query).post(loki::query))
        .route("/loki/api/v1/labels", get(loki::labels).post(loki::labels))
        .route(
            "/loki/api/v1/label/{name}/values",
            get(loki::label_values).post(loki::label_values),
        )
        .route("/loki/api/v1/series", get(loki::series).post(loki::series))
        .route(
            "/loki/api/v1/index/stats",
            get(loki::index_stats).post(loki::index_stats),
        )
        .route("/loki/api/v1/status/buildinfo", get(loki::buildinfo))
        .route("/api/traces/{id}", get(tempo::trace_by_id))
        .route("/api/v2/traces/{id}", get(tempo::trace_by_id_v2))
        .route("/api/echo", get(tempo::echo))
        .route("/api/search", get(tempo::search::search))
        .route("/api/search/tags", get(tempo::tags::tags_v1))
        .route("/api/v2/search/tags", get(tempo::tags::tags_v2))
        .route(
            "/api/search/tag/{tag}/values",
            get(tempo::tags::tag_values_v1),
        )
        .route(
            "/api/v2/search/tag/{tag}/values",
            get(tempo::tags::tag_values_v2),
        )
        .route("/metrics", get(metrics))
        .route("/-/ready", get(ready))
        .route("/-/healthy", get(healthy))
        .with_state(state)
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let stats = state.store.stats();
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(Some(&stats)),
    )
        .into_response()
}

async fn ready(State(state): State<Arc<AppState>>) -> Response {
    if state.is_ready() {
        (StatusCode::OK, "Sightline collector is Ready.\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "Sightline collector is not ready.\n",
        )
            .into_response()
    }
}

async fn healthy() -> &'static str {
    "Sightline collector is Healthy.\n"
}

/// Label value of `protocol` in the request metrics for an HTTP path.
fn protocol_of(path: &str) -> &'static str {
    if path.starts_with("/v1/") {
        "otlp_http"
    } else if path == "/api/v1/write" {
        "remote_write"
    } else if path.starts_with("/loki/") {
        "loki_api"
    } else if path.starts_with("/api/traces")
        || path.starts_with("/api/v2/traces")
        || path.starts_with("/api/search")
        || path.starts_with("/api/v2/search")
        || path == "/api/echo"
    {
        "tempo_api"
    } else if path.starts_with("/api/") {
        "prometheus_api"
    } else {
        "http"
    }
}

/// Middleware: counts each answer in `sightline_collector_requests_total` and
/// observes `sightline_collector_request_duration_seconds`.
pub async fn track_requests(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let protocol = protocol_of(req.uri().path());
    let resp = next.run(req).await;
    state.metrics.request(
        protocol,
        resp.status().as_str(),
        start.elapsed().as_secs_f64(),
    );
    resp
}
