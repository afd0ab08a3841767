//! Exponential histogram → classic cumulative buckets.
//!
//! Sightline stores only float series, so an OTLP exponential histogram becomes a
//! classic Prometheus histogram whose `le` boundaries are the exponential bucket
//! boundaries (instead of a native histogram, which the store cannot hold). With
//! `base = 2^(2^-scale)`, bucket `i` holds values `v` with `base^i < |v| <= base^(i+1)`:
//! - negative buckets, from the most negative up: `le = -base^i`, since every value
//!   of negative bucket `j >= i` is `<= -base^i`;
//! - the zero bucket (`|v| <= zero_threshold`): `le = zero_threshold` (`0` when unset);
//! - positive buckets, ascending: `le = base^(i+1)`;
//! - `+Inf` (added by the caller) is the point's count.
//!
//! Boundaries are computed exactly where possible: for `scale <= 0` they are powers of
//! two; for `scale > 0`, `2^(i / 2^scale)` is split into an exact power of two times
//! `2^(r / 2^scale)` with `0 <= r < 2^scale`, the same decomposition Prometheus uses
//! for native histogram bucket boundaries. A boundary that overflows to infinity is
//! left out (its count is in `+Inf`); a boundary not above the previous one (possible
//! only with an overlapping zero threshold or underflow) is merged into the previous
//! bucket, which keeps the output a valid cumulative histogram.

use sightline_proto::otlp::metrics::v1::exponential_histogram_data_point::Buckets;

/// Smallest and largest scale the OTLP data model allows.
pub const MIN_SCALE: i32 = -10;
pub const MAX_SCALE: i32 = 20;

/// The lower boundary of bucket `index` at `scale`, i.e. `2^(index * 2^-scale)`.
pub fn lower_boundary(index: i64, scale: i32) -> f64 {
    if scale <= 0 {
        let shift = (-scale) as u32;
        // |index| < 2^32 and shift <= 10 keep this exact in i64; clamping keeps it finite.
        let exp = index.saturating_mul(1i64 << shift);
        ldexp(1.0, exp)
    } else {
        let n = 1i64 << scale as u32;
        let q = index.div_euclid(n);
        let r = index.rem_euclid(n);
        ldexp((r as f64 / n as f64).exp2(), q)
    }
}

/// `x * 2^e`, exact unless the result over- or underflows.
fn ldexp(mut x: f64, e: i64) -> f64 {
    let mut e = e.clamp(-2200, 2200);
    while e > 1000 {
        x *= 2f64.powi(1000);
        e -= 1000;
    }
    while e < -1000 {
        x *= 2f64.powi(-1000);
        e += 1000;
    }
    x * 2f64.powi(e as i32)
}

