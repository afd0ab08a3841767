//! Wire types for Sightline.
//!
//! Everything that crosses a process boundary is defined here and nowhere else:
//! - [`otlp`]: the OpenTelemetry protocol (metrics, logs, traces; messages, gRPC
//!   clients and servers), re-exported from the `opentelemetry-proto` crate so the
//!   agent and the collector agree on one version.
//! - [`prometheus`]: Prometheus remote-write 1.0 (`prometheus.WriteRequest`), the
//!   body of `POST /api/v1/write` after snappy block decompression.

pub mod prometheus;

/// OTLP messages and tonic services (collector + common + resource + signals).
pub mod otlp {
    pub use opentelemetry_proto::tonic::*;
}

pub use prost;
pub use tonic;
