//! Candidate forecasting methods and their selection by rolling-origin validation
//! on the tail of the history (the same way the methods are evaluated): smoothing
//! parameters are estimated once, on the data before the earliest validation
//! origin; each candidate then forecasts the last `folds` horizons and the one with
//! the lowest mean absolute error forecasts from the full history (same parameters,
//! states run to the end). No validation forecast sees data it is scored on.

use super::decompose::seasonal_profile;
use super::smoothing::{apply, estimate, Params, TrendKind};

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
    /// AR(1) reverting to the mean, of the deseasonalised series when `period` is set.
    MeanReverting { period: Option<usize> },
}

/// Point forecasts and their standard deviations for steps 1..=h.
#[derive(Debug, Clone)]
pub struct Prediction {
    pub method: Method,
    pub mean: Vec<f64>,
    pub sd: Vec<f64>,
}

const TRENDS: [TrendKind; 2] = [TrendKind::None, TrendKind::Damped];

/// Smoothing parameters for the plain and the deseasonalised series, per trend kind.
struct Estimates {
    plain: [Option<Params>; 2],
    adjusted: [Option<Params>; 2],
}

fn deseasonalise(y: &[f64], m: usize) -> Option<(Vec<f64>, Vec<f64>)> {
    let profile = seasonal_profile(y, m)?;
    let adjusted = y
        .iter()
        .enumerate()
        .map(|(t, v)| v - profile[t % m])
        .collect();
    Some((profile, adjusted))
}

fn estimate_all(y: &[f64], period: Option<usize>) -> Estimates {
    let adjusted = period.and_then(|m| deseasonalise(y, m)).map(|(_, a)| a);
    Estimates {
        plain: TRENDS.map(|t| estimate(y, t)),
        adjusted: TRENDS.map(|t| adjusted.as_deref().and_then(|a| estimate(a, t))),
    }
}

fn seasonal_naive(y: &[f64], m: usize, h: usize) -> Option<Prediction> {
    let n = y.len();
    if n < 2 * m {
        return None;
    }
    let sq: f64 = (m..n).map(|t| (y[t] - y[t - m]).powi(2)).sum();
    let sigma = (sq / (n - m) as f64).sqrt();
    Some(Prediction {
        method: Method::SeasonalNaive { period: m },
        mean: (0..h).map(|j| y[n - m + j % m]).collect(),
        sd: (0..h)
            .map(|j| sigma * ((j / m + 1) as f64).sqrt())
            .collect(),
    })
}

/// AR(1) around the mean: `mu + phi^h (y_n - mu)`, `phi` the lag-1 autocorrelation
/// (clamped to [0, 0.999]); variance `sigma^2 (1 - phi^2h) / (1 - phi^2)`.
fn mean_reverting(y: &[f64], h: usize) -> Option<(Vec<f64>, Vec<f64>)> {
    let n = y.len();
    if n < 10 {
        return None;
    }
    let mu = y.iter().sum::<f64>() / n as f64;
    let den: f64 = y.iter().map(|v| (v - mu).powi(2)).sum();
    if den <= 0.0 {
        return None;
    }
    let phi =
        (y.windows(2).map(|w| (w[0] - mu) * (w[1] - mu)).sum::<f64>() / den).clamp(0.0, 0.999);
    let sq: f64 = y
        .windows(2)
        .map(|w| ((w[1] - mu) - phi * (w[0] - mu)).powi(2))
        .sum();
    let sigma2 = sq / (n - 1) as f64;
    let last = y[n - 1] - mu;
    let (mut pow, mut mean, mut sd) = (1.0, Vec::with_capacity(h), Vec::with_capacity(h));
    for _ in 0..h {
        pow *= phi;
        mean.push(mu + pow * last);
        let var = if phi < 1.0 {
            sigma2 * (1.0 - pow * pow) / (1.0 - phi * phi)
        } else {
            sigma2
        };
        sd.push(var.sqrt());
    }
    Some((mean, sd))
}

/// Every candidate that applies to `y` with season `period` (if any).
fn candidates(y: &[f64], period: Option<usize>, h: usize, est: &Estimates) -> Vec<Prediction> {
    let mut out: Vec<Prediction> = est
        .plain
        .iter()
        .flatten()
        .filter_map(|p| apply(y, *p))
        .map(|s| Prediction {
            method: Method::Smoothing { trend: s.kind },
            mean: s.forecast(h),
            sd: s.std_devs(h),
        })
        .collect();
    if let Some((mean, sd)) = mean_reverting(y, h) {
        out.push(Prediction {
            method: Method::MeanReverting { period: None },
            mean,
            sd,
        });
    }
    let Some(m) = period else { return out };
    let n = y.len();
    let mut decomposed = Vec::new();
    if let Some((profile, adjusted)) = deseasonalise(y, m) {
        for s in est
            .adjusted
            .iter()
            .flatten()
            .filter_map(|p| apply(&adjusted, *p))
        {
            let mean = s
                .forecast(h)
                .into_iter()
                .enumerate()
                .map(|(j, v)| v + profile[(n + j) % m])
                .collect();
            decomposed.push(Prediction {
                method: Method::Decomposed {
                    period: m,
                    trend: s.kind,
                },
                mean,
                sd: s.std_devs(h),
            });
        }
        if let Some((mean, sd)) = mean_reverting(&adjusted, h) {
            let mean = mean
                .into_iter()
                .enumerate()
                .map(|(j, v)| v + profile[(n + j) % m])
                .collect();
            out.push(Prediction {
                method: Method::MeanReverting { period: Some(m) },
                mean,
                sd,
            });
        }
    }
    if let Some(naive) = seasonal_naive(y, m, h) {
        for d in &decomposed {
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
    out.extend(decomposed);
    out
}

/// Picks the method with the lowest validation MAE over up to `folds` trailing
/// horizons and returns its forecast from the full history. `None` if no method fits.
pub fn select(y: &[f64], period: Option<usize>, h: usize, folds: usize) -> Option<Prediction> {
    let n = y.len();
    let min_train = period.map_or(20, |m| 3 * m).max(20);
    let origins: Vec<usize> = (1..=folds)
        .map_while(|k| n.checked_sub(k * h))
        .take_while(|&o| o >= min_train)
        .collect();
    let est = estimate_all(&y[..origins.last().copied().unwrap_or(n)], period);
    // (method, summed MAE, folds scored)
    let mut scores: Vec<(Method, f64, usize)> = Vec::new();
    for &origin in &origins {
        let actual = &y[origin..origin + h];
        for c in candidates(&y[..origin], period, h, &est) {
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
    let mut all = candidates(y, period, h, &est).into_iter();
    let mut first = None;
    for c in all.by_ref() {
        if c.method == want {
            return Some(c);
        }
        first.get_or_insert(c);
    }
    first
}
