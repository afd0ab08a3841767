//! Binary operators: arithmetic, comparisons (filtering or `bool`), `atan2`, and the
//! set operators `and`/`or`/`unless`, between scalars and vectors, with vector matching
//! (`on`/`ignoring`, `group_left`/`group_right`) and the result-label rules of
//! Prometheus 2.42 `engine.go` (`VectorBinop`, `resultMetric`, `VectorscalarBinop`).

use std::collections::{HashMap, HashSet};

use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};
use sightline_store::{Label, Labels, METRIC_NAME};

use crate::eval::{check_unique, drop_name, with_label, Elem, Evaluator, Value};
use crate::{Error, Result};

/// How two vectors are matched.
struct Matching {
    card: Card,
    on: bool,
    labels: Vec<String>,
    include: Vec<String>,
}

#[derive(Clone, Copy, PartialEq)]
enum Card {
    OneToOne,
    ManyToOne,
    OneToMany,
    ManyToMany,
}

/// Evaluates a binary expression at `t`.
pub fn eval(ev: &mut Evaluator<'_>, b: &BinaryExpr, t: i64) -> Result<Value> {
    let op = b.op.to_string();
    let lhs = ev.eval(&b.lhs, t)?;
    let rhs = ev.eval(&b.rhs, t)?;
    let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
    let out = match (lhs, rhs) {
        (Value::Scalar(l), Value::Scalar(r)) => {
            let (v, keep) = elem_binop(&op, l, r)?;
            return Ok(Value::Scalar(if is_comparison(&op) {
                if keep {
                    1.0
                } else {
                    0.0
                }
            } else {
                v
            }));
        }
        (Value::Vector(l), Value::Scalar(r)) => vector_scalar(&op, l, r, false, return_bool, t)?,
        (Value::Scalar(l), Value::Vector(r)) => vector_scalar(&op, r, l, true, return_bool, t)?,
        (Value::Vector(l), Value::Vector(r)) => {
            let m = matching(b, &op);
            match op.as_str() {
                "and" => and_unless(l, r, &m, true, t),
                "unless" => and_unless(l, r, &m, false, t),
                "or" => or(l, r, &m, t),
                _ => vector_binop(&op, l, r, &m, return_bool, t)?,
            }
        }
        _ => return Err(Error::Execution(format!("invalid operands for {op}"))),
    };
    check_unique(&out)?;
    Ok(Value::Vector(out))
}

fn matching(b: &BinaryExpr, op: &str) -> Matching {
    let set_op = matches!(op, "and" | "or" | "unless");
    let mut m = Matching {
        card: if set_op {
            Card::ManyToMany
        } else {
            Card::OneToOne
        },
        on: false,
        labels: Vec::new(),
        include: Vec::new(),
    };
    if let Some(modifier) = &b.modifier {
        match &modifier.matching {
            Some(LabelModifier::Include(l)) => {
                m.on = true;
                m.labels = l.labels.clone();
            }
            Some(LabelModifier::Exclude(l)) => m.labels = l.labels.clone(),
            None => {}
        }
        if !set_op {
            match &modifier.card {
                VectorMatchCardinality::ManyToOne(l) => {
                    m.card = Card::ManyToOne;
                    m.include = l.labels.clone();
                }
                VectorMatchCardinality::OneToMany(l) => {
                    m.card = Card::OneToMany;
                    m.include = l.labels.clone();
                }
                _ => {}
            }
        }
    }
    m
}

fn is_comparison(op: &str) -> bool {
    matches!(op, "==" | "!=" | ">" | "<" | ">=" | "<=")
}

fn drops_name(op: &str) -> bool {
    matches!(op, "+" | "-" | "*" | "/" | "^" | "%")
}

/// Value and keep-flag of `lhs op rhs` (comparisons keep the left value).
fn elem_binop(op: &str, l: f64, r: f64) -> Result<(f64, bool)> {
    Ok(match op {
        "+" => (l + r, true),
        "-" => (l - r, true),
        "*" => (l * r, true),
        "/" => (l / r, true),
        "^" => (l.powf(r), true),
        "%" => (l % r, true),
        "atan2" => (l.atan2(r), true),
        "==" => (l, l == r),
        "!=" => (l, l != r),
        ">" => (l, l > r),
        "<" => (l, l < r),
        ">=" => (l, l >= r),
        "<=" => (l, l <= r),
        other => {
            return Err(Error::Execution(format!(
                "operator {other:?} not allowed here"
            )))
        }
    })
}

