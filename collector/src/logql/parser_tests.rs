use super::*;

fn log(q: &str) -> LogExpr {
    match parse(q).unwrap() {
        Expr::Log(l) => l,
        Expr::Metric(m) => panic!("{q}: metric {m:?}"),
    }
}

fn metric(q: &str) -> MetricExpr {
    match parse(q).unwrap() {
        Expr::Metric(m) => m,
        Expr::Log(l) => panic!("{q}: log {l:?}"),
    }
}

fn err(q: &str) -> String {
    parse(q).unwrap_err().to_string()
}

#[test]
fn selectors() {
    let l = log(r#"{app="api", env!="dev", pod=~"api-.*", ns!~"kube.*"}"#);
    assert_eq!(l.matchers.len(), 4);
    assert_eq!(l.matchers[0].op, MatchOp::Equal);
    assert_eq!(l.matchers[1].op, MatchOp::NotEqual);
    assert_eq!(l.matchers[2].op, MatchOp::RegexMatch);
    assert_eq!(l.matchers[3].op, MatchOp::RegexNoMatch);
    assert!(l.stages.is_empty());
    assert_eq!(parse_selector(r#"{a="b"}"#).unwrap().len(), 1);
    assert!(parse_selector(r#"{a="b"} |= "x""#).is_err());
    assert!(parse_selector(r#"count_over_time({a="b"}[1m])"#).is_err());
}

#[test]
fn empty_compatible_selectors_are_refused() {
    assert!(err(r#"{app=~".*"}"#).contains("at least one regexp or equality matcher"));
    assert!(err("{}").contains("at least one"));
    assert!(parse(r#"{app=~".+"}"#).is_ok());
}

#[test]
fn line_filters() {
    let l = log(r#"{a="b"} |= "x" != "y" |~ "z+" !~ "w" |= "p" or "q""#);
    let ops: Vec<FilterOp> = l
        .stages
        .iter()
        .map(|s| match s {
            Stage::LineFilter(f) => f.op,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        ops,
        vec![
            FilterOp::Contains,
            FilterOp::NotContains,
            FilterOp::Match,
            FilterOp::NotMatch,
            FilterOp::Contains
        ]
    );
    match &l.stages[4] {
        Stage::LineFilter(f) => assert_eq!(f.needles, vec!["p", "q"]),
        _ => unreachable!(),
    }
    assert!(err(r#"{a="b"} |~ "(""#).contains("invalid regex"));
    assert!(err(r#"{a="b"} |= x"#).contains("quoted string"));
}

#[test]
fn parsers_and_formatters() {
    let l = log(
        r#"{a="b"} | json | logfmt --strict | regexp "(?P<ip>\\S+)" | line_format "{{.x}}" | label_format y=x, z="{{.w}}" | drop p, q="1" | keep r | decolorize"#,
    );
    assert!(matches!(&l.stages[0], Stage::Json(p) if p.is_empty()));
    assert!(matches!(l.stages[1], Stage::Logfmt));
    assert!(matches!(l.stages[2], Stage::Regexp(_)));
    assert!(matches!(l.stages[3], Stage::LineFormat(_)));
    assert!(matches!(&l.stages[4], Stage::LabelFormat(f) if f.len() == 2));
    assert!(matches!(&l.stages[5], Stage::Drop(n) if n.len() == 2 && n[1].matcher.is_some()));
    assert!(matches!(&l.stages[6], Stage::Keep(n) if n.len() == 1));
    assert!(matches!(l.stages[7], Stage::Decolorize));
    let l = log(r#"{a="b"} | json first="user.name", id"#);
    match &l.stages[0] {
        Stage::Json(p) => assert_eq!(
            p,
            &vec![
                (
                    "first".to_string(),
                    vec!["user".to_string(), "name".to_string()]
                ),
                ("id".to_string(), vec!["id".to_string()])
            ]
        ),
        _ => unreachable!(),
    }
    assert!(err(r#"{a="b"} | regexp "(\\d+)""#).contains("named capture"));
    assert!(err(r#"{a="b"} | line_format "{{.x""#).contains("invalid template"));
    assert!(err(r#"{a="b"} | pattern "<ip> <_>""#).contains("not supported"));
    assert!(err(r#"{a="b"} | nonsense"#).contains("expecting a parser"));
}

#[test]
fn label_filters() {
    let l = log(
        r#"{a="b"} | level="error" | status >= 500 and took > 10ms, size < 1KB or (x=~"a.*" or y!="")"#,
    );
    assert!(matches!(&l.stages[0], Stage::LabelFilter(LabelFilter::Str(m)) if m.name == "level"));
    match &l.stages[1] {
        Stage::LabelFilter(LabelFilter::Or(lhs, rhs)) => {
            assert!(matches!(**rhs, LabelFilter::Or(_, _)));
            match &**lhs {
                LabelFilter::And(a, c) => {
                    assert!(matches!(
                        &**c,
                        LabelFilter::Num { conv: Conversion::Bytes, value, .. } if *value == 1000.0
                    ));
                    match &**a {
                        LabelFilter::And(s, t) => {
                            assert!(matches!(
                                &**s,
                                LabelFilter::Num { op: CmpOp::Ge, value, conv: Conversion::Number, .. } if *value == 500.0
                            ));
                            assert!(matches!(
                                &**t,
                                LabelFilter::Num { op: CmpOp::Gt, value, conv: Conversion::Duration, .. } if (*value - 0.01).abs() < 1e-12
                            ));
                        }
                        other => panic!("{other:?}"),
                    }
                }
                other => panic!("{other:?}"),
            }
        }
        other => panic!("{other:?}"),
    }
    // `pattern` is a label like any other
    let l = log(r#"{a="b"} | pattern="p1" | status != 200 | code == 3"#);
    assert!(matches!(&l.stages[0], Stage::LabelFilter(LabelFilter::Str(m)) if m.name == "pattern"));
    assert!(matches!(
        &l.stages[1],
        Stage::LabelFilter(LabelFilter::Num { op: CmpOp::Ne, .. })
    ));
    assert!(matches!(
        &l.stages[2],
        Stage::LabelFilter(LabelFilter::Num { op: CmpOp::Eq, .. })
    ));
    assert!(err(r#"{a="b"} | x > "s""#).contains("number, duration"));
    assert!(err(r#"{a="b"} | x =~ 3"#).contains("regular expression"));
}

#[test]
fn range_aggregations() {
    match metric(r#"count_over_time({a="b"} |= "x" [5m])"#) {
        MetricExpr::Range {
            func,
            range_ns,
            offset_ns,
            log,
            ..
        } => {
            assert_eq!(func, RangeFn::CountOverTime);
            assert_eq!(range_ns, 300_000_000_000);
            assert_eq!(offset_ns, 0);
            assert_eq!(log.stages.len(), 1);
        }
        other => panic!("{other:?}"),
    }
    // the range may also come before the pipeline, and take an offset
    match metric(r#"rate({a="b"}[1m] | json offset 1h)"#) {
        MetricExpr::Range {
            func,
            offset_ns,
            log,
            ..
        } => {
            assert_eq!(func, RangeFn::Rate);
            assert_eq!(offset_ns, 3_600_000_000_000);
            assert_eq!(log.stages.len(), 1);
        }
        other => panic!("{other:?}"),
    }
    match metric(
        r#"quantile_over_time(0.9, {a="b"} | logfmt | unwrap duration(took) | __error__="" [1m]) by (x)"#,
    ) {
        MetricExpr::Range {
            func,
            unwrap: Some(u),
            param,
            grouping: Some(g),
            ..
        } => {
            assert_eq!(func, RangeFn::QuantileOverTime);
            assert_eq!(u.label, "took");
            assert_eq!(u.conv, Conversion::Duration);
            assert_eq!(u.post_filters.len(), 1);
            assert_eq!(param, Some(0.9));
            assert_eq!(g.labels, vec!["x"]);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        metric(r#"rate({a="b"} | logfmt | unwrap bytes_sent [1m])"#),
        MetricExpr::Range {
            func: RangeFn::RateUnwrapped,
            ..
        }
    ));
    assert!(err(r#"sum_over_time({a="b"}[1m])"#).contains("unwrap"));
    assert!(err(r#"count_over_time({a="b"} | logfmt | unwrap x [1m])"#)
        .contains("cannot be used with unwrap"));
    assert!(err(r#"count_over_time({a="b"})"#).contains("[ with a range"));
    assert!(err(r#"{a="b"}[5m]"#).contains("needs a function"));
    assert!(err(r#"count_over_time({a="b"}[0s])"#).contains("positive duration"));
}

#[test]
fn vector_aggregations_and_binary() {
    for q in [
        r#"sum by (level) (count_over_time({a="b"} | json [1m]))"#,
        r#"sum(count_over_time({a="b"} | json [1m])) by (level)"#,
    ] {
        match metric(q) {
            MetricExpr::Vector {
                op: VecOp::Sum,
                grouping: Some(g),
                ..
            } => assert_eq!(g.labels, vec!["level"]),
            other => panic!("{other:?}"),
        }
    }
    assert!(matches!(
        metric(r#"topk(2, sum without (pod) (rate({a="b"}[1m])))"#),
        MetricExpr::Vector { op: VecOp::Topk, param: Some(k), .. } if k == 2.0
    ));
    // precedence: 1 + 2 * 3 ^ 2 = 1 + (2 * (3 ^ 2))
    match metric("1 + 2 * 3 ^ 2") {
        MetricExpr::Binary {
            op: BinOp::Add,
            rhs,
            ..
        } => {
            assert!(matches!(*rhs, MetricExpr::Binary { op: BinOp::Mul, .. }))
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        metric(r#"sum(rate({a="b"}[1m])) > bool 2"#),
        MetricExpr::Binary {
            op: BinOp::Gt,
            bool_modifier: true,
            ..
        }
    ));
    assert!(matches!(metric("-2"), MetricExpr::Number(n) if n == -2.0));
    assert!(err(r#"topk(x, rate({a="b"}[1m]))"#).contains("positive integer"));
    assert!(err(r#"nope(rate({a="b"}[1m]))"#).contains("unknown function"));
    assert!(err(r#"sum(rate({a="b"}[1m])) + {a="b"}"#).contains("log query cannot"));
}

#[test]
fn error_positions_are_line_and_column() {
    let e = err("{a=\"b\"}\n | json |");
    assert!(e.starts_with("parse error at line 2, col 10:"), "{e}");
    let e = err(r#"{a="b"} |= "x" )"#);
    assert!(e.starts_with("parse error at line 1, col 16:"), "{e}");
}
