//! The agent's OTLP receiver for applications, end to end with the real binaries.
//!
//! - An instrumented application (the official OpenTelemetry Python SDK,
//!   `tests/python/app_in_container.py`) runs inside a real cgroup v1 group with a
//!   Docker-shaped path (`.../docker/<64 hex>`, made under this test's own cgroup of each
//!   v1 controller, as `agent/tests/containers_v1.rs` does) and sends metrics, logs and a
//!   span to the agent over OTLP/gRPC; the collector must have all three with the
//!   container attributes the agent added (`container.id`, `container.runtime`,
//!   `host.name`), and the agent's counters must say so.
//! - Malformed, oversized and wrongly typed requests to the agent get the OTLP status for
//!   it (HTTP 400/413/415, gRPC INVALID_ARGUMENT/RESOURCE_EXHAUSTED), are counted, and a
//!   full forwarding queue answers 429 with `Retry-After`.
//! - Failover: two collectors; the primary is SIGKILLed while an application sends, data
//!   continues to the secondary, nothing is lost, and traffic returns to the primary after
//!   it is restarted on the same port and data dir.
//!
//! Needs root and writable cgroup v1 controllers under /sys/fs/cgroup (the cgroup test
//! fails with what is missing rather than skipping) and the Python SDK venv
//! (`SIGHTLINE_PYTHON`, default /var/tmp/sightline-venv/bin/python).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sightline_e2e::http_api::Http;
use sightline_e2e::metrics_text::Scrape;
use sightline_e2e::process::persistent_data_dir;
use sightline_e2e::{now_ns, otlp_grpc, wait_for, Agent, Collector, CollectorOptions};

const CONTROLLERS: [&str; 5] = ["cpu", "cpuacct", "memory", "blkio", "pids"];
const CGROUP_ROOT: &str = "/sys/fs/cgroup";
const DEFAULT_PYTHON: &str = "/var/tmp/sightline-venv/bin/python";
const READ_TIMEOUT: Duration = Duration::from_secs(30);

