//! Host metrics, named and typed like the OpenTelemetry hostmetrics receiver.
//!
//! [`HostCollector::collect`] reads, in order: `<proc_root>/stat` (CPU, boot time),
//! `<sys_root>/devices/system/cpu/cpuN/cpufreq` (frequency, when present),
//! `<proc_root>/meminfo`, `<proc_root>/loadavg`, the mount table + `statvfs`,
//! `<proc_root>/diskstats`, the interface table and the agent's own `/proc/self/stat`.
//! The mount and interface tables are read from PID 1 (`<proc_root>/1/mounts`,
//! `<proc_root>/1/net/dev`, as node_exporter does), which with the host's `/proc` mounted
//! is the host's init: its mount and network namespaces are the node's, whatever the
//! agent's own are. If PID 1's files cannot be read, `<proc_root>/self/...` is used.
//! Each source fails on its own: its error is returned next to the metrics of the other
//! sources, so one unreadable file never stops a collection. Parsers are pure functions of
//! the file text, tested against real contents in [`fixtures`].

pub mod cpu;
pub mod disk;
pub mod filesystem;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod load;
pub mod memory;
pub mod network;
pub mod process;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::clock::unix_nanos;
use crate::otlp_metric::MetricSet;
use crate::Error;

/// Where to read from and what to include.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// Usually `/proc`; `/host/proc` in a DaemonSet with the host's `/proc` mounted.
    pub proc_root: PathBuf,
    /// Usually `/sys`.
    pub sys_root: PathBuf,
    /// Report tmpfs mounts too.
    pub include_tmpfs: bool,
    /// Prefix for `statvfs` paths when the host's root is mounted elsewhere (`/hostfs`).
    pub filesystem_root: Option<PathBuf>,
    /// The agent's own `/proc/<pid>` directory (always the agent's view, not `proc_root`).
    pub self_proc: PathBuf,
}

impl Default for HostOptions {
    fn default() -> Self {
        Self {
            proc_root: PathBuf::from("/proc"),
            sys_root: PathBuf::from("/sys"),
            include_tmpfs: false,
            filesystem_root: None,
            self_proc: PathBuf::from("/proc/self"),
        }
    }
}

/// A source that failed during a collection.
#[derive(Debug)]
pub struct SourceError {
    /// `cpu`, `memory`, `load`, `filesystem`, `disk`, `network` or `process`.
    pub source: &'static str,
    pub error: Error,
}

/// The result of one collection.
#[derive(Debug)]
pub struct Collection {
    pub metrics: MetricSet,
    pub errors: Vec<SourceError>,
}

/// Reads host metrics from `/proc` and `/sys`.
#[derive(Debug)]
pub struct HostCollector {
    opts: HostOptions,
    ticks_per_second: f64,
    page_size: u64,
    /// Start time for counters when the boot time is unknown.
    agent_start_nanos: u64,
}

impl HostCollector {
    pub fn new(opts: HostOptions, agent_start: SystemTime) -> Self {
        Self {
            opts,
            ticks_per_second: rustix::param::clock_ticks_per_second().max(1) as f64,
            page_size: rustix::param::page_size() as u64,
            agent_start_nanos: unix_nanos(agent_start),
        }
    }

