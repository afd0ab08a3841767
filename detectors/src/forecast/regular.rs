//! Putting samples on an even grid: the step is the median spacing, values at grid
//! points are linearly interpolated, and NaN gaps in evenly spaced input are filled
//! the same way.

use crate::{Error, Result};

/// One observation: timestamp in milliseconds and value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub ts_ms: i64,
    pub value: f64,
}

/// An evenly spaced series.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    pub start_ms: i64,
    pub step_ms: i64,
    pub values: Vec<f64>,
}

/// Most grid points a resampled series may have (guards against a tiny step
/// over a long range blowing up memory).
pub const MAX_GRID_POINTS: usize = 1_000_000;

/// Resamples samples (sorted by time, non-finite values ignored) onto their median step.
pub fn resample(samples: &[Sample]) -> Result<Grid> {
    let pts: Vec<Sample> = samples
        .iter()
        .copied()
        .filter(|s| s.value.is_finite())
        .collect();
    if pts.len() < 2 {
        return Err(Error::InvalidInput(format!(
            "need at least 2 finite samples, got {}",
            pts.len()
        )));
    }
    if pts.windows(2).any(|w| w[1].ts_ms <= w[0].ts_ms) {
        return Err(Error::InvalidInput(
            "sample timestamps must be strictly increasing".into(),
        ));
    }
    let mut steps: Vec<i64> = pts.windows(2).map(|w| w[1].ts_ms - w[0].ts_ms).collect();
    steps.sort_unstable();
    let step = steps[steps.len() / 2].max(1);
    let (first, last) = (pts[0].ts_ms, pts[pts.len() - 1].ts_ms);
    let n = ((last - first) / step) as usize + 1;
    if n > MAX_GRID_POINTS {
        return Err(Error::InvalidInput(format!(
            "{n} grid points exceed the limit {MAX_GRID_POINTS}"
        )));
    }
    let mut values = Vec::with_capacity(n);
    let mut j = 0;
    for k in 0..n {
        let t = first + k as i64 * step;
        while j + 1 < pts.len() && pts[j + 1].ts_ms <= t {
            j += 1;
        }
        let a = pts[j];
        let v = match pts.get(j + 1) {
            Some(b) if a.ts_ms < t => {
                a.value + (b.value - a.value) * (t - a.ts_ms) as f64 / (b.ts_ms - a.ts_ms) as f64
            }
            _ => a.value,
        };
        values.push(v);
    }
    Ok(Grid {
        start_ms: first,
        step_ms: step,
        values,
    })
}

/// Copies `v` with interior non-finite values linearly interpolated and leading or
/// trailing ones dropped. `None` if fewer than 8 finite values remain.
pub fn fill_gaps(v: &[f64]) -> Option<Vec<f64>> {
    let first = v.iter().position(|x| x.is_finite())?;
    let last = v.iter().rposition(|x| x.is_finite())?;
    let mut out = v[first..=last].to_vec();
    let mut prev = 0;
    for i in 1..out.len() {
        if out[i].is_finite() {
            if i > prev + 1 {
                let (a, b) = (out[prev], out[i]);
                let gap = (i - prev) as f64;
                for (k, slot) in out[prev + 1..i].iter_mut().enumerate() {
                    *slot = a + (b - a) * (k + 1) as f64 / gap;
                }
            }
            prev = i;
        }
    }
    (v.iter().filter(|x| x.is_finite()).count() >= 8).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(ts_ms: i64, value: f64) -> Sample {
        Sample { ts_ms, value }
    }

    #[test]
    fn resamples_jittered_and_gappy_input() {
        let pts = [
            s(0, 0.0),
            s(1000, 1.0),
            s(2010, 2.0),
            s(3000, 3.0),
            s(6000, 6.0),
            s(7000, 7.0),
        ];
        let g = resample(&pts).unwrap();
        assert_eq!(g.step_ms, 1000);
        assert_eq!(g.values.len(), 8);
        for (k, v) in g.values.iter().enumerate() {
            assert!((v - k as f64).abs() < 0.02, "{k}: {v}");
        }
    }

    #[test]
    fn rejects_unsorted_and_tiny_input() {
        assert!(resample(&[s(0, 1.0)]).is_err());
        assert!(resample(&[s(10, 1.0), s(5, 2.0)]).is_err());
        assert!(resample(&[s(0, 1.0), s(1, 1.0), s(2, 1.0), s(10_000_000, 1.0)]).is_err());
    }

    #[test]
    fn fills_interior_gaps() {
        let v = [
            f64::NAN,
            1.0,
            f64::NAN,
            3.0,
            4.0,
            5.0,
            6.0,
            7.0,
            8.0,
            9.0,
            f64::NAN,
        ];
        assert_eq!(
            fill_gaps(&v).unwrap(),
            vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
        );
        assert!(fill_gaps(&[1.0, f64::NAN, 2.0]).is_none());
    }
}
