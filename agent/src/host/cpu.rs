//! CPU time from `/proc/stat` (`system.cpu.time{cpu,state}`, `system.cpu.logical.count`,
//! and the process counts `system.processes.count{status}`, `system.processes.created`),
//! plus the boot time (`btime`) that anchors every kernel counter's start time, and the
//! optional current frequency from `/sys/devices/system/cpu/cpuN/cpufreq`.

use crate::otlp_metric::{MetricSet, MetricSpec};

pub const CPU_TIME: MetricSpec = MetricSpec::counter(
    "system.cpu.time",
    "s",
    "Seconds each logical CPU spent in each mode.",
);
pub const CPU_LOGICAL_COUNT: MetricSpec = MetricSpec::updown(
    "system.cpu.logical.count",
    "{cpu}",
    "Number of logical CPUs online.",
);
pub const PROCESSES_COUNT: MetricSpec = MetricSpec::updown(
    "system.processes.count",
    "{process}",
    "Processes by status (running = runnable, blocked = waiting for I/O).",
);
pub const PROCESSES_CREATED: MetricSpec = MetricSpec::counter(
    "system.processes.created",
    "{process}",
    "Processes and threads created since boot.",
);
pub const CPU_FREQUENCY: MetricSpec = MetricSpec::gauge(
    "system.cpu.frequency",
    "Hz",
    "Current frequency of each logical CPU.",
);

/// Jiffies per mode of one CPU line (`cpuN user nice system idle iowait irq softirq steal`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuTimes {
    pub cpu: String,
    /// `(state attribute, ticks)` in the order of the hostmetrics receiver.
    pub states: [(&'static str, u64); 8],
}

/// What the agent uses from `/proc/stat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcStat {
    /// Per logical CPU (`cpu0`, `cpu1`, ...); the aggregate `cpu` line is not kept.
    pub cpus: Vec<CpuTimes>,
    /// Boot time, seconds since the Unix epoch.
    pub boot_time_secs: Option<u64>,
    /// Processes (threads) forked since boot (`processes`).
    pub processes_created: Option<u64>,
    /// Runnable (`procs_running`) and blocked on I/O (`procs_blocked`).
    pub procs_running: Option<u64>,
    pub procs_blocked: Option<u64>,
}

const STATES: [&str; 8] = [
    "user",
    "nice",
    "system",
    "idle",
    "wait",
    "interrupt",
    "softirq",
    "steal",
];

/// Parse `/proc/stat`. Columns missing on old kernels (steal) read as 0.
pub fn parse_proc_stat(text: &str) -> Result<ProcStat, String> {
    let mut cpus = Vec::new();
    let mut boot_time_secs = None;
    let (mut processes_created, mut procs_running, mut procs_blocked) = (None, None, None);
    for (lineno, line) in text.lines().enumerate() {
        let mut fields = line.split_ascii_whitespace();
        let Some(key) = fields.next() else { continue };
        if key == "btime" {
            let v = fields.next().unwrap_or_default();
            boot_time_secs = Some(
                v.parse()
                    .map_err(|_| format!("line {}: bad btime {v:?}", lineno + 1))?,
            );
        } else if let Some(slot) = match key {
            "processes" => Some(&mut processes_created),
            "procs_running" => Some(&mut procs_running),
            "procs_blocked" => Some(&mut procs_blocked),
            _ => None,
        } {
            *slot = fields.next().and_then(|v| v.parse().ok());
        } else if let Some(index) = key.strip_prefix("cpu") {
            if index.is_empty() {
                continue;
            }
            let mut states = [("", 0u64); 8];
            for (slot, name) in states.iter_mut().zip(STATES) {
                let ticks = match fields.next() {
                    Some(v) => v
                        .parse()
                        .map_err(|_| format!("line {}: bad tick count {v:?}", lineno + 1))?,
                    None => 0,
                };
                *slot = (name, ticks);
            }
            cpus.push(CpuTimes {
                cpu: key.to_string(),
                states,
            });
        }
    }
    if cpus.is_empty() {
        return Err("no cpuN lines".to_string());
    }
    Ok(ProcStat {
        cpus,
        boot_time_secs,
        processes_created,
        procs_running,
        procs_blocked,
    })
}

