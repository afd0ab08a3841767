//! Streaming, causal anomaly scores for one metric series.
//!
//! Data flow per point `(timestamp_ms, value)`:
//! 1. non-finite values are rejected (counted, state untouched);
//! 2. the sampling interval is tracked, so gaps and irregular spacing are known;
//! 3. counters (monotone series) are turned into increments, resets are not anomalies;
//! 4. the point is compared with what the model expected *before* seeing it: a fast
//!    level (next-point prediction) and a slow level plus a seasonal profile
//!    (daily or weekly, chosen by which explains the series best, see [`seasonal`]);
//! 5. evidence from each component (residual against the seasonal expectation, level
//!    shift; fast residual and variance change are reported too) is combined into a
//!    score in [0, 1], with suppression after an alarm so one incident raises one alarm;
//! 6. the model learns the point (residuals clipped, so spikes do not drag it).
//!
//! The whole per-series state is a few KiB and round-trips through
//! [`AnomalyDetector::snapshot`] / [`AnomalyDetector::restore`] (compact bytes) or
//! serde (JSON), so the collector can persist it across restarts.

mod config;
mod detector;
mod seasonal;
mod snapshot;
#[cfg(test)]
mod tests;

pub use config::AnomalyConfig;
pub use detector::{AnomalyDetector, Component, Evidence, Score};
pub use seasonal::Seasonality;
