use super::*;
use crate::logql::ast::Expr;
use crate::logql::parser::parse;
use serde_json::json;

const S: i64 = 1_000_000_000;

/// Records in memory, scanned like the store: by time, oldest first.
struct VecSource(Vec<LogRecord>);

impl LogSource for VecSource {
    fn scan(&self, start: i64, end: i64, f: &mut dyn FnMut(LogRecord) -> bool) -> Result<()> {
        let mut recs: Vec<&LogRecord> = self
            .0
            .iter()
            .filter(|r| r.timestamp_ns >= start && r.timestamp_ns <= end)
            .collect();
        recs.sort_by_key(|r| r.timestamp_ns);
        for r in recs {
            if !f(r.clone()) {
                break;
            }
        }
        Ok(())
    }
}

fn rec(service: &str, ts: i64, body: &str, pattern: Option<&str>, severity: i32) -> LogRecord {
    LogRecord {
        timestamp_ns: ts,
        observed_timestamp_ns: ts,
        severity_number: severity,
        severity_text: String::new(),
        body: body.into(),
        attributes: pattern
            .map(|p| vec![(PATTERN_ATTRIBUTE.to_string(), json!(p))])
            .unwrap_or_default(),
        resource: vec![("service.name".to_string(), json!(service))],
        scope_name: String::new(),
        scope_version: String::new(),
        trace_id: Vec::new(),
        span_id: Vec::new(),
        flags: 0,
    }
}

fn source() -> VecSource {
    VecSource(vec![
        rec("api", 0, "level=info msg=start took=5ms", Some("p0"), 9),
        rec("api", S, "level=info msg=ok took=10ms", Some("p1"), 9),
        rec(
            "api",
            2 * S,
            "level=error msg=boom took=1.5s",
            Some("p2"),
            17,
        ),
        rec(
            "web",
            3 * S,
            r#"{"level":"warn","req":{"status":404}}"#,
            None,
            0,
        ),
        rec(
            "web",
            61 * S,
            r#"{"level":"error","req":{"status":500}}"#,
            None,
            0,
        ),
        rec("web", 62 * S, "not json", None, 0),
        rec("api", 120 * S, "level=info msg=ok took=20ms", Some("p1"), 9),
    ])
}

fn log_expr(q: &str) -> LogExpr {
    match parse(q).unwrap() {
        Expr::Log(l) => l,
        Expr::Metric(_) => panic!("metric"),
    }
}

fn metric_expr(q: &str) -> MetricExpr {
    match parse(q).unwrap() {
        Expr::Metric(m) => m,
        Expr::Log(_) => panic!("log"),
    }
}

fn lines(q: &str, limit: usize, dir: Direction) -> Vec<String> {
    select_entries(
        &source(),
        &log_expr(q),
        0,
        200 * S,
        limit,
        dir,
        Limits::default(),
    )
    .unwrap()
    .into_iter()
    .map(|e| e.line)
    .collect()
}

