//! Reading one container's resource usage from its cgroup files.
//!
//! cgroup v2 (one directory): `cpu.stat` (usage/user/system_usec, nr_periods,
//! nr_throttled, throttled_usec), `memory.current`, `memory.stat` (anon, file,
//! inactive_file), `memory.max`, `memory.events` (oom_kill), `io.stat` (rbytes, wbytes,
//! rios, wios per `MAJ:MIN`), `pids.current`.
//! cgroup v1 (a directory per controller): `cpuacct.usage` (+ `cpuacct.usage_user` /
//! `usage_sys`, or `cpuacct.stat` ticks), `cpu.stat` (nr_periods, nr_throttled,
//! throttled_time ns), `memory.usage_in_bytes`, `memory.stat` (total_rss, total_cache,
//! total_inactive_file), `memory.limit_in_bytes`, `memory.oom_control` (oom_kill),
//! `blkio.throttle.io_service_bytes` / `io_serviced`, `pids.current`.
//! The working set is usage − inactive_file, floored at 0, as cAdvisor computes it.
//! Network counters come from `<proc_root>/<pid>/net/dev` of the first process in the
//! container, only when that process has its own network namespace (a container sharing
//! the host's namespace would otherwise report the node's interfaces): compared with PID
//! 1's namespace, or the agent's own when PID 1's link is not readable.
//! A file that is missing or malformed leaves its fields `None`; the rest is still read.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::discovery::{CgroupPaths, Controller};
use crate::host::network::{parse_net_dev, InterfaceStats};

/// Read/write bytes and operations of one block device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceIo {
    /// `MAJ:MIN`, or the kernel device name when `/sys/dev/block/MAJ:MIN/uevent` names it.
    pub device: String,
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub read_ops: u64,
    pub write_ops: u64,
}

/// Everything read for one container in one collection.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerStats {
    pub cpu_total_s: Option<f64>,
    pub cpu_user_s: Option<f64>,
    pub cpu_system_s: Option<f64>,
    pub cpu_periods: Option<u64>,
    pub cpu_throttled_periods: Option<u64>,
    pub cpu_throttled_s: Option<f64>,
    pub memory_usage: Option<u64>,
    pub memory_working_set: Option<u64>,
    pub memory_rss: Option<u64>,
    pub memory_file: Option<u64>,
    pub memory_limit: Option<u64>,
    pub oom_kills: Option<u64>,
    pub io: Vec<DeviceIo>,
    pub pids: Option<u64>,
    pub network: Vec<InterfaceStats>,
}

/// `key value` lines (cpu.stat, memory.stat, memory.events, memory.oom_control).
pub fn parse_flat_keyed(text: &str) -> HashMap<&str, u64> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let k = it.next()?;
            let v = it.next()?.parse().ok()?;
            Some((k, v))
        })
        .collect()
}

/// A single number, or `max` (no limit) as `None`.
pub fn parse_single(text: &str) -> Option<u64> {
    let t = text.trim();
    if t == "max" {
        return None;
    }
    t.parse().ok()
}

/// v2 `io.stat`: `8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0`.
pub fn parse_io_stat(text: &str) -> Vec<DeviceIo> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let Some(device) = it.next() else { continue };
        let mut d = DeviceIo {
            device: device.to_string(),
            ..Default::default()
        };
        for kv in it {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let Ok(v) = v.parse::<u64>() else { continue };
            match k {
                "rbytes" => d.read_bytes = v,
                "wbytes" => d.write_bytes = v,
                "rios" => d.read_ops = v,
                "wios" => d.write_ops = v,
                _ => {}
            }
        }
        out.push(d);
    }
    out
}

/// v1 `blkio.throttle.io_service_bytes` / `io_serviced`: `8:0 Read 1234` lines plus a
/// `Total` line; returns `(device → (read, write))`.
pub fn parse_blkio(text: &str) -> BTreeMap<String, (u64, u64)> {
    let mut out: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [device, op, value] = f[..] else { continue };
        let Ok(v) = value.parse::<u64>() else {
            continue;
        };
        let slot = out.entry(device.to_string()).or_default();
        match op {
            "Read" => slot.0 += v,
            "Write" => slot.1 += v,
            _ => {}
        }
    }
    out
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn read_u64(path: &Path) -> Option<u64> {
    read(path).as_deref().and_then(parse_single)
}

