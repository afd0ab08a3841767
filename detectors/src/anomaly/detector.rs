//! The per-series detector: state, scoring of one point, learning.

use serde::{Deserialize, Serialize};

use super::config::AnomalyConfig;
use super::seasonal::{
    Expectation, Profile, Rates, Seasonality, DAY, MAX_DAILY_BINS, MAX_WEEKLY_BINS, WEEK,
};
use crate::Result;

/// Which part of the model produced a score.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Component {
    /// Nothing unusual.
    None,
    /// Still learning; no alarm is raised.
    WarmingUp,
    /// The value was NaN or infinite; it was ignored.
    Invalid,
    /// The point is far above (Spike) or below (Dip) the expected value.
    Spike,
    Dip,
    /// Recent points sit persistently away from the expectation.
    LevelShift,
    /// The point-to-point variability changed (noise burst, or a flat line in a noisy series).
    Variance,
    /// A monotone counter went down: treated as a reset, not an anomaly.
    CounterReset,
}

/// Per-component evidence, in spreads (robust standard deviations).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Residual against the slow level plus seasonal profile (signed).
    pub residual: f64,
    /// Residual against the fast next-point prediction (signed).
    pub fast: f64,
    /// Short-run mean of the residual, in standard errors (signed).
    pub shift: f64,
    /// Log ratio of short-run to long-run variability, scaled (signed; negative = calmer).
    pub variance: f64,
}

/// The score of one point, with what a person needs to act on it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// Anomaly score in [0, 1].
    pub value: f64,
    pub warming_up: bool,
    /// What the model expected and the band it considered normal.
    pub expected: f64,
    pub band: (f64, f64),
    /// The value as given (before counter differencing).
    pub observed: f64,
    /// The component with the strongest evidence.
    pub component: Component,
    /// Seasonal model in use.
    pub seasonality: Seasonality,
    /// True if the point came after a gap in the data.
    pub after_gap: bool,
    /// True if the evidence would have raised an alarm but one was raised less than
    /// `suppress_points` points ago (the score is then 0).
    pub suppressed: bool,
    pub evidence: Evidence,
}

/// Whether the series is a monotone counter (decided after a few points).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    Undecided,
    Gauge,
    Counter,
}

/// Learning rate for `steps` regular intervals at once (exactly `alpha` for one step).
pub(super) fn step_rate(alpha: f64, steps: f64) -> f64 {
    if steps <= 1.0 {
        alpha
    } else {
        1.0 - (1.0 - alpha).powf(steps)
    }
}

/// Evidence below which a point is calm enough to re-choose the seasonal model.
const CALM_SHIFT: f64 = 3.0;

/// Points looked at before deciding whether the series is a counter.
const COUNTER_PROBE: u32 = 30;
/// Points after which the seasonal profiles are sized from the observed interval.
const SIZE_AFTER: u64 = 10;

/// Everything that persists between points (see `snapshot.rs` for the byte format).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub n: u64,
    pub invalid: u64,
    pub resets: u64,
    pub last_ts: Option<i64>,
    pub interval: f64,
    pub kind: Kind,
    pub last_raw: f64,
    pub nondecreasing: u32,
    pub increasing: u32,
    pub fast: f64,
    pub fast_spread: f64,
    pub short_mean: f64,
    pub short_var: f64,
    pub magnitude: f64,
    pub active: Seasonality,
    pub flat: Profile,
    pub daily: Profile,
    pub weekly: Profile,
    pub since_alarm: u32,
    /// Decayed maximum of recent evidence (see `recent_ratio`).
    pub recent_max: f64,
    /// Decayed maximum of evidence over the long run, the decayed count of distinct
    /// events that came close to it, and whether the last point was such an event.
    pub long_max: f64,
    pub routine_events: f64,
    pub was_high: bool,
    /// Whether the last point's evidence was low (model choice is allowed).
    pub calm: bool,
}

impl State {
    fn new() -> Self {
        Self {
            n: 0,
            invalid: 0,
            resets: 0,
            last_ts: None,
            interval: 0.0,
            kind: Kind::Undecided,
            last_raw: f64::NAN,
            nondecreasing: 0,
            increasing: 0,
            fast: f64::NAN,
            fast_spread: 0.0,
            short_mean: 0.0,
            short_var: 0.0,
            magnitude: 0.0,
            active: Seasonality::None,
            flat: Profile::level_only(),
            daily: Profile::seasonal(DAY),
            weekly: Profile::seasonal(WEEK),
            since_alarm: u32::MAX,
            recent_max: 0.0,
            long_max: 0.0,
            routine_events: 0.0,
            was_high: false,
            calm: true,
        }
    }

