//! The agent's HTTP endpoint: `GET /metrics` (OpenMetrics text of [`Telemetry`]) and
//! `GET /-/ready` (200 once the agent is collecting and shipping, 503 before and during
//! shutdown). Binding to port 0 is supported; the bound address is returned and, with
//! `--listen-file`, written atomically as `{"http":"127.0.0.1:PORT"}` once serving.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::telemetry::Telemetry;
use crate::{Error, Result};

#[derive(Clone)]
struct AppState {
    telemetry: Arc<Telemetry>,
    ready: Arc<AtomicBool>,
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.telemetry.encode(),
    )
}

async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    if state.ready.load(Ordering::Acquire) {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

/// Bind `addr` and serve until `shutdown` completes. Returns the bound address and the
/// server task. `extra` adds routes of other components (e.g. `/inventory`).
pub async fn serve(
    addr: &str,
    telemetry: Arc<Telemetry>,
    ready_flag: Arc<AtomicBool>,
    extra: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Http {
            addr: addr.to_string(),
            source,
        })?;
    let local = listener.local_addr().map_err(|source| Error::Http {
        addr: addr.to_string(),
        source,
    })?;
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/-/ready", get(ready))
        .with_state(AppState {
            telemetry,
            ready: ready_flag,
        })
        .merge(extra);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "http server stopped");
        }
    });
    Ok((local, task))
}

/// Write `{"http":"ADDR"}` to `path` atomically (temporary file + rename).
pub fn write_listen_file(path: &Path, http: SocketAddr) -> Result<()> {
    write_listen_file_with(path, http, &[])
}

/// [`write_listen_file`] plus more `name: address` entries (e.g. `otlp_grpc`).
pub fn write_listen_file_with(
    path: &Path,
    http: SocketAddr,
    more: &[(&str, SocketAddr)],
) -> Result<()> {
    let mut map = serde_json::Map::new();
    map.insert("http".into(), http.to_string().into());
    for (name, addr) in more {
        map.insert((*name).to_string(), addr.to_string().into());
    }
    let body = serde_json::Value::Object(map).to_string();
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, body).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn serves_metrics_and_readiness_on_port_zero() {
        let telemetry = Arc::new(Telemetry::new());
        telemetry.collections.inc();
        let ready_flag = Arc::new(AtomicBool::new(false));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (addr, task) = serve(
            "127.0.0.1:0",
            telemetry,
            ready_flag.clone(),
            Router::new(),
            async {
                let _ = stop_rx.await;
            },
        )
        .await
        .unwrap();
        assert_ne!(addr.port(), 0);
        assert!(get(addr, "/-/ready").await.starts_with("HTTP/1.1 503"));
        ready_flag.store(true, Ordering::Release);
        assert!(get(addr, "/-/ready").await.starts_with("HTTP/1.1 200"));
        let body = get(addr, "/metrics").await;
        assert!(
            body.contains("sightline_agent_collections_total 1"),
            "{body}"
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("listen.json");
        write_listen_file(&file, addr).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert_eq!(v["http"], addr.to_string());
        stop_tx.send(()).unwrap();
        task.await.unwrap();
    }
}
