//! Season detection from the data: autocorrelation of the linearly detrended series
//! over all lags up to half its length; the period is the highest ACF peak that
//! follows a trough, preferring the fundamental over its multiples. Optionally
//! snapped to a calendar period (hour, day, week) when the sampling step is known.

use super::decompose::centred_moving_average;

/// A detected season.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Season {
    /// Period in samples.
    pub period: usize,
    /// Autocorrelation at that lag (0..1): how strong the season is.
    pub strength: f64,
}

/// ACF peaks below this are not a season.
const MIN_STRENGTH: f64 = 0.25;
/// A peak must rise this much above the deepest trough before it.
const MIN_PROMINENCE: f64 = 0.1;

/// In-place iterative radix-2 FFT (`re.len()` must be a power of two).
fn fft(re: &mut [f64], im: &mut [f64]) {
    let n = re.len();
    let mut j = 0;
    for i in 1..n {
        let mut bit = n >> 1;
        while j & bit != 0 {
            j ^= bit;
            bit >>= 1;
        }
        j |= bit;
        if i < j {
            re.swap(i, j);
            im.swap(i, j);
        }
    }
    // Twiddle factors e^{-2 pi i k / n}, k < n/2, from a table (no recurrence chain).
    let (tw_re, tw_im): (Vec<f64>, Vec<f64>) = (0..n / 2)
        .map(|k| {
            let ang = -2.0 * std::f64::consts::PI * k as f64 / n as f64;
            (ang.cos(), ang.sin())
        })
        .unzip();
    let mut len = 2;
    while len <= n {
        let stride = n / len;
        let half = len / 2;
        for start in (0..n).step_by(len) {
            for k in 0..half {
                let (cr, ci) = (tw_re[k * stride], tw_im[k * stride]);
                let (a, b) = (start + k, start + k + half);
                let (xr, xi) = (re[b] * cr - im[b] * ci, re[b] * ci + im[b] * cr);
                re[b] = re[a] - xr;
                im[b] = im[a] - xi;
                re[a] += xr;
                im[a] += xi;
            }
        }
        len <<= 1;
    }
}

/// Autocorrelation of `v` after removing its least-squares line, at every lag
/// `0..v.len()` (biased estimator: each lag divided by the total sum of squares).
/// Computed with an FFT, O(n log n).
pub fn autocorrelation(v: &[f64]) -> Vec<f64> {
    let n = v.len();
    if n < 2 {
        return vec![1.0; n];
    }
    let nf = n as f64;
    let xm = (nf - 1.0) / 2.0;
    let ym = v.iter().sum::<f64>() / nf;
    let sxx: f64 = (0..n).map(|i| (i as f64 - xm).powi(2)).sum();
    let sxy: f64 = v
        .iter()
        .enumerate()
        .map(|(i, y)| (i as f64 - xm) * (y - ym))
        .sum();
    let b = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let size = (2 * n).next_power_of_two();
    let mut re = vec![0.0; size];
    let mut im = vec![0.0; size];
    for (i, y) in v.iter().enumerate() {
        re[i] = y - ym - b * (i as f64 - xm);
    }
    let den: f64 = re.iter().map(|x| x * x).sum();
    if den <= 1e-300 * nf {
        let mut out = vec![0.0; n];
        out[0] = 1.0;
        return out;
    }
    fft(&mut re, &mut im);
    for (r, i) in re.iter_mut().zip(im.iter_mut()) {
        *r = *r * *r + *i * *i;
        *i = 0.0;
    }
    // Inverse FFT of the power spectrum (real and even): forward FFT, then scale.
    fft(&mut re, &mut im);
    re.truncate(n);
    let scale = re[0];
    re.iter().map(|x| x / scale).collect()
}