    /// Read every source once; timestamps are `now`.
    pub fn collect(&self, now: SystemTime) -> Collection {
        let mut set = MetricSet::new(unix_nanos(now));
        let mut errors = Vec::new();
        let proc_root = &self.opts.proc_root;

        let mut boot_nanos = None;
        if let Some(stat) = read_parsed(
            &mut errors,
            "cpu",
            proc_root.join("stat"),
            cpu::parse_proc_stat,
        ) {
            boot_nanos = stat.boot_time_secs.map(|s| s.saturating_mul(1_000_000_000));
            let start = boot_nanos.unwrap_or(self.agent_start_nanos);
            cpu::push_metrics(&mut set, &stat, self.ticks_per_second, start);
            for c in &stat.cpus {
                let path = self
                    .opts
                    .sys_root
                    .join("devices/system/cpu")
                    .join(&c.cpu)
                    .join("cpufreq/scaling_cur_freq");
                if let Some(hz) = std::fs::read_to_string(path)
                    .ok()
                    .and_then(|t| cpu::parse_frequency_khz(&t))
                {
                    set.push(&cpu::CPU_FREQUENCY, 0, &[("cpu", &c.cpu)], hz);
                }
            }
        }
        let start = boot_nanos.unwrap_or(self.agent_start_nanos);

        if let Some(mem) = read_parsed(
            &mut errors,
            "memory",
            proc_root.join("meminfo"),
            memory::parse_meminfo,
        ) {
            memory::push_metrics(&mut set, &mem, start);
        }
        if let Some(load) = read_parsed(
            &mut errors,
            "load",
            proc_root.join("loadavg"),
            load::parse_loadavg,
        ) {
            load::push_metrics(&mut set, load);
        }
        self.collect_filesystems(&mut set, &mut errors, start);
        if let Some(disks) = read_parsed(
            &mut errors,
            "disk",
            proc_root.join("diskstats"),
            disk::parse_diskstats,
        ) {
            disk::push_metrics(&mut set, &disks, start);
        }
        if let Some(ifs) = read_parsed(
            &mut errors,
            "network",
            self.pid1_or_self("net/dev"),
            network::parse_net_dev,
        ) {
            network::push_metrics(&mut set, &ifs, start);
        }
        if let Some(stat) = read_parsed(
            &mut errors,
            "process",
            self.opts.self_proc.join("stat"),
            process::parse_process_stat,
        ) {
            let process_start = match boot_nanos {
                Some(boot) => boot
                    .saturating_add((stat.start_ticks as f64 / self.ticks_per_second * 1e9) as u64),
                None => self.agent_start_nanos,
            };
            process::push_metrics(
                &mut set,
                &stat,
                self.ticks_per_second,
                self.page_size,
                process_start,
            );
        }
        Collection {
            metrics: set,
            errors,
        }
    }

    /// `<proc_root>/1/<rel>` if readable, else `<proc_root>/self/<rel>`.
    fn pid1_or_self(&self, rel: &str) -> PathBuf {
        let pid1 = self.opts.proc_root.join("1").join(rel);
        if std::fs::File::open(&pid1).is_ok() {
            pid1
        } else {
            self.opts.proc_root.join("self").join(rel)
        }
    }

    fn collect_filesystems(&self, set: &mut MetricSet, errors: &mut Vec<SourceError>, start: u64) {
        let path = self.pid1_or_self("mounts");
        let include_tmpfs = self.opts.include_tmpfs;
        let Some(mounts) = read_parsed(errors, "filesystem", path, |t| {
            Ok::<_, String>(filesystem::parse_mounts(t, include_tmpfs))
        }) else {
            return;
        };
        for mount in &mounts {
            match filesystem::stat(self.opts.filesystem_root.as_deref(), &mount.mountpoint) {
                Ok(usage) => filesystem::push_metrics(set, mount, &usage, start),
                Err((path, message)) => errors.push(SourceError {
                    source: "filesystem",
                    error: Error::io(path, std::io::Error::other(message)),
                }),
            }
        }
    }
}

