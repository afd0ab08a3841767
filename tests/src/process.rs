//! Running the real binaries: a fresh temp dir, port 0 everywhere, a bounded wait for
//! the listen file, and SIGKILL by PID when the handle drops.
//!
//! stdout and stderr of each start go to files in the temp dir
//! (`collector-<n>.stderr`); when a test panics while a process is alive, the tail of
//! its stderr is printed so the failure explains itself.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::binaries;
use crate::http_api::Http;

/// Upper bound for a binary to become ready (WAL replay included).
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running child process, killed (SIGKILL, by PID) on drop.
pub struct Process {
    name: String,
    child: Child,
    stderr_path: PathBuf,
}

impl Process {
    fn spawn(name: &str, mut cmd: Command, dir: &Path, seq: usize) -> Process {
        let stderr_path = dir.join(format!("{name}-{seq}.stderr"));
        let stdout_path = dir.join(format!("{name}-{seq}.stdout"));
        cmd.stdin(Stdio::null())
            .stdout(File::create(&stdout_path).expect("create stdout file"))
            .stderr(File::create(&stderr_path).expect("create stderr file"));
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        Process {
            name: name.to_string(),
            child,
            stderr_path,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Panics with the stderr tail if the process has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} exited with {status}; stderr tail:\n{}",
                self.name,
                tail(&self.stderr(), 40)
            );
        }
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait up to `timeout` for the exit; returns the exit code
    /// (None when killed by a signal). Panics if the process does not stop in time.
    pub fn terminate(&mut self, timeout: Duration) -> Option<i32> {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill -TERM");
        assert!(status.success(), "kill -TERM {} failed", self.pid());
        let status = crate::wait_for(
            &format!("{} to exit after SIGTERM", self.name),
            timeout,
            || self.child.try_wait().ok().flatten(),
        );
        status.code()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if std::thread::panicking() && self.is_running() {
            eprintln!(
                "--- {} (pid {}) stderr tail ---\n{}",
                self.name,
                self.pid(),
                tail(&self.stderr(), 60)
            );
        }
        self.kill();
    }
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Waits (bounded) for `path` to hold a JSON object with all of `keys`; fails early
/// when the process exits first.
fn wait_listen_file(proc: &mut Process, path: &Path, keys: &[&str]) -> BTreeMap<String, String> {
    let what = format!("{} to write its listen file {}", proc.name, path.display());
    crate::wait_for(&what, READY_TIMEOUT, || {
        proc.assert_running();
        let text = std::fs::read_to_string(path).ok()?;
        let map: BTreeMap<String, serde_json::Value> = serde_json::from_str(&text).ok()?;
        let mut out = BTreeMap::new();
        for key in keys {
            out.insert(key.to_string(), map.get(*key)?.as_str()?.to_string());
        }
        Some(out)
    })
}

/// Options for starting a collector.
#[derive(Clone, Debug, Default)]
pub struct CollectorOptions {
    /// YAML written to `config.yaml` and passed with `--config`.
    pub config_yaml: Option<String>,
    /// Data directory to use instead of a fresh one (to restart on the same data).
    pub data_dir: Option<PathBuf>,
    /// Extra environment variables (e.g. `RUST_LOG`).
    pub env: Vec<(String, String)>,
    /// OTLP/gRPC listen address instead of `127.0.0.1:0` (to restart on the same port).
    pub grpc_addr: Option<String>,
}

/// Addresses a running collector reported in its listen file.
#[derive(Clone, Debug)]
pub struct CollectorAddrs {
    pub grpc: String,
    pub otlp_http: String,
    pub http: String,
}

/// A running `sightline-collector run`.
pub struct Collector {
    pub process: Process,
    pub addrs: CollectorAddrs,
    pub data_dir: PathBuf,
    // Keeps the temp dir (logs, listen file, config, maybe data) alive while running.
    _dir: tempfile::TempDir,
}

impl Collector {
    /// A collector on a fresh data dir with the default configuration.
    pub fn start() -> Collector {
        Collector::start_with(CollectorOptions::default())
    }

