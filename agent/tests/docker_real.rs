//! A real Docker Engine: Debian's `dockerd` started by the test (own PID, data root, exec
//! root and unix socket in a temp dir; no iptables, no bridge), an image built offline
//! (`docker import` of a root filesystem holding the static busybox), and one container
//! that writes log lines to stdout and burns a little CPU. The real agent binary runs with
//! `--docker-socket` on that daemon and ships to a real `sightline-collector`. Checked:
//! - discovery: `GET /inventory` lists the container under its id with the name and the
//!   image the Docker API reports;
//! - metrics: the collector answers PromQL for the container's CPU time (growing) and
//!   memory, labelled with `container_name` and `container_image_name` (the image
//!   reference without its tag, as the OpenTelemetry conventions split it);
//! - logs: the container's json-file log lines are in the collector's Loki API.
//!
//! Needs root, cgroup v1 or v2 mounted, the packages `docker.io` and `busybox-static`
//! (CI installs them) and the collector binary built next to the agent's
//! (`cargo build --bins`). When any of it is missing, or the daemon cannot start on
//! this kernel, the test fails and says which and how to fix it; it never skips.

#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const BUSYBOX: &str = "/bin/busybox";

/// A process stopped by its PID on drop: SIGTERM, then SIGKILL after `grace`.
struct Proc {
    child: Child,
    grace: Duration,
}

impl Proc {
    fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).unwrap()
    }

    fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.exited() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let t0 = Instant::now();
        while t0.elapsed() < self.grace {
            if self.exited() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The daemon and the containers it runs, removed before the daemon stops.
struct Docker {
    host: String,
    containers: Vec<String>,
    data_root: PathBuf,
    log: PathBuf,
    daemon: Option<Proc>,
}

impl Docker {
    fn cli(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .arg("-H")
            .arg(&self.host)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                panic!("running the docker CLI: {e} (apt-get install -y docker.io)")
            })
    }

    fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "docker {args:?} failed: {}\n{}\ndockerd log tail:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            tail(&self.log, 30)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        for c in std::mem::take(&mut self.containers) {
            let _ = self.cli(&["rm", "-f", &c]);
        }
        // dockerd unmounts its layers and stops its containerd on SIGTERM.
        self.daemon.take();
    }
}

fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn require_tool(name: &str, package: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!("{name} not found: this test needs the Debian package {package} (apt-get install -y {package}; .ci/run installs it)")
    })
}

