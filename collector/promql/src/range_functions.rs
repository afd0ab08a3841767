//! Functions over range vectors (`rate`, `increase`, `delta`, `irate`, `idelta`,
//! `deriv`, `predict_linear`, `changes`, `resets`, `holt_winters`, `absent_over_time`
//! and the `*_over_time` family): each series of the range vector yields at most one
//! output element, labelled like its input without `__name__` (except
//! `last_over_time`). Arithmetic follows Prometheus 2.42 `functions.go`.

use promql_parser::parser::Expr;
use sightline_store::Sample;

use crate::eval::{drop_name, Elem, Evaluator, RangeValue, Value};
use crate::functions::absent_labels;
use crate::{aggregation::quantile, Error, Result};

/// Evaluates range-vector function `name` on already evaluated arguments.
pub fn call(
    name: &str,
    vals: Vec<Value>,
    args: &[Box<Expr>],
    _ev: &mut Evaluator<'_>,
    t: i64,
) -> Result<Vec<Elem>> {
    let mut m: Option<RangeValue> = None;
    let mut scalars = Vec::new();
    for v in vals {
        match v {
            Value::Matrix(r) => m = Some(r),
            Value::Scalar(s) => scalars.push(s),
            other => {
                return Err(Error::Execution(format!(
                    "{name}: unexpected argument {other:?}"
                )));
            }
        }
    }
    let m = m.ok_or_else(|| Error::Execution(format!("{name}: missing range vector")))?;
    let scalar = |i: usize| -> Result<f64> {
        scalars
            .get(i)
            .copied()
            .ok_or_else(|| Error::Execution(format!("{name}: missing argument")))
    };
    if name == "absent_over_time" {
        return Ok(if m.series.is_empty() {
            vec![Elem {
                labels: absent_labels(&args[0]),
                value: 1.0,
                ts: t,
            }]
        } else {
            Vec::new()
        });
    }
    if name == "holt_winters" && !m.series.is_empty() {
        let (sf, tf) = (scalar(0)?, scalar(1)?);
        if sf <= 0.0 || sf >= 1.0 {
            return Err(Error::Execution(format!(
                "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf}"
            )));
        }
        if tf <= 0.0 || tf >= 1.0 {
            return Err(Error::Execution(format!(
                "invalid trend factor. Expected: 0 < tf < 1, got: {tf}"
            )));
        }
    }
    let mut out = Vec::with_capacity(m.series.len());
    for s in &m.series {
        let p = &s.samples;
        let v = match name {
            "rate" => extrapolated_rate(p, &m, true, true),
            "increase" => extrapolated_rate(p, &m, true, false),
            "delta" => extrapolated_rate(p, &m, false, false),
            "irate" => instant_value(p, true),
            "idelta" => instant_value(p, false),
            "deriv" => (p.len() >= 2).then(|| linear_regression(p, p[0].timestamp_ms).0),
            "predict_linear" => {
                let d = scalar(0)?;
                (p.len() >= 2).then(|| {
                    let (slope, intercept) = linear_regression(p, t);
                    slope * d + intercept
                })
            }
            "changes" => Some(count_pairs(p, |prev, cur| {
                cur != prev && !(cur.is_nan() && prev.is_nan())
            })),
            "resets" => Some(count_pairs(p, |prev, cur| cur < prev)),
            "avg_over_time" => Some(avg(p)),
            "sum_over_time" => Some(p.iter().map(|x| x.value).sum()),
            "count_over_time" => Some(p.len() as f64),
            "max_over_time" => Some(p.iter().skip(1).fold(p[0].value, |m, x| {
                if x.value > m || m.is_nan() {
                    x.value
                } else {
                    m
                }
            })),
            "min_over_time" => Some(p.iter().skip(1).fold(p[0].value, |m, x| {
                if x.value < m || m.is_nan() {
                    x.value
                } else {
                    m
                }
            })),
            "last_over_time" => p.last().map(|x| x.value),
            "present_over_time" => Some(1.0),
            "stddev_over_time" => Some(stdvar(p).sqrt()),
            "stdvar_over_time" => Some(stdvar(p)),
            "quantile_over_time" => {
                let q = scalar(0)?;
                Some(quantile(q, p.iter().map(|x| x.value).collect()))
            }
            "holt_winters" => holt_winters(p, scalar(0)?, scalar(1)?),
            other => return Err(Error::BadData(format!("unknown range function {other}"))),
        };
        if let Some(value) = v {
            let labels = if name == "last_over_time" {
                s.labels.clone()
            } else {
                drop_name(&s.labels)
            };
            out.push(Elem {
                labels,
                value,
                ts: t,
            });
        }
    }
    Ok(out)
}

/// `rate`/`increase`/`delta` with Prometheus' extrapolation to the window edges.
fn extrapolated_rate(p: &[Sample], m: &RangeValue, is_counter: bool, is_rate: bool) -> Option<f64> {
    if p.len() < 2 {
        return None;
    }
    let first = p[0];
    let last = p[p.len() - 1];
    let mut result = last.value - first.value;
    if is_counter {
        let mut last_value = 0.0;
        for s in p {
            if s.value < last_value {
                result += last_value;
            }
            last_value = s.value;
        }
    }
    let mut duration_to_start = (first.timestamp_ms - m.start) as f64 / 1000.0;
    let duration_to_end = (m.end - last.timestamp_ms) as f64 / 1000.0;
    let sampled_interval = (last.timestamp_ms - first.timestamp_ms) as f64 / 1000.0;
    let avg_between = sampled_interval / (p.len() - 1) as f64;
    if is_counter && result > 0.0 && first.value >= 0.0 {
        let duration_to_zero = sampled_interval * (first.value / result);
        if duration_to_zero < duration_to_start {
            duration_to_start = duration_to_zero;
        }
    }
    let threshold = avg_between * 1.1;
    let mut extrapolate_to = sampled_interval;
    extrapolate_to += if duration_to_start < threshold {
        duration_to_start
    } else {
        avg_between / 2.0
    };
    extrapolate_to += if duration_to_end < threshold {
        duration_to_end
    } else {
        avg_between / 2.0
    };
    let mut factor = extrapolate_to / sampled_interval;
    if is_rate {
        factor /= m.range_secs();
    }
    Some(result * factor)
}

