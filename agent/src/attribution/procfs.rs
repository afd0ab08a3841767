//! From a TCP peer address to the process that owns the socket, through procfs.
//!
//! - [`socket_inode`]: `/proc/net/tcp` and `/proc/net/tcp6` list every TCP socket of
//!   the agent's network namespace as `local remote ... inode`. The sending
//!   application's socket is the one whose *local* address is the peer we saw and
//!   whose *remote* address is our listening address.
//! - [`InodeOwners`]: which pid holds `socket:[inode]`, found by reading the
//!   `/proc/<pid>/fd/*` links. A full scan is the expensive part, so every socket seen
//!   during a scan is remembered (bounded map, cleared when full) and a later lookup
//!   of another connection of the same process is a map hit.
//! - [`cgroup_paths`]: the cgroup path(s) of a pid from `/proc/<pid>/cgroup`.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

/// Parses the `ADDR:PORT` hex form of `/proc/net/tcp{,6}` (addresses in the kernel's
/// byte order: each 32-bit word little-endian on the machines we run on).
pub fn parse_hex_addr(text: &str) -> Option<SocketAddr> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |s: &str| u32::from_str_radix(s, 16).ok().map(u32::swap_bytes);
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(addr)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                let w = word(addr.get(i * 8..i * 8 + 8)?)?;
                bytes[i * 4..i * 4 + 4].copy_from_slice(&w.to_be_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// An IPv4-mapped IPv6 address as plain IPv4, so both forms compare equal.
pub fn canonical(a: SocketAddr) -> SocketAddr {
    match a.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), a.port()),
            None => a,
        },
        IpAddr::V4(_) => a,
    }
}

