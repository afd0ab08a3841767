//! Sibling groups with and without a planted outlier.

use super::*;
use crate::forecast::synthetic::Rng;

const METRICS: [&str; 3] = [
    "cpu_seconds_rate",
    "memory_working_set_bytes",
    "request_latency_p99",
];

/// 12 pods x 3 metrics x 60 samples; daily-ish shape shared by all pods plus noise.
fn group(
    seed: u64,
    shift_all: f64,
    tweak: impl Fn(usize, usize, usize, f64) -> f64,
) -> Vec<Vec<Vec<f64>>> {
    let mut rng = Rng::new(seed);
    let base = [0.8, 512e6, 0.120];
    let noise = [0.05, 10e6, 0.01];
    (0..12)
        .map(|pod| {
            (0..3)
                .map(|k| {
                    (0..60)
                        .map(|t| {
                            let shape = 1.0 + 0.2 * (t as f64 / 10.0).sin();
                            let v = base[k] * shape * shift_all + noise[k] * rng.gauss();
                            tweak(pod, k, t, v)
                        })
                        .collect()
                })
                .collect()
        })
        .collect()
}

fn score(data: &[Vec<Vec<f64>>]) -> Vec<MemberScore> {
    let names: Vec<String> = (0..data.len()).map(|i| format!("pod-{i}")).collect();
    let members: Vec<MemberWindows<'_>> = data
        .iter()
        .zip(&names)
        .map(|(m, name)| MemberWindows {
            name,
            metrics: m.iter().map(Vec::as_slice).collect(),
        })
        .collect();
    peer_outliers(&METRICS, &members, &PeerConfig::default()).unwrap()
}

#[test]
fn planted_cpu_outlier_is_flagged_and_explained() {
    let before = counters()[1].1;
    let data = group(
        1,
        1.0,
        |pod, k, _, v| if pod == 7 && k == 0 { v * 3.0 } else { v },
    );
    let s = score(&data);
    let flagged: Vec<&str> = s
        .iter()
        .filter(|m| m.outlier)
        .map(|m| m.member.as_str())
        .collect();
    assert_eq!(flagged, ["pod-7"]);
    let why = s[7].explanation().unwrap();
    assert_eq!(why.metric, "cpu_seconds_rate");
    assert_eq!(why.feature, Feature::Level);
    assert!(why.robust_z > 5.0);
    assert!((why.peer_median - 0.8).abs() < 0.1, "{why}");
    assert!(why.to_string().contains("above the peers' median"), "{why}");
    assert!(counters()[1].1 > before);
}

#[test]
fn latency_that_becomes_erratic_is_flagged_as_spread() {
    let data = group(2, 1.0, |pod, k, t, v| {
        if pod == 3 && k == 2 {
            v + 0.1 * ((t % 2) as f64 - 0.5)
        } else {
            v
        }
    });
    let s = score(&data);
    let flagged: Vec<&str> = s
        .iter()
        .filter(|m| m.outlier)
        .map(|m| m.member.as_str())
        .collect();
    assert_eq!(flagged, ["pod-3"]);
    let why = s[3].explanation().unwrap();
    assert_eq!(
        (why.metric.as_str(), why.feature),
        ("request_latency_p99", Feature::Spread)
    );
}

#[test]
fn memory_leak_in_one_pod_is_flagged_as_trend() {
    let data = group(3, 1.0, |pod, k, t, v| {
        if pod == 5 && k == 1 {
            v + 4e6 * t as f64
        } else {
            v
        }
    });
    let s = score(&data);
    assert!(s[5].outlier);
    let why = s[5].explanation().unwrap();
    assert_eq!(why.metric, "memory_working_set_bytes");
    assert!(
        matches!(why.feature, Feature::Trend | Feature::Level),
        "{why}"
    );
    assert_eq!(s.iter().filter(|m| m.outlier).count(), 1);
}

#[test]
fn no_outlier_flags_no_one() {
    let groups_before = counters()[0].1;
    for seed in 10..40 {
        let s = score(&group(seed, 1.0, |_, _, _, v| v));
        let flagged: Vec<(&str, String)> = s
            .iter()
            .filter(|m| m.outlier)
            .map(|m| {
                (
                    m.member.as_str(),
                    m.explanation().map(|d| d.to_string()).unwrap_or_default(),
                )
            })
            .collect();
        assert!(flagged.is_empty(), "seed {seed}: {flagged:?}");
    }
    assert!(counters()[0].1 >= groups_before + 30);
}

#[test]
fn members_that_shift_together_are_not_flagged() {
    // Every pod triples at once (traffic peak): nobody is unlike the others.
    let s = score(&group(4, 3.0, |_, _, _, v| v));
    assert!(
        s.iter().all(|m| !m.outlier),
        "{:?}",
        s.iter().map(|m| m.score).collect::<Vec<_>>()
    );
    // Same when the shift happens mid-window for all of them.
    let s = score(&group(
        5,
        1.0,
        |_, k, t, v| if k == 0 && t >= 30 { v * 2.0 } else { v },
    ));
    assert!(s.iter().all(|m| !m.outlier));
}

#[test]
fn identical_peers_do_not_turn_noise_into_alarms() {
    let flat: Vec<Vec<f64>> = (0..5).map(|i| vec![100.0 + 0.001 * i as f64; 30]).collect();
    let members: Vec<MemberWindows<'_>> = flat
        .iter()
        .map(|w| MemberWindows {
            name: "m",
            metrics: vec![w.as_slice()],
        })
        .collect();
    let s = peer_outliers(&["x"], &members, &PeerConfig::default()).unwrap();
    assert!(s.iter().all(|m| !m.outlier));
}

#[test]
fn bad_input_is_an_error_and_missing_data_is_skipped() {
    let w = [1.0, 2.0, 3.0];
    let two = [
        MemberWindows {
            name: "a",
            metrics: vec![&w[..]],
        },
        MemberWindows {
            name: "b",
            metrics: vec![&w[..]],
        },
    ];
    assert!(peer_outliers(&["x"], &two, &PeerConfig::default()).is_err());
    let mismatched = [
        MemberWindows {
            name: "a",
            metrics: vec![&w[..]],
        },
        MemberWindows {
            name: "b",
            metrics: vec![&w[..]],
        },
        MemberWindows {
            name: "c",
            metrics: vec![],
        },
    ];
    assert!(peer_outliers(&["x"], &mismatched, &PeerConfig::default()).is_err());
    let nan = [f64::NAN; 3];
    let with_gap = [
        MemberWindows {
            name: "a",
            metrics: vec![&w[..]],
        },
        MemberWindows {
            name: "b",
            metrics: vec![&w[..]],
        },
        MemberWindows {
            name: "c",
            metrics: vec![&w[..]],
        },
        MemberWindows {
            name: "d",
            metrics: vec![&nan[..]],
        },
    ];
    let s = peer_outliers(&["x"], &with_gap, &PeerConfig::default()).unwrap();
    assert_eq!(s[3].score, 0.0);
    assert!(s[3].deviations.is_empty());
}
