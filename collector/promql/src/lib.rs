//! Sightline's PromQL engine, computing what Prometheus 2.x computes.
//!
//! Data flow: [`instant_query`] / [`range_query`] parse the expression with
//! `promql-parser` and check it against the Prometheus 2.x function set
//! ([`plan`]), work out which time range every selector needs and load it once
//! through the [`Queryable`] seam ([`plan::prefetch`]), then evaluate the tree at every
//! step ([`eval`]), with functions ([`functions`], [`range_functions`]),
//! aggregations ([`aggregation`]) and binary operators ([`binary`]) following
//! Prometheus' `promql/engine.go` and `functions.go` (2.42). The result is a
//! [`QueryResult`] that [`QueryResult::to_prometheus_json`] turns into the `data`
//! object of Prometheus' HTTP API; [`Error::prometheus_error`] gives the API's
//! `errorType` and HTTP status.
//!
//! Storage is reached only through [`Queryable`]; [`MemQueryable`] keeps series in
//! memory (tests, small embedded uses). The collector implements the trait over its
//! store.

pub mod aggregation;
pub mod binary;
pub mod eval;
pub mod functions;
pub mod json;
pub mod plan;
pub mod queryable;
pub mod range_functions;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use queryable::{MemQueryable, Queryable};
pub use sightline_store::{Label, Labels, MatchOp, Matcher, Sample, Series, METRIC_NAME};

/// Bit pattern of Prometheus' staleness marker (a NaN that ends a series' lookback).
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// True when `v` is a Prometheus staleness marker.
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// Errors of a query, classified the way Prometheus' HTTP API classifies them.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The expression does not parse or is not valid for this query type.
    #[error("{0}")]
    BadData(String),
    /// Evaluation failed (matching errors, invalid arguments, duplicate series...).
    #[error("{0}")]
    Execution(String),
    /// More samples than [`QueryOptions::max_samples`] would be held at once.
    #[error("query processing would load too many samples into memory in query execution")]
    TooManySamples,
    /// A selector matched more series than [`QueryOptions::max_series`].
    #[error("query selects more than {0} series")]
    TooManySeries(usize),
    /// [`QueryOptions::timeout`] passed.
    #[error("query timed out in {0}")]
    Timeout(&'static str),
    /// The data source failed.
    #[error("storage error: {0}")]
    Storage(String),
}

