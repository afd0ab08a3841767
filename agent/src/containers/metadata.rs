//! Names for what discovery found, from sources that are on the node already:
//!
//! - **`/var/log/pods`** (configurable): directories `<namespace>_<pod>_<uid>/<container>/`
//!   give namespace and pod name by pod uid; the container name is known when the pod
//!   has one container directory, or from the `/var/log/containers/<pod>_<ns>_<container>-<id>.log`
//!   symlink names next to it (the kubelet creates both).
//! - **kubelet `/pods`** (`--kubelet-url`, HTTP or HTTPS, optional bearer token): the node's
//!   `PodList` — `metadata.{namespace,name,uid}` and `status.containerStatuses[]
//!   .{containerID,name,image}` (also init and ephemeral containers). Fetched at most
//!   every [`KUBELET_REFRESH`] and only while some Kubernetes container lacks names. Never
//!   an API-server watch: each agent asks only its own kubelet.
//! - **Docker Engine API** on its unix socket (`GET /containers/<id>/json` → `Name`,
//!   `Config.Image`), once per container, skipped when the socket does not exist.
//!
//! Lookups never fail a collection: errors are returned to the caller, who counts and
//! logs them once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::http_get::{get, split_http_url, Peer};

/// The kubelet is asked at most this often.
pub const KUBELET_REFRESH: Duration = Duration::from_secs(5);
const PEER_TIMEOUT: Duration = Duration::from_secs(5);

/// Names attached to a container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Metadata {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k8s_container_name: Option<String>,
}

impl Metadata {
    /// Fill only what is still unknown.
    pub fn merge(&mut self, other: Metadata) {
        let fill = |a: &mut Option<String>, b: Option<String>| {
            if a.is_none() {
                *a = b;
            }
        };
        fill(&mut self.container_name, other.container_name);
        fill(&mut self.image, other.image);
        fill(&mut self.namespace, other.namespace);
        fill(&mut self.pod_name, other.pod_name);
        fill(&mut self.k8s_container_name, other.k8s_container_name);
    }

    /// Everything a Kubernetes container can be named with is known.
    pub fn k8s_complete(&self) -> bool {
        self.namespace.is_some() && self.pod_name.is_some() && self.k8s_container_name.is_some()
    }
}

/// Pods and containers listed under `/var/log/pods` (and `/var/log/containers`).
#[derive(Debug, Default)]
pub struct PodLogIndex {
    /// uid → (namespace, pod, container directory names).
    pods: HashMap<String, (String, String, Vec<String>)>,
    /// container id → container name (from `/var/log/containers` symlink names).
    containers: HashMap<String, String>,
    /// `/var/log/containers` exists: container names come only from it (exact by id).
    has_links: bool,
}

