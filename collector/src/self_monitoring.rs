//! Sightline watching itself: the collector's own `/metrics`, the `/metrics` of local
//! targets (the agent started by `sightline-collector up`) and the span metrics
//! ([`crate::spanmetrics`]) are written into the store as ordinary series, so the
//! self-monitoring and RED dashboards query them like any other data.
//!
//! Data flow: [`run`] wakes every `self_monitoring.interval`. It encodes the
//! collector's [`crate::self_metrics::SelfMetrics`] (the same text `/metrics` serves),
//! fetches each `self_monitoring.scrape` target over plain HTTP, parses the
//! Prometheus/OpenMetrics text with [`parse_text`] and writes the samples under
//! `self_monitoring.tenant` with `job` and `instance` labels (the collector's own as
//! `job="sightline-collector"`, `instance=<HTTP API address>`). Span metrics are
//! written to the tenant the spans came from. Write and scrape failures are counted in
//! `sightline_self_monitoring_errors_total{reason}` and logged at debug level (they
//! repeat every interval); written samples in `sightline_self_monitoring_samples_total`.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use sightline_store::{Label, Labels, Sample, Series, WriteBatch, METRIC_NAME};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

use crate::config::parse_duration;
use crate::state::AppState;

/// Largest scrape answer read from a target.
const MAX_SCRAPE_BYTES: usize = 16 << 20;
/// Time limit of one scrape.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);

/// `self_monitoring:` section.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SelfMonitoringConfig {
    /// How often span metrics, the collector's own metrics and the scrape targets
    /// are written into the store (e.g. `15s`; at least `100ms`).
    #[serde(default = "default_interval")]
    pub interval: String,
    /// Tenant the collector's own metrics and the scrape targets are stored under.
    #[serde(default = "default_tenant")]
    pub tenant: String,
    /// Store the collector's own `/metrics` (`job="sightline-collector"`).
    #[serde(default = "default_true")]
    pub own_metrics: bool,
    /// Prometheus text endpoints (plain `http://`) stored with their `job` label,
    /// e.g. `{job: sightline-agent, url: "http://127.0.0.1:9100/metrics"}`.
    #[serde(default)]
    pub scrape: Vec<ScrapeTarget>,
    /// Span metrics: label sets (service, span name, kind, status) per tenant before
    /// further ones are folded into the overflow series.
    #[serde(default = "default_span_metrics_max_series")]
    pub span_metrics_max_series: usize,
}

/// One `self_monitoring.scrape` entry.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScrapeTarget {
    pub job: String,
    pub url: String,
}

impl Default for SelfMonitoringConfig {
    fn default() -> Self {
        SelfMonitoringConfig {
            interval: default_interval(),
            tenant: default_tenant(),
            own_metrics: true,
            scrape: Vec::new(),
            span_metrics_max_series: default_span_metrics_max_series(),
        }
    }
}

fn default_interval() -> String {
    "15s".into()
}
fn default_tenant() -> String {
    "default".into()
}
fn default_true() -> bool {
    true
}
fn default_span_metrics_max_series() -> usize {
    crate::spanmetrics::DEFAULT_MAX_SERIES
}

impl SelfMonitoringConfig {
    /// Every problem in the section.
    pub fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        match parse_duration(&self.interval) {
            Ok(d) if d < Duration::from_millis(100) => {
                errors.push("self_monitoring.interval: must be at least 100ms".into())
            }
            Ok(_) => {}
            Err(e) => errors.push(format!("self_monitoring.interval: {e}")),
        }
        if self.tenant.is_empty() {
            errors.push("self_monitoring.tenant: must not be empty".into());
        }
        if self.span_metrics_max_series == 0 {
            errors.push("self_monitoring.span_metrics_max_series: must be at least 1".into());
        }
        for (i, t) in self.scrape.iter().enumerate() {
            if let Err(e) = split_url(&t.url) {
                errors.push(format!("self_monitoring.scrape[{i}].url: {e}"));
            }
            if t.job.is_empty() {
                errors.push(format!(
                    "self_monitoring.scrape[{i}].job: must not be empty"
                ));
            }
        }
        errors
    }

    fn interval_duration(&self) -> Duration {
        parse_duration(&self.interval).unwrap_or(Duration::from_secs(15))
    }
}