/// Start dockerd in `dir`; with `storage_driver` None first, `vfs` if overlay fails.
fn start_docker(dir: &Path) -> Docker {
    require_tool("dockerd", "docker.io");
    require_tool("docker", "docker.io");
    let mut failures = Vec::new();
    for driver in [None, Some("vfs")] {
        let name = driver.unwrap_or("default");
        let root = dir.join(format!("docker-{name}"));
        std::fs::create_dir_all(&root).unwrap();
        let sock = root.join("docker.sock");
        let log = root.join("dockerd.log");
        let mut cmd = Command::new("dockerd");
        cmd.arg("--data-root")
            .arg(root.join("data"))
            .arg("--exec-root")
            .arg(root.join("exec"))
            .arg("--pidfile")
            .arg(root.join("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", sock.display()))
            .args([
                "--iptables=false",
                "--ip6tables=false",
                "--ip-masq=false",
                "--bridge=none",
            ]);
        if let Some(d) = driver {
            cmd.args(["--storage-driver", d]);
        }
        let out = std::fs::File::create(&log).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("starting dockerd: {e}"));
        let mut docker = Docker {
            host: format!("unix://{}", sock.display()),
            containers: Vec::new(),
            data_root: root.join("data"),
            log: log.clone(),
            daemon: Some(Proc {
                child,
                grace: Duration::from_secs(20),
            }),
        };
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(30) {
            if docker.daemon.as_mut().unwrap().exited() {
                break;
            }
            if sock.exists() && docker.cli(&["version"]).status.success() {
                let info = docker.cli_ok(&["info", "--format", "{{.Driver}} {{.CgroupVersion}}"]);
                eprintln!("dockerd up: storage driver and cgroup version: {info}");
                return docker;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        failures.push(format!(
            "dockerd (storage driver {name}) did not become ready within 30 s:\n{}",
            tail(&log, 20)
        ));
    }
    panic!(
        "Docker's daemon cannot run on this machine, so the real-container test cannot run:\n{}",
        failures.join("\n---\n")
    );
}

/// `docker import` of a root filesystem holding the static busybox and its applets.
fn build_image(docker: &Docker, dir: &Path, tag: &str) -> String {
    let busybox = Path::new(BUSYBOX);
    assert!(
        busybox.is_file(),
        "{BUSYBOX} not found: this test needs the Debian package busybox-static \
         (apt-get install -y busybox-static; .ci/run installs it)"
    );
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::create_dir_all(rootfs.join("tmp")).unwrap();
    std::fs::copy(busybox, rootfs.join("bin/busybox")).unwrap();
    for applet in ["sh", "echo", "sleep", "cat", "true"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
    }
    let tar = dir.join("rootfs.tar");
    let out = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tar: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let image = format!("sightline-test/busybox:{tag}");
    docker.cli_ok(&["import", tar.to_str().unwrap(), &image]);
    image
}

/// Minimal HTTP/1.0 GET (the response is not chunked): (status, body).
fn http_get(addr: &str, path_and_query: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(s, "GET {path_and_query} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn listen_addr(path: &Path, key: &str) -> String {
    let t0 = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
                return v[key].as_str().unwrap().to_string();
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Poll `f` until it returns Some, at most `limit`; `what` explains a timeout.
fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            t0.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The collector binary next to the agent's (`cargo build --bins` builds both).
fn collector_binary() -> PathBuf {
    let agent = PathBuf::from(env!("CARGO_BIN_EXE_sightline-agent"));
    let path = agent.with_file_name("sightline-collector");
    assert!(
        path.is_file(),
        "{} not found: build it first with `cargo build -p sightline-collector` \
         (same CARGO_TARGET_DIR and profile as this test)",
        path.display()
    );
    path
}

/// (value, labels) of the first series of an instant-query answer.
fn first_sample(body: &str) -> Option<(f64, serde_json::Value)> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let s = v["data"]["result"].as_array()?.first()?.clone();
    let value = s["value"][1].as_str()?.parse().ok()?;
    Some((value, s["metric"].clone()))
}

#[test]
fn real_docker_container_is_discovered_measured_and_its_logs_shipped() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0")),
        "this test starts dockerd and needs root"
    );
    let dir = tempfile::tempdir().unwrap();
    let tag = format!(
        "t{}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis()
            % 1_000_000_000
    );
    let mut docker = start_docker(dir.path());
    let image = build_image(&docker, dir.path(), &tag);
    let name = format!("sightline-docker-test-{tag}");
    let marker = format!("sightline-docker-test {tag} line");
    let script = format!(
        "i=0; while true; do i=$((i+1)); echo \"{marker} $i\"; j=0; \
         while [ $j -lt 3000 ]; do j=$((j+1)); done; sleep 0.2; done"
    );
    let id = docker.cli_ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--log-driver",
        "json-file",
        "--name",
        &name,
        &image,
        "/bin/sh",
        "-c",
        &script,
    ]);
    docker.containers.push(id.clone());
    assert_eq!(id.len(), 64, "docker run printed {id:?}");

    // A real collector.
    let cdir = dir.path().join("collector");
    let collector = Proc {
        child: Command::new(collector_binary())
            .arg("--data-dir")
            .arg(cdir.join("data"))
            .args([
                "--grpc-addr",
                "127.0.0.1:0",
                "--otlp-http-addr",
                "127.0.0.1:0",
                "--http-addr",
                "127.0.0.1:0",
            ])
            .arg("--listen-file")
            .arg(cdir.join("listen.json"))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
        grace: Duration::from_secs(15),
    };
    let grpc = listen_addr(&cdir.join("listen.json"), "grpc");
    let api = listen_addr(&cdir.join("listen.json"), "http");

    // The real agent, on the daemon's socket and json-file logs.
    let adir = dir.path().join("agent");
    std::fs::create_dir_all(&adir).unwrap();
    let config = adir.join("agent.yaml");
    std::fs::write(
        &config,
        format!(
            "logs:\n  pods_root: \"\"\n  docker_root: {:?}\n  poll_interval: 100ms\n  batch:\n    timeout: 200ms\n",
            docker.data_root.join("containers").display().to_string()
        ),
    )
    .unwrap();
    let agent = Proc {
        child: Command::new(env!("CARGO_BIN_EXE_sightline-agent"))
            .arg("--config")
            .arg(&config)
            .arg("--endpoint")
            .arg(format!("http://{grpc}"))
            .args(["--interval", "1s", "--http-addr", "127.0.0.1:0"])
            .arg("--listen-file")
            .arg(adir.join("listen.json"))
            .arg("--data-dir")
            .arg(adir.join("data"))
            .arg("--docker-socket")
            .arg(docker.host.trim_start_matches("unix://"))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
        grace: Duration::from_secs(15),
    };
    let agent_http = listen_addr(&adir.join("listen.json"), "http");

    // Discovery, named by the Docker API.
    let item = wait_for(
        Duration::from_secs(20),
        "the container in GET /inventory with its Docker name and image",
        || {
            let (status, body) = http_get(&agent_http, "/inventory");
            assert_eq!(status, 200, "{body}");
            let v: serde_json::Value = serde_json::from_str(&body).ok()?;
            let items = v.as_array().or_else(|| v["containers"].as_array())?;
            items
                .iter()
                .find(|i| {
                    i["container_id"] == id.as_str()
                        && i["metadata"]["container_name"] == name.as_str()
                        && i["metadata"]["image"] == image.as_str()
                })
                .cloned()
        },
    );
    assert_eq!(item["runtime"], "docker", "{item}");

    // Container metrics in the collector, labelled from the Docker API.
    // Selected by name too: a collection that ran before the Docker lookup answered
    // exports the container under its id alone (a separate, earlier series).
    let cpu_query = format!(
        "container_cpu_time_seconds_total{{container_id=\"{id}\",container_name=\"{name}\"}}"
    );
    let cpu = |min: f64| {
        let (status, body) = http_get(&api, &format!("/api/v1/query?query={}", encode(&cpu_query)));
        assert_eq!(status, 200, "{body}");
        first_sample(&body).filter(|(v, _)| *v > min)
    };
    let (first_cpu, labels) = wait_for(
        Duration::from_secs(30),
        "the container's CPU time in the collector",
        || cpu(0.0),
    );
    assert_eq!(labels["container_name"], name.as_str(), "{labels}");
    // OpenTelemetry splits `name:tag` into container.image.name and container.image.tag.
    let image_name = image.split(':').next().unwrap();
    assert_eq!(labels["container_image_name"], image_name, "{labels}");
    wait_for(
        Duration::from_secs(30),
        "the container's CPU time to grow",
        || cpu(first_cpu),
    );
    let mem_query =
        format!("container_memory_usage_bytes{{container_id=\"{id}\",container_name=\"{name}\"}}");
    wait_for(
        Duration::from_secs(20),
        "the container's memory usage in the collector",
        || {
            let (_, body) = http_get(&api, &format!("/api/v1/query?query={}", encode(&mem_query)));
            first_sample(&body).filter(|(v, _)| *v > 0.0)
        },
    );

    // Its stdout lines, from Docker's json-file log, in the Loki API.
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let start = now.as_nanos() - Duration::from_secs(600).as_nanos();
    let lines = wait_for(
        Duration::from_secs(30),
        "the container's log lines in the collector",
        || {
            let end = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos()
                + 1_000_000_000;
            let q = encode("{service_name=\"sightline-agent\"}");
            let (status, body) = http_get(
                &api,
                &format!("/loki/api/v1/query_range?query={q}&start={start}&end={end}&limit=5000"),
            );
            assert_eq!(status, 200, "{body}");
            let v: serde_json::Value = serde_json::from_str(&body).ok()?;
            let found: Vec<String> = v["data"]["result"]
                .as_array()?
                .iter()
                .flat_map(|s| s["values"].as_array().cloned().unwrap_or_default())
                .filter_map(|e| e[1].as_str().map(str::to_string))
                .filter(|l| l.starts_with(&marker))
                .collect();
            (found.len() >= 3).then_some(found)
        },
    );
    assert!(
        lines.iter().all(|l| !l.ends_with('\n')),
        "json-file lines keep their trailing newline: {lines:?}"
    );

    // The agent's own counters moved.
    let (_, metrics) = http_get(&agent_http, "/metrics");
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or(0.0)
    };
    assert!(
        value("sightline_agent_log_records_exported_total") >= 3.0,
        "{metrics}"
    );
    assert!(
        value("sightline_agent_log_lines_read_total") >= 3.0,
        "{metrics}"
    );

    drop(agent);
    drop(collector);
    let logs = tail(&docker.log, 5);
    drop(docker);
    eprintln!("dockerd stopped; its last lines:\n{logs}");
}
