//! Configuration: command-line flags, their `SIGHTLINE_AGENT_*` environment twins, and a
//! YAML file whose top-level keys mirror the flags (plus `export:` and `filesystem:`
//! sections for knobs without a flag). Precedence: flag > environment > file > default.
//! [`resolve`] checks everything and reports all problems at once.
//!
//! ```yaml
//! endpoint: http://collector:4317   # --endpoint / SIGHTLINE_AGENT_ENDPOINT (required); several:
//!                                   # a YAML list, a comma list, or --endpoint repeated
//!                                   # (failover in this order, see export::endpoints)
//! otlp_grpc_addr: 127.0.0.1:4317    # --otlp-grpc-addr: OTLP receiver for apps ("" = off)
//! otlp_http_addr: 127.0.0.1:4318    # --otlp-http-addr
//! receiver: { max_request_bytes: 4194304, queue_capacity: 64 }
//! interval: 10s                     # --interval
//! token: s3cret                     # --token      -> authorization: Bearer s3cret
//! tenant: team-a                    # --tenant     -> x-scope-orgid: team-a
//! tls_ca: /etc/sightline/ca.pem     # --tls-ca
//! compression: zstd                 # --compression zstd|gzip|none
//! http_addr: 127.0.0.1:9100         # --http-addr (port 0 = any free port)
//! listen_file: /run/agent.json      # --listen-file
//! proc_root: /proc                  # --proc-root
//! sys_root: /sys                    # --sys-root
//! hostname: node-1                  # default: the kernel's host name
//! export:
//!   timeout: 10s
//!   queue_capacity: 100             # batches; full => drop oldest
//!   max_request_bytes: 4000000
//!   shutdown_timeout: 5s
//!   failover_probe_interval: 30s    # with several endpoints: retry the first after this
//!   retry: { initial_backoff: 1s, max_backoff: 30s, max_elapsed: 5m }
//! filesystem:
//!   include_tmpfs: false
//!   root_path: /hostfs
//! containers:
//!   enabled: true                   # default; false turns discovery and metrics off
//!   cgroup_root: /sys/fs/cgroup     # --cgroup-root
//!   pod_logs_root: /var/log/pods    # --pod-logs-root ("" = do not read)
//!   kubelet_url: http://127.0.0.1:10255   # --kubelet-url (none by default)
//!   kubelet_token_file: /var/run/secrets/kubernetes.io/serviceaccount/token
//!   kubelet_ca_file: /var/run/secrets/kubernetes.io/serviceaccount/ca.crt  # for https://
//!   kubelet_insecure_skip_verify: false
//!   docker_socket: /var/run/docker.sock   # --docker-socket (skipped when absent)
//!   max_container_series: 20000     # per node; the rest is folded into an overflow series
//!   rescan_interval: 10s           # safety net; inotify finds new cgroups at once
//! data_dir: /var/lib/sightline-agent   # --data-dir: log checkpoints and the disk buffer
//! buffer:                           # see `buffer::config`
//!   max_bytes: 256MiB
//!   when_full: backpressure         # or drop_oldest
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde::Deserialize;
use tonic::codegen::http::Uri;

use crate::containers::metadata::MetadataOptions;
use crate::containers::ContainerOptions;
use crate::export::retry::{Jitter, RetryConfig};
use crate::export::{header_value, Compression, ExporterConfig};
use crate::host::HostOptions;
use crate::{Error, Result};

/// Sightline node agent: host metrics over OTLP/gRPC.
#[derive(Debug, Parser)]
#[command(
    name = "sightline-agent",
    version,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the configuration (file, flags, environment) and exit: 0 if valid.
    Validate(RunArgs),
}

