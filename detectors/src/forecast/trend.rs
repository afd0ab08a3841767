//! Robust linear trend for capacity planning: Theil-Sen slope (median of pairwise
//! slopes) with Sen's rank-based confidence bounds, widened for autocorrelated
//! residuals. Input is `(x, y)` with `x` increasing (seconds, steps, ...).

use super::gaussian::normal_quantile;
use crate::{Error, Result};

/// Above this many pairs, slopes are taken over an evenly spread subset of lags.
const MAX_PAIRS: usize = 20_000;

/// A fitted line `y = intercept + slope * x` with one-sided bounds on the slope.
#[derive(Debug, Clone, PartialEq)]
pub struct Trend {
    pub slope: f64,
    pub intercept: f64,
    /// The slope is at least this with the requested confidence.
    pub slope_lower: f64,
    /// The slope is at most this with the requested confidence.
    pub slope_upper: f64,
    /// Robust scale of the residuals around the line (1.4826 * MAD).
    pub residual_scale: f64,
    /// Lag-1 autocorrelation of the residuals (used to widen the bounds).
    pub residual_lag1: f64,
    pub points: usize,
}

impl Trend {
    pub fn at(&self, x: f64) -> f64 {
        self.intercept + self.slope * x
    }
}

/// Median of the finite values of a slice (selects on a copy). `None` if there are none.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    let (m, odd) = (v.len() / 2, v.len() % 2 == 1);
    let (below, mid, _) = v.select_nth_unstable_by(m, f64::total_cmp);
    let mid = *mid;
    if odd {
        return Some(mid);
    }
    let lower = below.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some(0.5 * (lower + mid))
}

/// Value at fraction `q` in [0, 1] of the data (nearest rank); reorders `v`.
fn quantile_of(v: &mut [f64], q: f64) -> f64 {
    let i = (q.clamp(0.0, 1.0) * (v.len() - 1) as f64).round() as usize;
    *v.select_nth_unstable_by(i.min(v.len() - 1), f64::total_cmp)
        .1
}

/// Theil-Sen fit. `confidence` in (0.5, 1) sets the one-sided slope bounds.
pub fn theil_sen(x: &[f64], y: &[f64], confidence: f64) -> Result<Trend> {
    let n = x.len();
    if n != y.len() {
        return Err(Error::InvalidInput(format!(
            "x has {n} points, y has {}",
            y.len()
        )));
    }
    if n < 3 {
        return Err(Error::InvalidInput(format!(
            "a trend needs at least 3 points, got {n}"
        )));
    }
    if !(0.5..1.0).contains(&confidence) {
        return Err(Error::InvalidInput(format!(
            "confidence {confidence} not in [0.5, 1)"
        )));
    }
    if x.iter().chain(y).any(|v| !v.is_finite()) {
        return Err(Error::InvalidInput(
            "non-finite value in trend input".into(),
        ));
    }
    let total_pairs = n * (n - 1) / 2;
    let mut slopes = Vec::with_capacity(total_pairs.min(MAX_PAIRS + n));
    let lags: Vec<usize> = if total_pairs <= MAX_PAIRS {
        (1..n).collect()
    } else {
        // Evenly spread lags; each lag contributes all its (n - lag) pairs, as in the full set.
        let want = (MAX_PAIRS / n).max(8);
        (0..want)
            .map(|k| 1 + k * (n - 2) / (want - 1).max(1))
            .collect()
    };
    let mut last = 0;
    for &lag in &lags {
        if lag == last || lag >= n {
            continue;
        }
        last = lag;
        for i in 0..n - lag {
            let dx = x[i + lag] - x[i];
            if dx > 0.0 {
                slopes.push((y[i + lag] - y[i]) / dx);
            }
        }
    }
    if slopes.is_empty() {
        return Err(Error::InvalidInput("all x values are equal".into()));
    }
    let slope = quantile_of(&mut slopes, 0.5);
    let offsets: Vec<f64> = x.iter().zip(y).map(|(x, y)| y - slope * x).collect();
    let intercept = median(&offsets).unwrap_or(0.0);
    let resid: Vec<f64> = offsets.iter().map(|o| o - intercept).collect();
    let abs: Vec<f64> = resid.iter().map(|r| r.abs()).collect();
    let residual_scale = 1.4826 * median(&abs).unwrap_or(0.0);
    let lag1 = lag1_autocorrelation(&resid);
    // Sen's bounds: rank offset C = z * sqrt(Var S) among N slopes, as a fraction of N.
    let nf = n as f64;
    let var_s = nf * (nf - 1.0) * (2.0 * nf + 5.0) / 18.0;
    let inflate = ((1.0 + lag1.max(0.0)) / (1.0 - lag1.max(0.0)).max(1e-3)).sqrt();
    let frac = normal_quantile(confidence) * var_s.sqrt() * inflate / (2.0 * total_pairs as f64);
    Ok(Trend {
        slope,
        intercept,
        slope_lower: quantile_of(&mut slopes, 0.5 - frac),
        slope_upper: quantile_of(&mut slopes, 0.5 + frac),
        residual_scale,
        residual_lag1: lag1,
        points: n,
    })
}

