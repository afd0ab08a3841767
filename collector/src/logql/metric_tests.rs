use super::*;
use crate::logql::ast::Expr;
use crate::logql::parser::parse;

const S: i64 = 1_000_000_000;

fn lp(p: &[(&str, &str)]) -> LabelPairs {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Evaluates `q` with every range aggregation reading `data` (filtered to the
/// window the evaluator asks for, as the engine does).
fn eval_q(q: &str, data: &SampleSets, steps: Steps) -> Result<Value> {
    let expr = match parse(q).unwrap() {
        Expr::Metric(m) => m,
        Expr::Log(_) => panic!("log query"),
    };
    let limits = EvalLimits {
        max_series: 100,
        max_window_work: 1_000,
    };
    eval(&expr, steps, limits, &mut |_, from, to| {
        Ok(data
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.iter()
                        .filter(|(t, _)| *t >= from && *t <= to)
                        .copied()
                        .collect(),
                )
            })
            .filter(|(_, v): &(LabelPairs, Vec<(i64, f64)>)| !v.is_empty())
            .collect())
    })
}

fn vector(v: Value) -> Vec<Series> {
    match v {
        Value::Vector(mut s) => {
            s.sort_by(|a, b| a.labels.cmp(&b.labels));
            s
        }
        Value::Scalar(x) => panic!("scalar {x}"),
    }
}

fn data() -> SampleSets {
    let mut d = SampleSets::new();
    // a: samples at 0, 1, 2, 61, 120 s (value = bytes)
    d.insert(
        lp(&[("app", "a"), ("level", "info")]),
        vec![
            (0, 10.0),
            (S, 20.0),
            (2 * S, 30.0),
            (61 * S, 40.0),
            (120 * S, 50.0),
        ],
    );
    d.insert(
        lp(&[("app", "b"), ("level", "info")]),
        vec![(30 * S, 5.0), (90 * S, 7.0)],
    );
    d.insert(
        lp(&[("app", "b"), ("level", "error")]),
        vec![(100 * S, 1.0)],
    );
    d
}

const STEPS: Steps = Steps {
    start: 60 * S,
    end: 180 * S,
    step: 60 * S,
};

fn points(s: &Series) -> Vec<(i64, f64)> {
    s.points.iter().map(|(t, v)| (t / S, *v)).collect()
}