fn vector_scalar(
    op: &str,
    v: Vec<Elem>,
    s: f64,
    swap: bool,
    return_bool: bool,
    t: i64,
) -> Result<Vec<Elem>> {
    let mut out = Vec::with_capacity(v.len());
    for e in v {
        let (lv, rv) = if swap { (s, e.value) } else { (e.value, s) };
        let (mut value, mut keep) = elem_binop(op, lv, rv)?;
        if is_comparison(op) && swap {
            value = rv;
        }
        if return_bool {
            value = if keep { 1.0 } else { 0.0 };
            keep = true;
        }
        if keep {
            let labels = if drops_name(op) || return_bool {
                drop_name(&e.labels)
            } else {
                e.labels
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

/// Matching key of a label set.
fn signature(l: &Labels, on: bool, names: &[String]) -> Vec<Label> {
    l.iter()
        .filter(|x| {
            if on {
                names.contains(&x.name)
            } else {
                x.name != METRIC_NAME && !names.contains(&x.name)
            }
        })
        .cloned()
        .collect()
}

fn and_unless(l: Vec<Elem>, r: Vec<Elem>, m: &Matching, and: bool, t: i64) -> Vec<Elem> {
    if and && (l.is_empty() || r.is_empty()) {
        return Vec::new();
    }
    let right: HashSet<Vec<Label>> = r
        .iter()
        .map(|e| signature(&e.labels, m.on, &m.labels))
        .collect();
    l.into_iter()
        .filter(|e| right.contains(&signature(&e.labels, m.on, &m.labels)) == and)
        .map(|e| Elem { ts: t, ..e })
        .collect()
}

fn or(l: Vec<Elem>, r: Vec<Elem>, m: &Matching, t: i64) -> Vec<Elem> {
    let left: HashSet<Vec<Label>> = l
        .iter()
        .map(|e| signature(&e.labels, m.on, &m.labels))
        .collect();
    let mut out: Vec<Elem> = l.into_iter().map(|e| Elem { ts: t, ..e }).collect();
    out.extend(
        r.into_iter()
            .filter(|e| !left.contains(&signature(&e.labels, m.on, &m.labels)))
            .map(|e| Elem { ts: t, ..e }),
    );
    out
}

fn fmt_labels(l: &Labels) -> String {
    let parts: Vec<String> = l
        .iter()
        .map(|x| format!("{}={:?}", x.name, x.value))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

fn vector_binop(
    op: &str,
    lhs: Vec<Elem>,
    rhs: Vec<Elem>,
    m: &Matching,
    return_bool: bool,
    t: i64,
) -> Result<Vec<Elem>> {
    if lhs.is_empty() || rhs.is_empty() {
        return Ok(Vec::new());
    }
    let (lhs, rhs) = if m.card == Card::OneToMany {
        (rhs, lhs)
    } else {
        (lhs, rhs)
    };
    let mut right: HashMap<Vec<Label>, &Elem> = HashMap::with_capacity(rhs.len());
    for r in &rhs {
        let sig = signature(&r.labels, m.on, &m.labels);
        if let Some(dup) = right.get(&sig) {
            let side = if m.card == Card::OneToMany {
                "left"
            } else {
                "right"
            };
            return Err(Error::Execution(format!(
                "found duplicate series for the match group {} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                fmt_labels(&Labels::new(sig.clone())),
                fmt_labels(&r.labels),
                fmt_labels(&dup.labels)
            )));
        }
        right.insert(sig, r);
    }
    let mut matched: HashMap<Vec<Label>, HashSet<Labels>> = HashMap::new();
    let mut out = Vec::new();
    for l in &lhs {
        let sig = signature(&l.labels, m.on, &m.labels);
        let Some(r) = right.get(&sig) else { continue };
        let (vl, vr) = if m.card == Card::OneToMany {
            (r.value, l.value)
        } else {
            (l.value, r.value)
        };
        let (mut value, keep) = elem_binop(op, vl, vr)?;
        if return_bool {
            value = if keep { 1.0 } else { 0.0 };
        } else if !keep {
            continue;
        }
        let mut metric = result_metric(&l.labels, &r.labels, op, m);
        if return_bool {
            metric = drop_name(&metric);
        }
        match matched.get_mut(&sig) {
            Some(inserted) => {
                if m.card == Card::OneToOne {
                    return Err(Error::Execution(
                        "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)".into(),
                    ));
                }
                if !inserted.insert(metric.clone()) {
                    return Err(Error::Execution(
                        "multiple matches for labels: grouping labels must ensure unique matches"
                            .into(),
                    ));
                }
            }
            None => {
                matched.insert(sig, HashSet::from([metric.clone()]));
            }
        }
        out.push(Elem {
            labels: metric,
            value,
            ts: t,
        });
    }
    Ok(out)
}

/// Labels of a vector-vector result (Prometheus `resultMetric`).
fn result_metric(lhs: &Labels, rhs: &Labels, op: &str, m: &Matching) -> Labels {
    let mut l = if drops_name(op) {
        drop_name(lhs)
    } else {
        lhs.clone()
    };
    if m.card == Card::OneToOne {
        l = Labels::new(
            l.iter()
                .filter(|x| {
                    if m.on {
                        m.labels.contains(&x.name)
                    } else {
                        !m.labels.contains(&x.name)
                    }
                })
                .cloned()
                .collect(),
        );
    }
    for name in &m.include {
        l = with_label(&l, name, rhs.get(name).unwrap_or(""));
    }
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(pairs: &[(&str, &str)], v: f64) -> Elem {
        Elem {
            labels: Labels::from_pairs(pairs.iter().copied()),
            value: v,
            ts: 0,
        }
    }

    #[test]
    fn one_to_one_drops_name_and_matches_on_labels() {
        let m = Matching {
            card: Card::OneToOne,
            on: false,
            labels: vec![],
            include: vec![],
        };
        let l = vec![
            e(&[("__name__", "a"), ("x", "1")], 4.0),
            e(&[("__name__", "a"), ("x", "2")], 1.0),
        ];
        let r = vec![e(&[("__name__", "b"), ("x", "1")], 2.0)];
        let out = vector_binop("/", l, r, &m, false, 0).unwrap();
        assert_eq!(out, vec![e(&[("x", "1")], 2.0)]);
    }

    #[test]
    fn duplicate_right_side_is_an_error() {
        let m = Matching {
            card: Card::OneToOne,
            on: true,
            labels: vec![],
            include: vec![],
        };
        let l = vec![e(&[("x", "1")], 1.0)];
        let r = vec![e(&[("x", "1")], 1.0), e(&[("x", "2")], 1.0)];
        assert!(vector_binop("+", l, r, &m, false, 0).is_err());
    }

    #[test]
    fn scalar_comparison_keeps_vector_value() {
        let out =
            vector_scalar("<", vec![e(&[("__name__", "a")], 5.0)], 1.0, true, false, 0).unwrap();
        assert_eq!(out, vec![e(&[("__name__", "a")], 5.0)]);
    }
}
