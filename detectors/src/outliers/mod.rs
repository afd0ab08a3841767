//! Peer outliers: which member of a group of siblings (pods of one workload, nodes
//! of one pool) behaves unlike the others right now.
//!
//! Data flow: each member's recent window of each metric → [`features`] (level =
//! median, spread = robust standard deviation, trend = resistant slope over the
//! window) → for every (metric, feature), the peers' median and MAD → each member's
//! robust z-score `(x - median) / (1.4826 * MAD)`, with a floor on the scale so that
//! near-identical peers do not turn tiny differences into alarms → a member's score
//! is its largest |z|; it is flagged when that reaches the threshold, and the
//! explanation names the metric and feature, the value and the peers' median.
//! Comparisons are across members at the same time, so a shift that all members
//! share (a traffic peak, a deploy to every pod) flags no one.

pub mod features;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::forecast::trend::median;
use crate::{Error, Result};
pub use features::Feature;

/// One member's recent windows, one slice per metric (same order as the metric names).
#[derive(Debug, Clone)]
pub struct MemberWindows<'a> {
    pub name: &'a str,
    pub metrics: Vec<&'a [f64]>,
}

/// Scoring parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerConfig {
    /// Robust z-score at which a member is flagged.
    pub threshold: f64,
    /// Smallest deviation worth flagging, as a fraction of the peers' median level
    /// of that metric (floors the MAD when peers are nearly identical).
    pub min_relative_deviation: f64,
    /// Fewest members with data for a comparison to be made.
    pub min_members: usize,
}

impl Default for PeerConfig {
    fn default() -> Self {
        PeerConfig {
            threshold: 5.0,
            min_relative_deviation: 0.2,
            min_members: 3,
        }
    }
}

/// How far one feature of one metric is from the peers.
#[derive(Debug, Clone, PartialEq)]
pub struct Deviation {
    pub metric: String,
    pub feature: Feature,
    pub value: f64,
    pub peer_median: f64,
    /// Signed robust z-score against the peers.
    pub robust_z: f64,
}

impl fmt::Display for Deviation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dir = if self.robust_z >= 0.0 {
            "above"
        } else {
            "below"
        };
        write!(
            f,
            "{} {} {:.4} is {:.1} MADs {dir} the peers' median {:.4}",
            self.metric,
            self.feature,
            self.value,
            self.robust_z.abs(),
            self.peer_median
        )?;
        if self.peer_median != 0.0 {
            write!(
                f,
                " ({:+.0}%)",
                100.0 * (self.value - self.peer_median) / self.peer_median.abs()
            )?;
        }
        Ok(())
    }
}

/// A member's result.
#[derive(Debug, Clone, PartialEq)]
pub struct MemberScore {
    pub member: String,
    /// Largest |robust z| over all metrics and features (0 without comparable data).
    pub score: f64,
    pub outlier: bool,
    /// Every (metric, feature) deviation, largest |z| first.
    pub deviations: Vec<Deviation>,
}

impl MemberScore {
    /// The deviation that explains the score.
    pub fn explanation(&self) -> Option<&Deviation> {
        self.deviations.first()
    }
}

static GROUPS: AtomicU64 = AtomicU64::new(0);
static FLAGGED: AtomicU64 = AtomicU64::new(0);

/// Process-wide counters of this module, as `(name, value)` in Prometheus naming.
pub fn counters() -> [(&'static str, u64); 2] {
    [
        (
            "sightline_detectors_peer_groups_scored_total",
            GROUPS.load(Ordering::Relaxed),
        ),
        (
            "sightline_detectors_peer_outliers_flagged_total",
            FLAGGED.load(Ordering::Relaxed),
        ),
    ]
}

/// Scores each member against its peers. Members are returned in input order.
/// Errors: metric counts that do not match `metric_names`, or fewer than
/// `min_members` members. Non-finite values inside windows are ignored.
pub fn peer_outliers(
    metric_names: &[&str],
    members: &[MemberWindows<'_>],
    cfg: &PeerConfig,
) -> Result<Vec<MemberScore>> {
    if members.len() < cfg.min_members.max(3) {
        return Err(Error::InvalidInput(format!(
            "peer comparison needs at least {} members, got {}",
            cfg.min_members.max(3),
            members.len()
        )));
    }
    if let Some(m) = members
        .iter()
        .find(|m| m.metrics.len() != metric_names.len())
    {
        return Err(Error::InvalidInput(format!(
            "member {} has {} metric windows, expected {}",
            m.name,
            m.metrics.len(),
            metric_names.len()
        )));
    }
    if cfg.threshold.is_nan()
        || cfg.threshold <= 0.0
        || cfg.min_relative_deviation.is_nan()
        || cfg.min_relative_deviation < 0.0
    {
        return Err(Error::InvalidInput(
            "threshold must be > 0, min_relative_deviation >= 0".into(),
        ));
    }
    let mut scores: Vec<MemberScore> = members
        .iter()
        .map(|m| MemberScore {
            member: m.name.to_string(),
            score: 0.0,
            outlier: false,
            deviations: Vec::new(),
        })
        .collect();
    for (k, name) in metric_names.iter().enumerate() {
        // features[i] = features of member i for metric k (None without data).
        let feats: Vec<Option<[f64; 3]>> = members
            .iter()
            .map(|m| features::extract(m.metrics[k]))
            .collect();
        let present: Vec<usize> = (0..members.len()).filter(|&i| feats[i].is_some()).collect();
        if present.len() < cfg.min_members.max(3) {
            continue;
        }
        let level_median = median(
            &present
                .iter()
                .filter_map(|&i| feats[i].map(|f| f[0]))
                .collect::<Vec<_>>(),
        )
        .unwrap_or(0.0);
        let floor = (cfg.min_relative_deviation * level_median.abs() / cfg.threshold).max(1e-12);
        for (fi, feature) in Feature::ALL.iter().enumerate() {
            let vals: Vec<f64> = present
                .iter()
                .filter_map(|&i| feats[i].map(|f| f[fi]))
                .collect();
            let med = median(&vals).unwrap_or(0.0);
            let abs: Vec<f64> = vals.iter().map(|v| (v - med).abs()).collect();
            let scale = (1.4826 * median(&abs).unwrap_or(0.0)).max(floor);
            for &i in &present {
                let Some(f) = feats[i] else { continue };
                scores[i].deviations.push(Deviation {
                    metric: (*name).to_string(),
                    feature: *feature,
                    value: f[fi],
                    peer_median: med,
                    robust_z: (f[fi] - med) / scale,
                });
            }
        }
    }
    for s in &mut scores {
        s.deviations
            .sort_by(|a, b| b.robust_z.abs().total_cmp(&a.robust_z.abs()));
        s.score = s.deviations.first().map_or(0.0, |d| d.robust_z.abs());
        s.outlier = s.score >= cfg.threshold;
    }
    GROUPS.fetch_add(1, Ordering::Relaxed);
    FLAGGED.fetch_add(
        scores.iter().filter(|s| s.outlier).count() as u64,
        Ordering::Relaxed,
    );
    Ok(scores)
}

#[cfg(test)]
mod tests;