/// Writes self-monitoring data every interval until `shutdown` is set.
pub async fn run(
    state: Arc<AppState>,
    cfg: SelfMonitoringConfig,
    instance: String,
    mut shutdown: watch::Receiver<bool>,
) -> crate::Result<()> {
    // the first round after one interval, as a scraper would
    let period = cfg.interval_duration();
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait_for(|s| *s) => return Ok(()),
        }
        collect_once(&state, &cfg, &instance).await;
    }
}

/// One round: span metrics, own metrics, scrape targets.
pub async fn collect_once(state: &AppState, cfg: &SelfMonitoringConfig, instance: &str) {
    let now = state.clock.now_ms();
    for (tenant, series) in state.spanmetrics.collect(now) {
        write(state, &tenant, series, "spanmetrics").await;
    }
    state
        .metrics
        .spanmetrics_series(state.spanmetrics.active_series());
    if cfg.own_metrics {
        let text = state.metrics.encode(Some(&state.store.stats()));
        let series = parse_text(&text, "sightline-collector", instance, now);
        write(state, &cfg.tenant, series, "own_metrics").await;
    }
    for target in &cfg.scrape {
        match scrape(&target.url).await {
            Ok(text) => {
                let instance = split_url(&target.url)
                    .map(|(hp, _)| hp.to_string())
                    .unwrap_or_default();
                let series = parse_text(&text, &target.job, &instance, now);
                write(state, &cfg.tenant, series, "scrape").await;
            }
            Err(e) => {
                state.metrics.self_monitoring_error("scrape");
                tracing::debug!(url = %target.url, error = %e, "self-monitoring scrape failed");
            }
        }
    }
}

async fn write(state: &AppState, tenant: &str, series: Vec<Series>, what: &str) {
    if series.is_empty() {
        return;
    }
    match state.store.write(tenant, WriteBatch::Metrics(series)).await {
        Ok(outcome) => {
            state.metrics.self_monitoring_samples(outcome.accepted);
            if !outcome.rejected.is_empty() {
                state.metrics.self_monitoring_error("rejected");
                tracing::debug!(what, rejected = ?outcome.rejected, "self-monitoring samples rejected");
            }
        }
        Err(e) => {
            state.metrics.self_monitoring_error("write");
            tracing::debug!(what, error = %e, "self-monitoring write failed");
        }
    }
}

/// Splits `http://host:port/path` into `("host:port", "/path")`.
fn split_url(url: &str) -> Result<(&str, &str), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url:?}: only http:// URLs are supported"))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/metrics"),
    };
    if !host.contains(':') || host.is_empty() {
        return Err(format!("{url:?}: host:port expected"));
    }
    Ok((host, path))
}

/// GET over HTTP/1.0 (so the answer is never chunked), bounded in time and size.
async fn scrape(url: &str) -> Result<String, String> {
    let (host, path) = split_url(url)?;
    let fetch = async {
        let mut conn = tokio::net::TcpStream::connect(host)
            .await
            .map_err(|e| format!("connect {host}: {e}"))?;
        let req = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nAccept: text/plain\r\n\r\n");
        conn.write_all(req.as_bytes())
            .await
            .map_err(|e| format!("send: {e}"))?;
        let mut body = Vec::new();
        conn.take(MAX_SCRAPE_BYTES as u64 + 1)
            .read_to_end(&mut body)
            .await
            .map_err(|e| format!("read: {e}"))?;
        if body.len() > MAX_SCRAPE_BYTES {
            return Err(format!("answer larger than {MAX_SCRAPE_BYTES} bytes"));
        }
        let text = String::from_utf8(body).map_err(|_| "answer is not UTF-8".to_string())?;
        let (head, payload) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| "malformed HTTP answer".to_string())?;
        let status = head.split_whitespace().nth(1).unwrap_or("");
        if status != "200" {
            return Err(format!("HTTP status {status}"));
        }
        Ok(payload.to_string())
    };
    tokio::time::timeout(SCRAPE_TIMEOUT, fetch)
        .await
        .map_err(|_| format!("timed out after {SCRAPE_TIMEOUT:?}"))?
}

