//! Wiring of a running agent.
//!
//! ```text
//! interval tick ─► HostCollector::collect (blocking thread) ─► build_batches ─► BatchQueue
//! interval tick ─► Containers::collect (one resource per container) ─► pack ─►┤ (drop oldest)
//! inotify/rescan ─► Containers discovery ─► Inventory (GET /inventory)          │
//! shipper task ◄──────────────────────────────────────────────────────────────────┘
//!     └─► Exporter::export (retry/backoff, endpoint failover) ─► collector
//! apps ─► receiver (OTLP gRPC/HTTP) ─► attribution ─► QueueSink ─► forward ─► Exporter
//! ```
//! On shutdown: readiness goes false, collection stops, the queue is closed and the shipper
//! drains it until `shutdown_timeout`; what is left is counted as dropped (`shutdown`).
//! The OTLP receiver stops accepting first, then its queue is forwarded within the same
//! deadline.

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};

use crate::attribution::Attributor;
use crate::clock::Clock;
use crate::config::AgentConfig;
use crate::containers::Containers;
use crate::export::batch::{agent_resource, agent_scope, build_batches};
use crate::export::queue::BatchQueue;
use crate::export::Exporter;
use crate::host::HostCollector;
use crate::http_server;
use crate::receiver::{self, forward::QueueSink, Receiver};
use crate::telemetry::{reason, SourceLabel, Telemetry};
use crate::Result;

/// What a finished run did, for the exit log line and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSummary {
    pub collections: u64,
    pub exported_points: u64,
    pub dropped_at_shutdown: u64,
}

/// Run the agent until `shutdown` completes, then flush for at most `shutdown_timeout`.
pub async fn run(
    cfg: AgentConfig,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()>,
) -> Result<RunSummary> {
    let telemetry = Arc::new(Telemetry::new());
    let queue = Arc::new(BatchQueue::new(cfg.queue_capacity));
    telemetry.queue_capacity.set(queue.capacity() as i64);
    let ready = Arc::new(AtomicBool::new(false));

    let (deadline_tx, deadline_rx) = watch::channel(None);
    let mut exporter = Exporter::new(&cfg.exporter, clock.clone(), telemetry.clone(), deadline_rx)?;

    let containers = cfg.containers.clone().and_then(|opts| {
        match Containers::new(opts, telemetry.clone(), &cfg.hostname, clock.now()) {
            Ok(c) => Some(Arc::new(c)),
            Err(e) => {
                tracing::warn!(error = %e, "container discovery disabled");
                None
            }
        }
    });
    let extra_routes = containers.as_ref().map(|c| c.router()).unwrap_or_default();

    // OTLP receiver for applications: its own exporter (same endpoints and policy).
    let (app_sink, app_queue) = QueueSink::new(cfg.receiver.queue_capacity, telemetry.clone());
    let app_exporter = Exporter::new(
        &cfg.exporter,
        clock.clone(),
        telemetry.clone(),
        deadline_tx.subscribe(),
    )?;
    let attributor = Arc::new(Attributor::new(
        cfg.host.proc_root.clone(),
        containers.as_ref().map(|c| c.inventory()),
        cfg.hostname.clone(),
    ));
    let app_receiver = Arc::new(Receiver::new(
        Arc::new(app_sink),
        attributor,
        telemetry.clone(),
        cfg.receiver.max_request_bytes,
    ));
    let app_listeners = receiver::start(&cfg.receiver, app_receiver.clone()).await?;
    let app_forwarder = tokio::spawn(receiver::forward::forward(
        app_exporter,
        app_queue,
        telemetry.clone(),
    ));

    let (http_stop_tx, http_stop_rx) = oneshot::channel::<()>();
    let (http_addr, http_task) = http_server::serve(
        &cfg.http_addr,
        telemetry.clone(),
        ready.clone(),
        extra_routes,
        async {
            let _ = http_stop_rx.await;
        },
    )
    .await?;

    if let Some(path) = &cfg.listen_file {
        let mut more = Vec::new();
        if let Some(a) = app_listeners.grpc {
            more.push(("otlp_grpc", a));
        }
        if let Some(a) = app_listeners.http {
            more.push(("otlp_http", a));
        }
        if let Err(e) = http_server::write_listen_file_with(path, http_addr, &more) {
            let _ = http_stop_tx.send(());
            let _ = http_task.await;
            return Err(e);
        }
    }

    let in_flight = Arc::new(AtomicU64::new(0));
    let shipper = {
        let queue = queue.clone();
        let telemetry = telemetry.clone();
        let in_flight = in_flight.clone();
        tokio::spawn(async move {
            while let Some(batch) = queue.pop().await {
                telemetry.queue_length.set(queue.len() as i64);
                in_flight.store(batch.points as u64, Ordering::Release);
                exporter.export(&batch).await;
                in_flight.store(0, Ordering::Release);
            }
        })
    };

    let mut logs = match &cfg.logs {
        Some(lc) => Some(crate::logs::start(
            lc,
            &cfg.hostname,
            &cfg.exporter,
            clock.clone(),
            telemetry.clone(),
            deadline_tx.subscribe(),
        )?),
        None => None,
    };

    let (collect_stop_tx, collect_stop_rx) = oneshot::channel::<()>();
    let collection = tokio::spawn(collection_loop(
        cfg.clone(),
        clock.clone(),
        telemetry.clone(),
        queue.clone(),
        collect_stop_rx,
    ));

    let (containers_stop_tx, containers_stop_rx) = watch::channel(false);
    let mut container_tasks = Vec::new();
    if let Some(c) = &containers {
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        container_tasks.push(tokio::spawn(
            c.clone()
                .run_discovery(clock.clone(), stopped(containers_stop_rx.clone())),
        ));
        container_tasks.push(tokio::spawn(c.clone().run_collection(
            cfg.interval,
            cfg.max_request_bytes,
            clock.clone(),
            queue.clone(),
            stopped(containers_stop_rx.clone()),
        )));
    }

    ready.store(true, Ordering::Release);
    tracing::info!(
        endpoint = %cfg.exporter.endpoint,
        http = %http_addr,
        interval = ?cfg.interval,
        host = %cfg.hostname,
        "sightline-agent running"
    );

    shutdown.await;
    ready.store(false, Ordering::Release);
    tracing::info!(timeout = ?cfg.shutdown_timeout, "shutting down, flushing the export queue");
    app_listeners.stop().await;
    drop(app_receiver);
    let _ = collect_stop_tx.send(());
    let _ = collection.await;
    let _ = containers_stop_tx.send(true);
    for task in container_tasks {
        let _ = task.await;
    }
    if let Some(l) = logs.as_mut() {
        l.stop_tailing().await;
    }
    queue.close();
    let _ = deadline_tx.send(Some(clock.now() + cfg.shutdown_timeout));
    // The exporter stops retrying at the deadline; the extra second covers a last attempt.
    let mut dropped_at_shutdown = 0;
    let mut shipper = shipper;
    let bound = cfg.shutdown_timeout + Duration::from_secs(1);
    if tokio::time::timeout(bound, &mut shipper).await.is_err() {
        shipper.abort();
        dropped_at_shutdown += in_flight.load(Ordering::Acquire);
    }
    if let Some(l) = logs {
        l.finish(bound).await;
    }
    let mut app_forwarder = app_forwarder;
    if tokio::time::timeout(bound, &mut app_forwarder)
        .await
        .is_err()
    {
        app_forwarder.abort();
        tracing::warn!("forwarding application data stopped at the shutdown deadline");
    }
    dropped_at_shutdown += queue.drain().iter().map(|b| b.points as u64).sum::<u64>();
    if dropped_at_shutdown > 0 {
        telemetry.dropped(reason::SHUTDOWN, dropped_at_shutdown);
        tracing::warn!(
            points = dropped_at_shutdown,
            "shutdown flush timed out, points dropped"
        );
    }
    telemetry.queue_length.set(0);
    let _ = http_stop_tx.send(());
    let _ = http_task.await;
    let summary = RunSummary {
        collections: telemetry.collections.get(),
        exported_points: telemetry.exported_points.get(),
        dropped_at_shutdown,
    };
    tracing::info!(?summary, "sightline-agent stopped");
    Ok(summary)
}

