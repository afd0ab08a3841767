//! OTLP receiver for instrumented applications on the node.
//!
//! ```text
//! app SDK ─► OTLP/gRPC (grpc.rs, default 127.0.0.1:4317) ─┐
//! app SDK ─► OTLP/HTTP (http.rs, default 127.0.0.1:4318) ─┤ decode within max_request_bytes
//!                                                          │ (sightline-proto, as the collector)
//!          Receiver::accept ◄──────────────────────────────┘
//!            ├─ attribution: peer socket → pid → cgroup → container/pod attributes
//!            │  (only keys the app did not set; host.name always)
//!            └─ Sink::offer(AppRequest) ── full → RESOURCE_EXHAUSTED + RetryInfo / 429
//!                 └─ QueueSink (bounded) ─► forward::forward ─► Exporter (retry, failover)
//! ```
//! The application is answered OK only once its request was taken by the sink (today:
//! queued for forwarding). Malformed, oversize or wrongly typed requests are refused
//! with the OTLP status for it and counted in
//! `sightline_agent_receiver_rejected_total{signal,reason}`; nothing a sender does can
//! crash the agent. Listeners: an empty address disables one; a host port
//! (`0.0.0.0:4317`) is just another address. When a *default* address cannot be bound
//! (another OTLP receiver, e.g. a collector, already owns it) the agent logs it and
//! runs without that listener; an explicitly configured address that cannot be bound
//! is a start-up error.

pub mod config;
pub mod forward;
pub mod grpc;
pub mod http;
pub mod metrics;
pub mod signal;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;

use crate::attribution::{self, Attributor};
use crate::telemetry::Telemetry;
use crate::{Error, Result};
pub use config::ReceiverConfig;
use forward::{Refused, Sink};
use signal::AppSignal;

/// `protocol` label values.
pub const PROTOCOL_GRPC: &str = "grpc";
pub const PROTOCOL_HTTP: &str = "http";

/// What both listeners share: attribution, the sink and the counters.
pub struct Receiver {
    sink: Arc<dyn Sink>,
    attributor: Arc<Attributor>,
    telemetry: Arc<Telemetry>,
    max_request_bytes: usize,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("max_request_bytes", &self.max_request_bytes)
            .finish_non_exhaustive()
    }
}

impl Receiver {
    pub fn new(
        sink: Arc<dyn Sink>,
        attributor: Arc<Attributor>,
        telemetry: Arc<Telemetry>,
        max_request_bytes: usize,
    ) -> Self {
        Self {
            sink,
            attributor,
            telemetry,
            max_request_bytes,
        }
    }

    /// Count a refused request (logged at debug: senders can repeat it endlessly).
    pub fn reject(&self, signal: &'static str, e: &sightline_proto::Error) {
        self.telemetry.receiver.rejected(signal, e.reason());
        tracing::debug!(signal, reason = e.reason(), error = %e, "OTLP request from an application rejected");
    }

    /// Add the sender's container attributes and hand the request to the sink.
    pub async fn accept<R: AppSignal>(
        &self,
        mut request: R,
        peer: Option<SocketAddr>,
        ours: Option<SocketAddr>,
        protocol: &'static str,
    ) -> Result<(), Refused> {
        let items = request.items() as u64;
        let found = match (peer, ours) {
            (Some(peer), Some(ours)) => {
                let a = self.attributor.clone();
                tokio::task::spawn_blocking(move || a.lookup(peer, ours))
                    .await
                    .unwrap_or_default()
            }
            _ => attribution::Attribution::default(),
        };
        let hostname = self.attributor.hostname();
        let mut attributed = 0;
        for resource in request.resources_mut() {
            if attribution::apply(&found, hostname, resource) {
                attributed += 1;
            }
        }
        if let (Some(source), true) = (found.source, attributed > 0) {
            self.telemetry.receiver.attributed(source, attributed);
        }
        match self.sink.offer(request.into_app_request()) {
            Ok(()) => {
                self.telemetry.receiver.received(R::SIGNAL, protocol, items);
                Ok(())
            }
            Err(refused) => {
                let reason = match refused {
                    Refused::Full { .. } => "queue_full",
                    Refused::Closed => "shutting_down",
                };
                self.telemetry.receiver.rejected(R::SIGNAL, reason);
                Err(refused)
            }
        }
    }
}

/// Running listeners.
#[derive(Debug)]
pub struct Listeners {
    pub grpc: Option<SocketAddr>,
    pub http: Option<SocketAddr>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

impl Listeners {
    /// Stop accepting requests and wait for the servers to finish.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

async fn bind(addr: &str, explicit: bool) -> Result<Option<(tokio::net::TcpListener, SocketAddr)>> {
    let bound = async {
        let l = tokio::net::TcpListener::bind(addr).await?;
        let local = l.local_addr()?;
        Ok::<_, std::io::Error>((l, local))
    }
    .await;
    match bound {
        Ok(b) => Ok(Some(b)),
        Err(source) if explicit => Err(Error::Http {
            addr: addr.to_string(),
            source,
        }),
        Err(e) => {
            tracing::warn!(addr, error = %e, "OTLP receiver: default address unavailable, listener disabled (set --otlp-grpc-addr / --otlp-http-addr to choose another)");
            Ok(None)
        }
    }
}

/// Bind and serve the configured listeners.
pub async fn start(cfg: &ReceiverConfig, receiver: Arc<Receiver>) -> Result<Listeners> {
    let (stop, stopped) = watch::channel(false);
    let until = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let mut listeners = Listeners {
        grpc: None,
        http: None,
        tasks: Vec::new(),
        stop,
    };
    if let Some(addr) = &cfg.grpc_addr {
        if let Some((l, local)) = bind(addr, cfg.grpc_explicit).await? {
            listeners.grpc = Some(local);
            listeners
                .tasks
                .push(grpc::serve(receiver.clone(), l, until(stopped.clone())));
        }
    }
    if let Some(addr) = &cfg.http_addr {
        if let Some((l, local)) = bind(addr, cfg.http_explicit).await? {
            listeners.http = Some(local);
            listeners.tasks.push(http::serve(
                receiver.clone(),
                l,
                local,
                until(stopped.clone()),
            ));
        }
    }
    if listeners.grpc.is_some() || listeners.http.is_some() {
        tracing::info!(grpc = ?listeners.grpc, http = ?listeners.http, "OTLP receiver for applications listening");
    }
    Ok(listeners)
}