    pub fn start_with(opts: CollectorOptions) -> Collector {
        let dir = tempfile::Builder::new()
            .prefix("sightline-collector-")
            .tempdir()
            .expect("temp dir");
        let data_dir = opts
            .data_dir
            .clone()
            .unwrap_or_else(|| dir.path().join("data"));
        let listen_file = dir.path().join("listen.json");
        let mut cmd = Command::new(binaries::collector());
        cmd.arg("run")
            .arg("--data-dir")
            .arg(&data_dir)
            .args([
                "--grpc-addr",
                opts.grpc_addr.as_deref().unwrap_or("127.0.0.1:0"),
                "--otlp-http-addr",
                "127.0.0.1:0",
                "--http-addr",
                "127.0.0.1:0",
            ])
            .arg("--listen-file")
            .arg(&listen_file);
        if let Some(yaml) = &opts.config_yaml {
            let path = dir.path().join("config.yaml");
            std::fs::write(&path, yaml).expect("write collector config");
            cmd.arg("--config").arg(&path);
        }
        if !opts.env.iter().any(|(k, _)| k == "RUST_LOG") {
            cmd.env("RUST_LOG", "info");
        }
        cmd.envs(opts.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let mut process = Process::spawn("collector", cmd, dir.path(), 0);
        let addrs = wait_listen_file(&mut process, &listen_file, &["grpc", "otlp_http", "http"]);
        let addrs = CollectorAddrs {
            grpc: addrs["grpc"].clone(),
            otlp_http: addrs["otlp_http"].clone(),
            http: addrs["http"].clone(),
        };
        let collector = Collector {
            process,
            addrs,
            data_dir,
            _dir: dir,
        };
        let http = collector.http();
        crate::wait_for("collector /-/ready to answer 200", READY_TIMEOUT, || {
            http.get("/-/ready", &[], &[])
                .ok()
                .filter(|r| r.status == 200)
        });
        collector
    }

    /// HTTP client for the main HTTP port (APIs, /metrics, remote write).
    pub fn http(&self) -> Http {
        Http::new(&format!("http://{}", self.addrs.http))
    }

    /// HTTP client for the OTLP/HTTP port.
    pub fn otlp_http(&self) -> Http {
        Http::new(&format!("http://{}", self.addrs.otlp_http))
    }

    /// `http://host:port` of the OTLP/gRPC listener.
    pub fn grpc_endpoint(&self) -> String {
        format!("http://{}", self.addrs.grpc)
    }

    pub fn stderr(&self) -> String {
        self.process.stderr()
    }
}

/// A running `sightline-agent`.
pub struct Agent {
    pub process: Process,
    pub http_addr: String,
    /// The agent's OTLP receiver for applications (gRPC `host:port`), when listening.
    pub otlp_grpc: Option<String>,
    /// The agent's OTLP/HTTP receiver (`host:port`), when listening.
    pub otlp_http: Option<String>,
    _dir: tempfile::TempDir,
}

impl Agent {
    /// An agent shipping to `grpc_endpoint` every `interval` (e.g. "1s"); `extra_args`
    /// are appended to the command line (with `--http-addr` among them, /metrics listens
    /// there instead of on a free port).
    pub fn start(grpc_endpoint: &str, interval: &str, extra_args: &[&str]) -> Agent {
        let dir = tempfile::Builder::new()
            .prefix("sightline-agent-")
            .tempdir()
            .expect("temp dir");
        let listen_file = dir.path().join("listen.json");
        let mut cmd = Command::new(binaries::agent());
        cmd.args(["--endpoint", grpc_endpoint, "--interval", interval])
            .arg("--listen-file")
            .arg(&listen_file)
            .args(extra_args)
            // /metrics and the OTLP receiver for applications on free ports unless the
            // test chose.
            .args(
                ["--http-addr", "--otlp-grpc-addr", "--otlp-http-addr"]
                    .into_iter()
                    .filter(|flag| !extra_args.contains(flag))
                    .flat_map(|flag| [flag, "127.0.0.1:0"]),
            )
            .env("RUST_LOG", "info")
            // The agent's disk buffer, if it keeps one, stays inside the temp dir.
            .env("SIGHTLINE_DATA_DIR", dir.path().join("data"))
            .current_dir(dir.path());
        let mut process = Process::spawn("agent", cmd, dir.path(), 0);
        let addrs = wait_listen_file(&mut process, &listen_file, &["http"]);
        let optional = |key: &str| {
            let text = std::fs::read_to_string(&listen_file).ok()?;
            let v: serde_json::Value = serde_json::from_str(&text).ok()?;
            v.get(key)?.as_str().map(str::to_string)
        };
        Agent {
            otlp_grpc: optional("otlp_grpc"),
            otlp_http: optional("otlp_http"),
            process,
            http_addr: addrs["http"].clone(),
            _dir: dir,
        }
    }

    pub fn http(&self) -> Http {
        Http::new(&format!("http://{}", self.http_addr))
    }
}

/// A data dir that outlives collector restarts (crash tests).
pub fn persistent_data_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("sightline-data-")
        .tempdir()
        .expect("temp dir")
}
