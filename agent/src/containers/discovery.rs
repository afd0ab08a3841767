//! Finding containers in the cgroup tree, without configuration.
//!
//! [`Layout::detect`] looks at the cgroup root: a `cgroup.controllers` file means the
//! unified (v2) hierarchy; otherwise every v1 controller directory (`cpu`, `cpuacct`,
//! `cpu,cpuacct`, `memory`, `blkio`, `pids`) is used, whatever the unified mount next to
//! them holds (hybrid systems keep their controllers in v1). [`scan`] walks each
//! hierarchy to a bounded depth and [`classify`]s every directory by its path relative to
//! the hierarchy root: Docker (`docker-<id>.scope`, `/docker/<id>`), containerd
//! (`cri-containerd-<id>.scope`), CRI-O (`crio-<id>.scope`), Podman (`libpod-<id>.scope`),
//! Kubernetes pods in both kubelet cgroup drivers (`kubepods.slice/.../kubepods-<qos>-pod<uid>.slice/<runtime>-<id>.scope`,
//! `kubepods/<qos>/pod<uid>/<id>`) and plain systemd services (`system.slice/<name>.service`).
//! A classified directory is not descended into (a container's own sub-groups belong to
//! it). In v1 the same container is found once per controller hierarchy; the findings are
//! merged by container key, each controller keeping its own directory.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Serialize;

/// Directories deeper than this below a hierarchy root are not visited.
pub const MAX_DEPTH: usize = 8;

/// What kind of workload a cgroup holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A container of a Kubernetes pod (any runtime).
    Kubernetes,
    /// A container started directly by a runtime (Docker, containerd, CRI-O, Podman).
    Container,
    /// A systemd service (`system.slice/<name>.service`).
    SystemdService,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Kubernetes => "kubernetes",
            Kind::Container => "container",
            Kind::SystemdService => "systemd_service",
        }
    }
}

/// The container runtime named by the cgroup, when the path tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Runtime {
    Docker,
    Containerd,
    Crio,
    Podman,
}

impl Runtime {
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Docker => "docker",
            Runtime::Containerd => "containerd",
            Runtime::Crio => "cri-o",
            Runtime::Podman => "podman",
        }
    }
}

/// Who a cgroup belongs to, read from its path alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    /// Unique per node: the container id, or `systemd:<unit>` for services.
    pub key: String,
    pub kind: Kind,
    pub runtime: Option<Runtime>,
    /// Full container id (hex).
    pub container_id: Option<String>,
    /// Kubernetes pod uid with dashes (`0f6c...-...`).
    pub pod_uid: Option<String>,
    /// Kubernetes QoS class: guaranteed, burstable, besteffort.
    pub qos: Option<String>,
    /// systemd unit name (`nginx.service`).
    pub unit: Option<String>,
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A full container id: 64 hex digits.
fn is_container_id(s: &str) -> bool {
    s.len() == 64 && is_hex(s)
}

/// `<prefix><id>.scope` → id, for scope names of runtimes.
fn scope_id<'a>(name: &'a str, prefix: &str) -> Option<&'a str> {
    let id = name.strip_prefix(prefix)?.strip_suffix(".scope")?;
    (id.len() >= 12 && is_hex(id)).then_some(id)
}

fn runtime_scope(name: &str) -> Option<(Runtime, &str)> {
    if let Some(id) = scope_id(name, "docker-") {
        return Some((Runtime::Docker, id));
    }
    if let Some(id) = scope_id(name, "cri-containerd-") {
        return Some((Runtime::Containerd, id));
    }
    if let Some(id) = scope_id(name, "crio-") {
        return Some((Runtime::Crio, id));
    }
    if let Some(id) = scope_id(name, "libpod-") {
        return Some((Runtime::Podman, id));
    }
    None
}

