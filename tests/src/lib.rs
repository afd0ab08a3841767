//! End-to-end harness for Sightline: starts the real `sightline-collector` and
//! `sightline-agent` binaries and talks to them only over their public interfaces.
//!
//! Data flow of a test: [`process`] spawns a binary in a fresh temp dir with every
//! listener on port 0, waits (bounded) for the listen file the binary writes once it
//! is ready, and kills the process by PID when the handle drops. Tests then write
//! through [`remote_write`] (Prometheus remote-write 1.0, prost + snappy),
//! [`otlp_grpc`] (tonic OTLP clients, plus a raw-bytes client for malformed input) or
//! OTLP/HTTP, and read back through [`http_api`] (Prometheus, Loki and Tempo HTTP
//! APIs via `ureq`) and [`metrics_text`] (the collector's own `/metrics`).
//!
//! The binaries are not built here: `.ci/run` runs `cargo build --bins` before the
//! tests, and [`binaries`] fails with "build the binaries first: cargo build --bins"
//! when they are missing.

pub mod binaries;
pub mod http_api;
pub mod metrics_text;
pub mod otlp_grpc;
pub mod process;
pub mod remote_write;
pub mod wait;

pub use http_api::{Http, Reply};
pub use process::{Agent, Collector, CollectorOptions};
pub use wait::wait_for;

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Nanoseconds since the Unix epoch, now.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// This machine's host name, as agents report it in `instance`.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .expect("host name from /proc/sys/kernel/hostname or $HOSTNAME")
}
