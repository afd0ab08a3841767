//! Prometheus remote-write 1.0 → series, with the checks Prometheus applies to
//! incoming series: every label name matches `[a-zA-Z_][a-zA-Z0-9_]*`, `__name__` is
//! present, non-empty and matches `[a-zA-Z_:][a-zA-Z0-9_:]*`, no label name repeats.
//! A series failing a check is dropped whole, counted by its samples. Labels with
//! empty values are dropped (an empty value means "absent"); label values are valid
//! UTF-8 because prost refuses anything else when decoding. Samples with NaN/±Inf
//! follow [`NonFinitePolicy`](super::NonFinitePolicy); the staleness marker is kept
//! bit-exact. Exemplars and metadata are ignored.

use std::collections::HashSet;

use sightline_proto::prometheus::{TimeSeries, WriteRequest};
use sightline_store::METRIC_NAME;

use super::names::{format_float, is_valid_label_name, is_valid_metric_name};
use super::{
    describe_labels, reason, DropLog, Label, Labels, Sample, SeriesSet, TranslateOptions,
    Translated, WriteBatch,
};

pub(super) fn translate(req: WriteRequest, opts: &TranslateOptions) -> Translated {
    let mut out = SeriesSet::default();
    let mut drops = DropLog::default();
    for ts in req.timeseries {
        let items = ts.samples.len().max(1) as u64;
        let labels = match validate(&ts) {
            Ok(labels) => labels,
            Err((why, message)) => {
                drops.add(why, items, || message);
                continue;
            }
        };
        let mut samples = Vec::with_capacity(ts.samples.len());
        for s in &ts.samples {
            if !opts.non_finite.allows(s.value) {
                drops.add(reason::NON_FINITE_VALUE, 1, || {
                    format!(
                        "non-finite value {} in series {}",
                        format_float(s.value),
                        describe(&ts)
                    )
                });
                continue;
            }
            samples.push(Sample {
                timestamp_ms: s.timestamp,
                value: s.value,
            });
        }
        out.extend(labels, samples);
    }
    Translated {
        batch: WriteBatch::Metrics(out.finish()),
        dropped: drops.into_vec(),
    }
}

fn describe(ts: &TimeSeries) -> String {
    describe_labels(
        ts.labels
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str())),
    )
}

