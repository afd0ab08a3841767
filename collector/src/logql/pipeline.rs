//! Runs the stages of a log query on one entry: line filters, parsers (`json`,
//! `logfmt`, `regexp`), label filters, `line_format`, `label_format`, `drop`,
//! `keep`, `decolorize`.
//!
//! Labels carry their category, as in Loki 3: `Stream` (from the selector's index
//! labels), `Meta` (structured metadata: the mined `pattern`, `detected_level`) and
//! `Parsed` (extracted by a parser or set by `label_format`). A parser never
//! overwrites a stream or metadata label: the extracted one is renamed
//! `<name>_extracted`, like Loki does. Parse failures set `__error__`
//! (`JSONParserErr`, `LogfmtParserErr`, `LabelFilterErr`) and
//! `__error_details__` and keep the line, so `| __error__=""` can filter them.

use std::collections::BTreeMap;

use serde_json::Value;

use super::ast::{
    CmpOp, Conversion, FilterOp, LabelFilter, LabelFmt, LineFilter, NameMatch, Stage,
};
use super::lexer::{parse_bytes, parse_duration_ns};

/// Name of the label a failed stage sets.
pub const ERROR_LABEL: &str = "__error__";
pub const ERROR_DETAILS_LABEL: &str = "__error_details__";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Category {
    Stream,
    Meta,
    Parsed,
}

/// The labels of one entry while it goes through the pipeline.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSet {
    map: BTreeMap<String, (String, Category)>,
}

