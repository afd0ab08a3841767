//! End-to-end tests of [`forecast`] on synthetic series.

use super::*;
use crate::forecast::synthetic::{seasonal, Rng};

fn cfg(horizon: usize) -> ForecastConfig {
    ForecastConfig {
        horizon,
        ..ForecastConfig::default()
    }
}

#[test]
fn seasonal_series_is_forecast_with_its_season() {
    let y = seasonal(24 * 21 + 24, 24.0, 100.0, 20.0, 0.0, 2.0, 1);
    let (train, test) = y.split_at(24 * 21);
    let f = forecast(train, &cfg(24)).unwrap();
    assert_eq!(f.season.map(|s| s.period), Some(24));
    assert!(matches!(
        f.method,
        Method::Decomposed { period: 24, .. }
            | Method::Blend { period: 24, .. }
            | Method::SeasonalNaive { period: 24 }
    ));
    let mae = f
        .mean
        .iter()
        .zip(test)
        .map(|(a, b)| (a - b).abs())
        .sum::<f64>()
        / 24.0;
    // Noise alone gives MAE ~1.6 (sigma 2); missing the season would give ~13.
    assert!(mae < 2.5, "mae {mae}");
    assert!(f
        .lower
        .iter()
        .zip(&f.mean)
        .zip(&f.upper)
        .all(|((l, m), u)| l < m && m < u));
}

/// Share of future values inside the interval over many synthetic series.
fn coverage(level: f64, make: impl Fn(u64) -> Vec<f64>, train: usize, h: usize) -> f64 {
    let (mut inside, mut total) = (0usize, 0usize);
    for seed in 0..60 {
        let y = make(seed);
        let c = ForecastConfig {
            horizon: h,
            level,
            ..ForecastConfig::default()
        };
        let f = forecast(&y[..train], &c).unwrap();
        for (j, v) in y[train..train + h].iter().enumerate() {
            inside += usize::from(f.lower[j] <= *v && *v <= f.upper[j]);
            total += 1;
        }
    }
    inside as f64 / total as f64
}

#[test]
fn interval_coverage_is_roughly_nominal_on_white_noise() {
    let make = |seed| {
        let mut rng = Rng::new(seed);
        (0..400).map(|_| 10.0 + rng.gauss()).collect::<Vec<f64>>()
    };
    for level in [0.8, 0.95] {
        let c = coverage(level, make, 376, 24);
        assert!((c - level).abs() < 0.07, "level {level}: coverage {c}");
    }
}

#[test]
fn interval_coverage_is_roughly_nominal_on_seasonal_noise() {
    let make = |seed| seasonal(48 * 10 + 24, 48.0, 50.0, 10.0, 0.0, 1.5, seed);
    let c = coverage(0.8, make, 480, 24);
    assert!((c - 0.8).abs() < 0.08, "coverage {c}");
}

#[test]
fn trend_is_extrapolated() {
    let mut rng = Rng::new(4);
    let y: Vec<f64> = (0..300).map(|t| 3.0 * t as f64 + rng.gauss()).collect();
    let f = forecast(
        &y,
        &ForecastConfig {
            season: SeasonSetting::NonSeasonal,
            ..cfg(10)
        },
    )
    .unwrap();
    assert!(f.mean[9] > f.mean[0] + 10.0, "{:?}", f.mean);
    assert!((f.mean[0] - 900.0).abs() < 6.0, "{:?}", f.mean);
}

#[test]
fn timed_forecast_snaps_a_daily_season() {
    // 5-minute samples over 6 days with a daily cycle.
    let step = 300_000;
    let y = seasonal(288 * 6, 288.0, 0.5, 0.2, 0.0, 0.03, 8);
    let samples: Vec<Sample> = y
        .iter()
        .enumerate()
        .map(|(i, v)| Sample {
            ts_ms: 1_000_000 + i as i64 * step,
            value: *v,
        })
        .collect();
    let tf = forecast_samples(&samples, &cfg(12)).unwrap();
    assert_eq!(tf.step_ms, step);
    assert_eq!(tf.forecast.season.map(|s| s.period), Some(288));
    assert_eq!(tf.timestamps_ms[0], samples[samples.len() - 1].ts_ms + step);
    assert_eq!(tf.timestamps_ms.len(), 12);
}

#[test]
fn bad_input_is_rejected_and_counted() {
    let before = counters()[1].1;
    assert!(forecast(&[1.0, 2.0, 3.0], &cfg(5)).is_err());
    assert!(forecast(&[f64::NAN; 50], &cfg(5)).is_err());
    assert!(forecast(&[1.0; 50], &cfg(0)).is_err());
    assert!(forecast(
        &[1.0; 50],
        &ForecastConfig {
            level: 1.0,
            ..cfg(5)
        }
    )
    .is_err());
    assert!(counters()[1].1 >= before + 4);
    let ok_before = counters()[0].1;
    let f = forecast(&[1.0; 50], &cfg(5)).unwrap();
    assert_eq!(f.mean, vec![1.0; 5]);
    assert!(counters()[0].1 > ok_before);
}