impl PodLogIndex {
    /// List `pods_root` (and its sibling `containers/`). A missing directory is empty.
    pub fn load(pods_root: &Path) -> Self {
        let mut index = PodLogIndex::default();
        if let Ok(entries) = std::fs::read_dir(pods_root) {
            for e in entries.flatten() {
                let Some(name) = e.file_name().to_str().map(str::to_string) else {
                    continue;
                };
                let parts: Vec<&str> = name.splitn(3, '_').collect();
                let [ns, pod, uid] = parts[..] else { continue };
                let mut containers: Vec<String> = std::fs::read_dir(e.path())
                    .map(|d| {
                        d.flatten()
                            .filter(|c| c.path().is_dir())
                            .filter_map(|c| c.file_name().to_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                containers.sort();
                index.pods.insert(
                    uid.to_string(),
                    (ns.to_string(), pod.to_string(), containers),
                );
            }
        }
        if let Some(dir) = pods_root.parent().map(|p| p.join("containers")) {
            if let Ok(entries) = std::fs::read_dir(dir) {
                index.has_links = true;
                for e in entries.flatten() {
                    let Some(name) = e.file_name().to_str().map(str::to_string) else {
                        continue;
                    };
                    // <pod>_<namespace>_<container>-<id>.log
                    let Some(stem) = name.strip_suffix(".log") else {
                        continue;
                    };
                    let Some((front, id)) = stem.rsplit_once('-') else {
                        continue;
                    };
                    if let Some(container) = front.splitn(3, '_').nth(2) {
                        index
                            .containers
                            .insert(id.to_string(), container.to_string());
                    }
                }
            }
        }
        index
    }

    pub fn lookup(&self, pod_uid: &str, container_id: Option<&str>) -> Metadata {
        let mut m = Metadata::default();
        if let Some((ns, pod, containers)) = self.pods.get(pod_uid) {
            m.namespace = Some(ns.clone());
            m.pod_name = Some(pod.clone());
            // Without the id-bearing symlinks, a pod with one container directory still
            // names it (its sandbox/pause container then gets the same name).
            if containers.len() == 1 && !self.has_links {
                m.k8s_container_name = containers.first().cloned();
            }
        }
        if let Some(name) = container_id.and_then(|id| self.containers.get(id)) {
            m.k8s_container_name = Some(name.clone());
        }
        m
    }
}

#[derive(Debug, Deserialize)]
struct PodList {
    #[serde(default)]
    items: Vec<Pod>,
}

#[derive(Debug, Deserialize)]
struct Pod {
    metadata: PodMeta,
    #[serde(default)]
    status: PodStatus,
}

#[derive(Debug, Deserialize)]
struct PodMeta {
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    uid: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodStatus {
    #[serde(default)]
    container_statuses: Vec<ContainerStatus>,
    #[serde(default)]
    init_container_statuses: Vec<ContainerStatus>,
    #[serde(default)]
    ephemeral_container_statuses: Vec<ContainerStatus>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContainerStatus {
    #[serde(default)]
    name: String,
    #[serde(default)]
    image: String,
    #[serde(default, rename = "containerID")]
    container_id: String,
}

/// What the kubelet said, indexed.
#[derive(Debug, Default)]
pub struct KubeletIndex {
    /// pod uid → (namespace, pod name).
    pods: HashMap<String, (String, String)>,
    /// container id (without `runtime://`) → (container name, image).
    containers: HashMap<String, (String, String)>,
}

impl KubeletIndex {
    /// Parse a `PodList` JSON document.
    pub fn parse(json: &[u8]) -> Result<Self, String> {
        let list: PodList =
            serde_json::from_slice(json).map_err(|e| format!("kubelet /pods: {e}"))?;
        let mut index = KubeletIndex::default();
        for pod in list.items {
            let statuses = pod
                .status
                .container_statuses
                .into_iter()
                .chain(pod.status.init_container_statuses)
                .chain(pod.status.ephemeral_container_statuses);
            for c in statuses {
                let id = c
                    .container_id
                    .split_once("://")
                    .map(|(_, id)| id.to_string())
                    .unwrap_or(c.container_id);
                if !id.is_empty() {
                    index.containers.insert(id, (c.name, c.image));
                }
            }
            index.pods.insert(
                pod.metadata.uid,
                (pod.metadata.namespace, pod.metadata.name),
            );
        }
        Ok(index)
    }

    pub fn lookup(&self, pod_uid: Option<&str>, container_id: Option<&str>) -> Metadata {
        let mut m = Metadata::default();
        if let Some((ns, pod)) = pod_uid.and_then(|u| self.pods.get(u)) {
            m.namespace = Some(ns.clone());
            m.pod_name = Some(pod.clone());
        }
        if let Some((name, image)) = container_id.and_then(|id| self.containers.get(id)) {
            m.k8s_container_name = Some(name.clone());
            m.container_name = Some(name.clone());
            if !image.is_empty() {
                m.image = Some(image.clone());
            }
        }
        m
    }
}

#[derive(Debug, Deserialize)]
struct DockerInspect {
    #[serde(rename = "Name", default)]
    name: String,
    #[serde(rename = "Config", default)]
    config: Option<DockerConfig>,
}

#[derive(Debug, Deserialize)]
struct DockerConfig {
    #[serde(rename = "Image", default)]
    image: String,
}

/// Parse `GET /containers/<id>/json`.
pub fn parse_docker_inspect(json: &[u8]) -> Result<Metadata, String> {
    let c: DockerInspect =
        serde_json::from_slice(json).map_err(|e| format!("docker inspect: {e}"))?;
    let name = c.name.trim_start_matches('/').to_string();
    Ok(Metadata {
        container_name: (!name.is_empty()).then_some(name),
        image: c.config.map(|c| c.image).filter(|i| !i.is_empty()),
        ..Default::default()
    })
}

/// Where names come from.
#[derive(Debug, Clone, Default)]
pub struct MetadataOptions {
    pub pod_logs_root: Option<PathBuf>,
    /// `http://host:port[/prefix]`; `/pods` is appended.
    pub kubelet_url: Option<String>,
    pub kubelet_token_file: Option<PathBuf>,
    /// CA bundle that signed the kubelet's serving certificate (for `https://`).
    pub kubelet_ca_file: Option<PathBuf>,
    /// Accept any kubelet certificate (self-signed serving certificates).
    pub kubelet_insecure_skip_verify: bool,
    pub docker_socket: Option<PathBuf>,
}

/// Resolves names, with the kubelet's answer cached between refreshes.
#[derive(Debug)]
pub struct Resolver {
    opts: MetadataOptions,
    kubelet: Option<KubeletIndex>,
    kubelet_fetched: Option<Instant>,
}

/// Which source failed, for the `source` label of the error counter.
#[derive(Debug)]
pub struct LookupError {
    pub source: &'static str,
    pub message: String,
}

impl Resolver {
    pub fn new(opts: MetadataOptions) -> Self {
        Self {
            opts,
            kubelet: None,
            kubelet_fetched: None,
        }
    }

    /// Ask the kubelet again if the last answer is older than [`KUBELET_REFRESH`].
    pub async fn refresh_kubelet(&mut self) -> Result<(), LookupError> {
        let Some(url) = self.opts.kubelet_url.clone() else {
            return Ok(());
        };
        if self
            .kubelet_fetched
            .is_some_and(|t| t.elapsed() < KUBELET_REFRESH)
        {
            return Ok(());
        }
        self.kubelet_fetched = Some(Instant::now());
        let err = |message: String| LookupError {
            source: "kubelet",
            message,
        };
        let (authority, prefix, https) = split_http_url(&url).map_err(err)?;
        let tls = if https {
            Some(
                super::kubelet_tls::client_config(
                    self.opts.kubelet_ca_file.as_deref(),
                    self.opts.kubelet_insecure_skip_verify,
                )
                .map_err(err)?,
            )
        } else {
            None
        };
        let token = match &self.opts.kubelet_token_file {
            Some(p) => Some(
                std::fs::read_to_string(p)
                    .map_err(|e| err(format!("{}: {e}", p.display())))?
                    .trim()
                    .to_string(),
            ),
            None => None,
        };
        let path = format!("{prefix}/pods");
        let peer = match tls {
            Some(config) => Peer::Tls(&authority, config),
            None => Peer::Tcp(&authority),
        };
        let resp = get(peer, &authority, &path, token.as_deref(), PEER_TIMEOUT)
            .await
            .map_err(err)?;
        if resp.status != 200 {
            return Err(err(format!("GET {url}/pods: HTTP {}", resp.status)));
        }
        self.kubelet = Some(KubeletIndex::parse(&resp.body).map_err(err)?);
        Ok(())
    }

    /// Names for a Kubernetes container from pod logs and the cached kubelet answer.
    pub fn kubernetes(
        &self,
        pod_logs: Option<&PodLogIndex>,
        pod_uid: &str,
        id: Option<&str>,
    ) -> Metadata {
        let mut m = Metadata::default();
        if let Some(k) = &self.kubelet {
            m.merge(k.lookup(Some(pod_uid), id));
        }
        if let Some(index) = pod_logs {
            m.merge(index.lookup(pod_uid, id));
        }
        m
    }

    pub fn pod_logs_root(&self) -> Option<&Path> {
        self.opts.pod_logs_root.as_deref()
    }

    /// Docker's name and image for `id`; `Ok(None)` when there is no Docker socket.
    pub async fn docker(&self, id: &str) -> Result<Option<Metadata>, LookupError> {
        let Some(socket) = self.opts.docker_socket.as_deref() else {
            return Ok(None);
        };
        if !socket.exists() {
            return Ok(None);
        }
        let err = |message: String| LookupError {
            source: "docker",
            message,
        };
        let resp = get(
            Peer::Unix(socket),
            "docker",
            &format!("/containers/{id}/json"),
            None,
            PEER_TIMEOUT,
        )
        .await
        .map_err(err)?;
        match resp.status {
            200 => parse_docker_inspect(&resp.body).map(Some).map_err(err),
            // Not a Docker container (e.g. containerd's, or already gone).
            404 => Ok(None),
            s => Err(err(format!("docker inspect {id}: HTTP {s}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_logs_by_uid_and_container_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let pods = dir.path().join("pods");
        std::fs::create_dir_all(pods.join("default_web-0_aaaa-1111/nginx")).unwrap();
        std::fs::create_dir_all(pods.join("kube-system_dns-x_bbbb-2222/coredns")).unwrap();
        std::fs::create_dir_all(pods.join("kube-system_dns-x_bbbb-2222/sidecar")).unwrap();
        std::fs::create_dir_all(dir.path().join("containers")).unwrap();
        std::fs::write(
            dir.path()
                .join("containers/dns-x_kube-system_sidecar-abc123.log"),
            "",
        )
        .unwrap();
        std::fs::create_dir_all(pods.join("not-a-pod")).unwrap();
        let index = PodLogIndex::load(&pods);
        let web = index.lookup("aaaa-1111", Some("x"));
        assert_eq!(web.namespace.as_deref(), Some("default"));
        assert_eq!(web.pod_name.as_deref(), Some("web-0"));
        // The symlink directory exists and does not list "x": no guess.
        assert_eq!(web.k8s_container_name, None);
        // Two containers: ambiguous without the symlink.
        assert_eq!(
            index.lookup("bbbb-2222", Some("zzz")).k8s_container_name,
            None
        );
        assert_eq!(
            index
                .lookup("bbbb-2222", Some("abc123"))
                .k8s_container_name
                .as_deref(),
            Some("sidecar")
        );
        assert_eq!(index.lookup("nope", None), Metadata::default());
        std::fs::remove_dir_all(dir.path().join("containers")).unwrap();
        let index = PodLogIndex::load(&pods);
        let web = index.lookup("aaaa-1111", Some("x"));
        assert_eq!(web.k8s_container_name.as_deref(), Some("nginx"));
        assert!(PodLogIndex::load(Path::new("/nonexistent/pods"))
            .pods
            .is_empty());
    }

    #[test]
    fn kubelet_pod_list_and_docker_inspect() {
        let json = br#"{"kind":"PodList","items":[{"metadata":{"namespace":"shop","name":"cart-1","uid":"u-1"},
            "status":{"containerStatuses":[{"name":"cart","image":"ghcr.io/x/cart:1.2","containerID":"containerd://abc"}],
            "initContainerStatuses":[{"name":"init","image":"busybox","containerID":"containerd://def"}]}},
            {"metadata":{"namespace":"x","name":"pending","uid":"u-2"},"status":{}}]}"#;
        let k = KubeletIndex::parse(json).unwrap();
        let m = k.lookup(Some("u-1"), Some("abc"));
        assert_eq!(m.namespace.as_deref(), Some("shop"));
        assert_eq!(m.k8s_container_name.as_deref(), Some("cart"));
        assert_eq!(m.image.as_deref(), Some("ghcr.io/x/cart:1.2"));
        assert_eq!(
            k.lookup(Some("u-1"), Some("def"))
                .k8s_container_name
                .as_deref(),
            Some("init")
        );
        assert_eq!(
            k.lookup(Some("u-2"), None).pod_name.as_deref(),
            Some("pending")
        );
        assert!(KubeletIndex::parse(b"{not json").is_err());
        let d =
            parse_docker_inspect(br#"{"Id":"abc","Name":"/web","Config":{"Image":"nginx:1.27"}}"#)
                .unwrap();
        assert_eq!(d.container_name.as_deref(), Some("web"));
        assert_eq!(d.image.as_deref(), Some("nginx:1.27"));
        assert!(parse_docker_inspect(b"\"str\"").is_err());
    }

    #[tokio::test]
    async fn absent_docker_socket_and_unset_kubelet_are_skipped() {
        let mut r = Resolver::new(MetadataOptions {
            docker_socket: Some(PathBuf::from("/nonexistent/docker.sock")),
            ..Default::default()
        });
        assert!(r.docker("abc").await.unwrap().is_none());
        assert!(r.refresh_kubelet().await.is_ok());
        // A kubelet that refuses connections is an error for the caller to count.
        let mut r = Resolver::new(MetadataOptions {
            kubelet_url: Some("http://127.0.0.1:9".into()),
            ..Default::default()
        });
        let e = r.refresh_kubelet().await.unwrap_err();
        assert_eq!(e.source, "kubelet");
        // Rate limited: the second call within KUBELET_REFRESH does not try again.
        assert!(r.refresh_kubelet().await.is_ok());
    }
}
