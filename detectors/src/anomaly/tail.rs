//! Calibration of evidence: how unusual is this `|z|` *for this series*?
//!
//! A decaying histogram of past `|z|` values on a log scale (two bins per octave)
//! gives the empirical tail probability `P(|Z| >= z)`; the surprise is
//! `-log10` of it. A series whose spikes are routine (a load balancer's bursts)
//! thus stops alarming on them, while a calm series alarms on a modest jump.
//! Beyond the largest value seen the tail is extrapolated as `1/z^2`.

use serde::{Deserialize, Serialize};

/// Number of bins: bin 0 holds `z < 1`, bin k >= 1 holds `[2^((k-1)/2), 2^(k/2))`.
pub const TAIL_BINS: usize = 28;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tail {
    pub counts: Vec<f32>,
    pub total: f32,
}

impl Default for Tail {
    fn default() -> Self {
        Self { counts: vec![0.0; TAIL_BINS], total: 0.0 }
    }
}

fn bin_of(z: f64) -> (usize, f64) {
    if z < 1.0 {
        return (0, 0.0);
    }
    let l = 2.0 * z.log2();
    let k = l.floor() as usize + 1;
    if k >= TAIL_BINS {
        (TAIL_BINS - 1, 1.0)
    } else {
        (k, l - l.floor())
    }
}

impl Tail {
    pub fn is_valid(&self) -> bool {
        self.counts.len() == TAIL_BINS
    }

    /// `-log10 P(|Z| >= z)` under the decayed history (with half a pseudo-count).
    pub fn surprise(&self, z: f64) -> f64 {
        let z = z.abs();
        if !z.is_finite() {
            return 0.0;
        }
        let (k, frac) = bin_of(z);
        let mut above: f64 = self.counts[k + 1..].iter().map(|&c| c as f64).sum();
        above += self.counts[k] as f64 * (1.0 - frac);
        let total = self.total as f64;
        let p = if above > 0.5 || k == 0 {
            (above + 0.5) / (total + 1.0)
        } else {
            // Beyond (nearly) everything seen: extrapolate from the highest occupied bin.
            let top = self.counts.iter().rposition(|&c| c > 0.0).unwrap_or(0);
            let edge = if top == 0 { 1.0 } else { 2f64.powf(top as f64 / 2.0) };
            let ratio = (edge / z).min(1.0);
            (above + 0.5) / (total + 1.0) * ratio * ratio
        };
        -p.clamp(1e-300, 1.0).log10()
    }

    /// Adds `z` to the history; older values decay with time constant `horizon` points.
    pub fn learn(&mut self, z: f64, horizon: f64) {
        let z = z.abs();
        if !z.is_finite() {
            return;
        }
        let keep = (1.0 - 1.0 / horizon.max(1.0)) as f32;
        for c in &mut self.counts {
            *c *= keep;
        }
        self.total = self.total * keep + 1.0;
        self.counts[bin_of(z).0] += 1.0;
    }
}
