//! Seasonal decomposition (classical, robust): a centred moving average of one
//! period is the trend; per-phase trimmed means of the detrended values, lightly
//! smoothed around the cycle and centred on zero, are the seasonal profile.
//! The forecaster models `y - profile` with exponential smoothing and adds the
//! profile back (STL/MSTL + ETS style, one season).

/// Centred moving average over `m` points (2x`m` when `m` is even); `None` at the
/// edges where the window does not fit.
pub(crate) fn centred_moving_average(y: &[f64], m: usize) -> Vec<Option<f64>> {
    let n = y.len();
    let mut prefix = vec![0.0; n + 1];
    for (i, v) in y.iter().enumerate() {
        prefix[i + 1] = prefix[i] + v;
    }
    let sum = |a: usize, b: usize| prefix[b] - prefix[a]; // y[a..b]
    let half = m / 2;
    (0..n)
        .map(|t| {
            if m % 2 == 1 {
                (t >= half && t + half < n).then(|| sum(t - half, t + half + 1) / m as f64)
            } else {
                // 2 x m MA: average of the two m-windows around t.
                (t >= half && t + half < n).then(|| {
                    (sum(t - half, t + half) + sum(t + 1 - half, t + half + 1)) / (2.0 * m as f64)
                })
            }
        })
        .collect()
}

/// Mean of the middle of `v` (drops the top and bottom fifth); median below 5 values.
fn trimmed_mean(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n < 5 {
        return if n % 2 == 1 {
            v[n / 2]
        } else {
            0.5 * (v[n / 2 - 1] + v[n / 2])
        };
    }
    let cut = n / 5;
    let mid = &v[cut..n - cut];
    mid.iter().sum::<f64>() / mid.len() as f64
}

/// Seasonal profile of period `m`: element `p` is the seasonal effect at index `t`
/// with `t % m == p` (indices counted from the start of `y`). `None` when `y`
/// holds fewer than two periods.
pub fn seasonal_profile(y: &[f64], m: usize) -> Option<Vec<f64>> {
    if m < 2 || y.len() < 2 * m {
        return None;
    }
    let trend = centred_moving_average(y, m);
    let mut by_phase: Vec<Vec<f64>> = vec![Vec::new(); m];
    for (t, (v, tr)) in y.iter().zip(&trend).enumerate() {
        if let Some(tr) = tr {
            by_phase[t % m].push(v - tr);
        }
    }
    let raw: Vec<f64> = by_phase
        .iter_mut()
        .map(|v| if v.is_empty() { 0.0 } else { trimmed_mean(v) })
        .collect();
    // Circular smoothing: about 1/96 of the period either side (e.g. +-15 min of a day).
    let w = m / 96;
    let smooth: Vec<f64> = (0..m)
        .map(|p| {
            let s: f64 = (0..=2 * w).map(|k| raw[(p + m + k - w) % m]).sum();
            s / (2 * w + 1) as f64
        })
        .collect();
    let mean = smooth.iter().sum::<f64>() / m as f64;
    Some(smooth.into_iter().map(|v| v - mean).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::synthetic::seasonal;

    #[test]
    fn recovers_sine_profile_under_trend_and_noise() {
        let m = 48;
        let y = seasonal(m * 10, m as f64, 20.0, 5.0, 0.02, 0.5, 9);
        let prof = seasonal_profile(&y, m).unwrap();
        for (p, v) in prof.iter().enumerate() {
            let truth = 5.0 * (2.0 * std::f64::consts::PI * p as f64 / m as f64).sin();
            assert!((v - truth).abs() < 0.6, "phase {p}: {v} vs {truth}");
        }
        assert!(prof.iter().sum::<f64>().abs() < 1e-9);
    }

    #[test]
    fn odd_period_and_short_input() {
        let y: Vec<f64> = (0..70)
            .map(|t| [1.0, 5.0, 3.0, 0.0, 2.0, 4.0, 6.0][t % 7])
            .collect();
        let prof = seasonal_profile(&y, 7).unwrap();
        assert!((prof[1] - (5.0 - 3.0)).abs() < 1e-9, "{prof:?}");
        assert!(seasonal_profile(&y[..13], 7).is_none());
    }

    #[test]
    fn moving_average_edges() {
        let ma = centred_moving_average(&[1.0, 2.0, 3.0, 4.0, 5.0], 2);
        assert_eq!(ma[0], None);
        assert_eq!(ma[1], Some(2.0));
        assert_eq!(ma[4], None);
    }
}