fn python() -> PathBuf {
    let py = std::env::var_os("SIGHTLINE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| DEFAULT_PYTHON.into());
    assert!(
        py.is_file(),
        "Python interpreter {} not found (set SIGHTLINE_PYTHON or: python3 -m venv /var/tmp/sightline-venv && \
         /var/tmp/sightline-venv/bin/pip install -r tests/python/requirements.txt)",
        py.display()
    );
    py
}

/// Created cgroups (deepest last) and the application; undone on drop.
#[derive(Default)]
struct Guard {
    dirs: Vec<PathBuf>,
    child: Option<Child>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
        for d in self.dirs.iter().rev() {
            for _ in 0..50 {
                if std::fs::remove_dir(d).is_ok() || !d.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

fn own_cgroup(controller: &str) -> String {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    text.lines()
        .find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
            ctrls
                .split(',')
                .any(|c| c == controller)
                .then(|| path.to_string())
        })
        .unwrap_or_else(|| "/".into())
}

/// mkdir -p `rel` under each v1 controller, below our own cgroup.
fn make_group(guard: &mut Guard, rel: &str) -> Vec<PathBuf> {
    let mut leaves = Vec::new();
    for c in CONTROLLERS {
        let mut dir = Path::new(CGROUP_ROOT)
            .join(c)
            .join(own_cgroup(c).trim_start_matches('/'));
        for part in rel.split('/') {
            dir = dir.join(part);
            if !dir.exists() {
                std::fs::create_dir(&dir).unwrap_or_else(|e| {
                    panic!(
                        "cannot create {}: {e}. This test needs root and writable cgroup v1 \
                         controllers at {CGROUP_ROOT}/{{cpu,cpuacct,memory,blkio,pids}}",
                        dir.display()
                    )
                });
                guard.dirs.push(dir.clone());
            }
        }
        leaves.push(dir);
    }
    leaves
}

fn resource_attr(resource: &Value, key: &str) -> Option<String> {
    resource["attributes"]
        .as_array()?
        .iter()
        .find(|kv| kv["key"] == key)
        .and_then(|kv| kv["value"]["stringValue"].as_str().map(str::to_string))
}

#[test]
fn app_in_a_docker_cgroup_gets_container_attributes() {
    let collector = Collector::start();
    let agent = Agent::start(&collector.grpc_endpoint(), "1s", &[]);
    let grpc = agent
        .otlp_grpc
        .clone()
        .expect("agent OTLP/gRPC receiver address");

    let id: String = format!("{:016x}", rand::random::<u64>()).repeat(4);
    let service = format!("e2e-app-{}", &id[..8]);
    let mut guard = Guard::default();
    let leaves = make_group(&mut guard, &format!("docker/{id}"));

    let dir = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/app_in_container.py");
    let child = Command::new(python())
        .arg(script)
        .args([
            "--endpoint",
            &format!("http://{grpc}"),
            "--service",
            &service,
        ])
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("start python");
    let pid = child.id();
    guard.child = Some(child);
    for leaf in &leaves {
        std::fs::write(leaf.join("cgroup.procs"), pid.to_string())
            .unwrap_or_else(|e| panic!("moving pid {pid} into {}: {e}", leaf.display()));
    }
    let child = guard.child.as_mut().unwrap();
    writeln!(child.stdin.as_mut().unwrap(), "go").unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "app did not finish: {}",
            std::fs::read_to_string(&err_path).unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let stderr = std::fs::read_to_string(&err_path).unwrap();
    assert!(status.success(), "app failed ({status}):\n{stderr}");
    let sent: Value =
        serde_json::from_str(std::fs::read_to_string(&out_path).unwrap().trim()).unwrap();
    println!("app sent: {sent}");

    let http = collector.http();
    // Traces: the resource carries what the agent added.
    let trace_id = sent["trace_id"].as_str().unwrap();
    let trace = wait_for("the app's trace at the collector", READ_TIMEOUT, || {
        let r = http
            .get(&format!("/api/traces/{trace_id}"), &[], &[])
            .ok()?;
        (r.status == 200).then(|| r.json())
    });
    let resource = &trace["batches"][0]["resource"];
    assert_eq!(
        resource_attr(resource, "container.id").as_deref(),
        Some(id.as_str()),
        "{trace}"
    );
    assert_eq!(
        resource_attr(resource, "container.runtime").as_deref(),
        Some("docker")
    );
    assert_eq!(
        resource_attr(resource, "service.name").as_deref(),
        Some(service.as_str())
    );
    let host = sightline_e2e::hostname();
    assert_eq!(
        resource_attr(resource, "host.name").as_deref(),
        Some(host.as_str())
    );

    // Metrics: the counter, and target_info with the container id.
    let t = now_ns() as f64 / 1e9;
    let jobs = wait_for("app_jobs_total", READ_TIMEOUT, || {
        let r = http.query(&format!("app_jobs_total{{job=\"{service}\"}}"), t);
        (!r.is_empty()).then_some(r)
    });
    assert_eq!(jobs[0].value, 7.0);
    let info = wait_for("target_info of the app", READ_TIMEOUT, || {
        let r = http.query(
            &format!("target_info{{job=\"{service}\"}}"),
            now_ns() as f64 / 1e9,
        );
        (!r.is_empty()).then_some(r)
    });
    assert_eq!(info[0].metric.get("container_id"), Some(&id), "{info:?}");

    // Logs: all three, in a stream labelled with the host the agent added.
    let log_ns = sent["log_ns"].as_i64().unwrap();
    let streams = wait_for("the app's logs", READ_TIMEOUT, || {
        let s = http.loki_query_range(
            &format!("{{service_name=\"{service}\"}}"),
            log_ns - 1_000_000_000,
            now_ns() + 1_000_000_000,
            100,
        );
        (s.iter().map(|s| s.values.len()).sum::<usize>() >= 3).then_some(s)
    });
    assert_eq!(
        streams[0].stream.get("host_name"),
        Some(&host),
        "{streams:?}"
    );
    let bodies: BTreeSet<String> = streams
        .iter()
        .flat_map(|s| s.values.iter().map(|(_, l)| l.clone()))
        .collect();
    for b in sent["logs"].as_array().unwrap() {
        assert!(
            bodies.contains(b.as_str().unwrap()),
            "{b} not in {bodies:?}"
        );
    }

    // The agent's own account.
    let scrape = wait_for("agent counters", READ_TIMEOUT, || {
        let s = Scrape::fetch(&agent.http());
        (s.sum(
            "sightline_agent_receiver_forwarded_total",
            &[("signal", "traces")],
        ) >= 1.0)
            .then_some(s)
    });
    for (signal, n) in [("metrics", 1.0), ("logs", 3.0), ("traces", 1.0)] {
        assert!(
            scrape.sum(
                "sightline_agent_receiver_received_total",
                &[("signal", signal)]
            ) >= n,
            "{signal}"
        );
    }
    assert!(
        scrape.sum(
            "sightline_agent_receiver_attributed_total",
            &[("source", "local_process")]
        ) >= 3.0
    );
}

fn logs_json(service: &str, bodies: &[String]) -> Vec<u8> {
    let now = now_ns();
    let records: Vec<Value> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| {
            serde_json::json!({
                "timeUnixNano": (now + i as i64).to_string(),
                "body": {"stringValue": b},
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeLogs": [{"logRecords": records}],
    }]}))
    .unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    // A stored (uncompressed) deflate stream is enough for the receiver; build it with
    // the gzip CLI to avoid a dependency.
    let mut child = Command::new("gzip")
        .arg("-c")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip");
    child.stdin.take().unwrap().write_all(data).unwrap();
    child.wait_with_output().unwrap().stdout
}

