//! Metric queries: range aggregations over the samples a log pipeline produced,
//! then vector aggregations and binary operators, evaluated at every step.
//!
//! Steps are `start, start+step, ...` up to `end` (an instant query is one step at
//! `time`). At step `t` a range aggregation over `[range] offset o` reads the
//! samples with timestamps in `(t-o-range, t-o]`; a series with no sample there has
//! no point at `t`. Samples come from a `fetch` callback (the query engine scans
//! the store and runs the pipeline), so this module is pure arithmetic.

use std::collections::{BTreeMap, HashMap};

use sightline_store::MatchOp;

use super::ast::{BinOp, Grouping, MetricExpr, RangeFn, VecOp};
use super::{Error, Result};

/// Sorted label pairs of a series.
pub type LabelPairs = Vec<(String, String)>;

/// One output series: points at step timestamps (ns), ascending.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub labels: LabelPairs,
    pub points: Vec<(i64, f64)>,
}

/// A query's evaluation result.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Scalar(f64),
    Vector(Vec<Series>),
}

/// Evaluation timestamps.
#[derive(Clone, Copy, Debug)]
pub struct Steps {
    pub start: i64,
    pub end: i64,
    pub step: i64,
}

impl Steps {
    pub fn times(&self) -> impl Iterator<Item = i64> + '_ {
        let step = self.step.max(1);
        (0..)
            .map(move |i: i64| self.start.saturating_add(i.saturating_mul(step)))
            .take_while(move |t| *t <= self.end)
    }
}

/// Samples of one range aggregation: per series key, `(timestamp, value)` by time.
pub type SampleSets = BTreeMap<LabelPairs, Vec<(i64, f64)>>;

/// Reads the samples of a `MetricExpr::Range` in `[from, to]` (ns).
pub type Fetch<'a> = dyn FnMut(&MetricExpr, i64, i64) -> Result<SampleSets> + 'a;

/// Bounds of one evaluation.
#[derive(Clone, Copy, Debug)]
pub struct EvalLimits {
    pub max_series: usize,
    /// Samples visited by window functions without prefix sums (max, quantile, ...).
    pub max_window_work: u64,
}

struct Ctx<'a, 'b> {
    steps: Steps,
    fetch: &'a mut Fetch<'b>,
    limits: EvalLimits,
    work: u64,
}

/// Evaluates `expr` at every step.
pub fn eval(
    expr: &MetricExpr,
    steps: Steps,
    limits: EvalLimits,
    fetch: &mut Fetch<'_>,
) -> Result<Value> {
    let mut ctx = Ctx {
        steps,
        fetch,
        limits,
        work: 0,
    };
    let v = ctx.eval(expr)?;
    if let Value::Vector(s) = &v {
        check_series(s.len(), limits.max_series)?;
    }
    Ok(v)
}

fn check_series(n: usize, max: usize) -> Result<()> {
    if n > max {
        return Err(Error::Limit(format!(
            "maximum number of series ({max}) reached for a single query; use an aggregation \
             (sum by (...)) or a narrower selector"
        )));
    }
    Ok(())
}

fn group_key(labels: &LabelPairs, g: Option<&Grouping>) -> LabelPairs {
    match g {
        None => Vec::new(),
        Some(g) if g.without => labels
            .iter()
            .filter(|(k, _)| !g.labels.contains(k))
            .cloned()
            .collect(),
        Some(g) => labels
            .iter()
            .filter(|(k, _)| g.labels.contains(k))
            .cloned()
            .collect(),
    }
}

impl Ctx<'_, '_> {
    fn eval(&mut self, expr: &MetricExpr) -> Result<Value> {
        match expr {
            MetricExpr::Number(n) => Ok(Value::Scalar(*n)),
            MetricExpr::VectorLit(v) => Ok(Value::Vector(vec![Series {
                labels: Vec::new(),
                points: self.steps.times().map(|t| (t, *v)).collect(),
            }])),
            MetricExpr::Range { .. } => self.range(expr).map(Value::Vector),
            MetricExpr::Vector {
                op,
                grouping,
                param,
                inner,
            } => {
                let series = match self.eval(inner)? {
                    Value::Vector(s) => s,
                    Value::Scalar(_) => {
                        return Err(Error::Invalid(format!(
                            "{op:?} expects a vector, got a scalar"
                        )))
                    }
                };
                Ok(Value::Vector(match op {
                    VecOp::Topk | VecOp::Bottomk => top_k(
                        series,
                        grouping.as_ref(),
                        param.unwrap_or(1.0) as usize,
                        *op == VecOp::Topk,
                    ),
                    _ => aggregate(series, *op, grouping.as_ref()),
                }))
            }
            MetricExpr::Binary {
                op,
                bool_modifier,
                lhs,
                rhs,
            } => {
                let l = self.eval(lhs)?;
                let r = self.eval(rhs)?;
                binary(*op, *bool_modifier, l, r)
            }
        }
    }

