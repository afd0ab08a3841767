//! Log-pattern ids at the edge: every shipped log record gets `sightline.log.pattern`,
//! the id of its template as mined by `sightline_detectors::patterns::PatternMiner`.
//!
//! ```text
//! tailer thread ─► Batcher::add ─► patterns::attach(message, attributes)
//!     ─► PatternMiner::observe (mask variables, exact-key cache, template match/merge)
//!     ─► id string for the (surviving) pattern ─► attribute sightline.log.pattern
//! ```
//! The id string is 16 hex digits: a hash of the pattern's template text when the
//! pattern was first seen. It stays the same for every line of that pattern while the
//! agent runs, including after the miner merges it into a more general pattern (the
//! merged-away id resolves to the surviving pattern's string), and — since it depends
//! only on the template text — agents on different nodes and restarted agents give the
//! same template the same id.
//!
//! Memory is bounded by `logs.patterns.max_clusters` (templates kept; the least recently
//! used are evicted by the miner) plus a key cache of 8 × that and lines cut at
//! [`MAX_LINE_BYTES`] for mining (the shipped record is not cut). Cost per line is the
//! miner's (≈0.4 µs on the detectors bench) plus one small string copy.
//!
//! There is one miner per process, installed by [`install`] when log tailing starts
//! (the tailer is a single thread, so the lock is uncontended).
//!
//! ```yaml
//! logs:
//!   patterns: true                  # or false, or { enabled: true, max_clusters: 1000 }
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use sightline_detectors::patterns::{MinerConfig, PatternMiner};
use sightline_proto::otlp::common::v1::KeyValue;

use crate::otlp_metric::string_attr;
use crate::telemetry::Telemetry;

/// Attribute carrying the pattern id.
pub const ATTRIBUTE: &str = "sightline.log.pattern";
/// Default bound on templates kept.
pub const DEFAULT_MAX_CLUSTERS: usize = 1000;
/// Lines are cut to this many bytes before mining.
pub const MAX_LINE_BYTES: usize = 4096;

/// `logs.patterns`: a switch, or a map with the bound.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum PatternsSection {
    Switch(bool),
    Detailed(PatternsDetail),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatternsDetail {
    /// Default true.
    pub enabled: Option<bool>,
    /// Templates kept (default 1000); least recently used beyond it are evicted.
    pub max_clusters: Option<usize>,
}

/// Checked settings; `None` from [`resolve`] means off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternsConfig {
    pub max_clusters: usize,
}

/// Default on; problems are appended to `errors`.
pub fn resolve(
    section: Option<&PatternsSection>,
    errors: &mut Vec<String>,
) -> Option<PatternsConfig> {
    let (enabled, max_clusters) = match section {
        None => (true, None),
        Some(PatternsSection::Switch(on)) => (*on, None),
        Some(PatternsSection::Detailed(d)) => (d.enabled.unwrap_or(true), d.max_clusters),
    };
    let max_clusters = max_clusters.unwrap_or(DEFAULT_MAX_CLUSTERS);
    if max_clusters == 0 {
        errors.push("logs.patterns.max_clusters: must be at least 1".into());
    }
    enabled.then_some(PatternsConfig { max_clusters })
}

/// The miner and the id strings of its patterns.
#[derive(Debug)]
pub struct PatternTagger {
    miner: PatternMiner,
    ids: HashMap<u64, String>,
    max_clusters: usize,
    telemetry: Option<Arc<Telemetry>>,
}

fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl PatternTagger {
    pub fn new(cfg: &PatternsConfig, telemetry: Option<Arc<Telemetry>>) -> Result<Self, String> {
        let max_clusters = cfg.max_clusters.max(1);
        let miner = PatternMiner::new(MinerConfig {
            max_templates: max_clusters,
            max_cached_keys: max_clusters.saturating_mul(8),
            max_line_bytes: MAX_LINE_BYTES,
            ..MinerConfig::default()
        })
        .map_err(|e| e.to_string())?;
        Ok(Self {
            miner,
            ids: HashMap::new(),
            max_clusters,
            telemetry,
        })
    }

    /// The pattern id string of `line`.
    pub fn tag(&mut self, line: &str) -> &str {
        let m = self.miner.observe(line, 0);
        let id = m.pattern_id;
        if !self.ids.contains_key(&id) {
            let text = format!("{:016x}", fnv1a(m.template));
            if self.ids.len() >= self.max_clusters.saturating_mul(2) {
                // Forget ids of patterns the miner evicted or merged away.
                let miner = &self.miner;
                self.ids.retain(|id, _| miner.pattern(*id).is_some());
                if let Some(t) = &self.telemetry {
                    t.log_patterns.set(self.miner.len() as i64);
                }
            }
            self.ids.insert(id, text);
        }
        if let Some(t) = &self.telemetry {
            t.log_patterns_tagged.inc();
        }
        self.ids.get(&id).map(String::as_str).unwrap_or("")
    }

    /// Patterns held by the miner.
    pub fn patterns(&self) -> usize {
        self.miner.len()
    }
}

static TAGGER: Mutex<Option<PatternTagger>> = Mutex::new(None);

/// Install (or with `None` remove) the process's tagger.
pub fn install(cfg: Option<&PatternsConfig>, telemetry: Arc<Telemetry>) {
    let tagger = cfg.and_then(|c| match PatternTagger::new(c, Some(telemetry)) {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::warn!(error = %e, "log pattern ids disabled");
            None
        }
    });
    *TAGGER.lock().unwrap_or_else(|e| e.into_inner()) = tagger;
}

/// The hook in `Batcher::add`: appends `sightline.log.pattern` for `message` when a
/// tagger is installed.
pub fn attach(message: &str, attributes: &mut Vec<KeyValue>) {
    let mut guard = TAGGER.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(tagger) = guard.as_mut() {
        let id = tagger.tag(message);
        attributes.push(string_attr(ATTRIBUTE, id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_template_same_id_bounded_memory() {
        let mut t = PatternTagger::new(&PatternsConfig { max_clusters: 50 }, None).unwrap();
        let a = t.tag("user 17 logged in from 10.0.0.1").to_string();
        let b = t.tag("user 99 logged in from 10.0.0.7").to_string();
        let c = t.tag("disk /dev/sda1 is 91% full").to_string();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len(), 16);
        // Another tagger (another node, or after a restart) gives the same id.
        let mut other = PatternTagger::new(&PatternsConfig { max_clusters: 50 }, None).unwrap();
        assert_eq!(other.tag("user 5 logged in from 192.168.1.1"), a);
        for i in 0..2_000 {
            t.tag(&format!("distinct{i} event kind{i} happened"));
        }
        assert!(t.patterns() <= 50, "{}", t.patterns());
        assert!(t.ids.len() <= 100 + 1, "{}", t.ids.len());
    }

    #[test]
    fn config_forms() {
        let mut errors = Vec::new();
        assert_eq!(
            resolve(None, &mut errors),
            Some(PatternsConfig { max_clusters: 1000 })
        );
        let off: PatternsSection = serde_yaml::from_str("false").unwrap();
        assert_eq!(resolve(Some(&off), &mut errors), None);
        let d: PatternsSection = serde_yaml::from_str("{ max_clusters: 10 }").unwrap();
        assert_eq!(
            resolve(Some(&d), &mut errors),
            Some(PatternsConfig { max_clusters: 10 })
        );
        assert!(errors.is_empty());
        let bad: PatternsSection = serde_yaml::from_str("{ max_clusters: 0 }").unwrap();
        resolve(Some(&bad), &mut errors);
        assert!(errors[0].contains("max_clusters"));
        assert!(serde_yaml::from_str::<PatternsSection>("{ clusters: 3 }").is_err());
    }
}
