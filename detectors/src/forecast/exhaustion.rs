//! Time to exhaustion: when a filling resource (disk, memory against its limit,
//! quota) reaches its limit, with a probability band, usable as an alert condition.
//!
//! Data flow: samples → cleanups (sharp drops, e.g. log rotation, compaction) split
//! the history into fill cycles → the current cycle's Theil-Sen trend gives the
//! fill rate and its one-sided bounds → if the limit is reached before the next
//! cleanup is due (cycles seen at least twice), or cleanups are not periodic, that
//! is the answer; otherwise the trend of the cycle peaks (what is left after each
//! cleanup grows) decides when a cycle will first top out at the limit.

use super::gaussian::normal_quantile;
use super::regular::Sample;
use super::trend::{median, theil_sen, Trend};
use crate::{Error, Result};

/// What the estimate is based on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// The last value is already at or above the limit.
    AlreadyFull,
    /// The fill rate since the last cleanup.
    CurrentFill,
    /// The rising peaks of periodic fill-and-cleanup cycles.
    PeakEnvelope,
}

/// When the limit will be reached. Times are Unix milliseconds, on the clock of the samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Exhaustion {
    /// Median estimate.
    pub eta: i64,
    /// With `probability`, the limit is not reached before this time.
    pub lower: i64,
    /// With `probability`, the limit is reached by this time; `None` when the fill
    /// rate is not positive at that confidence (no upper bound).
    pub upper: Option<i64>,
    pub probability: f64,
    /// Fill rate used, in value units per second.
    pub rate_per_s: f64,
    pub basis: Basis,
}

impl Exhaustion {
    /// True when the limit is reached by `deadline_ms` with at least `probability`:
    /// the alert condition "full within 4 h with 80 % probability".
    pub fn full_by(&self, deadline_ms: i64) -> bool {
        self.upper.is_some_and(|u| u <= deadline_ms)
    }
}

/// Fewest samples in the current fill cycle to fit its trend.
const MIN_CYCLE_POINTS: usize = 5;

fn at_seconds(t0: i64, s: f64) -> i64 {
    let ms = s * 1000.0;
    if ms.is_finite() {
        t0.saturating_add(ms.round() as i64) // `as` saturates for huge values
    } else {
        i64::MAX
    }
}

/// Estimates when `points` (sorted by time) reach `limit`. `probability` in
/// [0.5, 1) sets the band (see [`Exhaustion`]). `Ok(None)`: not filling up.
pub fn time_to_exhaustion(
    points: &[Sample],
    limit: f64,
    probability: f64,
) -> Result<Option<Exhaustion>> {
    if !limit.is_finite() {
        return Err(Error::InvalidInput(format!("limit {limit} is not finite")));
    }
    if !(0.5..1.0).contains(&probability) {
        return Err(Error::InvalidInput(format!(
            "probability {probability} not in [0.5, 1)"
        )));
    }
    let pts: Vec<Sample> = points
        .iter()
        .copied()
        .filter(|p| p.value.is_finite())
        .collect();
    if pts.len() < 3 {
        return Err(Error::InvalidInput(format!(
            "need at least 3 finite samples, got {}",
            pts.len()
        )));
    }
    if pts.windows(2).any(|w| w[1].ts_ms <= w[0].ts_ms) {
        return Err(Error::InvalidInput(
            "sample timestamps must be strictly increasing".into(),
        ));
    }
    let last = pts[pts.len() - 1];
    if last.value >= limit {
        return Ok(Some(Exhaustion {
            eta: last.ts_ms,
            lower: last.ts_ms,
            upper: Some(last.ts_ms),
            probability,
            rate_per_s: 0.0,
            basis: Basis::AlreadyFull,
        }));
    }
    let cuts = cleanups(&pts);
    let start = cuts.last().copied().unwrap_or(0);
    let current = &pts[start..];
    let fill = if current.len() >= MIN_CYCLE_POINTS {
        line_crossing(current, limit, probability)?
    } else {
        None
    };
    if cuts.len() < 2 {
        return Ok(fill.map(|f| f.into_exhaustion(probability, Basis::CurrentFill)));
    }
    // Periodic cleanups: does the current cycle reach the limit before the next one?
    let starts: Vec<i64> = cuts.iter().map(|&i| pts[i].ts_ms).collect();
    let gaps: Vec<f64> = starts.windows(2).map(|w| (w[1] - w[0]) as f64).collect();
    let cycle_ms = median(&gaps).unwrap_or(0.0);
    let next_cleanup = at_seconds(starts[starts.len() - 1], cycle_ms / 1000.0);
    if let Some(f) = fill.as_ref().filter(|f| f.eta <= next_cleanup) {
        return Ok(Some(
            f.clone().into_exhaustion(probability, Basis::CurrentFill),
        ));
    }
    // Peaks of completed cycles: the highest sample before each cleanup.
    let mut peaks = Vec::with_capacity(cuts.len());
    let mut from = 0;
    for &cut in &cuts {
        if let Some(p) = pts[from..cut]
            .iter()
            .max_by(|a, b| a.value.total_cmp(&b.value))
        {
            peaks.push(*p);
        }
        from = cut;
    }
    if peaks.len() < 3 {
        return Ok(None);
    }
    Ok(line_crossing(&peaks, limit, probability)?
        .map(|f| f.into_exhaustion(probability, Basis::PeakEnvelope)))
}