    fn range(&mut self, expr: &MetricExpr) -> Result<Vec<Series>> {
        let MetricExpr::Range {
            func,
            log,
            range_ns,
            offset_ns,
            param,
            ..
        } = expr
        else {
            return Ok(Vec::new());
        };
        let from = self.steps.start - offset_ns - range_ns + 1;
        let to = self.steps.end - offset_ns;
        let sets = (self.fetch)(expr, from, to)?;
        check_series(sets.len(), self.limits.max_series)?;
        let range_s = *range_ns as f64 / 1e9;
        let times: Vec<i64> = self.steps.times().collect();
        if *func == RangeFn::AbsentOverTime {
            let labels: LabelPairs = log
                .matchers
                .iter()
                .filter(|m| m.op == MatchOp::Equal)
                .map(|m| (m.name.clone(), m.value.clone()))
                .collect();
            let points: Vec<(i64, f64)> = times
                .iter()
                .filter(|&&t| {
                    let (lo, hi) = (t - offset_ns - range_ns, t - offset_ns);
                    !sets
                        .values()
                        .any(|s| s.iter().any(|(ts, _)| *ts > lo && *ts <= hi))
                })
                .map(|&t| (t, 1.0))
                .collect();
            return Ok(if points.is_empty() {
                Vec::new()
            } else {
                vec![Series { labels, points }]
            });
        }
        let mut out = Vec::with_capacity(sets.len());
        for (labels, samples) in sets {
            let mut prefix = Vec::with_capacity(samples.len() + 1);
            prefix.push(0.0);
            let mut acc = 0.0;
            for (_, v) in &samples {
                acc += v;
                prefix.push(acc);
            }
            let mut points = Vec::new();
            for &t in &times {
                let lo_ts = t - offset_ns - range_ns;
                let hi_ts = t - offset_ns;
                let lo = samples.partition_point(|(ts, _)| *ts <= lo_ts);
                let hi = samples.partition_point(|(ts, _)| *ts <= hi_ts);
                if lo >= hi {
                    continue;
                }
                let n = (hi - lo) as f64;
                let sum = prefix[hi] - prefix[lo];
                let window = || samples[lo..hi].iter().map(|(_, v)| *v);
                let v = match func {
                    RangeFn::CountOverTime => n,
                    RangeFn::Rate => n / range_s,
                    RangeFn::BytesOverTime | RangeFn::SumOverTime => sum,
                    RangeFn::BytesRate | RangeFn::RateUnwrapped => sum / range_s,
                    RangeFn::AvgOverTime => sum / n,
                    RangeFn::FirstOverTime => samples[lo].1,
                    RangeFn::LastOverTime => samples[hi - 1].1,
                    RangeFn::AbsentOverTime => 1.0,
                    RangeFn::MaxOverTime | RangeFn::MinOverTime => {
                        self.charge(hi - lo)?;
                        let it = window();
                        if *func == RangeFn::MaxOverTime {
                            it.fold(f64::NEG_INFINITY, f64::max)
                        } else {
                            it.fold(f64::INFINITY, f64::min)
                        }
                    }
                    RangeFn::StddevOverTime | RangeFn::StdvarOverTime => {
                        self.charge(hi - lo)?;
                        let mean = sum / n;
                        let var = window().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
                        if *func == RangeFn::StddevOverTime {
                            var.sqrt()
                        } else {
                            var
                        }
                    }
                    RangeFn::QuantileOverTime => {
                        self.charge(hi - lo)?;
                        let mut vals: Vec<f64> = window().collect();
                        quantile(param.unwrap_or(0.5), &mut vals)
                    }
                };
                points.push((t, v));
            }
            if !points.is_empty() {
                out.push(Series { labels, points });
            }
        }
        Ok(out)
    }

