//! The evaluator: walks the parsed tree once per step. A range query is the instant
//! evaluation repeated at `start, start+step, ... <= end`, the per-step vectors merged
//! into series by label set, which is what Prometheus' `rangeEval` computes. Selectors
//! read the series [`crate::plan::prefetch`] loaded; subqueries evaluate their inner
//! expression at the multiples of their step inside their window, as Prometheus aligns
//! them. Limits (samples, timeout) are checked here.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use promql_parser::parser::value::ValueType;
use promql_parser::parser::{Expr, MatrixSelector, SubqueryExpr, VectorSelector};
use sightline_store::{Label, Labels, Sample, Series, METRIC_NAME};

use crate::plan::{self, at_ms, node_key, offset_ms, QueryBounds};
use crate::{
    aggregation, binary, functions, is_stale_nan, Error, QueryOptions, QueryResult, Queryable,
    Result, VectorSample,
};

/// One element of an instant vector during evaluation. `ts` is the sample's own
/// timestamp for a vector selector and the evaluation time otherwise (what
/// `timestamp()` reports).
#[derive(Clone, Debug, PartialEq)]
pub struct Elem {
    pub labels: Labels,
    pub value: f64,
    pub ts: i64,
}

/// A range vector: series with their points inside `[start, end]` (Prometheus 2.x
/// range selectors include both ends).
#[derive(Clone, Debug, Default)]
pub struct RangeValue {
    pub series: Vec<Series>,
    pub start: i64,
    pub end: i64,
}

impl RangeValue {
    pub fn range_secs(&self) -> f64 {
        (self.end - self.start) as f64 / 1000.0
    }
}

/// The value of a node at one step.
#[derive(Clone, Debug)]
pub enum Value {
    Scalar(f64),
    Str(String),
    Vector(Vec<Elem>),
    Matrix(RangeValue),
}

impl Value {
    fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar(_) => "scalar",
            Value::Str(_) => "string",
            Value::Vector(_) => "instant vector",
            Value::Matrix(_) => "range vector",
        }
    }

    pub fn into_vector(self) -> Result<Vec<Elem>> {
        match self {
            Value::Vector(v) => Ok(v),
            other => Err(Error::Execution(format!(
                "expected instant vector, got {}",
                other.type_name()
            ))),
        }
    }

    pub fn into_scalar(self) -> Result<f64> {
        match self {
            Value::Scalar(v) => Ok(v),
            other => Err(Error::Execution(format!(
                "expected scalar, got {}",
                other.type_name()
            ))),
        }
    }

    pub fn into_matrix(self) -> Result<RangeValue> {
        match self {
            Value::Matrix(m) => Ok(m),
            other => Err(Error::Execution(format!(
                "expected range vector, got {}",
                other.type_name()
            ))),
        }
    }

    pub fn into_string(self) -> Result<String> {
        match self {
            Value::Str(s) => Ok(s),
            other => Err(Error::Execution(format!(
                "expected string, got {}",
                other.type_name()
            ))),
        }
    }
}

/// State of one query's evaluation.
pub struct Evaluator<'a> {
    data: HashMap<usize, Vec<Series>>,
    pub(crate) bounds: QueryBounds,
    opts: &'a QueryOptions,
    started: Instant,
    /// Samples held by the step being evaluated.
    step_samples: usize,
    /// Samples already in the result.
    result_samples: usize,
}

/// Static type of an expression, as the parser types it.
pub fn expr_type(e: &Expr) -> ValueType {
    match e {
        Expr::Aggregate(_) => ValueType::Vector,
        Expr::Unary(u) => expr_type(&u.expr),
        Expr::Binary(b) => {
            if expr_type(&b.lhs) == ValueType::Scalar && expr_type(&b.rhs) == ValueType::Scalar {
                ValueType::Scalar
            } else {
                ValueType::Vector
            }
        }
        Expr::Paren(p) => expr_type(&p.expr),
        Expr::Subquery(_) | Expr::MatrixSelector(_) => ValueType::Matrix,
        Expr::NumberLiteral(_) => ValueType::Scalar,
        Expr::StringLiteral(_) => ValueType::String,
        Expr::VectorSelector(_) => ValueType::Vector,
        Expr::Call(c) => c.func.return_type,
        Expr::Extension(_) => ValueType::Vector,
    }
}