#[test]
fn bad_requests_to_the_agent_get_otlp_statuses_and_are_counted() {
    // Nothing listens on the collector endpoint: accepted requests stay queued.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.yaml");
    std::fs::write(
        &config,
        "receiver:\n  max_request_bytes: 65536\n  queue_capacity: 1\n",
    )
    .unwrap();
    let mut agent = Agent::start(&endpoint, "1s", &["--config", config.to_str().unwrap()]);
    let http = Http::new(&format!("http://{}", agent.otlp_http.clone().unwrap()));
    let grpc = format!("http://{}", agent.otlp_grpc.clone().unwrap());
    let proto = [("Content-Type", "application/x-protobuf")];
    let json = [("Content-Type", "application/json")];

    let r = http
        .post("/v1/logs", &proto, b"\xff\xff\xff\xff not protobuf")
        .unwrap();
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("invalid OTLP protobuf body"), "{}", r.body);
    let r = http
        .post("/v1/traces", &json, b"{\"resourceSpans\": 7}")
        .unwrap();
    assert_eq!(r.status, 400);
    let status: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(
        status["code"], 3,
        "google.rpc.Status INVALID_ARGUMENT: {}",
        r.body
    );
    let r = http
        .post("/v1/metrics", &[("Content-Type", "text/plain")], b"x")
        .unwrap();
    assert_eq!(r.status, 415);
    let big = vec![b'a'; 100_000];
    let r = http.post("/v1/logs", &proto, &big).unwrap();
    assert_eq!(r.status, 413, "{}", r.body);
    // Small on the wire, too large once decompressed.
    let bomb = gzip(&vec![0u8; 1 << 20]);
    assert!(bomb.len() < 65536);
    let r = http
        .post(
            "/v1/logs",
            &[
                ("Content-Type", "application/x-protobuf"),
                ("Content-Encoding", "gzip"),
            ],
            &bomb,
        )
        .unwrap();
    assert_eq!(r.status, 413, "{}", r.body);

    let e = otlp_grpc::raw_unary(
        &grpc,
        otlp_grpc::LOGS_EXPORT,
        b"\xff\xff\xff garbage".to_vec(),
        &[],
    )
    .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    let e = otlp_grpc::raw_unary(&grpc, otlp_grpc::METRICS_EXPORT, vec![0x0a; 100_000], &[])
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");

    // A valid gzip'd JSON request is accepted; with the collector unreachable the queue
    // (capacity 1) fills and senders are told to come back later.
    let mut statuses = Vec::new();
    for i in 0..4 {
        let body = gzip(&logs_json("bad-input", &[format!("line {i}")]));
        let r = http
            .post(
                "/v1/logs",
                &[
                    ("Content-Type", "application/json"),
                    ("Content-Encoding", "gzip"),
                ],
                &body,
            )
            .unwrap();
        if r.status == 429 {
            assert!(r.body.contains("retry later"), "{}", r.body);
        }
        statuses.push(r.status);
    }
    assert_eq!(statuses[0], 200, "{statuses:?}");
    assert!(
        statuses.contains(&429),
        "queue of 1 never full: {statuses:?}"
    );

    let s = Scrape::fetch(&agent.http());
    for (signal, reason, n) in [
        ("logs", "malformed", 1.0),
        ("traces", "malformed", 1.0),
        ("metrics", "unsupported_content_type", 1.0),
        ("logs", "too_large", 2.0),
        ("logs", "queue_full", 1.0),
        ("metrics", "too_large", 1.0),
    ] {
        assert!(
            s.sum(
                "sightline_agent_receiver_rejected_total",
                &[("signal", signal), ("reason", reason)]
            ) >= n,
            "{signal}/{reason}: {:?}",
            s.by_label("sightline_agent_receiver_rejected_total", "reason")
        );
    }
    agent.process.assert_running();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Sequence numbers of `failover-app` lines stored in a collector.