fn read_parsed<T>(
    errors: &mut Vec<SourceError>,
    source: &'static str,
    path: PathBuf,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Option<T> {
    let result = std::fs::read_to_string(&path)
        .map_err(|e| Error::io(&path, e))
        .and_then(|text| parse(&text).map_err(|m| Error::parse(&path, m)));
    match result {
        Ok(v) => Some(v),
        Err(error) => {
            errors.push(SourceError { source, error });
            None
        }
    }
}

/// Check that the configured roots look like procfs / sysfs (used by `validate`).
pub fn check_roots(proc_root: &Path, sys_root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    if !proc_root.join("stat").is_file() {
        problems.push(format!(
            "proc_root {}: no 'stat' file, is it a procfs mount?",
            proc_root.display()
        ));
    }
    if !sys_root.is_dir() {
        problems.push(format!("sys_root {}: not a directory", sys_root.display()));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fixtures::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn write(root: &Path, rel: &str, text: &str) {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn fake_roots() -> (tempfile::TempDir, HostOptions) {
        let dir = tempfile::tempdir().unwrap();
        let proc_root = dir.path().join("proc");
        write(&proc_root, "stat", PROC_STAT);
        write(&proc_root, "meminfo", MEMINFO);
        write(&proc_root, "loadavg", LOADAVG);
        // Only the real root filesystem, so statvfs works on any machine.
        write(
            &proc_root,
            "self/mounts",
            "/dev/vda / ext4 rw,relatime 0 0\nproc /proc proc rw 0 0\n",
        );
        write(&proc_root, "diskstats", DISKSTATS);
        write(&proc_root, "self/net/dev", NET_DEV);
        write(&proc_root, "1234/stat", SELF_STAT);
        let sys_root = dir.path().join("sys");
        write(
            &sys_root,
            "devices/system/cpu/cpu1/cpufreq/scaling_cur_freq",
            "1800000\n",
        );
        let opts = HostOptions {
            self_proc: proc_root.join("1234"),
            proc_root,
            sys_root,
            include_tmpfs: false,
            filesystem_root: None,
        };
        (dir, opts)
    }

    #[test]
    fn collects_every_source_from_configured_roots() {
        let (_dir, opts) = fake_roots();
        let collector = HostCollector::new(opts, UNIX_EPOCH + Duration::from_secs(1_800_000_000));
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_010);
        let c = collector.collect(now);
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        let names: Vec<_> = c
            .metrics
            .metrics()
            .iter()
            .map(|m| m.name.as_str())
            .collect();
        for want in [
            "system.cpu.time",
            "system.cpu.logical.count",
            "system.processes.count",
            "system.processes.created",
            "system.cpu.frequency",
            "system.memory.usage",
            "system.memory.limit",
            "system.memory.utilization",
            "system.cpu.load_average.1m",
            "system.cpu.load_average.15m",
            "system.filesystem.usage",
            "system.filesystem.inodes.usage",
            "system.filesystem.utilization",
            "system.disk.io",
            "system.disk.operations",
            "system.disk.io_time",
            "system.disk.operation_time",
            "system.network.io",
            "system.network.packets",
            "system.network.errors",
            "system.network.dropped",
            "process.cpu.time",
            "process.memory.usage",
        ] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
        // Kernel counters start at boot time (btime in the fixture).
        let Some(sightline_proto::otlp::metrics::v1::metric::Data::Sum(cpu)) =
            &c.metrics.metrics()[0].data
        else {
            panic!("cpu time is a sum")
        };
        assert_eq!(
            cpu.data_points[0].start_time_unix_nano,
            1_795_446_796_000_000_000
        );
        assert_eq!(cpu.data_points[0].time_unix_nano, 1_800_000_010_000_000_000);
    }

    #[test]
    fn mount_and_interface_tables_prefer_pid_1() {
        let (_dir, opts) = fake_roots();
        write(&opts.proc_root, "1/mounts", "/dev/vda / ext4 ro 0 0\n");
        write(
            &opts.proc_root,
            "1/net/dev",
            "Inter-|\n face |\n  ens5: 1 2 3 4 0 0 0 0 5 6 7 8 0 0 0 0\n",
        );
        let c = HostCollector::new(opts, UNIX_EPOCH).collect(UNIX_EPOCH);
        assert!(c.errors.is_empty(), "{:?}", c.errors);
        let debug = format!("{:?}", c.metrics.metrics());
        assert!(debug.contains("ens5") && !debug.contains("eth0"));
        assert!(debug.contains("\"ro\""), "mode from 1/mounts");
    }

    #[test]
    fn one_missing_source_does_not_stop_the_others() {
        let (_dir, opts) = fake_roots();
        std::fs::remove_file(opts.proc_root.join("diskstats")).unwrap();
        std::fs::write(opts.proc_root.join("loadavg"), "garbage").unwrap();
        let collector = HostCollector::new(opts, UNIX_EPOCH);
        let c = collector.collect(UNIX_EPOCH + Duration::from_secs(5));
        let failed: Vec<_> = c.errors.iter().map(|e| e.source).collect();
        assert_eq!(failed, ["load", "disk"]);
        assert!(c.errors[1].error.to_string().contains("diskstats"));
        assert!(c
            .metrics
            .metrics()
            .iter()
            .any(|m| m.name == "system.network.io"));
    }

    #[test]
    fn collects_from_the_real_proc() {
        let collector = HostCollector::new(HostOptions::default(), SystemTime::now());
        let c = collector.collect(SystemTime::now());
        assert!(c.metrics.point_count() > 20);
        assert!(c
            .metrics
            .metrics()
            .iter()
            .any(|m| m.name == "system.cpu.time"));
        assert!(check_roots(Path::new("/proc"), Path::new("/sys")).is_empty());
        assert_eq!(check_roots(Path::new("/nope"), Path::new("/nope")).len(), 2);
    }
}
