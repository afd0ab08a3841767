//! Forecasting for capacity and alerting. Data flow: samples (timestamp, value) →
//! [`regular`] resamples them onto an even grid → [`season`] finds the period from the
//! autocorrelation → [`select`] validates a few candidate methods (seasonal naive,
//! seasonal profile + exponential smoothing from [`decompose`] and [`smoothing`],
//! their blend) on the tail of the history and forecasts with the best, with
//! prediction intervals from the state-space variances → [`Forecast`].
//! Separately, [`trend`] fits a robust (Theil-Sen) line and [`exhaustion`] turns it
//! into "when will this hit its limit", with a probability band, for alerting.

pub mod decompose;
pub mod exhaustion;
pub mod gaussian;
pub mod regular;
pub mod season;
pub mod select;
pub mod smoothing;
#[cfg(test)]
pub(crate) mod synthetic;
pub mod trend;

use std::sync::atomic::{AtomicU64, Ordering};

pub use exhaustion::{time_to_exhaustion, Exhaustion};
pub use regular::Sample;
pub use season::{detect_season, Season};
pub use select::Method;
pub use smoothing::TrendKind;
pub use trend::{theil_sen, Trend};

use crate::{Error, Result};

/// How the season is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeasonSetting {
    /// Detect it from the autocorrelation, up to this many samples.
    Auto { max_period: usize },
    /// Use this period (in samples).
    Fixed(usize),
    /// No season.
    NonSeasonal,
}

/// Forecast parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastConfig {
    /// Steps ahead to forecast.
    pub horizon: usize,
    /// Coverage of the central prediction interval, in (0, 1), e.g. 0.8.
    pub level: f64,
    pub season: SeasonSetting,
    /// Sampling step in ms when known (0 = unknown): detected periods within 5 %
    /// of an hour, day or week are snapped to it.
    pub step_ms: i64,
    /// Only the most recent `max_history` samples are used.
    pub max_history: usize,
    /// Trailing horizons used to pick the method (0 = no validation).
    pub validation_folds: usize,
}

impl Default for ForecastConfig {
    fn default() -> Self {
        ForecastConfig {
            horizon: 48,
            level: 0.8,
            season: SeasonSetting::Auto { max_period: 2016 },
            step_ms: 0,
            max_history: 4032,
            validation_folds: 2,
        }
    }
}

/// Point forecasts with a central prediction interval, for steps 1..=horizon.
#[derive(Debug, Clone, PartialEq)]
pub struct Forecast {
    pub mean: Vec<f64>,
    pub lower: Vec<f64>,
    pub upper: Vec<f64>,
    /// Coverage of `lower..=upper`.
    pub level: f64,
    /// Season used (detected or fixed), if any.
    pub season: Option<Season>,
    pub method: Method,
}

static FORECASTS: AtomicU64 = AtomicU64::new(0);
static REJECTED: AtomicU64 = AtomicU64::new(0);

/// Process-wide counters of this module, as `(name, value)` in Prometheus naming.
pub fn counters() -> [(&'static str, u64); 2] {
    [
        (
            "sightline_detectors_forecasts_total",
            FORECASTS.load(Ordering::Relaxed),
        ),
        (
            "sightline_detectors_forecast_rejected_total",
            REJECTED.load(Ordering::Relaxed),
        ),
    ]
}

fn reject(msg: String) -> Error {
    REJECTED.fetch_add(1, Ordering::Relaxed);
    Error::InvalidInput(msg)
}

/// Forecasts an evenly spaced series. Interior NaNs are linearly interpolated;
/// fewer than 8 finite values, a zero horizon or a level outside (0, 1) is an error.
pub fn forecast(values: &[f64], cfg: &ForecastConfig) -> Result<Forecast> {
    if cfg.horizon == 0 {
        return Err(reject("forecast horizon must be at least 1".into()));
    }
    if !(cfg.level > 0.0 && cfg.level < 1.0) {
        return Err(reject(format!(
            "interval level {} not in (0, 1)",
            cfg.level
        )));
    }
    let start = values.len().saturating_sub(cfg.max_history.max(8));
    let y = regular::fill_gaps(&values[start..]).ok_or_else(|| {
        reject(format!(
            "forecast needs at least 8 finite values, got {}",
            values.len()
        ))
    })?;
    let season = match cfg.season {
        SeasonSetting::NonSeasonal => None,
        SeasonSetting::Fixed(p) if p >= 2 && y.len() >= 2 * p => Some(Season {
            period: p,
            strength: f64::NAN,
        }),
        SeasonSetting::Fixed(_) => None,
        SeasonSetting::Auto { max_period } => detect_season(&y, max_period).map(|s| {
            let period = season::snap_to_calendar(s.period, cfg.step_ms);
            Season {
                period,
                strength: s.strength,
            }
        }),
    };
    let season = season.filter(|s| y.len() >= 2 * s.period);
    let pred = select::select(
        &y,
        season.map(|s| s.period),
        cfg.horizon,
        cfg.validation_folds,
    )
    .ok_or_else(|| reject("no forecasting method fits this series".into()))?;
    let z = gaussian::normal_quantile(0.5 + cfg.level / 2.0);
    FORECASTS.fetch_add(1, Ordering::Relaxed);
    Ok(Forecast {
        lower: pred
            .mean
            .iter()
            .zip(&pred.sd)
            .map(|(m, s)| m - z * s)
            .collect(),
        upper: pred
            .mean
            .iter()
            .zip(&pred.sd)
            .map(|(m, s)| m + z * s)
            .collect(),
        mean: pred.mean,
        level: cfg.level,
        season,
        method: pred.method,
    })
}

/// A forecast with the timestamps of its steps.
#[derive(Debug, Clone, PartialEq)]
pub struct TimedForecast {
    pub step_ms: i64,
    /// Timestamp of each forecast step.
    pub timestamps_ms: Vec<i64>,
    pub forecast: Forecast,
}

/// Forecasts irregular samples: resampled onto their median step first; the
/// step also snaps detected seasons to calendar periods.
pub fn forecast_samples(samples: &[Sample], cfg: &ForecastConfig) -> Result<TimedForecast> {
    let grid = regular::resample(samples).inspect_err(|_| {
        REJECTED.fetch_add(1, Ordering::Relaxed);
    })?;
    let cfg = ForecastConfig {
        step_ms: grid.step_ms,
        ..cfg.clone()
    };
    let forecast = forecast(&grid.values, &cfg)?;
    let last = grid.start_ms + grid.step_ms * (grid.values.len() as i64 - 1);
    let timestamps_ms = (1..=cfg.horizon as i64)
        .map(|k| last + k * grid.step_ms)
        .collect();
    Ok(TimedForecast {
        step_ms: grid.step_ms,
        timestamps_ms,
        forecast,
    })
}

#[cfg(test)]
mod tests;
