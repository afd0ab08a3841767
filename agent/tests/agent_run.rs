//! The whole agent: collection on an interval, shipping to a real gRPC server, `/metrics`
//! and `/-/ready` on port 0 with the listen file, and a clean shutdown with a final flush.
//! Also the real binary: SIGTERM exit code and the `validate` subcommand.

// Test helpers outside #[test] fns: panicking on setup failure is the point.
#![allow(clippy::unwrap_used)]

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sightline_agent::clock::SystemClock;
use sightline_agent::config::{resolve, RunArgs};
use support::FakeCollector;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Status;

async fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

async fn wait_for_listen_file(path: &Path) -> SocketAddr {
    for _ in 0..200 {
        if let Ok(text) = std::fs::read_to_string(path) {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            return v["http"].as_str().unwrap().parse().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("listen file {} never appeared", path.display());
}

fn metric_value(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("{name} not in\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn collects_ships_serves_and_flushes_on_shutdown() {
    let server = FakeCollector::default();
    let (endpoint, _) = server.start().await;
    // The first export fails retryably; the agent must retry and go on.
    server.answer([Err(Status::unavailable("warming up"))]);
    let dir = tempfile::tempdir().unwrap();
    let listen = dir.path().join("listen.json");
    let config = dir.path().join("agent.yaml");
    std::fs::write(
        &config,
        "interval: 200ms\ntenant: t1\nexport:\n  retry:\n    initial_backoff: 50ms\n    max_backoff: 200ms\n",
    )
    .unwrap();
    let args = RunArgs {
        config: Some(config),
        endpoint: vec![endpoint],
        http_addr: Some("127.0.0.1:0".into()),
        listen_file: Some(listen.clone()),
        ..RunArgs::default()
    };
    let cfg = resolve(&args).unwrap();
    let hostname = cfg.hostname.clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let agent = tokio::spawn(sightline_agent::run::run(
        cfg,
        Arc::new(SystemClock),
        async {
            let _ = stop_rx.await;
        },
    ));

    let addr = wait_for_listen_file(&listen).await;
    assert!(http_get(addr, "/-/ready").await.starts_with("HTTP/1.1 200"));
    // Wait until a few collections were accepted.
    let mut ok = 0;
    for _ in 0..100 {
        ok = server.received().len();
        if ok >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok >= 4, "only {ok} requests arrived");
    let metrics = http_get(addr, "/metrics").await;
    assert!(metric_value(&metrics, "sightline_agent_collections_total") >= 3.0);
    assert!(metric_value(&metrics, "sightline_agent_exported_points_total") > 50.0);
    assert!(metric_value(&metrics, "sightline_agent_export_retries_total") >= 1.0);
    assert!(metric_value(&metrics, "sightline_agent_collected_points_total") > 50.0);

    let received = server.received();
    let first = &received[0];
    assert_eq!(first.tenant.as_deref(), Some("t1"));
    assert_eq!(first.encoding.as_deref(), Some("zstd"));
    // Container batches (systemd services, containers of this machine) may come first.
    let rm = received
        .iter()
        .flat_map(|r| &r.request.resource_metrics)
        .find(|rm| {
            rm.scope_metrics[0].scope.as_ref().map(|s| s.name.as_str())
                == Some("sightline-agent/host")
        })
        .unwrap();
    let attrs: Vec<_> = rm
        .resource
        .as_ref()
        .unwrap()
        .attributes
        .iter()
        .map(|kv| (kv.key.clone(), format!("{:?}", kv.value)))
        .collect();
    assert!(attrs
        .iter()
        .any(|(k, v)| k == "host.name" && v.contains(&hostname)));
    let names: Vec<_> = rm.scope_metrics[0]
        .metrics
        .iter()
        .map(|m| m.name.clone())
        .collect();
    for want in [
        "system.cpu.time",
        "system.memory.usage",
        "system.network.io",
        "process.cpu.time",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }

    stop_tx.send(()).unwrap();
    let summary = tokio::time::timeout(Duration::from_secs(15), agent)
        .await
        .expect("agent stops within the flush bound")
        .unwrap()
        .unwrap();
    assert!(summary.collections >= 3);
    assert_eq!(summary.dropped_at_shutdown, 0);
    // Everything collected was exported (the queue was flushed).
    let sent: usize = server
        .received()
        .iter()
        .skip(1)
        .map(|r| support::points(&r.request))
        .sum();
    assert_eq!(summary.exported_points, sent as u64);
}

#[tokio::test]
async fn shutdown_is_bounded_when_the_collector_hangs() {
    let server = FakeCollector::default();
    let (endpoint, _) = server.start().await;
    server.hang();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.yaml");
    std::fs::write(
        &config,
        "interval: 100ms\nexport:\n  timeout: 60s\n  shutdown_timeout: 1s\n",
    )
    .unwrap();
    let args = RunArgs {
        config: Some(config),
        endpoint: vec![endpoint],
        http_addr: Some("127.0.0.1:0".into()),
        ..RunArgs::default()
    };
    let cfg = resolve(&args).unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let agent = tokio::spawn(sightline_agent::run::run(
        cfg,
        Arc::new(SystemClock),
        async {
            let _ = stop_rx.await;
        },
    ));
    // Wait until the first request is stuck at the server and more batches queued behind it.
    for _ in 0..100 {
        if !server.received().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop_tx.send(()).unwrap();
    let summary = tokio::time::timeout(Duration::from_secs(20), agent)
        .await
        .expect("the flush is bounded by shutdown_timeout")
        .unwrap()
        .unwrap();
    assert_eq!(
        server.received().len(),
        1,
        "one request in flight, the rest queued"
    );
    assert_eq!(summary.exported_points, 0);
    // The in-flight batch and every queued one are counted as dropped at shutdown.
    assert!(summary.dropped_at_shutdown >= 2 * 50, "{summary:?}");
}

#[test]
fn binary_exits_cleanly_on_sigterm() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = FakeCollector::default();
    let (endpoint, _) = rt.block_on(server.start());
    let dir = tempfile::tempdir().unwrap();
    let listen = dir.path().join("listen.json");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_sightline-agent"))
        .args([
            "--endpoint",
            &endpoint,
            "--interval",
            "100ms",
            "--http-addr",
            "127.0.0.1:0",
        ])
        .arg("--listen-file")
        .arg(&listen)
        .env("SIGHTLINE_AGENT_TOKEN", "from-env")
        .spawn()
        .unwrap();
    let addr = rt.block_on(wait_for_listen_file(&listen));
    rt.block_on(async {
        for _ in 0..100 {
            if !server.received().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(http_get(addr, "/-/ready").await.starts_with("HTTP/1.1 200"));
    });
    assert_eq!(
        server.received()[0].authorization.as_deref(),
        Some("Bearer from-env")
    );
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn validate_subcommand_reports_all_problems() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, "endpoint: http://127.0.0.1:4317\ninterval: 15s\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sightline-agent"))
        .args(["validate", "--config"])
        .arg(&good)
        .env_remove("SIGHTLINE_AGENT_ENDPOINT")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "endpoint: grpc://x\ninterval: often\ncompression: lz4\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sightline-agent"))
        .args(["validate", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in ["endpoint", "interval", "compression"] {
        assert!(err.contains(needle), "{needle} missing: {err}");
    }

    let unknown = dir.path().join("unknown.yaml");
    std::fs::write(&unknown, "endpoint: http://x:1\nbogus: 1\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sightline-agent"))
        .args(["validate", "--config"])
        .arg(&unknown)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bogus"));
}
