//! Wire types for Sightline, and the decoding every OTLP receiver shares.
//!
//! Everything that crosses a process boundary is defined here and nowhere else:
//! - [`otlp`]: the OpenTelemetry protocol (metrics, logs, traces; messages, gRPC
//!   clients and servers), re-exported from the `opentelemetry-proto` crate so the
//!   agent and the collector agree on one version.
//! - [`prometheus`]: Prometheus remote-write 1.0 (`prometheus.WriteRequest`), the
//!   body of `POST /api/v1/write` after snappy block decompression.
//!
//! Both the collector's and the agent's OTLP receivers decode requests the same way:
//! - [`http_body`]: an HTTP body read within a size limit, `Content-Encoding` undone
//!   (gzip, zstd, snappy) within the same limit, so a "zip bomb" cannot allocate more.
//! - [`otlp_http`]: OTLP/HTTP content types (protobuf, JSON), request decoding, and the
//!   response / `google.rpc.Status` error bodies in the request's format.
//! - [`grpc_status`]: a tower layer that rewrites the statuses tonic produces before a
//!   handler runs (malformed protobuf → INVALID_ARGUMENT, oversize → RESOURCE_EXHAUSTED)
//!   and reports each answer with its rejection reason.
//!
//! Failures are one [`Error`] whose [`Error::reason`] is the `reason` label receivers
//! count rejections with and whose [`Error::http_status`] / [`Error::grpc_code`] is
//! what the sender sees.

pub mod grpc_status;
pub mod http_body;
pub mod otlp_http;
pub mod prometheus;

/// OTLP messages and tonic services (collector + common + resource + signals).
pub mod otlp {
    pub use opentelemetry_proto::tonic::*;
}

pub use prost;
pub use tonic;

/// A request that cannot be used, classified by what the sender must change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Larger than the receiver's request size limit (HTTP 413, RESOURCE_EXHAUSTED).
    #[error("{0}")]
    TooLarge(String),
    /// `Content-Encoding` not supported by this endpoint (HTTP 415).
    #[error("{0}")]
    UnsupportedEncoding(String),
    /// `Content-Type` missing or not one this endpoint decodes (HTTP 415).
    #[error("{0}")]
    UnsupportedContentType(String),
    /// Corrupt compressed data, an undecodable body or a broken connection (HTTP 400).
    #[error("{0}")]
    Malformed(String),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Value of the `reason` label of the receivers' rejection counters.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::TooLarge(_) => "too_large",
            Error::UnsupportedEncoding(_) => "unsupported_encoding",
            Error::UnsupportedContentType(_) => "unsupported_content_type",
            Error::Malformed(_) => "malformed",
        }
    }

    /// The HTTP status the sender gets.
    pub fn http_status(&self) -> http::StatusCode {
        match self {
            Error::TooLarge(_) => http::StatusCode::PAYLOAD_TOO_LARGE,
            Error::UnsupportedEncoding(_) | Error::UnsupportedContentType(_) => {
                http::StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            Error::Malformed(_) => http::StatusCode::BAD_REQUEST,
        }
    }

    /// The gRPC code of the `google.rpc.Status` body (and of a gRPC answer).
    pub fn grpc_code(&self) -> tonic::Code {
        match self {
            Error::TooLarge(_) => tonic::Code::ResourceExhausted,
            _ => tonic::Code::InvalidArgument,
        }
    }
}
