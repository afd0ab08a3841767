//! Real cgroup v1: docker- and kubepods-shaped groups created under the machine's v1
//! controllers (`/sys/fs/cgroup/{cpu,cpuacct,memory,blkio,pids}`), each holding a real
//! child process; the agent must find them and report the child's CPU time growing and
//! at least the memory it allocated. Groups are nested under the test process's own
//! cgroup of each controller (so memory stays charged where it was) and removed by a
//! Drop guard even when an assertion fails. Needs root and writable v1 controllers: the
//! test fails with what is missing rather than skipping.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use sightline_agent::clock::{Clock, SystemClock};
use sightline_agent::containers::metadata::MetadataOptions;
use sightline_agent::containers::{ContainerOptions, Containers};
use sightline_agent::telemetry::Telemetry;
use sightline_proto::otlp::common::v1::any_value;
use sightline_proto::otlp::metrics::v1::{metric, number_data_point, ResourceMetrics};

const CONTROLLERS: [&str; 5] = ["cpu", "cpuacct", "memory", "blkio", "pids"];
const ROOT: &str = "/sys/fs/cgroup";
const ALLOC_MIB: u64 = 96;

/// Created groups (deepest last) and children; undone on drop.
#[derive(Default)]
struct Guard {
    dirs: Vec<PathBuf>,
    children: Vec<Child>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for d in self.dirs.iter().rev() {
            // The kernel needs a moment to release a killed task's membership.
            for _ in 0..50 {
                if std::fs::remove_dir(d).is_ok() || !d.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// This process's cgroup in a v1 hierarchy, from `/proc/self/cgroup`.
fn own_cgroup(controller: &str) -> String {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    text.lines()
        .find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
            ctrls
                .split(',')
                .any(|c| c == controller)
                .then(|| path.to_string())
        })
        .unwrap_or_else(|| "/".into())
}

fn controller_dir(controller: &str) -> PathBuf {
    Path::new(ROOT).join(controller)
}

/// mkdir -p `rel` under each controller (below our own cgroup), recording what we created.
fn make_group(guard: &mut Guard, rel: &str) -> Vec<PathBuf> {
    let mut leaves = Vec::new();
    for c in CONTROLLERS {
        let base = controller_dir(c).join(own_cgroup(c).trim_start_matches('/'));
        let mut dir = base.clone();
        for part in rel.split('/') {
            dir = dir.join(part);
            if !dir.exists() {
                if let Err(e) = std::fs::create_dir(&dir) {
                    panic!(
                        "cannot create {}: {e}. This test needs root and writable cgroup v1 \
                         controllers mounted at {ROOT}/{{cpu,cpuacct,memory,blkio,pids}}",
                        dir.display()
                    );
                }
                guard.dirs.push(dir.clone());
            }
        }
        leaves.push(dir);
    }
    leaves
}

/// A child that waits for a line on stdin, then allocates and touches `mib` MiB and burns CPU.
fn spawn_worker(guard: &mut Guard, mib: u64) -> usize {
    let script = format!(
        "import sys\nsys.stdin.readline()\nb = bytearray({mib} << 20)\nfor i in range(0, len(b), 4096):\n    b[i] = 1\nprint('ready', flush=True)\nx = 0\nwhile True:\n    x += 1\n"
    );
    let child = Command::new("python3")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 is needed to run the cgroup v1 test's worker");
    guard.children.push(child);
    guard.children.len() - 1
}

fn join(guard: &Guard, child: usize, leaves: &[PathBuf]) {
    let pid = guard.children[child].id();
    for leaf in leaves {
        std::fs::write(leaf.join("cgroup.procs"), pid.to_string())
            .unwrap_or_else(|e| panic!("moving pid {pid} into {}: {e}", leaf.display()));
    }
}

fn attr<'a>(r: &'a ResourceMetrics, key: &str) -> Option<&'a str> {
    r.resource.as_ref()?.attributes.iter().find_map(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) if kv.key == key => Some(s.as_str()),
            _ => None,
        }
    })
}

