//! Seeded synthetic series for the tests of `forecast` and `outliers` (test-only).

/// SplitMix64: tiny, seeded, good enough for test noise.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    pub fn gauss(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// `n` points of `level + amp * sin(2 pi t / period) + slope * t + sigma * N(0,1)`.
pub fn seasonal(
    n: usize,
    period: f64,
    level: f64,
    amp: f64,
    slope: f64,
    sigma: f64,
    seed: u64,
) -> Vec<f64> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|t| {
            let t = t as f64;
            level
                + amp * (2.0 * std::f64::consts::PI * t / period).sin()
                + slope * t
                + sigma * rng.gauss()
        })
        .collect()
}