/// Flags shared by running and `validate`.
#[derive(Debug, Default, Clone, Args)]
pub struct RunArgs {
    /// YAML configuration file.
    #[arg(long, env = "SIGHTLINE_AGENT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Collector OTLP/gRPC endpoint, e.g. http://127.0.0.1:4317. Repeat the flag (or
    /// give a comma-separated list) for failover endpoints, in preference order.
    #[arg(long, env = "SIGHTLINE_AGENT_ENDPOINT", value_delimiter = ',')]
    pub endpoint: Vec<String>,
    /// Collection interval (e.g. 10s, 500ms, 1m).
    #[arg(long, env = "SIGHTLINE_AGENT_INTERVAL")]
    pub interval: Option<String>,
    /// Bearer token sent as `authorization: Bearer <token>`.
    #[arg(long, env = "SIGHTLINE_AGENT_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Tenant sent as `x-scope-orgid`.
    #[arg(long, env = "SIGHTLINE_AGENT_TENANT")]
    pub tenant: Option<String>,
    /// PEM CA file to verify the collector's TLS certificate.
    #[arg(long, env = "SIGHTLINE_AGENT_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// zstd | gzip | none.
    #[arg(long, env = "SIGHTLINE_AGENT_COMPRESSION")]
    pub compression: Option<String>,
    /// Address for /metrics and /-/ready (port 0 picks a free port).
    #[arg(long, env = "SIGHTLINE_AGENT_HTTP_ADDR")]
    pub http_addr: Option<String>,
    /// Write {"http":"ADDR"} here once serving.
    #[arg(long, env = "SIGHTLINE_AGENT_LISTEN_FILE")]
    pub listen_file: Option<PathBuf>,
    /// procfs to read host metrics from.
    #[arg(long, env = "SIGHTLINE_AGENT_PROC_ROOT")]
    pub proc_root: Option<PathBuf>,
    /// sysfs to read host metrics from.
    #[arg(long, env = "SIGHTLINE_AGENT_SYS_ROOT")]
    pub sys_root: Option<PathBuf>,
    /// Where cgroup hierarchies are mounted, for container discovery.
    #[arg(long, env = "SIGHTLINE_AGENT_CGROUP_ROOT")]
    pub cgroup_root: Option<PathBuf>,
    /// Kubernetes pod log directory (<ns>_<pod>_<uid>/<container>/N.log): names
    /// containers and is the root of pod log tailing ("" = neither).
    #[arg(long, env = "SIGHTLINE_AGENT_POD_LOGS_ROOT")]
    pub pod_logs_root: Option<PathBuf>,
    /// Kubelet base URL (http://host:port); its /pods names containers.
    #[arg(long, env = "SIGHTLINE_AGENT_KUBELET_URL")]
    pub kubelet_url: Option<String>,
    /// Docker Engine API socket, for container names and images.
    #[arg(long, env = "SIGHTLINE_AGENT_DOCKER_SOCKET")]
    pub docker_socket: Option<PathBuf>,
    /// State directory (log checkpoints); log tailing runs only when set.
    #[arg(long, env = "SIGHTLINE_AGENT_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// OTLP/gRPC receiver for applications (default 127.0.0.1:4317; "" disables).
    #[arg(long, env = "SIGHTLINE_AGENT_OTLP_GRPC_ADDR")]
    pub otlp_grpc_addr: Option<String>,
    /// OTLP/HTTP receiver for applications (default 127.0.0.1:4318; "" disables).
    #[arg(long, env = "SIGHTLINE_AGENT_OTLP_HTTP_ADDR")]
    pub otlp_http_addr: Option<String>,
}

/// `endpoint:` in the file: one URL (or a comma list) or a YAML list.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum EndpointSetting {
    One(String),
    Many(Vec<String>),
}

impl EndpointSetting {
    fn urls(&self) -> Vec<String> {
        match self {
            EndpointSetting::One(s) => crate::export::endpoints::split_list(s),
            EndpointSetting::Many(v) => v
                .iter()
                .flat_map(|s| crate::export::endpoints::split_list(s))
                .collect(),
        }
    }
}