/// Limits at or above this are "unlimited" in v1 (the kernel reports PAGE_COUNTER_MAX pages).
const V1_UNLIMITED: u64 = 1 << 62;

/// Read a container's stats. `proc_root` is for `cgroup.procs` pids; `sys_root` resolves
/// device names.
pub fn read_stats(paths: &CgroupPaths, proc_root: &Path, sys_root: &Path) -> ContainerStats {
    let mut s = match paths {
        CgroupPaths::V2(dir) => read_v2(dir),
        CgroupPaths::V1(map) => read_v1(map),
    };
    for d in &mut s.io {
        if let Some(name) = device_name(sys_root, &d.device) {
            d.device = name;
        }
    }
    if let Some(dir) = paths.any_dir() {
        s.network = read_network(dir, proc_root);
    }
    s
}

fn read_v2(dir: &Path) -> ContainerStats {
    let mut s = ContainerStats::default();
    if let Some(text) = read(&dir.join("cpu.stat")) {
        let m = parse_flat_keyed(&text);
        let secs = |k: &str| m.get(k).map(|v| *v as f64 / 1e6);
        s.cpu_total_s = secs("usage_usec");
        s.cpu_user_s = secs("user_usec");
        s.cpu_system_s = secs("system_usec");
        s.cpu_periods = m.get("nr_periods").copied();
        s.cpu_throttled_periods = m.get("nr_throttled").copied();
        s.cpu_throttled_s = secs("throttled_usec");
    }
    s.memory_usage = read_u64(&dir.join("memory.current"));
    if let Some(text) = read(&dir.join("memory.stat")) {
        let m = parse_flat_keyed(&text);
        s.memory_rss = m.get("anon").copied();
        s.memory_file = m.get("file").copied();
        if let Some(usage) = s.memory_usage {
            let inactive = m.get("inactive_file").copied().unwrap_or(0);
            s.memory_working_set = Some(usage.saturating_sub(inactive));
        }
    }
    s.memory_limit = read_u64(&dir.join("memory.max"));
    if let Some(text) = read(&dir.join("memory.events")) {
        s.oom_kills = parse_flat_keyed(&text).get("oom_kill").copied();
    }
    if let Some(text) = read(&dir.join("io.stat")) {
        s.io = parse_io_stat(&text);
    }
    s.pids = read_u64(&dir.join("pids.current"));
    s
}

fn read_v1(map: &BTreeMap<Controller, std::path::PathBuf>) -> ContainerStats {
    let mut s = ContainerStats::default();
    if let Some(dir) = map.get(&Controller::Cpuacct) {
        s.cpu_total_s = read_u64(&dir.join("cpuacct.usage")).map(|ns| ns as f64 / 1e9);
        let user = read_u64(&dir.join("cpuacct.usage_user"));
        let sys = read_u64(&dir.join("cpuacct.usage_sys"));
        if let (Some(u), Some(k)) = (user, sys) {
            s.cpu_user_s = Some(u as f64 / 1e9);
            s.cpu_system_s = Some(k as f64 / 1e9);
        } else if let Some(text) = read(&dir.join("cpuacct.stat")) {
            let m = parse_flat_keyed(&text);
            let hz = rustix::param::clock_ticks_per_second().max(1) as f64;
            s.cpu_user_s = m.get("user").map(|t| *t as f64 / hz);
            s.cpu_system_s = m.get("system").map(|t| *t as f64 / hz);
        }
    }
    if let Some(dir) = map.get(&Controller::Cpu) {
        if let Some(text) = read(&dir.join("cpu.stat")) {
            let m = parse_flat_keyed(&text);
            s.cpu_periods = m.get("nr_periods").copied();
            s.cpu_throttled_periods = m.get("nr_throttled").copied();
            s.cpu_throttled_s = m.get("throttled_time").map(|ns| *ns as f64 / 1e9);
        }
    }
    if let Some(dir) = map.get(&Controller::Memory) {
        s.memory_usage = read_u64(&dir.join("memory.usage_in_bytes"));
        if let Some(text) = read(&dir.join("memory.stat")) {
            let m = parse_flat_keyed(&text);
            s.memory_rss = m.get("total_rss").or(m.get("rss")).copied();
            s.memory_file = m.get("total_cache").or(m.get("cache")).copied();
            if let Some(usage) = s.memory_usage {
                let inactive = m
                    .get("total_inactive_file")
                    .or(m.get("inactive_file"))
                    .copied()
                    .unwrap_or(0);
                s.memory_working_set = Some(usage.saturating_sub(inactive));
            }
        }
        s.memory_limit = read_u64(&dir.join("memory.limit_in_bytes")).filter(|l| *l < V1_UNLIMITED);
        if let Some(text) = read(&dir.join("memory.oom_control")) {
            s.oom_kills = parse_flat_keyed(&text).get("oom_kill").copied();
        }
    }
    if let Some(dir) = map.get(&Controller::Blkio) {
        let bytes = read(&dir.join("blkio.throttle.io_service_bytes"))
            .map(|t| parse_blkio(&t))
            .unwrap_or_default();
        let ops = read(&dir.join("blkio.throttle.io_serviced"))
            .map(|t| parse_blkio(&t))
            .unwrap_or_default();
        let mut devices: Vec<&String> = bytes.keys().chain(ops.keys()).collect();
        devices.sort();
        devices.dedup();
        s.io = devices
            .into_iter()
            .map(|d| {
                let (rb, wb) = bytes.get(d).copied().unwrap_or_default();
                let (ro, wo) = ops.get(d).copied().unwrap_or_default();
                DeviceIo {
                    device: d.clone(),
                    read_bytes: rb,
                    write_bytes: wb,
                    read_ops: ro,
                    write_ops: wo,
                }
            })
            .collect();
    }
    if let Some(dir) = map.get(&Controller::Pids) {
        s.pids = read_u64(&dir.join("pids.current"));
    }
    s
}

