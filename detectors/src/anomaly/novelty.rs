//! Pattern novelty: has the series been in this *context* before?
//!
//! Values are quantized against a slowly adapting range (mean +- a few mean absolute
//! deviations). The last few quantized values form context keys (pairs and
//! triples); a key never seen before is novel. Seen keys live in two fixed-size
//! bitsets (current and previous generation; the current one is retired when a
//! quarter full), so memory is bounded and old contexts are forgotten. This is the
//! bounded-memory cousin of the contextual detector CAD OSE.

use serde::{Deserialize, Serialize};

/// Bits per generation (4096 bits = 512 bytes).
pub const BITS: usize = 4096;
const WORDS: usize = BITS / 64;
/// Quantization levels inside the range (plus one overflow level either side).
const LEVELS: f64 = 10.0;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Novelty {
    pub cur: Vec<u64>,
    pub prev: Vec<u64>,
    pub cur_count: u32,
    /// Slow mean and mean absolute deviation of the values (the quantization range).
    pub mean: f64,
    pub mad: f64,
    /// Last quantized values, most recent last.
    pub hist: [u8; 3],
    pub n: u32,
    /// Smoothed fraction of novel keys.
    pub level: f64,
}

impl Default for Novelty {
    fn default() -> Self {
        Self {
            cur: vec![0; WORDS],
            prev: vec![0; WORDS],
            cur_count: 0,
            mean: f64::NAN,
            mad: 0.0,
            hist: [0; 3],
            n: 0,
            level: 0.0,
        }
    }
}

fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

impl Novelty {
    pub fn is_valid(&self) -> bool {
        self.cur.len() == WORDS && self.prev.len() == WORDS
    }

    fn quantize(&self, x: f64) -> u8 {
        let width = 6.0 * self.mad.max(1e-12) / LEVELS;
        let lo = self.mean - 3.0 * self.mad;
        let q = ((x - lo) / width).floor() + 1.0;
        q.clamp(0.0, LEVELS + 1.0) as u8
    }

    /// Looks up (and remembers) one key; returns 1.0 if it was novel.
    fn touch(&mut self, key: u64) -> f64 {
        let bit = (mix(key) as usize) % BITS;
        let (w, m) = (bit / 64, 1u64 << (bit % 64));
        if self.cur[w] & m != 0 {
            return 0.0;
        }
        self.cur[w] |= m;
        self.cur_count += 1;
        if self.cur_count as usize >= BITS / 4 {
            self.prev = std::mem::replace(&mut self.cur, vec![0; WORDS]);
            self.cur_count = 0;
        }
        if self.prev[w] & m != 0 {
            0.0
        } else {
            1.0
        }
    }

    /// Feeds `x`; returns the fraction of this point's context keys that were novel
    /// (0 during the first few points) and the smoothed level.
    pub fn observe(&mut self, x: f64, alpha: f64, smooth: f64) -> f64 {
        if !self.mean.is_finite() {
            self.mean = x;
            self.mad = 0.0;
        }
        let q = self.quantize(x);
        self.hist = [self.hist[1], self.hist[2], q];
        self.n = self.n.saturating_add(1);
        let mut novel = 0.0;
        if self.n >= 3 {
            let [a, b, c] = self.hist;
            let k2 = 0x1_0000 | (b as u64) << 8 | c as u64;
            let k3 = 0x2_0000_0000 | (a as u64) << 16 | (b as u64) << 8 | c as u64;
            novel = 0.5 * (self.touch(k2) + self.touch(k3));
        }
        let d = (x - self.mean).abs();
        self.mean += alpha * (x - self.mean);
        self.mad += alpha * (d - self.mad);
        self.level += smooth * (novel - self.level);
        novel
    }
}
