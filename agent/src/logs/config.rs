//! The `logs:` section of the agent's YAML file and its checks. Log tailing runs when a
//! data dir is configured (`--data-dir` / `data_dir:`), since checkpoints live there.
//!
//! ```yaml
//! data_dir: /var/lib/sightline-agent   # --data-dir; checkpoints in <data_dir>/logs/
//! logs:
//!   pods_root: /var/log/pods           # --pod-logs-root; "" disables
//!   docker_root: /var/lib/docker/containers   # "" disables
//!   include: [/var/log/app/**/*.log]   # plain files (globs: *, ?, **)
//!   poll_interval: 250ms
//!   max_line_bytes: 262144             # longer lines are cut into pieces
//!   rate_limit: 0                      # lines/s per container, 0 = unlimited; over it
//!                                      # reading pauses (backpressure), nothing dropped
//!   max_in_flight_batches: 8           # unacked batches before tailing pauses
//!   batch: { max_records: 1000, max_bytes: 1048576, timeout: 500ms }
//!   multiline:
//!     enabled: true
//!     continuation: '^(\s|at\s|Caused by:|\.\.\.)'   # lines joined to the previous one
//!     max_lines: 500
//!     max_bytes: 262144
//!     flush_timeout: 1s
//!   patterns: true                     # sightline.log.pattern ids; or { max_clusters: 1000 }
//! ```

use std::path::PathBuf;
use std::time::Duration;

use regex::Regex;
use serde::Deserialize;

use super::multiline::{MultilineRule, DEFAULT_CONTINUATION};
use super::LogsConfig;
use crate::config::parse_duration;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsSection {
    pub pods_root: Option<PathBuf>,
    pub docker_root: Option<PathBuf>,
    #[serde(default)]
    pub include: Vec<String>,
    pub poll_interval: Option<String>,
    pub max_line_bytes: Option<usize>,
    pub rate_limit: Option<f64>,
    pub max_in_flight_batches: Option<usize>,
    #[serde(default)]
    pub batch: BatchSection,
    #[serde(default)]
    pub multiline: MultilineSection,
    /// `true` / `false` / `{ enabled, max_clusters }` (see `logs::patterns`).
    pub patterns: Option<super::patterns::PatternsSection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchSection {
    pub max_records: Option<usize>,
    pub max_bytes: Option<usize>,
    pub timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultilineSection {
    pub enabled: Option<bool>,
    pub continuation: Option<String>,
    pub max_lines: Option<usize>,
    pub max_bytes: Option<usize>,
    pub flush_timeout: Option<String>,
}

fn root(flag: Option<PathBuf>, file: Option<PathBuf>, default: Option<PathBuf>) -> Option<PathBuf> {
    match flag.or(file) {
        Some(p) if p.as_os_str().is_empty() => None,
        Some(p) => Some(p),
        None => default,
    }
}

/// Resolve the logs configuration; problems are appended to `errors`.
pub fn resolve(
    section: LogsSection,
    data_dir: Option<PathBuf>,
    pods_root_flag: Option<PathBuf>,
    errors: &mut Vec<String>,
) -> Option<LogsConfig> {
    let data_dir = data_dir?;
    let mut cfg = LogsConfig::new(data_dir);
    cfg.sources.pods_root = root(pods_root_flag, section.pods_root, cfg.sources.pods_root);
    cfg.sources.docker_root = root(None, section.docker_root, cfg.sources.docker_root);
    for g in &section.include {
        if !g.starts_with('/') {
            errors.push(format!("logs.include: {g:?} must be an absolute path"));
        }
    }
    cfg.sources.include = section.include;
    let mut duration = |key: &str, v: Option<String>, default| match v {
        None => default,
        Some(v) => parse_duration(&v).unwrap_or_else(|e| {
            errors.push(format!("{key}: {e}"));
            default
        }),
    };
    cfg.poll_interval = duration(
        "logs.poll_interval",
        section.poll_interval,
        cfg.poll_interval,
    );
    cfg.batch_timeout = duration(
        "logs.batch.timeout",
        section.batch.timeout,
        cfg.batch_timeout,
    );
    let flush = duration(
        "logs.multiline.flush_timeout",
        section.multiline.flush_timeout.clone(),
        Duration::from_secs(1),
    );
    if cfg.poll_interval.is_zero() {
        errors.push("logs.poll_interval: must be positive".into());
    }
    cfg.max_line_bytes = section.max_line_bytes.unwrap_or(cfg.max_line_bytes);
    cfg.rate_limit = section.rate_limit.filter(|r| *r > 0.0);
    if section
        .rate_limit
        .is_some_and(|r| !r.is_finite() || r < 0.0)
    {
        errors.push("logs.rate_limit: must be a non-negative number of lines/s".into());
    }
    cfg.max_in_flight = section.max_in_flight_batches.unwrap_or(cfg.max_in_flight);
    cfg.batch_max_records = section.batch.max_records.unwrap_or(cfg.batch_max_records);
    cfg.batch_max_bytes = section.batch.max_bytes.unwrap_or(cfg.batch_max_bytes);
    for (key, v) in [
        ("logs.max_line_bytes", cfg.max_line_bytes),
        ("logs.max_in_flight_batches", cfg.max_in_flight),
        ("logs.batch.max_records", cfg.batch_max_records),
        ("logs.batch.max_bytes", cfg.batch_max_bytes),
    ] {
        if v == 0 {
            errors.push(format!("{key}: must be positive"));
        }
    }
    cfg.patterns = super::patterns::resolve(section.patterns.as_ref(), errors);
    let m = section.multiline;
    cfg.multiline = if m.enabled.unwrap_or(true) {
        let pattern = m.continuation.as_deref().unwrap_or(DEFAULT_CONTINUATION);
        match Regex::new(pattern) {
            Ok(continuation) => Some(MultilineRule {
                continuation,
                max_lines: m.max_lines.unwrap_or(500).max(1),
                max_bytes: m.max_bytes.unwrap_or(256 * 1024).max(1),
                flush_timeout: flush,
            }),
            Err(e) => {
                errors.push(format!("logs.multiline.continuation: {e}"));
                None
            }
        }
    } else {
        None
    };
    Some(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_without_data_dir_defaults_and_problems() {
        let mut errors = Vec::new();
        assert!(resolve(LogsSection::default(), None, None, &mut errors).is_none());
        let c = resolve(
            LogsSection::default(),
            Some("/d".into()),
            Some("/pods".into()),
            &mut errors,
        )
        .unwrap();
        assert!(errors.is_empty());
        assert_eq!(c.sources.pods_root, Some(PathBuf::from("/pods")));
        assert_eq!(c.max_in_flight, 8);
        assert!(c.multiline.is_some());
        let section: LogsSection = serde_yaml::from_str(
            "docker_root: ''\ninclude: [relative/*.log]\npoll_interval: soon\nrate_limit: -1\n\
             multiline: { continuation: '(' }\nbatch: { max_records: 0 }\n",
        )
        .unwrap();
        let c = resolve(section, Some("/d".into()), None, &mut errors).unwrap();
        assert_eq!(c.sources.docker_root, None);
        let all = errors.join("\n");
        for needle in [
            "logs.include",
            "logs.poll_interval",
            "logs.rate_limit",
            "logs.multiline.continuation",
            "logs.batch.max_records",
        ] {
            assert!(all.contains(needle), "{needle} in {all}");
        }
        assert!(serde_yaml::from_str::<LogsSection>("tail_from: end\n").is_err());
    }
}