    /// Forget the learned model but keep time and counter bookkeeping.
    fn relearn(&mut self) {
        let keep = (
            self.n,
            self.invalid,
            self.resets,
            self.last_ts,
            self.interval,
            self.kind,
            self.last_raw,
        );
        *self = Self::new();
        (
            self.n,
            self.invalid,
            self.resets,
            self.last_ts,
            self.interval,
            self.kind,
            self.last_raw,
        ) = keep;
    }
}

/// Streaming anomaly detector for one series. Feed points in time order with
/// [`update`](Self::update); snapshot and restore it freely between points.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnomalyDetector {
    pub(super) cfg: AnomalyConfig,
    pub(super) st: State,
    /// Per-point decays of `recent_max` and of the long-run memory, from the config.
    #[serde(skip, default)]
    pub(super) recent_decay: f64,
    #[serde(skip, default)]
    pub(super) long_decay: f64,
}

impl AnomalyDetector {
    /// A fresh detector. Fails if the configuration is invalid.
    pub fn new(cfg: AnomalyConfig) -> Result<Self> {
        cfg.validate()?;
        Ok(Self::assemble(cfg, State::new()))
    }

    pub(super) fn assemble(cfg: AnomalyConfig, st: State) -> Self {
        let recent_decay = 0.5f64.powf(1.0 / cfg.recent_half_life);
        let long_decay = 0.5f64.powf(1.0 / cfg.routine_half_life);
        Self {
            cfg,
            st,
            recent_decay,
            long_decay,
        }
    }

    pub fn config(&self) -> &AnomalyConfig {
        &self.cfg
    }

    /// Points learned so far (finite values only).
    pub fn points(&self) -> u64 {
        self.st.n
    }

    /// Non-finite values rejected so far.
    pub fn invalid_points(&self) -> u64 {
        self.st.invalid
    }

    /// Counter resets seen so far.
    pub fn counter_resets(&self) -> u64 {
        self.st.resets
    }

    fn active(&self) -> &Profile {
        match self.st.active {
            Seasonality::None => &self.st.flat,
            Seasonality::Daily => &self.st.daily,
            Seasonality::Weekly => &self.st.weekly,
        }
    }

    /// Scores `value` observed at `ts_ms` (milliseconds since the epoch), then learns it.
    pub fn update(&mut self, ts_ms: i64, value: f64) -> Score {
        let mut score = Score {
            value: 0.0,
            warming_up: self.st.n < self.cfg.warmup_points as u64,
            expected: f64::NAN,
            band: (f64::NAN, f64::NAN),
            observed: value,
            component: Component::Invalid,
            seasonality: self.st.active,
            after_gap: false,
            suppressed: false,
            evidence: Evidence::default(),
        };
        if !value.is_finite() {
            self.st.invalid += 1;
            return score;
        }
        let t = ts_ms as f64 / 1000.0;
        let steps = self.track_time(ts_ms);
        score.after_gap = steps > self.cfg.gap_intervals;

        let Some((x, base)) = self.model_value(value, steps) else {
            score.component = Component::CounterReset;
            return score;
        };
        self.st.n += 1;
        if self.st.n == SIZE_AFTER && self.st.interval > 0.0 {
            self.st.daily.size_bins(self.st.interval, MAX_DAILY_BINS);
            self.st.weekly.size_bins(self.st.interval, MAX_WEEKLY_BINS);
        }

        let cfg = &self.cfg;
        let st = &self.st;
        let exp = if st.flat.seen == 0 {
            Expectation {
                value: x,
                spread: 0.0,
            }
        } else {
            self.active().expect(t)
        };
        let floor = (1e-4 * st.magnitude).max(1e-12);
        let spread = (exp.spread * 1.25).max(floor);
        let fast_spread = (st.fast_spread * 1.25).max(floor);
        let resid = x - exp.value;
        let fast_resid = if st.fast.is_finite() {
            x - st.fast
        } else {
            0.0
        };
        let a = cfg.short_alpha;
        let short_mean =
            st.short_mean + a * (resid.clamp(-10.0 * spread, 10.0 * spread) - st.short_mean);
        let short_var = st.short_var + a * (fast_resid.abs() - st.short_var);
        let ev = Evidence {
            residual: resid / spread,
            fast: fast_resid / fast_spread,
            shift: short_mean / (spread * (a / (2.0 - a)).sqrt()),
            variance: ((short_var.max(floor * 0.1)) / fast_spread.max(floor)).ln() / 0.3,
        };
        score.expected = exp.value;
        score.band = (
            exp.value - cfg.band_sigmas * spread,
            exp.value + cfg.band_sigmas * spread,
        );
        score.evidence = ev;
        // For counters the model sees increments; report in the counter's own units.
        score.expected += base;
        score.band = (score.band.0 + base, score.band.1 + base);
        self.combine(&mut score);
        self.st.calm = ev.shift.abs() < CALM_SHIFT && ev.residual.abs() < CALM_SHIFT;
        self.learn(t, x, steps, fast_resid, short_mean, short_var);
        score
    }

