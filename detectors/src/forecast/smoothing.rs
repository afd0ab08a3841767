//! Exponential smoothing (ETS with additive errors): simple (A,N,N) and damped
//! trend (A,Ad,N) in error-correction form, parameters fitted by grid search on the
//! one-step squared error, h-step variances from the state-space formulas
//! (Hyndman et al., *Forecasting with Exponential Smoothing*, class 1 models).

/// Which trend the model carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrendKind {
    /// Level only (simple exponential smoothing).
    None,
    /// Level and a damped slope.
    Damped,
}

/// A fitted model: final state, smoothing parameters and one-step error scale.
#[derive(Debug, Clone, PartialEq)]
pub struct Smoothing {
    pub kind: TrendKind,
    pub alpha: f64,
    pub beta: f64,
    pub phi: f64,
    pub level: f64,
    pub slope: f64,
    /// Root mean squared one-step error over the fit.
    pub sigma: f64,
}

const ALPHAS: [f64; 12] = [
    0.01, 0.03, 0.06, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.65, 0.8, 0.95,
];
/// Slope smoothing as a fraction of alpha (beta = alpha * beta*).
const BETA_FRACTIONS: [f64; 4] = [0.01, 0.05, 0.15, 0.4];
const PHIS: [f64; 4] = [0.8, 0.9, 0.95, 0.98];

/// Runs the recursions; returns (sse, final level, final slope). Level-only models
/// are the same recursion with `beta = 0` and a zero initial slope.
fn run(y: &[f64], alpha: f64, beta: f64, phi: f64, l0: f64, b0: f64) -> (f64, f64, f64) {
    let (mut l, mut b, mut sse) = (l0, b0, 0.0);
    for &v in y {
        let f = l + phi * b;
        let e = v - f;
        sse += e * e;
        l = f + alpha * e;
        b = phi * b + beta * e;
    }
    (sse, l, b)
}

const LANES: usize = 8;

/// Sum of squared one-step errors for many parameter sets `(alpha, beta, phi)`,
/// eight at a time in one pass over the data (independent recursions side by side
/// keep the FPU busy; the single recursion is latency-bound).
fn sse_many(y: &[f64], params: &[(f64, f64, f64)], l0: f64, b0: f64) -> Vec<f64> {
    let mut out = Vec::with_capacity(params.len());
    for chunk in params.chunks(LANES) {
        let mut a = [0.0; LANES];
        let mut be = [0.0; LANES];
        let mut ph = [0.0; LANES];
        for (k, p) in chunk.iter().enumerate() {
            (a[k], be[k], ph[k]) = *p;
        }
        let mut l = [l0; LANES];
        let mut b = [b0; LANES];
        let mut sse = [0.0; LANES];
        for &v in y {
            for k in 0..LANES {
                let f = l[k] + ph[k] * b[k];
                let e = v - f;
                sse[k] += e * e;
                l[k] = f + a[k] * e;
                b[k] = ph[k] * b[k] + be[k] * e;
            }
        }
        out.extend_from_slice(&sse[..chunk.len()]);
    }
    out
}

fn argmin(params: &[(f64, f64, f64)], sse: &[f64]) -> ((f64, f64, f64), f64) {
    params
        .iter()
        .zip(sse)
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map_or(((0.5, 0.0, 1.0), f64::INFINITY), |(p, s)| (*p, *s))
}

/// Smoothing parameters of a model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    pub kind: TrendKind,
    pub alpha: f64,
    pub beta: f64,
    pub phi: f64,
}

/// Initial level and slope: the first value, and the mean step over the first ten.
fn initial_state(y: &[f64], kind: TrendKind) -> (f64, f64) {
    let k = y.len().min(10);
    let b0 = if kind == TrendKind::Damped && k > 1 {
        (y[k - 1] - y[0]) / (k - 1) as f64
    } else {
        0.0
    };
    (y[0], b0)
}

/// Estimates parameters minimising the one-step squared error: a grid over alpha,
/// then (damped) a grid over beta and phi at that alpha, then a finer alpha grid.
/// `None` for fewer than 4 points or non-finite data.
pub fn estimate(y: &[f64], kind: TrendKind) -> Option<Params> {
    if y.len() < 4 || y.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let (l0, b0) = initial_state(y, kind);
    let search = |grid: Vec<(f64, f64, f64)>| argmin(&grid, &sse_many(y, &grid, l0, b0));
    let (mut best, mut best_sse) = match kind {
        TrendKind::None => search(ALPHAS.iter().map(|&a| (a, 0.0, 1.0)).collect()),
        TrendKind::Damped => search(ALPHAS.iter().map(|&a| (a, 0.05 * a, 0.95)).collect()),
    };
    if kind == TrendKind::Damped {
        let a = best.0;
        let grid = BETA_FRACTIONS
            .iter()
            .flat_map(|&bf| PHIS.iter().map(move |&p| (a, a * bf, p)))
            .collect();
        let (p, sse) = search(grid);
        if sse < best_sse {
            (best, best_sse) = (p, sse);
        }
    }
    let fine = (0..LANES)
        .map(|i| {
            let a = (best.0 * (0.6 + 0.1 * i as f64)).clamp(0.001, 0.999);
            (a, best.1.min(a), best.2)
        })
        .collect();
    let (p, sse) = search(fine);
    if sse < best_sse {
        best = p;
    }
    Some(Params {
        kind,
        alpha: best.0,
        beta: best.1,
        phi: best.2,
    })
}