#[test]
fn log_queries_honour_limit_and_direction() {
    let all = lines(r#"{service_name="api"}"#, 100, Direction::Forward);
    assert_eq!(all.len(), 4);
    assert_eq!(
        lines(r#"{service_name="api"}"#, 2, Direction::Forward),
        all[..2]
    );
    // backward returns the newest, still oldest first here (rendering reverses)
    assert_eq!(
        lines(r#"{service_name="api"}"#, 2, Direction::Backward),
        all[2..]
    );
    assert_eq!(
        lines(r#"{service_name="api"} |= "ok""#, 1, Direction::Backward),
        vec!["level=info msg=ok took=20ms"]
    );
    assert_eq!(
        lines(
            r#"{service_name=~"api|web"} != "level""#,
            10,
            Direction::Forward
        ),
        vec!["not json"]
    );
    assert!(lines(r#"{service_name="nobody"}"#, 10, Direction::Forward).is_empty());
}

#[test]
fn pattern_and_level_are_structured_metadata() {
    let e = select_entries(
        &source(),
        &log_expr(r#"{service_name="api"} | pattern="p1""#),
        0,
        200 * S,
        10,
        Direction::Forward,
        Limits::default(),
    )
    .unwrap();
    assert_eq!(e.len(), 2);
    let l = &e[0].labels;
    assert_eq!(l.get("pattern"), Some("p1"));
    assert_eq!(l.get("detected_level"), Some("info"));
    assert_eq!(
        l.of(Category::Meta).collect::<Vec<_>>(),
        vec![("detected_level", "info"), ("pattern", "p1")]
    );
    assert_eq!(
        l.of(Category::Stream).collect::<Vec<_>>(),
        vec![("service_name", "api")]
    );
    let errors = lines(
        r#"{service_name="api"} | detected_level="error""#,
        10,
        Direction::Forward,
    );
    assert_eq!(errors, vec!["level=error msg=boom took=1.5s"]);
}

fn eval(q: &str, steps: Steps) -> Result<Vec<metric::Series>> {
    match eval_metric(&source(), &metric_expr(q), steps, Limits::default())? {
        Value::Vector(mut v) => {
            v.sort_by(|a, b| a.labels.cmp(&b.labels));
            Ok(v)
        }
        Value::Scalar(_) => panic!("scalar"),
    }
}

fn pts(s: &metric::Series) -> Vec<(i64, f64)> {
    s.points.iter().map(|(t, v)| (t / S, *v)).collect()
}

const STEPS: Steps = Steps {
    start: 60 * S,
    end: 180 * S,
    step: 60 * S,
};

#[test]
fn metric_queries_run_the_pipeline() {
    let r = eval(
        r#"sum by (level) (count_over_time({service_name="api"} | logfmt [1m]))"#,
        STEPS,
    )
    .unwrap();
    // (0, 60]: 1 s info, 2 s error; (60, 120]: 120 s info
    assert_eq!(r.len(), 2);
    assert_eq!(
        r[0].labels,
        vec![("level".to_string(), "error".to_string())]
    );
    assert_eq!(pts(&r[0]), vec![(60, 1.0)]);
    assert_eq!(pts(&r[1]), vec![(60, 1.0), (120, 1.0)]);
    let r = eval(
        r#"sum by (pattern) (count_over_time({service_name="api"}[2m]))"#,
        STEPS,
    )
    .unwrap();
    let got: Vec<(String, Vec<(i64, f64)>)> =
        r.iter().map(|s| (s.labels[0].1.clone(), pts(s))).collect();
    assert_eq!(
        got,
        vec![
            ("p0".to_string(), vec![(60, 1.0)]),
            ("p1".to_string(), vec![(60, 1.0), (120, 2.0), (180, 1.0)]),
            ("p2".to_string(), vec![(60, 1.0), (120, 1.0)]),
        ]
    );
    let r = eval(
        r#"sum(bytes_over_time({service_name="api"} |= "error" [1m]))"#,
        STEPS,
    )
    .unwrap();
    assert_eq!(pts(&r[0]), vec![(60, 30.0)]);
    let r = eval(
        r#"sum(sum_over_time({service_name="api"} | logfmt | unwrap duration(took) [3m]))"#,
        Steps {
            start: 120 * S,
            end: 120 * S,
            step: S,
        },
    )
    .unwrap();
    assert!(
        (pts(&r[0])[0].1 - (0.005 + 0.01 + 1.5 + 0.02)).abs() < 1e-9,
        "{r:?}"
    );
}

#[test]
fn pipeline_errors_fail_metric_queries_unless_filtered() {
    let q = r#"sum by (level) (count_over_time({service_name="web"} | json [2m]))"#;
    let e = eval(q, STEPS).unwrap_err();
    assert!(matches!(e, Error::Pipeline(_)), "{e}");
    assert!(e.to_string().contains("JSONParserErr"), "{e}");
    let r = eval(
        r#"sum by (level, req_status) (count_over_time({service_name="web"} | json | __error__="" [2m]))"#,
        STEPS,
    )
    .unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!(
        r[0].labels,
        vec![
            ("level".to_string(), "error".to_string()),
            ("req_status".to_string(), "500".to_string())
        ]
    );
    // Grafana's log volume query drops the error label instead
    let r = eval(
        r#"sum(count_over_time({service_name="web"} | json | drop __error__ [2m]))"#,
        STEPS,
    )
    .unwrap();
    assert_eq!(pts(&r[0]), vec![(60, 1.0), (120, 3.0), (180, 2.0)]);
}

#[test]
fn limits_are_errors() {
    let tight = Limits {
        max_scanned: 3,
        max_series: 10,
    };
    let e = select_entries(
        &source(),
        &log_expr(r#"{service_name="web"}"#),
        0,
        200 * S,
        10,
        Direction::Forward,
        tight,
    )
    .unwrap_err();
    assert!(matches!(e, Error::Limit(_)), "{e}");
    let few = Limits {
        max_scanned: 100,
        max_series: 1,
    };
    let e = eval_metric(
        &source(),
        &metric_expr(r#"count_over_time({service_name="api"} | logfmt [5m])"#),
        STEPS,
        few,
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("maximum number of series (1)"),
        "{e}"
    );
}

#[test]
fn streams_count_entries_and_bytes() {
    let all = streams(&source(), &[], 0, 200 * S, Limits::default()).unwrap();
    assert_eq!(all.len(), 2);
    let api = &all[&vec![("service_name".to_string(), "api".to_string())]];
    assert_eq!(api.entries, 4);
    assert_eq!(api.bytes, (29 + 27 + 30 + 27) as u64);
    let web = parse_sel(r#"{service_name="web"}"#);
    let some = streams(&source(), &[web], 60 * S, 200 * S, Limits::default()).unwrap();
    assert_eq!(some.len(), 1);
    assert_eq!(some.values().next().map(|s| s.entries), Some(2));
}

fn parse_sel(q: &str) -> Vec<Matcher> {
    crate::logql::parser::parse_selector(q).unwrap()
}
