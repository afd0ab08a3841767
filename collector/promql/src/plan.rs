//! Parsing and planning: the expression is parsed with `promql-parser`, checked
//! against what Prometheus 2.x accepts (its function set, no 3.x syntax), and before
//! evaluation [`prefetch`] walks the tree to find the time range every selector needs
//! over all steps (lookback, ranges, offsets, `@`, subqueries) and loads it with one
//! [`Queryable::select`] per selector.

use std::collections::HashMap;
use std::sync::Once;
use std::time::{SystemTime, UNIX_EPOCH};

use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::value::ValueType;
use promql_parser::parser::{self, AtModifier, Expr, Function, Offset, VectorSelector};
use sightline_store::{MatchOp, Matcher, Series, METRIC_NAME};

use crate::{Error, Queryable, Result};

/// Functions of Prometheus 2.42 (`promql/functions.go`), the reference we match.
const PROMETHEUS_2_FUNCTIONS: &[&str] = &[
    "abs",
    "absent",
    "absent_over_time",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "avg_over_time",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "cos",
    "cosh",
    "count_over_time",
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "deg",
    "delta",
    "deriv",
    "exp",
    "floor",
    "histogram_count",
    "histogram_fraction",
    "histogram_quantile",
    "histogram_sum",
    "holt_winters",
    "hour",
    "idelta",
    "increase",
    "irate",
    "label_replace",
    "label_join",
    "last_over_time",
    "ln",
    "log10",
    "log2",
    "max_over_time",
    "min_over_time",
    "minute",
    "month",
    "pi",
    "predict_linear",
    "present_over_time",
    "quantile_over_time",
    "rad",
    "rate",
    "resets",
    "round",
    "scalar",
    "sgn",
    "sin",
    "sinh",
    "sort",
    "sort_desc",
    "sqrt",
    "stddev_over_time",
    "stdvar_over_time",
    "sum_over_time",
    "tan",
    "tanh",
    "time",
    "timestamp",
    "vector",
    "year",
];

static REGISTER: Once = Once::new();

/// Parses `expr` and rejects what Prometheus 2.x would reject.
pub fn parse(expr: &str) -> Result<Expr> {
    REGISTER.call_once(|| {
        // `holt_winters` was renamed in Prometheus 3; the parser only knows the new name.
        let hw = Function::new(
            "holt_winters",
            vec![ValueType::Matrix, ValueType::Scalar, ValueType::Scalar],
            0,
            ValueType::Vector,
            false,
        );
        // Fails only if a built-in of that name appears in a future parser version.
        let _ = parser::register_extra_functions(vec![hw]);
    });
    let ast = parser::parse(expr).map_err(|e| Error::BadData(format!("parse error: {e}")))?;
    check(&ast)?;
    Ok(ast)
}

fn check(e: &Expr) -> Result<()> {
    match e {
        Expr::Aggregate(a) => {
            let name = a.op.to_string();
            if name == "limitk" || name == "limit_ratio" {
                return Err(Error::BadData(format!(
                    "parse error: unknown aggregation {name}"
                )));
            }
            if let Some(p) = &a.param {
                check(p)?;
            }
            check(&a.expr)
        }
        Expr::Unary(u) => check(&u.expr),
        Expr::Binary(b) => {
            if let Some(m) = &b.modifier {
                if m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some() {
                    return Err(Error::BadData(
                        "parse error: fill modifiers are not supported".into(),
                    ));
                }
            }
            check(&b.lhs)?;
            check(&b.rhs)
        }
        Expr::Paren(p) => check(&p.expr),
        Expr::Subquery(s) => check(&s.expr),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => Ok(()),
        Expr::VectorSelector(v) => check_selector(v),
        Expr::MatrixSelector(m) => check_selector(&m.vs),
        Expr::Call(c) => {
            if !PROMETHEUS_2_FUNCTIONS.contains(&c.func.name) {
                return Err(Error::BadData(format!(
                    "parse error: unknown function with name {:?}",
                    c.func.name
                )));
            }
            c.args.args.iter().try_for_each(|a| check(a))
        }
        Expr::Extension(_) => Err(Error::BadData("parse error: unsupported expression".into())),
    }
}