impl Error {
    /// `(errorType, HTTP status)` as Prometheus' API answers: `bad_data` 400,
    /// `execution` 422 (Prometheus also reports too many samples as `execution`),
    /// `timeout` 503, `internal` 500 for storage failures.
    pub fn prometheus_error(&self) -> (&'static str, u16) {
        match self {
            Error::BadData(_) => ("bad_data", 400),
            Error::Execution(_) | Error::TooManySamples | Error::TooManySeries(_) => {
                ("execution", 422)
            }
            Error::Timeout(_) => ("timeout", 503),
            Error::Storage(_) => ("internal", 500),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Limits and defaults of one query.
#[derive(Clone, Debug)]
pub struct QueryOptions {
    /// How far back an instant selector looks for a sample (Prometheus `--query.lookback-delta`, 5 m).
    pub lookback_delta: Duration,
    /// Most samples held in memory at once (Prometheus `--query.max-samples`, 50,000,000).
    pub max_samples: usize,
    /// Checked between steps; exceeding it is [`Error::Timeout`] (Prometheus default 2 m).
    pub timeout: Duration,
    /// Most series one selector may return (`0` = unlimited).
    pub max_series: usize,
    /// Step of a subquery without an explicit step (Prometheus' global
    /// `evaluation_interval`, 1 m).
    pub default_subquery_step: Duration,
}

impl Default for QueryOptions {
    fn default() -> Self {
        QueryOptions {
            lookback_delta: Duration::from_secs(300),
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
            max_series: 0,
            default_subquery_step: Duration::from_secs(60),
        }
    }
}

/// One series of an instant vector: labels, value at the evaluation time.
#[derive(Clone, Debug, PartialEq)]
pub struct VectorSample {
    pub labels: Labels,
    pub timestamp_ms: i64,
    pub value: f64,
}

/// What a query returns, as Prometheus' `resultType`.
#[derive(Clone, Debug, PartialEq)]
pub enum QueryResult {
    Vector(Vec<VectorSample>),
    Matrix(Vec<Series>),
    Scalar { timestamp_ms: i64, value: f64 },
    String { timestamp_ms: i64, value: String },
}

static QUERIES: AtomicU64 = AtomicU64::new(0);
static ERRORS: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];
pub(crate) static SAMPLES_LOADED: AtomicU64 = AtomicU64::new(0);

/// Process-wide counters, exported by the collector as
/// `sightline_promql_queries_total`, `sightline_promql_query_errors_total{reason}`
/// and `sightline_promql_samples_loaded_total`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub queries_total: u64,
    /// By Prometheus `errorType`: bad_data, execution, timeout, internal.
    pub errors_bad_data_total: u64,
    pub errors_execution_total: u64,
    pub errors_timeout_total: u64,
    pub errors_internal_total: u64,
    /// Samples read from the [`Queryable`].
    pub samples_loaded_total: u64,
}

/// Current values of the engine's counters.
pub fn stats() -> EngineStats {
    EngineStats {
        queries_total: QUERIES.load(Ordering::Relaxed),
        errors_bad_data_total: ERRORS[0].load(Ordering::Relaxed),
        errors_execution_total: ERRORS[1].load(Ordering::Relaxed),
        errors_timeout_total: ERRORS[2].load(Ordering::Relaxed),
        errors_internal_total: ERRORS[3].load(Ordering::Relaxed),
        samples_loaded_total: SAMPLES_LOADED.load(Ordering::Relaxed),
    }
}

fn count<T>(r: Result<T>) -> Result<T> {
    QUERIES.fetch_add(1, Ordering::Relaxed);
    if let Err(e) = &r {
        let i = match e.prometheus_error().0 {
            "bad_data" => 0,
            "execution" => 1,
            "timeout" => 2,
            _ => 3,
        };
        ERRORS[i].fetch_add(1, Ordering::Relaxed);
    }
    r
}

/// Evaluates `expr` at `time_ms` (Prometheus `/api/v1/query`).
pub fn instant_query(
    q: &dyn Queryable,
    expr: &str,
    time_ms: i64,
    opts: &QueryOptions,
) -> Result<QueryResult> {
    count(plan::parse(expr).and_then(|ast| eval::run_instant(q, &ast, time_ms, opts)))
}

/// Evaluates `expr` at `start_ms`, `start_ms + step_ms`, ... up to `end_ms`
/// (Prometheus `/api/v1/query_range`); the result is always a matrix.
pub fn range_query(
    q: &dyn Queryable,
    expr: &str,
    start_ms: i64,
    end_ms: i64,
    step_ms: i64,
    opts: &QueryOptions,
) -> Result<QueryResult> {
    count(range_query_inner(q, expr, start_ms, end_ms, step_ms, opts))
}

fn range_query_inner(
    q: &dyn Queryable,
    expr: &str,
    start_ms: i64,
    end_ms: i64,
    step_ms: i64,
    opts: &QueryOptions,
) -> Result<QueryResult> {
    if step_ms <= 0 {
        return Err(Error::BadData(
            "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
        ));
    }
    if end_ms < start_ms {
        return Err(Error::BadData(
            "end timestamp must not be before start time".into(),
        ));
    }
    if (end_ms - start_ms) / step_ms > 11_000 {
        return Err(Error::BadData(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)".into(),
        ));
    }
    let ast = plan::parse(expr)?;
    eval::run_range(q, &ast, start_ms, end_ms, step_ms, opts)
}
