//! The agent library's error type: every fallible step names what it was reading or
//! talking to, so a log line is enough to act on.

use std::path::PathBuf;

/// Everything that can go wrong inside the agent library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file under `/proc`, `/sys` or the config could not be read.
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file was read but its content is not in the expected format.
    #[error("parsing {path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// The configuration is invalid; every problem found is listed.
    #[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
    Config(Vec<String>),
    /// Setting up the gRPC channel (endpoint URL, TLS) failed.
    #[error("OTLP endpoint setup: {0}")]
    Transport(String),
    /// The HTTP server for `/metrics` and `/-/ready` could not start.
    #[error("http server on {addr}: {source}")]
    Http {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

/// Result with the agent's [`Error`] as default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn parse(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Parse {
            path: path.into(),
            message: message.into(),
        }
    }
}