fn check_selector(v: &VectorSelector) -> Result<()> {
    if !v.matchers.or_matchers.is_empty() {
        return Err(Error::BadData(
            "parse error: `or` inside selectors is not supported".into(),
        ));
    }
    Ok(())
}

/// Milliseconds of an offset (negative for `offset -5m`).
pub(crate) fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => d.as_millis() as i64,
        Some(Offset::Neg(d)) => -(d.as_millis() as i64),
    }
}

/// Milliseconds since the epoch of a time (negative before 1970).
pub(crate) fn system_time_ms(t: &SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

/// The fixed evaluation time of an `@` modifier, given the query's start and end.
pub(crate) fn at_ms(at: &Option<AtModifier>, start: i64, end: i64) -> Option<i64> {
    match at {
        None => None,
        Some(AtModifier::Start) => Some(start),
        Some(AtModifier::End) => Some(end),
        Some(AtModifier::At(t)) => Some(system_time_ms(t)),
    }
}

/// Store matchers of a selector (its metric name included).
pub(crate) fn selector_matchers(v: &VectorSelector) -> Result<Vec<Matcher>> {
    let mut out = Vec::with_capacity(v.matchers.matchers.len() + 1);
    if let Some(name) = &v.name {
        if !v.matchers.matchers.iter().any(|m| m.name == METRIC_NAME) {
            out.push(mk_matcher(METRIC_NAME, MatchOp::Equal, name)?);
        }
    }
    for m in &v.matchers.matchers {
        let op = match m.op {
            PMatchOp::Equal => MatchOp::Equal,
            PMatchOp::NotEqual => MatchOp::NotEqual,
            PMatchOp::Re(_) => MatchOp::RegexMatch,
            PMatchOp::NotRe(_) => MatchOp::RegexNoMatch,
        };
        out.push(mk_matcher(&m.name, op, &m.value)?);
    }
    Ok(out)
}

fn mk_matcher(name: &str, op: MatchOp, value: &str) -> Result<Matcher> {
    Matcher::new(name, op, value).map_err(|e| Error::BadData(format!("parse error: {e}")))
}

/// Key of a selector node: its address, stable while the tree lives.
pub(crate) fn node_key(v: &VectorSelector) -> usize {
    v as *const VectorSelector as usize
}

/// Time bounds of the query, used to resolve `@ start()` / `@ end()`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct QueryBounds {
    pub start: i64,
    pub end: i64,
    pub lookback_ms: i64,
}

/// Loads, for every selector of `ast`, the series and samples all steps will read.
/// Everything loaded is held until the query ends, so more than `max_samples`
/// loaded samples (all selectors together) is [`Error::TooManySamples`], and a
/// selector matching more than `max_series` series (`0`: no limit) is
/// [`Error::TooManySeries`].
pub(crate) fn prefetch(
    q: &dyn Queryable,
    ast: &Expr,
    bounds: QueryBounds,
    max_series: usize,
    max_samples: usize,
) -> Result<HashMap<usize, Vec<Series>>> {
    let mut loaded = 0usize;
    let mut ranges: Vec<(&VectorSelector, i64, i64)> = Vec::new();
    walk(ast, bounds.start, bounds.end, bounds, &mut ranges);
    let mut out = HashMap::new();
    for (vs, lo, hi) in ranges {
        let matchers = selector_matchers(vs)?;
        let series = q.select(&matchers, lo, hi)?;
        let n: usize = series.iter().map(|s| s.samples.len()).sum();
        crate::SAMPLES_LOADED.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        if max_series > 0 && series.len() > max_series {
            return Err(Error::TooManySeries(max_series));
        }
        loaded = loaded.saturating_add(n);
        if loaded > max_samples {
            return Err(Error::TooManySamples);
        }
        out.insert(node_key(vs), series);
    }
    Ok(out)
}

