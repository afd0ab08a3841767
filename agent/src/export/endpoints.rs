//! Several collector endpoints with failover.
//!
//! `--endpoint` may be repeated or hold a comma-separated list (YAML: a string or a
//! list); the order is the preference order. [`Endpoints`] owns one lazily connected
//! gRPC channel per endpoint and decides which one an export attempt uses:
//!
//! - Every attempt goes to the *active* endpoint (initially the first, the primary).
//! - An attempt that fails in a way another collector could fix — connection refused
//!   or reset (`UNAVAILABLE`), `DEADLINE_EXCEEDED`, a client-side timeout (`CANCELLED`)
//!   — makes the next endpoint active at once ([`Endpoints::failed`] says so, and the
//!   exporter retries there without waiting). Only after every endpoint failed in a row
//!   does the exporter back off as before.
//! - While a standby is active, the primary is probed again every `probe_interval`: the
//!   next attempt after the interval goes to the primary; success makes it active
//!   again, failure returns to the standby and restarts the interval.
//!
//! Counted in `sightline_agent_export_failovers_total` (every switch away from an
//! endpoint) and `sightline_agent_export_active_endpoint` (index of the endpoint in use).
//! Selection is plain state driven by the injected clock's readings, so it is tested
//! without any network.

use std::time::{Duration, SystemTime};

use tonic::transport::Channel;

/// Default wait before trying the primary again after a failover.
pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_secs(30);

/// Splits an endpoint setting (`a,b` or one URL) into the ordered list, dropping empty
/// entries and whitespace.
pub fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Whether `status` is a failure another collector could avoid (so worth failing over).
pub fn is_failover(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled
    )
}

/// Which endpoint to use, and when to go back to the primary.
#[derive(Debug, Clone)]
pub struct Selector {
    count: usize,
    active: usize,
    /// The attempt in flight goes to the primary as a probe (active is a standby).
    probing: bool,
    /// When the current standby became active (or the last probe failed).
    since: Option<SystemTime>,
    probe_interval: Duration,
    /// Consecutive failover-worthy failures since the last success.
    failures_in_row: usize,
}

/// What the exporter should do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Another endpoint is now active and has not failed in this round: retry at once.
    TryNext,
    /// Every endpoint failed in a row (or the failure is not one to fail over on):
    /// back off before the next attempt.
    Backoff,
}

impl Selector {
    pub fn new(count: usize, probe_interval: Duration) -> Self {
        Self {
            count: count.max(1),
            active: 0,
            probing: false,
            since: None,
            probe_interval,
            failures_in_row: 0,
        }
    }

    /// Index of the endpoint in use when nothing is being probed.
    pub fn active(&self) -> usize {
        self.active
    }

    /// The endpoint for the next attempt at `now` (the primary when a probe is due).
    pub fn pick(&mut self, now: SystemTime) -> usize {
        self.probing = false;
        if self.active != 0 {
            let due = self
                .since
                .is_none_or(|s| now.duration_since(s).unwrap_or_default() >= self.probe_interval);
            if due {
                self.probing = true;
                return 0;
            }
        }
        self.active
    }

    /// The attempt on `index` succeeded; returns true when this switched the active
    /// endpoint (a probe of the primary succeeded).
    pub fn succeeded(&mut self, index: usize) -> bool {
        self.failures_in_row = 0;
        self.probing = false;
        if index != self.active {
            self.active = index;
            self.since = None;
            return true;
        }
        false
    }

    /// The attempt on `index` failed with a status for which `failover` is true or not.
    /// Returns what to do and whether the active endpoint changed.
    pub fn failed(
        &mut self,
        index: usize,
        failover: bool,
        now: SystemTime,
    ) -> (AfterFailure, bool) {
        let was_probe = self.probing;
        self.probing = false;
        if was_probe && index == 0 && self.active != 0 {
            // The primary is still down: stay on the standby, probe again later.
            self.since = Some(now);
            return (AfterFailure::TryNext, false);
        }
        if !failover || self.count == 1 {
            return (AfterFailure::Backoff, false);
        }
        self.failures_in_row += 1;
        self.active = (index + 1) % self.count;
        self.since = Some(now);
        if self.failures_in_row >= self.count {
            self.failures_in_row = 0;
            (AfterFailure::Backoff, true)
        } else {
            (AfterFailure::TryNext, true)
        }
    }
}