impl LabelSet {
    pub fn new(stream: impl IntoIterator<Item = (String, String)>) -> Self {
        LabelSet {
            map: stream
                .into_iter()
                .map(|(k, v)| (k, (v, Category::Stream)))
                .collect(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(|(v, _)| v.as_str())
    }

    pub fn has_err(&self) -> bool {
        self.map.contains_key(ERROR_LABEL)
    }

    /// Sets a label in `cat` (or replaces one of any category).
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>, cat: Category) {
        self.map.insert(name.into(), (value.into(), cat));
    }

    /// Adds an extracted label; `name_extracted` when a stream/metadata label has the name.
    fn set_parsed(&mut self, name: String, value: String) {
        let name = match self.map.get(&name) {
            Some((_, Category::Stream | Category::Meta)) => format!("{name}_extracted"),
            _ => name,
        };
        self.map.insert(name, (value, Category::Parsed));
    }

    /// Records the first error of this entry.
    pub fn set_err(&mut self, err: &str, details: impl Into<String>) {
        if !self.has_err() {
            self.set(ERROR_LABEL, err, Category::Parsed);
            self.set(ERROR_DETAILS_LABEL, details, Category::Parsed);
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<(String, Category)> {
        self.map.remove(name)
    }

    /// All labels, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map.iter().map(|(k, (v, _))| (k.as_str(), v.as_str()))
    }

    /// The labels of one category, sorted by name.
    pub fn of(&self, cat: Category) -> impl Iterator<Item = (&str, &str)> {
        self.map
            .iter()
            .filter(move |(_, (_, c))| *c == cat)
            .map(|(k, (v, _))| (k.as_str(), v.as_str()))
    }

    /// All labels as owned pairs (a series / stream key).
    pub fn to_pairs(&self) -> Vec<(String, String)> {
        self.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

/// Runs `stages` on one entry; false when a filter drops it. `line` and `labels`
/// hold the result.
pub fn process(stages: &[Stage], ts_ns: i64, line: &mut String, labels: &mut LabelSet) -> bool {
    for stage in stages {
        match stage {
            Stage::LineFilter(f) => {
                if !line_matches(f, line) {
                    return false;
                }
            }
            Stage::Json(params) => json(line, params, labels),
            Stage::Logfmt => logfmt(line, labels),
            Stage::Regexp(re) => {
                if let Some(caps) = re.captures(line) {
                    for name in re.capture_names().flatten() {
                        if let Some(m) = caps.name(name) {
                            labels.set_parsed(name.to_string(), m.as_str().to_string());
                        }
                    }
                }
            }
            Stage::LineFormat(t) => {
                let new = t.render(|n| labels.get(n), line, ts_ns);
                *line = new;
            }
            Stage::LabelFormat(fmts) => {
                // templates read the labels as they were before this stage, as in Loki
                let before = fmts
                    .iter()
                    .any(|f| matches!(f, LabelFmt::Template { .. }))
                    .then(|| labels.clone());
                for f in fmts {
                    match f {
                        LabelFmt::Rename { dst, src } => {
                            if let Some((v, cat)) = labels.remove(src) {
                                labels.set(dst.clone(), v, cat);
                            }
                        }
                        LabelFmt::Template { dst, tmpl } => {
                            let v = match &before {
                                Some(b) => tmpl.render(|n| b.get(n), line, ts_ns),
                                None => tmpl.render(|n| labels.get(n), line, ts_ns),
                            };
                            let cat = labels.map.get(dst).map_or(Category::Parsed, |(_, c)| *c);
                            labels.set(dst.clone(), v, cat);
                        }
                    }
                }
            }
            Stage::LabelFilter(f) => {
                if !label_filter(f, labels) {
                    return false;
                }
            }
            Stage::Drop(names) => {
                for n in names {
                    if selected(n, labels) {
                        labels.remove(&n.name);
                    }
                }
            }
            Stage::Keep(names) => {
                labels.map.retain(|k, (v, _)| {
                    names.iter().any(|n| {
                        n.name == *k && n.matcher.as_ref().is_none_or(|m| m.matches_value(v))
                    })
                });
            }
            Stage::Decolorize => {
                if line.contains('\x1b') {
                    *line = decolorize(line);
                }
            }
        }
    }
    true
}

fn selected(n: &NameMatch, labels: &LabelSet) -> bool {
    match (labels.get(&n.name), &n.matcher) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(v), Some(m)) => m.matches_value(v),
    }
}

fn line_matches(f: &LineFilter, line: &str) -> bool {
    match f.op {
        FilterOp::Contains => f.needles.iter().any(|n| line.contains(n.as_str())),
        FilterOp::NotContains => !f.needles.iter().any(|n| line.contains(n.as_str())),
        FilterOp::Match => f.regexes.iter().any(|r| r.is_match(line)),
        FilterOp::NotMatch => !f.regexes.iter().any(|r| r.is_match(line)),
    }
}

/// Evaluates a label filter. Numeric filters let entries with an error through
/// (only string matchers may drop them) and drop entries without the label; a
/// value that does not convert sets `LabelFilterErr` and keeps the entry.
pub fn label_filter(f: &LabelFilter, labels: &mut LabelSet) -> bool {
    match f {
        LabelFilter::And(a, b) => label_filter(a, labels) && label_filter(b, labels),
        LabelFilter::Or(a, b) => label_filter(a, labels) || label_filter(b, labels),
        LabelFilter::Str(m) => m.matches_value(labels.get(&m.name).unwrap_or("")),
        LabelFilter::Num {
            name,
            op,
            value,
            conv,
        } => {
            if labels.has_err() {
                return true;
            }
            let Some(v) = labels.get(name) else {
                return false;
            };
            match convert(v, *conv) {
                Ok(x) => compare(*op, x, *value),
                Err(e) => {
                    labels.set_err("LabelFilterErr", e);
                    true
                }
            }
        }
    }
}

fn compare(op: CmpOp, a: f64, b: f64) -> bool {
    op.apply(a, b)
}

/// Reads a label value as a number: plain, Go duration (seconds) or byte size.
pub fn convert(v: &str, conv: Conversion) -> Result<f64, String> {
    let v = v.trim();
    match conv {
        Conversion::Number => v
            .parse::<f64>()
            .map_err(|_| format!("strconv.ParseFloat: parsing {v:?}: invalid syntax")),
        Conversion::Duration => {
            if v == "0" {
                return Ok(0.0);
            }
            let (neg, body) = match v.strip_prefix('-') {
                Some(b) => (true, b),
                None => (false, v.strip_prefix('+').unwrap_or(v)),
            };
            parse_duration_ns(body)
                .map(|ns| if neg { -(ns as f64) } else { ns as f64 } / 1e9)
                .ok_or_else(|| format!("time: invalid duration {v:?}"))
        }
        Conversion::Bytes => parse_bytes(v).ok_or_else(|| format!("invalid byte size {v:?}")),
    }
}

/// Loki's label-name sanitizing of extracted keys: invalid characters become `_`,
/// a leading digit gets a `_` prefix.
fn sanitize(key: &str) -> String {
    let mut s: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

fn json_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some(String::new()),
        Value::Array(_) | Value::Object(_) => None,
    }
}

fn flatten(prefix: &str, obj: &serde_json::Map<String, Value>, labels: &mut LabelSet) {
    for (k, v) in obj {
        let key = if prefix.is_empty() {
            sanitize(k)
        } else {
            format!("{prefix}_{}", sanitize(k))
        };
        match v {
            Value::Object(inner) => flatten(&key, inner, labels),
            // arrays are skipped, as in Loki
            Value::Array(_) => {}
            v => {
                if let Some(text) = json_text(v) {
                    labels.set_parsed(key, text);
                }
            }
        }
    }
}

fn json(line: &str, params: &[(String, Vec<String>)], labels: &mut LabelSet) {
    let v: Value = match serde_json::from_str(line) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => {
            labels.set_err(
                "JSONParserErr",
                "Value looks like object, but can't find closing '}' symbol",
            );
            return;
        }
        Err(e) => {
            labels.set_err("JSONParserErr", e.to_string());
            return;
        }
    };
    if params.is_empty() {
        if let Value::Object(obj) = &v {
            flatten("", obj, labels);
        }
        return;
    }
    for (name, path) in params {
        let mut cur = &v;
        let mut found = true;
        for seg in path {
            match cur.get(seg) {
                Some(next) => cur = next,
                None => {
                    found = false;
                    break;
                }
            }
        }
        let text = if !found {
            String::new()
        } else {
            json_text(cur).unwrap_or_else(|| cur.to_string())
        };
        labels.set_parsed(name.clone(), text);
    }
}