    /// Updates the interval estimate; returns the number of regular steps since the
    /// previous point (1 for regular data, more after a gap).
    fn track_time(&mut self, ts_ms: i64) -> f64 {
        let st = &mut self.st;
        let mut steps = 1.0;
        if let Some(last) = st.last_ts {
            let dt = (ts_ms - last) as f64 / 1000.0;
            if dt > 0.0 {
                if st.interval <= 0.0 {
                    st.interval = dt;
                } else {
                    steps = dt / st.interval;
                    let clamped = dt.clamp(st.interval / 4.0, st.interval * 4.0);
                    if clamped != st.interval {
                        // Geometric moving average: robust to the odd long gap.
                        st.interval *= (clamped / st.interval).powf(0.05);
                    }
                }
            }
        }
        if st.last_ts.is_none_or(|last| ts_ms > last) {
            st.last_ts = Some(ts_ms);
        }
        steps.max(1.0)
    }

    /// Decides whether the series is a counter and, if so, turns it into increments per
    /// regular step. Returns `None` for a counter reset, else the model value and the
    /// offset that converts model units back to the series' units.
    fn model_value(&mut self, value: f64, steps: f64) -> Option<(f64, f64)> {
        let st = &mut self.st;
        let prev = st.last_raw;
        st.last_raw = value;
        match st.kind {
            Kind::Gauge => Some((value, 0.0)),
            Kind::Counter => {
                if value < prev {
                    st.resets += 1;
                    None
                } else {
                    Some(((value - prev) / steps, prev))
                }
            }
            Kind::Undecided => {
                if prev.is_finite() {
                    if value >= prev {
                        st.nondecreasing += 1;
                    }
                    if value > prev {
                        st.increasing += 1;
                    }
                    let seen = st.n as u32;
                    if seen + 1 >= COUNTER_PROBE {
                        let monotone = st.nondecreasing >= seen && st.increasing * 5 >= seen * 4;
                        if monotone {
                            st.kind = Kind::Counter;
                            st.relearn();
                            st.n = 0;
                            return Some(((value - prev) / steps, prev));
                        }
                        st.kind = Kind::Gauge;
                    }
                }
                Some((value, 0.0))
            }
        }
    }