/// Pod uid and QoS from a pod-level directory name, in either cgroup driver.
fn pod_of(components: &[&str]) -> Option<(String, String)> {
    let kube = components
        .iter()
        .position(|c| *c == "kubepods" || *c == "kubepods.slice")?;
    let mut qos = "guaranteed".to_string();
    for c in &components[kube + 1..] {
        // systemd driver: kubepods-burstable.slice, kubepods-burstable-pod<uid>.slice
        if let Some(rest) = c
            .strip_prefix("kubepods-")
            .and_then(|r| r.strip_suffix(".slice"))
        {
            let (q, pod) = match rest.split_once("pod") {
                Some((q, uid)) => (q.trim_end_matches('-'), Some(uid)),
                None => (rest, None),
            };
            if !q.is_empty() {
                qos = q.to_string();
            }
            if let Some(uid) = pod.filter(|u| !u.is_empty()) {
                return Some((uid.replace('_', "-"), qos));
            }
            continue;
        }
        // cgroupfs driver: kubepods/burstable/pod<uid>
        if *c == "burstable" || *c == "besteffort" {
            qos = c.to_string();
            continue;
        }
        if let Some(uid) = c.strip_prefix("pod") {
            if uid.len() >= 8 && uid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
                return Some((uid.to_string(), qos));
            }
        }
    }
    None
}

/// Classify a cgroup by its path relative to the hierarchy root (`a/b/c`, no leading `/`).
pub fn classify(rel: &str) -> Option<Identity> {
    let components: Vec<&str> = rel.split('/').filter(|c| !c.is_empty()).collect();
    let (&last, parents) = components.split_last()?;
    let parent = parents.last().copied();
    let pod = pod_of(parents);
    let (runtime, id) = if let Some((runtime, id)) = runtime_scope(last) {
        (Some(runtime), id)
    } else if is_container_id(last) && (parent == Some("docker") || pod.is_some()) {
        (
            parent.filter(|p| *p == "docker").map(|_| Runtime::Docker),
            last,
        )
    } else if components.len() == 2
        && components[0] == "system.slice"
        && last.ends_with(".service")
        && last.len() > ".service".len()
    {
        return Some(Identity {
            key: format!("systemd:{last}"),
            kind: Kind::SystemdService,
            runtime: None,
            container_id: None,
            pod_uid: None,
            qos: None,
            unit: Some(last.to_string()),
        });
    } else {
        return None;
    };
    let (pod_uid, qos) = match pod {
        Some((uid, qos)) => (Some(uid), Some(qos)),
        None => (None, None),
    };
    Some(Identity {
        key: id.to_string(),
        kind: if pod_uid.is_some() {
            Kind::Kubernetes
        } else {
            Kind::Container
        },
        runtime,
        container_id: Some(id.to_string()),
        pod_uid,
        qos,
        unit: None,
    })
}

/// A v1 controller the agent reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Controller {
    Cpu,
    Cpuacct,
    Memory,
    Blkio,
    Pids,
}

impl Controller {
    pub const ALL: [Controller; 5] = [
        Controller::Cpu,
        Controller::Cpuacct,
        Controller::Memory,
        Controller::Blkio,
        Controller::Pids,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Controller::Cpu => "cpu",
            Controller::Cpuacct => "cpuacct",
            Controller::Memory => "memory",
            Controller::Blkio => "blkio",
            Controller::Pids => "pids",
        }
    }
}

/// Which cgroup version the root holds and where the hierarchies are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// Unified hierarchy mounted at this directory.
    V2(PathBuf),
    /// v1 controllers, each at its hierarchy root (co-mounted ones share a directory).
    V1(BTreeMap<Controller, PathBuf>),
}

impl Layout {
    /// Inspect `root` (usually `/sys/fs/cgroup`).
    pub fn detect(root: &Path) -> Result<Layout, String> {
        if root.join("cgroup.controllers").is_file() {
            return Ok(Layout::V2(root.to_path_buf()));
        }
        let mut controllers = BTreeMap::new();
        if let Ok(entries) = std::fs::read_dir(root) {
            let mut names: Vec<(String, PathBuf)> = entries
                .flatten()
                .filter(|e| e.path().is_dir())
                .filter_map(|e| e.file_name().to_str().map(|n| (n.to_string(), e.path())))
                .collect();
            names.sort();
            for (name, path) in names {
                for c in Controller::ALL {
                    if name.split(',').any(|part| part == c.name()) {
                        controllers.entry(c).or_insert_with(|| path.clone());
                    }
                }
            }
        }
        if !controllers.is_empty() {
            return Ok(Layout::V1(controllers));
        }
        let unified = root.join("unified");
        if unified.join("cgroup.controllers").is_file() {
            return Ok(Layout::V2(unified));
        }
        Err(format!(
            "{}: neither a cgroup v2 mount (cgroup.controllers) nor v1 controller directories (cpuacct, memory, ...)",
            root.display()
        ))
    }

