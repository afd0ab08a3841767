//! PromQL / LogQL selectors to store matchers. Only plain vector selectors
//! (`up`, `{job="x", instance=~"a.*"}`, `{a="1" or b="2"}`) are supported; each
//! `or` alternative becomes one matcher set.

use promql_parser::label::MatchOp as PromOp;
use promql_parser::parser::{self, Expr, VectorSelector};
use sightline_store::{MatchOp, Matcher, METRIC_NAME};

/// Why a selector cannot be used.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    #[error("{0}")]
    Parse(String),
    #[error("only vector selectors are supported (e.g. up or {{job=\"node\"}}), got {0}")]
    Unsupported(&'static str),
}

/// Parses a selector into matcher sets (one per `or` alternative).
pub fn parse_selector(input: &str) -> Result<Vec<Vec<Matcher>>, SelectorError> {
    let expr = parser::parse(input)
        .map_err(|e| SelectorError::Parse(format!("invalid selector {input:?}: {e}")))?;
    let mut expr = &expr;
    while let Expr::Paren(p) = expr {
        expr = &p.expr;
    }
    let vs = match expr {
        Expr::VectorSelector(vs) => vs,
        other => return Err(SelectorError::Unsupported(kind(other))),
    };
    if vs.offset.is_some() || vs.at.is_some() {
        return Err(SelectorError::Unsupported(
            "a selector with offset or @ modifier",
        ));
    }
    to_matcher_sets(vs)
}

fn kind(e: &Expr) -> &'static str {
    match e {
        Expr::Aggregate(_) => "an aggregation",
        Expr::Unary(_) => "a unary expression",
        Expr::Binary(_) => "a binary expression",
        Expr::Paren(_) => "a parenthesised expression",
        Expr::Subquery(_) => "a subquery",
        Expr::NumberLiteral(_) => "a number",
        Expr::StringLiteral(_) => "a string",
        Expr::VectorSelector(_) => "a vector selector",
        Expr::MatrixSelector(_) => "a range selector",
        Expr::Call(_) => "a function call",
        Expr::Extension(_) => "an extension expression",
    }
}

fn convert(m: &promql_parser::label::Matcher) -> Result<Matcher, SelectorError> {
    let op = match m.op {
        PromOp::Equal => MatchOp::Equal,
        PromOp::NotEqual => MatchOp::NotEqual,
        PromOp::Re(_) => MatchOp::RegexMatch,
        PromOp::NotRe(_) => MatchOp::RegexNoMatch,
    };
    Matcher::new(m.name.clone(), op, m.value.clone())
        .map_err(|e| SelectorError::Parse(e.to_string()))
}

fn to_matcher_sets(vs: &VectorSelector) -> Result<Vec<Vec<Matcher>>, SelectorError> {
    let name = vs
        .name
        .as_ref()
        .map(|n| Matcher::new(METRIC_NAME, MatchOp::Equal, n.clone()))
        .transpose()
        .map_err(|e| SelectorError::Parse(e.to_string()))?;
    let mut alternatives: Vec<&Vec<promql_parser::label::Matcher>> = vec![&vs.matchers.matchers];
    alternatives.extend(vs.matchers.or_matchers.iter());
    let mut sets = Vec::new();
    for alt in alternatives {
        if alt.is_empty() && name.is_none() && !vs.matchers.or_matchers.is_empty() {
            continue;
        }
        let mut set: Vec<Matcher> = alt.iter().map(convert).collect::<Result<_, _>>()?;
        if let Some(n) = &name {
            set.push(n.clone());
        }
        if set.iter().all(Matcher::matches_empty) {
            return Err(SelectorError::Parse(
                "vector selector must contain at least one non-empty matcher".into(),
            ));
        }
        sets.push(set);
    }
    Ok(sets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_store::Labels;

    fn matches(sel: &str, labels: &[(&str, &str)]) -> bool {
        let l = Labels::from_pairs(labels.iter().copied());
        parse_selector(sel)
            .unwrap()
            .iter()
            .any(|set| set.iter().all(|m| m.matches(&l)))
    }

    #[test]
    fn selectors() {
        assert!(matches("up", &[("__name__", "up"), ("job", "x")]));
        assert!(!matches("up", &[("__name__", "down")]));
        assert!(matches(
            r#"up{job=~"no.*"}"#,
            &[("__name__", "up"), ("job", "node")]
        ));
        assert!(!matches(
            r#"up{job!="node"}"#,
            &[("__name__", "up"), ("job", "node")]
        ));
        assert!(matches(
            r#"{service_name="api"}"#,
            &[("service_name", "api")]
        ));
        assert!(matches(r#"{a="1" or b="2"}"#, &[("b", "2")]));
        assert!(matches("(up)", &[("__name__", "up")]));
    }

    #[test]
    fn everything_else_is_refused() {
        for q in [
            "sum(up)",
            "rate(up[5m])",
            "up + 1",
            "1",
            "up[5m]",
            "up offset 5m",
        ] {
            let e = parse_selector(q).unwrap_err();
            assert!(matches!(e, SelectorError::Unsupported(_)), "{q}: {e}");
            assert!(
                e.to_string()
                    .starts_with("only vector selectors are supported"),
                "{e}"
            );
        }
        assert!(matches!(
            parse_selector("up{"),
            Err(SelectorError::Parse(_))
        ));
        assert!(parse_selector(r#"{job=""}"#).is_err());
    }
}
