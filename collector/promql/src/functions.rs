//! Function calls: evaluates the arguments, hands range-vector functions to
//! [`crate::range_functions`], and computes the instant-vector and scalar functions
//! here (math, clamp/round, sort, labels, dates, `histogram_quantile`, `absent`,
//! `timestamp`, `vector`/`scalar`/`time`), following Prometheus 2.42 `functions.go`,
//! including which functions drop `__name__`.

use std::collections::HashMap;

use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::{Call, Expr};
use sightline_store::{Labels, METRIC_NAME};

use crate::eval::{check_unique, drop_name, unwrap_parens, with_label, Elem, Evaluator, Value};
use crate::{range_functions, Error, Result};

/// Evaluates a function call at `t`.
pub fn call(ev: &mut Evaluator<'_>, c: &Call, t: i64) -> Result<Value> {
    let name = c.func.name;
    let args = &c.args.args;
    if name == "timestamp" {
        return timestamp(ev, args, t);
    }
    let mut vals = Vec::with_capacity(args.len());
    for a in args {
        vals.push(ev.eval(a, t)?);
    }
    if vals.iter().any(|v| matches!(v, Value::Matrix(_))) {
        let out = range_functions::call(name, vals, args, ev, t)?;
        check_unique(&out)?;
        return Ok(Value::Vector(out));
    }
    let mut it = vals.into_iter();
    let mut next = || {
        it.next()
            .ok_or_else(|| Error::Execution(format!("{name}: missing argument")))
    };
    let out = match name {
        "time" => return Ok(Value::Scalar(t as f64 / 1000.0)),
        "pi" => return Ok(Value::Scalar(std::f64::consts::PI)),
        "scalar" => {
            let v = next()?.into_vector()?;
            return Ok(Value::Scalar(if v.len() == 1 {
                v[0].value
            } else {
                f64::NAN
            }));
        }
        "vector" => {
            let s = next()?.into_scalar()?;
            vec![Elem {
                labels: Labels::default(),
                value: s,
                ts: t,
            }]
        }
        "abs" | "ceil" | "floor" | "exp" | "sqrt" | "ln" | "log2" | "log10" | "sgn" | "sin"
        | "cos" | "tan" | "asin" | "acos" | "atan" | "sinh" | "cosh" | "tanh" | "asinh"
        | "acosh" | "atanh" | "deg" | "rad" => {
            let f = math_fn(name);
            map_values(next()?.into_vector()?, t, f)
        }
        "round" => {
            let v = next()?.into_vector()?;
            let to_nearest = match it.next() {
                Some(x) => x.into_scalar()?,
                None => 1.0,
            };
            let inv = 1.0 / to_nearest;
            map_values(v, t, |x| (x * inv + 0.5).floor() / inv)
        }
        "clamp" => {
            let v = next()?.into_vector()?;
            let min = next()?.into_scalar()?;
            let max = next()?.into_scalar()?;
            if max < min {
                Vec::new()
            } else {
                map_values(v, t, |x| go_max(min, go_min(max, x)))
            }
        }
        "clamp_max" => {
            let v = next()?.into_vector()?;
            let max = next()?.into_scalar()?;
            map_values(v, t, |x| go_min(max, x))
        }
        "clamp_min" => {
            let v = next()?.into_vector()?;
            let min = next()?.into_scalar()?;
            map_values(v, t, |x| go_max(min, x))
        }
        "sort" | "sort_desc" => {
            let mut v = next()?.into_vector()?;
            let desc = name == "sort_desc";
            v.sort_by(|a, b| {
                use std::cmp::Ordering;
                match (a.value.is_nan(), b.value.is_nan()) {
                    (true, true) => Ordering::Equal,
                    (true, false) => Ordering::Less,
                    (false, true) => Ordering::Greater,
                    _ if desc => b.value.partial_cmp(&a.value).unwrap_or(Ordering::Equal),
                    _ => a.value.partial_cmp(&b.value).unwrap_or(Ordering::Equal),
                }
            });
            v.into_iter().map(|e| Elem { ts: t, ..e }).collect()
        }
        "label_replace" => {
            let v = next()?.into_vector()?;
            let dst = next()?.into_string()?;
            let repl = next()?.into_string()?;
            let src = next()?.into_string()?;
            let re = next()?.into_string()?;
            label_replace(v, &dst, &repl, &src, &re, t)?
        }
        "label_join" => {
            let v = next()?.into_vector()?;
            let dst = next()?.into_string()?;
            let sep = next()?.into_string()?;
            let mut srcs = Vec::new();
            for x in it.by_ref() {
                srcs.push(x.into_string()?);
            }
            label_join(v, &dst, &sep, &srcs, t)?
        }
        "day_of_month" | "day_of_week" | "day_of_year" | "days_in_month" | "hour" | "minute"
        | "month" | "year" => {
            let f = date_fn(name);
            match it.next() {
                None => vec![Elem {
                    labels: Labels::default(),
                    value: f(t as f64 / 1000.0),
                    ts: t,
                }],
                Some(v) => map_values(v.into_vector()?, t, f),
            }
        }
        "histogram_quantile" => {
            let q = next()?.into_scalar()?;
            histogram_quantile(q, next()?.into_vector()?, t)
        }
        // Native-histogram functions: float series carry no native histograms.
        "histogram_count" | "histogram_sum" | "histogram_fraction" => Vec::new(),
        "absent" => {
            if next()?.into_vector()?.is_empty() {
                vec![Elem {
                    labels: absent_labels(&args[0]),
                    value: 1.0,
                    ts: t,
                }]
            } else {
                Vec::new()
            }
        }
        other => return Err(Error::BadData(format!("unknown function {other}"))),
    };
    check_unique(&out)?;
    Ok(Value::Vector(out))
}