/// Runs a model with given parameters over `y`: final state and one-step error scale.
pub fn apply(y: &[f64], p: Params) -> Option<Smoothing> {
    if y.len() < 4 || y.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let (l0, b0) = initial_state(y, p.kind);
    let (sse, level, slope) = run(y, p.alpha, p.beta, p.phi, l0, b0);
    Some(Smoothing {
        kind: p.kind,
        alpha: p.alpha,
        beta: p.beta,
        phi: p.phi,
        level,
        slope,
        sigma: (sse / y.len() as f64).sqrt(),
    })
}

/// Estimates parameters and runs the model. `None` for fewer than 4 points or non-finite data.
pub fn fit(y: &[f64], kind: TrendKind) -> Option<Smoothing> {
    apply(y, estimate(y, kind)?)
}

impl Smoothing {
    /// Point forecasts for steps 1..=h.
    pub fn forecast(&self, h: usize) -> Vec<f64> {
        let mut damp = 0.0;
        let mut pow = 1.0;
        (0..h)
            .map(|_| {
                if self.kind == TrendKind::Damped {
                    pow *= self.phi;
                    damp += pow;
                }
                self.level + damp * self.slope
            })
            .collect()
    }

    /// Forecast standard deviations for steps 1..=h:
    /// `sigma * sqrt(1 + sum_{j<h} (alpha + beta * phi_j)^2)`, `phi_j = phi + ... + phi^j`.
    pub fn std_devs(&self, h: usize) -> Vec<f64> {
        let mut acc = 1.0;
        let mut phi_j = 0.0;
        let mut pow = 1.0;
        (0..h)
            .map(|j| {
                if j > 0 {
                    let c = match self.kind {
                        TrendKind::None => self.alpha,
                        TrendKind::Damped => self.alpha + self.beta * phi_j,
                    };
                    acc += c * c;
                }
                pow *= self.phi;
                phi_j += pow;
                self.sigma * acc.sqrt()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::synthetic::Rng;

    #[test]
    fn ses_on_constant_plus_noise_picks_small_alpha() {
        let mut rng = Rng::new(1);
        let y: Vec<f64> = (0..500).map(|_| 50.0 + rng.gauss()).collect();
        let m = fit(&y, TrendKind::None).unwrap();
        assert!(m.alpha < 0.1, "alpha {}", m.alpha);
        assert!((m.level - 50.0).abs() < 0.5);
        assert!((m.sigma - 1.0).abs() < 0.15, "sigma {}", m.sigma);
        let f = m.forecast(10);
        assert!(f.iter().all(|v| (v - m.level).abs() < 1e-12));
        let sd = m.std_devs(10);
        assert!(sd.windows(2).all(|w| w[1] >= w[0]));
    }

    #[test]
    fn damped_trend_follows_a_ramp() {
        let mut rng = Rng::new(2);
        let y: Vec<f64> = (0..300)
            .map(|t| 2.0 * t as f64 + 0.5 * rng.gauss())
            .collect();
        let m = fit(&y, TrendKind::Damped).unwrap();
        let f = m.forecast(5);
        assert!((f[0] - 600.0).abs() < 3.0, "{f:?}");
        assert!(f[4] > f[0] + 5.0, "trend continues: {f:?}");
    }

    #[test]
    fn random_walk_picks_large_alpha() {
        let mut rng = Rng::new(3);
        let mut x = 0.0;
        let y: Vec<f64> = (0..500)
            .map(|_| {
                x += rng.gauss();
                x
            })
            .collect();
        let m = fit(&y, TrendKind::None).unwrap();
        assert!(m.alpha > 0.8, "alpha {}", m.alpha);
        let sd = m.std_devs(9);
        // Random walk: variance grows about linearly with the horizon.
        assert!(sd[8] > 2.5 * sd[0], "{sd:?}");
    }

    #[test]
    fn too_short_or_nan_is_none() {
        assert!(fit(&[1.0, 2.0, 3.0], TrendKind::None).is_none());
        assert!(fit(&[1.0, 2.0, f64::NAN, 3.0, 4.0], TrendKind::Damped).is_none());
    }
}