/// Parses Prometheus / OpenMetrics text into one-sample series at `now_ms`, adding
/// `job` and `instance` (a target's own `job`/`instance` labels are kept). Lines that
/// do not parse are skipped.
pub fn parse_text(text: &str, job: &str, instance: &str, now_ms: i64) -> Vec<Series> {
    text.lines()
        .filter_map(|line| parse_line(line.trim()))
        .map(|(name, mut labels, value)| {
            for (k, v) in [("job", job), ("instance", instance)] {
                if !labels.iter().any(|l| l.name == k) {
                    labels.push(Label {
                        name: k.to_string(),
                        value: v.to_string(),
                    });
                }
            }
            labels.push(Label {
                name: METRIC_NAME.to_string(),
                value: name,
            });
            Series {
                labels: Labels::new(labels),
                samples: vec![Sample {
                    timestamp_ms: now_ms,
                    value,
                }],
            }
        })
        .collect()
}

fn parse_line(line: &str) -> Option<(String, Vec<Label>, f64)> {
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(['{', ' '])?;
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(r) = rest.strip_prefix('{') {
        let mut chars = r.char_indices().peekable();
        loop {
            // label name
            while chars.peek().is_some_and(|(_, c)| *c == ',' || *c == ' ') {
                chars.next();
            }
            let (start, c) = *chars.peek()?;
            if c == '}' {
                chars.next();
                rest = &r[start + 1..];
                break;
            }
            let eq = r[start..].find('=')? + start;
            let lname = r[start..eq].trim().to_string();
            while chars.peek().is_some_and(|(i, _)| *i <= eq) {
                chars.next();
            }
            if chars.next()?.1 != '"' {
                return None;
            }
            let mut value = String::new();
            loop {
                let (_, c) = chars.next()?;
                match c {
                    '"' => break,
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    other => value.push(other),
                }
            }
            labels.push(Label { name: lname, value });
        }
    }
    let value = rest.split_whitespace().next()?.parse::<f64>().ok()?;
    Some((name.to_string(), labels, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_openmetrics_text() {
        let text = "# HELP x_total help\n# TYPE x_total counter\n\
            x_total{reason=\"a \\\"q\\\" b\",code=\"2,0}\"} 3\n\
            up 1 1700000000000\n\
            h_bucket{le=\"+Inf\"} 7\n\
            g{job=\"own\"} NaN\n\
            broken{x=} 1\n\
            # EOF\n";
        let s = parse_text(text, "j", "i:1", 42);
        assert_eq!(s.len(), 4, "{s:?}");
        assert_eq!(s[0].labels.get("__name__"), Some("x_total"));
        assert_eq!(s[0].labels.get("reason"), Some("a \"q\" b"));
        assert_eq!(s[0].labels.get("code"), Some("2,0}"));
        assert_eq!(s[0].labels.get("job"), Some("j"));
        assert_eq!(s[0].labels.get("instance"), Some("i:1"));
        assert_eq!(
            s[0].samples[0],
            Sample {
                timestamp_ms: 42,
                value: 3.0
            }
        );
        assert_eq!(s[1].samples[0].value, 1.0);
        assert_eq!(s[2].labels.get("le"), Some("+Inf"));
        assert_eq!(s[3].labels.get("job"), Some("own"));
        assert!(s[3].samples[0].value.is_nan());
    }

    #[test]
    fn urls_and_config_are_validated() {
        assert_eq!(
            split_url("http://127.0.0.1:9100/metrics").unwrap(),
            ("127.0.0.1:9100", "/metrics")
        );
        assert_eq!(split_url("http://h:1").unwrap(), ("h:1", "/metrics"));
        assert!(split_url("https://h:1/metrics").is_err());
        assert!(split_url("http://h/metrics").is_err());
        let cfg = SelfMonitoringConfig {
            interval: "1ms".into(),
            tenant: String::new(),
            scrape: vec![ScrapeTarget {
                job: String::new(),
                url: "ftp://x".into(),
            }],
            ..Default::default()
        };
        assert_eq!(cfg.validate().len(), 4, "{:?}", cfg.validate());
        assert!(SelfMonitoringConfig::default().validate().is_empty());
    }
}
