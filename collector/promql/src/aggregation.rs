//! Aggregation operators (`sum`, `avg`, `min`, `max`, `count`, `group`, `stddev`,
//! `stdvar`, `topk`, `bottomk`, `count_values`, `quantile`) with `by`/`without`
//! grouping. Groups are formed per step from the input vector; the arithmetic and the
//! `topk`/`bottomk` heap follow Prometheus 2.42 `engine.go` (`aggregation`), so ties and
//! NaNs pick the same elements.

use std::collections::HashMap;

use promql_parser::parser::{AggregateExpr, LabelModifier};
use sightline_store::{Label, Labels, METRIC_NAME};

use crate::eval::{with_label, Elem, Evaluator, Value};
use crate::json::format_value;
use crate::{Error, Result};

struct Group {
    labels: Labels,
    value: f64,
    mean: f64,
    count: f64,
    values: Vec<f64>,
    heap: Vec<Elem>,
}

/// Evaluates an aggregation at `t`.
pub fn eval(ev: &mut Evaluator<'_>, a: &AggregateExpr, t: i64) -> Result<Value> {
    let op = a.op.to_string();
    let param = match &a.param {
        Some(p) => Some(ev.eval(p, t)?),
        None => None,
    };
    let input = ev.eval(&a.expr, t)?.into_vector()?;
    let (without, mut grouping): (bool, Vec<String>) = match &a.modifier {
        None => (false, Vec::new()),
        Some(LabelModifier::Include(l)) => (false, l.labels.clone()),
        Some(LabelModifier::Exclude(l)) => (true, l.labels.clone()),
    };
    let mut k = 0usize;
    let mut q = 0.0;
    let mut value_label = String::new();
    match op.as_str() {
        "topk" | "bottomk" => {
            let f = param_scalar(param, &op)?;
            if !(f > -9.223_372_036_854_776e18 && f < 9.223_372_036_854_776e18) {
                return Err(Error::Execution(format!(
                    "Scalar value {f} overflows int64"
                )));
            }
            let ki = f as i64;
            if ki < 1 {
                return Ok(Value::Vector(Vec::new()));
            }
            k = ki as usize;
        }
        "quantile" => q = param_scalar(param, &op)?,
        "count_values" => {
            value_label = match param {
                Some(Value::Str(s)) => s,
                _ => {
                    return Err(Error::Execution(
                        "count_values: expected a string parameter".into(),
                    ))
                }
            };
            if !valid_label_name(&value_label) {
                return Err(Error::Execution(format!(
                    "invalid label name {value_label:?}"
                )));
            }
            if !without {
                grouping.push(value_label.clone());
            }
        }
        _ => {}
    }
    let mut groups: Vec<Group> = Vec::new();
    let mut index: HashMap<Labels, usize> = HashMap::new();
    for e in input {
        let labels = if op == "count_values" {
            with_label(&e.labels, &value_label, &format_value(e.value))
        } else {
            e.labels.clone()
        };
        let key = group_labels(&labels, without, &grouping);
        let gi = match index.get(&key) {
            Some(&i) => i,
            None => {
                index.insert(key.clone(), groups.len());
                groups.push(Group {
                    labels: key,
                    value: e.value,
                    mean: e.value,
                    count: 1.0,
                    values: Vec::new(),
                    heap: Vec::new(),
                });
                let g = groups
                    .last_mut()
                    .ok_or_else(|| Error::Execution("empty group".into()))?;
                match op.as_str() {
                    "count" | "count_values" | "group" => g.value = 1.0,
                    "stddev" | "stdvar" => g.value = 0.0,
                    "quantile" => g.values.push(e.value),
                    "topk" | "bottomk" => heap_push(&mut g.heap, e, op == "topk"),
                    _ => {}
                }
                continue;
            }
        };
        let g = &mut groups[gi];
        let v = e.value;
        match op.as_str() {
            "sum" => g.value += v,
            "avg" => {
                g.count += 1.0;
                if g.mean.is_infinite() {
                    if v.is_infinite() && (g.mean > 0.0) == (v > 0.0) {
                        continue;
                    }
                    if !v.is_infinite() && !v.is_nan() {
                        continue;
                    }
                }
                g.mean += v / g.count - g.mean / g.count;
            }
            "count" | "count_values" => g.value += 1.0,
            "group" => {}
            "max" => {
                if g.value < v || g.value.is_nan() {
                    g.value = v;
                }
            }
            "min" => {
                if g.value > v || g.value.is_nan() {
                    g.value = v;
                }
            }
            "stddev" | "stdvar" => {
                g.count += 1.0;
                let delta = v - g.mean;
                g.mean += delta / g.count;
                g.value += delta * (v - g.mean);
            }
            "quantile" => g.values.push(v),
            "topk" | "bottomk" => {
                let topk = op == "topk";
                if g.heap.len() < k {
                    heap_push(&mut g.heap, e, topk);
                } else {
                    let top = g.heap[0].value;
                    let replace =
                        if topk { top < v } else { top > v } || (top.is_nan() && !v.is_nan());
                    if replace {
                        g.heap[0] = e;
                        heap_fix(&mut g.heap, 0, topk);
                    }
                }
            }
            other => return Err(Error::BadData(format!("unknown aggregation {other}"))),
        }
    }
    let mut out = Vec::with_capacity(groups.len());
    for g in groups {
        let value = match op.as_str() {
            "avg" => g.mean,
            "stdvar" => g.value / g.count,
            "stddev" => (g.value / g.count).sqrt(),
            "quantile" => quantile(q, g.values),
            "topk" | "bottomk" => {
                out.extend(g.heap.into_iter().map(|e| Elem { ts: t, ..e }));
                continue;
            }
            _ => g.value,
        };
        out.push(Elem {
            labels: g.labels,
            value,
            ts: t,
        });
    }
    Ok(Value::Vector(out))
}