/// The channels and the selector.
#[derive(Debug)]
pub struct Endpoints {
    urls: Vec<String>,
    channels: Vec<Channel>,
    selector: Selector,
}

impl Endpoints {
    /// `urls` in preference order, each with its channel; at least one.
    pub fn new(urls: Vec<String>, channels: Vec<Channel>, probe_interval: Duration) -> Self {
        let selector = Selector::new(channels.len(), probe_interval);
        Self {
            urls,
            channels,
            selector,
        }
    }

    /// Endpoint index and channel for the next attempt.
    pub fn pick(&mut self, now: SystemTime) -> (usize, Channel) {
        let i = self
            .selector
            .pick(now)
            .min(self.channels.len().saturating_sub(1));
        (i, self.channels[i].clone())
    }

    pub fn selector_mut(&mut self) -> &mut Selector {
        &mut self.selector
    }

    pub fn active(&self) -> usize {
        self.selector.active()
    }

    pub fn url(&self, index: usize) -> &str {
        self.urls.get(index).map(String::as_str).unwrap_or("")
    }

    pub fn len(&self) -> usize {
        self.channels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000 + s)
    }

    #[test]
    fn lists() {
        assert_eq!(
            split_list(" http://a:1 ,http://b:2,,"),
            vec!["http://a:1", "http://b:2"]
        );
        assert!(is_failover(&tonic::Status::unavailable(
            "tcp connect error"
        )));
        assert!(is_failover(&tonic::Status::deadline_exceeded("slow")));
        assert!(!is_failover(&tonic::Status::invalid_argument("bad")));
    }

    #[test]
    fn fails_over_in_order_and_backs_off_after_a_full_round() {
        let mut s = Selector::new(3, Duration::from_secs(30));
        assert_eq!(s.pick(t(0)), 0);
        assert_eq!(s.failed(0, true, t(0)), (AfterFailure::TryNext, true));
        assert_eq!(s.active(), 1);
        assert_eq!(s.pick(t(0)), 1);
        assert_eq!(s.failed(1, true, t(0)), (AfterFailure::TryNext, true));
        assert_eq!(s.pick(t(0)), 2);
        assert_eq!(s.failed(2, true, t(0)), (AfterFailure::Backoff, true));
        assert_eq!(s.active(), 0);
        // A permanent error is not a reason to move.
        assert_eq!(s.pick(t(1)), 0);
        assert_eq!(s.failed(0, false, t(1)), (AfterFailure::Backoff, false));
        assert_eq!(s.active(), 0);
    }

    #[test]
    fn probes_the_primary_after_the_interval() {
        let mut s = Selector::new(2, Duration::from_secs(30));
        s.pick(t(0));
        s.failed(0, true, t(0));
        assert_eq!(s.pick(t(10)), 1);
        assert!(!s.succeeded(1));
        // Probe due: primary still down -> back to the standby at once, timer restarts.
        assert_eq!(s.pick(t(31)), 0);
        assert_eq!(s.failed(0, true, t(31)), (AfterFailure::TryNext, false));
        assert_eq!(s.active(), 1);
        assert_eq!(s.pick(t(32)), 1);
        assert_eq!(s.pick(t(60)), 1);
        // Next probe succeeds: the primary is active again.
        assert_eq!(s.pick(t(62)), 0);
        assert!(s.succeeded(0));
        assert_eq!(s.active(), 0);
        assert_eq!(s.pick(t(63)), 0);
    }

    #[test]
    fn single_endpoint_never_switches() {
        let mut s = Selector::new(1, Duration::from_secs(1));
        assert_eq!(s.failed(0, true, t(0)), (AfterFailure::Backoff, false));
        assert_eq!(s.pick(t(5)), 0);
    }
}
