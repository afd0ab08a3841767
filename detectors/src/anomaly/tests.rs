//! Unit tests: detection of the classic anomaly shapes, quiet on normal shapes, and
//! the streaming contract (determinism, snapshots, bounded state, bad input).

use super::*;

const FIVE_MIN: i64 = 300_000;
const T0: i64 = 1_396_310_400_000; // 2014-04-01 00:00:00 UTC

/// Deterministic noise in [-0.5, 0.5).
fn noise(i: u64) -> f64 {
    let mut h = i
        .wrapping_add(0x9e37_79b9_7f4a_7c15)
        .wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 31;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 29;
    (h >> 11) as f64 / (1u64 << 53) as f64 - 0.5
}

/// The score at which the default config raises an alarm.
fn alarm() -> f64 {
    AnomalyConfig::default().alarm_score
}

fn detector() -> AnomalyDetector {
    AnomalyDetector::new(AnomalyConfig::default()).unwrap()
}

fn run(values: impl IntoIterator<Item = f64>) -> Vec<Score> {
    let mut d = detector();
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| d.update(T0 + i as i64 * FIVE_MIN, v))
        .collect()
}

fn alarms(scores: &[Score], from: usize) -> Vec<usize> {
    scores
        .iter()
        .enumerate()
        .skip(from)
        .filter(|(_, s)| s.value >= alarm())
        .map(|(i, _)| i)
        .collect()
}

fn daily(i: u64) -> f64 {
    50.0 + 20.0 * (i as f64 * std::f64::consts::TAU / 288.0).sin() + noise(i)
}

#[test]
fn spike_is_detected_and_explained() {
    let scores = run((0..1000).map(|i| {
        if i == 700 {
            10.0 + 15.0
        } else {
            10.0 + noise(i)
        }
    }));
    assert_eq!(alarms(&scores, 0), vec![700]);
    let s = scores[700];
    assert_eq!(s.component, Component::Spike);
    assert!(
        s.observed > s.band.1 && s.expected < 11.0 && s.expected > 9.0,
        "{s:?}"
    );
    assert!(!s.warming_up);
}

#[test]
fn dip_is_detected() {
    let scores = run((0..1000).map(|i| if i == 700 { 0.0 } else { 10.0 + noise(i) }));
    assert_eq!(alarms(&scores, 0), vec![700]);
    assert_eq!(scores[700].component, Component::Dip);
}

#[test]
fn level_shift_is_detected_once() {
    // A shift of 2.5 noise widths (about 9 standard deviations), sustained.
    let scores = run((0..1500).map(|i| 10.0 + noise(i) + if i >= 800 { 2.5 } else { 0.0 }));
    let a = alarms(&scores, 0);
    assert!(!a.is_empty() && a[0] >= 800 && a[0] < 830, "alarms {a:?}");
    assert!(matches!(
        scores[a[0]].component,
        Component::LevelShift | Component::Spike
    ));
    // Suppression and adaptation: one incident, at most a couple of alarms.
    assert!(a.len() <= 2, "alarms {a:?}");
}

#[test]
fn warm_up_is_reported_without_alarms() {
    let scores = run((0..400).map(|i| if i % 7 == 0 { 100.0 } else { noise(i) }));
    let warm = AnomalyConfig::default().warmup_points as usize;
    assert!(scores[..warm]
        .iter()
        .all(|s| s.warming_up && s.value == 0.0));
    assert!(scores[..warm]
        .iter()
        .all(|s| s.component == Component::WarmingUp));
    assert!(!scores[warm].warming_up);
}

#[test]
fn flat_line_raises_no_alarm() {
    let scores = run((0..4000).map(|_| 45.0));
    assert!(alarms(&scores, 0).is_empty());
    assert!(scores[3999].band.0 <= 45.0 && scores[3999].band.1 >= 45.0);
}

