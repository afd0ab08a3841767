//! The agent's own resource use from `/proc/self/stat`: `process.cpu.time{state=user|system}`
//! (s, since the agent started), `process.memory.usage` (resident set, By) and
//! `process.memory.virtual` (By).

use crate::otlp_metric::{MetricSet, MetricSpec};

pub const PROCESS_CPU_TIME: MetricSpec = MetricSpec::counter(
    "process.cpu.time",
    "s",
    "CPU seconds used by the agent process.",
);
pub const PROCESS_MEMORY_USAGE: MetricSpec = MetricSpec::updown(
    "process.memory.usage",
    "By",
    "Resident set size of the agent process.",
);
pub const PROCESS_MEMORY_VIRTUAL: MetricSpec = MetricSpec::updown(
    "process.memory.virtual",
    "By",
    "Virtual memory size of the agent process.",
);

/// Fields of `/proc/<pid>/stat` the agent uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessStat {
    pub utime_ticks: u64,
    pub stime_ticks: u64,
    /// Ticks after boot at which the process started.
    pub start_ticks: u64,
    pub vsize_bytes: u64,
    pub rss_pages: u64,
}

/// Parse `/proc/<pid>/stat`. The command name may contain spaces and `)`, so fields are
/// counted from the last `)`.
pub fn parse_process_stat(text: &str) -> Result<ProcessStat, String> {
    let close = text.rfind(')').ok_or("no ')' after the command name")?;
    // Fields after the name start at field 3 (state); utime is field 14.
    let fields: Vec<&str> = text[close + 1..].split_ascii_whitespace().collect();
    let field = |n: usize| -> Result<u64, String> {
        let raw = fields
            .get(n - 3)
            .ok_or_else(|| format!("field {n} missing"))?;
        raw.parse()
            .map_err(|_| format!("field {n}: bad number {raw:?}"))
    };
    Ok(ProcessStat {
        utime_ticks: field(14)?,
        stime_ticks: field(15)?,
        start_ticks: field(22)?,
        vsize_bytes: field(23)?,
        rss_pages: field(24)?,
    })
}

pub fn push_metrics(
    set: &mut MetricSet,
    stat: &ProcessStat,
    ticks_per_second: f64,
    page_size: u64,
    start: u64,
) {
    set.push(
        &PROCESS_CPU_TIME,
        start,
        &[("state", "user")],
        stat.utime_ticks as f64 / ticks_per_second,
    );
    set.push(
        &PROCESS_CPU_TIME,
        start,
        &[("state", "system")],
        stat.stime_ticks as f64 / ticks_per_second,
    );
    set.push(
        &PROCESS_MEMORY_USAGE,
        start,
        &[],
        stat.rss_pages.saturating_mul(page_size),
    );
    set.push(&PROCESS_MEMORY_VIRTUAL, start, &[], stat.vsize_bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fixtures::SELF_STAT;

    #[test]
    fn parses_fields_after_a_tricky_name() {
        let s = parse_process_stat(SELF_STAT).unwrap();
        assert_eq!(
            s,
            ProcessStat {
                utime_ticks: 250,
                stime_ticks: 75,
                start_ticks: 48107,
                vsize_bytes: 3133440,
                rss_pages: 354,
            }
        );
        let mut set = MetricSet::new(1);
        push_metrics(&mut set, &s, 100.0, 4096, 0);
        assert_eq!(set.point_count(), 4);
    }

    #[test]
    fn parses_this_process() {
        let text = std::fs::read_to_string("/proc/self/stat").unwrap();
        let s = parse_process_stat(&text).unwrap();
        assert!(s.rss_pages > 0);
    }

    #[test]
    fn rejects_truncated() {
        assert!(parse_process_stat("1 (x) S 1 2").is_err());
        assert!(parse_process_stat("no parens").is_err());
    }
}