fn map_values(v: Vec<Elem>, t: i64, f: impl Fn(f64) -> f64) -> Vec<Elem> {
    v.into_iter()
        .map(|e| Elem {
            labels: drop_name(&e.labels),
            value: f(e.value),
            ts: t,
        })
        .collect()
}

fn math_fn(name: &str) -> fn(f64) -> f64 {
    match name {
        "abs" => f64::abs,
        "ceil" => f64::ceil,
        "floor" => f64::floor,
        "exp" => f64::exp,
        "sqrt" => f64::sqrt,
        "ln" => f64::ln,
        "log2" => f64::log2,
        "log10" => f64::log10,
        "sgn" => |x| {
            if x < 0.0 {
                -1.0
            } else if x > 0.0 {
                1.0
            } else {
                x
            }
        },
        "sin" => f64::sin,
        "cos" => f64::cos,
        "tan" => f64::tan,
        "asin" => f64::asin,
        "acos" => f64::acos,
        "atan" => f64::atan,
        "sinh" => f64::sinh,
        "cosh" => f64::cosh,
        "tanh" => f64::tanh,
        "asinh" => f64::asinh,
        "acosh" => f64::acosh,
        "atanh" => f64::atanh,
        "deg" => |x| x * 180.0 / std::f64::consts::PI,
        _ => |x| x * std::f64::consts::PI / 180.0,
    }
}

/// Go's `math.Max`: +Inf wins over NaN, NaN wins over numbers.
pub fn go_max(x: f64, y: f64) -> f64 {
    if x == f64::INFINITY || y == f64::INFINITY {
        f64::INFINITY
    } else if x.is_nan() || y.is_nan() {
        f64::NAN
    } else if x == 0.0 && x == y {
        if x.is_sign_negative() {
            y
        } else {
            x
        }
    } else if x > y {
        x
    } else {
        y
    }
}

/// Go's `math.Min`: -Inf wins over NaN, NaN wins over numbers.
pub fn go_min(x: f64, y: f64) -> f64 {
    if x == f64::NEG_INFINITY || y == f64::NEG_INFINITY {
        f64::NEG_INFINITY
    } else if x.is_nan() || y.is_nan() {
        f64::NAN
    } else if x == 0.0 && x == y {
        if x.is_sign_negative() {
            x
        } else {
            y
        }
    } else if x < y {
        x
    } else {
        y
    }
}

/// `timestamp()`: a selector argument reports its samples' own timestamps.
fn timestamp(ev: &mut Evaluator<'_>, args: &[Box<Expr>], t: i64) -> Result<Value> {
    let arg = args
        .first()
        .ok_or_else(|| Error::Execution("timestamp: missing argument".into()))?;
    let v = match unwrap_parens(arg) {
        Expr::VectorSelector(vs) => ev.select_vector(vs, t, true)?,
        other => ev
            .eval(other, t)?
            .into_vector()?
            .into_iter()
            .map(|e| Elem { ts: t, ..e })
            .collect(),
    };
    let out: Vec<Elem> = v
        .into_iter()
        .map(|e| Elem {
            labels: drop_name(&e.labels),
            value: e.ts as f64 / 1000.0,
            ts: t,
        })
        .collect();
    check_unique(&out)?;
    Ok(Value::Vector(out))
}

