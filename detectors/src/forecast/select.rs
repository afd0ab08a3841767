//! Candidate forecasting methods and their selection by rolling-origin validation
//! on the tail of the history (the same way the methods are evaluated): each
//! candidate forecasts the last `folds` horizons from earlier data, the one with
//! the lowest mean absolute error is refitted on everything.

use super::decompose::seasonal_profile;
use super::smoothing::{fit, TrendKind};

/// How a forecast was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Repeat the last cycle.
    SeasonalNaive { period: usize },
    /// Seasonal profile + exponential smoothing of the deseasonalised series.
    Decomposed { period: usize, trend: TrendKind },
    /// Exponential smoothing without a season.
    Smoothing { trend: TrendKind },
    /// Mean of `Decomposed` and `SeasonalNaive`.
    Blend { period: usize, trend: TrendKind },
}

/// Point forecasts and their standard deviations for steps 1..=h.
#[derive(Debug, Clone)]
pub struct Prediction {
    pub method: Method,
    pub mean: Vec<f64>,
    pub sd: Vec<f64>,
}

fn seasonal_naive(y: &[f64], m: usize, h: usize) -> Option<Prediction> {
    let n = y.len();
    if n < 2 * m {
        return None;
    }
    let diffs: Vec<f64> = (m..n).map(|t| y[t] - y[t - m]).collect();
    let sigma = (diffs.iter().map(|d| d * d).sum::<f64>() / diffs.len() as f64).sqrt();
    Some(Prediction {
        method: Method::SeasonalNaive { period: m },
        mean: (0..h).map(|j| y[n - m + j % m]).collect(),
        sd: (0..h)
            .map(|j| sigma * ((j / m + 1) as f64).sqrt())
            .collect(),
    })
}

fn smoothing(y: &[f64], trend: TrendKind, h: usize) -> Option<Prediction> {
    let s = fit(y, trend)?;
    Some(Prediction {
        method: Method::Smoothing { trend },
        mean: s.forecast(h),
        sd: s.std_devs(h),
    })
}

/// Decomposed candidates for both trend kinds (sharing one profile).
fn decomposed(y: &[f64], m: usize, h: usize) -> Vec<Prediction> {
    let Some(profile) = seasonal_profile(y, m) else {
        return Vec::new();
    };
    let n = y.len();
    let adjusted: Vec<f64> = y
        .iter()
        .enumerate()
        .map(|(t, v)| v - profile[t % m])
        .collect();
    [TrendKind::None, TrendKind::Damped]
        .into_iter()
        .filter_map(|trend| {
            let s = fit(&adjusted, trend)?;
            let mean = s
                .forecast(h)
                .into_iter()
                .enumerate()
                .map(|(j, v)| v + profile[(n + j) % m])
                .collect();
            Some(Prediction {
                method: Method::Decomposed { period: m, trend },
                mean,
                sd: s.std_devs(h),
            })
        })
        .collect()
}

/// Every candidate that applies to `y` with season `period` (if any).
pub fn candidates(y: &[f64], period: Option<usize>, h: usize) -> Vec<Prediction> {
    let mut out: Vec<Prediction> = [TrendKind::None, TrendKind::Damped]
        .into_iter()
        .filter_map(|t| smoothing(y, t, h))
        .collect();
    if let Some(m) = period {
        let dec = decomposed(y, m, h);
        if let Some(naive) = seasonal_naive(y, m, h) {
            for d in &dec {
                let Method::Decomposed { trend, .. } = d.method else {
                    continue;
                };
                out.push(Prediction {
                    method: Method::Blend { period: m, trend },
                    mean: d
                        .mean
                        .iter()
                        .zip(&naive.mean)
                        .map(|(a, b)| 0.5 * (a + b))
                        .collect(),
                    sd: d
                        .sd
                        .iter()
                        .zip(&naive.sd)
                        .map(|(a, b)| 0.5 * (a + b))
                        .collect(),
                });
            }
            out.push(naive);
        }
        out.extend(dec);
    }
    out
}

/// Picks the method with the lowest validation MAE over up to `folds` trailing
/// horizons and returns its forecast from the full history. `None` if no method fits.
pub fn select(y: &[f64], period: Option<usize>, h: usize, folds: usize) -> Option<Prediction> {
    let n = y.len();
    let min_train = period.map_or(20, |m| 3 * m).max(20);
    // (method, summed MAE, folds scored)
    let mut scores: Vec<(Method, f64, usize)> = Vec::new();
    for k in 1..=folds {
        let Some(origin) = n.checked_sub(k * h) else {
            break;
        };
        if origin < min_train {
            break;
        }
        let actual = &y[origin..origin + h];
        for c in candidates(&y[..origin], period, h) {
            let mae = c
                .mean
                .iter()
                .zip(actual)
                .map(|(f, a)| (f - a).abs())
                .sum::<f64>()
                / h as f64;
            match scores.iter_mut().find(|s| s.0 == c.method) {
                Some(s) => {
                    s.1 += mae;
                    s.2 += 1;
                }
                None => scores.push((c.method, mae, 1)),
            }
        }
    }
    let all = candidates(y, period, h);
    let most = scores.iter().map(|s| s.2).max().unwrap_or(0);
    let chosen = scores
        .iter()
        .filter(|s| s.2 == most)
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|s| s.0);
    let default = period.map_or(
        Method::Smoothing {
            trend: TrendKind::Damped,
        },
        |m| Method::Decomposed {
            period: m,
            trend: TrendKind::None,
        },
    );
    let want = chosen.unwrap_or(default);
    let mut all = all.into_iter();
    let mut first = None;
    for c in all.by_ref() {
        if c.method == want {
            return Some(c);
        }
        first.get_or_insert(c);
    }
    first
}