/// Lag-`p` autocorrelation of `v` minus its centred moving average of length `p`.
fn repeats_after_local_detrend(v: &[f64], p: usize) -> f64 {
    let ma = centred_moving_average(v, p);
    let d: Vec<f64> = v
        .iter()
        .zip(&ma)
        .filter_map(|(x, m)| m.map(|m| x - m))
        .collect();
    if d.len() <= p + 2 {
        return 0.0;
    }
    let mean = d.iter().sum::<f64>() / d.len() as f64;
    let den: f64 = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / d.len() as f64;
    if den <= 0.0 {
        return 0.0;
    }
    let num: f64 = d[..d.len() - p]
        .iter()
        .zip(&d[p..])
        .map(|(a, b)| (a - mean) * (b - mean))
        .sum::<f64>();
    num / (d.len() - p) as f64 / den
}

/// Detects the dominant period of `v` in samples, between 2 and `max_period`
/// (and at most half the series, so at least two full cycles are seen).
pub fn detect_season(v: &[f64], max_period: usize) -> Option<Season> {
    let n = v.len();
    let max_lag = max_period.min(n / 2);
    if max_lag < 3 || v.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let acf = autocorrelation(v);
    let mut peaks: Vec<Season> = Vec::new();
    let mut trough = f64::INFINITY;
    for k in 1..=max_lag.min(n - 2) {
        trough = trough.min(acf[k]);
        let is_peak = k >= 2 && acf[k] >= acf[k - 1] && acf[k] >= acf[k + 1];
        if is_peak && acf[k] >= MIN_STRENGTH && acf[k] - trough >= MIN_PROMINENCE {
            peaks.push(Season {
                period: k,
                strength: acf[k],
            });
        }
    }
    // A season survives removing the local level: after subtracting a moving average
    // of one period, values one period apart must still correlate. (A random walk
    // has ACF bumps at long lags too, but its detrended wiggles do not repeat.)
    // Checked lazily, strongest peaks first, as each check is O(n).
    peaks.sort_by(|a, b| b.strength.total_cmp(&a.strength));
    let repeats = |p: &Season| repeats_after_local_detrend(v, p.period) >= MIN_STRENGTH;
    let best = peaks.iter().take(8).find(|p| repeats(p)).copied()?;
    // Prefer a fundamental whose multiple is the best peak, if it is nearly as strong.
    let fundamental = peaks
        .iter()
        .filter(|p| p.period < best.period && p.strength >= 0.85 * best.strength)
        .filter(|p| {
            let ratio = best.period as f64 / p.period as f64;
            ratio >= 1.9
                && (ratio - ratio.round()).abs() * p.period as f64
                    <= 1.0 + 0.02 * best.period as f64
        })
        .min_by_key(|p| p.period)
        .filter(|p| repeats(p))
        .copied();
    let found = fundamental.unwrap_or(best);
    Some(refine(&acf, found, max_lag))
}

/// Noise moves a broad ACF peak by a sample or two; the true period also lines up
/// at its multiples. Picks the lag near `s.period` with the best mean unbiased
/// autocorrelation over up to four multiples.
fn refine(acf: &[f64], s: Season, max_lag: usize) -> Season {
    let n = acf.len();
    let w = (s.period / 20).max(1);
    let score = |q: usize| {
        let lags: Vec<usize> = (1..=4)
            .map(|j| j * q)
            .take_while(|&l| l + q / 2 <= n && l < n)
            .collect();
        lags.iter()
            .map(|&l| acf[l] * n as f64 / (n - l) as f64)
            .sum::<f64>()
            / lags.len().max(1) as f64
    };
    let best = (s.period.saturating_sub(w).max(2)..=(s.period + w).min(max_lag))
        .max_by(|a, b| score(*a).total_cmp(&score(*b)))
        .unwrap_or(s.period);
    Season {
        period: best,
        strength: acf[best],
    }
}

/// Calendar periods (hour, day, week) in milliseconds.
const CALENDAR_MS: [i64; 3] = [3_600_000, 86_400_000, 7 * 86_400_000];