/// Labels `absent()`/`absent_over_time()` report: the selector's equality matchers,
/// minus any label that also has another matcher.
pub fn absent_labels(arg: &Expr) -> Labels {
    let vs = match unwrap_parens(arg) {
        Expr::VectorSelector(vs) => vs,
        Expr::MatrixSelector(ms) => &ms.vs,
        _ => return Labels::default(),
    };
    let mut set: Vec<(String, String)> = Vec::new();
    let mut empty: Vec<&str> = Vec::new();
    for m in &vs.matchers.matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        if matches!(m.op, PMatchOp::Equal) && !set.iter().any(|(n, _)| n == &m.name) {
            set.push((m.name.clone(), m.value.clone()));
        } else {
            empty.push(&m.name);
        }
    }
    set.retain(|(n, _)| !empty.contains(&n.as_str()));
    Labels::from_pairs(set)
}

fn valid_label_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// `^(?:re)$` compiled; the last few are kept per thread, because `label_replace` runs
/// once per step of a range query with the same expression.
fn anchored_regex(re: &str) -> std::result::Result<regex::Regex, regex::Error> {
    thread_local! {
        static CACHE: std::cell::RefCell<Vec<(String, regex::Regex)>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    CACHE.with(|c| {
        if let Some((_, r)) = c.borrow().iter().find(|(k, _)| k == re) {
            return Ok(r.clone());
        }
        let r = regex::Regex::new(&format!("^(?:{re})$"))?;
        let mut c = c.borrow_mut();
        if c.len() >= 8 {
            c.remove(0);
        }
        c.push((re.to_string(), r.clone()));
        Ok(r)
    })
}

fn label_replace(
    v: Vec<Elem>,
    dst: &str,
    repl: &str,
    src: &str,
    re: &str,
    t: i64,
) -> Result<Vec<Elem>> {
    let regex = anchored_regex(re).map_err(|_| {
        Error::Execution(format!(
            "invalid regular expression in label_replace(): {re}"
        ))
    })?;
    if !valid_label_name(dst) {
        return Err(Error::Execution(format!(
            "invalid destination label name in label_replace(): {dst}"
        )));
    }
    Ok(v.into_iter()
        .map(|e| {
            let src_val = e.labels.get(src).unwrap_or("");
            let labels = match regex.captures(src_val) {
                None => e.labels.clone(),
                Some(caps) => {
                    let mut res = String::new();
                    caps.expand(repl, &mut res);
                    with_label(&e.labels, dst, &res)
                }
            };
            Elem {
                labels,
                value: e.value,
                ts: t,
            }
        })
        .collect())
}

fn label_join(v: Vec<Elem>, dst: &str, sep: &str, srcs: &[String], t: i64) -> Result<Vec<Elem>> {
    for s in srcs {
        if !valid_label_name(s) {
            return Err(Error::Execution(format!(
                "invalid source label name in label_join(): {s}"
            )));
        }
    }
    if !valid_label_name(dst) {
        return Err(Error::Execution(format!(
            "invalid destination label name in label_join(): {dst}"
        )));
    }
    Ok(v.into_iter()
        .map(|e| {
            let joined: Vec<&str> = srcs.iter().map(|s| e.labels.get(s).unwrap_or("")).collect();
            let labels = with_label(&e.labels, dst, &joined.join(sep));
            Elem {
                labels,
                value: e.value,
                ts: t,
            }
        })
        .collect())
}

/// Civil date of Unix seconds (UTC): (year, month 1-12, day 1-31, day of year 1-366,
/// day of week 0=Sunday, hour, minute).
fn civil(secs: f64) -> (i64, i64, i64, i64, i64, i64, i64) {
    let s = secs as i64;
    let days = s.div_euclid(86_400);
    let rem = s.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy_mar = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy_mar + 2) / 153;
    let d = doy_mar - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    const CUM: [i64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let yday = CUM[(m - 1) as usize] + d + if leap && m > 2 { 1 } else { 0 };
    let wday = (days + 4).rem_euclid(7);
    (y, m, d, yday, wday, rem / 3600, (rem % 3600) / 60)
}

fn date_fn(name: &str) -> fn(f64) -> f64 {
    match name {
        "day_of_month" => |s| civil(s).2 as f64,
        "day_of_week" => |s| civil(s).4 as f64,
        "day_of_year" => |s| civil(s).3 as f64,
        "days_in_month" => |s| {
            let (y, m, ..) = civil(s);
            let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            match m {
                2 if leap => 29.0,
                2 => 28.0,
                4 | 6 | 9 | 11 => 30.0,
                _ => 31.0,
            }
        },
        "hour" => |s| civil(s).5 as f64,
        "minute" => |s| civil(s).6 as f64,
        "month" => |s| civil(s).1 as f64,
        _ => |s| civil(s).0 as f64,
    }
}

/// `histogram_quantile` over classic `le` buckets (Prometheus `bucketQuantile`).
fn histogram_quantile(q: f64, v: Vec<Elem>, t: i64) -> Vec<Elem> {
    let mut groups: HashMap<Labels, (Labels, Vec<(f64, f64)>)> = HashMap::new();
    let mut order: Vec<Labels> = Vec::new();
    for e in v {
        let Some(ub) = e.labels.get("le").and_then(parse_go_float) else {
            continue;
        };
        let key = with_label(&e.labels, "le", "");
        let entry = groups.entry(key.clone()).or_insert_with(|| {
            order.push(key.clone());
            (drop_name(&key), Vec::new())
        });
        entry.1.push((ub, e.value));
    }
    order
        .into_iter()
        .filter_map(|k| groups.remove(&k))
        .map(|(labels, buckets)| Elem {
            labels,
            value: bucket_quantile(q, buckets),
            ts: t,
        })
        .collect()
}

/// Parses a float as Go's `strconv.ParseFloat` does for the forms labels carry.
pub fn parse_go_float(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "+inf" | "Inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

fn bucket_quantile(q: f64, mut b: Vec<(f64, f64)>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    b.sort_by(|x, y| x.0.partial_cmp(&y.0).unwrap_or(std::cmp::Ordering::Equal));
    match b.last() {
        Some(l) if l.0 == f64::INFINITY => {}
        _ => return f64::NAN,
    }
    // coalesce equal upper bounds
    let mut c: Vec<(f64, f64)> = Vec::with_capacity(b.len());
    for x in b {
        match c.last_mut() {
            Some(last) if last.0 == x.0 => last.1 += x.1,
            _ => c.push(x),
        }
    }
    // ensure monotonic
    let mut max = f64::NEG_INFINITY;
    for x in c.iter_mut() {
        if x.1 > max {
            max = x.1;
        } else if x.1 < max {
            x.1 = max;
        }
    }
    if c.len() < 2 {
        return f64::NAN;
    }
    let observations = c[c.len() - 1].1;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let n = c.len() - 1;
    let idx = c[..n].partition_point(|x| x.1 < rank);
    if idx == n {
        return c[n - 1].0;
    }
    if idx == 0 && c[0].0 <= 0.0 {
        return c[0].0;
    }
    let mut start = 0.0;
    let end = c[idx].0;
    let mut count = c[idx].1;
    if idx > 0 {
        start = c[idx - 1].0;
        count -= c[idx - 1].1;
        rank -= c[idx - 1].1;
    }
    start + (end - start) * (rank / count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        // 2024-02-29T13:45:00Z, a Thursday
        let s = 1_709_214_300.0;
        assert_eq!(civil(s), (2024, 2, 29, 60, 4, 13, 45));
        assert_eq!(date_fn("days_in_month")(s), 29.0);
        assert_eq!(civil(0.0), (1970, 1, 1, 1, 4, 0, 0));
    }

    #[test]
    fn quantile_of_buckets() {
        let b = vec![(1.0, 10.0), (2.0, 20.0), (f64::INFINITY, 20.0)];
        assert_eq!(bucket_quantile(0.5, b.clone()), 1.0);
        assert_eq!(bucket_quantile(0.75, b.clone()), 1.5);
        assert_eq!(bucket_quantile(1.0, b), 2.0);
        assert!(bucket_quantile(0.5, vec![(1.0, 1.0)]).is_nan());
    }

    #[test]
    fn go_min_max_nan() {
        assert!(go_max(1.0, f64::NAN).is_nan());
        assert_eq!(go_max(f64::NAN, f64::INFINITY), f64::INFINITY);
        assert_eq!(go_min(2.0, 1.0), 1.0);
    }
}
