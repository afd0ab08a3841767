//! Shared pieces of the delivery tests: a collector that restarts on the same ports and
//! data dir, an agent that restarts on the same data dir (its disk buffer and log
//! checkpoints), a real writer process (python3) appending CRI lines with rotation, and
//! reading every stored line back through the Loki API to check count and content.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sightline_e2e::binaries;
use sightline_e2e::http_api::Http;
use sightline_e2e::metrics_text::Scrape;
use sightline_e2e::wait_for;

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed by PID (SIGKILL) on drop; its stderr goes to a file.
pub struct Proc {
    pub name: String,
    pub child: Child,
    pub stderr_path: PathBuf,
}

impl Proc {
    pub fn spawn(name: &str, mut cmd: Command, dir: &Path) -> Proc {
        let n = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
        let stderr_path = dir.join(format!("{name}-{n}.stderr"));
        cmd.stdin(Stdio::null())
            .stdout(std::fs::File::create(dir.join(format!("{name}-{n}.stdout"))).unwrap())
            .stderr(std::fs::File::create(&stderr_path).unwrap());
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        Proc {
            name: name.into(),
            child,
            stderr_path,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            let err = self.stderr();
            let tail: Vec<&str> = err.lines().rev().take(30).collect();
            panic!(
                "{} exited with {status}:\n{}",
                self.name,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait (bounded) for the exit.
    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let child = &mut self.child;
        wait_for(
            &format!("{} to exit after SIGTERM", self.name),
            Duration::from_secs(60),
            || child.try_wait().ok().flatten(),
        );
    }

    /// Resident set size from /proc/<pid>/status, in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let err = self.stderr();
            let tail: Vec<&str> = err.lines().rev().take(40).collect();
            eprintln!(
                "--- {} (pid {}) stderr tail ---\n{}",
                self.name,
                self.pid(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        self.kill();
    }
}

fn read_listen_file(proc: &mut Proc, path: &Path, keys: &[&str]) -> BTreeMap<String, String> {
    wait_for(
        &format!("{} listen file", proc.name),
        Duration::from_secs(120),
        || {
            proc.assert_running();
            let text = std::fs::read_to_string(path).ok()?;
            let map: BTreeMap<String, serde_json::Value> = serde_json::from_str(&text).ok()?;
            let mut out = BTreeMap::new();
            for k in keys {
                out.insert(k.to_string(), map.get(*k)?.as_str()?.to_string());
            }
            Some(out)
        },
    )
}

/// A collector bound to fixed ports so the agent's endpoint survives restarts.
pub struct FixedCollector {
    pub root: PathBuf,
    pub grpc_port: u16,
    pub http_port: u16,
    pub config_yaml: String,
    pub proc: Option<Proc>,
}

impl FixedCollector {
    pub fn new(root: &Path, config_yaml: &str) -> FixedCollector {
        std::fs::create_dir_all(root).unwrap();
        FixedCollector {
            root: root.to_path_buf(),
            grpc_port: free_port(),
            http_port: free_port(),
            config_yaml: config_yaml.into(),
            proc: None,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }

    pub fn http(&self) -> Http {
        Http::new(&format!("http://127.0.0.1:{}", self.http_port))
    }

    /// Start (or restart) on the same data dir and ports; waits for readiness.
    pub fn start(&mut self) {
        assert!(self.proc.is_none(), "already running");
        let listen = self.root.join("listen.json");
        let _ = std::fs::remove_file(&listen);
        let config = self.root.join("config.yaml");
        std::fs::write(&config, &self.config_yaml).unwrap();
        let mut cmd = Command::new(binaries::collector());
        cmd.arg("run")
            .arg("--data-dir")
            .arg(self.root.join("data"))
            .arg("--config")
            .arg(&config)
            .args([
                "--grpc-addr",
                &format!("127.0.0.1:{}", self.grpc_port),
                "--otlp-http-addr",
                "127.0.0.1:0",
                "--http-addr",
                &format!("127.0.0.1:{}", self.http_port),
            ])
            .arg("--listen-file")
            .arg(&listen)
            .env("RUST_LOG", "info");
        let mut p = Proc::spawn("collector", cmd, &self.root);
        read_listen_file(&mut p, &listen, &["grpc", "http"]);
        let http = self.http();
        wait_for("collector ready", Duration::from_secs(120), || {
            http.get("/-/ready", &[], &[])
                .ok()
                .filter(|r| r.status == 200)
        });
        self.proc = Some(p);
    }

    pub fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    pub fn duplicates_dropped(&self) -> f64 {
        Scrape::fetch(&self.http()).sum("sightline_collector_log_duplicates_dropped_total", &[])
    }
}

/// An agent on a fixed data dir (buffer and checkpoints survive restarts).
pub struct AgentRun {
    pub root: PathBuf,
    pub endpoint: String,
    pub config_yaml: String,
    pub proc: Option<Proc>,
    pub http: Option<Http>,
}

impl AgentRun {
    /// `root/pods` is the pod log root, `root/agent-data` the data dir.
    pub fn new(root: &Path, endpoint: &str, config_yaml: &str) -> AgentRun {
        std::fs::create_dir_all(root).unwrap();
        AgentRun {
            root: root.to_path_buf(),
            endpoint: endpoint.into(),
            config_yaml: config_yaml.into(),
            proc: None,
            http: None,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root.join("agent-data")
    }

    pub fn buffer_dir(&self) -> PathBuf {
        self.data_dir().join("buffer")
    }

    pub fn start(&mut self) {
        assert!(self.proc.is_none(), "already running");
        let listen = self.root.join("agent-listen.json");
        let _ = std::fs::remove_file(&listen);
        let config = self.root.join("agent.yaml");
        std::fs::write(&config, &self.config_yaml).unwrap();
        let mut cmd = Command::new(binaries::agent());
        cmd.arg("--config")
            .arg(&config)
            .args(["--endpoint", &self.endpoint, "--http-addr", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--pod-logs-root")
            .arg(self.root.join("pods"))
            .arg("--listen-file")
            .arg(&listen)
            .env("RUST_LOG", "info");
        let mut p = Proc::spawn("agent", cmd, &self.root);
        let addrs = read_listen_file(&mut p, &listen, &["http"]);
        self.http = Some(Http::new(&format!("http://{}", addrs["http"])));
        self.proc = Some(p);
    }

    pub fn scrape(&self) -> Scrape {
        Scrape::fetch(self.http.as_ref().unwrap())
    }

    pub fn metric(&self, name: &str, filter: &[(&str, &str)]) -> f64 {
        // + 0.0: an empty sum is -0.0
        self.scrape().sum(name, filter) + 0.0
    }

    pub fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    pub fn terminate(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.terminate();
        }
    }
}

const WRITER_PY: &str = r#"
import os, shutil, sys, time
d, total, rate, rotate_every, base_ns, style = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
path = os.path.join(d, "0.log")
f = open(path, "a", buffering=1 << 16)
start = time.monotonic()
k = 0
for n in range(total):
    s, ns = divmod(base_ns + n * 1000, 10**9)
    f.write("%s.%09dZ stdout F %s\n" % (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)), ns, "seq=%d payload %s" % (n, "x" * (n % 50))))
    if rotate_every and n > 0 and n % rotate_every == 0:
        f.flush()
        k += 1
        st = style if style != "alternate" else ("rename" if k % 2 == 1 else "copytruncate")
        rotated = path + ".%06d" % k
        if st == "rename":
            f.close()
            os.rename(path, rotated)
            f = open(path, "a", buffering=1 << 16)
        else:
            shutil.copyfile(path, rotated)
            os.truncate(path, 0)
    if n % 200 == 0:
        f.flush()
        due = n / rate - (time.monotonic() - start)
        if due > 0:
            time.sleep(due)
f.flush()
f.close()
print("done", k, flush=True)
"#;

/// The body the writer gives line `n`.
pub fn body(n: u64) -> String {
    format!("seq={n} payload {}", "x".repeat((n % 50) as usize))
}

/// Start the writer process: `total` lines at `rate`/s into `dir/0.log`, rotating every
/// `rotate_every` lines (0 = never) with `style` rename | copytruncate | alternate.
/// Line `n` has the CRI time `base_ns + n µs`.
pub fn spawn_writer(
    dir: &Path,
    total: u64,
    rate: u64,
    rotate_every: u64,
    base_ns: i64,
    style: &str,
) -> Proc {
    std::fs::create_dir_all(dir).unwrap();
    let script = dir.parent().unwrap().join("writer.py");
    std::fs::write(&script, WRITER_PY).unwrap();
    let mut cmd = Command::new("python3");
    cmd.arg(&script).arg(dir).args([
        total.to_string(),
        rate.to_string(),
        rotate_every.to_string(),
        base_ns.to_string(),
        style.to_string(),
    ]);
    Proc::spawn("writer", cmd, dir.parent().unwrap())
}

/// Wait (bounded) for the writer to finish; panics if it failed.
pub fn wait_writer(w: &mut Proc, timeout: Duration) {
    let status = wait_for("writer to finish", timeout, || {
        w.child.try_wait().ok().flatten()
    });
    assert!(status.success(), "writer failed: {}", w.stderr());
}

/// Lines stored for the writer's run, by sequence number (a line stored twice appears
/// twice), read through the Loki API in time windows of 20k lines.
pub fn stored_lines(http: &Http, base_ns: i64, total: u64) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let step = 20_000u64;
    let mut from = 0u64;
    while from < total {
        let to = (from + step).min(total);
        let streams = http.loki_query_range(
            "{service_name=\"sightline-agent\"}",
            base_ns + (from * 1000) as i64,
            base_ns + (to * 1000) as i64 - 1,
            50_000,
        );
        let n: usize = streams.iter().map(|s| s.values.len()).sum();
        assert!(n < 50_000, "window {from}..{to}: limit reached ({n} lines)");
        for s in streams {
            for (_, line) in s.values {
                let seq = line
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("seq="))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(u64::MAX);
                out.push((seq, line));
            }
        }
        from = to;
    }
    out
}

/// FNV-1a over lines in sequence order.
pub fn content_hash<'a>(lines: impl Iterator<Item = &'a str>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for l in lines {
        for b in l.bytes().chain(std::iter::once(b'\n')) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// Count, duplicates and missing sequence numbers of what was stored.
#[derive(Debug)]
pub struct Delivery {
    pub stored: usize,
    pub distinct: usize,
    pub duplicates: usize,
    pub missing: Vec<u64>,
    pub hash: u64,
    pub expected_hash: u64,
}

pub fn check(lines: &[(u64, String)], total: u64) -> Delivery {
    let mut sorted: Vec<&(u64, String)> = lines.iter().collect();
    sorted.sort();
    let mut distinct: Vec<&(u64, String)> = sorted.clone();
    distinct.dedup();
    let seqs: std::collections::BTreeSet<u64> = distinct.iter().map(|(s, _)| *s).collect();
    let missing: Vec<u64> = (0..total).filter(|n| !seqs.contains(n)).collect();
    Delivery {
        stored: lines.len(),
        distinct: distinct.len(),
        duplicates: lines.len() - distinct.len(),
        missing,
        hash: content_hash(sorted.iter().map(|(_, l)| l.as_str())),
        expected_hash: content_hash(
            (0..total)
                .map(body)
                .collect::<Vec<_>>()
                .iter()
                .map(String::as_str),
        ),
    }
}

/// Agent config used by the delivery tests (host metrics every second, no container
/// discovery, fast log polling); `buffer` is appended under `buffer:`.
pub fn agent_yaml(buffer: &str) -> String {
    format!(
        "interval: 1s\ncontainers:\n  enabled: false\nlogs:\n  poll_interval: 20ms\n  docker_root: \"\"\n  batch:\n    max_records: 1000\n    timeout: 100ms\nexport:\n  retry:\n    initial_backoff: 100ms\n    max_backoff: 1s\nbuffer:\n{buffer}"
    )
}
