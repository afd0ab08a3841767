//! Seasonal candidates: a slow level plus an optional profile over one period (a day
//! or a week), indexed by the timestamp's phase so gaps and irregular intervals keep
//! their place. Each candidate learns in parallel; the detector uses the one whose
//! prediction error is clearly lowest, which is how seasonality is *detected*.
//!
//! A profile stores, per phase bin, the mean offset from the level and the mean
//! absolute residual (so a square wave's edges are expected to be noisier than its
//! plateaus). Values between bin centres are interpolated linearly.

use serde::{Deserialize, Serialize};

/// Seconds in a day and in a week.
pub const DAY: f64 = 86_400.0;
pub const WEEK: f64 = 7.0 * DAY;
/// Most bins a profile may use (bounds the state size).
pub const MAX_DAILY_BINS: usize = 144;
pub const MAX_WEEKLY_BINS: usize = 168;

/// Which seasonal model explains the series.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Seasonality {
    None,
    Daily,
    Weekly,
}

/// One candidate model: level (+ profile).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Period in seconds; 0 for the level-only candidate, negative if disabled.
    pub period: f64,
    /// Mean offset from the level, per bin (empty for the level-only candidate or
    /// before the sampling interval is known).
    pub mean: Vec<f32>,
    /// Mean absolute residual, per bin.
    pub spread: Vec<f32>,
    pub level: f64,
    /// Mean absolute residual over all bins (used before a bin has been visited).
    pub err: f64,
    /// Long-run mean absolute residual, used to choose between candidates.
    pub sel_err: f64,
    /// Points learned.
    pub seen: u64,
    /// First timestamp learned (seconds), to know when a full period has been covered.
    pub first_ts: f64,
    /// Visits per bin (saturating), so bins without history fall back to the
    /// candidate's overall spread.
    pub visits: Vec<u8>,
}

/// Learning rates of a candidate (from the detector's config).
#[derive(Clone, Copy, Debug)]
pub struct Rates {
    /// Level, per regular step.
    pub alpha: f64,
    /// Profile bin, per visit.
    pub gamma: f64,
    /// Overall spread, per point.
    pub spread_alpha: f64,
    /// Residuals are clipped to this many spreads before learning.
    pub clip: f64,
    /// Long-run error that chooses between candidates, per point.
    pub select_alpha: f64,
}

/// A prediction with its local spread.
#[derive(Clone, Copy, Debug)]
pub struct Expectation {
    pub value: f64,
    pub spread: f64,
}

impl Profile {
    pub fn level_only() -> Self {
        Self {
            period: 0.0,
            mean: Vec::new(),
            spread: Vec::new(),
            level: f64::NAN,
            err: 0.0,
            sel_err: 0.0,
            seen: 0,
            first_ts: 0.0,
            visits: Vec::new(),
        }
    }

    /// A seasonal candidate of `period` seconds; bins are allocated by [`Self::size_bins`].
    pub fn seasonal(period: f64) -> Self {
        Self {
            period,
            ..Self::level_only()
        }
    }

    /// Chooses the number of bins once the sampling interval is known: at most one bin
    /// per interval, at most `max`; fewer than 4 bins disables the candidate.
    pub fn size_bins(&mut self, interval: f64, max: usize) {
        if self.period <= 0.0 || !self.mean.is_empty() {
            return;
        }
        let bins = ((self.period / interval.max(1e-3)).floor() as usize).min(max);
        if bins >= 4 {
            self.mean = vec![0.0; bins];
            self.spread = vec![0.0; bins];
            self.visits = vec![0; bins];
        } else {
            self.period = -1.0; // sampling too coarse to see this season
        }
    }

    /// True once the profile has learned over at least `periods` full periods.
    pub fn mature(&self, now: f64, periods: f64) -> bool {
        !self.mean.is_empty() && self.seen > 0 && now - self.first_ts >= periods * self.period
    }

