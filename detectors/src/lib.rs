//! Streaming detectors for Sightline. Pure library: no network, no disk, no clock —
//! every timestamp comes in with the data, so results are deterministic.
//!
//! - [`anomaly`]: per-series streaming anomaly scores with explanations.
//! - [`patterns`]: online log template mining.
//! - [`forecast`]: seasonal forecasting, capacity trends, time to exhaustion.
//! - [`outliers`]: which member of a group of siblings behaves unlike the others.

pub mod anomaly;
pub mod forecast;
pub mod outliers;
pub mod patterns;

/// Errors of the detectors library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("invalid snapshot: {0}")]
    BadSnapshot(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