    fn charge(&mut self, n: usize) -> Result<()> {
        self.work += n as u64;
        if self.work > self.limits.max_window_work {
            return Err(Error::Limit(format!(
                "query needs more than {} window samples; use a larger step or a shorter range",
                self.limits.max_window_work
            )));
        }
        Ok(())
    }
}

/// Prometheus `quantile`: linear interpolation between closest ranks.
fn quantile(q: f64, vals: &mut [f64]) -> f64 {
    if vals.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    vals.sort_by(f64::total_cmp);
    let rank = q * (vals.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    let w = rank - lo as f64;
    vals[lo] * (1.0 - w) + vals[hi] * w
}

#[derive(Default)]
struct Acc {
    n: f64,
    sum: f64,
    max: f64,
    min: f64,
    mean: f64,
    m2: f64,
}

fn aggregate(series: Vec<Series>, op: VecOp, g: Option<&Grouping>) -> Vec<Series> {
    let mut groups: BTreeMap<LabelPairs, BTreeMap<i64, Acc>> = BTreeMap::new();
    for s in series {
        let key = group_key(&s.labels, g);
        let g = groups.entry(key).or_default();
        for (t, v) in s.points {
            let a = g.entry(t).or_insert_with(|| Acc {
                max: f64::NEG_INFINITY,
                min: f64::INFINITY,
                ..Acc::default()
            });
            a.n += 1.0;
            a.sum += v;
            a.max = a.max.max(v);
            a.min = a.min.min(v);
            let d = v - a.mean;
            a.mean += d / a.n;
            a.m2 += d * (v - a.mean);
        }
    }
    groups
        .into_iter()
        .map(|(labels, steps)| Series {
            labels,
            points: steps
                .into_iter()
                .map(|(t, a)| {
                    let v = match op {
                        VecOp::Sum => a.sum,
                        VecOp::Avg => a.sum / a.n,
                        VecOp::Max => a.max,
                        VecOp::Min => a.min,
                        VecOp::Count => a.n,
                        VecOp::Stdvar => a.m2 / a.n,
                        VecOp::Stddev => (a.m2 / a.n).sqrt(),
                        VecOp::Topk | VecOp::Bottomk => a.sum,
                    };
                    (t, v)
                })
                .collect(),
        })
        .collect()
}

fn top_k(series: Vec<Series>, g: Option<&Grouping>, k: usize, top: bool) -> Vec<Series> {
    // (group, t) -> [(value, series index)]
    let mut cands: HashMap<(LabelPairs, i64), Vec<(f64, usize)>> = HashMap::new();
    for (i, s) in series.iter().enumerate() {
        let key = group_key(&s.labels, g);
        for &(t, v) in &s.points {
            cands.entry((key.clone(), t)).or_default().push((v, i));
        }
    }
    let mut keep: Vec<Vec<(i64, f64)>> = vec![Vec::new(); series.len()];
    for ((_, t), mut c) in cands {
        c.sort_by(|a, b| {
            let o = a.0.total_cmp(&b.0);
            if top {
                o.reverse()
            } else {
                o
            }
        });
        for (v, i) in c.into_iter().take(k) {
            keep[i].push((t, v));
        }
    }
    series
        .into_iter()
        .zip(keep)
        .filter(|(_, p)| !p.is_empty())
        .map(|(s, mut points)| {
            points.sort_by_key(|(t, _)| *t);
            Series {
                labels: s.labels,
                points,
            }
        })
        .collect()
}

fn arith(op: BinOp, a: f64, b: f64) -> Option<f64> {
    Some(match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div => a / b,
        BinOp::Mod => a % b,
        BinOp::Pow => a.powf(b),
        BinOp::Eq => f64::from(u8::from(a == b)),
        BinOp::Ne => f64::from(u8::from(a != b)),
        BinOp::Gt => f64::from(u8::from(a > b)),
        BinOp::Ge => f64::from(u8::from(a >= b)),
        BinOp::Lt => f64::from(u8::from(a < b)),
        BinOp::Le => f64::from(u8::from(a <= b)),
        BinOp::And | BinOp::Or | BinOp::Unless => return None,
    })
}