/// Evaluation times of a node carrying `at`/`offset` when its parent is evaluated over
/// `[lo, hi]`: the shifted interval.
fn shifted(
    lo: i64,
    hi: i64,
    at: &Option<AtModifier>,
    off: &Option<Offset>,
    b: QueryBounds,
) -> (i64, i64) {
    let o = offset_ms(off);
    match at_ms(at, b.start, b.end) {
        Some(t) => (t - o, t - o),
        None => (lo - o, hi - o),
    }
}

fn walk<'a>(
    e: &'a Expr,
    lo: i64,
    hi: i64,
    b: QueryBounds,
    out: &mut Vec<(&'a VectorSelector, i64, i64)>,
) {
    match e {
        Expr::VectorSelector(v) => {
            let (l, h) = shifted(lo, hi, &v.at, &v.offset, b);
            out.push((v, l - b.lookback_ms, h));
        }
        Expr::MatrixSelector(m) => {
            let (l, h) = shifted(lo, hi, &m.vs.at, &m.vs.offset, b);
            out.push((&m.vs, l - m.range.as_millis() as i64, h));
        }
        Expr::Subquery(s) => {
            let (l, h) = shifted(lo, hi, &s.at, &s.offset, b);
            walk(&s.expr, l - s.range.as_millis() as i64, h, b, out);
        }
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                walk(p, lo, hi, b, out);
            }
            walk(&a.expr, lo, hi, b, out);
        }
        Expr::Unary(u) => walk(&u.expr, lo, hi, b, out),
        Expr::Binary(x) => {
            walk(&x.lhs, lo, hi, b, out);
            walk(&x.rhs, lo, hi, b, out);
        }
        Expr::Paren(p) => walk(&p.expr, lo, hi, b, out),
        Expr::Call(c) => c.args.args.iter().for_each(|a| walk(a, lo, hi, b, out)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_what_prometheus_2_rejects() {
        assert!(parse("rate(x[5m])").is_ok());
        assert!(parse("holt_winters(x[5m], 0.5, 0.5)").is_ok());
        assert!(matches!(
            parse("first_over_time(x[5m])"),
            Err(Error::BadData(_))
        ));
        assert!(matches!(parse("sum(x"), Err(Error::BadData(_))));
    }

    #[test]
    fn prefetch_bounds_loaded_samples_and_series() {
        use crate::{Labels, MemQueryable, Sample};
        let series: Vec<Series> = (0..3)
            .map(|i| Series {
                labels: Labels::from_pairs([
                    ("__name__".to_string(), "x".to_string()),
                    ("i".to_string(), i.to_string()),
                ]),
                samples: (0..100)
                    .map(|t| Sample {
                        timestamp_ms: t * 1000,
                        value: 1.0,
                    })
                    .collect(),
            })
            .collect();
        let q = MemQueryable::new(series);
        let ast = parse("x").unwrap();
        let b = QueryBounds {
            start: 0,
            end: 100_000,
            lookback_ms: 300_000,
        };
        assert_eq!(prefetch(&q, &ast, b, 0, 300).unwrap().len(), 1);
        assert!(matches!(
            prefetch(&q, &ast, b, 0, 299),
            Err(Error::TooManySamples)
        ));
        assert!(matches!(
            prefetch(&q, &ast, b, 2, 1000),
            Err(Error::TooManySeries(2))
        ));
    }

    #[test]
    fn offsets_and_at() {
        let e = parse("x offset -1m @ 100").unwrap();
        let Expr::VectorSelector(v) = e else {
            panic!("selector")
        };
        assert_eq!(offset_ms(&v.offset), -60_000);
        assert_eq!(at_ms(&v.at, 0, 0), Some(100_000));
    }
}
