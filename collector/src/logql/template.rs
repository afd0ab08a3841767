//! The Go-template subset of `line_format` and `label_format`: text with
//! `{{ .label }}` substitutions (a missing label renders empty), `{{ __line__ }}`,
//! `{{ __timestamp__ }}` (RFC 3339), string literals, the whitespace trimming
//! markers `{{-` / `-}}`, and argument-less functions piped after a value
//! (`{{ .level | upper }}`): `upper`/`ToUpper`, `lower`/`ToLower`, `title`/`Title`,
//! `trim`/`TrimSpace`/`trimSpace`.

use super::Error;

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Field(String),
    Line,
    Timestamp,
    Literal(String),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Func {
    Upper,
    Lower,
    Title,
    Trim,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Action(Value, Vec<Func>),
}

/// A compiled template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Compiles `src`; `pos` is the byte offset of the template string in the query,
    /// for error messages.
    pub fn parse(src: &str, pos: usize) -> Result<Template, Error> {
        let err = |m: String| Error::parse(pos, format!("invalid template {src:?}: {m}"));
        let mut parts = Vec::new();
        let mut rest = src;
        let mut trim_next_text = false;
        while !rest.is_empty() {
            let Some(open) = rest.find("{{") else {
                push_text(&mut parts, rest, trim_next_text, false);
                break;
            };
            let mut action = &rest[open + 2..];
            let trim_left = action.starts_with('-');
            if trim_left {
                action = &action[1..];
            }
            push_text(&mut parts, &rest[..open], trim_next_text, trim_left);
            let close = action
                .find("}}")
                .ok_or_else(|| err("unclosed action".into()))?;
            let mut body = &action[..close];
            trim_next_text = body.ends_with('-') && body.len() > 1;
            if trim_next_text {
                body = &body[..body.len() - 1];
            }
            rest = &action[close + 2..];
            let mut cmds = body.split('|').map(str::trim);
            let first = cmds.next().unwrap_or("");
            let value = if first == "__line__" {
                Value::Line
            } else if first == "__timestamp__" {
                Value::Timestamp
            } else if let Some(name) = first.strip_prefix('.') {
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(err(format!("cannot use {first:?} as a field")));
                }
                Value::Field(name.to_string())
            } else if first.len() >= 2 && first.starts_with('"') && first.ends_with('"') {
                Value::Literal(first[1..first.len() - 1].to_string())
            } else {
                return Err(err(format!(
                    "unsupported action {{{{{body}}}}} (use {{{{.label}}}}, {{{{__line__}}}}, {{{{__timestamp__}}}})"
                )));
            };
            let funcs = cmds
                .map(|f| match f {
                    "upper" | "ToUpper" => Ok(Func::Upper),
                    "lower" | "ToLower" => Ok(Func::Lower),
                    "title" | "Title" => Ok(Func::Title),
                    "trim" | "TrimSpace" | "trimSpace" => Ok(Func::Trim),
                    other => Err(err(format!("function {other:?} not supported"))),
                })
                .collect::<Result<Vec<_>, _>>()?;
            parts.push(Part::Action(value, funcs));
        }
        Ok(Template { parts })
    }

    /// Renders with `get` looking up labels.
    pub fn render<'a>(
        &self,
        get: impl Fn(&str) -> Option<&'a str>,
        line: &str,
        ts_ns: i64,
    ) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Action(v, funcs) => {
                    let mut s = match v {
                        Value::Field(name) => get(name).unwrap_or("").to_string(),
                        Value::Line => line.to_string(),
                        Value::Timestamp => rfc3339(ts_ns),
                        Value::Literal(l) => l.clone(),
                    };
                    for f in funcs {
                        s = match f {
                            Func::Upper => s.to_uppercase(),
                            Func::Lower => s.to_lowercase(),
                            Func::Trim => s.trim().to_string(),
                            Func::Title => title(&s),
                        };
                    }
                    out.push_str(&s);
                }
            }
        }
        out
    }
}

fn push_text(parts: &mut Vec<Part>, text: &str, trim_start: bool, trim_end: bool) {
    let mut t = text;
    if trim_start {
        t = t.trim_start();
    }
    if trim_end {
        t = t.trim_end();
    }
    if !t.is_empty() {
        parts.push(Part::Text(t.to_string()));
    }
}

fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric();
    }
    out
}

/// `2024-01-02T03:04:05.123456789Z` (fraction trimmed of trailing zeros).
pub fn rfc3339(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let frac = ns.rem_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // civil_from_days (Howard Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let mut s = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    );
    if frac != 0 {
        let f = format!("{frac:09}");
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(src: &str, labels: &[(&str, &str)]) -> String {
        let t = Template::parse(src, 0).unwrap();
        t.render(
            |n| labels.iter().find(|(k, _)| *k == n).map(|(_, v)| *v),
            "the line",
            1_700_000_000_500_000_000,
        )
    }

    #[test]
    fn substitutions_and_functions() {
        let l = [("level", "error"), ("msg", " boom ")];
        assert_eq!(render("{{.level}} {{.msg}}", &l), "error  boom ");
        assert_eq!(
            render("{{ .level | upper }}:{{ .msg | trim }}", &l),
            "ERROR:boom"
        );
        assert_eq!(render("[{{.missing}}]", &l), "[]");
        assert_eq!(render("{{__line__}}!", &l), "the line!");
        assert_eq!(render("{{__timestamp__}}", &l), "2023-11-14T22:13:20.5Z");
        assert_eq!(render(r#"{{ "lit" | ToUpper }}"#, &l), "LIT");
        assert_eq!(render("a  {{- .level -}}  b", &l), "aerrorb");
        assert_eq!(render("{{.level | title}}", &l), "Error");
        assert_eq!(render("plain", &l), "plain");
    }

    #[test]
    fn bad_templates_are_errors() {
        for t in [
            "{{.level",
            "{{ printf \"%s\" .a }}",
            "{{.a | nope}}",
            "{{.}}",
        ] {
            assert!(Template::parse(t, 0).is_err(), "{t}");
        }
    }

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(951_782_400_000_000_001),
            "2000-02-29T00:00:00.000000001Z"
        );
    }
}
