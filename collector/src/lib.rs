//! The Sightline collector: receives metrics, logs and traces, stores them durably
//! and serves them back.
//!
//! Data flow: [`server::start`] opens the store (replaying its WAL), binds the three
//! listeners and writes the listen file. Requests enter through [`receiver`]
//! (OTLP/gRPC, OTLP/HTTP, Prometheus remote write), are authenticated to a tenant
//! ([`auth`]), translated into the store's model ([`translate`]) and written by
//! [`ingest`] — acknowledged only once durable. [`api`] serves the Prometheus, Loki
//! and Tempo read APIs plus `/metrics` ([`self_metrics`]); metric metadata is kept by
//! [`metadata`]. Span batches also feed [`spanmetrics`] (RED series), which
//! [`self_monitoring`] writes into the store together with the collector's own
//! metrics. Configuration lives in
//! [`config`]; `main.rs` is the CLI.

pub mod api;
pub mod auth;
pub mod config;
pub mod ingest;
pub mod logql;
pub mod metadata;
pub mod receiver;
pub mod self_metrics;
pub mod self_monitoring;
pub mod server;
pub mod spanmetrics;
pub mod state;
pub mod tls;
pub mod translate;

use std::path::PathBuf;

/// Errors that stop the collector from starting or shutting down cleanly.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid configuration:\n  {}", .0.join("\n  "))]
    Config(Vec<String>),
    #[error("store: {0}")]
    Store(#[from] sightline_store::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("tls: {0}")]
    Tls(String),
    #[error("gRPC server: {0}")]
    Grpc(#[from] tonic::transport::Error),
    #[error("background task failed: {0}")]
    Task(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