#[test]
fn daily_seasonality_is_detected_and_quiet() {
    let scores = run((0..288 * 10).map(daily));
    assert_eq!(scores.last().unwrap().seasonality, Seasonality::Daily);
    // Learning the profile takes about three days of 5-minute data (the switch to
    // the seasonal model may raise an alarm or two); after that the pattern is quiet.
    assert!(
        alarms(&scores, 288 * 2).len() <= 2,
        "{:?}",
        alarms(&scores, 288 * 2)
    );
    assert!(
        alarms(&scores, 288 * 5).is_empty(),
        "{:?}",
        alarms(&scores, 288 * 5)
    );
    // ...but a break of the pattern does.
    let mut values: Vec<f64> = (0..288 * 10).map(daily).collect();
    for v in values.iter_mut().skip(288 * 8 + 60).take(30) {
        *v = 10.0;
    }
    let broken = run(values);
    let a = alarms(&broken, 288 * 5);
    assert!(
        !a.is_empty() && a[0] >= 288 * 8 + 60 && a[0] < 288 * 8 + 90,
        "alarms {a:?}"
    );
}

#[test]
fn trend_raises_no_alarm() {
    let scores = run((0..3000).map(|i| 100.0 + 0.05 * i as f64 + noise(i)));
    assert!(
        alarms(&scores, 300).is_empty(),
        "{:?}",
        alarms(&scores, 300)
    );
}

#[test]
fn counter_reset_is_not_an_anomaly() {
    let mut total = 0.0;
    let mut values = Vec::new();
    for i in 0..1200u64 {
        if i == 700 {
            total = 0.0; // process restart
        }
        total += 5.0 + noise(i);
        values.push(total);
    }
    let mut d = detector();
    let scores: Vec<Score> = values
        .iter()
        .enumerate()
        .map(|(i, &v)| d.update(T0 + i as i64 * FIVE_MIN, v))
        .collect();
    assert_eq!(scores[700].component, Component::CounterReset);
    assert!(alarms(&scores, 0).is_empty(), "{:?}", alarms(&scores, 0));
    assert_eq!(d.counter_resets(), 1);
    // The band is in the counter's units: around the previous total plus one increment.
    let s = scores[900];
    assert!(s.band.0 < s.observed && s.observed < s.band.1, "{s:?}");
}

#[test]
fn gap_is_flagged_not_alarmed() {
    let mut d = detector();
    let mut ts = T0;
    let mut gap_score = None;
    for i in 0..1200u64 {
        ts += if i == 800 { 6 * 3_600_000 } else { FIVE_MIN };
        let s = d.update(ts, 10.0 + noise(i));
        assert!(s.value < alarm(), "alarm at {i}: {s:?}");
        if i == 800 {
            gap_score = Some(s);
        }
    }
    assert!(gap_score.unwrap().after_gap);
}

#[test]
fn irregular_intervals_are_tolerated() {
    let mut d = detector();
    let mut ts = T0;
    for i in 0..2000u64 {
        ts +=
            60_000 + (noise(i + 99) + 0.5) as i64 * 1_000 + (noise(i + 7) * 120_000.0).abs() as i64;
        let s = d.update(ts, 20.0 + noise(i));
        assert!(s.value < alarm(), "alarm at {i}: {s:?}");
    }
}

#[test]
fn deterministic() {
    let values: Vec<f64> = (0..3000)
        .map(|i| daily(i) + if i % 500 == 0 { 30.0 } else { 0.0 })
        .collect();
    assert_eq!(run(values.clone()), run(values));
}

#[test]
fn snapshot_restore_mid_stream_gives_identical_scores() {
    let values: Vec<f64> = (0..288 * 12)
        .map(|i| daily(i) + if i == 3000 { 40.0 } else { 0.0 })
        .collect();
    let mut a = detector();
    let mut resumed_bytes = None;
    let mut resumed_json = None;
    for (i, &v) in values.iter().enumerate() {
        let ts = T0 + i as i64 * FIVE_MIN;
        let sa = a.update(ts, v);
        if i == 1700 {
            resumed_bytes =
                Some(AnomalyDetector::restore(AnomalyConfig::default(), &a.snapshot()).unwrap());
            resumed_json = Some(AnomalyDetector::from_json(&a.to_json().unwrap()).unwrap());
        } else if i > 1700 {
            let sb = resumed_bytes.as_mut().unwrap().update(ts, v);
            let sj = resumed_json.as_mut().unwrap().update(ts, v);
            assert_eq!(sa, sb, "byte snapshot diverged at {i}");
            assert_eq!(sa, sj, "JSON snapshot diverged at {i}");
        }
    }
    assert_eq!(a.snapshot(), resumed_bytes.unwrap().snapshot());
}

