//! Which files to tail and what they belong to.
//!
//! Three sources: the kubelet's `/var/log/pods/<ns>_<pod>_<uid>/<container>/<n>.log`
//! (CRI format; Kubernetes resource attributes from the path), Docker's
//! `/var/lib/docker/containers/<id>/<id>-json.log` (json-file), and configured globs of
//! plain files (`*`, `?` within a path component, `**` for any depth). Next to every
//! active file its rotated siblings (`<name>.<suffix>`, not `.gz`) are listed too: they
//! are read only to finish a file the agent was already reading (after a restart, or the
//! copy made by copytruncate), never as new files.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::format::Format;

/// What a file belongs to: resource attributes and the rate-limit key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    pub format: Format,
    /// Resource attributes (k8s.*, container.id) of every record from this file.
    pub resource: Vec<(&'static str, String)>,
    /// Rate-limit bucket (one per container; the file path for plain files).
    pub container_key: String,
}

/// A file found by discovery.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub path: PathBuf,
    /// A rotated sibling (`0.log.20240101-...`), not the live file.
    pub rotated: bool,
    pub meta: Arc<FileMeta>,
}

/// Where to look.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub pods_root: Option<PathBuf>,
    pub docker_root: Option<PathBuf>,
    pub include: Vec<String>,
}

fn dir_entries(dir: &Path) -> Vec<(String, PathBuf, bool)> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<_> = rd
        .flatten()
        .filter_map(|e| {
            let is_dir = e.file_type().ok()?.is_dir();
            Some((
                e.file_name().to_string_lossy().into_owned(),
                e.path(),
                is_dir,
            ))
        })
        .collect();
    out.sort();
    out
}

/// Kubernetes attributes from `<ns>_<pod>_<uid>/<container>/<n>.log`.
pub fn pod_meta(pod_dir: &str, container: &str) -> Option<FileMeta> {
    let mut parts = pod_dir.splitn(3, '_');
    let (ns, pod, uid) = (parts.next()?, parts.next()?, parts.next()?);
    if ns.is_empty() || pod.is_empty() || uid.is_empty() {
        return None;
    }
    Some(FileMeta {
        format: Format::Cri,
        resource: vec![
            ("k8s.namespace.name", ns.to_string()),
            ("k8s.pod.name", pod.to_string()),
            ("k8s.pod.uid", uid.to_string()),
            ("k8s.container.name", container.to_string()),
        ],
        container_key: format!("{ns}/{pod}/{container}"),
    })
}

fn push_with_siblings(dir: &Path, active: &str, meta: FileMeta, out: &mut Vec<Candidate>) {
    let meta = Arc::new(meta);
    let prefix = format!("{active}.");
    for (name, path, is_dir) in dir_entries(dir) {
        if is_dir {
            continue;
        }
        if name == active {
            out.push(Candidate {
                path,
                rotated: false,
                meta: meta.clone(),
            });
        } else if name.starts_with(&prefix) && !name.ends_with(".gz") && !name.ends_with(".tmp") {
            out.push(Candidate {
                path,
                rotated: true,
                meta: meta.clone(),
            });
        }
    }
}

impl Sources {
    /// Every candidate file right now.
    pub fn discover(&self) -> Vec<Candidate> {
        let mut out = Vec::new();
        if let Some(root) = &self.pods_root {
            for (pod_dir, pod_path, is_dir) in dir_entries(root) {
                if !is_dir {
                    continue;
                }
                for (container, cpath, is_dir) in dir_entries(&pod_path) {
                    let Some(meta) = is_dir.then(|| pod_meta(&pod_dir, &container)).flatten()
                    else {
                        continue;
                    };
                    for (name, _, is_dir) in dir_entries(&cpath) {
                        if !is_dir && name.ends_with(".log") {
                            push_with_siblings(&cpath, &name, meta.clone(), &mut out);
                        }
                    }
                }
            }
        }
        if let Some(root) = &self.docker_root {
            for (id, path, is_dir) in dir_entries(root) {
                if !is_dir {
                    continue;
                }
                let meta = FileMeta {
                    format: Format::DockerJson,
                    resource: vec![("container.id", id.clone())],
                    container_key: id.clone(),
                };
                push_with_siblings(&path, &format!("{id}-json.log"), meta, &mut out);
            }
        }
        for pattern in &self.include {
            for path in glob(pattern) {
                let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
                    continue;
                };
                let meta = FileMeta {
                    format: Format::Plain,
                    resource: Vec::new(),
                    container_key: path.display().to_string(),
                };
                push_with_siblings(dir, &name.to_string_lossy(), meta, &mut out);
            }
        }
        // A file matched by two sources is tailed once.
        let mut seen = std::collections::HashSet::new();
        out.retain(|c| seen.insert(c.path.clone()));
        out
    }
}