fn param_scalar(p: Option<Value>, op: &str) -> Result<f64> {
    match p {
        Some(Value::Scalar(v)) => Ok(v),
        _ => Err(Error::Execution(format!(
            "{op}: expected a scalar parameter"
        ))),
    }
}

fn valid_label_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// Labels of the group an element belongs to.
fn group_labels(l: &Labels, without: bool, grouping: &[String]) -> Labels {
    let keep = |x: &&Label| {
        if without {
            x.name != METRIC_NAME && !grouping.contains(&x.name)
        } else {
            grouping.contains(&x.name)
        }
    };
    Labels::new(l.iter().filter(keep).cloned().collect())
}

/// Prometheus' `vectorByValueHeap` (topk, a min-heap) or `vectorByReverseValueHeap`
/// (bottomk); NaN always sorts first. For bottomk, equal values compare as "less":
/// that is the tie-breaking Prometheus 2.42 shows in the differential test (which of
/// several equal values survives), found empirically, not from its source.
fn less(h: &[Elem], i: usize, j: usize, topk: bool) -> bool {
    if h[i].value.is_nan() {
        return true;
    }
    if topk {
        h[i].value < h[j].value
    } else {
        h[i].value >= h[j].value
    }
}

fn up(h: &mut [Elem], mut j: usize, topk: bool) {
    while j > 0 {
        let i = (j - 1) / 2;
        if !less(h, j, i, topk) {
            break;
        }
        h.swap(i, j);
        j = i;
    }
}

fn down(h: &mut [Elem], i0: usize, topk: bool) -> bool {
    let n = h.len();
    let mut i = i0;
    loop {
        let j1 = 2 * i + 1;
        if j1 >= n {
            break;
        }
        let mut j = j1;
        if j1 + 1 < n && less(h, j1 + 1, j1, topk) {
            j = j1 + 1;
        }
        if !less(h, j, i, topk) {
            break;
        }
        h.swap(i, j);
        i = j;
    }
    i > i0
}

fn heap_push(h: &mut Vec<Elem>, e: Elem, topk: bool) {
    h.push(e);
    let n = h.len() - 1;
    up(h, n, topk);
}

fn heap_fix(h: &mut [Elem], i: usize, topk: bool) {
    if !down(h, i, topk) {
        up(h, i, topk);
    }
}

/// Prometheus' `quantile`: linear interpolation between the closest ranks; NaN
/// values sort first.
pub fn quantile(q: f64, mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_interpolates() {
        assert_eq!(quantile(0.5, vec![1.0, 2.0, 3.0, 4.0]), 2.5);
        assert_eq!(quantile(0.0, vec![3.0, 1.0]), 1.0);
        assert_eq!(quantile(2.0, vec![1.0]), f64::INFINITY);
        assert!(quantile(0.5, vec![]).is_nan());
    }

    #[test]
    fn topk_heap_keeps_largest() {
        let mut h = Vec::new();
        for (i, v) in [3.0, 1.0, 5.0, 2.0, 4.0].into_iter().enumerate() {
            let e = Elem {
                labels: Labels::from_pairs([("i", i.to_string())]),
                value: v,
                ts: 0,
            };
            if h.len() < 2 {
                heap_push(&mut h, e, true);
            } else if h[0].value < v {
                h[0] = e;
                heap_fix(&mut h, 0, true);
            }
        }
        let mut got: Vec<f64> = h.iter().map(|e| e.value).collect();
        got.sort_by(|a, b| a.partial_cmp(b).unwrap());
        assert_eq!(got, vec![4.0, 5.0]);
    }
}