async fn collection_loop(
    cfg: AgentConfig,
    clock: Arc<dyn Clock>,
    telemetry: Arc<Telemetry>,
    queue: Arc<BatchQueue>,
    mut stop: oneshot::Receiver<()>,
) {
    let collector = Arc::new(HostCollector::new(cfg.host.clone(), clock.now()));
    let resource = agent_resource(&cfg.hostname);
    let scope = agent_scope();
    let mut logged_sources: HashSet<&'static str> = HashSet::new();
    let mut ticker = tokio::time::interval(cfg.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = ticker.tick() => {}
        }
        let started = Instant::now();
        let now = clock.now();
        let c = collector.clone();
        let collected = match tokio::task::spawn_blocking(move || c.collect(now)).await {
            Ok(collected) => collected,
            Err(e) => {
                tracing::error!(error = %e, "collection task failed");
                continue;
            }
        };
        telemetry.collections.inc();
        for failure in &collected.errors {
            telemetry
                .collection_errors
                .get_or_create(&SourceLabel {
                    source: failure.source,
                })
                .inc();
            if logged_sources.insert(failure.source) {
                tracing::warn!(source = failure.source, error = %failure.error, "collection source failed; repeats logged at debug");
            } else {
                tracing::debug!(source = failure.source, error = %failure.error, "collection source failed");
            }
        }
        telemetry
            .collected_points
            .inc_by(collected.metrics.point_count() as u64);
        let batches = build_batches(
            &resource,
            &scope,
            collected.metrics.into_metrics(),
            cfg.max_request_bytes,
        );
        for batch in batches {
            if let Some(dropped) = queue.push(batch) {
                telemetry.dropped(reason::QUEUE_FULL, dropped.points as u64);
                tracing::debug!(
                    points = dropped.points,
                    "export queue full, oldest batch dropped"
                );
            }
        }
        telemetry.queue_length.set(queue.len() as i64);
        telemetry
            .collection_duration_seconds
            .set(started.elapsed().as_secs_f64());
    }
}