fn stored_seqs(c: &Collector, from_ns: i64) -> BTreeSet<u64> {
    c.http()
        .loki_query_range(
            "{service_name=\"failover-app\"}",
            from_ns,
            now_ns() + 1_000_000_000,
            50_000,
        )
        .iter()
        .flat_map(|s| s.values.iter())
        .filter_map(|(_, l)| l.strip_prefix("seq=")?.parse().ok())
        .collect()
}

#[test]
fn failover_to_the_second_collector_and_back() {
    let port = free_port();
    let data_a = persistent_data_dir();
    let start_a = || {
        Collector::start_with(CollectorOptions {
            data_dir: Some(data_a.path().to_path_buf()),
            grpc_addr: Some(format!("127.0.0.1:{port}")),
            ..Default::default()
        })
    };
    let mut a = start_a();
    let b = Collector::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.yaml");
    std::fs::write(
        &config,
        "export:\n  timeout: 2s\n  failover_probe_interval: 1s\n  retry:\n    initial_backoff: 100ms\n    max_backoff: 500ms\n",
    )
    .unwrap();
    let agent = Agent::start(
        &format!("http://127.0.0.1:{port}"),
        "1s",
        &[
            "--endpoint",
            &b.grpc_endpoint(),
            "--config",
            config.to_str().unwrap(),
        ],
    );
    let app = Http::new(&format!("http://{}", agent.otlp_http.clone().unwrap()));
    let from_ns = now_ns() - 1_000_000_000;
    let mut seq = 0u64;
    let mut send = |n: u64| {
        for _ in 0..n {
            let lines: Vec<String> = (0..5).map(|i| format!("seq={}", seq * 5 + i)).collect();
            seq += 1;
            let body = logs_json("failover-app", &lines);
            let r = wait_for("the agent to accept a request", READ_TIMEOUT, || {
                let r = app
                    .post("/v1/logs", &[("Content-Type", "application/json")], &body)
                    .ok()?;
                (r.status == 200).then_some(r)
            });
            assert_eq!(r.status, 200);
            std::thread::sleep(Duration::from_millis(30));
        }
        seq * 5
    };
    let metric = |name: &str| Scrape::fetch(&agent.http()).sum(name, &[]);

    let sent = send(20);
    wait_for("phase 1 stored in the primary", READ_TIMEOUT, || {
        (stored_seqs(&a, from_ns).len() as u64 == sent).then_some(())
    });
    a.process.kill();
    let sent = send(20);
    wait_for("phase 2 in the secondary", READ_TIMEOUT, || {
        (stored_seqs(&b, from_ns).len() as u64 >= 5).then_some(())
    });
    assert!(metric("sightline_agent_export_failovers_total") >= 1.0);
    assert_eq!(metric("sightline_agent_export_active_endpoint"), 1.0);

    drop(a);
    let a = start_a();
    // Keep sending until the probe moved the application's traffic back to the primary.
    wait_for(
        "traffic back on the primary",
        Duration::from_secs(60),
        || {
            send(2);
            stored_seqs(&a, from_ns)
                .iter()
                .any(|s| *s >= sent)
                .then_some(())
        },
    );
    let total = send(10);
    let all = wait_for(
        "every line stored in one of the collectors",
        READ_TIMEOUT,
        || {
            let mut all = stored_seqs(&a, from_ns);
            all.extend(stored_seqs(&b, from_ns));
            (all.len() as u64 == total).then_some(all)
        },
    );
    assert_eq!(all, (0..total).collect::<BTreeSet<u64>>(), "lines lost");
    let on_a = stored_seqs(&a, from_ns);
    assert!(
        ((total - 50)..total).all(|s| on_a.contains(&s)),
        "the last lines went to the primary after its return"
    );
    let rx = Scrape::fetch(&agent.http());
    assert_eq!(
        rx.sum("sightline_agent_receiver_dropped_total", &[]),
        0.0,
        "nothing accepted from the app was dropped"
    );
}