/// Removes enclosing parentheses.
pub fn unwrap_parens(mut e: &Expr) -> &Expr {
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    e
}

impl<'a> Evaluator<'a> {
    fn new(
        q: &dyn Queryable,
        ast: &Expr,
        bounds: QueryBounds,
        opts: &'a QueryOptions,
    ) -> Result<Self> {
        let data = plan::prefetch(q, ast, bounds, opts.max_series, opts.max_samples)?;
        Ok(Evaluator {
            data,
            bounds,
            opts,
            started: Instant::now(),
            step_samples: 0,
            result_samples: 0,
        })
    }

    fn check_time(&self, phase: &'static str) -> Result<()> {
        if self.started.elapsed() > self.opts.timeout {
            return Err(Error::Timeout(phase));
        }
        Ok(())
    }

    /// Accounts for `n` more samples held at once.
    pub(crate) fn add_samples(&mut self, n: usize) -> Result<()> {
        self.step_samples += n;
        if self.step_samples + self.result_samples > self.opts.max_samples {
            return Err(Error::TooManySamples);
        }
        Ok(())
    }

    /// Evaluates `e` at time `t` (milliseconds).
    pub fn eval(&mut self, e: &Expr, t: i64) -> Result<Value> {
        match e {
            Expr::NumberLiteral(n) => Ok(Value::Scalar(n.val)),
            Expr::StringLiteral(s) => Ok(Value::Str(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, t),
            Expr::Unary(u) => match self.eval(&u.expr, t)? {
                Value::Scalar(v) => Ok(Value::Scalar(-v)),
                Value::Vector(v) => Ok(Value::Vector(
                    v.into_iter()
                        .map(|x| Elem {
                            labels: drop_name(&x.labels),
                            value: -x.value,
                            ts: t,
                        })
                        .collect(),
                )),
                other => Err(Error::Execution(format!(
                    "unary minus on {}",
                    other.type_name()
                ))),
            },
            Expr::VectorSelector(vs) => Ok(Value::Vector(self.select_vector(vs, t, false)?)),
            Expr::MatrixSelector(ms) => Ok(Value::Matrix(self.select_matrix(ms, t)?)),
            Expr::Subquery(sq) => Ok(Value::Matrix(self.subquery(sq, t)?)),
            Expr::Call(c) => functions::call(self, c, t),
            Expr::Aggregate(a) => aggregation::eval(self, a, t),
            Expr::Binary(b) => binary::eval(self, b, t),
            Expr::Extension(_) => Err(Error::Execution("unsupported expression".into())),
        }
    }

    /// Instant vector selection at `t` with lookback and staleness. With
    /// `timestamp_quirk`, an `@` selector ignores its offset (Prometheus 2.x
    /// `timestamp()` does this).
    pub(crate) fn select_vector(
        &mut self,
        vs: &VectorSelector,
        t: i64,
        timestamp_quirk: bool,
    ) -> Result<Vec<Elem>> {
        let at = at_ms(&vs.at, self.bounds.start, self.bounds.end);
        let eff = match at {
            Some(a) if timestamp_quirk => a,
            Some(a) => a - offset_ms(&vs.offset),
            None => t - offset_ms(&vs.offset),
        };
        let lookback = self.bounds.lookback_ms;
        let mut out = Vec::new();
        if let Some(series) = self.data.get(&node_key(vs)) {
            for s in series {
                let idx = s.samples.partition_point(|x| x.timestamp_ms <= eff);
                if idx == 0 {
                    continue;
                }
                let x = s.samples[idx - 1];
                if is_stale_nan(x.value) || x.timestamp_ms < eff - lookback {
                    continue;
                }
                out.push(Elem {
                    labels: s.labels.clone(),
                    value: x.value,
                    ts: x.timestamp_ms,
                });
            }
        }
        self.add_samples(out.len())?;
        Ok(out)
    }

    fn select_matrix(&mut self, ms: &MatrixSelector, t: i64) -> Result<RangeValue> {
        let vs = &ms.vs;
        let base = at_ms(&vs.at, self.bounds.start, self.bounds.end).unwrap_or(t);
        let end = base - offset_ms(&vs.offset);
        let start = end - ms.range.as_millis() as i64;
        let mut out = Vec::new();
        let mut n = 0;
        if let Some(series) = self.data.get(&node_key(vs)) {
            for s in series {
                let lo = s.samples.partition_point(|x| x.timestamp_ms < start);
                let hi = s.samples.partition_point(|x| x.timestamp_ms <= end);
                let samples: Vec<Sample> = s.samples[lo..hi]
                    .iter()
                    .filter(|x| !is_stale_nan(x.value))
                    .copied()
                    .collect();
                if !samples.is_empty() {
                    n += samples.len();
                    out.push(Series {
                        labels: s.labels.clone(),
                        samples,
                    });
                }
            }
        }
        self.add_samples(n)?;
        Ok(RangeValue {
            series: out,
            start,
            end,
        })
    }

    fn subquery(&mut self, sq: &SubqueryExpr, t: i64) -> Result<RangeValue> {
        let base = at_ms(&sq.at, self.bounds.start, self.bounds.end).unwrap_or(t);
        let end = base - offset_ms(&sq.offset);
        let range = sq.range.as_millis() as i64;
        let step = match sq.step {
            Some(s) => s.as_millis() as i64,
            None => self.opts.default_subquery_step.as_millis() as i64,
        }
        .max(1);
        let lo = end - range;
        let mut ts = step * (lo / step);
        if ts < lo {
            ts += step;
        }
        let mut acc = SeriesAccumulator::default();
        while ts <= end {
            self.check_time("subquery evaluation")?;
            match self.eval(&sq.expr, ts)? {
                Value::Vector(v) => {
                    self.add_samples(v.len())?;
                    for e in v {
                        acc.push(
                            e.labels,
                            Sample {
                                timestamp_ms: ts,
                                value: e.value,
                            },
                        );
                    }
                }
                Value::Scalar(v) => {
                    self.add_samples(1)?;
                    acc.push(
                        Labels::default(),
                        Sample {
                            timestamp_ms: ts,
                            value: v,
                        },
                    );
                }
                other => {
                    return Err(Error::Execution(format!(
                        "subquery of {}",
                        other.type_name()
                    )));
                }
            }
            ts += step;
        }
        Ok(RangeValue {
            series: acc.into_series(),
            start: lo,
            end,
        })
    }
}

/// Collects per-step results into series, keyed by label set.
#[derive(Default)]
pub struct SeriesAccumulator {
    index: HashMap<Labels, usize>,
    series: Vec<Series>,
}

impl SeriesAccumulator {
    pub fn push(&mut self, labels: Labels, s: Sample) {
        match self.index.get(&labels) {
            Some(&i) => self.series[i].samples.push(s),
            None => {
                self.index.insert(labels.clone(), self.series.len());
                self.series.push(Series {
                    labels,
                    samples: vec![s],
                });
            }
        }
    }