    /// Turns the evidence into the score, the component and the alarm suppression.
    fn combine(&mut self, score: &mut Score) {
        let cfg = &self.cfg;
        let ev = score.evidence;
        let cands = [
            (
                cfg.weight_residual * ev.residual.abs(),
                if ev.residual >= 0.0 {
                    Component::Spike
                } else {
                    Component::Dip
                },
            ),
            (
                cfg.weight_fast * ev.fast.abs(),
                if ev.fast >= 0.0 {
                    Component::Spike
                } else {
                    Component::Dip
                },
            ),
            (cfg.weight_shift * ev.shift.abs(), Component::LevelShift),
            (cfg.weight_variance * ev.variance.abs(), Component::Variance),
        ];
        let (mut e, mut comp) = (0.0, Component::None);
        for (v, c) in cands {
            if v > e {
                (e, comp) = (v, c);
            }
        }
        if score.warming_up {
            score.component = Component::WarmingUp;
            return;
        }
        let h = cfg.half_score_evidence;
        let mut value = e / (e + h);
        let st = &mut self.st;
        let recent = st.recent_max;
        let routine_max = st.long_max;
        let routine = st.routine_events >= cfg.routine_events;
        st.recent_max = e.max(st.recent_max * self.recent_decay);
        let high = e >= cfg.routine_fraction * st.long_max && e >= 0.5 * h;
        st.routine_events *= self.long_decay;
        if high && !st.was_high {
            st.routine_events += 1.0;
        }
        st.was_high = high;
        st.long_max = e.max(st.long_max * self.long_decay);
        if st.since_alarm < cfg.suppress_points {
            // One incident, one alarm: stay quiet for a while after an alarm.
            st.since_alarm += 1;
            score.suppressed = value >= cfg.alarm_score;
            value = 0.0;
        } else if e < cfg.recent_ratio * recent || (routine && e < routine_max) {
            // Not news: the series produced stronger evidence very recently, or
            // events this strong are routine for it (a load balancer's bursts).
            score.suppressed = value >= cfg.alarm_score;
            value = 0.0;
        }
        if value >= cfg.alarm_score {
            st.since_alarm = 0;
        }
        score.value = value.clamp(0.0, 1.0);
        score.component = if value >= cfg.alarm_score || score.suppressed {
            comp
        } else {
            Component::None
        };
    }

    fn learn(
        &mut self,
        t: f64,
        x: f64,
        steps: f64,
        fast_resid: f64,
        short_mean: f64,
        short_var: f64,
    ) {
        let cfg = &self.cfg;
        let st = &mut self.st;
        let rates = Rates {
            alpha: cfg.slow_alpha,
            gamma: cfg.season_gamma,
            spread_alpha: cfg.spread_alpha,
            clip: cfg.clip_sigmas,
            select_alpha: cfg.select_alpha,
        };
        for p in [&mut st.flat, &mut st.daily, &mut st.weekly] {
            if p.period != 0.0 && p.mean.is_empty() {
                continue; // not sized yet, or disabled (sampling too coarse)
            }
            let level_alpha = if p.period > 0.0 {
                cfg.seasonal_level_alpha
            } else {
                cfg.slow_alpha
            };
            p.learn(
                t,
                x,
                steps,
                &Rates {
                    alpha: level_alpha,
                    ..rates
                },
            );
        }
        let fa = step_rate(cfg.fast_alpha, steps);
        if st.fast.is_finite() {
            let lim = cfg.clip_sigmas * (st.fast_spread * 1.25).max(1e-12);
            let r = if st.n > 20 {
                fast_resid.clamp(-lim, lim)
            } else {
                fast_resid
            };
            st.fast += fa * r;
            st.fast_spread += cfg.spread_alpha.max(1.0 / st.n as f64) * (r.abs() - st.fast_spread);
        } else {
            st.fast = x;
        }
        st.short_mean = short_mean;
        st.short_var = short_var;
        st.magnitude += cfg.spread_alpha.max(1.0 / st.n as f64) * (x.abs() - st.magnitude);
        // Model selection: a seasonal profile is used once it clearly beats the level
        // alone, and kept until the level alone does better than it (hysteresis).
        // Not while the point is unusual: the errors then describe an anomaly.
        if !st.calm {
            return;
        }
        let gain = cfg.season_gain;
        let keep = cfg.season_keep;
        let flat = st.flat.sel_err;
        let (daily, weekly) = (st.daily.sel_err, st.weekly.sel_err);
        let daily_ok = st.daily.mature(t, 1.5);
        let weekly_ok = st.weekly.mature(t, 1.5);
        let best = match st.active {
            Seasonality::None if daily_ok && daily < gain * flat => Seasonality::Daily,
            Seasonality::Daily if daily > keep * flat => Seasonality::None,
            other => other,
        };
        let best = match best {
            Seasonality::None if weekly_ok && weekly < gain * flat => Seasonality::Weekly,
            Seasonality::Daily if weekly_ok && weekly < gain * daily => Seasonality::Weekly,
            Seasonality::Weekly if weekly > keep * daily.min(flat) => {
                if daily_ok && daily < keep * flat {
                    Seasonality::Daily
                } else {
                    Seasonality::None
                }
            }
            other => other,
        };
        st.active = best;
    }
}
