//! A TraceQL subset: one spanset filter, `{ cond && cond || cond ... }` (`&&` binds
//! tighter than `||`, parentheses group), which is what Grafana's Tempo search
//! builder writes. A condition is `<field> <op> <literal>` (or a bare boolean field /
//! `true` / `false`), where a field is a scoped attribute (`span.http.status_code`,
//! `resource.service.name`, quoted `span."a b"`), an unscoped one (`.foo`: span first,
//! then resource), or an intrinsic (`name`, `status`, `statusMessage`, `kind`,
//! `duration`, `rootName`, `rootServiceName`, `traceDuration` and their
//! `span:`/`trace:` spellings). Literals: strings (`"..."` or backquoted), integers,
//! floats, durations (`100ms`, `1.5s`), `true`/`false`, `nil`, status (`error`, `ok`,
//! `unset`) and kind (`server`, `client`, ...) keywords. Operators: `= != > >= < <= =~ !~`.
//!
//! Everything else (pipelines, structural operators, several spansets, aggregates) is
//! rejected with a message, which the API answers with 400.

use regex::Regex;
use serde_json::Value;
use sightline_store::SpanRecord;

/// Where an attribute is looked up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Span,
    Resource,
    /// `.foo`: span attributes first, then resource attributes.
    Any,
}

/// What a condition reads.
#[derive(Clone, Debug, PartialEq)]
pub enum Field {
    Attr(Scope, String),
    Name,
    Status,
    StatusMessage,
    Kind,
    Duration,
    RootName,
    RootServiceName,
    TraceDuration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Re,
    NotRe,
}

/// A literal of the query, typed.
#[derive(Clone, Debug)]
pub enum Lit {
    Str(String),
    Int(i64),
    Float(f64),
    /// Nanoseconds.
    Duration(i64),
    Bool(bool),
    Nil,
    /// `error`, `ok`, `unset`: the OTLP status code (2, 1, 0).
    Status(i32),
    /// `unspecified`, `internal`, `server`, `client`, `producer`, `consumer`: OTLP kind.
    Kind(i32),
    Regex(Regex),
}

/// A boolean expression over one span (and its trace, for trace intrinsics).
#[derive(Clone, Debug)]
pub enum Cond {
    True,
    False,
    Cmp(Field, Op, Lit),
    /// A bare field: true when the value is the boolean `true`.
    IsTrue(Field),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
}

/// Facts about the span's trace that trace intrinsics read.
#[derive(Clone, Debug, Default)]
pub struct TraceFacts {
    pub root_name: Option<String>,
    pub root_service: Option<String>,
    pub duration_ns: i64,
}

/// OTLP status code of a status keyword.
pub fn status_code(word: &str) -> Option<i32> {
    match word {
        "unset" => Some(0),
        "ok" => Some(1),
        "error" => Some(2),
        _ => None,
    }
}

/// Keyword of an OTLP status code.
pub fn status_word(code: i32) -> &'static str {
    match code {
        1 => "ok",
        2 => "error",
        _ => "unset",
    }
}

/// OTLP kind number of a kind keyword.
pub fn kind_code(word: &str) -> Option<i32> {
    match word {
        "unspecified" => Some(0),
        "internal" => Some(1),
        "server" => Some(2),
        "client" => Some(3),
        "producer" => Some(4),
        "consumer" => Some(5),
        _ => None,
    }
}

/// Keyword of an OTLP kind number.
pub fn kind_word(code: i32) -> &'static str {
    match code {
        1 => "internal",
        2 => "server",
        3 => "client",
        4 => "producer",
        5 => "consumer",
        _ => "unspecified",
    }
}

/// Parses an intrinsic name (`name`, `span:name`, `trace:rootService`, ...).
pub fn intrinsic(name: &str) -> Option<Field> {
    Some(match name {
        "name" | "span:name" => Field::Name,
        "status" | "span:status" => Field::Status,
        "statusMessage" | "span:statusMessage" => Field::StatusMessage,
        "kind" | "span:kind" => Field::Kind,
        "duration" | "span:duration" => Field::Duration,
        "rootName" | "trace:rootName" => Field::RootName,
        "rootServiceName" | "trace:rootService" => Field::RootServiceName,
        "traceDuration" | "trace:duration" => Field::TraceDuration,
        _ => return None,
    })
}

