//! The syntax tree of a LogQL query, produced by `parser.rs` and executed by
//! `pipeline.rs` (log stages) and `metric.rs` (aggregations).

use regex::Regex;
use sightline_store::Matcher;

use super::template::Template;

/// A whole query.
#[derive(Debug, Clone)]
pub enum Expr {
    Log(LogExpr),
    Metric(MetricExpr),
}

/// `{selector} | stage | stage ...`
#[derive(Debug, Clone)]
pub struct LogExpr {
    pub matchers: Vec<Matcher>,
    pub stages: Vec<Stage>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterOp {
    /// `|=`
    Contains,
    /// `!=`
    NotContains,
    /// `|~`
    Match,
    /// `!~`
    NotMatch,
}

/// A line filter; several alternatives come from `|= "a" or "b"`.
#[derive(Debug, Clone)]
pub struct LineFilter {
    pub op: FilterOp,
    pub needles: Vec<String>,
    /// Compiled for `|~` / `!~` (one per needle).
    pub regexes: Vec<Regex>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CmpOp {
    pub fn apply(self, a: f64, b: f64) -> bool {
        match self {
            CmpOp::Eq => a == b,
            CmpOp::Ne => a != b,
            CmpOp::Gt => a > b,
            CmpOp::Ge => a >= b,
            CmpOp::Lt => a < b,
            CmpOp::Le => a <= b,
        }
    }
}

/// How a label value is read as a number in a filter or `unwrap`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conversion {
    Number,
    /// Go duration (`1.5s`, `10ms`), in seconds.
    Duration,
    /// Humanized size (`10KB`), in bytes.
    Bytes,
}

/// `| level="error"`, `| status >= 500`, combined with `and` / `,` / `or`.
#[derive(Debug, Clone)]
pub enum LabelFilter {
    And(Box<LabelFilter>, Box<LabelFilter>),
    Or(Box<LabelFilter>, Box<LabelFilter>),
    /// String matcher (`=`, `!=`, `=~`, `!~`).
    Str(Matcher),
    /// Numeric comparison; `value` is seconds for durations, bytes for sizes.
    Num {
        name: String,
        op: CmpOp,
        value: f64,
        conv: Conversion,
    },
}

/// `| drop a, b="x"` / `| keep a`: a name, optionally only when its value matches.
#[derive(Debug, Clone)]
pub struct NameMatch {
    pub name: String,
    pub matcher: Option<Matcher>,
}

/// `| label_format dst=src` (rename) or `dst="{{.template}}"`.
#[derive(Debug, Clone)]
pub enum LabelFmt {
    Rename { dst: String, src: String },
    Template { dst: String, tmpl: Template },
}

#[derive(Debug, Clone)]
pub enum Stage {
    LineFilter(LineFilter),
    /// `| json`, or `| json a="x.y", b` (only the listed fields).
    Json(Vec<(String, Vec<String>)>),
    Logfmt,
    /// `| regexp "(?P<name>...)"`: named groups become labels.
    Regexp(Regex),
    LineFormat(Template),
    LabelFormat(Vec<LabelFmt>),
    LabelFilter(LabelFilter),
    Drop(Vec<NameMatch>),
    Keep(Vec<NameMatch>),
    Decolorize,
}

/// `| unwrap latency`, `| unwrap duration(took)`, followed by optional label
/// filters (`| __error__=""`).
#[derive(Debug, Clone)]
pub struct Unwrap {
    pub label: String,
    pub conv: Conversion,
    pub post_filters: Vec<LabelFilter>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeFn {
    CountOverTime,
    Rate,
    BytesOverTime,
    BytesRate,
    SumOverTime,
    AvgOverTime,
    MaxOverTime,
    MinOverTime,
    FirstOverTime,
    LastOverTime,
    StddevOverTime,
    StdvarOverTime,
    QuantileOverTime,
    /// `rate` of an unwrapped value: sum per second.
    RateUnwrapped,
    AbsentOverTime,
}

impl RangeFn {
    pub fn needs_unwrap(self) -> bool {
        !matches!(
            self,
            RangeFn::CountOverTime
                | RangeFn::Rate
                | RangeFn::BytesOverTime
                | RangeFn::BytesRate
                | RangeFn::AbsentOverTime
                | RangeFn::RateUnwrapped
        )
    }
}

/// `by (a, b)` or `without (a, b)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grouping {
    pub without: bool,
    pub labels: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VecOp {
    Sum,
    Avg,
    Max,
    Min,
    Count,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    And,
    Or,
    Unless,
}

#[derive(Debug, Clone)]
pub enum MetricExpr {
    Range {
        func: RangeFn,
        log: LogExpr,
        range_ns: i64,
        offset_ns: i64,
        unwrap: Option<Unwrap>,
        /// `quantile_over_time`'s φ.
        param: Option<f64>,
        grouping: Option<Grouping>,
    },
    Vector {
        op: VecOp,
        grouping: Option<Grouping>,
        /// `topk`/`bottomk`'s k.
        param: Option<f64>,
        inner: Box<MetricExpr>,
    },
    Binary {
        op: BinOp,
        /// Comparison returns 0/1 instead of filtering.
        bool_modifier: bool,
        lhs: Box<MetricExpr>,
        rhs: Box<MetricExpr>,
    },
    Number(f64),
    /// `vector(1)`: one series without labels (Grafana's health check sends
    /// `vector(1)+vector(1)`).
    VectorLit(f64),
}
