//! Synthetic filling disks: linear, noisy, with periodic cleanup.

use super::*;
use crate::forecast::synthetic::Rng;

const GB: f64 = 1e9;
const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;
const T0: i64 = 1_700_000_000_000;

/// One sample a minute for `minutes`, value from `f(minute)`.
fn series(minutes: i64, mut f: impl FnMut(i64) -> f64) -> Vec<Sample> {
    (0..minutes)
        .map(|m| Sample {
            ts_ms: T0 + m * MIN,
            value: f(m),
        })
        .collect()
}

#[test]
fn linear_fill_eta_is_exact() {
    // 40 GB used, +1 GB/h, limit 100 GB: 60 h after the start.
    let pts = series(600, |m| 40.0 * GB + GB * m as f64 / 60.0);
    let e = time_to_exhaustion(&pts, 100.0 * GB, 0.8).unwrap().unwrap();
    let truth = T0 + 60 * HOUR;
    assert_eq!(e.basis, Basis::CurrentFill);
    assert!(
        (e.eta - truth).abs() < MIN,
        "eta off by {} ms",
        e.eta - truth
    );
    assert!(e.lower <= e.eta && e.upper.unwrap() >= e.eta);
    assert!((e.rate_per_s - GB / 3600.0).abs() < 1.0);
    assert!(!e.full_by(T0 + 20 * HOUR));
    assert!(e.full_by(T0 + 61 * HOUR));
}

#[test]
fn noisy_fill_band_holds_at_roughly_the_requested_probability() {
    // 0.5 GB/h with 0.3 GB noise over 12 h; truth crossing at 48 h.
    let truth = T0 + 48 * HOUR;
    let (mut not_before, mut by_upper, runs) = (0usize, 0usize, 200u64);
    for seed in 0..runs {
        let mut rng = Rng::new(seed);
        let pts = series(720, |m| {
            76.0 * GB + 0.5 * GB * m as f64 / 60.0 + 0.3 * GB * rng.gauss()
        });
        let e = time_to_exhaustion(&pts, 100.0 * GB, 0.8).unwrap().unwrap();
        assert!(
            (e.eta - truth).abs() < 8 * HOUR,
            "seed {seed}: eta {} h",
            (e.eta - T0) / HOUR
        );
        not_before += usize::from(e.lower <= truth);
        by_upper += usize::from(e.upper.is_some_and(|u| u >= truth));
    }
    // Each side should hold in ~80 % of runs; allow sampling slack and conservatism.
    assert!(not_before >= 150, "lower held in {not_before}/{runs}");
    assert!(by_upper >= 150, "upper held in {by_upper}/{runs}");
    assert!(
        not_before < runs as usize || by_upper < runs as usize,
        "band is uselessly wide"
    );
}

#[test]
fn flat_or_shrinking_is_none() {
    let mut rng = Rng::new(5);
    let flat = series(500, |_| 50.0 * GB + 0.2 * GB * rng.gauss());
    assert_eq!(
        time_to_exhaustion(&flat, 100.0 * GB, 0.8)
            .unwrap()
            .map(|e| e.basis),
        None
    );
    let shrinking = series(500, |m| 90.0 * GB - 0.01 * GB * m as f64);
    assert_eq!(
        time_to_exhaustion(&shrinking, 100.0 * GB, 0.8).unwrap(),
        None
    );
}

#[test]
fn already_full() {
    let pts = series(10, |m| 95.0 + m as f64);
    let e = time_to_exhaustion(&pts, 100.0, 0.9).unwrap().unwrap();
    assert_eq!(e.basis, Basis::AlreadyFull);
    assert_eq!(e.eta, T0 + 9 * MIN);
}

/// A disk that fills 2 GB/h and is cleaned every 6 h down to `floor(cycle)`.
fn cleaned_disk(hours: i64, floor: impl Fn(i64) -> f64, seed: u64) -> Vec<Sample> {
    let mut rng = Rng::new(seed);
    series(hours * 60, |m| {
        let cycle = m / 360;
        let into = (m % 360) as f64 / 60.0;
        floor(cycle) + 2.0 * GB * into + 0.05 * GB * rng.gauss()
    })
}

#[test]
fn periodic_cleanup_that_keeps_up_is_not_an_exhaustion() {
    // Cleaned back to 50 GB every 6 h, peaks at ~62 GB, limit 100 GB.
    let pts = cleaned_disk(48 + 3, |_| 50.0 * GB, 1);
    assert_eq!(time_to_exhaustion(&pts, 100.0 * GB, 0.8).unwrap(), None);
}

#[test]
fn cleanup_that_frees_less_each_time_uses_the_peak_envelope() {
    // Floor rises 3 GB per 6 h cycle, peaks at floor + 12 GB: peaks rise 0.5 GB/h.
    // Peak of cycle c (at its end, 6c+6 h) = 42 + 3c GB; reaches 100 GB at c = 19.33,
    // i.e. about 122 h after the start.
    let pts = cleaned_disk(6 * 8 + 2, |c| 30.0 * GB + 3.0 * GB * c as f64, 2);
    let e = time_to_exhaustion(&pts, 100.0 * GB, 0.8).unwrap().unwrap();
    assert_eq!(e.basis, Basis::PeakEnvelope);
    let truth = T0 + 122 * HOUR;
    assert!(
        (e.eta - truth).abs() < 6 * HOUR,
        "eta at {} h",
        (e.eta - T0) / HOUR
    );
    assert!(e.lower <= e.eta && e.upper.is_some_and(|u| u >= e.eta));
}

#[test]
fn fast_fill_inside_a_cycle_beats_the_next_cleanup() {
    // Cleaned every 6 h; after the latest cleanup (to 40 GB) it fills 15 GB/h:
    // full 4 h after the cleanup, before the next one is due (6 h).
    let mut pts = cleaned_disk(24, |_| 50.0 * GB, 3);
    let start = pts[pts.len() - 1].ts_ms;
    for m in 1..=60 {
        pts.push(Sample {
            ts_ms: start + m * MIN,
            value: 40.0 * GB + 15.0 * GB * m as f64 / 60.0,
        });
    }
    let e = time_to_exhaustion(&pts, 100.0 * GB, 0.8).unwrap().unwrap();
    assert_eq!(e.basis, Basis::CurrentFill);
    let truth = start + 4 * HOUR;
    assert!(
        (e.eta - truth).abs() < 10 * MIN,
        "eta off by {} min",
        (e.eta - truth) / MIN
    );
    assert!(e.full_by(start + 5 * HOUR));
    assert!(!e.full_by(start + 2 * HOUR));
}

#[test]
fn bad_input_is_an_error() {
    let pts = series(10, |m| m as f64);
    assert!(time_to_exhaustion(&pts, f64::NAN, 0.8).is_err());
    assert!(time_to_exhaustion(&pts, 100.0, 1.0).is_err());
    assert!(time_to_exhaustion(&pts[..2], 100.0, 0.8).is_err());
    let mut unsorted = pts.clone();
    unsorted.swap(3, 4);
    assert!(time_to_exhaustion(&unsorted, 100.0, 0.8).is_err());
}
