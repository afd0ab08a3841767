//! Sightline node agent.
//!
//! Data flow: a [`host::HostCollector`] reads `/proc` and `/sys` (roots configurable for a
//! DaemonSet with host mounts) every `interval` and turns the readings into OTLP metrics
//! named like the OpenTelemetry hostmetrics receiver. [`export::batch`] wraps them in one
//! `ExportMetricsServiceRequest` per collection (split under a size cap) and pushes them
//! into a bounded [`export::queue::BatchQueue`] (full-policy: drop the oldest batch, counted).
//! The [`export::Exporter`] pops batches and sends them over OTLP/gRPC (zstd|gzip, optional
//! TLS, bearer token, tenant header), retrying only retryable statuses with exponential
//! backoff and full jitter on an injected [`clock::Clock`]. [`telemetry`] holds the agent's
//! own counters, served with readiness by [`http_server`]; [`run`] wires it all together
//! and flushes on shutdown. Applications on the node send OTLP to [`receiver`], which adds
//! their container's attributes ([`attribution`]) and forwards through the same exporter
//! (several collector endpoints fail over, [`export::endpoints`]).

pub mod attribution;
pub mod clock;
pub mod config;
pub mod containers;
pub mod error;
pub mod export;
pub mod host;
pub mod http_server;
pub mod logs;
pub mod otlp_metric;
pub mod receiver;
pub mod run;
pub mod telemetry;

pub use error::{Error, Result};