#[test]
fn windows_are_left_open_and_aligned_to_start() {
    let r = vector(eval_q(r#"count_over_time({app=~".+"}[1m])"#, &data(), STEPS).unwrap());
    assert_eq!(r.len(), 3);
    // (0, 60]: 1 s, 2 s (0 s is outside); (60, 120]: 61 s, 120 s; (120, 180]: nothing
    assert_eq!(points(&r[0]), vec![(60, 2.0), (120, 2.0)]);
    assert_eq!(points(&r[1]), vec![(120, 1.0)]);
    assert_eq!(points(&r[2]), vec![(60, 1.0), (120, 1.0)]);
    let r = vector(eval_q(r#"rate({app=~".+"}[1m])"#, &data(), STEPS).unwrap());
    assert_eq!(points(&r[0]), vec![(60, 2.0 / 60.0), (120, 2.0 / 60.0)]);
    let r = vector(eval_q(r#"bytes_over_time({app=~".+"}[1m])"#, &data(), STEPS).unwrap());
    assert_eq!(points(&r[0]), vec![(60, 50.0), (120, 90.0)]);
    let r = vector(eval_q(r#"bytes_rate({app=~".+"}[2m])"#, &data(), STEPS).unwrap());
    // (-60, 60]: 10+20+30; (0, 120]: 20+30+40+50; (60, 180]: 40+50
    assert_eq!(
        points(&r[0]),
        vec![(60, 0.5), (120, 140.0 / 120.0), (180, 0.75)]
    );
    // steps start at `start`, not at a multiple of the step
    let odd = Steps {
        start: 61 * S,
        end: 121 * S,
        step: 30 * S,
    };
    let r = vector(eval_q(r#"count_over_time({app=~".+"}[1m])"#, &data(), odd).unwrap());
    assert_eq!(points(&r[0]), vec![(61, 2.0), (91, 1.0), (121, 1.0)]);
}

#[test]
fn offset_shifts_the_window() {
    let r = vector(
        eval_q(
            r#"count_over_time({app=~".+"}[1m] offset 1m)"#,
            &data(),
            STEPS,
        )
        .unwrap(),
    );
    // t=60 reads (-60, 0]; t=120 reads (0, 60]; t=180 reads (60, 120]
    assert_eq!(points(&r[0]), vec![(60, 1.0), (120, 2.0), (180, 2.0)]);
}

#[test]
fn unwrapped_functions() {
    let one = Steps {
        start: 120 * S,
        end: 120 * S,
        step: S,
    };
    let q = |f: &str| {
        let r = vector(
            eval_q(
                &format!(r#"{f}({{app="a"}} | unwrap x [3m])"#),
                &data(),
                one,
            )
            .unwrap(),
        );
        r[0].points[0].1
    };
    // window (-60, 120]: 10, 20, 30, 40, 50
    assert_eq!(q("sum_over_time"), 150.0);
    assert_eq!(q("avg_over_time"), 30.0);
    assert_eq!(q("max_over_time"), 50.0);
    assert_eq!(q("min_over_time"), 10.0);
    assert_eq!(q("first_over_time"), 10.0);
    assert_eq!(q("last_over_time"), 50.0);
    assert_eq!(q("rate"), 150.0 / 180.0);
    assert_eq!(q("stdvar_over_time"), 200.0);
    assert!((q("stddev_over_time") - 200f64.sqrt()).abs() < 1e-12);
    let r = vector(
        eval_q(
            r#"quantile_over_time(0.5, {app="a"} | unwrap x [3m])"#,
            &data(),
            one,
        )
        .unwrap(),
    );
    assert_eq!(r[0].points[0].1, 30.0);
    let r = vector(
        eval_q(
            r#"quantile_over_time(0.9, {app="a"} | unwrap x [3m])"#,
            &data(),
            one,
        )
        .unwrap(),
    );
    assert!((r[0].points[0].1 - 46.0).abs() < 1e-9);
}

#[test]
fn vector_aggregations() {
    let one = Steps {
        start: 120 * S,
        end: 120 * S,
        step: S,
    };
    let q = |agg: &str| {
        vector(
            eval_q(
                &format!(r#"{agg} (count_over_time({{app=~".+"}}[2m]))"#),
                &data(),
                one,
            )
            .unwrap(),
        )
    };
    // window (0, 120]: a/info 4, b/info 2, b/error 1
    let r = q("sum by (app)");
    assert_eq!(r[0].labels, lp(&[("app", "a")]));
    assert_eq!(points(&r[0]), vec![(120, 4.0)]);
    assert_eq!(points(&r[1]), vec![(120, 3.0)]);
    let r = q("sum without (app)");
    assert_eq!(r[0].labels, lp(&[("level", "error")]));
    assert_eq!(points(&r[1]), vec![(120, 6.0)]);
    assert_eq!(points(&q("sum")[0]), vec![(120, 7.0)]);
    assert_eq!(q("sum")[0].labels, lp(&[]));
    assert_eq!(points(&q("max")[0]), vec![(120, 4.0)]);
    assert_eq!(points(&q("min")[0]), vec![(120, 1.0)]);
    assert_eq!(points(&q("count")[0]), vec![(120, 3.0)]);
    assert_eq!(points(&q("avg by (level)")[1]), vec![(120, 3.0)]);
    let sd = q("stddev")[0].points[0].1;
    assert!((sd - (14f64 / 9.0).sqrt()).abs() < 1e-12, "{sd}");
    let top = vector(eval_q(r#"topk(2, count_over_time({app=~".+"}[2m]))"#, &data(), one).unwrap());
    assert_eq!(top.len(), 2);
    assert_eq!(top[0].labels, lp(&[("app", "a"), ("level", "info")]));
    assert_eq!(top[1].labels, lp(&[("app", "b"), ("level", "info")]));
    let bottom = vector(
        eval_q(
            r#"bottomk(1, count_over_time({app=~".+"}[2m])) by (app)"#,
            &data(),
            one,
        )
        .unwrap(),
    );
    assert_eq!(bottom.len(), 2);
    assert_eq!(bottom[1].labels, lp(&[("app", "b"), ("level", "error")]));
}

#[test]
fn binary_operators() {
    let one = Steps {
        start: 120 * S,
        end: 120 * S,
        step: S,
    };
    assert_eq!(
        eval_q("1 + 2 * 3", &data(), one).unwrap(),
        Value::Scalar(7.0)
    );
    assert_eq!(
        eval_q("2 ^ 3 ^ 2", &data(), one).unwrap(),
        Value::Scalar(512.0)
    );
    // Grafana's data source health check
    let r = vector(eval_q("vector(1)+vector(1)", &data(), STEPS).unwrap());
    assert_eq!(r.len(), 1);
    assert_eq!(points(&r[0]), vec![(60, 2.0), (120, 2.0), (180, 2.0)]);
    let r = vector(
        eval_q(
            r#"sum by (app) (count_over_time({app=~".+"}[2m])) * 10"#,
            &data(),
            one,
        )
        .unwrap(),
    );
    assert_eq!(points(&r[0]), vec![(120, 40.0)]);
    let r = vector(
        eval_q(
            r#"sum by (app) (count_over_time({app=~".+"}[2m])) > 3"#,
            &data(),
            one,
        )
        .unwrap(),
    );
    assert_eq!(r.len(), 1);
    assert_eq!(points(&r[0]), vec![(120, 4.0)]);
    let r = vector(
        eval_q(
            r#"sum by (app) (count_over_time({app=~".+"}[2m])) > bool 3"#,
            &data(),
            one,
        )
        .unwrap(),
    );
    assert_eq!(points(&r[1]), vec![(120, 0.0)]);
    let r = vector(
        eval_q(
            r#"sum by (app) (count_over_time({app=~".+"}[2m])) / sum by (app) (count_over_time({app=~".+"}[1m]))"#,
            &data(),
            one,
        )
        .unwrap(),
    );
    // a: 4/2; b: 3/2
    assert_eq!(points(&r[0]), vec![(120, 2.0)]);
    assert_eq!(points(&r[1]), vec![(120, 1.5)]);
    let r = vector(
        eval_q(
            r#"sum by (app) (count_over_time({app="a"}[2m])) or sum by (app) (count_over_time({app=~".+"}[2m]))"#,
            &data(),
            one,
        )
        .unwrap(),
    );
    assert_eq!(r.len(), 2);
    assert!(eval_q(r#"count_over_time({app="a"}[1m]) and 1"#, &data(), one).is_err());
}

#[test]
fn limits() {
    let mut many = SampleSets::new();
    for i in 0..101 {
        many.insert(lp(&[("i", &i.to_string())]), vec![(S, 1.0)]);
    }
    let one = Steps {
        start: 2 * S,
        end: 2 * S,
        step: S,
    };
    let e = eval_q(r#"count_over_time({i=~".+"}[1m])"#, &many, one).unwrap_err();
    assert!(matches!(e, Error::Limit(_)), "{e}");
    assert!(e.to_string().contains("maximum number of series (100)"));
    // window functions are charged per sample visited
    let mut long = SampleSets::new();
    long.insert(
        lp(&[("a", "1")]),
        (0..2_000).map(|i| (i * S / 1000, 1.0)).collect(),
    );
    let e = eval_q(r#"max_over_time({a="1"} | unwrap x [1m])"#, &long, one).unwrap_err();
    assert!(e.to_string().contains("window samples"), "{e}");
    assert!(eval_q(r#"sum_over_time({a="1"} | unwrap x [1m])"#, &long, one).is_ok());
}

#[test]
fn absent_over_time() {
    let r = vector(
        eval_q(
            r#"absent_over_time({app="zzz"}[1m])"#,
            &SampleSets::new(),
            STEPS,
        )
        .unwrap(),
    );
    assert_eq!(r[0].labels, lp(&[("app", "zzz")]));
    assert_eq!(r[0].points.len(), 3);
    let r = vector(eval_q(r#"absent_over_time({app="a"}[1m])"#, &data(), STEPS).unwrap());
    assert_eq!(points(&r[0]), vec![(180, 1.0)]);
}

#[test]
fn steps_stop_at_end() {
    let s = Steps {
        start: 0,
        end: 10,
        step: 3,
    };
    assert_eq!(s.times().collect::<Vec<_>>(), vec![0, 3, 6, 9]);
}
