//! Filesystems from the mount table (`<proc_root>/1/mounts`, else `self/mounts`) and `statvfs(2)`:
//! `system.filesystem.usage{device,mountpoint,type,mode,state=used|free|reserved}`,
//! `system.filesystem.inodes.usage{...,state=used|free}` and
//! `system.filesystem.utilization` (used / (used + free), as `df` computes it).
//! Pseudo filesystems (proc, sysfs, cgroup, devpts, ...) are skipped; tmpfs only on request.

use std::path::{Path, PathBuf};

use crate::otlp_metric::{MetricSet, MetricSpec};

pub const FS_USAGE: MetricSpec = MetricSpec::updown(
    "system.filesystem.usage",
    "By",
    "Filesystem bytes used, free (available to unprivileged users) and reserved for root.",
);
pub const FS_INODES_USAGE: MetricSpec = MetricSpec::updown(
    "system.filesystem.inodes.usage",
    "{inode}",
    "Filesystem inodes used and free.",
);
pub const FS_UTILIZATION: MetricSpec = MetricSpec::gauge(
    "system.filesystem.utilization",
    "1",
    "Fraction of the filesystem's non-reserved space in use.",
);

/// Filesystem types that never hold user data.
const PSEUDO_FS: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "efivarfs",
    "fusectl",
    "hugetlbfs",
    "mqueue",
    "nsfs",
    "proc",
    "pstore",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "squashfs",
    "sysfs",
    "tracefs",
];

/// One line of the mount table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub device: String,
    pub mountpoint: String,
    pub fs_type: String,
    /// `ro` or `rw`.
    pub mode: String,
}