/// If `period` samples of `step_ms` are within 5 % of an hour, day or week, returns
/// that calendar period in samples (when it is a whole number of samples).
pub fn snap_to_calendar(period: usize, step_ms: i64) -> usize {
    if step_ms <= 0 {
        return period;
    }
    let span = period as f64 * step_ms as f64;
    for cal in CALENDAR_MS {
        if (span - cal as f64).abs() <= 0.05 * cal as f64 && cal % step_ms == 0 {
            return (cal / step_ms) as usize;
        }
    }
    period
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::synthetic::{seasonal, Rng};

    #[test]
    fn finds_period_of_noisy_sine_with_trend() {
        for (period, seed) in [(24.0, 1), (7.0, 2), (96.0, 3), (288.0, 4)] {
            let n = (period as usize) * 8;
            let v = seasonal(n, period, 100.0, 10.0, 0.05, 4.0, seed);
            let s = detect_season(&v, 1000).unwrap();
            // Within 1 % (a broad daily peak may land one sample off; calendar snapping fixes that).
            assert!(
                s.period.abs_diff(period as usize) <= period as usize / 100,
                "period {period}: got {s:?}"
            );
            assert!(s.strength > 0.4);
        }
    }

    #[test]
    fn prefers_fundamental_over_multiples() {
        // Square-ish wave of period 12 with harmonics: peaks at 12, 24, 36 ...
        let v: Vec<f64> = (0..240)
            .map(|t| if t % 12 < 4 { 10.0 } else { 0.0 } + (t % 3) as f64 * 0.1)
            .collect();
        assert_eq!(detect_season(&v, 100).unwrap().period, 12);
    }

    #[test]
    fn no_season_in_noise_random_walk_or_line() {
        let mut rng = Rng::new(11);
        let noise: Vec<f64> = (0..1000).map(|_| rng.gauss()).collect();
        assert_eq!(detect_season(&noise, 400), None);
        for seed in 0..10 {
            let mut rng = Rng::new(100 + seed);
            let mut x = 0.0;
            let walk: Vec<f64> = (0..1000)
                .map(|_| {
                    x += rng.gauss();
                    x
                })
                .collect();
            // With few cycles in view a random walk can look periodic; with six or more it must not.
            assert_eq!(detect_season(&walk, 150), None, "seed {seed}");
        }
        let line: Vec<f64> = (0..500).map(f64::from).collect();
        assert_eq!(detect_season(&line, 200), None);
        assert_eq!(detect_season(&[1.0; 100], 40), None);
    }

    #[test]
    fn fft_autocorrelation_matches_direct_sum() {
        let v = seasonal(101, 9.0, 3.0, 2.0, 0.1, 1.0, 12);
        let acf = autocorrelation(&v);
        assert_eq!(acf.len(), 101);
        // Direct computation on the detrended series.
        let n = v.len() as f64;
        let xm = (n - 1.0) / 2.0;
        let ym = v.iter().sum::<f64>() / n;
        let sxy: f64 = v
            .iter()
            .enumerate()
            .map(|(i, y)| (i as f64 - xm) * (y - ym))
            .sum();
        let sxx: f64 = (0..v.len()).map(|i| (i as f64 - xm).powi(2)).sum();
        let d: Vec<f64> = v
            .iter()
            .enumerate()
            .map(|(i, y)| y - ym - sxy / sxx * (i as f64 - xm))
            .collect();
        let den: f64 = d.iter().map(|x| x * x).sum();
        for k in [0, 1, 9, 50, 100] {
            let direct: f64 = d[..101 - k]
                .iter()
                .zip(&d[k..])
                .map(|(a, b)| a * b)
                .sum::<f64>()
                / den;
            assert!(
                (acf[k] - direct).abs() < 1e-9,
                "lag {k}: {} vs {direct}",
                acf[k]
            );
        }
    }

    #[test]
    fn needs_two_cycles() {
        let v = seasonal(150, 100.0, 0.0, 10.0, 0.0, 0.1, 5);
        assert_eq!(detect_season(&v, 1000), None);
    }

    #[test]
    fn snaps_to_calendar() {
        assert_eq!(snap_to_calendar(285, 300_000), 288); // 5-minute samples, ~1 day
        assert_eq!(snap_to_calendar(59, 60_000), 60);
        assert_eq!(snap_to_calendar(40, 300_000), 40);
        assert_eq!(snap_to_calendar(40, 0), 40);
    }
}
