use super::*;
use crate::logql::ast::Expr;
use crate::logql::ast::Stage;
use crate::logql::parser::parse;

/// Runs the pipeline of `query` on `line` with stream labels `stream`.
fn run(
    query: &str,
    stream: &[(&str, &str)],
    line: &str,
) -> Option<(String, Vec<(String, String)>)> {
    let stages: Vec<Stage> = match parse(query).unwrap() {
        Expr::Log(l) => l.stages,
        Expr::Metric(_) => panic!("not a log query"),
    };
    let mut labels = LabelSet::new(stream.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let mut line = line.to_string();
    process(&stages, 1_700_000_000_000_000_000, &mut line, &mut labels)
        .then(|| (line, labels.to_pairs()))
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const S: &[(&str, &str)] = &[("app", "api")];

#[test]
fn line_filters() {
    let q = |f: &str, line: &str| run(&format!(r#"{{app="api"}} {f}"#), S, line).is_some();
    assert!(q(r#"|= "err""#, "an error"));
    assert!(!q(r#"|= "err""#, "fine"));
    assert!(q(r#"!= "err""#, "fine"));
    assert!(!q(r#"!= "err""#, "an error"));
    assert!(q(r#"|~ "e[r]+or""#, "an error"));
    assert!(!q(r#"|~ "^error""#, "an error"));
    assert!(q(r#"!~ "^error""#, "an error"));
    assert!(q(r#"|= "warn" or "err""#, "an error"));
    assert!(!q(r#"!= "warn" or "err""#, "an error"));
    assert!(q(r#"|= "an" |= "error" != "fatal""#, "an error"));
    assert!(!q(r#"|= "an" |= "error" != "fatal""#, "an error, fatal"));
    assert!(q(r#"|~ "(?i)ERROR""#, "an error"));
    assert!(q(r#"|= """#, "anything"));
}

#[test]
fn json_flattens_nested_keys() {
    let (line, labels) = run(
        r#"{app="api"} | json"#,
        S,
        r#"{"level":"error","status":503,"ok":false,"req":{"method":"GET","url.path":"/x"},"tags":["a"],"app":"dup","none":null}"#,
    )
    .unwrap();
    assert!(line.starts_with('{'));
    assert_eq!(
        labels,
        pairs(&[
            ("app", "api"),
            ("app_extracted", "dup"),
            ("level", "error"),
            ("none", ""),
            ("ok", "false"),
            ("req_method", "GET"),
            ("req_url_path", "/x"),
            ("status", "503"),
        ])
    );
    let (_, labels) = run(
        r#"{app="api"} | json m="req.method", missing="a.b""#,
        S,
        r#"{"req":{"method":"PUT"}}"#,
    )
    .unwrap();
    assert_eq!(
        labels,
        pairs(&[("app", "api"), ("m", "PUT"), ("missing", "")])
    );
}

#[test]
fn json_errors_set_error_label() {
    let (_, labels) = run(r#"{app="api"} | json"#, S, "not json").unwrap();
    assert!(labels.contains(&("__error__".to_string(), "JSONParserErr".to_string())));
    assert!(labels.iter().any(|(k, _)| k == "__error_details__"));
    // the error can be filtered out, or kept
    assert!(run(r#"{app="api"} | json | __error__="""#, S, "not json").is_none());
    assert!(run(r#"{app="api"} | json | __error__!="""#, S, "not json").is_some());
    assert!(run(r#"{app="api"} | json | __error__="""#, S, r#"{"a":1}"#).is_some());
    let (_, labels) = run(
        r#"{app="api"} | json | drop __error__, __error_details__"#,
        S,
        "[1]",
    )
    .unwrap();
    assert_eq!(labels, pairs(&[("app", "api")]));
}

#[test]
fn logfmt() {
    let (_, labels) = run(
        r#"{app="api"} | logfmt"#,
        S,
        r#"level=info msg="hello \"world\"" took=15ms flag app=x k.e-y=1"#,
    )
    .unwrap();
    assert_eq!(
        labels,
        pairs(&[
            ("app", "api"),
            ("app_extracted", "x"),
            ("flag", ""),
            ("k_e_y", "1"),
            ("level", "info"),
            ("msg", "hello \"world\""),
            ("took", "15ms"),
        ])
    );
    let (_, labels) = run(r#"{app="api"} | logfmt"#, S, r#"a="unterminated"#).unwrap();
    assert!(labels.contains(&("__error__".to_string(), "LogfmtParserErr".to_string())));
}

#[test]
fn regexp_extracts_named_groups() {
    let (_, labels) = run(
        r#"{app="api"} | regexp "(?P<method>[A-Z]+) (?P<path>\\S+)""#,
        S,
        "GET /index.html 200",
    )
    .unwrap();
    assert_eq!(
        labels,
        pairs(&[("app", "api"), ("method", "GET"), ("path", "/index.html")])
    );
    let (_, labels) = run(r#"{app="api"} | regexp "(?P<n>\\d+)""#, S, "no digits").unwrap();
    assert_eq!(labels, pairs(&[("app", "api")]));
}

#[test]
fn label_filters() {
    let line = "level=error status=503 took=1.5s size=2KB";
    let keep = |f: &str| run(&format!(r#"{{app="api"}} | logfmt | {f}"#), S, line).is_some();
    assert!(keep(r#"level="error""#));
    assert!(!keep(r#"level="info""#));
    assert!(keep(r#"level=~"err.*""#));
    assert!(!keep(r#"level!~"err.*""#));
    assert!(keep("status >= 500"));
    assert!(!keep("status < 500"));
    assert!(keep("status == 503"));
    assert!(keep("status != 200"));
    assert!(keep("took > 1s"));
    assert!(!keep("took > 2s"));
    assert!(keep("took <= 1500ms"));
    assert!(keep("size > 1KB"));
    assert!(!keep("size > 1MB"));
    assert!(keep(r#"level="info" or status > 500"#));
    assert!(!keep(r#"level="error" and status > 600"#));
    assert!(keep(r#"level="error", status > 500"#));
    assert!(keep(r#"(level="x" or level="error") and took > 1s"#));
    // a missing label fails a numeric filter; an unparsable one sets an error
    assert!(!keep("missing > 1"));
    let (_, labels) = run(r#"{app="api"} | logfmt | level > 1"#, S, line).unwrap();
    assert!(labels.contains(&("__error__".to_string(), "LabelFilterErr".to_string())));
    assert!(run(
        r#"{app="api"} | logfmt | level > 1 | __error__="""#,
        S,
        line
    )
    .is_none());
    // stream labels take part too
    assert!(run(r#"{app="api"} | app="api""#, S, "x").is_some());
}

#[test]
fn line_format_and_label_format() {
    let (line, labels) = run(
        r#"{app="api"} | logfmt | line_format "{{.level | upper}} {{.msg}} ({{.app}})" | label_format lvl=level, both="{{.level}}/{{.app}}""#,
        S,
        r#"level=warn msg="disk low""#,
    )
    .unwrap();
    assert_eq!(line, "WARN disk low (api)");
    assert_eq!(
        labels,
        pairs(&[
            ("app", "api"),
            ("both", "warn/api"),
            ("lvl", "warn"),
            ("msg", "disk low")
        ])
    );
    // line filters after line_format see the new line
    assert!(run(
        r#"{app="api"} | logfmt | line_format "{{.msg}}" |= "disk""#,
        S,
        "msg=disk x=1"
    )
    .is_some());
    assert!(run(
        r#"{app="api"} | logfmt | line_format "{{.msg}}" |= "x=1""#,
        S,
        "msg=disk x=1"
    )
    .is_none());
}

#[test]
fn drop_keep_decolorize() {
    let (_, labels) = run(r#"{app="api"} | logfmt | drop a, b="2""#, S, "a=1 b=2 c=3").unwrap();
    assert_eq!(labels, pairs(&[("app", "api"), ("c", "3")]));
    let (_, labels) = run(r#"{app="api"} | logfmt | drop b="9""#, S, "b=2").unwrap();
    assert_eq!(labels, pairs(&[("app", "api"), ("b", "2")]));
    let (_, labels) = run(r#"{app="api"} | logfmt | keep a, c"#, S, "a=1 b=2 c=3").unwrap();
    assert_eq!(labels, pairs(&[("a", "1"), ("c", "3")]));
    let (line, _) = run(r#"{app="api"} | decolorize"#, S, "\x1b[31mred\x1b[0m text").unwrap();
    assert_eq!(line, "red text");
}

#[test]
fn conversions() {
    assert_eq!(convert("1.5s", Conversion::Duration), Ok(1.5));
    assert_eq!(convert("-250ms", Conversion::Duration), Ok(-0.25));
    assert_eq!(convert("0", Conversion::Duration), Ok(0.0));
    assert!(convert("15", Conversion::Duration).is_err());
    assert_eq!(convert("1KiB", Conversion::Bytes), Ok(1024.0));
    assert_eq!(convert(" 42 ", Conversion::Number), Ok(42.0));
    assert!(convert("x", Conversion::Number).is_err());
}