/// Inode of the socket whose local address is `peer` and remote address is `ours`,
/// searched in `table` (the text of `/proc/net/tcp` or `tcp6`).
pub fn find_inode(table: &str, peer: SocketAddr, ours: SocketAddr) -> Option<u64> {
    let (peer, ours) = (canonical(peer), canonical(ours));
    for line in table.lines().skip(1) {
        let mut f = line.split_whitespace();
        let (Some(_sl), Some(local), Some(remote)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        let (Some(local), Some(remote)) = (parse_hex_addr(local), parse_hex_addr(remote)) else {
            continue;
        };
        if canonical(local) != peer || canonical(remote).port() != ours.port() {
            continue;
        }
        // An unspecified listening address matches any destination IP.
        let remote = canonical(remote);
        if !ours.ip().is_unspecified() && remote.ip() != ours.ip() {
            continue;
        }
        // Fields after rem_address: st tx:rx tr:when retrnsmt uid timeout inode
        let inode = f.nth(6)?.parse::<u64>().ok()?;
        if inode != 0 {
            return Some(inode);
        }
    }
    None
}

/// Inode of the peer's socket, from `<proc_root>/net/tcp` and `tcp6`.
pub fn socket_inode(proc_root: &Path, peer: SocketAddr, ours: SocketAddr) -> Option<u64> {
    ["net/tcp", "net/tcp6"].iter().find_map(|name| {
        let text = std::fs::read_to_string(proc_root.join(name)).ok()?;
        find_inode(&text, peer, ours)
    })
}

/// `socket:[inode]` → pid, learned by scanning `/proc/*/fd`.
#[derive(Debug)]
pub struct InodeOwners {
    owners: HashMap<u64, u32>,
    capacity: usize,
    /// Full scans done (for tests and the debug log).
    pub scans: u64,
}

impl InodeOwners {
    pub fn new(capacity: usize) -> Self {
        Self {
            owners: HashMap::new(),
            capacity: capacity.max(16),
            scans: 0,
        }
    }

    /// The pid holding socket `inode`; scans `/proc` when it is not known yet.
    pub fn owner(&mut self, proc_root: &Path, inode: u64) -> Option<u32> {
        if let Some(pid) = self.owners.get(&inode) {
            // The pid may have exited and the inode been reused by then: check the link.
            if holds(proc_root, *pid, inode) {
                return Some(*pid);
            }
        }
        self.scan(proc_root);
        self.owners.get(&inode).copied()
    }

    fn remember(&mut self, inode: u64, pid: u32) {
        if self.owners.len() >= self.capacity {
            self.owners.clear();
        }
        self.owners.insert(inode, pid);
    }

    fn scan(&mut self, proc_root: &Path) {
        self.scans += 1;
        let Ok(dir) = std::fs::read_dir(proc_root) else {
            return;
        };
        for entry in dir.flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
                continue;
            };
            for fd in fds.flatten() {
                if let Some(inode) = std::fs::read_link(fd.path())
                    .ok()
                    .and_then(|l| socket_of_link(l.to_str()?))
                {
                    self.remember(inode, pid);
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.owners.len()
    }

    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }
}

fn socket_of_link(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

fn holds(proc_root: &Path, pid: u32, inode: u64) -> bool {
    let Ok(fds) = std::fs::read_dir(proc_root.join(pid.to_string()).join("fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .ok()
            .and_then(|l| socket_of_link(l.to_str()?))
            == Some(inode)
    })
}

/// The cgroup paths of `pid` (`/proc/<pid>/cgroup`: `id:controllers:path`), without
/// the leading `/`, in file order, duplicates and the root removed.
pub fn cgroup_paths(proc_root: &Path, pid: u32) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(proc_root.join(pid.to_string()).join("cgroup")) else {
        return Vec::new();
    };
    parse_cgroup_file(&text)
}

/// See [`cgroup_paths`].
pub fn parse_cgroup_file(text: &str) -> Vec<String> {
    let mut paths: Vec<String> = Vec::new();
    for p in text.lines().filter_map(|l| l.splitn(3, ':').nth(2)) {
        let p = p.trim().trim_start_matches('/');
        if !p.is_empty() && !paths.iter().any(|q| q == p) {
            paths.push(p.to_string());
        }
    }
    paths
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:10E1 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 11111 1 0000000000000000 100 0 0 10 0\n\
   1: 0100007F:D431 0100007F:10E1 01 00000000:00000000 00:00000000 00000000     0        0 22222 1 0000000000000000 20 4 30 10 -1\n\
   2: 0100007F:10E1 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 33333 1 0000000000000000 20 4 30 10 -1\n";

    #[test]
    fn finds_the_senders_socket_not_ours() {
        let peer: SocketAddr = "127.0.0.1:54321".parse().unwrap();
        let ours: SocketAddr = "127.0.0.1:4321".parse().unwrap();
        assert_eq!(find_inode(TCP, peer, ours), Some(22222));
        let any: SocketAddr = "0.0.0.0:4321".parse().unwrap();
        assert_eq!(find_inode(TCP, peer, any), Some(22222));
        let other: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert_eq!(find_inode(TCP, other, ours), None);
    }

    #[test]
    fn ipv6_and_mapped_addresses() {
        // ::1 port 8080 and ::ffff:127.0.0.1 port 80
        assert_eq!(
            parse_hex_addr("00000000000000000000000001000000:1F90").unwrap(),
            "[::1]:8080".parse().unwrap()
        );
        let mapped = parse_hex_addr("0000000000000000FFFF00000100007F:0050").unwrap();
        assert_eq!(canonical(mapped), "127.0.0.1:80".parse().unwrap());
        assert!(parse_hex_addr("zz:1").is_none());
    }

    #[test]
    fn cgroup_file_v1_and_v2() {
        let v1 = "12:pids:/docker/abc\n4:memory:/docker/abc\n1:name=systemd:/system.slice/docker.service\n0::/\n";
        assert_eq!(
            parse_cgroup_file(v1),
            vec![
                "docker/abc".to_string(),
                "system.slice/docker.service".to_string()
            ]
        );
        assert_eq!(
            parse_cgroup_file("0::/kubepods.slice/x.scope\n"),
            vec!["kubepods.slice/x.scope"]
        );
    }

    #[test]
    fn finds_this_process_socket_owner() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let ours = listener.local_addr().unwrap();
        let client = std::net::TcpStream::connect(ours).unwrap();
        let peer = client.local_addr().unwrap();
        let proc_root = Path::new("/proc");
        let inode = socket_inode(proc_root, peer, ours).expect("client socket in /proc/net/tcp");
        let mut owners = InodeOwners::new(1000);
        assert_eq!(owners.owner(proc_root, inode), Some(std::process::id()));
        let scans = owners.scans;
        assert_eq!(owners.owner(proc_root, inode), Some(std::process::id()));
        assert_eq!(owners.scans, scans, "second lookup is a cache hit");
    }
}