/// Parses a TraceQL identifier (as used by the v2 tag values API and in queries).
pub fn parse_field(s: &str) -> Result<Field, String> {
    let mut p = Parser::new(s);
    let f = p.field()?;
    p.skip_ws();
    if p.pos < p.src.len() {
        return Err(format!("unexpected {:?} after the identifier", p.rest()));
    }
    Ok(f)
}

/// Parses a query; `{}` and an empty query match every span.
pub fn parse(query: &str) -> Result<Cond, String> {
    let mut p = Parser::new(query);
    p.skip_ws();
    if p.pos == p.src.len() {
        return Ok(Cond::True);
    }
    p.expect("{")?;
    p.skip_ws();
    let cond = if p.peek() == Some(b'}') {
        Cond::True
    } else {
        p.or()?
    };
    p.expect("}")?;
    p.skip_ws();
    if p.pos < p.src.len() {
        return Err(format!(
            "only one spanset filter {{ ... }} is supported; unexpected {:?}",
            p.rest()
        ));
    }
    Ok(cond)
}

struct Parser<'a> {
    src: &'a [u8],
    text: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Parser {
            src: text.as_bytes(),
            text,
            pos: 0,
        }
    }

    fn rest(&self) -> &'a str {
        let r = &self.text[self.pos..];
        match r.char_indices().nth(20) {
            Some((i, _)) => &r[..i],
            None => r,
        }
    }

    fn skip_ws(&mut self) {
        while self.pos < self.src.len() && self.src[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn eat(&mut self, s: &str) -> bool {
        self.skip_ws();
        if self.text[self.pos..].starts_with(s) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, s: &str) -> Result<(), String> {
        if self.eat(s) {
            Ok(())
        } else if self.pos >= self.src.len() {
            Err(format!("expected {s:?} at the end of the query"))
        } else {
            Err(format!("expected {s:?} at {:?}", self.rest()))
        }
    }

    fn or(&mut self) -> Result<Cond, String> {
        let mut c = self.and()?;
        while self.eat("||") {
            c = Cond::Or(Box::new(c), Box::new(self.and()?));
        }
        Ok(c)
    }

    fn and(&mut self) -> Result<Cond, String> {
        let mut c = self.primary()?;
        while self.eat("&&") {
            c = Cond::And(Box::new(c), Box::new(self.primary()?));
        }
        Ok(c)
    }

    fn primary(&mut self) -> Result<Cond, String> {
        self.skip_ws();
        if self.eat("(") {
            let c = self.or()?;
            self.expect(")")?;
            return Ok(c);
        }
        let start = self.pos;
        let word = self.word();
        match word {
            "true" => return Ok(Cond::True),
            "false" => return Ok(Cond::False),
            _ => self.pos = start,
        }
        let field = self.field()?;
        self.skip_ws();
        let op = if self.eat("!=") {
            Op::Ne
        } else if self.eat("!~") {
            Op::NotRe
        } else if self.eat("=~") {
            Op::Re
        } else if self.eat(">=") {
            Op::Ge
        } else if self.eat("<=") {
            Op::Le
        } else if self.eat("=") {
            Op::Eq
        } else if self.eat(">") {
            Op::Gt
        } else if self.eat("<") {
            Op::Lt
        } else {
            return Ok(Cond::IsTrue(field));
        };
        let lit = self.literal()?;
        let lit = match (op, lit) {
            (Op::Re | Op::NotRe, Lit::Str(s)) => Lit::Regex(
                Regex::new(&format!("^(?:{s})$"))
                    .map_err(|e| format!("invalid regex {s:?}: {e}"))?,
            ),
            (Op::Re | Op::NotRe, _) => return Err("=~ and !~ need a string".into()),
            (_, l) => l,
        };
        Ok(Cond::Cmp(field, op, lit))
    }

    /// Letters, digits and `_ : -` (an identifier or keyword).
    fn word(&mut self) -> &'a str {
        let start = self.pos;
        while self.pos < self.src.len()
            && (self.src[self.pos].is_ascii_alphanumeric() || b"_:-".contains(&self.src[self.pos]))
        {
            self.pos += 1;
        }
        &self.text[start..self.pos]
    }

    /// An attribute name after a scope: dotted segments, or one quoted string.
    fn attr_name(&mut self) -> Result<String, String> {
        if self.peek() == Some(b'"') {
            return self.string();
        }
        let start = self.pos;
        while self.pos < self.src.len()
            && (self.src[self.pos].is_ascii_alphanumeric()
                || b"_.-/:".contains(&self.src[self.pos]))
        {
            self.pos += 1;
        }
        if start == self.pos {
            return Err(format!("expected an attribute name at {:?}", self.rest()));
        }
        Ok(self.text[start..self.pos].to_string())
    }

    fn field(&mut self) -> Result<Field, String> {
        self.skip_ws();
        if self.peek() == Some(b'.') {
            self.pos += 1;
            return Ok(Field::Attr(Scope::Any, self.attr_name()?));
        }
        let start = self.pos;
        for (prefix, scope) in [("span.", Scope::Span), ("resource.", Scope::Resource)] {
            if self.text[self.pos..].starts_with(prefix) {
                self.pos += prefix.len();
                return Ok(Field::Attr(scope, self.attr_name()?));
            }
        }
        let w = self.word();
        if let Some(f) = intrinsic(w) {
            return Ok(f);
        }
        self.pos = start;
        if w.is_empty() {
            Err(format!("expected a field at {:?}", self.rest()))
        } else {
            Err(format!(
                "unknown or unsupported field {w:?} (use span.<attr>, resource.<attr>, .<attr> or an intrinsic)"
            ))
        }
    }

    fn string(&mut self) -> Result<String, String> {
        let quote = self.peek().ok_or("expected a string")?;
        self.pos += 1;
        let mut out = String::new();
        let mut chars = self.text[self.pos..].char_indices();
        while let Some((i, c)) = chars.next() {
            if c as u32 == u32::from(quote) {
                self.pos += i + 1;
                return Ok(out);
            }
            if c == '\\' && quote == b'"' {
                match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, 't')) => out.push('\t'),
                    Some((_, e)) => out.push(e),
                    None => break,
                }
            } else {
                out.push(c);
            }
        }
        Err("unterminated string".into())
    }

    fn literal(&mut self) -> Result<Lit, String> {
        self.skip_ws();
        match self.peek() {
            Some(b'"' | b'`') => return Ok(Lit::Str(self.string()?)),
            None => return Err("expected a value at the end of the query".into()),
            _ => {}
        }
        let start = self.pos;
        while self.pos < self.src.len()
            && (self.src[self.pos].is_ascii_alphanumeric() || b"_.-+".contains(&self.src[self.pos]))
        {
            self.pos += 1;
        }
        let tok = &self.text[start..self.pos];
        if tok.is_empty() {
            return Err(format!("expected a value at {:?}", self.rest()));
        }
        if let Ok(i) = tok.parse::<i64>() {
            return Ok(Lit::Int(i));
        }
        if let Ok(f) = tok.parse::<f64>() {
            return Ok(Lit::Float(f));
        }
        if let Some(ns) = parse_go_duration_ns(tok) {
            return Ok(Lit::Duration(ns));
        }
        Ok(match tok {
            "true" => Lit::Bool(true),
            "false" => Lit::Bool(false),
            "nil" => Lit::Nil,
            w => match (status_code(w), kind_code(w)) {
                (Some(c), _) => Lit::Status(c),
                (_, Some(k)) => Lit::Kind(k),
                _ => return Err(format!("invalid value {w:?} (strings need quotes)")),
            },
        })
    }
}