    /// The distinct hierarchy roots to walk.
    pub fn hierarchy_roots(&self) -> Vec<PathBuf> {
        match self {
            Layout::V2(root) => vec![root.clone()],
            Layout::V1(map) => {
                let mut roots: Vec<PathBuf> = map.values().cloned().collect();
                roots.sort();
                roots.dedup();
                roots
            }
        }
    }
}

/// Where a container's cgroup files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupPaths {
    V2(PathBuf),
    V1(BTreeMap<Controller, PathBuf>),
}

impl CgroupPaths {
    /// Some directory of the container, for `cgroup.procs`.
    pub fn any_dir(&self) -> Option<&Path> {
        match self {
            CgroupPaths::V2(p) => Some(p),
            CgroupPaths::V1(map) => [Controller::Pids, Controller::Cpuacct, Controller::Memory]
                .iter()
                .find_map(|c| map.get(c))
                .or_else(|| map.values().next())
                .map(PathBuf::as_path),
        }
    }
}

/// One container found by a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub identity: Identity,
    /// Path relative to the hierarchy root, with a leading `/` (as `/proc/<pid>/cgroup`).
    pub cgroup_path: String,
    pub paths: CgroupPaths,
}

/// Result of walking every hierarchy once.
#[derive(Debug, Default)]
pub struct Scan {
    /// By container key.
    pub found: HashMap<String, Found>,
    /// Directories walked that are not containers (watched for new children).
    pub dirs: Vec<PathBuf>,
}

/// Walk the hierarchies of `layout` and return every container.
pub fn scan(layout: &Layout) -> Scan {
    let mut out = Scan::default();
    match layout {
        Layout::V2(root) => walk(root, root, 0, &mut |found_rel, abs| {
            if let Some(identity) = classify(found_rel) {
                out.found.insert(
                    identity.key.clone(),
                    Found {
                        identity,
                        cgroup_path: format!("/{found_rel}"),
                        paths: CgroupPaths::V2(abs.to_path_buf()),
                    },
                );
                true
            } else {
                out.dirs.push(abs.to_path_buf());
                false
            }
        }),
        Layout::V1(map) => {
            for root in layout.hierarchy_roots() {
                let controllers: Vec<Controller> = map
                    .iter()
                    .filter(|(_, p)| **p == root)
                    .map(|(c, _)| *c)
                    .collect();
                walk(&root, &root, 0, &mut |found_rel, abs| {
                    let Some(identity) = classify(found_rel) else {
                        out.dirs.push(abs.to_path_buf());
                        return false;
                    };
                    let entry = out
                        .found
                        .entry(identity.key.clone())
                        .or_insert_with(|| Found {
                            identity,
                            cgroup_path: format!("/{found_rel}"),
                            paths: CgroupPaths::V1(BTreeMap::new()),
                        });
                    if let CgroupPaths::V1(paths) = &mut entry.paths {
                        for c in &controllers {
                            paths.insert(*c, abs.to_path_buf());
                        }
                    }
                    true
                });
            }
        }
    }
    out
}

