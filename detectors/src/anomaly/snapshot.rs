//! Compact byte snapshots of a detector's state (the config is not included: the
//! caller restores with the config it runs). Layout: magic `SLA1`, then the fields of
//! [`State`] in declaration order, little endian; profile bins as `f32`. A truncated,
//! oversized or inconsistent snapshot is rejected with [`Error::BadSnapshot`].

use super::config::AnomalyConfig;
use super::detector::{AnomalyDetector, Kind, State};
use super::seasonal::{Profile, Seasonality, MAX_DAILY_BINS, MAX_WEEKLY_BINS};
use crate::{Error, Result};

const MAGIC: &[u8; 4] = b"SLA1";

struct Enc(Vec<u8>);

impl Enc {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn f64(&mut self, v: f64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn f32s(&mut self, v: &[f32]) {
        self.u32(v.len() as u32);
        for x in v {
            self.0.extend_from_slice(&x.to_le_bytes());
        }
    }
    fn profile(&mut self, p: &Profile) {
        self.f64(p.period);
        self.f32s(&p.mean);
        self.f32s(&p.spread);
        self.u32(p.visits.len() as u32);
        self.0.extend_from_slice(&p.visits);
        self.f64(p.level);
        self.f64(p.err);
        self.f64(p.sel_err);
        self.u64(p.seen);
        self.f64(p.first_ts);
    }
}

struct Dec<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Dec<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end =
            end.ok_or_else(|| Error::BadSnapshot(format!("truncated at byte {}", self.pos)))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn arr<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.arr()?))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.arr()?))
    }
    fn f64(&mut self) -> Result<f64> {
        Ok(f64::from_le_bytes(self.arr()?))
    }
    fn len(&mut self, max: usize) -> Result<usize> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(Error::BadSnapshot(format!(
                "length {n} exceeds {max} at byte {}",
                self.pos
            )));
        }
        Ok(n)
    }
    fn f32s(&mut self, max: usize) -> Result<Vec<f32>> {
        let n = self.len(max)?;
        let raw = self.take(n * 4)?;
        Ok(raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
    fn profile(&mut self, max: usize) -> Result<Profile> {
        let period = self.f64()?;
        let mean = self.f32s(max)?;
        let spread = self.f32s(max)?;
        let nv = self.len(max)?;
        let visits = self.take(nv)?.to_vec();
        if spread.len() != mean.len() || visits.len() != mean.len() {
            return Err(Error::BadSnapshot("profile arrays differ in length".into()));
        }
        Ok(Profile {
            period,
            mean,
            spread,
            visits,
            level: self.f64()?,
            err: self.f64()?,
            sel_err: self.f64()?,
            seen: self.u64()?,
            first_ts: self.f64()?,
        })
    }
}

fn season_code(s: Seasonality) -> u8 {
    match s {
        Seasonality::None => 0,
        Seasonality::Daily => 1,
        Seasonality::Weekly => 2,
    }
}

fn kind_code(k: Kind) -> u8 {
    match k {
        Kind::Undecided => 0,
        Kind::Gauge => 1,
        Kind::Counter => 2,
    }
}

impl AnomalyDetector {
    /// The state as compact bytes (a few KiB at most).
    pub fn snapshot(&self) -> Vec<u8> {
        let st = &self.st;
        let mut e = Enc(Vec::with_capacity(4096));
        e.0.extend_from_slice(MAGIC);
        e.u64(st.n);
        e.u64(st.invalid);
        e.u64(st.resets);
        e.u8(st.last_ts.is_some() as u8);
        e.u64(st.last_ts.unwrap_or(0) as u64);
        e.f64(st.interval);
        e.u8(kind_code(st.kind));
        e.f64(st.last_raw);
        e.u32(st.nondecreasing);
        e.u32(st.increasing);
        e.f64(st.fast);
        e.f64(st.fast_spread);
        e.f64(st.short_mean);
        e.f64(st.short_var);
        e.f64(st.magnitude);
        e.u8(season_code(st.active));
        e.profile(&st.flat);
        e.profile(&st.daily);
        e.profile(&st.weekly);
        e.u32(st.since_alarm);
        e.f64(st.recent_max);
        e.f64(st.long_max);
        e.f64(st.routine_events);
        e.u8(st.was_high as u8);
        e.u8(st.calm as u8);
        e.0
    }

    /// Rebuilds a detector from [`snapshot`](Self::snapshot) bytes and the config it runs with.
    pub fn restore(cfg: AnomalyConfig, bytes: &[u8]) -> Result<Self> {
        cfg.validate()?;
        let mut d = Dec { buf: bytes, pos: 0 };
        if d.take(4)? != MAGIC {
            return Err(Error::BadSnapshot(
                "not an anomaly detector snapshot (bad magic)".into(),
            ));
        }
        let n = d.u64()?;
        let invalid = d.u64()?;
        let resets = d.u64()?;
        let has_ts = d.u8()? != 0;
        let ts = d.u64()? as i64;
        let interval = d.f64()?;
        let kind = match d.u8()? {
            0 => Kind::Undecided,
            1 => Kind::Gauge,
            2 => Kind::Counter,
            k => return Err(Error::BadSnapshot(format!("unknown series kind {k}"))),
        };
        let last_raw = d.f64()?;
        let nondecreasing = d.u32()?;
        let increasing = d.u32()?;
        let fast = d.f64()?;
        let fast_spread = d.f64()?;
        let short_mean = d.f64()?;
        let short_var = d.f64()?;
        let magnitude = d.f64()?;
        let active = match d.u8()? {
            0 => Seasonality::None,
            1 => Seasonality::Daily,
            2 => Seasonality::Weekly,
            k => return Err(Error::BadSnapshot(format!("unknown seasonality {k}"))),
        };
        let flat = d.profile(0)?;
        let daily = d.profile(MAX_DAILY_BINS)?;
        let weekly = d.profile(MAX_WEEKLY_BINS)?;
        let since_alarm = d.u32()?;
        let recent_max = d.f64()?;
        let long_max = d.f64()?;
        let routine_events = d.f64()?;
        let was_high = d.u8()? != 0;
        let calm = d.u8()? != 0;
        if d.pos != bytes.len() {
            return Err(Error::BadSnapshot(format!(
                "{} trailing bytes",
                bytes.len() - d.pos
            )));
        }
        let st = State {
            n,
            invalid,
            resets,
            last_ts: has_ts.then_some(ts),
            interval,
            kind,
            last_raw,
            nondecreasing,
            increasing,
            fast,
            fast_spread,
            short_mean,
            short_var,
            magnitude,
            active,
            flat,
            daily,
            weekly,
            since_alarm,
            recent_max,
            long_max,
            routine_events,
            was_high,
            calm,
        };
        Ok(Self::assemble(cfg, st))
    }

    /// The detector (config and state) as JSON, for inspection or text storage.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string(self)
            .map_err(|e| Error::InvalidInput(format!("snapshot to JSON: {e}")))
    }

    /// Rebuilds a detector from [`to_json`](Self::to_json) output.
    pub fn from_json(text: &str) -> Result<Self> {
        let d: Self =
            serde_json::from_str(text).map_err(|e| Error::BadSnapshot(format!("JSON: {e}")))?;
        d.cfg.validate()?;
        let profiles = [
            (&d.st.daily, MAX_DAILY_BINS),
            (&d.st.weekly, MAX_WEEKLY_BINS),
            (&d.st.flat, 0),
        ];
        for (p, max) in profiles {
            if p.mean.len() > max
                || p.spread.len() != p.mean.len()
                || p.visits.len() != p.mean.len()
            {
                return Err(Error::BadSnapshot(
                    "profile arrays have inconsistent sizes".into(),
                ));
            }
        }
        Ok(Self::assemble(d.cfg, d.st))
    }
}
