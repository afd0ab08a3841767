//! The LogQL engine over a [`LogSource`]: selects the records of a stream selector,
//! runs the pipeline and returns log entries (log queries) or evaluates a metric
//! query; also lists the streams behind `/series`, `/labels` and `/index/stats`.
//!
//! Every record gets the stream labels `translate::log_stream_labels` derives from
//! its resource plus structured metadata: `pattern` (from the record attribute
//! [`PATTERN_ATTRIBUTE`], the id of the log pattern the agent mined) and
//! `detected_level` (from the OTLP severity). Work is bounded by [`Limits`]:
//! records scanned and series per query; exceeding one is an [`Error::Limit`].

use std::collections::{BTreeMap, VecDeque};

use sightline_store::{LogRecord, Matcher};

use super::ast::{LogExpr, MetricExpr, RangeFn};
use super::metric::{self, EvalLimits, SampleSets, Steps, Value};
use super::pipeline::{self, Category, LabelSet, ERROR_DETAILS_LABEL, ERROR_LABEL};
use super::{Error, Result};
use crate::translate::log_stream_labels;

/// Record attribute carrying the id of the mined log pattern; exposed as the
/// structured-metadata label `pattern`.
pub const PATTERN_ATTRIBUTE: &str = "sightline.log.pattern";
/// Label name of [`PATTERN_ATTRIBUTE`].
pub const PATTERN_LABEL: &str = "pattern";

/// Where records come from: the store in production, a vector in tests.
pub trait LogSource {
    /// Feeds every record with a timestamp in `[start_ns, end_ns]` to `f`, oldest
    /// first, until `f` returns false.
    fn scan(&self, start_ns: i64, end_ns: i64, f: &mut dyn FnMut(LogRecord) -> bool) -> Result<()>;
}

/// Per-query bounds.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Records read from the source (before filtering).
    pub max_scanned: usize,
    /// Distinct series of a metric query (before and after aggregation).
    pub max_series: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_scanned: 2_000_000,
            max_series: 10_000,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Backward,
}

/// A log line after the pipeline.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub ts: i64,
    pub line: String,
    pub labels: LabelSet,
}

/// Counts records read and stops the scan past the limit.
struct Scanner<'a> {
    src: &'a dyn LogSource,
    max: usize,
    scanned: usize,
}

impl Scanner<'_> {
    fn scan(&mut self, start: i64, end: i64, f: &mut dyn FnMut(LogRecord) -> bool) -> Result<()> {
        let mut over = false;
        let max = self.max;
        let scanned = &mut self.scanned;
        self.src.scan(start, end, &mut |r| {
            *scanned += 1;
            if *scanned > max {
                over = true;
                return false;
            }
            f(r)
        })?;
        if over {
            return Err(Error::Limit(format!(
                "the query would read more than {max} log records; narrow the time range or the \
                 stream selector"
            )));
        }
        Ok(())
    }
}

/// `detected_level` of a record from its OTLP severity, as Loki 3 names levels.
fn detected_level(r: &LogRecord) -> Option<String> {
    let by_number = match r.severity_number {
        1..=4 => Some("trace"),
        5..=8 => Some("debug"),
        9..=12 => Some("info"),
        13..=16 => Some("warn"),
        17..=20 => Some("error"),
        21..=24 => Some("fatal"),
        _ => None,
    };
    if let Some(l) = by_number {
        return Some(l.to_string());
    }
    let t = r.severity_text.trim().to_ascii_lowercase();
    Some(match t.as_str() {
        "" => return None,
        "warning" => "warn".to_string(),
        "err" => "error".to_string(),
        "crit" | "critical" | "emerg" | "alert" | "panic" => "critical".to_string(),
        _ => t,
    })
}

/// Stream labels of a record if its stream matches `matchers`, plus its metadata.
pub fn entry_labels(r: &LogRecord, matchers: &[Matcher]) -> Option<LabelSet> {
    let stream = log_stream_labels(&r.resource);
    if !matchers.iter().all(|m| m.matches(&stream)) {
        return None;
    }
    let mut set = LabelSet::new(stream.iter().map(|l| (l.name.clone(), l.value.clone())));
    if let Some((_, v)) = r
        .attributes
        .iter()
        .rev()
        .find(|(k, _)| k == PATTERN_ATTRIBUTE)
    {
        let v = match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if !v.is_empty() {
            set.set(PATTERN_LABEL, v, Category::Meta);
        }
    }
    if let Some(level) = detected_level(r) {
        set.set("detected_level", level, Category::Meta);
    }
    Some(set)
}

/// Runs a log query's selector and pipeline over one record.
fn run_log(expr: &LogExpr, r: LogRecord) -> Option<Entry> {
    let mut labels = entry_labels(&r, &expr.matchers)?;
    let mut line = r.body;
    pipeline::process(&expr.stages, r.timestamp_ns, &mut line, &mut labels).then_some(Entry {
        ts: r.timestamp_ns,
        line,
        labels,
    })
}

/// First backward window.
const FIRST_WINDOW_NS: i64 = 60 * 1_000_000_000;