/// The YAML file. Unknown keys are errors.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub endpoint: Option<EndpointSetting>,
    pub interval: Option<String>,
    pub token: Option<String>,
    pub tenant: Option<String>,
    pub tls_ca: Option<PathBuf>,
    pub compression: Option<String>,
    pub http_addr: Option<String>,
    pub listen_file: Option<PathBuf>,
    pub proc_root: Option<PathBuf>,
    pub sys_root: Option<PathBuf>,
    /// Overrides the host name used for `host.name` and `service.instance.id`.
    pub hostname: Option<String>,
    #[serde(default)]
    pub export: ExportSection,
    #[serde(default)]
    pub filesystem: FilesystemSection,
    pub data_dir: Option<PathBuf>,
    #[serde(default)]
    pub logs: crate::logs::config::LogsSection,
    #[serde(default)]
    pub containers: ContainersSection,
    #[serde(default)]
    pub buffer: crate::buffer::config::BufferSection,
    pub otlp_grpc_addr: Option<String>,
    pub otlp_http_addr: Option<String>,
    #[serde(default)]
    pub receiver: crate::receiver::config::ReceiverSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainersSection {
    /// Discover containers and collect their metrics (default true).
    pub enabled: Option<bool>,
    /// Default `/sys/fs/cgroup`.
    pub cgroup_root: Option<PathBuf>,
    /// Default `/var/log/pods`; an empty string disables it.
    pub pod_logs_root: Option<PathBuf>,
    /// `http://host:port` of the kubelet (none by default).
    pub kubelet_url: Option<String>,
    /// Bearer token file sent to the kubelet.
    pub kubelet_token_file: Option<PathBuf>,
    /// CA bundle for an `https://` kubelet_url.
    pub kubelet_ca_file: Option<PathBuf>,
    /// Accept any kubelet serving certificate (default false).
    #[serde(default)]
    pub kubelet_insecure_skip_verify: bool,
    /// Default `/var/run/docker.sock`; skipped when it does not exist.
    pub docker_socket: Option<PathBuf>,
    /// Container series per node before folding into the overflow series (default 20000).
    pub max_container_series: Option<usize>,
    /// Full rescan period under inotify (default 1s).
    pub rescan_interval: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportSection {
    /// Deadline of one export attempt (default 10s).
    pub timeout: Option<String>,
    /// Export queue capacity in batches (default 100); when full the oldest is dropped.
    pub queue_capacity: Option<usize>,
    /// Split collections into requests of at most this many bytes (default 4000000).
    pub max_request_bytes: Option<usize>,
    /// How long the final flush may take on SIGTERM/SIGINT (default 5s).
    pub shutdown_timeout: Option<String>,
    /// With several endpoints: how long a standby is used before the first endpoint is
    /// tried again (default 30s).
    pub failover_probe_interval: Option<String>,
    #[serde(default)]
    pub retry: RetrySection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySection {
    /// Default 1s.
    pub initial_backoff: Option<String>,
    /// Default 30s.
    pub max_backoff: Option<String>,
    /// Default 5m; a batch still failing after this is dropped.
    pub max_elapsed: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesystemSection {
    /// Report tmpfs mounts (default false).
    #[serde(default)]
    pub include_tmpfs: bool,
    /// Prefix for statvfs paths when the host root is mounted elsewhere.
    pub root_path: Option<PathBuf>,
}

/// The checked, typed configuration the agent runs with.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub exporter: ExporterConfig,
    pub interval: Duration,
    pub http_addr: String,
    pub listen_file: Option<PathBuf>,
    pub host: HostOptions,
    pub hostname: String,
    pub queue_capacity: usize,
    pub max_request_bytes: usize,
    pub shutdown_timeout: Duration,
    /// Container discovery and metrics; `None` when disabled.
    pub containers: Option<ContainerOptions>,
    /// Log tailing; `None` without a data dir.
    pub logs: Option<crate::logs::LogsConfig>,
    /// The disk buffer; `None` without a data dir (or when disabled).
    pub buffer: Option<crate::buffer::BufferConfig>,
    /// OTLP receiver for applications.
    pub receiver: crate::receiver::ReceiverConfig,
}

pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:9100";

/// Parse `10s`, `500ms`, `1m30s`, `2h` (units: ms, s, m, h).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("{text:?}: expected a number (e.g. 10s, 500ms, 1m)"));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("{text:?}: number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            "" => return Err(format!("{text:?}: missing unit (ms, s, m, h)")),
            other => return Err(format!("{text:?}: unknown unit {other:?} (ms, s, m, h)")),
        };
        total = total.saturating_add(unit);
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// Read and parse the YAML file.
pub fn load_file(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    if text.trim().is_empty() {
        return Ok(FileConfig::default());
    }
    serde_yaml::from_str(&text).map_err(|e| Error::Config(vec![format!("{}: {e}", path.display())]))
}

/// The kernel's host name.
pub fn system_hostname() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// Merge flags/environment over the file over defaults and check the result.
pub fn resolve(args: &RunArgs) -> Result<AgentConfig> {
    let file = match &args.config {
        Some(path) => load_file(path)?,
        None => FileConfig::default(),
    };
    let mut errors = Vec::new();
    let mut duration = |key: &str, value: Option<&str>, default: Duration| match value {
        None => default,
        Some(v) => parse_duration(v).unwrap_or_else(|e| {
            errors.push(format!("{key}: {e}"));
            default
        }),
    };
    let pick = |flag: &Option<String>, file: &Option<String>| flag.clone().or(file.clone());
    let interval = duration(
        "interval",
        pick(&args.interval, &file.interval).as_deref(),
        Duration::from_secs(10),
    );
    let timeout = duration(
        "export.timeout",
        file.export.timeout.as_deref(),
        Duration::from_secs(10),
    );
    let shutdown_timeout = duration(
        "export.shutdown_timeout",
        file.export.shutdown_timeout.as_deref(),
        Duration::from_secs(5),
    );
    let probe_interval = duration(
        "export.failover_probe_interval",
        file.export.failover_probe_interval.as_deref(),
        crate::export::endpoints::DEFAULT_PROBE_INTERVAL,
    );
    let defaults = RetryConfig::default();
    let retry = RetryConfig {
        initial_backoff: duration(
            "export.retry.initial_backoff",
            file.export.retry.initial_backoff.as_deref(),
            defaults.initial_backoff,
        ),
        max_backoff: duration(
            "export.retry.max_backoff",
            file.export.retry.max_backoff.as_deref(),
            defaults.max_backoff,
        ),
        max_elapsed: duration(
            "export.retry.max_elapsed",
            file.export.retry.max_elapsed.as_deref(),
            defaults.max_elapsed,
        ),
        jitter: Jitter::Full,
    };
    if interval < Duration::from_millis(100) {
        errors.push("interval: must be at least 100ms".into());
    }
    if timeout.is_zero() {
        errors.push("export.timeout: must be positive".into());
    }
    if retry.initial_backoff.is_zero() || retry.initial_backoff > retry.max_backoff {
        errors.push("export.retry: need 0 < initial_backoff <= max_backoff".into());
    }

    let endpoints: Vec<String> = if args.endpoint.is_empty() {
        file.endpoint.as_ref().map(|e| e.urls()).unwrap_or_default()
    } else {
        args.endpoint
            .iter()
            .flat_map(|e| crate::export::endpoints::split_list(e))
            .collect()
    };
    let endpoint = (!endpoints.is_empty()).then(|| endpoints.join(","));
    let tls_ca = args.tls_ca.clone().or(file.tls_ca.clone());
    if endpoints.is_empty() {
        errors.push(
            "endpoint: required (--endpoint, SIGHTLINE_AGENT_ENDPOINT or `endpoint:` in the file)"
                .into(),
        );
    }
    for e in &endpoints {
        let scheme_ok = e.starts_with("http://") || e.starts_with("https://");
        match e.parse::<Uri>() {
            Ok(uri) if scheme_ok && uri.host().is_some() => {}
            _ => errors.push(format!(
                "endpoint: {e:?} is not an http:// or https:// URL with a host"
            )),
        }
        if e.starts_with("http://") && tls_ca.is_some() {
            errors.push(format!(
                "tls_ca: given but the endpoint {e} is plain http://"
            ));
        }
    }
    if let Some(ca) = &tls_ca {
        if let Err(e) = std::fs::read(ca) {
            errors.push(format!("tls_ca: {}: {e}", ca.display()));
        }
    }
    let compression_text = pick(&args.compression, &file.compression);
    let compression = match compression_text.as_deref() {
        None => Compression::Zstd,
        Some(c) => Compression::parse(c).unwrap_or_else(|| {
            errors.push(format!("compression: {c:?} is not one of zstd, gzip, none"));
            Compression::Zstd
        }),
    };
    let token = pick(&args.token, &file.token);
    let tenant = pick(&args.tenant, &file.tenant);
    if let Some(t) = &token {
        if let Err(e) = header_value("token", &format!("Bearer {t}")) {
            errors.push(e);
        }
    }
    if let Some(t) = &tenant {
        if let Err(e) = header_value("tenant", t) {
            errors.push(e);
        }
    }
    let http_addr = pick(&args.http_addr, &file.http_addr).unwrap_or(DEFAULT_HTTP_ADDR.into());
    if http_addr.parse::<SocketAddr>().is_err() {
        errors.push(format!("http_addr: {http_addr:?} is not IP:PORT"));
    }
    let queue_capacity = file.export.queue_capacity.unwrap_or(100);
    if queue_capacity == 0 {
        errors.push("export.queue_capacity: must be at least 1".into());
    }
    let max_request_bytes = file.export.max_request_bytes.unwrap_or(4_000_000);
    if max_request_bytes < 4_096 {
        errors.push("export.max_request_bytes: must be at least 4096".into());
    }
    let proc_root = args
        .proc_root
        .clone()
        .or(file.proc_root.clone())
        .unwrap_or_else(|| PathBuf::from("/proc"));
    let sys_root = args
        .sys_root
        .clone()
        .or(file.sys_root.clone())
        .unwrap_or_else(|| PathBuf::from("/sys"));
    errors.extend(crate::host::check_roots(&proc_root, &sys_root));
    if let Some(root) = &file.filesystem.root_path {
        if !root.is_dir() {
            errors.push(format!(
                "filesystem.root_path: {} is not a directory",
                root.display()
            ));
        }
    }
    if let Some(listen) = args.listen_file.as_ref().or(file.listen_file.as_ref()) {
        let parent = listen.parent().filter(|p| !p.as_os_str().is_empty());
        if parent.is_some_and(|p| !p.is_dir()) {
            errors.push(format!(
                "listen_file: directory of {} does not exist",
                listen.display()
            ));
        }
    }
    let containers = resolve_containers(args, &file.containers, &proc_root, &sys_root, &mut errors);
    let hostname = file
        .hostname
        .clone()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(system_hostname);

    let data_dir = args.data_dir.clone().or(file.data_dir);
    let buffer = crate::buffer::config::resolve(file.buffer, data_dir.as_ref(), &mut errors);
    let receiver = crate::receiver::config::resolve(
        args.otlp_grpc_addr.clone().or(file.otlp_grpc_addr.clone()),
        args.otlp_http_addr.clone().or(file.otlp_http_addr.clone()),
        &file.receiver,
        &mut errors,
    );
    let logs =
        crate::logs::config::resolve(file.logs, data_dir, args.pod_logs_root.clone(), &mut errors);
    if !errors.is_empty() {
        return Err(Error::Config(errors));
    }
    Ok(AgentConfig {
        logs,
        buffer,
        receiver,
        exporter: ExporterConfig {
            endpoint: endpoint.unwrap_or_default(),
            probe_interval,
            compression,
            tls_ca,
            token,
            tenant,
            timeout,
            retry,
        },
        interval,
        http_addr,
        listen_file: args.listen_file.clone().or(file.listen_file),
        host: HostOptions {
            proc_root,
            sys_root,
            include_tmpfs: file.filesystem.include_tmpfs,
            filesystem_root: file.filesystem.root_path,
            self_proc: PathBuf::from("/proc/self"),
        },
        hostname,
        queue_capacity,
        max_request_bytes,
        shutdown_timeout,
        containers,
    })
}

fn resolve_containers(
    args: &RunArgs,
    section: &ContainersSection,
    proc_root: &Path,
    sys_root: &Path,
    errors: &mut Vec<String>,
) -> Option<ContainerOptions> {
    if section.enabled == Some(false) {
        return None;
    }
    let defaults = ContainerOptions::default();
    let explicit_root = args.cgroup_root.clone().or(section.cgroup_root.clone());
    let cgroup_root = explicit_root.clone().unwrap_or(defaults.cgroup_root);
    if explicit_root.is_some() || section.enabled == Some(true) {
        if let Err(e) = crate::containers::discovery::Layout::detect(&cgroup_root) {
            errors.push(format!("containers.cgroup_root: {e}"));
        }
    }
    let non_empty = |p: PathBuf| (!p.as_os_str().is_empty()).then_some(p);
    let pod_logs_root = match args.pod_logs_root.clone().or(section.pod_logs_root.clone()) {
        Some(p) => non_empty(p),
        None => defaults.metadata.pod_logs_root,
    };
    let docker_socket = match args.docker_socket.clone().or(section.docker_socket.clone()) {
        Some(p) => non_empty(p),
        None => defaults.metadata.docker_socket,
    };
    let kubelet_url = args
        .kubelet_url
        .clone()
        .or(section.kubelet_url.clone())
        .filter(|u| !u.is_empty());
    if let Some(url) = &kubelet_url {
        match crate::containers::http_get::split_http_url(url) {
            Err(e) => errors.push(format!("containers.kubelet_url: {e}")),
            Ok((_, _, true)) => {
                if let Err(e) = crate::containers::kubelet_tls::client_config(
                    section.kubelet_ca_file.as_deref(),
                    section.kubelet_insecure_skip_verify,
                ) {
                    errors.push(format!("containers.kubelet_url: {e}"));
                }
            }
            Ok(_) => {}
        }
    }
    if let Some(token) = &section.kubelet_token_file {
        if let Err(e) = std::fs::read(token) {
            errors.push(format!(
                "containers.kubelet_token_file: {}: {e}",
                token.display()
            ));
        }
    }
    let max_series = section.max_container_series.unwrap_or(defaults.max_series);
    if max_series == 0 {
        errors.push("containers.max_container_series: must be at least 1".into());
    }
    let rescan_interval = match section.rescan_interval.as_deref() {
        None => defaults.rescan_interval,
        Some(text) => match parse_duration(text) {
            Ok(d) if d >= Duration::from_millis(100) => d,
            Ok(_) => {
                errors.push("containers.rescan_interval: must be at least 100ms".into());
                defaults.rescan_interval
            }
            Err(e) => {
                errors.push(format!("containers.rescan_interval: {e}"));
                defaults.rescan_interval
            }
        },
    };
    Some(ContainerOptions {
        cgroup_root,
        proc_root: proc_root.to_path_buf(),
        sys_root: sys_root.to_path_buf(),
        metadata: MetadataOptions {
            pod_logs_root,
            kubelet_url,
            kubelet_token_file: section.kubelet_token_file.clone(),
            kubelet_ca_file: section.kubelet_ca_file.clone(),
            kubelet_insecure_skip_verify: section.kubelet_insecure_skip_verify,
            docker_socket,
        },
        max_series,
        rescan_interval,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(endpoint: &str) -> RunArgs {
        RunArgs {
            endpoint: vec![endpoint.into()],
            ..RunArgs::default()
        }
    }

    fn write_config(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.yaml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        for bad in ["", "10", "s", "10x", "1.5s", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn defaults() {
        let c = resolve(&args("http://127.0.0.1:4317")).unwrap();
        assert_eq!(c.interval, Duration::from_secs(10));
        assert_eq!(c.exporter.compression, Compression::Zstd);
        assert_eq!(c.http_addr, DEFAULT_HTTP_ADDR);
        assert_eq!(c.host.proc_root, PathBuf::from("/proc"));
        assert_eq!(c.queue_capacity, 100);
        assert!(!c.hostname.is_empty());
    }

    #[test]
    fn file_then_flags_override() {
        let (_d, path) = write_config(
            "endpoint: http://file:4317\ninterval: 30s\ncompression: gzip\ntenant: a\n\
             hostname: node-7\nexport:\n  queue_capacity: 3\n  retry:\n    max_elapsed: 1m\n\
             filesystem:\n  include_tmpfs: true\n",
        );
        let mut a = args("http://flag:4317");
        a.config = Some(path);
        a.interval = Some("2s".into());
        let c = resolve(&a).unwrap();
        assert_eq!(c.exporter.endpoint, "http://flag:4317");
        assert_eq!(c.interval, Duration::from_secs(2));
        assert_eq!(c.exporter.compression, Compression::Gzip);
        assert_eq!(c.exporter.tenant.as_deref(), Some("a"));
        assert_eq!(c.hostname, "node-7");
        assert_eq!(c.queue_capacity, 3);
        assert_eq!(c.exporter.retry.max_elapsed, Duration::from_secs(60));
        assert!(c.host.include_tmpfs);
    }

    #[test]
    fn containers_section_and_flags() {
        let c = resolve(&args("http://127.0.0.1:4317")).unwrap();
        let opts = c.containers.unwrap();
        assert_eq!(opts.cgroup_root, PathBuf::from("/sys/fs/cgroup"));
        assert_eq!(opts.max_series, 20_000);
        assert_eq!(opts.metadata.kubelet_url, None);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cgroup.controllers"), "cpu memory").unwrap();
        let (_d, path) = write_config(&format!(
            "endpoint: http://x:1\ncontainers:\n  cgroup_root: {}\n  pod_logs_root: \"\"\n  \
             kubelet_url: http://127.0.0.1:10255\n  max_container_series: 50\n  rescan_interval: 500ms\n",
            dir.path().display()
        ));
        let mut a = args("http://127.0.0.1:4317");
        a.config = Some(path);
        a.docker_socket = Some("/run/other.sock".into());
        let opts = resolve(&a).unwrap().containers.unwrap();
        assert_eq!(opts.cgroup_root, dir.path());
        assert_eq!(opts.metadata.pod_logs_root, None);
        assert_eq!(
            opts.metadata.docker_socket,
            Some(PathBuf::from("/run/other.sock"))
        );
        assert_eq!(opts.max_series, 50);
        assert_eq!(opts.rescan_interval, Duration::from_millis(500));
        let (_d, path) = write_config(
            "endpoint: http://x:1\ncontainers:\n  cgroup_root: /nonexistent\n  \
             kubelet_url: ftp://node:10250\n  max_container_series: 0\n",
        );
        let mut a = args("http://127.0.0.1:4317");
        a.config = Some(path);
        let err = resolve(&a).unwrap_err().to_string();
        for want in ["cgroup_root", "kubelet_url", "max_container_series"] {
            assert!(err.contains(want), "{want} not in {err}");
        }
        let (_d, path) = write_config("endpoint: http://x:1\ncontainers:\n  enabled: false\n");
        let mut a = args("http://127.0.0.1:4317");
        a.config = Some(path);
        assert!(resolve(&a).unwrap().containers.is_none());
    }

    #[test]
    fn several_endpoints_and_receiver_addresses() {
        let (_d, path) = write_config(
            "endpoint: [http://a:4317, http://b:4317]\notlp_grpc_addr: \"\"\n\
             export:\n  failover_probe_interval: 2s\nreceiver:\n  queue_capacity: 5\n",
        );
        let c = resolve(&RunArgs {
            config: Some(path.clone()),
            ..RunArgs::default()
        })
        .unwrap();
        assert_eq!(c.exporter.endpoint, "http://a:4317,http://b:4317");
        assert_eq!(c.exporter.probe_interval, Duration::from_secs(2));
        assert_eq!(c.receiver.grpc_addr, None);
        assert_eq!(c.receiver.http_addr.as_deref(), Some("127.0.0.1:4318"));
        assert_eq!(c.receiver.queue_capacity, 5);
        let cli = Cli::try_parse_from([
            "sightline-agent",
            "--endpoint",
            "http://x:1",
            "--endpoint",
            "http://y:2,http://z:3",
            "--otlp-http-addr",
            "0.0.0.0:4318",
        ])
        .unwrap();
        let mut a = cli.run;
        a.config = Some(path);
        let c = resolve(&a).unwrap();
        assert_eq!(c.exporter.endpoint, "http://x:1,http://y:2,http://z:3");
        assert_eq!(c.receiver.http_addr.as_deref(), Some("0.0.0.0:4318"));
        let err = resolve(&RunArgs {
            endpoint: vec!["http://ok:1".into(), "ftp://bad".into()],
            otlp_grpc_addr: Some("nope".into()),
            ..RunArgs::default()
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("ftp://bad") && err.contains("otlp_grpc_addr"),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let (_d, path) = write_config("endpoint: http://x:1\nintervall: 5s\n");
        let err = load_file(&path).unwrap_err().to_string();
        assert!(err.contains("intervall"), "{err}");
        let (_d, path) = write_config("export:\n  retries: 3\n");
        assert!(load_file(&path).is_err());
    }

    #[test]
    fn reports_every_problem_at_once() {
        let a = RunArgs {
            endpoint: vec!["ftp://x".into()],
            interval: Some("soon".into()),
            compression: Some("lz4".into()),
            http_addr: Some("localhost".into()),
            tenant: Some("bad\nvalue".into()),
            tls_ca: Some("/nonexistent/ca.pem".into()),
            proc_root: Some("/nonexistent/proc".into()),
            ..RunArgs::default()
        };
        let Err(Error::Config(problems)) = resolve(&a) else {
            panic!("must fail")
        };
        let all = problems.join("\n");
        for needle in [
            "endpoint",
            "interval",
            "compression",
            "http_addr",
            "tenant",
            "tls_ca",
            "proc_root",
        ] {
            assert!(all.contains(needle), "{needle} not in {all}");
        }
        let Err(Error::Config(problems)) = resolve(&RunArgs::default()) else {
            panic!("endpoint is required")
        };
        assert!(problems[0].contains("endpoint: required"));
    }

    #[test]
    fn example_config_is_valid() {
        let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/agent.example.yaml"));
        let c = resolve(&RunArgs {
            config: Some(path),
            ..RunArgs::default()
        })
        .unwrap();
        assert_eq!(c.exporter.endpoint, "http://127.0.0.1:4317");
        assert_eq!(c.exporter.retry.max_elapsed, Duration::from_secs(300));
        assert_eq!(c.max_request_bytes, 4_000_000);
    }

    #[test]
    fn cli_contract() {
        let cli = Cli::try_parse_from([
            "sightline-agent",
            "--endpoint",
            "http://127.0.0.1:4317",
            "--interval",
            "1s",
            "--token",
            "t",
            "--tenant",
            "x",
            "--compression",
            "none",
            "--http-addr",
            "127.0.0.1:0",
            "--listen-file",
            "/tmp/l.json",
            "--proc-root",
            "/proc",
            "--sys-root",
            "/sys",
        ])
        .unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.run.http_addr.as_deref(), Some("127.0.0.1:0"));
        let cli = Cli::try_parse_from(["sightline-agent", "validate", "--config", "/tmp/a.yaml"])
            .unwrap();
        assert!(matches!(cli.command, Some(Command::Validate(a)) if a.config.is_some()));
    }
}