/// Depth-first walk; `visit(rel, abs)` returns true when `abs` is a container (not descended).
fn walk(root: &Path, dir: &Path, depth: usize, visit: &mut dyn FnMut(&str, &Path) -> bool) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        if !file_type.is_dir() {
            continue;
        }
        let abs = entry.path();
        let Some(rel) = abs.strip_prefix(root).ok().and_then(Path::to_str) else {
            continue;
        };
        let rel = rel.to_string();
        if !visit(&rel, &abs) && depth + 1 < MAX_DEPTH {
            walk(root, &abs, depth + 1, visit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f4e5d6c7b8a99001122334455667788990011223344556677889900aabbccdd";

    #[test]
    fn docker_scopes_and_cgroupfs_paths() {
        let a = classify(&format!("system.slice/docker-{ID}.scope")).unwrap();
        assert_eq!(a.kind, Kind::Container);
        assert_eq!(a.runtime, Some(Runtime::Docker));
        assert_eq!(a.key, ID);
        let b = classify(&format!("docker/{ID}")).unwrap();
        assert_eq!(
            (b.runtime, b.container_id.as_deref()),
            (Some(Runtime::Docker), Some(ID))
        );
        // Nested under a test prefix still counts.
        assert!(classify(&format!("sightline-test-1/docker/{ID}")).is_some());
        assert!(classify("docker/not-an-id").is_none());
        assert!(classify(&format!("other/{ID}")).is_none());
    }

    #[test]
    fn containerd_crio_podman_scopes() {
        let c = classify(&format!("system.slice/cri-containerd-{ID}.scope")).unwrap();
        assert_eq!(c.runtime, Some(Runtime::Containerd));
        let o = classify(&format!("machine.slice/crio-{ID}.scope")).unwrap();
        assert_eq!(o.runtime, Some(Runtime::Crio));
        assert!(classify(&format!("machine.slice/crio-conmon-{ID}.scope")).is_none());
        let p = classify(&format!("machine.slice/libpod-{ID}.scope")).unwrap();
        assert_eq!(p.runtime, Some(Runtime::Podman));
    }

    #[test]
    fn kubernetes_systemd_driver() {
        let rel = format!(
            "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0f6c1a2b_3c4d_4e5f_8a9b_0c1d2e3f4a5b.slice/cri-containerd-{ID}.scope"
        );
        let k = classify(&rel).unwrap();
        assert_eq!(k.kind, Kind::Kubernetes);
        assert_eq!(k.runtime, Some(Runtime::Containerd));
        assert_eq!(
            k.pod_uid.as_deref(),
            Some("0f6c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b")
        );
        assert_eq!(k.qos.as_deref(), Some("burstable"));
        // Guaranteed pods sit directly under kubepods.slice.
        let g = classify(&format!(
            "kubepods.slice/kubepods-pod11111111_2222_3333_4444_555555555555.slice/crio-{ID}.scope"
        ))
        .unwrap();
        assert_eq!(g.qos.as_deref(), Some("guaranteed"));
        assert_eq!(
            g.pod_uid.as_deref(),
            Some("11111111-2222-3333-4444-555555555555")
        );
        // The pod slice itself is not a container.
        assert!(classify(
            "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod11111111_2222_3333_4444_555555555555.slice"
        )
        .is_none());
    }

    #[test]
    fn kubernetes_cgroupfs_driver() {
        let k = classify(&format!(
            "kubepods/besteffort/pod11111111-2222-3333-4444-555555555555/{ID}"
        ))
        .unwrap();
        assert_eq!(k.kind, Kind::Kubernetes);
        assert_eq!(k.runtime, None);
        assert_eq!(k.qos.as_deref(), Some("besteffort"));
        assert_eq!(
            k.pod_uid.as_deref(),
            Some("11111111-2222-3333-4444-555555555555")
        );
        let g = classify(&format!(
            "kubepods/pod11111111-2222-3333-4444-555555555555/{ID}"
        ))
        .unwrap();
        assert_eq!(g.qos.as_deref(), Some("guaranteed"));
    }

    #[test]
    fn systemd_services_only_directly_under_system_slice() {
        let s = classify("system.slice/nginx.service").unwrap();
        assert_eq!(s.kind, Kind::SystemdService);
        assert_eq!(s.key, "systemd:nginx.service");
        assert_eq!(s.unit.as_deref(), Some("nginx.service"));
        assert!(classify("user.slice/user-1000.slice/session-1.scope").is_none());
        assert!(classify("system.slice/nginx.service/child").is_none());
        assert!(classify("system.slice").is_none());
        assert!(classify("").is_none());
    }

    #[test]
    fn detects_v2_v1_and_nothing() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Layout::detect(dir.path()).is_err());
        std::fs::create_dir_all(dir.path().join("cpu,cpuacct")).unwrap();
        std::fs::create_dir_all(dir.path().join("memory")).unwrap();
        std::fs::create_dir_all(dir.path().join("unified")).unwrap();
        std::fs::write(dir.path().join("unified/cgroup.controllers"), "").unwrap();
        let Layout::V1(map) = Layout::detect(dir.path()).unwrap() else {
            panic!("v1 expected")
        };
        assert_eq!(map[&Controller::Cpu], map[&Controller::Cpuacct]);
        assert!(map.contains_key(&Controller::Memory));
        assert!(!map.contains_key(&Controller::Pids));
        std::fs::write(dir.path().join("cgroup.controllers"), "cpu memory").unwrap();
        assert_eq!(
            Layout::detect(dir.path()).unwrap(),
            Layout::V2(dir.path().to_path_buf())
        );
    }
}