#[test]
fn state_is_bounded() {
    let mut d = detector();
    // Three weeks of 5-minute data: daily and weekly profiles fully allocated.
    for i in 0..288 * 21u64 {
        d.update(T0 + i as i64 * FIVE_MIN, daily(i));
    }
    let size = d.snapshot().len();
    assert!(size <= 4096, "snapshot is {size} bytes");
    // Hourly data allocates fewer bins; still bounded.
    let mut h = detector();
    for i in 0..24 * 30u64 {
        h.update(T0 + i as i64 * 3_600_000, daily(i * 12));
    }
    assert!(h.snapshot().len() <= size);
}

#[test]
fn nan_does_not_poison_state() {
    let clean: Vec<f64> = (0..1500)
        .map(|i| daily(i) + if i == 1400 { 150.0 } else { 0.0 })
        .collect();
    let mut d = detector();
    let mut with_nan = Vec::new();
    for (i, &v) in clean.iter().enumerate() {
        let ts = T0 + i as i64 * FIVE_MIN;
        if i % 100 == 50 {
            for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
                let s = d.update(ts, bad);
                assert_eq!((s.value, s.component), (0.0, Component::Invalid));
            }
        }
        with_nan.push(d.update(ts, v));
    }
    assert_eq!(with_nan, run(clean));
    assert_eq!(d.invalid_points(), 45);
    assert_eq!(d.points(), 1500);
    assert!(with_nan[1400].value >= alarm(), "{:?}", with_nan[1400]);
}

#[test]
fn scores_stay_in_unit_interval_on_wild_input() {
    let mut d = detector();
    let wild = [0.0, 1e300, -1e300, 5e-324, 1.0, -1.0, 1e-300, 7.0];
    for i in 0..2000u64 {
        let s = d.update(
            T0 + i as i64 * 1000,
            wild[(i % 8) as usize] * (1.0 + noise(i)),
        );
        assert!((0.0..=1.0).contains(&s.value), "{s:?}");
    }
    // Out-of-order and repeated timestamps are scored, not rejected.
    let s = d.update(T0, 1.0);
    assert!((0.0..=1.0).contains(&s.value));
}

#[test]
fn bad_snapshots_and_configs_are_rejected() {
    let mut d = detector();
    for i in 0..500u64 {
        d.update(T0 + i as i64 * FIVE_MIN, daily(i));
    }
    let bytes = d.snapshot();
    let cfg = AnomalyConfig::default;
    assert!(AnomalyDetector::restore(cfg(), &bytes[..bytes.len() - 1]).is_err());
    assert!(AnomalyDetector::restore(cfg(), b"nope").is_err());
    let mut long = bytes.clone();
    long.push(0);
    assert!(AnomalyDetector::restore(cfg(), &long).is_err());
    assert!(AnomalyDetector::from_json("{}").is_err());
    let bad = AnomalyConfig {
        slow_alpha: 0.0,
        band_sigmas: -1.0,
        ..AnomalyConfig::default()
    };
    let err = AnomalyDetector::new(bad).unwrap_err().to_string();
    assert!(
        err.contains("slow_alpha") && err.contains("band_sigmas"),
        "{err}"
    );
    let parsed: std::result::Result<AnomalyConfig, _> =
        serde_json::from_str(r#"{"slow_alpa": 0.1}"#);
    assert!(parsed.is_err(), "unknown fields are rejected");
}