/// A Go duration (`300ms`, `1.5s`, `2h45m`, `10us`, `5ns`) in nanoseconds.
pub fn parse_go_duration_ns(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest.is_empty() {
        return None;
    }
    if rest == "0" {
        return Some(0);
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if n == 0 {
            return None;
        }
        let v: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[u..];
        total += v * mult;
    }
    if !total.is_finite() || total > i64::MAX as f64 {
        return None;
    }
    let ns = total.round() as i64;
    Some(if neg { -ns } else { ns })
}

/// The value of an attribute of `span` in `scope`.
pub fn attr<'s>(span: &'s SpanRecord, scope: Scope, name: &str) -> Option<&'s Value> {
    let find = |list: &'s [(String, Value)]| list.iter().rev().find(|(k, _)| k == name);
    match scope {
        Scope::Span => find(span.attributes.as_slice()),
        Scope::Resource => find(span.resource.as_slice()),
        Scope::Any => find(span.attributes.as_slice()).or_else(|| find(span.resource.as_slice())),
    }
    .map(|(_, v)| v)
}

/// The value a field has on a span, as a literal for comparison.
enum Val<'s> {
    Json(&'s Value),
    Str(&'s str),
    Dur(i64),
    Status(i32),
    Kind(i32),
    Missing,
}

fn field_value<'s>(f: &Field, s: &'s SpanRecord, t: &'s TraceFacts) -> Val<'s> {
    match f {
        Field::Attr(scope, name) => attr(s, *scope, name).map_or(Val::Missing, Val::Json),
        Field::Name => Val::Str(&s.name),
        Field::Status => Val::Status(s.status_code),
        Field::StatusMessage => Val::Str(&s.status_message),
        Field::Kind => Val::Kind(s.kind),
        Field::Duration => Val::Dur(s.end_time_ns.saturating_sub(s.start_time_ns)),
        Field::RootName => t.root_name.as_deref().map_or(Val::Missing, Val::Str),
        Field::RootServiceName => t.root_service.as_deref().map_or(Val::Missing, Val::Str),
        Field::TraceDuration => Val::Dur(t.duration_ns),
    }
}

fn ord<T: PartialOrd>(op: Op, a: T, b: T) -> bool {
    match op {
        Op::Eq => a == b,
        Op::Ne => a != b,
        Op::Gt => a > b,
        Op::Ge => a >= b,
        Op::Lt => a < b,
        Op::Le => a <= b,
        Op::Re | Op::NotRe => false,
    }
}

fn compare(v: Val<'_>, op: Op, lit: &Lit) -> bool {
    if let Lit::Nil = lit {
        let missing = matches!(v, Val::Missing | Val::Json(Value::Null));
        return match op {
            Op::Eq => missing,
            Op::Ne => !missing,
            _ => false,
        };
    }
    let text: Option<&str> = match &v {
        Val::Str(s) => Some(s),
        Val::Json(Value::String(s)) => Some(s),
        _ => None,
    };
    if let Lit::Regex(re) = lit {
        return match text {
            Some(s) => re.is_match(s) == (op == Op::Re),
            None => false,
        };
    }
    match (v, lit) {
        (Val::Str(s), Lit::Str(l)) => ord(op, s, l.as_str()),
        (Val::Json(Value::String(s)), Lit::Str(l)) => ord(op, s.as_str(), l.as_str()),
        (Val::Json(Value::Number(n)), Lit::Int(l)) => match n.as_i64() {
            Some(i) => ord(op, i, *l),
            None => n.as_f64().is_some_and(|f| ord(op, f, *l as f64)),
        },
        (Val::Json(Value::Number(n)), Lit::Float(l)) => n.as_f64().is_some_and(|f| ord(op, f, *l)),
        (Val::Json(Value::Number(n)), Lit::Duration(l)) => {
            n.as_i64().is_some_and(|i| ord(op, i, *l))
        }
        (Val::Json(Value::Bool(b)), Lit::Bool(l)) => matches!(op, Op::Eq | Op::Ne) && ord(op, b, l),
        (Val::Dur(d), Lit::Duration(l)) => ord(op, d, *l),
        // `duration > 0` and `duration > 5` (seconds are not implied: plain numbers are ns)
        (Val::Dur(d), Lit::Int(l)) => ord(op, d, *l),
        (Val::Status(c), Lit::Status(l)) => matches!(op, Op::Eq | Op::Ne) && ord(op, c, *l),
        (Val::Kind(c), Lit::Kind(l)) => matches!(op, Op::Eq | Op::Ne) && ord(op, c, *l),
        // `!=` between different types is true, as in TraceQL
        (Val::Missing, _) => false,
        (_, _) => op == Op::Ne,
    }
}

impl Cond {
    /// Whether `span` (of a trace described by `trace`) satisfies the condition.
    pub fn matches(&self, span: &SpanRecord, trace: &TraceFacts) -> bool {
        match self {
            Cond::True => true,
            Cond::False => false,
            Cond::Cmp(f, op, lit) => compare(field_value(f, span, trace), *op, lit),
            Cond::IsTrue(f) => matches!(field_value(f, span, trace), Val::Json(Value::Bool(true))),
            Cond::And(a, b) => a.matches(span, trace) && b.matches(span, trace),
            Cond::Or(a, b) => a.matches(span, trace) || b.matches(span, trace),
        }
    }

    /// Attribute fields the condition reads, in query order (shown in span sets).
    pub fn attributes(&self) -> Vec<(Scope, String)> {
        let mut out = Vec::new();
        self.collect_attrs(&mut out);
        out
    }

    fn collect_attrs(&self, out: &mut Vec<(Scope, String)>) {
        match self {
            Cond::Cmp(Field::Attr(s, n), _, _) | Cond::IsTrue(Field::Attr(s, n))
                if !out.iter().any(|(os, on)| os == s && on == n) =>
            {
                out.push((*s, n.clone()));
            }
            Cond::And(a, b) | Cond::Or(a, b) => {
                a.collect_attrs(out);
                b.collect_attrs(out);
            }
            _ => {}
        }
    }

    /// True when the condition reads trace-level intrinsics.
    pub fn uses_trace_facts(&self) -> bool {
        match self {
            Cond::Cmp(f, _, _) | Cond::IsTrue(f) => matches!(
                f,
                Field::RootName | Field::RootServiceName | Field::TraceDuration
            ),
            Cond::And(a, b) | Cond::Or(a, b) => a.uses_trace_facts() || b.uses_trace_facts(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn span() -> SpanRecord {
        SpanRecord {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            parent_span_id: vec![],
            trace_state: String::new(),
            name: "GET /".into(),
            kind: 2,
            start_time_ns: 1_000,
            end_time_ns: 1_000 + 150_000_000,
            attributes: vec![
                ("http.status_code".into(), json!(503)),
                ("retry".into(), json!(true)),
                ("ratio".into(), json!(0.5)),
            ],
            events: Value::Null,
            links: Value::Null,
            status_code: 2,
            status_message: "upstream".into(),
            resource: vec![("service.name".into(), json!("api"))],
            scope_name: String::new(),
            scope_version: String::new(),
        }
    }

    fn m(q: &str) -> bool {
        let facts = TraceFacts {
            root_name: Some("GET /".into()),
            root_service: Some("api".into()),
            duration_ns: 200_000_000,
        };
        parse(q).unwrap().matches(&span(), &facts)
    }

    #[test]
    fn grafana_builder_queries() {
        assert!(m(
            r#"{ resource.service.name = "api" && span.http.status_code >= 500 && duration > 100ms && name = "GET /" }"#
        ));
        assert!(!m(
            r#"{ resource.service.name = "web" && span.http.status_code >= 500 }"#
        ));
        assert!(!m(r#"{ duration > 1s }"#));
        assert!(
            m(r#"{ .service.name = "api" }"#),
            "unscoped falls back to resource"
        );
        assert!(!m(r#"{ span.service.name = "api" }"#));
        assert!(m(r#"{ status = error && kind = server }"#));
        assert!(!m(r#"{ status = ok }"#));
        assert!(m(r#"{ .service.name =~ "a.*" && name !~ "POST.*" }"#));
        assert!(m(r#"{ span.retry }"#));
        assert!(m(r#"{ span.ratio < 1.0 && span.missing = nil }"#));
        assert!(m(
            r#"{ rootServiceName = "api" && traceDuration >= 200ms }"#
        ));
        assert!(m(
            r#"{ name = "x" || (status = error && statusMessage = `upstream`) }"#
        ));
        assert!(m("{}"));
        assert!(m(""));
        assert!(m("{ true }"));
        assert!(!m("{ false }"));
        assert!(m(r#"{ span.http.status_code != "503" }"#), "types differ");
    }

    #[test]
    fn rejects_what_it_does_not_support() {
        for q in [
            r#"{ .a = "b" } && { .c = "d" }"#,
            r#"{ .a = "b" } | count() > 1"#,
            r#"{ .a = }"#,
            r#"{ foo = "b" }"#,
            r#"{ .a = "b""#,
            r#"{ .a =~ "(" }"#,
            r#"{ .a = bare }"#,
        ] {
            assert!(parse(q).is_err(), "{q}");
        }
    }

    #[test]
    fn fields_and_durations() {
        assert_eq!(
            parse_field("resource.service.name").unwrap(),
            Field::Attr(Scope::Resource, "service.name".into())
        );
        assert_eq!(
            parse_field(".http.method").unwrap(),
            Field::Attr(Scope::Any, "http.method".into())
        );
        assert_eq!(parse_field("span:status").unwrap(), Field::Status);
        assert!(parse_field("nope").is_err());
        assert_eq!(parse_go_duration_ns("1.5s"), Some(1_500_000_000));
        assert_eq!(parse_go_duration_ns("2h45m"), Some(9_900_000_000_000));
        assert_eq!(parse_go_duration_ns("100ms"), Some(100_000_000));
        assert_eq!(parse_go_duration_ns("10"), None);
        assert_eq!(parse_go_duration_ns("5x"), None);
        let c = parse(r#"{ span.a = 1 && resource.b = "x" || span.a > 2 }"#).unwrap();
        assert_eq!(
            c.attributes(),
            vec![(Scope::Span, "a".into()), (Scope::Resource, "b".into())]
        );
    }
}