/// Indices that start a new fill cycle: drops far larger than the usual step
/// (6 robust standard deviations of the differences) and than 5 % of the range.
fn cleanups(pts: &[Sample]) -> Vec<usize> {
    let diffs: Vec<f64> = pts.windows(2).map(|w| w[1].value - w[0].value).collect();
    let med = median(&diffs).unwrap_or(0.0);
    let dev: Vec<f64> = diffs.iter().map(|d| (d - med).abs()).collect();
    let scale = 1.4826 * median(&dev).unwrap_or(0.0);
    let (lo, hi) = pts
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.value), hi.max(p.value))
        });
    let threshold = (6.0 * scale).max(0.05 * (hi - lo));
    diffs
        .iter()
        .enumerate()
        .filter(|(_, d)| **d < -threshold && **d < 0.0)
        .map(|(i, _)| i + 1)
        .collect()
}

/// A crossing of the limit by a fitted line.
#[derive(Debug, Clone)]
struct Crossing {
    eta: i64,
    lower: i64,
    upper: Option<i64>,
    rate: f64,
}

impl Crossing {
    fn into_exhaustion(self, probability: f64, basis: Basis) -> Exhaustion {
        Exhaustion {
            eta: self.eta,
            lower: self.lower,
            upper: self.upper,
            probability,
            rate_per_s: self.rate,
            basis,
        }
    }
}

/// Where the Theil-Sen line through `pts` crosses `limit`; `None` if it does not rise.
fn line_crossing(pts: &[Sample], limit: f64, probability: f64) -> Result<Option<Crossing>> {
    let t0 = pts[0].ts_ms;
    let x: Vec<f64> = pts.iter().map(|p| (p.ts_ms - t0) as f64 / 1000.0).collect();
    let y: Vec<f64> = pts.iter().map(|p| p.value).collect();
    let tr: Trend = theil_sen(&x, &y, probability)?;
    if tr.slope <= 0.0 {
        return Ok(None);
    }
    let x_last = x[x.len() - 1];
    let t_last = pts[pts.len() - 1].ts_ms;
    let level = tr.at(x_last);
    let gap = (limit - level).max(0.0);
    // Early side: the steeper slope, and noise that may touch the limit before the trend does.
    let early_gap = (limit - level - normal_quantile(probability) * tr.residual_scale).max(0.0);
    let upper = (tr.slope_lower > 0.0).then(|| at_seconds(t_last, gap / tr.slope_lower));
    Ok(Some(Crossing {
        eta: at_seconds(t_last, gap / tr.slope),
        lower: at_seconds(t_last, early_gap / tr.slope_upper.max(tr.slope)),
        upper,
        rate: tr.slope,
    }))
}

#[cfg(test)]
mod tests;