/// Cumulative `(le, count)` pairs in ascending `le` order, without `+Inf`, and the
/// total of all bucket counts.
pub fn classic_buckets(
    scale: i32,
    zero_threshold: f64,
    zero_count: u64,
    positive: Option<&Buckets>,
    negative: Option<&Buckets>,
) -> (Vec<(f64, u64)>, u64) {
    let mut out: Vec<(f64, u64)> = Vec::new();
    let mut cumulative: u64 = 0;
    let mut push = |le: f64, cumulative: u64| {
        if !le.is_finite() {
            return;
        }
        match out.last_mut() {
            Some(last) if le <= last.0 => last.1 = cumulative,
            _ => out.push((le, cumulative)),
        }
    };
    if let Some(neg) = negative {
        for (k, count) in neg.bucket_counts.iter().enumerate().rev() {
            let index = i64::from(neg.offset) + k as i64;
            cumulative = cumulative.saturating_add(*count);
            push(-lower_boundary(index, scale), cumulative);
        }
    }
    cumulative = cumulative.saturating_add(zero_count);
    push(zero_threshold, cumulative);
    if let Some(pos) = positive {
        for (k, count) in pos.bucket_counts.iter().enumerate() {
            let index = i64::from(pos.offset) + k as i64;
            cumulative = cumulative.saturating_add(*count);
            push(lower_boundary(index + 1, scale), cumulative);
        }
    }
    (out, cumulative)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(offset: i32, counts: &[u64]) -> Buckets {
        Buckets {
            offset,
            bucket_counts: counts.to_vec(),
        }
    }

    #[test]
    fn boundaries_at_scale_zero_are_powers_of_two() {
        assert_eq!(lower_boundary(0, 0), 1.0);
        assert_eq!(lower_boundary(1, 0), 2.0);
        assert_eq!(lower_boundary(10, 0), 1024.0);
        assert_eq!(lower_boundary(-1, 0), 0.5);
        assert_eq!(lower_boundary(-3, 0), 0.125);
    }

    #[test]
    fn boundaries_at_negative_scale() {
        // scale -1: base 4; scale -2: base 16
        assert_eq!(lower_boundary(1, -1), 4.0);
        assert_eq!(lower_boundary(2, -1), 16.0);
        assert_eq!(lower_boundary(1, -2), 16.0);
        assert_eq!(lower_boundary(-1, -2), 1.0 / 16.0);
        // overflow goes to infinity, underflow to zero, never panics
        assert_eq!(lower_boundary(3, -10), f64::INFINITY);
        assert_eq!(lower_boundary(-3, -10), 0.0);
        assert_eq!(lower_boundary(i64::from(i32::MAX), -10), f64::INFINITY);
    }

    #[test]
    fn boundaries_at_positive_scale() {
        // scale 1: base sqrt(2)
        assert_eq!(lower_boundary(2, 1), 2.0);
        assert_eq!(lower_boundary(1, 1), std::f64::consts::SQRT_2);
        assert_eq!(lower_boundary(-1, 1), std::f64::consts::FRAC_1_SQRT_2);
        assert_eq!(lower_boundary(-2, 1), 0.5);
        // scale 3: base 2^(1/8); every 8th boundary is an exact power of two
        assert_eq!(lower_boundary(8, 3), 2.0);
        assert_eq!(lower_boundary(-16, 3), 0.25);
        let base = 2f64.powf(0.125);
        assert!((lower_boundary(1, 3) - base).abs() < 1e-15);
        assert!((lower_boundary(13, 3) - base.powi(13)).abs() < 1e-13);
        // strictly increasing
        for i in -100..100 {
            assert!(lower_boundary(i, 5) < lower_boundary(i + 1, 5));
        }
        assert_eq!(lower_boundary(1 << 20, 20), 2.0);
    }

    #[test]
    fn classic_buckets_positive_only() {
        // scale 0, offset 0: buckets (1,2], (2,4], (4,8]
        let (buckets, total) = classic_buckets(0, 0.0, 0, Some(&b(0, &[3, 0, 2])), None);
        assert_eq!(buckets, vec![(0.0, 0), (2.0, 3), (4.0, 3), (8.0, 5)]);
        assert_eq!(total, 5);
    }

    #[test]
    fn classic_buckets_with_zero_and_negative() {
        // negative buckets at scale 1, offset 0: |v| in (1, 1.414], (1.414, 2]
        let (buckets, total) =
            classic_buckets(1, 0.001, 4, Some(&b(-2, &[1, 1])), Some(&b(0, &[2, 5])));
        assert_eq!(
            buckets,
            vec![
                (-std::f64::consts::SQRT_2, 5), // values in [-2, -1.414)
                (-1.0, 7),                      // values in [-1.414, -1)
                (0.001, 11),                    // zero bucket
                (std::f64::consts::FRAC_1_SQRT_2, 12),
                (1.0, 13),
            ]
        );
        assert_eq!(total, 13);
    }

    #[test]
    fn overlapping_zero_threshold_is_merged() {
        // zero threshold 3 overlaps the positive bucket (1,2]: merged, still monotonic
        let (buckets, total) = classic_buckets(0, 3.0, 1, Some(&b(0, &[2, 4])), None);
        assert_eq!(buckets, vec![(3.0, 3), (4.0, 7)]);
        assert_eq!(total, 7);
    }

    #[test]
    fn overflowing_boundaries_are_left_to_inf() {
        let (buckets, total) = classic_buckets(-10, 0.0, 0, Some(&b(0, &[1, 1, 1])), None);
        // 2^1024 and above overflow
        assert_eq!(buckets, vec![(0.0, 0)]);
        assert_eq!(total, 3);
    }
}
