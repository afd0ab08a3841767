//! Per-template line counts in a sliding window of caller-supplied timestamps.
//!
//! Time is cut into buckets of `bucket` units; a template keeps the counts of
//! its most recent `n` non-empty buckets. The window count at time `now` is the
//! sum of the buckets that lie in `(now - n * bucket, now]` by bucket index.
//! Late lines (timestamps older than the newest bucket) land in their own
//! bucket when it is still kept and are otherwise only counted in the total.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateWindow {
    /// (bucket index, lines), oldest first, at most `n` entries.
    buckets: VecDeque<(i64, u64)>,
}

impl RateWindow {
    pub fn add(&mut self, ts: i64, bucket: i64, n: usize) {
        let idx = ts.div_euclid(bucket);
        match self.buckets.back_mut() {
            Some(last) if last.0 == idx => last.1 += 1,
            Some(last) if last.0 > idx => {
                if let Some(b) = self.buckets.iter_mut().rev().find(|b| b.0 == idx) {
                    b.1 += 1;
                } else if self.buckets.front().is_some_and(|f| f.0 < idx) {
                    let pos = self.buckets.iter().position(|b| b.0 > idx).unwrap_or(0);
                    self.buckets.insert(pos, (idx, 1));
                    if self.buckets.len() > n {
                        self.buckets.pop_front();
                    }
                }
            }
            _ => {
                self.buckets.push_back((idx, 1));
                while self.buckets.len() > n {
                    self.buckets.pop_front();
                }
            }
        }
    }

    /// Lines in the `n` buckets ending with the one that holds `now`.
    pub fn count(&self, now: i64, bucket: i64, n: usize) -> u64 {
        let cur = now.div_euclid(bucket);
        let from = cur.saturating_sub(n as i64 - 1);
        self.buckets
            .iter()
            .filter(|b| b.0 >= from && b.0 <= cur)
            .map(|b| b.1)
            .sum()
    }

    pub fn absorb(&mut self, other: &RateWindow, n: usize) {
        for &(idx, c) in &other.buckets {
            match self.buckets.iter_mut().find(|b| b.0 == idx) {
                Some(b) => b.1 += c,
                None => {
                    let pos = self
                        .buckets
                        .iter()
                        .position(|b| b.0 > idx)
                        .unwrap_or(self.buckets.len());
                    self.buckets.insert(pos, (idx, c));
                }
            }
        }
        while self.buckets.len() > n {
            self.buckets.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_slides() {
        let mut w = RateWindow::default();
        for ts in [0, 10, 20, 110, 250, 260] {
            w.add(ts, 100, 2);
        }
        // buckets kept: 1 (110) and 2 (250, 260)
        assert_eq!(w.count(260, 100, 2), 3);
        assert_eq!(w.count(399, 100, 2), 2);
        assert_eq!(w.count(500, 100, 2), 0);
        // a late line in a kept bucket counts, one older than all is dropped
        w.add(150, 100, 2);
        w.add(5, 100, 2);
        assert_eq!(w.count(260, 100, 2), 4);
        let mut other = RateWindow::default();
        other.add(270, 100, 2);
        w.absorb(&other, 2);
        assert_eq!(w.count(260, 100, 2), 5);
        // negative timestamps bucket consistently
        let mut neg = RateWindow::default();
        neg.add(-1, 100, 3);
        neg.add(-100, 100, 3);
        assert_eq!(neg.count(-1, 100, 1), 2);
    }
}