    fn position(&self, ts: f64) -> (usize, usize, f64) {
        let bins = self.mean.len();
        let q = ts / self.period;
        let phase = q - q.floor(); // exact, and cheaper than rem_euclid
        let pos = phase * bins as f64 - 0.5;
        let lo = pos.floor();
        let w = pos - lo;
        let i0 = if lo < 0.0 {
            bins - 1
        } else {
            (lo as usize).min(bins - 1)
        };
        let i1 = if i0 + 1 == bins { 0 } else { i0 + 1 };
        (i0, i1, w)
    }

    /// Expected value and spread at time `ts` (seconds).
    pub fn expect(&self, ts: f64) -> Expectation {
        if self.mean.is_empty() {
            return Expectation {
                value: self.level,
                spread: self.err,
            };
        }
        self.expect_at(self.position(ts))
    }

    fn expect_at(&self, (i0, i1, w): (usize, usize, f64)) -> Expectation {
        let off = (1.0 - w) * self.mean[i0] as f64 + w * self.mean[i1] as f64;
        let local = (1.0 - w) * self.spread[i0] as f64 + w * self.spread[i1] as f64;
        let known = self.visits[i0].min(self.visits[i1]);
        // Blend the bin's own spread with the global one until the bin has history.
        let k = (known as f64 / 4.0).min(1.0);
        let spread = k * local + (1.0 - k) * self.err;
        Expectation {
            value: self.level + off,
            spread,
        }
    }

    /// Learns `x` at time `ts`. `steps` is the number of regular intervals since the
    /// previous point (more than one after a gap).
    pub fn learn(&mut self, ts: f64, x: f64, steps: f64, rates: &Rates) {
        let Rates {
            alpha,
            gamma,
            spread_alpha,
            clip,
            select_alpha,
        } = *rates;
        if self.seen == 0 || !self.level.is_finite() {
            self.level = x;
            self.first_ts = ts;
            self.seen = 1;
            return;
        }
        let pos = (!self.mean.is_empty()).then(|| self.position(ts));
        let exp = match pos {
            Some(p) => self.expect_at(p),
            None => self.expect(ts),
        };
        let resid = x - exp.value;
        let limit = clip * exp.spread.max(self.err) * 1.25;
        let r = if limit > 0.0 {
            resid.clamp(-limit, limit)
        } else {
            resid
        };
        let a = super::detector::step_rate(alpha, steps);
        let abs = r.abs();
        self.err += spread_alpha * (abs - self.err);
        self.sel_err += select_alpha * (abs - self.sel_err);
        self.level += a * r;
        if let Some((i0, i1, w)) = pos {
            // A daily profile averages the first visits of a bin, then forgets at rate
            // `gamma`; a weekly one (7x fewer visits per bin) learns at `gamma` from the
            // start, so one odd week is not taken for a pattern.
            let fast_start = self.period < 2.0 * DAY;
            let rate = |v: u8| {
                if fast_start {
                    gamma.max(1.0 / (v as f64 + 1.0))
                } else {
                    gamma
                }
            };
            let g0 = rate(self.visits[i0]) * (1.0 - w);
            let g1 = rate(self.visits[i1]) * w;
            self.mean[i0] += (g0 * r) as f32;
            self.mean[i1] += (g1 * r) as f32;
            let s0 = self.spread[i0] as f64;
            let s1 = self.spread[i1] as f64;
            let first0 = self.visits[i0] == 0;
            let first1 = self.visits[i1] == 0;
            self.spread[i0] = if first0 {
                abs as f32
            } else {
                (s0 + g0 * (abs - s0)) as f32
            };
            self.spread[i1] = if first1 {
                abs as f32
            } else {
                (s1 + g1 * (abs - s1)) as f32
            };
            let pick = if w < 0.5 { i0 } else { i1 };
            self.visits[pick] = self.visits[pick].saturating_add(1);
            // Keep the profile centred so the level means what it says.
            if self.seen.is_multiple_of(64) {
                let mean =
                    self.mean.iter().map(|&v| v as f64).sum::<f64>() / self.mean.len() as f64;
                for v in &mut self.mean {
                    *v -= mean as f32;
                }
                self.level += mean;
            }
        }
        self.seen += 1;
    }
}