fn is_comparison(op: BinOp) -> bool {
    matches!(
        op,
        BinOp::Eq | BinOp::Ne | BinOp::Gt | BinOp::Ge | BinOp::Lt | BinOp::Le
    )
}

/// Applies `op` to one pair of values; `None` drops the point (a false comparison
/// without `bool`). `keep` is the value a filtering comparison keeps.
fn combine(op: BinOp, bool_mod: bool, a: f64, b: f64, keep: f64) -> Option<f64> {
    let v = arith(op, a, b)?;
    if is_comparison(op) && !bool_mod {
        return (v == 1.0).then_some(keep);
    }
    Some(v)
}

fn binary(op: BinOp, bool_mod: bool, l: Value, r: Value) -> Result<Value> {
    let set_op = matches!(op, BinOp::And | BinOp::Or | BinOp::Unless);
    match (l, r) {
        (Value::Scalar(a), Value::Scalar(b)) => {
            if set_op {
                return Err(Error::Invalid(format!(
                    "{op:?} is not defined between scalars"
                )));
            }
            Ok(Value::Scalar(arith(op, a, b).unwrap_or(f64::NAN)))
        }
        (Value::Vector(v), Value::Scalar(b)) | (Value::Scalar(b), Value::Vector(v)) if set_op => {
            let _ = (v, b);
            Err(Error::Invalid(format!(
                "{op:?} is not defined between a vector and a scalar"
            )))
        }
        (Value::Vector(v), Value::Scalar(b)) => Ok(Value::Vector(map_points(v, |a| {
            combine(op, bool_mod, a, b, a)
        }))),
        (Value::Scalar(a), Value::Vector(v)) => Ok(Value::Vector(map_points(v, |b| {
            combine(op, bool_mod, a, b, b)
        }))),
        (Value::Vector(lv), Value::Vector(rv)) => {
            let rmap: HashMap<LabelPairs, BTreeMap<i64, f64>> = rv
                .into_iter()
                .map(|s| (s.labels, s.points.into_iter().collect()))
                .collect();
            let mut out = Vec::new();
            let mut lkeys: HashMap<i64, Vec<&LabelPairs>> = HashMap::new();
            let lv_ref = &lv;
            if op == BinOp::Or {
                for s in lv_ref {
                    for (t, _) in &s.points {
                        lkeys.entry(*t).or_default().push(&s.labels);
                    }
                }
            }
            for s in lv_ref {
                let rhs = rmap.get(&s.labels);
                let points: Vec<(i64, f64)> = s
                    .points
                    .iter()
                    .filter_map(|&(t, a)| {
                        let b = rhs.and_then(|r| r.get(&t)).copied();
                        match op {
                            BinOp::And => b.map(|_| (t, a)),
                            BinOp::Or => Some((t, a)),
                            BinOp::Unless => b.is_none().then_some((t, a)),
                            _ => combine(op, bool_mod, a, b?, a).map(|v| (t, v)),
                        }
                    })
                    .collect();
                if !points.is_empty() {
                    out.push(Series {
                        labels: s.labels.clone(),
                        points,
                    });
                }
            }
            if op == BinOp::Or {
                for (labels, pts) in &rmap {
                    let points: Vec<(i64, f64)> = pts
                        .iter()
                        .filter(|(t, _)| !lkeys.get(t).is_some_and(|ls| ls.contains(&labels)))
                        .map(|(t, v)| (*t, *v))
                        .collect();
                    if !points.is_empty() {
                        match out.iter_mut().find(|s| s.labels == *labels) {
                            Some(s) => {
                                s.points.extend(points);
                                s.points.sort_by_key(|(t, _)| *t);
                            }
                            None => out.push(Series {
                                labels: labels.clone(),
                                points,
                            }),
                        }
                    }
                }
            }
            Ok(Value::Vector(out))
        }
    }
}

fn map_points(v: Vec<Series>, f: impl Fn(f64) -> Option<f64>) -> Vec<Series> {
    v.into_iter()
        .filter_map(|s| {
            let points: Vec<(i64, f64)> = s
                .points
                .into_iter()
                .filter_map(|(t, x)| f(x).map(|y| (t, y)))
                .collect();
            (!points.is_empty()).then_some(Series {
                labels: s.labels,
                points,
            })
        })
        .collect()
}

#[cfg(test)]
#[path = "metric_tests.rs"]
mod tests;
