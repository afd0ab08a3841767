//! Start-up, serving and shutdown of a collector process.
//!
//! [`start`] validates the config, opens the store (the WAL is replayed before any
//! listener accepts), binds the gRPC, OTLP/HTTP and HTTP API listeners (port 0
//! allowed), starts serving, marks the process ready and finally writes the listen
//! file atomically (`{"grpc": ..., "otlp_http": ..., "http": ...}`), so a test or
//! supervisor that sees the file can connect at once. [`Collector::shutdown`] stops
//! accepting, lets in-flight requests finish (bounded), and flushes the store.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use sightline_store::{Clock, Store};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::config::Config;
use crate::receiver::otlp_grpc::{self, GrpcStatusLayer};
use crate::receiver::otlp_http;
use crate::state::AppState;
use crate::tls::TlsMaterial;
use crate::{api, Error, Result};

/// How long in-flight connections may take to finish at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take for the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the listeners ended up (after port 0 was resolved).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenAddrs {
    pub grpc: SocketAddr,
    pub otlp_http: SocketAddr,
    pub http: SocketAddr,
}

impl ListenAddrs {
    /// The listen-file JSON; wildcard addresses are written as loopback so a
    /// client on the same host can connect to them.
    pub fn to_json(&self) -> String {
        let show = |a: SocketAddr| {
            let ip = match a.ip() {
                IpAddr::V4(v) if v.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(v) if v.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
                ip => ip,
            };
            SocketAddr::new(ip, a.port()).to_string()
        };
        serde_json::json!({
            "grpc": show(self.grpc),
            "otlp_http": show(self.otlp_http),
            "http": show(self.http),
        })
        .to_string()
    }
}

/// A running collector.
pub struct Collector {
    pub addrs: ListenAddrs,
    pub state: Arc<AppState>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<Result<()>>,
}

async fn bind(addr: &str) -> Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|source| Error::Bind {
        addr: addr.to_string(),
        source,
    })
}

/// Writes `contents` to `path` via a temporary file and a rename.
pub fn write_atomically(path: &Path, contents: &str) -> Result<()> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, contents).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Starts a collector with `cfg`; see the module docs for the order of events.
pub async fn start(
    cfg: &Config,
    clock: Arc<dyn Clock>,
    listen_file: Option<&Path>,
) -> Result<Collector> {
    let errors = cfg.validate();
    if !errors.is_empty() {
        return Err(Error::Config(errors));
    }
    let tls = cfg.server.tls.as_ref().map(TlsMaterial::load).transpose()?;
    let http_tls = tls
        .as_ref()
        .map(|t| t.rustls_config())
        .transpose()?
        .map(TlsAcceptor::from);

    let store_cfg = cfg.store_config();
    let store_clock = clock.clone();
    tracing::info!(data_dir = %store_cfg.data_dir.display(), "opening store (replaying WAL)");
    let store = tokio::task::spawn_blocking(move || Store::open(store_cfg, store_clock))
        .await
        .map_err(|e| Error::Task(e.to_string()))??;
    let state =
        Arc::new(AppState::new(cfg, Arc::new(store), clock).map_err(|e| Error::Config(vec![e]))?);

    let grpc_listener = bind(&cfg.server.grpc_addr).await?;
    let otlp_listener = bind(&cfg.server.otlp_http_addr).await?;
    let http_listener = bind(&cfg.server.http_addr).await?;
    let local = |l: &TcpListener, a: &str| {
        l.local_addr().map_err(|source| Error::Bind {
            addr: a.to_string(),
            source,
        })
    };
    let addrs = ListenAddrs {
        grpc: local(&grpc_listener, &cfg.server.grpc_addr)?,
        otlp_http: local(&otlp_listener, &cfg.server.otlp_http_addr)?,
        http: local(&http_listener, &cfg.server.http_addr)?,
    };

    let (shutdown, shutdown_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();

    // gRPC
    let services = otlp_grpc::services(state.clone());
    let mut builder = tonic::transport::Server::builder();
    if let Some(t) = &tls {
        builder = builder.tls_config(t.tonic_config())?;
    }
    let mut grpc_shutdown = shutdown_rx.clone();
    let grpc = builder
        .layer(GrpcStatusLayer {
            metrics: state.metrics.clone(),
        })
        .add_service(services.metrics)
        .add_service(services.logs)
        .add_service(services.traces)
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(grpc_listener),
            async move {
                stopped(&mut grpc_shutdown).await;
            },
        );
    tasks.spawn(async move { grpc.await.map_err(Error::from) });

    // HTTP listeners
    let track = |r: Router| {
        r.layer(axum::middleware::from_fn_with_state(
            state.clone(),
            api::track_requests,
        ))
    };
    let otlp_router = track(otlp_http::router(state.clone()));
    let api_router = track(api::router(state.clone()));
    tasks.spawn(serve_http(
        otlp_listener,
        otlp_router,
        http_tls.clone(),
        shutdown_rx.clone(),
    ));
    tasks.spawn(crate::self_monitoring::run(
        state.clone(),
        cfg.self_monitoring.clone(),
        addrs.http.to_string(),
        shutdown_rx.clone(),
    ));
    tasks.spawn(serve_http(http_listener, api_router, http_tls, shutdown_rx));

    state.set_ready(true);
    if let Some(path) = listen_file {
        write_atomically(path, &addrs.to_json())?;
    }
    tracing::info!(grpc = %addrs.grpc, otlp_http = %addrs.otlp_http, http = %addrs.http,
        tls = tls.is_some(), auth = state.auth.enabled(), "collector listening");
    Ok(Collector {
        addrs,
        state,
        shutdown,
        tasks,
    })
}

