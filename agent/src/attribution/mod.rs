//! Which container sent a request: resource attributes for data that applications send
//! to the agent's OTLP receiver.
//!
//! ```text
//! peer (ip, port) of the TCP connection ─► /proc/net/tcp{,6}: socket inode of the sender
//!   ─► /proc/*/fd links: pid owning it (cached, bounded) ─► /proc/<pid>/cgroup
//!   ─► discovery::classify (container id, pod uid) + the agent's Inventory (names, image)
//!   ─► containers::metrics::resource: container.id, container.name, k8s.pod.name,
//!      k8s.namespace.name, k8s.container.name, k8s.pod.uid, k8s.node.name, host.name
//! ```
//! This works for senders in the agent's network namespace (localhost; host-network
//! pods). Only attributes the application did not set itself are added, and `host.name`
//! is added to every resource that lacks it. The peer → pid answer is cached for
//! [`PEER_TTL`] (a connection carries many requests); the cgroup and inventory lookups
//! run per request so names resolved later by discovery show up.

pub mod procfs;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use sightline_proto::otlp::common::v1::KeyValue;
use sightline_proto::otlp::resource::v1::Resource;

use crate::containers::discovery::{classify, CgroupPaths, Identity};
use crate::containers::inventory::{Entry, Inventory};
use crate::containers::metadata::Metadata;
use crate::otlp_metric::string_attr;
use procfs::InodeOwners;

/// How long a peer address → pid answer is reused.
pub const PEER_TTL: Duration = Duration::from_secs(30);
/// Most peer addresses remembered (the map is cleared when full).
pub const MAX_PEERS: usize = 4096;
/// Most socket inodes remembered from `/proc/*/fd` scans.
pub const MAX_INODES: usize = 65_536;

/// How the sender was identified (`source` label of `receiver_attributed_total`).
pub mod source {
    /// A local process found through its socket.
    pub const LOCAL_PROCESS: &str = "local_process";
}

/// Attributes for one sender.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attribution {
    /// Container / pod attributes (empty when the sender is not in a known container).
    pub container: Vec<KeyValue>,
    /// How the container was found.
    pub source: Option<&'static str>,
}

#[derive(Debug)]
struct State {
    owners: InodeOwners,
    peers: HashMap<SocketAddr, (Instant, Option<u32>)>,
}

/// Finds the container of a TCP peer. Lookups read procfs: call them off the async
/// runtime (`spawn_blocking`).
#[derive(Debug)]
pub struct Attributor {
    proc_root: PathBuf,
    inventory: Option<Arc<Mutex<Inventory>>>,
    hostname: String,
    state: Mutex<State>,
}

impl Attributor {
    pub fn new(
        proc_root: PathBuf,
        inventory: Option<Arc<Mutex<Inventory>>>,
        hostname: String,
    ) -> Self {
        Self {
            proc_root,
            inventory,
            hostname,
            state: Mutex::new(State {
                owners: InodeOwners::new(MAX_INODES),
                peers: HashMap::new(),
            }),
        }
    }

    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// The pid owning the peer's end of the connection `peer` → `ours`.
    pub fn peer_pid(&self, peer: SocketAddr, ours: SocketAddr) -> Option<u32> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, pid)) = state.peers.get(&peer) {
            if at.elapsed() < PEER_TTL {
                return *pid;
            }
        }
        let pid = procfs::socket_inode(&self.proc_root, peer, ours)
            .and_then(|inode| state.owners.owner(&self.proc_root, inode));
        if state.peers.len() >= MAX_PEERS {
            state.peers.clear();
        }
        state.peers.insert(peer, (Instant::now(), pid));
        pid
    }

    /// Container attributes of the process at the other end of `peer` → `ours`.
    pub fn lookup(&self, peer: SocketAddr, ours: SocketAddr) -> Attribution {
        let Some(pid) = self.peer_pid(peer, ours) else {
            return Attribution::default();
        };
        self.for_pid(pid)
    }

    /// Container attributes of `pid`, from its cgroup.
    pub fn for_pid(&self, pid: u32) -> Attribution {
        let paths = procfs::cgroup_paths(&self.proc_root, pid);
        let identities: Vec<(String, Identity)> = paths
            .into_iter()
            .filter_map(|p| classify(&p).map(|i| (p, i)))
            .collect();
        // A container beats the systemd service that started its runtime.
        let Some((path, identity)) = identities
            .iter()
            .find(|(_, i)| i.container_id.is_some())
            .or_else(|| identities.first())
            .cloned()
        else {
            return Attribution::default();
        };
        let known = self.inventory.as_ref().and_then(|inv| {
            let inv = inv.lock().unwrap_or_else(|e| e.into_inner());
            inv.get(&identity.key).cloned()
        });
        let entry = known.unwrap_or_else(|| Entry {
            identity,
            cgroup_path: format!("/{path}"),
            paths: CgroupPaths::V2(PathBuf::new()),
            first_seen: SystemTime::now(),
            metadata: Metadata::default(),
            docker_checked: false,
            last_stats: None,
        });
        let resource = crate::containers::metrics::resource(&entry, &self.hostname);
        Attribution {
            container: resource.attributes,
            source: Some(source::LOCAL_PROCESS),
        }
    }
}

/// Adds to `resource` every attribute of `attribution` it does not have, plus
/// `host.name`; returns true when container attributes were added.
pub fn apply(attribution: &Attribution, hostname: &str, resource: &mut Resource) -> bool {
    let mut added_container = false;
    for kv in &attribution.container {
        if !resource.attributes.iter().any(|a| a.key == kv.key) {
            added_container |= kv.key != "host.name";
            resource.attributes.push(kv.clone());
        }
    }
    if !resource.attributes.iter().any(|a| a.key == "host.name") {
        resource.attributes.push(string_attr("host.name", hostname));
    }
    added_container
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_proto::otlp::common::v1::{any_value, AnyValue};

    fn get<'a>(r: &'a Resource, key: &str) -> Option<&'a str> {
        r.attributes
            .iter()
            .find_map(|kv| match kv.value.as_ref()?.value.as_ref()? {
                any_value::Value::StringValue(s) if kv.key == key => Some(s.as_str()),
                _ => None,
            })
    }

    #[test]
    fn apps_own_attributes_win() {
        let attribution = Attribution {
            container: vec![
                string_attr("host.name", "node-1"),
                string_attr("container.id", "abc"),
                string_attr("k8s.pod.name", "from-agent"),
            ],
            source: Some(source::LOCAL_PROCESS),
        };
        let mut r = Resource {
            attributes: vec![KeyValue {
                key: "k8s.pod.name".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::StringValue("from-app".into())),
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert!(apply(&attribution, "node-1", &mut r));
        assert_eq!(get(&r, "k8s.pod.name"), Some("from-app"));
        assert_eq!(get(&r, "container.id"), Some("abc"));
        assert_eq!(get(&r, "host.name"), Some("node-1"));
        let mut plain = Resource::default();
        assert!(!apply(&Attribution::default(), "node-1", &mut plain));
        assert_eq!(get(&plain, "host.name"), Some("node-1"));
    }

    #[test]
    fn own_process_is_found_but_is_no_container() {
        let a = Attributor::new("/proc".into(), None, "n".into());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let ours = listener.local_addr().unwrap();
        let client = std::net::TcpStream::connect(ours).unwrap();
        let peer = client.local_addr().unwrap();
        assert_eq!(a.peer_pid(peer, ours), Some(std::process::id()));
        // Unknown peers are remembered as unknown too.
        let nobody: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert_eq!(a.peer_pid(nobody, ours), None);
    }
}
