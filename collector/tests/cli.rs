//! The `sightline-collector` binary: `validate`, `run` on port 0 with a listen file,
//! graceful SIGTERM, and `up` without an agent binary next to it.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns fail the test on error

mod harness;

use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_sightline-collector");

#[test]
fn validate_reports_every_error() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config.example.yaml");
    let out = Command::new(BIN)
        .args(["validate", "--config", example])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "server:\n  http_addr: nowhere\nlimits: {max_request_bytes: 1}\nstorage: {flush_interval: soon}\n").unwrap();
    let out = Command::new(BIN)
        .args(["validate", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for key in [
        "server.http_addr",
        "limits.max_request_bytes",
        "storage.flush_interval",
    ] {
        assert!(text.contains(key), "{key} missing from:\n{text}");
    }
    std::fs::write(&bad, "unknown_section: {}\n").unwrap();
    let out = Command::new(BIN)
        .args(["validate", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown_section"));
}

#[tokio::test]
async fn run_writes_listen_file_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let listen = dir.path().join("listen.json");
    let mut child = Command::new(BIN)
        .arg("run")
        .arg("--listen-file")
        .arg(&listen)
        .args([
            "--grpc-addr",
            "127.0.0.1:0",
            "--otlp-http-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
        ])
        .env("SIGHTLINE_DATA_DIR", dir.path().join("data"))
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !listen.exists() {
        assert!(Instant::now() < deadline, "listen file never appeared");
        assert!(
            child.try_wait().unwrap().is_none(),
            "collector exited early"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let addrs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&listen).unwrap()).unwrap();
    for key in ["grpc", "otlp_http", "http"] {
        assert!(
            addrs[key].as_str().unwrap().starts_with("127.0.0.1:"),
            "{addrs}"
        );
    }
    let http = format!("http://{}", addrs["http"].as_str().unwrap());
    assert_eq!(harness::get(&format!("{http}/-/ready"), &[]).await.0, 200);
    assert!(dir.path().join("data").is_dir());
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "collector did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
}

#[test]
fn up_without_agent_binary_says_how_to_build_it() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("sightline-collector");
    std::fs::copy(BIN, &bin).unwrap();
    let out = Command::new(&bin)
        .args(["up", "--data-dir"])
        .arg(dir.path().join("d"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cargo build --release"), "{err}");
}