/// `irate`/`idelta`: the last two samples.
fn instant_value(p: &[Sample], is_rate: bool) -> Option<f64> {
    if p.len() < 2 {
        return None;
    }
    let last = p[p.len() - 1];
    let prev = p[p.len() - 2];
    let mut v = if is_rate && last.value < prev.value {
        last.value
    } else {
        last.value - prev.value
    };
    let interval = last.timestamp_ms - prev.timestamp_ms;
    if interval == 0 {
        return None;
    }
    if is_rate {
        v /= interval as f64 / 1000.0;
    }
    Some(v)
}

/// Neumaier-compensated `sum += inc` (Prometheus `kahanSumInc`).
fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// Least-squares fit of value over seconds since `intercept_ms`: (slope, intercept),
/// with compensated sums as Prometheus' `linearRegression`.
fn linear_regression(p: &[Sample], intercept_ms: i64) -> (f64, f64) {
    let mut n = 0.0;
    let (mut sx, mut cx, mut sy, mut cy) = (0.0, 0.0, 0.0, 0.0);
    let (mut sxy, mut cxy, mut sx2, mut cx2) = (0.0, 0.0, 0.0, 0.0);
    let init_y = p[0].value;
    let mut const_y = true;
    for (i, s) in p.iter().enumerate() {
        if const_y && i > 0 && s.value != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (s.timestamp_ms - intercept_ms) as f64 / 1e3;
        (sx, cx) = kahan_inc(x, sx, cx);
        (sy, cy) = kahan_inc(s.value, sy, cy);
        (sxy, cxy) = kahan_inc(x * s.value, sxy, cxy);
        (sx2, cx2) = kahan_inc(x * x, sx2, cx2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    let (sx, sy, sxy, sx2) = (sx + cx, sy + cy, sxy + cxy, sx2 + cx2);
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    (slope, sy / n - slope * sx / n)
}

fn count_pairs(p: &[Sample], f: impl Fn(f64, f64) -> bool) -> f64 {
    p.windows(2).filter(|w| f(w[0].value, w[1].value)).count() as f64
}

/// Incremental mean, keeping an infinite mean as Prometheus does.
fn avg(p: &[Sample]) -> f64 {
    let (mut mean, mut count) = (0.0f64, 0.0);
    for s in p {
        count += 1.0;
        let v = s.value;
        if mean.is_infinite() {
            if v.is_infinite() && (mean > 0.0) == (v > 0.0) {
                continue;
            }
            if !v.is_infinite() && !v.is_nan() {
                continue;
            }
        }
        mean += v / count - mean / count;
    }
    mean
}

fn stdvar(p: &[Sample]) -> f64 {
    let (mut count, mut mean, mut aux) = (0.0, 0.0, 0.0);
    for s in p {
        count += 1.0;
        let delta = s.value - mean;
        mean += delta / count;
        aux += delta * (s.value - mean);
    }
    aux / count
}

fn holt_winters(p: &[Sample], sf: f64, tf: f64) -> Option<f64> {
    if p.len() < 2 {
        return None;
    }
    let (mut s0, mut s1) = (0.0, p[0].value);
    let mut b = p[1].value - p[0].value;
    for (i, x) in p.iter().enumerate().skip(1) {
        let xs = sf * x.value;
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = xs + y;
    }
    Some(s1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(v: &[(i64, f64)]) -> Vec<Sample> {
        v.iter()
            .map(|&(t, x)| Sample {
                timestamp_ms: t,
                value: x,
            })
            .collect()
    }

    #[test]
    fn rate_extrapolates_and_handles_resets() {
        // 5 samples every 15 s in a 60 s window ending at the last sample
        let p = pts(&[
            (0, 0.0),
            (15_000, 10.0),
            (30_000, 20.0),
            (45_000, 30.0),
            (60_000, 40.0),
        ]);
        let m = RangeValue {
            series: vec![],
            start: 0,
            end: 60_000,
        };
        assert_eq!(extrapolated_rate(&p, &m, true, false), Some(40.0));
        let reset = pts(&[(0, 10.0), (15_000, 20.0), (30_000, 5.0), (45_000, 15.0)]);
        let m = RangeValue {
            series: vec![],
            start: -15_000,
            end: 45_000,
        };
        // increase 10 + (5 after reset from 20 -> counted as 20 + ...)
        let inc = extrapolated_rate(&reset, &m, true, false).unwrap();
        assert!(inc > 25.0, "{inc}");
    }

    #[test]
    fn regression_and_changes() {
        let p = pts(&[(0, 1.0), (1000, 3.0), (2000, 5.0)]);
        let (slope, icpt) = linear_regression(&p, 0);
        assert!((slope - 2.0).abs() < 1e-12 && (icpt - 1.0).abs() < 1e-12);
        assert_eq!(count_pairs(&p, |a, b| a != b), 2.0);
        assert_eq!(holt_winters(&p, 0.5, 0.5).map(|v| v > 4.0), Some(true));
    }
}
