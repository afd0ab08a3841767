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

/// Runs the recursions; returns (sse, final level, final slope).
fn run(
    y: &[f64],
    kind: TrendKind,
    alpha: f64,
    beta: f64,
    phi: f64,
    l0: f64,
    b0: f64,
) -> (f64, f64, f64) {
    let (mut l, mut b, mut sse) = (l0, b0, 0.0);
    let damped = kind == TrendKind::Damped;
    for &v in y {
        let f = if damped { l + phi * b } else { l };
        let e = v - f;
        sse += e * e;
        if damped {
            l = f + alpha * e;
            b = phi * b + beta * e;
        } else {
            l += alpha * e;
        }
    }
    (sse, l, b)
}

/// Fits a model of the given kind. `None` for fewer than 4 points or non-finite data.
pub fn fit(y: &[f64], kind: TrendKind) -> Option<Smoothing> {
    if y.len() < 4 || y.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let k = y.len().min(10);
    let l0 = y[0];
    let b0 = if kind == TrendKind::Damped {
        (y[k - 1] - y[0]) / (k - 1) as f64
    } else {
        0.0
    };
    let mut best = (f64::INFINITY, 0.5, 0.0, 1.0);
    let mut consider = |alpha: f64, beta: f64, phi: f64| {
        let (sse, _, _) = run(y, kind, alpha, beta, phi, l0, b0);
        if sse < best.0 {
            best = (sse, alpha, beta, phi);
        }
    };
    match kind {
        TrendKind::None => {
            for a in ALPHAS {
                consider(a, 0.0, 1.0);
            }
        }
        TrendKind::Damped => {
            for a in ALPHAS {
                for bf in BETA_FRACTIONS {
                    for p in PHIS {
                        consider(a, a * bf, p);
                    }
                }
            }
        }
    }
    // Refine alpha around the grid optimum (golden section, other parameters fixed).
    let (_, a0, beta, phi) = best;
    let (mut lo, mut hi) = ((a0 * 0.5).max(0.001), (a0 * 1.6).min(0.999));
    let g = 0.618_034;
    let sse_at = |a: f64| run(y, kind, a, beta.min(a), phi, l0, b0).0;
    let (mut c, mut d) = (hi - g * (hi - lo), lo + g * (hi - lo));
    let (mut fc, mut fd) = (sse_at(c), sse_at(d));
    for _ in 0..12 {
        if fc < fd {
            hi = d;
            d = c;
            fd = fc;
            c = hi - g * (hi - lo);
            fc = sse_at(c);
        } else {
            lo = c;
            c = d;
            fc = fd;
            d = lo + g * (hi - lo);
            fd = sse_at(d);
        }
    }
    let (alpha, sse) = if fc.min(fd) < best.0 {
        if fc < fd {
            (c, fc)
        } else {
            (d, fd)
        }
    } else {
        (a0, best.0)
    };
    let beta = beta.min(alpha);
    let (_, level, slope) = run(y, kind, alpha, beta, phi, l0, b0);
    Some(Smoothing {
        kind,
        alpha,
        beta,
        phi,
        level,
        slope,
        sigma: (sse / y.len() as f64).sqrt(),
    })
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