/// Append CPU metrics; `ticks_per_second` is `USER_HZ` (`sysconf(_SC_CLK_TCK)`).
pub fn push_metrics(set: &mut MetricSet, stat: &ProcStat, ticks_per_second: f64, start: u64) {
    for cpu in &stat.cpus {
        for (state, ticks) in cpu.states {
            set.push(
                &CPU_TIME,
                start,
                &[("cpu", &cpu.cpu), ("state", state)],
                ticks as f64 / ticks_per_second,
            );
        }
    }
    set.push(&CPU_LOGICAL_COUNT, start, &[], stat.cpus.len() as u64);
    if let Some(n) = stat.procs_running {
        set.push(&PROCESSES_COUNT, start, &[("status", "running")], n);
    }
    if let Some(n) = stat.procs_blocked {
        set.push(&PROCESSES_COUNT, start, &[("status", "blocked")], n);
    }
    if let Some(n) = stat.processes_created {
        set.push(&PROCESSES_CREATED, start, &[], n);
    }
}

/// Parse `scaling_cur_freq` (kHz) into Hz.
pub fn parse_frequency_khz(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok().map(|khz| khz * 1_000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fixtures::PROC_STAT;
    use crate::otlp_metric::point_count;

    #[test]
    fn parses_per_cpu_ticks_and_boot_time() {
        let stat = parse_proc_stat(PROC_STAT).unwrap();
        assert_eq!(stat.boot_time_secs, Some(1_795_446_796));
        assert_eq!(stat.processes_created, Some(11_890));
        assert_eq!((stat.procs_running, stat.procs_blocked), (Some(4), Some(0)));
        assert_eq!(stat.cpus.len(), 2);
        assert_eq!(stat.cpus[1].cpu, "cpu1");
        assert_eq!(
            stat.cpus[1].states,
            [
                ("user", 24309),
                ("nice", 0),
                ("system", 2140),
                ("idle", 21154),
                ("wait", 202),
                ("interrupt", 0),
                ("softirq", 62),
                ("steal", 16)
            ]
        );
    }

    #[test]
    fn converts_ticks_to_seconds() {
        let stat = parse_proc_stat(PROC_STAT).unwrap();
        let mut set = MetricSet::new(10);
        push_metrics(&mut set, &stat, 100.0, 5);
        let metrics = set.into_metrics();
        assert_eq!(point_count(&metrics[0]), 16);
        assert_eq!(metrics[1].name, "system.cpu.logical.count");
        assert_eq!(metrics[2].name, "system.processes.count");
        assert_eq!(point_count(&metrics[2]), 2);
        assert_eq!(metrics[3].name, "system.processes.created");
        let Some(sightline_proto::otlp::metrics::v1::metric::Data::Sum(sum)) = &metrics[0].data
        else {
            panic!("cpu time must be a sum")
        };
        assert_eq!(
            sum.data_points[0].value,
            Some(sightline_proto::otlp::metrics::v1::number_data_point::Value::AsDouble(241.09))
        );
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_proc_stat("").is_err());
        assert!(parse_proc_stat("cpu0 12 x 3").is_err());
        assert!(parse_proc_stat("cpu0 1 2 3\nbtime soon").is_err());
        // Old kernels without steal/guest columns still parse.
        let old = parse_proc_stat("cpu0 1 2 3 4").unwrap();
        assert_eq!(old.cpus[0].states[7], ("steal", 0));
    }

    #[test]
    fn frequency_is_khz() {
        assert_eq!(parse_frequency_khz("2400000\n"), Some(2.4e9));
        assert_eq!(parse_frequency_khz("n/a"), None);
    }
}
