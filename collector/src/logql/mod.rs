//! LogQL, the Loki query language, over the collector's log records.
//!
//! Data flow: [`parser::parse`] turns a query into an [`ast::Expr`] (lexer in
//! `lexer.rs`). A log query's stream selector is matched against each record's
//! stream labels; matching records run through the [`pipeline`] (line filters,
//! `json`/`logfmt`/`regexp` parsers, label filters, `line_format`, `label_format`,
//! `drop`/`keep`), which yields the final line and labels. [`query`] drives this
//! over a [`query::LogSource`] (the store in production, a vector in tests): log
//! queries return streams, metric queries feed the surviving lines to [`metric`],
//! which computes range aggregations (`count_over_time`, `rate`, `bytes_*`,
//! `*_over_time` of an `unwrap`ped label) at `start, start+step, ..., end` over
//! windows `(t-range, t]`, then vector aggregations (`sum by`, `topk`, ...) and
//! binary operators. Every step is bounded: entries by `limit`, records scanned and
//! series by [`query::Limits`].

pub mod ast;
pub mod lexer;
pub mod metric;
pub mod parser;
pub mod pipeline;
pub mod query;
pub mod template;

/// Why a LogQL query failed. Every variant is the sender's fault except `Store`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Syntax error; `line`/`col` are 1-based, as Loki reports them.
    #[error("parse error at line {line}, col {col}: {msg}")]
    Parse {
        line: usize,
        col: usize,
        msg: String,
    },
    /// A well-formed query that cannot be run (e.g. a selector matching everything).
    #[error("{0}")]
    Invalid(String),
    /// A query limit was hit (entries, records scanned, series).
    #[error("{0}")]
    Limit(String),
    /// A metric query met a line whose pipeline failed (`__error__` set).
    #[error("{0}")]
    Pipeline(String),
    #[error("store: {0}")]
    Store(#[from] sightline_store::Error),
}

impl Error {
    /// A parse error at byte `pos`; the line and column are filled in by
    /// [`Error::locate`] once the input is known.
    pub(crate) fn parse(pos: usize, msg: impl Into<String>) -> Error {
        Error::Parse {
            line: 0,
            col: pos,
            msg: msg.into(),
        }
    }

    /// Turns the byte offset of a parse error into Loki's 1-based line and column.
    pub(crate) fn locate(self, input: &str) -> Error {
        match self {
            Error::Parse { line: 0, col, msg } => {
                let before = &input[..col.min(input.len())];
                let line = before.matches('\n').count() + 1;
                let col = before.len() - before.rfind('\n').map_or(0, |p| p + 1) + 1;
                Error::Parse { line, col, msg }
            }
            e => e,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