/// Lag-1 autocorrelation, 0 for constant input.
pub fn lag1_autocorrelation(v: &[f64]) -> f64 {
    if v.len() < 3 {
        return 0.0;
    }
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let den: f64 = v.iter().map(|x| (x - mean).powi(2)).sum();
    if den <= 0.0 {
        return 0.0;
    }
    let num: f64 = v.windows(2).map(|w| (w[0] - mean) * (w[1] - mean)).sum();
    (num / den).clamp(-1.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::synthetic::Rng;

    #[test]
    fn recovers_slope_despite_outliers() {
        let mut rng = Rng::new(7);
        let x: Vec<f64> = (0..300).map(f64::from).collect();
        let mut y: Vec<f64> = x.iter().map(|x| 5.0 + 0.3 * x + rng.gauss()).collect();
        for i in (0..300).step_by(17) {
            y[i] += 500.0; // gross outliers that would wreck least squares
        }
        let t = theil_sen(&x, &y, 0.9).unwrap();
        assert!((t.slope - 0.3).abs() < 0.01, "slope {}", t.slope);
        assert!((t.intercept - 5.0).abs() < 1.0, "intercept {}", t.intercept);
        assert!(t.slope_lower < t.slope && t.slope < t.slope_upper);
        assert!(t.slope_lower > 0.28 && t.slope_upper < 0.32, "{t:?}");
    }

    #[test]
    fn slope_bounds_cover_truth_at_roughly_nominal_rate() {
        let x: Vec<f64> = (0..60).map(f64::from).collect();
        let (mut below, mut above) = (0, 0);
        for seed in 0..400 {
            let mut rng = Rng::new(seed);
            let y: Vec<f64> = x.iter().map(|x| 2.0 * x + 10.0 * rng.gauss()).collect();
            let t = theil_sen(&x, &y, 0.9).unwrap();
            below += usize::from(t.slope_lower <= 2.0);
            above += usize::from(t.slope_upper >= 2.0);
        }
        // One-sided 90 % bounds: each should hold in about 360 of 400 runs.
        assert!((330..=390).contains(&below), "lower held {below}/400");
        assert!((330..=390).contains(&above), "upper held {above}/400");
    }

    #[test]
    fn subsampled_pairs_match_full_fit() {
        let mut rng = Rng::new(3);
        let x: Vec<f64> = (0..3000).map(f64::from).collect();
        let y: Vec<f64> = x.iter().map(|x| -0.05 * x + rng.gauss()).collect();
        let t = theil_sen(&x, &y, 0.8).unwrap();
        assert!((t.slope + 0.05).abs() < 0.001, "slope {}", t.slope);
    }

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[f64::NAN, 5.0]), Some(5.0));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(theil_sen(&[1.0, 2.0], &[1.0, 2.0], 0.9).is_err());
        assert!(theil_sen(&[1.0, 2.0, 3.0], &[1.0, f64::NAN, 2.0], 0.9).is_err());
        assert!(theil_sen(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0], 0.9).is_err());
        assert!(theil_sen(&[1.0, 2.0, 3.0], &[1.0, 2.0], 0.9).is_err());
    }
}