/// Match one path component against a pattern with `*` and `?`.
pub fn component_matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Regular files matching an absolute glob (`*`, `?`, `**`), sorted.
pub fn glob(pattern: &str) -> Vec<PathBuf> {
    let parts: Vec<&str> = pattern.split('/').filter(|s| !s.is_empty()).collect();
    let mut out = Vec::new();
    let root = if pattern.starts_with('/') {
        PathBuf::from("/")
    } else {
        PathBuf::from(".")
    };
    walk(&root, &parts, &mut out);
    out.sort();
    out.dedup();
    out
}

fn walk(dir: &Path, parts: &[&str], out: &mut Vec<PathBuf>) {
    let Some((first, rest)) = parts.split_first() else {
        return;
    };
    let literal = !first.contains(['*', '?']);
    if literal {
        let next = dir.join(first);
        if rest.is_empty() {
            if next.is_file() {
                out.push(next);
            }
        } else if next.is_dir() {
            walk(&next, rest, out);
        }
        return;
    }
    if *first == "**" {
        walk(dir, rest, out);
        for (_, path, is_dir) in dir_entries(dir) {
            if is_dir {
                walk(&path, parts, out);
            }
        }
        return;
    }
    for (name, path, is_dir) in dir_entries(dir) {
        if !component_matches(first, &name) {
            continue;
        }
        if rest.is_empty() {
            if !is_dir {
                out.push(path);
            }
        } else if is_dir {
            walk(&path, rest, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(component_matches("*.log", "app.log"));
        assert!(component_matches("a?c*", "abcdef"));
        assert!(!component_matches("*.log", "app.log.1"));
        assert!(component_matches("*", ""));
    }

    #[test]
    fn discovers_pods_docker_and_globs_with_rotated_siblings() {
        let d = tempfile::tempdir().unwrap();
        let pods = d.path().join("pods");
        let c = pods.join("default_web-1_1234-abcd/nginx");
        std::fs::create_dir_all(&c).unwrap();
        for f in ["0.log", "0.log.20240101-000000", "0.log.20231231-000000.gz"] {
            std::fs::write(c.join(f), "x\n").unwrap();
        }
        std::fs::create_dir_all(pods.join("not-a-pod-dir/x")).unwrap();
        std::fs::write(pods.join("not-a-pod-dir/x/0.log"), "x\n").unwrap();
        let docker = d.path().join("docker/abc123");
        std::fs::create_dir_all(&docker).unwrap();
        std::fs::write(docker.join("abc123-json.log"), "{}\n").unwrap();
        std::fs::write(docker.join("abc123-json.log.1"), "{}\n").unwrap();
        let app = d.path().join("app/sub");
        std::fs::create_dir_all(&app).unwrap();
        std::fs::write(app.join("server.log"), "x\n").unwrap();
        std::fs::write(app.join("server.txt"), "x\n").unwrap();
        let sources = Sources {
            pods_root: Some(pods),
            docker_root: Some(d.path().join("docker")),
            include: vec![format!("{}/app/**/*.log", d.path().display())],
        };
        let found = sources.discover();
        let names: Vec<_> = found
            .iter()
            .map(|c| {
                (
                    c.path.file_name().unwrap().to_string_lossy().into_owned(),
                    c.rotated,
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                ("0.log".to_string(), false),
                ("0.log.20240101-000000".to_string(), true),
                ("abc123-json.log".to_string(), false),
                ("abc123-json.log.1".to_string(), true),
                ("server.log".to_string(), false),
            ]
        );
        assert_eq!(found[0].meta.format, Format::Cri);
        assert_eq!(
            found[0].meta.resource,
            vec![
                ("k8s.namespace.name", "default".to_string()),
                ("k8s.pod.name", "web-1".to_string()),
                ("k8s.pod.uid", "1234-abcd".to_string()),
                ("k8s.container.name", "nginx".to_string()),
            ]
        );
        assert_eq!(found[2].meta.format, Format::DockerJson);
        assert_eq!(found[4].meta.format, Format::Plain);
    }
}
