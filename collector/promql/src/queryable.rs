//! The data-access seam of the engine. The engine asks a [`Queryable`] once per
//! selector for the series matching its matchers with their samples in the time range
//! the whole query needs; [`MemQueryable`] answers from series held in memory.

use crate::Result;
use sightline_store::matcher::matches_all;
use sightline_store::{Matcher, Sample, Series};

/// Where the engine reads samples from.
///
/// Contract: return every series matching all `matchers` that has at least one sample
/// with `start_ms <= timestamp_ms <= end_ms`, with exactly those samples, oldest first,
/// series sorted by labels. Samples may be Prometheus staleness markers (NaN with bits
/// [`crate::STALE_NAN_BITS`]); the engine treats them as Prometheus does (they end the
/// lookback of an instant selector and are skipped in range selectors).
pub trait Queryable {
    fn select(&self, matchers: &[Matcher], start_ms: i64, end_ms: i64) -> Result<Vec<Series>>;
}

/// Series kept in memory. Samples of each series must be sorted by time.
#[derive(Clone, Debug, Default)]
pub struct MemQueryable {
    series: Vec<Series>,
}

impl MemQueryable {
    /// Takes series in any order; sorts them by labels and their samples by time.
    pub fn new(mut series: Vec<Series>) -> Self {
        for s in &mut series {
            s.samples.sort_by_key(|x| x.timestamp_ms);
        }
        series.sort_by(|a, b| a.labels.cmp(&b.labels));
        MemQueryable { series }
    }

    pub fn series(&self) -> &[Series] {
        &self.series
    }
}

impl Queryable for MemQueryable {
    fn select(&self, matchers: &[Matcher], start_ms: i64, end_ms: i64) -> Result<Vec<Series>> {
        let mut out = Vec::new();
        for s in &self.series {
            if !matches_all(matchers, &s.labels) {
                continue;
            }
            let lo = s.samples.partition_point(|x| x.timestamp_ms < start_ms);
            let hi = s.samples.partition_point(|x| x.timestamp_ms <= end_ms);
            if lo < hi {
                let samples: Vec<Sample> = s.samples[lo..hi].to_vec();
                out.push(Series {
                    labels: s.labels.clone(),
                    samples,
                });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_store::{Labels, MatchOp};

    #[test]
    fn selects_by_matcher_and_range() {
        let mk = |job: &str, ts: &[i64]| Series {
            labels: Labels::from_pairs([("__name__", "up"), ("job", job)]),
            samples: ts
                .iter()
                .map(|&t| Sample {
                    timestamp_ms: t,
                    value: 1.0,
                })
                .collect(),
        };
        let q = MemQueryable::new(vec![mk("b", &[10, 20, 30]), mk("a", &[40])]);
        let m = [Matcher::new("__name__", MatchOp::Equal, "up").unwrap()];
        let got = q.select(&m, 15, 35).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].labels.get("job"), Some("b"));
        assert_eq!(got[0].samples.len(), 2);
        let got = q.select(&m, 0, 100).unwrap();
        assert_eq!(got[0].labels.get("job"), Some("a"), "sorted by labels");
    }
}
