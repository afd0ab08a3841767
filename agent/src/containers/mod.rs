//! Container autodiscovery and per-container metrics.
//!
//! ```text
//! cgroup tree ──► discovery::scan (on inotify wake-up or every rescan_interval)
//!                   └─► Inventory::apply (added / removed, counters) ─► metadata::Resolver
//!                        (/var/log/pods, kubelet /pods, Docker socket) names new entries
//! interval tick ─► Containers::collect: read each entry's cgroup files (cgroup_stats),
//!                  one ResourceMetrics per container (metrics), budget → overflow resource,
//!                  removed containers' series ended with NO_RECORDED_VALUE points
//!                  ─► metrics::pack ─► the agent's export queue
//! GET /inventory ─► Inventory::items (JSON)
//! ```
//! Discovery and collection share the [`inventory::Inventory`] behind a mutex that is never
//! held across I/O: scans and cgroup reads run on blocking threads and take the lock only
//! to swap results in.

pub mod cgroup_stats;
pub mod discovery;
pub mod http_get;
pub mod inventory;
pub mod kubelet_tls;
pub mod metadata;
pub mod metrics;
pub mod watch;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use axum::routing::get;
use axum::Router;
use sightline_proto::otlp::metrics::v1::ResourceMetrics;

use crate::clock::{unix_nanos, Clock};
use crate::export::queue::{Batch, BatchQueue};
use crate::otlp_metric::MetricSet;
use crate::telemetry::{reason, SourceLabel, Telemetry};
use cgroup_stats::{read_stats, ContainerStats};
use discovery::{Kind, Layout, Runtime};
use inventory::{Changes, Inventory};
use metadata::{MetadataOptions, PodLogIndex, Resolver};

/// Configuration of container discovery and metrics.
#[derive(Debug, Clone)]
pub struct ContainerOptions {
    /// Where cgroup hierarchies are mounted (`/sys/fs/cgroup`).
    pub cgroup_root: PathBuf,
    /// procfs for `/proc/<pid>/net/dev` of container processes.
    pub proc_root: PathBuf,
    /// sysfs for block device names.
    pub sys_root: PathBuf,
    pub metadata: MetadataOptions,
    /// Series (data points per collection) the node may export for containers; the
    /// containers beyond it (newest first) are summed into one overflow resource.
    pub max_series: usize,
    /// Full rescan period, the safety net under inotify.
    pub rescan_interval: Duration,
}

impl Default for ContainerOptions {
    fn default() -> Self {
        Self {
            cgroup_root: PathBuf::from("/sys/fs/cgroup"),
            proc_root: PathBuf::from("/proc"),
            sys_root: PathBuf::from("/sys"),
            metadata: MetadataOptions {
                pod_logs_root: Some(PathBuf::from("/var/log/pods")),
                kubelet_url: None,
                kubelet_token_file: None,
                kubelet_ca_file: None,
                kubelet_insecure_skip_verify: false,
                docker_socket: Some(PathBuf::from("/var/run/docker.sock")),
            },
            max_series: 20_000,
            rescan_interval: Duration::from_secs(10),
        }
    }
}

/// One collection of container metrics.
#[derive(Debug, Default)]
pub struct ContainerCollection {
    pub resources: Vec<ResourceMetrics>,
    pub points: usize,
    /// Series folded into the overflow resource this time.
    pub overflow_series: u64,
}