fn total(r: &ResourceMetrics, name: &str) -> f64 {
    r.scope_metrics
        .iter()
        .flat_map(|s| &s.metrics)
        .filter(|m| m.name == name)
        .flat_map(|m| match &m.data {
            Some(metric::Data::Sum(s)) => s.data_points.clone(),
            Some(metric::Data::Gauge(g)) => g.data_points.clone(),
            _ => Vec::new(),
        })
        .map(|p| match p.value {
            Some(number_data_point::Value::AsDouble(v)) => v,
            Some(number_data_point::Value::AsInt(v)) => v as f64,
            None => f64::NAN,
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_v1_groups_with_a_working_process() {
    for c in CONTROLLERS {
        assert!(
            controller_dir(c).join("cgroup.procs").is_file(),
            "cgroup v1 controller {c} is not mounted at {ROOT}/{c}; this test needs the v1 \
             controllers cpu, cpuacct, memory, blkio, pids (and root to write them)"
        );
    }
    let tag: u32 = rand_tag();
    let docker_id = format!("{:064x}", 0x5eed_0000_u64 + u64::from(tag));
    let k8s_id = format!("{:064x}", 0xbeef_0000_u64 + u64::from(tag));
    let pod_uid = format!("{tag:08x}-1111-2222-3333-444444444444");
    let mut guard = Guard::default();
    let prefix = format!("sightline-test-{tag:08x}");
    let docker_leaves = make_group(&mut guard, &format!("{prefix}/docker/{docker_id}"));
    let k8s_leaves = make_group(
        &mut guard,
        &format!("{prefix}/kubepods/burstable/pod{pod_uid}/{k8s_id}"),
    );
    let worker = spawn_worker(&mut guard, ALLOC_MIB);
    join(&guard, worker, &docker_leaves);
    let idle = spawn_worker(&mut guard, 1);
    join(&guard, idle, &k8s_leaves);
    // Start the allocation only now, inside the group, so the memory is charged to it.
    {
        let child = &mut guard.children[worker];
        child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "ready");
    }

    let telemetry = Arc::new(Telemetry::new());
    let opts = ContainerOptions {
        cgroup_root: PathBuf::from(ROOT),
        metadata: MetadataOptions::default(),
        ..ContainerOptions::default()
    };
    let containers =
        Arc::new(Containers::new(opts, telemetry.clone(), "node-v1", SystemTime::now()).unwrap());
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let task = tokio::spawn(containers.clone().run_discovery(clock, async {
        let _ = rx.await;
    }));
    let t0 = Instant::now();
    loop {
        let found = {
            let inv = containers.inventory();
            let inv = inv.lock().unwrap();
            inv.get(&docker_id).is_some() && inv.get(&k8s_id).is_some()
        };
        if found {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "v1 groups not discovered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    {
        let inv = containers.inventory();
        let inv = inv.lock().unwrap();
        let k8s = inv.get(&k8s_id).unwrap();
        assert_eq!(k8s.identity.pod_uid.as_deref(), Some(pod_uid.as_str()));
        assert_eq!(k8s.identity.qos.as_deref(), Some("burstable"));
    }

    let collect = || {
        let c = containers.clone();
        async move {
            tokio::task::spawn_blocking(move || c.collect(SystemTime::now()))
                .await
                .unwrap()
        }
    };
    let first = collect().await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let second = collect().await;
    let find = |c: &sightline_agent::containers::ContainerCollection, id: &str| {
        c.resources
            .iter()
            .find(|r| attr(r, "container.id") == Some(id))
            .cloned()
            .unwrap_or_else(|| panic!("{id} not collected"))
    };
    let (a, b) = (find(&first, &docker_id), find(&second, &docker_id));
    let (cpu_a, cpu_b) = (
        total(&a, "container.cpu.time"),
        total(&b, "container.cpu.time"),
    );
    eprintln!(
        "v1 docker group: cpu {cpu_a:.3}s -> {cpu_b:.3}s, memory.usage {} B, rss {} B",
        total(&b, "container.memory.usage"),
        total(&b, "container.memory.rss")
    );
    assert!(cpu_a > 0.0 && cpu_b > cpu_a, "cpu time {cpu_a} -> {cpu_b}");
    let mem = total(&b, "container.memory.usage");
    assert!(
        mem >= (ALLOC_MIB << 20) as f64,
        "memory {mem} < {ALLOC_MIB} MiB"
    );
    let rss = total(&b, "container.memory.rss");
    assert!(rss >= (ALLOC_MIB << 20) as f64 * 0.9, "rss {rss}");
    assert!(total(&b, "container.memory.working_set") <= mem);
    assert_eq!(total(&b, "container.pids.count"), 1.0);
    assert_eq!(attr(&b, "container.runtime"), Some("docker"));
    let k = find(&second, &k8s_id);
    assert_eq!(attr(&k, "k8s.pod.uid"), Some(pod_uid.as_str()));
    assert_eq!(total(&k, "container.pids.count"), 1.0);
    assert!(telemetry.containers_discovered.get() >= 2);

    // Removing the groups (after the processes are gone) makes the agent forget them.
    drop(guard);
    let t0 = Instant::now();
    loop {
        let gone = {
            let inv = containers.inventory();
            let inv = inv.lock().unwrap();
            inv.get(&docker_id).is_none() && inv.get(&k8s_id).is_none()
        };
        if gone {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "removed v1 groups still known"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ended = collect().await;
    let stale = find(&ended, &docker_id);
    assert!(stale.scope_metrics[0]
        .metrics
        .iter()
        .all(|m| match &m.data {
            Some(metric::Data::Sum(s)) => s.data_points.iter().all(|p| p.flags == 1),
            Some(metric::Data::Gauge(g)) => g.data_points.iter().all(|p| p.flags == 1),
            _ => false,
        }));
    let _ = stop.send(());
    task.await.unwrap();
}

fn rand_tag() -> u32 {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    nanos ^ std::process::id()
}