    /// The series, sorted by labels.
    pub fn into_series(mut self) -> Vec<Series> {
        self.series.sort_by(|a, b| a.labels.cmp(&b.labels));
        self.series
    }
}

/// The label set without `__name__`.
pub fn drop_name(l: &Labels) -> Labels {
    if l.get(METRIC_NAME).is_none() {
        return l.clone();
    }
    Labels::new(
        l.iter()
            .filter(|x| x.name != METRIC_NAME)
            .cloned()
            .collect(),
    )
}

/// The label set with `name` set to `value` (removed when `value` is empty).
pub fn with_label(l: &Labels, name: &str, value: &str) -> Labels {
    let mut v: Vec<Label> = l.iter().filter(|x| x.name != name).cloned().collect();
    if !value.is_empty() {
        v.push(Label {
            name: name.to_string(),
            value: value.to_string(),
        });
    }
    Labels::new(v)
}

/// Errors when two elements share a label set (Prometheus: "vector cannot contain
/// metrics with the same labelset").
pub fn check_unique(v: &[Elem]) -> Result<()> {
    let mut seen = HashSet::with_capacity(v.len());
    for e in v {
        if !seen.insert(&e.labels) {
            return Err(Error::Execution(
                "vector cannot contain metrics with the same labelset".into(),
            ));
        }
    }
    Ok(())
}

fn is_sort_call(e: &Expr) -> bool {
    matches!(unwrap_parens(e), Expr::Call(c) if c.func.name == "sort" || c.func.name == "sort_desc")
}

pub(crate) fn run_instant(
    q: &dyn Queryable,
    ast: &Expr,
    t: i64,
    opts: &QueryOptions,
) -> Result<QueryResult> {
    let bounds = QueryBounds {
        start: t,
        end: t,
        lookback_ms: opts.lookback_delta.as_millis() as i64,
    };
    let mut ev = Evaluator::new(q, ast, bounds, opts)?;
    Ok(match ev.eval(ast, t)? {
        Value::Scalar(v) => QueryResult::Scalar {
            timestamp_ms: t,
            value: v,
        },
        Value::Str(s) => QueryResult::String {
            timestamp_ms: t,
            value: s,
        },
        Value::Vector(mut v) => {
            if !is_sort_call(ast) {
                v.sort_by(|a, b| a.labels.cmp(&b.labels));
            }
            QueryResult::Vector(
                v.into_iter()
                    .map(|e| VectorSample {
                        labels: e.labels,
                        timestamp_ms: t,
                        value: e.value,
                    })
                    .collect(),
            )
        }
        Value::Matrix(m) => {
            let mut s = m.series;
            s.sort_by(|a, b| a.labels.cmp(&b.labels));
            QueryResult::Matrix(s)
        }
    })
}

pub(crate) fn run_range(
    q: &dyn Queryable,
    ast: &Expr,
    start: i64,
    end: i64,
    step: i64,
    opts: &QueryOptions,
) -> Result<QueryResult> {
    let ty = expr_type(ast);
    if ty != ValueType::Vector && ty != ValueType::Scalar {
        return Err(Error::BadData(format!(
            "invalid expression type {:?} for range query, must be Scalar or instant Vector",
            match ty {
                ValueType::Matrix => "range vector",
                ValueType::String => "string",
                _ => "unknown",
            }
        )));
    }
    let bounds = QueryBounds {
        start,
        end,
        lookback_ms: opts.lookback_delta.as_millis() as i64,
    };
    let mut ev = Evaluator::new(q, ast, bounds, opts)?;
    let mut acc = SeriesAccumulator::default();
    let mut t = start;
    while t <= end {
        ev.check_time("query evaluation")?;
        ev.step_samples = 0;
        match ev.eval(ast, t)? {
            Value::Scalar(v) => {
                acc.push(
                    Labels::default(),
                    Sample {
                        timestamp_ms: t,
                        value: v,
                    },
                );
                ev.result_samples += 1;
            }
            Value::Vector(v) => {
                check_unique(&v)?;
                ev.result_samples += v.len();
                for e in v {
                    acc.push(
                        e.labels,
                        Sample {
                            timestamp_ms: t,
                            value: e.value,
                        },
                    );
                }
            }
            other => {
                return Err(Error::Execution(format!(
                    "range query evaluated to {}",
                    other.type_name()
                )));
            }
        }
        if ev.result_samples > opts.max_samples {
            return Err(Error::TooManySamples);
        }
        t += step;
    }
    Ok(QueryResult::Matrix(acc.into_series()))
}
