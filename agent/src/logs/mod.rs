//! Loss-free container log tailing shipped as OTLP logs.
//!
//! ```text
//! discovery (/var/log/pods CRI, Docker json-file, plain globs)
//!   ─► tailer thread: fingerprint (dev, inode, first bytes) · rotation (rename, copytruncate)
//!      · parse · partial/multiline assembly · severity · per-container rate limit
//!   ─► Batcher ─► Gate (≤ max_in_flight unacked batches; full = tailing pauses)
//!   ─► shipper task: Exporter::export_logs (retry/compression/TLS/token shared with metrics)
//!   ─► on OK: checkpoint offsets advance and <data_dir>/logs/checkpoints.json is rewritten
//!      atomically
//! ```
//! Contract: a file offset is persisted only after the collector acknowledged every record
//! read before it, so a crash re-sends at most the unacknowledged window. Every record
//! carries `sightline.log.stream` (the file's fingerprint id) and `sightline.log.offset`
//! (byte offset of its first line) so the receiver can drop re-sent duplicates.

pub mod checkpoint;
pub mod config;
pub mod discovery;
pub mod format;
pub mod metrics;
pub mod multiline;
pub mod patterns;
pub mod ship;
pub mod tailer;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, watch};

use crate::clock::Clock;
use crate::export::{Exporter, ExporterConfig};
use crate::telemetry::Telemetry;
use crate::{Error, Result};
use checkpoint::Checkpoints;
use discovery::Sources;
use multiline::MultilineRule;
use ship::{Batcher, Gate};
use tailer::{Tailer, TailerOptions};

/// Log tailing configuration (the `logs:` section plus `--data-dir`, `--pod-logs-root`).
#[derive(Debug, Clone)]
pub struct LogsConfig {
    /// Checkpoints live in `<data_dir>/logs/`.
    pub data_dir: PathBuf,
    pub sources: Sources,
    pub poll_interval: Duration,
    pub max_line_bytes: usize,
    pub multiline: Option<MultilineRule>,
    /// Lines per second per container; `None` = unlimited.
    pub rate_limit: Option<f64>,
    pub batch_max_records: usize,
    pub batch_max_bytes: usize,
    pub batch_timeout: Duration,
    /// Unacknowledged batches before tailing pauses.
    pub max_in_flight: usize,
    /// Pattern ids on every record (`logs.patterns`); `None` = off.
    pub patterns: Option<patterns::PatternsConfig>,
}

impl LogsConfig {
    /// Defaults for a data dir: `/var/log/pods` and `/var/lib/docker/containers`.
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            sources: Sources {
                pods_root: Some(PathBuf::from("/var/log/pods")),
                docker_root: Some(PathBuf::from("/var/lib/docker/containers")),
                include: Vec::new(),
            },
            poll_interval: Duration::from_millis(250),
            max_line_bytes: 256 * 1024,
            multiline: MultilineRule::default_rule().ok(),
            rate_limit: None,
            batch_max_records: 1000,
            batch_max_bytes: 1 << 20,
            batch_timeout: Duration::from_millis(500),
            max_in_flight: 8,
            patterns: Some(patterns::PatternsConfig {
                max_clusters: patterns::DEFAULT_MAX_CLUSTERS,
            }),
        }
    }
}

/// Running log tailing: stop the tailer, then let the shipper flush.
pub struct LogsHandle {
    stop: Arc<AtomicBool>,
    tailer: Option<std::thread::JoinHandle<()>>,
    shipper: tokio::task::JoinHandle<()>,
    gate: Arc<Gate>,
}

impl std::fmt::Debug for LogsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogsHandle").finish_non_exhaustive()
    }
}

/// Start tailing and shipping. `deadline` is the exporter's shutdown deadline channel.
pub fn start(
    cfg: &LogsConfig,
    hostname: &str,
    exporter_cfg: &ExporterConfig,
    clock: Arc<dyn Clock>,
    telemetry: Arc<Telemetry>,
    deadline: watch::Receiver<Option<SystemTime>>,
) -> Result<LogsHandle> {
    let checkpoints = Arc::new(Mutex::new(Checkpoints::load(&cfg.data_dir.join("logs"))?));
    patterns::install(cfg.patterns.as_ref(), telemetry.clone());
    let exporter = Exporter::new(exporter_cfg, clock, telemetry.clone(), deadline.clone())?;
    let gate = Arc::new(Gate::new(cfg.max_in_flight, telemetry.clone()));
    let (tx, rx) = mpsc::unbounded_channel();
    let stop = Arc::new(AtomicBool::new(false));
    let shipper = tokio::spawn(ship::ship(
        exporter,
        rx,
        gate.clone(),
        checkpoints.clone(),
        telemetry.clone(),
        deadline,
    ));
    let tailer = Tailer::new(
        TailerOptions {
            sources: cfg.sources.clone(),
            poll_interval: cfg.poll_interval,
            max_line_bytes: cfg.max_line_bytes.max(1),
            multiline: cfg.multiline.clone(),
            rate_limit: cfg.rate_limit,
            batch_timeout: cfg.batch_timeout,
        },
        checkpoints,
        Batcher::new(
            hostname.to_string(),
            cfg.batch_max_records,
            cfg.batch_max_bytes,
        ),
        gate.clone(),
        tx,
        telemetry,
        stop.clone(),
    );
    let tailer = std::thread::Builder::new()
        .name("log-tailer".into())
        .spawn(move || tailer.run())
        .map_err(|e| Error::io(&cfg.data_dir, e))?;
    tracing::info!(data_dir = %cfg.data_dir.display(), "log tailing started");
    Ok(LogsHandle {
        stop,
        tailer: Some(tailer),
        shipper,
        gate,
    })
}

impl LogsHandle {
    /// Batches built and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.gate.in_flight()
    }

    /// Stop reading files (the last partial batch is handed to the shipper).
    pub async fn stop_tailing(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.tailer.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }

    /// Wait for the shipper to send what is queued, at most `bound` (the exporter stops
    /// retrying at the shutdown deadline). Unsent lines are re-read after a restart.
    pub async fn finish(mut self, bound: Duration) {
        self.stop_tailing().await;
        if tokio::time::timeout(bound, &mut self.shipper)
            .await
            .is_err()
        {
            self.shipper.abort();
        }
    }
}