fn validate(ts: &TimeSeries) -> Result<Labels, (&'static str, String)> {
    // Senders sort labels (remote-write 1.0 requires it): then a repeat is adjacent.
    let sorted = ts.labels.windows(2).all(|w| w[0].name <= w[1].name);
    let mut seen: HashSet<&str> = HashSet::new();
    let mut has_name = false;
    for (i, l) in ts.labels.iter().enumerate() {
        let repeated = if sorted {
            i > 0 && ts.labels[i - 1].name == l.name
        } else {
            !seen.insert(l.name.as_str())
        };
        if repeated {
            return Err((
                reason::DUPLICATE_LABEL,
                format!(
                    "duplicate label name {:?} in series {}",
                    l.name,
                    describe(ts)
                ),
            ));
        }
        if l.name == METRIC_NAME {
            if l.value.is_empty() {
                continue;
            }
            if !is_valid_metric_name(&l.value) {
                return Err((
                    reason::INVALID_METRIC_NAME,
                    format!(
                        "invalid metric name {:?} in series {}",
                        l.value,
                        describe(ts)
                    ),
                ));
            }
            has_name = true;
        } else if !is_valid_label_name(&l.name) {
            return Err((
                reason::INVALID_LABEL_NAME,
                format!("invalid label name {:?} in series {}", l.name, describe(ts)),
            ));
        }
    }
    if !has_name {
        return Err((
            reason::MISSING_METRIC_NAME,
            format!("series {} has no metric name (__name__)", describe(ts)),
        ));
    }
    Ok(Labels::new(
        ts.labels
            .iter()
            .map(|l| Label {
                name: l.name.clone(),
                value: l.value.clone(),
            })
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::super::{is_stale_nan, stale_nan, NonFinitePolicy};
    use super::*;
    use sightline_proto::prometheus::{Label as PLabel, Sample as PSample};

    fn series(labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
        TimeSeries {
            labels: labels
                .iter()
                .map(|(n, v)| PLabel {
                    name: n.to_string(),
                    value: v.to_string(),
                })
                .collect(),
            samples: samples
                .iter()
                .map(|(t, v)| PSample {
                    timestamp: *t,
                    value: *v,
                })
                .collect(),
            exemplars: vec![],
        }
    }

    fn run(
        ts: Vec<TimeSeries>,
        opts: &TranslateOptions,
    ) -> (Vec<sightline_store::Series>, Vec<super::super::Dropped>) {
        let t = translate(
            WriteRequest {
                timeseries: ts,
                metadata: vec![],
            },
            opts,
        );
        match t.batch {
            WriteBatch::Metrics(s) => (s, t.dropped),
            other => panic!("unexpected batch {other:?}"),
        }
    }

    #[test]
    fn valid_series_pass_through_sorted_without_empty_labels() {
        let (out, dropped) = run(
            vec![series(
                &[
                    ("job", "node"),
                    ("__name__", "up"),
                    ("instance", "a:9100"),
                    ("env", ""),
                ],
                &[(1000, 1.0), (2000, 0.0)],
            )],
            &TranslateOptions::default(),
        );
        assert!(dropped.is_empty());
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0].labels,
            Labels::from_pairs([("__name__", "up"), ("instance", "a:9100"), ("job", "node")])
        );
        let names: Vec<_> = out[0].labels.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, vec!["__name__", "instance", "job"]);
        assert_eq!(
            out[0].samples,
            vec![
                Sample {
                    timestamp_ms: 1000,
                    value: 1.0
                },
                Sample {
                    timestamp_ms: 2000,
                    value: 0.0
                }
            ]
        );
    }

    #[test]
    fn invalid_series_are_dropped_by_reason_and_the_rest_kept() {
        let (out, dropped) = run(
            vec![
                series(&[("__name__", "up"), ("1abc", "x")], &[(1, 1.0), (2, 1.0)]),
                series(&[("__name__", "up"), ("a-b", "x")], &[(1, 1.0)]),
                series(&[("job", "x")], &[(1, 1.0)]),
                series(&[("__name__", ""), ("job", "x")], &[(1, 1.0)]),
                series(&[("__name__", "http-requests")], &[(1, 1.0)]),
                series(
                    &[("__name__", "up"), ("job", "a"), ("job", "b")],
                    &[(1, 1.0)],
                ),
                series(&[("__name__", "up"), ("", "v")], &[]),
                series(&[("__name__", "ok:metric_1")], &[(1, 1.0)]),
            ],
            &TranslateOptions::default(),
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].labels.metric_name(), Some("ok:metric_1"));
        let got: Vec<_> = dropped.iter().map(|d| (d.reason, d.count)).collect();
        assert_eq!(
            got,
            vec![
                ("invalid_label_name", 4),
                ("missing_metric_name", 2),
                ("invalid_metric_name", 1),
                ("duplicate_label", 1),
            ]
        );
        assert_eq!(
            dropped[0].message,
            r#"invalid label name "1abc" in series {__name__="up", 1abc="x"}"#
        );
        assert_eq!(
            dropped[1].message,
            r#"series {job="x"} has no metric name (__name__)"#
        );
        assert_eq!(
            dropped[2].message,
            r#"invalid metric name "http-requests" in series {__name__="http-requests"}"#
        );
        assert_eq!(
            dropped[3].message,
            r#"duplicate label name "job" in series {__name__="up", job="a", job="b"}"#
        );
    }

    #[test]
    fn non_finite_values_follow_policy_and_stale_marker_is_bit_exact() {
        let input = || {
            vec![series(
                &[("__name__", "temp")],
                &[
                    (1, 1.5),
                    (2, f64::NAN),
                    (3, f64::INFINITY),
                    (4, stale_nan()),
                    (5, f64::NEG_INFINITY),
                ],
            )]
        };
        let (out, dropped) = run(input(), &TranslateOptions::default());
        assert_eq!(dropped.len(), 1);
        assert_eq!(dropped[0].reason, "non_finite_value");
        assert_eq!(dropped[0].count, 3);
        assert_eq!(
            dropped[0].message,
            r#"non-finite value NaN in series {__name__="temp"}"#
        );
        let s = &out[0].samples;
        assert_eq!(s.len(), 2);
        assert_eq!(
            s[0],
            Sample {
                timestamp_ms: 1,
                value: 1.5
            }
        );
        assert_eq!(s[1].timestamp_ms, 4);
        assert!(is_stale_nan(s[1].value));

        let accept = TranslateOptions {
            non_finite: NonFinitePolicy::Accept,
            ..Default::default()
        };
        let (out, dropped) = run(input(), &accept);
        assert!(dropped.is_empty());
        let s = &out[0].samples;
        assert_eq!(s.len(), 5);
        assert!(s[1].value.is_nan() && !is_stale_nan(s[1].value));
        assert_eq!(s[2].value, f64::INFINITY);
        assert!(is_stale_nan(s[3].value));
        assert_eq!(s[4].value, f64::NEG_INFINITY);
    }

    #[test]
    fn repeated_series_are_merged_in_time_order() {
        let (out, dropped) = run(
            vec![
                series(&[("__name__", "up"), ("job", "a")], &[(2000, 1.0)]),
                series(&[("job", "a"), ("__name__", "up")], &[(1000, 0.0)]),
            ],
            &TranslateOptions::default(),
        );
        assert!(dropped.is_empty());
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0]
                .samples
                .iter()
                .map(|s| s.timestamp_ms)
                .collect::<Vec<_>>(),
            vec![1000, 2000]
        );
    }

    #[test]
    fn duplicates_are_found_in_unsorted_labels_and_empty_series_vanish() {
        let (out, dropped) = run(
            vec![
                series(
                    &[("job", "a"), ("__name__", "up"), ("job", "b")],
                    &[(1, 1.0)],
                ),
                series(&[("__name__", "up"), ("job", "a")], &[]),
                series(&[("__name__", "up"), ("job", "c")], &[(1, f64::NAN)]),
            ],
            &TranslateOptions::default(),
        );
        assert!(out.is_empty(), "{out:?}");
        let got: Vec<_> = dropped.iter().map(|d| (d.reason, d.count)).collect();
        assert_eq!(got, vec![("duplicate_label", 1), ("non_finite_value", 1)]);
    }

    #[test]
    fn empty_request_translates_to_empty_batch() {
        let (out, dropped) = run(vec![], &TranslateOptions::default());
        assert!(out.is_empty() && dropped.is_empty());
    }
}