/// `DEVNAME=` from `<sys_root>/dev/block/MAJ:MIN/uevent`.
fn device_name(sys_root: &Path, majmin: &str) -> Option<String> {
    if !majmin.contains(':') {
        return None;
    }
    let text = read(&sys_root.join("dev/block").join(majmin).join("uevent"))?;
    text.lines()
        .find_map(|l| l.strip_prefix("DEVNAME="))
        .map(str::to_string)
}

/// Interfaces seen by the container's first process, if it has its own network namespace.
fn read_network(dir: &Path, proc_root: &Path) -> Vec<InterfaceStats> {
    let Some(procs) = read(&dir.join("cgroup.procs")) else {
        return Vec::new();
    };
    // The node's namespace is PID 1's; where that is not readable (a sandbox), the agent's
    // own (a DaemonSet runs with hostNetwork).
    let host = std::fs::read_link(proc_root.join("1/ns/net"))
        .or_else(|_| std::fs::read_link(proc_root.join("self/ns/net")))
        .ok();
    for pid in procs.lines().filter_map(|l| l.trim().parse::<u32>().ok()) {
        let pid_dir = proc_root.join(pid.to_string());
        let own = std::fs::read_link(pid_dir.join("ns/net")).ok();
        if own.is_none() {
            // The process is gone (or not visible); try the next one.
            continue;
        }
        if own == host {
            return Vec::new();
        }
        return read(&pid_dir.join("net/dev"))
            .and_then(|t| parse_net_dev(&t).ok())
            .unwrap_or_default();
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_files() {
        let cpu = "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\nnr_periods 10\nnr_throttled 2\nthrottled_usec 30000\n";
        let m = parse_flat_keyed(cpu);
        assert_eq!(m["usage_usec"], 2_500_000);
        assert_eq!(m["throttled_usec"], 30_000);
        assert_eq!(parse_single("max\n"), None);
        assert_eq!(parse_single("1048576\n"), Some(1_048_576));
        assert_eq!(parse_single("garbage"), None);
        let io = parse_io_stat(
            "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n253:1 rbytes=1 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n",
        );
        assert_eq!(io.len(), 2);
        assert_eq!(
            io[0],
            DeviceIo {
                device: "8:0".into(),
                read_bytes: 4096,
                write_bytes: 8192,
                read_ops: 1,
                write_ops: 2
            }
        );
    }

    #[test]
    fn v1_blkio() {
        let text = "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Async 12288\n8:0 Discard 0\n8:0 Total 12288\nTotal 12288\n";
        let m = parse_blkio(text);
        assert_eq!(m.len(), 1);
        assert_eq!(m["8:0"], (4096, 8192));
    }

    #[test]
    fn v2_directory_with_working_set_and_unlimited_memory() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("cpu.stat"), "usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n").unwrap();
        std::fs::write(d.join("memory.current"), "10485760\n").unwrap();
        std::fs::write(
            d.join("memory.stat"),
            "anon 4194304\nfile 6291456\ninactive_file 2097152\n",
        )
        .unwrap();
        std::fs::write(d.join("memory.max"), "max\n").unwrap();
        std::fs::write(
            d.join("memory.events"),
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
        )
        .unwrap();
        std::fs::write(d.join("pids.current"), "7\n").unwrap();
        let s = read_stats(&CgroupPaths::V2(d.to_path_buf()), d, d);
        assert_eq!(s.cpu_total_s, Some(1.5));
        assert_eq!(s.cpu_user_s, Some(1.0));
        assert_eq!(s.memory_usage, Some(10_485_760));
        assert_eq!(s.memory_working_set, Some(10_485_760 - 2_097_152));
        assert_eq!(s.memory_rss, Some(4_194_304));
        assert_eq!(s.memory_limit, None);
        assert_eq!(s.oom_kills, Some(1));
        assert_eq!(s.pids, Some(7));
        assert!(s.io.is_empty() && s.network.is_empty());
    }

    #[test]
    fn v1_controller_directories() {
        let dir = tempfile::tempdir().unwrap();
        let mut map = BTreeMap::new();
        for c in Controller::ALL {
            let d = dir.path().join(c.name());
            std::fs::create_dir_all(&d).unwrap();
            map.insert(c, d);
        }
        let w = |c: &str, f: &str, t: &str| std::fs::write(dir.path().join(c).join(f), t).unwrap();
        w("cpuacct", "cpuacct.usage", "2500000000\n");
        w("cpuacct", "cpuacct.usage_user", "2000000000\n");
        w("cpuacct", "cpuacct.usage_sys", "500000000\n");
        w(
            "cpu",
            "cpu.stat",
            "nr_periods 40\nnr_throttled 3\nthrottled_time 120000000\nnr_bursts 0\nburst_time 0\n",
        );
        w("memory", "memory.usage_in_bytes", "104857600\n");
        w(
            "memory",
            "memory.stat",
            "cache 1\nrss 2\ntotal_cache 20971520\ntotal_rss 73400320\ntotal_inactive_file 10485760\n",
        );
        w("memory", "memory.limit_in_bytes", "9223372036854771712\n");
        w(
            "memory",
            "memory.oom_control",
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        );
        w(
            "blkio",
            "blkio.throttle.io_service_bytes",
            "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Async 12288\n8:0 Discard 0\n8:0 Total 12288\nTotal 12288\n",
        );
        w(
            "blkio",
            "blkio.throttle.io_serviced",
            "8:0 Read 1\n8:0 Write 2\n8:0 Sync 0\n8:0 Async 3\n8:0 Discard 0\n8:0 Total 3\nTotal 3\n",
        );
        w("pids", "pids.current", "5\n");
        let s = read_stats(&CgroupPaths::V1(map.clone()), dir.path(), dir.path());
        assert_eq!(s.cpu_total_s, Some(2.5));
        assert_eq!((s.cpu_user_s, s.cpu_system_s), (Some(2.0), Some(0.5)));
        assert_eq!(s.cpu_periods, Some(40));
        assert_eq!(s.cpu_throttled_periods, Some(3));
        assert_eq!(s.cpu_throttled_s, Some(0.12));
        assert_eq!(s.memory_usage, Some(104_857_600));
        assert_eq!(s.memory_working_set, Some(104_857_600 - 10_485_760));
        assert_eq!(s.memory_rss, Some(73_400_320));
        assert_eq!(s.memory_file, Some(20_971_520));
        assert_eq!(s.memory_limit, None, "PAGE_COUNTER_MAX means unlimited");
        assert_eq!(s.oom_kills, Some(2));
        assert_eq!(
            s.io,
            vec![DeviceIo {
                device: "8:0".into(),
                read_bytes: 4096,
                write_bytes: 8192,
                read_ops: 1,
                write_ops: 2
            }]
        );
        assert_eq!(s.pids, Some(5));
        // Without usage_user/usage_sys, cpuacct.stat ticks are used.
        std::fs::remove_file(dir.path().join("cpuacct/cpuacct.usage_user")).unwrap();
        w("cpuacct", "cpuacct.stat", "user 100\nsystem 50\n");
        let hz = rustix::param::clock_ticks_per_second() as f64;
        let s = read_stats(&CgroupPaths::V1(map), dir.path(), dir.path());
        assert_eq!(s.cpu_user_s, Some(100.0 / hz));
        assert_eq!(s.cpu_system_s, Some(50.0 / hz));
    }
}
