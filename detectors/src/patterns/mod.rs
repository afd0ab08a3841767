//! Online log-template mining.
//!
//! Data flow, per line: [`PatternMiner::observe`] masks the line's variables
//! ([`mask`]: numbers, ids, IPs, hex, paths, timestamps, units) into a key such
//! as `Receiving block <*> src: <*> dest: <*>`. A hash lookup of the key in a
//! bounded cache answers almost every line. A key seen for the first time is
//! compared with the templates of the same length and first token: a template
//! whose `<*>` positions cover the key's differing words takes it; otherwise
//! the key becomes a new template (`is_new`). When four or more templates differ
//! only in one word position (`removing ftp`, `removing echo`, ...), they are
//! merged into one with `<*>` there; the oldest id survives and the others
//! become aliases of it. Ids are sequential numbers kept in the snapshot, so a
//! restored miner hands out the same ids as the one that was saved.
//!
//! Memory is bounded: at most `max_templates` templates (least recently used
//! ones are evicted in batches), `max_cached_keys` cached keys (the cache is
//! reset when full), lines truncated to `max_line_bytes`. Each template counts
//! its lines in a sliding window of caller-supplied timestamps (the rate
//! signal). The miner has no clock and no I/O; the same input gives the same
//! ids, templates and snapshots.

mod index;
pub mod mask;
mod miner;
mod rate;
mod snapshot;

pub use miner::{MatchResult, PatternInfo, PatternMiner};
pub use rate::RateWindow;
pub use snapshot::{MinerSnapshot, TemplateState};

use serde::{Deserialize, Serialize};

/// Configuration of a [`PatternMiner`]. One setting serves all log sources.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinerConfig {
    /// Most templates kept; beyond it the least recently used 10 % are evicted.
    #[serde(default = "default_max_templates")]
    pub max_templates: usize,
    /// Most masked keys remembered for the exact-match fast path; the cache is
    /// cleared when it is full (a cleared key is matched against the templates
    /// again and gets the same id).
    #[serde(default = "default_max_cached_keys")]
    pub max_cached_keys: usize,
    /// Lines longer than this are cut (at a character boundary) before mining.
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
    /// Templates that differ in one word position are merged once this many
    /// distinct words were seen there.
    #[serde(default = "default_merge_min_distinct")]
    pub merge_min_distinct: usize,
    /// Templates shorter than this many tokens are never generalised.
    #[serde(default = "default_merge_min_tokens")]
    pub merge_min_tokens: usize,
    /// A generalised template keeps at least this many constant tokens.
    #[serde(default = "default_merge_min_constants")]
    pub merge_min_constants: usize,
    /// Width of one rate bucket, in the unit of the timestamps given to `observe`.
    #[serde(default = "default_rate_bucket")]
    pub rate_bucket: i64,
    /// Number of buckets in the rate window (window = `rate_bucket * rate_buckets`).
    #[serde(default = "default_rate_buckets")]
    pub rate_buckets: usize,
}

fn default_max_templates() -> usize {
    10_000
}
fn default_max_cached_keys() -> usize {
    200_000
}
fn default_max_line_bytes() -> usize {
    16 * 1024
}
fn default_merge_min_distinct() -> usize {
    4
}
fn default_merge_min_tokens() -> usize {
    3
}
fn default_merge_min_constants() -> usize {
    2
}
fn default_rate_bucket() -> i64 {
    60_000
}
fn default_rate_buckets() -> usize {
    5
}

impl Default for MinerConfig {
    fn default() -> Self {
        Self {
            max_templates: default_max_templates(),
            max_cached_keys: default_max_cached_keys(),
            max_line_bytes: default_max_line_bytes(),
            merge_min_distinct: default_merge_min_distinct(),
            merge_min_tokens: default_merge_min_tokens(),
            merge_min_constants: default_merge_min_constants(),
            rate_bucket: default_rate_bucket(),
            rate_buckets: default_rate_buckets(),
        }
    }
}

impl MinerConfig {
    /// Checks every field and reports all problems together.
    pub fn validate(&self) -> crate::Result<()> {
        let mut errs = Vec::new();
        if self.max_templates < 1 {
            errs.push("max_templates must be at least 1");
        }
        if self.max_cached_keys < 1 {
            errs.push("max_cached_keys must be at least 1");
        }
        if self.max_line_bytes < 16 {
            errs.push("max_line_bytes must be at least 16");
        }
        if self.merge_min_distinct < 2 {
            errs.push("merge_min_distinct must be at least 2");
        }
        if self.rate_bucket < 1 {
            errs.push("rate_bucket must be positive");
        }
        if !(1..=1024).contains(&self.rate_buckets) {
            errs.push("rate_buckets must be within 1..=1024");
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(crate::Error::InvalidInput(format!(
                "pattern miner config: {}",
                errs.join("; ")
            )))
        }
    }
}

#[cfg(test)]
mod tests;
