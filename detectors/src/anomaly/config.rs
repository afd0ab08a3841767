//! Tuning knobs of the streaming anomaly detector. One parameter set serves every
//! series: the defaults are what the NAB log in `detectors/README.md` measured.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Configuration of [`super::AnomalyDetector`]. Every field has a default; unknown
/// fields are rejected so a typo in a rule file is an error, not a silent default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnomalyConfig {
    /// Points learned before scores are reported (`warming_up` is true until then).
    pub warmup_points: u32,
    /// Learning rate (per regular step) of the fast level that predicts the next point.
    pub fast_alpha: f64,
    /// Learning rate (per regular step) of the slow level under the seasonal profile.
    pub slow_alpha: f64,
    /// Learning rate (per regular step) of the level under a seasonal profile (the
    /// profile carries the shape, so its level can move slower).
    pub seasonal_level_alpha: f64,
    /// Learning rate of a seasonal profile bin each time its phase is visited.
    pub season_gamma: f64,
    /// Learning rate of the long-run residual spreads.
    pub spread_alpha: f64,
    /// Learning rate of the short-run residual mean (level-shift and variance evidence).
    pub short_alpha: f64,
    /// A candidate seasonal profile is used once its error is below this fraction of
    /// the error without it.
    pub season_gain: f64,
    /// Learning rate of the long-run (clipped) errors that choose the seasonal model.
    pub select_alpha: f64,
    /// A seasonal profile in use is dropped only when its error exceeds this multiple
    /// of the simpler model's (hysteresis against flapping).
    pub season_keep: f64,
    /// Residuals are clipped to this many spreads before they update the model, so a
    /// spike does not drag the expectation with it.
    pub clip_sigmas: f64,
    /// Steps without data longer than this many typical intervals count as a gap.
    pub gap_intervals: f64,
    /// Width of the reported band, in spreads either side of the expected value.
    pub band_sigmas: f64,
    /// Evidence weights of the components (point residual against the seasonal
    /// expectation, fast next-point residual, level shift, variance change). The fast
    /// and variance evidence are reported but weigh 0 by default: on NAB they added
    /// more false alarms than detections.
    pub weight_residual: f64,
    pub weight_fast: f64,
    pub weight_shift: f64,
    pub weight_variance: f64,
    /// Evidence (in spreads) that maps to score 0.5.
    pub half_score_evidence: f64,
    /// Score at or above which an alarm is raised; the next `suppress_points` points
    /// then score 0 (one incident, one alarm).
    pub alarm_score: f64,
    pub suppress_points: u32,
    /// Outside suppression, an alarm also needs evidence of at least this fraction of
    /// the strongest evidence of the recent past (a decayed maximum with half-life
    /// `recent_half_life` points): a turbulent series alarms on news, not on repeats.
    pub recent_ratio: f64,
    pub recent_half_life: f64,
    /// Routine events: when at least `routine_events` distinct events (evidence of at
    /// least `routine_fraction` of the long-run maximum, half-life `routine_half_life`
    /// points) happened, only evidence above that maximum raises an alarm.
    pub routine_events: f64,
    pub routine_fraction: f64,
    pub routine_half_life: f64,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        Self {
            warmup_points: 150,
            fast_alpha: 0.3,
            slow_alpha: 0.02,
            seasonal_level_alpha: 0.01,
            season_gamma: 0.15,
            spread_alpha: 0.03,
            short_alpha: 0.2,
            season_gain: 0.7,
            select_alpha: 0.006,
            season_keep: 1.0,
            clip_sigmas: 4.0,
            gap_intervals: 4.0,
            band_sigmas: 4.0,
            weight_residual: 1.0,
            weight_fast: 0.0,
            weight_shift: 1.1,
            weight_variance: 0.0,
            half_score_evidence: 8.5,
            alarm_score: 0.47,
            suppress_points: 120,
            recent_ratio: 0.8,
            recent_half_life: 300.0,
            routine_events: 12.0,
            routine_fraction: 0.5,
            routine_half_life: 3000.0,
        }
    }
}

impl AnomalyConfig {
    /// Checks every field and reports all problems together.
    pub fn validate(&self) -> Result<()> {
        let mut errs = Vec::new();
        let unit = [
            ("fast_alpha", self.fast_alpha),
            ("slow_alpha", self.slow_alpha),
            ("season_gamma", self.season_gamma),
            ("seasonal_level_alpha", self.seasonal_level_alpha),
            ("spread_alpha", self.spread_alpha),
            ("short_alpha", self.short_alpha),
            ("season_gain", self.season_gain),
            ("select_alpha", self.select_alpha),
            ("alarm_score", self.alarm_score),
        ];
        for (name, v) in unit {
            if !(v > 0.0 && v <= 1.0) {
                errs.push(format!("{name} must be in (0, 1], got {v}"));
            }
        }
        let positive = [
            ("clip_sigmas", self.clip_sigmas),
            ("season_keep", self.season_keep),
            ("gap_intervals", self.gap_intervals),
            ("band_sigmas", self.band_sigmas),
            ("half_score_evidence", self.half_score_evidence),
            ("recent_half_life", self.recent_half_life),
            ("routine_events", self.routine_events),
            ("routine_fraction", self.routine_fraction),
            ("routine_half_life", self.routine_half_life),
        ];
        for (name, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                errs.push(format!("{name} must be a positive number, got {v}"));
            }
        }
        let weights = [
            ("recent_ratio", self.recent_ratio),
            ("weight_residual", self.weight_residual),
            ("weight_fast", self.weight_fast),
            ("weight_shift", self.weight_shift),
            ("weight_variance", self.weight_variance),
        ];
        for (name, v) in weights {
            if !(v.is_finite() && v >= 0.0) {
                errs.push(format!("{name} must be >= 0, got {v}"));
            }
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidInput(format!(
                "anomaly config: {}",
                errs.join("; ")
            )))
        }
    }
}