/// Parses `key=value key2="quoted \"value\"" flag` into labels.
fn logfmt(line: &str, labels: &mut LabelSet) {
    let mut pairs = Vec::new();
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i] <= b' ' {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let ks = i;
        while i < b.len() && b[i] > b' ' && b[i] != b'=' && b[i] != b'"' {
            i += 1;
        }
        if i == ks {
            labels.set_err(
                "LogfmtParserErr",
                format!(
                    "logfmt syntax error at pos {}: unexpected '{}'",
                    i + 1,
                    b[i] as char
                ),
            );
            return;
        }
        let key = &line[ks..i];
        if i >= b.len() || b[i] != b'=' {
            if i < b.len() && b[i] == b'"' {
                labels.set_err(
                    "LogfmtParserErr",
                    format!("logfmt syntax error at pos {}: unexpected '\"'", i + 1),
                );
                return;
            }
            pairs.push((key.to_string(), String::new()));
            continue;
        }
        i += 1;
        if i < b.len() && b[i] == b'"' {
            i += 1;
            let mut val = String::new();
            let mut closed = false;
            let mut chars = line[i..].char_indices();
            while let Some((k, c)) = chars.next() {
                match c {
                    '"' => {
                        i += k + 1;
                        closed = true;
                        break;
                    }
                    '\\' => match chars.next() {
                        Some((_, 'n')) => val.push('\n'),
                        Some((_, 't')) => val.push('\t'),
                        Some((_, 'r')) => val.push('\r'),
                        Some((_, c)) => val.push(c),
                        None => break,
                    },
                    c => val.push(c),
                }
            }
            if !closed {
                labels.set_err(
                    "LogfmtParserErr",
                    "logfmt syntax error: unterminated quoted value",
                );
                return;
            }
            pairs.push((key.to_string(), val));
        } else {
            let vs = i;
            while i < b.len() && b[i] > b' ' {
                if b[i] == b'"' || b[i] == b'=' {
                    labels.set_err(
                        "LogfmtParserErr",
                        format!(
                            "logfmt syntax error at pos {}: unexpected '{}'",
                            i + 1,
                            b[i] as char
                        ),
                    );
                    return;
                }
                i += 1;
            }
            pairs.push((key.to_string(), line[vs..i].to_string()));
        }
    }
    for (k, v) in pairs {
        labels.set_parsed(sanitize(&k), v);
    }
}

fn decolorize(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            chars.next();
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
#[path = "pipeline_tests.rs"]
mod tests;
