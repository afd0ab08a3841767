//! Load averages from `/proc/loadavg`: `system.cpu.load_average.{1m,5m,15m}` gauges.

use crate::otlp_metric::{MetricSet, MetricSpec};

pub const LOAD_1M: MetricSpec = MetricSpec::gauge(
    "system.cpu.load_average.1m",
    "{thread}",
    "Average number of runnable or uninterruptible threads over 1 minute.",
);
pub const LOAD_5M: MetricSpec = MetricSpec::gauge(
    "system.cpu.load_average.5m",
    "{thread}",
    "Average number of runnable or uninterruptible threads over 5 minutes.",
);
pub const LOAD_15M: MetricSpec = MetricSpec::gauge(
    "system.cpu.load_average.15m",
    "{thread}",
    "Average number of runnable or uninterruptible threads over 15 minutes.",
);

/// Parse `/proc/loadavg` (`0.52 0.58 0.59 2/345 12345`) into the three averages.
pub fn parse_loadavg(text: &str) -> Result<[f64; 3], String> {
    let mut fields = text.split_ascii_whitespace();
    let mut out = [0.0; 3];
    for slot in &mut out {
        let v = fields.next().ok_or("fewer than 3 fields")?;
        *slot = v.parse().map_err(|_| format!("bad load average {v:?}"))?;
    }
    Ok(out)
}

pub fn push_metrics(set: &mut MetricSet, load: [f64; 3]) {
    set.push(&LOAD_1M, 0, &[], load[0]);
    set.push(&LOAD_5M, 0, &[], load[1]);
    set.push(&LOAD_15M, 0, &[], load[2]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fixtures::LOADAVG;

    #[test]
    fn parses_three_averages() {
        assert_eq!(parse_loadavg(LOADAVG).unwrap(), [2.85, 1.51, 0.63]);
        assert!(parse_loadavg("1.0 2.0").is_err());
        assert!(parse_loadavg("a b c").is_err());
    }
}