/// Entries of a log query in `[start, end]`: the oldest `limit` (forward) or the
/// newest `limit` (backward), oldest first either way.
pub fn select_entries(
    src: &dyn LogSource,
    expr: &LogExpr,
    start: i64,
    end: i64,
    limit: usize,
    direction: Direction,
    limits: Limits,
) -> Result<Vec<Entry>> {
    let mut sc = Scanner {
        src,
        max: limits.max_scanned,
        scanned: 0,
    };
    if limit == 0 {
        return Ok(Vec::new());
    }
    match direction {
        Direction::Forward => {
            let mut out = Vec::new();
            sc.scan(start, end, &mut |r| {
                if let Some(e) = run_log(expr, r) {
                    out.push(e);
                }
                out.len() < limit
            })?;
            Ok(out)
        }
        Direction::Backward => {
            // scan growing windows back from `end`, keeping the newest entries of
            // each (the windows already scanned are newer still)
            let mut out: VecDeque<Entry> = VecDeque::new();
            let mut hi = end;
            let mut width = FIRST_WINDOW_NS;
            loop {
                let lo = hi.saturating_sub(width - 1).max(start);
                let need = limit - out.len();
                let mut window: VecDeque<Entry> = VecDeque::new();
                sc.scan(lo, hi, &mut |r| {
                    if let Some(e) = run_log(expr, r) {
                        window.push_back(e);
                        if window.len() > need {
                            window.pop_front();
                        }
                    }
                    true
                })?;
                for e in window.into_iter().rev() {
                    out.push_front(e);
                }
                if out.len() >= limit || lo <= start {
                    break;
                }
                hi = lo - 1;
                width = width.saturating_mul(4);
            }
            Ok(out.into())
        }
    }
}

/// Samples of one range aggregation in `[from, to]`.
fn fetch_samples(
    sc: &mut Scanner<'_>,
    expr: &MetricExpr,
    from: i64,
    to: i64,
    max_series: usize,
) -> Result<SampleSets> {
    let MetricExpr::Range {
        func,
        log,
        unwrap,
        grouping,
        ..
    } = expr
    else {
        return Ok(SampleSets::new());
    };
    let mut sets = SampleSets::new();
    let mut failure: Option<Error> = None;
    sc.scan(from, to, &mut |r| {
        let Some(mut e) = run_log(log, r) else {
            return true;
        };
        let mut value = match func {
            RangeFn::BytesOverTime | RangeFn::BytesRate => e.line.len() as f64,
            _ => 1.0,
        };
        if let Some(u) = unwrap {
            match e.labels.get(&u.label).map(|v| pipeline::convert(v, u.conv)) {
                Some(Ok(v)) => value = v,
                Some(Err(msg)) => e.labels.set_err("SampleExtractionErr", msg),
                None => e.labels.set_err(
                    "SampleExtractionErr",
                    format!("label {:?} not found", u.label),
                ),
            }
            e.labels.remove(&u.label);
            for f in &u.post_filters {
                if !pipeline::label_filter(f, &mut e.labels) {
                    return true;
                }
            }
        }
        if let Some(err) = e.labels.get(ERROR_LABEL) {
            let details = e.labels.get(ERROR_DETAILS_LABEL).unwrap_or("");
            let mut stream = e.labels.clone();
            stream.remove(ERROR_LABEL);
            stream.remove(ERROR_DETAILS_LABEL);
            let series: Vec<String> = stream.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
            failure = Some(Error::Pipeline(format!(
                "pipeline error: '{err}' for series: '{{{}}}' ({details}). Use a label filter to \
                 intentionally skip this error. (e.g | __error__!=\"{err}\"). To skip all errors \
                 use | __error__!=\"\".",
                series.join(", ")
            )));
            return false;
        }
        let mut key = e.labels.to_pairs();
        if let Some(g) = grouping {
            key.retain(|(k, _)| g.labels.contains(k) != g.without);
        }
        if !sets.contains_key(&key) && sets.len() >= max_series {
            failure = Some(Error::Limit(format!(
                "maximum number of series ({max_series}) reached for a single query; use an \
                 aggregation (sum by (...)) or a narrower selector"
            )));
            return false;
        }
        sets.entry(key).or_default().push((e.ts, value));
        true
    })?;
    match failure {
        Some(e) => Err(e),
        None => Ok(sets),
    }
}

/// Evaluates a metric query at `steps`.
pub fn eval_metric(
    src: &dyn LogSource,
    expr: &MetricExpr,
    steps: Steps,
    limits: Limits,
) -> Result<Value> {
    let mut sc = Scanner {
        src,
        max: limits.max_scanned,
        scanned: 0,
    };
    let eval_limits = EvalLimits {
        max_series: limits.max_series,
        max_window_work: (limits.max_scanned as u64).saturating_mul(50),
    };
    metric::eval(expr, steps, eval_limits, &mut |e, from, to| {
        fetch_samples(&mut sc, e, from, to, limits.max_series)
    })
}

/// What `/series`, `/labels` and `/index/stats` need of each stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamStats {
    pub entries: u64,
    pub bytes: u64,
}

/// Streams with records in `[start, end]` that match any of `selectors` (all
/// streams when `selectors` is empty), keyed by their sorted stream labels.
pub fn streams(
    src: &dyn LogSource,
    selectors: &[Vec<Matcher>],
    start: i64,
    end: i64,
    limits: Limits,
) -> Result<BTreeMap<Vec<(String, String)>, StreamStats>> {
    let mut sc = Scanner {
        src,
        max: limits.max_scanned,
        scanned: 0,
    };
    let mut out: BTreeMap<Vec<(String, String)>, StreamStats> = BTreeMap::new();
    sc.scan(start, end, &mut |r| {
        let stream = log_stream_labels(&r.resource);
        let selected = selectors.is_empty()
            || selectors
                .iter()
                .any(|set| set.iter().all(|m| m.matches(&stream)));
        if selected {
            let key: Vec<(String, String)> = stream
                .iter()
                .map(|l| (l.name.clone(), l.value.clone()))
                .collect();
            let s = out.entry(key).or_default();
            s.entries += 1;
            s.bytes += r.body.len() as u64;
        }
        true
    })?;
    Ok(out)
}

#[cfg(test)]
#[path = "query_tests.rs"]
mod tests;