/// Discovery, inventory and collection for the node's containers.
#[derive(Debug)]
pub struct Containers {
    opts: ContainerOptions,
    layout: Layout,
    inventory: Arc<Mutex<Inventory>>,
    telemetry: Arc<Telemetry>,
    hostname: String,
    agent_start_nanos: u64,
    /// What the overflow resource exported last, to end its series when it empties.
    last_overflow: Mutex<Option<ContainerStats>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks outside tests; keep going if one did.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Containers {
    /// Inspect the cgroup root; fails when it holds no cgroup hierarchy.
    pub fn new(
        opts: ContainerOptions,
        telemetry: Arc<Telemetry>,
        hostname: &str,
        agent_start: SystemTime,
    ) -> Result<Self, String> {
        let layout = Layout::detect(&opts.cgroup_root)?;
        Ok(Self {
            opts,
            layout,
            inventory: Arc::new(Mutex::new(Inventory::default())),
            telemetry,
            hostname: hostname.to_string(),
            agent_start_nanos: unix_nanos(agent_start),
            last_overflow: Mutex::new(None),
        })
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn inventory(&self) -> Arc<Mutex<Inventory>> {
        self.inventory.clone()
    }

    /// `GET /inventory`: the known containers as JSON, oldest first.
    pub fn router(&self) -> Router {
        let inventory = self.inventory.clone();
        Router::new().route(
            "/inventory",
            get(move || {
                let inventory = inventory.clone();
                async move { axum::Json(lock(&inventory).items()) }
            }),
        )
    }

    /// Scan once and update the inventory; returns the changes and the directories to watch.
    pub fn scan_and_apply(&self, now: SystemTime) -> (Changes, Vec<PathBuf>) {
        let scan = discovery::scan(&self.layout);
        let mut inv = lock(&self.inventory);
        let changes = inv.apply(scan.found, now);
        self.telemetry
            .containers_discovered
            .inc_by(changes.added.len() as u64);
        self.telemetry
            .containers_removed
            .inc_by(changes.removed as u64);
        self.telemetry.containers.set(inv.len() as i64);
        (changes, scan.dirs)
    }

    /// Name what is not named yet. `new_k8s` forces a fresh look at the pod logs.
    async fn resolve(
        &self,
        resolver: &mut Resolver,
        state: &mut ResolveState,
        new_k8s: bool,
        now: SystemTime,
    ) {
        let (k8s_unresolved, docker_todo) = {
            let inv = lock(&self.inventory);
            let k8s = inv.entries().filter(|e| wants_k8s_names(e, now)).count();
            let docker: Vec<String> = inv
                .entries()
                .filter(|e| {
                    !e.docker_checked
                        && e.identity.kind != Kind::SystemdService
                        && matches!(e.identity.runtime, Some(Runtime::Docker) | None)
                })
                .filter_map(|e| e.identity.container_id.clone())
                .collect();
            (k8s, docker)
        };
        if k8s_unresolved > 0 {
            if let Err(e) = resolver.refresh_kubelet().await {
                self.lookup_failed(state, e);
            }
            let reload = new_k8s
                || state
                    .pod_logs_loaded
                    .is_none_or(|t| t.elapsed() >= metadata::KUBELET_REFRESH);
            if reload {
                state.pod_logs = resolver.pod_logs_root().map(PodLogIndex::load);
                state.pod_logs_loaded = Some(Instant::now());
            }
            let mut inv = lock(&self.inventory);
            let keys: Vec<String> = inv
                .entries()
                .filter(|e| wants_k8s_names(e, now))
                .map(|e| e.identity.key.clone())
                .collect();
            for key in keys {
                if let Some(e) = inv.get_mut(&key) {
                    let uid = e.identity.pod_uid.clone().unwrap_or_default();
                    let found = resolver.kubernetes(
                        state.pod_logs.as_ref(),
                        &uid,
                        e.identity.container_id.as_deref(),
                    );
                    e.metadata.merge(found);
                }
            }
        } else {
            state.pod_logs = None;
        }
        for id in docker_todo {
            let answer = resolver.docker(&id).await;
            let mut inv = lock(&self.inventory);
            let Some(e) = inv.get_mut(&id) else { continue };
            e.docker_checked = true;
            match answer {
                Ok(Some(found)) => e.metadata.merge(found),
                Ok(None) => {}
                Err(err) => {
                    drop(inv);
                    self.lookup_failed(state, err);
                }
            }
        }
    }

    fn lookup_failed(&self, state: &mut ResolveState, e: metadata::LookupError) {
        self.telemetry
            .metadata_errors
            .get_or_create(&SourceLabel { source: e.source })
            .inc();
        if state.logged.insert(e.source) {
            tracing::warn!(source = e.source, error = %e.message, "container metadata lookup failed; repeats logged at debug");
        } else {
            tracing::debug!(source = e.source, error = %e.message, "container metadata lookup failed");
        }
    }

    /// Discover until `stop` resolves: scan, name, then wait for inotify or the rescan tick.
    pub async fn run_discovery(
        self: Arc<Self>,
        clock: Arc<dyn Clock>,
        stop: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(stop);
        let mut resolver = Resolver::new(self.opts.metadata.clone());
        let mut state = ResolveState::default();
        let mut watcher = match watch::DirWatcher::new() {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "inotify unavailable; discovering by periodic rescan only");
                None
            }
        };
        loop {
            let me = self.clone();
            let now = clock.now();
            let Ok((changes, dirs)) =
                tokio::task::spawn_blocking(move || me.scan_and_apply(now)).await
            else {
                tracing::error!("container scan task failed");
                return;
            };
            if !changes.added.is_empty() || changes.removed > 0 {
                tracing::debug!(
                    added = changes.added.len(),
                    removed = changes.removed,
                    "containers changed"
                );
            }
            let new_k8s = {
                let inv = lock(&self.inventory);
                changes.added.iter().any(|k| {
                    inv.get(k)
                        .is_some_and(|e| e.identity.kind == Kind::Kubernetes)
                })
            };
            self.resolve(&mut resolver, &mut state, new_k8s, now).await;
            if let Some(w) = watcher.as_mut() {
                w.sync(&dirs);
            }
            let rescan = tokio::time::sleep(self.opts.rescan_interval);
            tokio::select! {
                _ = &mut stop => return,
                _ = rescan => {}
                r = async {
                    match watcher.as_mut() {
                        Some(w) => w.changed().await,
                        None => std::future::pending().await,
                    }
                } => {
                    if let Err(e) = r {
                        tracing::warn!(error = %e, "inotify failed; discovering by periodic rescan only");
                        watcher = None;
                    }
                    // Let a burst of mkdirs settle into one scan.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }

    /// Read every known container once (blocking: call from a blocking thread).
    pub fn collect(&self, now: SystemTime) -> ContainerCollection {
        let now_nanos = unix_nanos(now);
        let snapshot = lock(&self.inventory).snapshot();
        let read: Vec<(String, Option<ContainerStats>)> = snapshot
            .iter()
            .map(|e| {
                let alive = e.paths.any_dir().is_some_and(|d| d.exists());
                let stats =
                    alive.then(|| read_stats(&e.paths, &self.opts.proc_root, &self.opts.sys_root));
                (e.identity.key.clone(), stats)
            })
            .collect();
        let mut out = ContainerCollection::default();
        let mut used = 0usize;
        let mut overflow = ContainerStats::default();
        let mut folded = 0u64;
        let mut inv = lock(&self.inventory);
        for (key, stats) in read {
            let Some(stats) = stats else { continue };
            let Some(entry) = inv.get_mut(&key) else {
                continue;
            };
            let start = unix_nanos(entry.first_seen);
            let mut set = MetricSet::new(now_nanos);
            metrics::push_stats(&mut set, &stats, start, 1);
            let n = set.point_count();
            if used + n <= self.opts.max_series {
                used += n;
                out.points += n;
                out.resources.push(metrics::resource_metrics(
                    metrics::resource(entry, &self.hostname),
                    set,
                ));
                entry.last_stats = Some(stats);
            } else {
                out.overflow_series += n as u64;
                folded += 1;
                metrics::sum_stats(&mut overflow, &stats);
                if let Some(last) = entry.last_stats.take() {
                    // Its own series stop here: end them.
                    let r = metrics::resource(entry, &self.hostname);
                    out.resources
                        .push(metrics::stale_resource(r, &last, start, now_nanos));
                }
            }
        }
        let ended = inv.take_ended();
        drop(inv);
        for e in ended {
            if let Some(last) = &e.last_stats {
                let r = metrics::resource(&e, &self.hostname);
                out.resources.push(metrics::stale_resource(
                    r,
                    last,
                    unix_nanos(e.first_seen),
                    now_nanos,
                ));
            }
        }
        let mut last_overflow = lock(&self.last_overflow);
        let resource = metrics::overflow_resource(&self.hostname);
        if folded > 0 {
            let mut set = MetricSet::new(now_nanos);
            metrics::push_stats(&mut set, &overflow, self.agent_start_nanos, folded);
            out.points += set.point_count();
            out.resources.push(metrics::resource_metrics(resource, set));
            *last_overflow = Some(overflow);
        } else if let Some(last) = last_overflow.take() {
            out.resources.push(metrics::stale_resource(
                resource,
                &last,
                self.agent_start_nanos,
                now_nanos,
            ));
        }
        self.telemetry.series_overflow.inc_by(out.overflow_series);
        out
    }

    /// Collect every `interval` and queue the result until `stop` resolves.
    pub async fn run_collection(
        self: Arc<Self>,
        interval: Duration,
        max_request_bytes: usize,
        clock: Arc<dyn Clock>,
        queue: Arc<BatchQueue>,
        stop: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(stop);
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = ticker.tick() => {}
            }
            let me = self.clone();
            let now = clock.now();
            let Ok(collected) = tokio::task::spawn_blocking(move || me.collect(now)).await else {
                tracing::error!("container collection task failed");
                continue;
            };
            self.telemetry
                .collected_points
                .inc_by(collected.points as u64);
            for batch in metrics::pack(collected.resources, max_request_bytes) {
                push_batch(&queue, &self.telemetry, batch);
            }
        }
    }
}

/// How long the kubelet and pod logs are asked about a container that has no names yet
/// (a pod's sandbox/pause container never gets any).
pub const NAME_LOOKUP_WINDOW: Duration = Duration::from_secs(300);

fn wants_k8s_names(e: &inventory::Entry, now: SystemTime) -> bool {
    e.identity.kind == Kind::Kubernetes
        && !e.metadata.k8s_complete()
        && now
            .duration_since(e.first_seen)
            .map_or(true, |age| age < NAME_LOOKUP_WINDOW)
}

fn push_batch(queue: &BatchQueue, telemetry: &Telemetry, batch: Batch) {
    if let Some(dropped) = queue.push(batch) {
        telemetry.dropped(reason::QUEUE_FULL, dropped.points as u64);
    }
    telemetry.queue_length.set(queue.len() as i64);
}

/// Bookkeeping of the metadata resolution between scans.
#[derive(Debug, Default)]
struct ResolveState {
    pod_logs: Option<PodLogIndex>,
    pod_logs_loaded: Option<Instant>,
    logged: std::collections::HashSet<&'static str>,
}