impl Collector {
    /// Stops accepting, drains in-flight requests and flushes the store.
    pub async fn shutdown(mut self) -> Result<()> {
        tracing::info!("shutting down: no longer accepting requests");
        self.state.set_ready(false);
        let _ = self.shutdown.send(true);
        let drained = tokio::time::timeout(DRAIN_TIMEOUT + Duration::from_secs(2), async {
            while let Some(r) = self.tasks.join_next().await {
                match r {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "listener stopped with an error"),
                    Err(e) => tracing::warn!(error = %e, "listener task failed"),
                }
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!("in-flight requests did not finish in time; closing them");
            self.tasks.abort_all();
        }
        tracing::info!("flushing store");
        self.state.store.flush().await?;
        let metadata = self.state.metadata.clone();
        match tokio::task::spawn_blocking(move || metadata.persist()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot save metric metadata"),
            Err(e) => tracing::warn!(error = %e, "metric metadata save task failed"),
        }
        tracing::info!("shutdown complete");
        Ok(())
    }

    /// Resolves when a listener stops on its own (an error); normally never.
    pub async fn wait_failure(&mut self) -> Result<()> {
        match self.tasks.join_next().await {
            Some(Ok(r)) => r,
            Some(Err(e)) => Err(Error::Task(e.to_string())),
            None => std::future::pending().await,
        }
    }
}

/// Accept loop of one HTTP listener (HTTP/1.1 and h2, optionally TLS).
async fn serve_http(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<()> {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped(&mut shutdown) => break,
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // e.g. EMFILE: back off instead of spinning
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let router = router.clone();
                let tls = tls.clone();
                let shutdown = shutdown.clone();
                conns.spawn(async move {
                    match tls {
                        None => serve_connection(stream, router, shutdown).await,
                        Some(acceptor) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                            Ok(Ok(s)) => serve_connection(s, router, shutdown).await,
                            Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                        },
                    }
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        conns.abort_all();
    }
    Ok(())
}

async fn serve_connection<I>(io: I, router: Router, mut shutdown: watch::Receiver<bool>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req| router.clone().oneshot(req));
    let builder = auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), svc);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "connection closed with an error");
            }
        }
        _ = stopped(&mut shutdown) => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Resolves once shutdown has been requested (or the sender is gone).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}