/// Parse a mount table (`/proc/self/mounts` format), keeping real filesystems only. When
/// a mountpoint appears twice the last entry wins, as it is the one visible.
pub fn parse_mounts(text: &str, include_tmpfs: bool) -> Vec<Mount> {
    let mut mounts: Vec<Mount> = Vec::new();
    for line in text.lines() {
        let mut f = line.split_ascii_whitespace();
        let (Some(device), Some(mountpoint), Some(fs_type), Some(options)) =
            (f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        if PSEUDO_FS.contains(&fs_type) || (fs_type == "tmpfs" && !include_tmpfs) {
            continue;
        }
        let mode = if options.split(',').any(|o| o == "ro") {
            "ro"
        } else {
            "rw"
        };
        let mount = Mount {
            device: unescape_octal(device),
            mountpoint: unescape_octal(mountpoint),
            fs_type: fs_type.to_string(),
            mode: mode.to_string(),
        };
        mounts.retain(|m| m.mountpoint != mount.mountpoint);
        mounts.push(mount);
    }
    mounts
}

/// The kernel escapes space, tab, newline and backslash in mount paths as `\ooo`.
fn unescape_octal(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            let escaped = bytes
                .get(i + 1..i + 4)
                .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)))
                .and_then(|d| std::str::from_utf8(d).ok())
                .and_then(|d| u8::from_str_radix(d, 8).ok());
            if let Some(v) = escaped {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Space accounting of one filesystem in bytes and inodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsUsage {
    pub used: u64,
    pub free: u64,
    pub reserved: u64,
    pub inodes_used: u64,
    pub inodes_free: u64,
}

impl FsUsage {
    /// From raw `statvfs` fields.
    pub fn from_statvfs(
        frsize: u64,
        blocks: u64,
        bfree: u64,
        bavail: u64,
        files: u64,
        ffree: u64,
    ) -> Self {
        Self {
            used: blocks.saturating_sub(bfree).saturating_mul(frsize),
            free: bavail.saturating_mul(frsize),
            reserved: bfree.saturating_sub(bavail).saturating_mul(frsize),
            inodes_used: files.saturating_sub(ffree),
            inodes_free: ffree,
        }
    }
}

/// `statvfs` of `root_path` + `mountpoint` (root_path lets a containerised agent look at
/// the host's filesystems mounted under e.g. `/hostfs`).
pub fn stat(root_path: Option<&Path>, mountpoint: &str) -> Result<FsUsage, (PathBuf, String)> {
    let path = match root_path {
        Some(root) => root.join(mountpoint.trim_start_matches('/')),
        None => PathBuf::from(mountpoint),
    };
    match rustix::fs::statvfs(&path) {
        Ok(s) => Ok(FsUsage::from_statvfs(
            s.f_frsize, s.f_blocks, s.f_bfree, s.f_bavail, s.f_files, s.f_ffree,
        )),
        Err(e) => Err((path, e.to_string())),
    }
}

pub fn push_metrics(set: &mut MetricSet, mount: &Mount, usage: &FsUsage, start: u64) {
    let base = [
        ("device", mount.device.as_str()),
        ("mountpoint", mount.mountpoint.as_str()),
        ("type", mount.fs_type.as_str()),
        ("mode", mount.mode.as_str()),
    ];
    let with_state = |state: &'static str| {
        let mut attrs = base.to_vec();
        attrs.push(("state", state));
        attrs
    };
    set.push(&FS_USAGE, start, &with_state("used"), usage.used);
    set.push(&FS_USAGE, start, &with_state("free"), usage.free);
    set.push(&FS_USAGE, start, &with_state("reserved"), usage.reserved);
    set.push(
        &FS_INODES_USAGE,
        start,
        &with_state("used"),
        usage.inodes_used,
    );
    set.push(
        &FS_INODES_USAGE,
        start,
        &with_state("free"),
        usage.inodes_free,
    );
    let denominator = usage.used.saturating_add(usage.free);
    if denominator > 0 {
        set.push(
            &FS_UTILIZATION,
            start,
            &base,
            usage.used as f64 / denominator as f64,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::fixtures::MOUNTS;

    #[test]
    fn keeps_real_filesystems_once() {
        let mounts = parse_mounts(MOUNTS, false);
        let points: Vec<_> = mounts.iter().map(|m| m.mountpoint.as_str()).collect();
        assert_eq!(
            points,
            ["/", "/var/lib/docker/overlay2/abc/merged", "/mnt/my data"]
        );
        assert_eq!(
            mounts[0],
            Mount {
                device: "/dev/vda".into(),
                mountpoint: "/".into(),
                fs_type: "ext4".into(),
                mode: "rw".into()
            }
        );
        assert_eq!(mounts[2].mode, "ro");
    }

    #[test]
    fn tmpfs_on_request_deduplicated() {
        let mounts = parse_mounts(MOUNTS, true);
        let tmpfs: Vec<_> = mounts
            .iter()
            .filter(|m| m.fs_type == "tmpfs")
            .map(|m| m.mountpoint.as_str())
            .collect();
        assert_eq!(
            tmpfs,
            [
                "/mnt/sandboxing/model_tools_env/v1/python",
                "/dev/shm",
                "/sys/fs/cgroup"
            ]
        );
    }

    #[test]
    fn unescapes_octal_and_keeps_bad_escapes() {
        assert_eq!(unescape_octal(r"/a\040b\011c"), "/a b\tc");
        assert_eq!(unescape_octal(r"/trailing\04"), r"/trailing\04");
        assert_eq!(unescape_octal(r"\x"), r"\x");
    }

    #[test]
    fn statvfs_accounting() {
        // 4 KiB blocks: 1000 total, 400 free of which 300 available to users.
        let u = FsUsage::from_statvfs(4096, 1000, 400, 300, 50, 20);
        assert_eq!(u.used, 600 * 4096);
        assert_eq!(u.free, 300 * 4096);
        assert_eq!(u.reserved, 100 * 4096);
        assert_eq!((u.inodes_used, u.inodes_free), (30, 20));
        let mut set = MetricSet::new(1);
        let mount = &parse_mounts(MOUNTS, false)[0];
        push_metrics(&mut set, mount, &u, 0);
        assert_eq!(set.point_count(), 6);
        let util = &set.metrics()[2];
        assert_eq!(util.name, "system.filesystem.utilization");
    }

    #[test]
    fn stats_the_real_root() {
        let u = stat(None, "/").unwrap();
        assert!(u.used + u.free > 0);
        assert!(stat(Some(Path::new("/nonexistent-root")), "/").is_err());
    }
}
