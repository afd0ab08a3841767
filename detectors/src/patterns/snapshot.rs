//! Snapshot and restore of a [`PatternMiner`]: everything that decides future
//! ids (templates, aliases, key cache, one-position signatures, the next id),
//! as sorted lists so that equal miners give byte-equal JSON.

use serde::{Deserialize, Serialize};

use super::miner::{PatternMiner, Template};
use super::rate::RateWindow;
use super::MinerConfig;
use crate::{Error, Result};

const VERSION: u32 = 1;

/// Serializable state of a [`PatternMiner`] (counters are not included).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinerSnapshot {
    pub version: u32,
    pub config: MinerConfig,
    pub next_id: u64,
    pub seq: u64,
    pub templates: Vec<TemplateState>,
    pub aliases: Vec<(u64, u64)>,
    pub cache: Vec<(String, u64)>,
    pub diffs: Vec<(u64, Vec<(u64, u64)>)>,
}

/// One template inside a [`MinerSnapshot`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateState {
    pub id: u64,
    pub template: String,
    pub count: u64,
    pub first_seen: i64,
    pub last_seen: i64,
    pub last_used: u64,
    pub rate: RateWindow,
}

impl PatternMiner {
    pub fn snapshot(&self) -> MinerSnapshot {
        let mut templates: Vec<TemplateState> = self
            .templates
            .values()
            .map(|t| TemplateState {
                id: t.id,
                template: t.text.clone(),
                count: t.count,
                first_seen: t.first_seen,
                last_seen: t.last_seen,
                last_used: t.last_used,
                rate: t.rate.clone(),
            })
            .collect();
        templates.sort_unstable_by_key(|t| t.id);
        let mut aliases: Vec<(u64, u64)> = self.aliases.iter().map(|(&a, &b)| (a, b)).collect();
        aliases.sort_unstable();
        let mut cache: Vec<(String, u64)> = self
            .cache
            .iter()
            .map(|(k, &v)| (k.to_string(), v))
            .collect();
        cache.sort_unstable();
        let mut diffs: Vec<(u64, Vec<(u64, u64)>)> =
            self.diffs.iter().map(|(&k, v)| (k, v.clone())).collect();
        diffs.sort_unstable();
        MinerSnapshot {
            version: VERSION,
            config: self.cfg.clone(),
            next_id: self.next_id,
            seq: self.seq,
            templates,
            aliases,
            cache,
            diffs,
        }
    }

    /// Rebuilds a miner; subsequent lines get the ids the saved miner would
    /// have given them.
    pub fn restore(snap: MinerSnapshot) -> Result<Self> {
        if snap.version != VERSION {
            return Err(Error::BadSnapshot(format!(
                "pattern miner snapshot version {} (expected {VERSION})",
                snap.version
            )));
        }
        snap.config.validate()?;
        let mut m = PatternMiner::empty(snap.config);
        let mut last = 0;
        for t in snap.templates {
            if t.id <= last || t.id >= snap.next_id {
                return Err(Error::BadSnapshot(format!(
                    "pattern id {} out of order or not below next_id {}",
                    t.id, snap.next_id
                )));
            }
            last = t.id;
            let mut tpl = Template::new(t.id, t.template);
            tpl.count = t.count;
            tpl.first_seen = t.first_seen;
            tpl.last_seen = t.last_seen;
            tpl.last_used = t.last_used;
            tpl.rate = t.rate;
            m.index.insert(t.id, tpl.head());
            m.templates.insert(t.id, tpl);
        }
        m.next_id = snap.next_id;
        m.seq = snap.seq;
        m.aliases = snap.aliases.into_iter().collect();
        m.cache = snap
            .cache
            .into_iter()
            .map(|(k, v)| (k.into_boxed_str(), v))
            .collect();
        m.diffs = snap.diffs.into_iter().collect();
        Ok(m)
    }
}
