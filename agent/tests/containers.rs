//! Container discovery against a cgroup v2 tree reproduced in a temp dir (real file names
//! and formats), with values a writer thread changes while the agent reads them; names
//! from a `/var/log/pods`-shaped tree; `GET /inventory`; stale markers; the series budget;
//! churn of 2,000 containers; network counters from a real network namespace; the whole
//! agent shipping container resources. Names from the kubelet and Docker: `container_metadata.rs`.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sightline_agent::clock::SystemClock;
use support::container_tree::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_tree_discovery_metadata_values_inventory_and_stale_markers() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let cg = root.join("cgroup");
    put(
        &cg.join("cgroup.controllers"),
        "cpuset cpu io memory hugetlb pids rdma misc\n",
    );
    let k8s_id = hex_id(1);
    let docker_id = hex_id(2);
    let pod_slice = cg.join(format!(
        "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice",
        POD_UID.replace('-', "_")
    ));
    put(&pod_slice.join("cpu.stat"), "usage_usec 1\n"); // the pod itself is not a container
    let k8s_dir = pod_slice.join(format!("cri-containerd-{k8s_id}.scope"));
    v2_container(&k8s_dir, 2_000_000, 64 << 20);
    let docker_dir = cg.join(format!("system.slice/docker-{docker_id}.scope"));
    v2_container(&docker_dir, 500_000, 8 << 20);
    v2_container(&cg.join("system.slice/nginx.service"), 100_000, 4 << 20);
    std::fs::create_dir_all(cg.join("user.slice/user-1000.slice/session-2.scope")).unwrap();
    // The kubelet's log layout: pod directories and the id-bearing symlinks.
    std::fs::create_dir_all(root.join(format!("log/pods/shop_cart-7d9f_{POD_UID}/cart"))).unwrap();
    std::fs::create_dir_all(root.join("log/containers")).unwrap();
    std::os::unix::fs::symlink(
        root.join(format!("log/pods/shop_cart-7d9f_{POD_UID}/cart/0.log")),
        root.join(format!("log/containers/cart-7d9f_shop_cart-{k8s_id}.log")),
    )
    .unwrap();
    // Device name as sysfs gives it.
    put(
        &root.join("sys/dev/block/8:0/uevent"),
        "MAJOR=8\nMINOR=0\nDEVNAME=sda\nDEVTYPE=disk\n",
    );

    let agent = start(options(root));
    agent.wait_len(Duration::from_secs(5), |n| n == 3).await;
    assert_eq!(agent.telemetry.containers_discovered.get(), 3);
    assert_eq!(agent.telemetry.containers.get(), 3);

    // A writer thread keeps changing the k8s container's counters while we collect.
    let written = Arc::new(AtomicU64::new(2_000_000));
    let stop_writer = Arc::new(AtomicBool::new(false));
    let writer = {
        let (written, stop_writer, k8s_dir) =
            (written.clone(), stop_writer.clone(), k8s_dir.clone());
        std::thread::spawn(move || {
            let mut usec = 2_000_000;
            while !stop_writer.load(Ordering::Relaxed) {
                usec += 10_000;
                v2_container(&k8s_dir, usec, 64 << 20);
                written.store(usec, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let mut last_cpu = 0.0;
    for _ in 0..5 {
        let low = written.load(Ordering::SeqCst) as f64 / 1e6;
        let c = agent.collect().await;
        // The writer may have written one step more than it has published.
        let high = (written.load(Ordering::SeqCst) + 10_000) as f64 / 1e6;
        let k8s = by_attr(&c, "container.id", &k8s_id);
        assert_eq!(k8s.len(), 1);
        let cpu = total(k8s[0], "container.cpu.time", &[]);
        // user + system = usage_usec as written at some moment during the read.
        assert!(
            cpu >= low - 1e-6 && cpu <= high + 1e-6,
            "{low} <= {cpu} <= {high}"
        );
        assert!(cpu >= last_cpu);
        last_cpu = cpu;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop_writer.store(true, Ordering::Relaxed);
    writer.join().unwrap();

    let c = agent.collect().await;
    let k8s = by_attr(&c, "container.id", &k8s_id)[0];
    assert_eq!(attr(k8s, "k8s.namespace.name"), Some("shop"));
    assert_eq!(attr(k8s, "k8s.pod.name"), Some("cart-7d9f"));
    assert_eq!(attr(k8s, "k8s.pod.uid"), Some(POD_UID));
    assert_eq!(attr(k8s, "k8s.container.name"), Some("cart"));
    assert_eq!(attr(k8s, "container.name"), Some("cart"));
    assert_eq!(attr(k8s, "k8s.node.name"), Some("node-1"));
    assert_eq!(attr(k8s, "container.runtime"), Some("containerd"));
    let usec = written.load(Ordering::SeqCst) as f64;
    assert_eq!(
        total(k8s, "container.cpu.time", &[("cpu.mode", "user")]),
        (usec as u64 * 3 / 4) as f64 / 1e6
    );
    assert_eq!(total(k8s, "container.cpu.time", &[]), usec / 1e6);
    assert_eq!(
        total(k8s, "container.cpu.throttling_data.periods", &[]),
        120.0
    );
    assert_eq!(
        total(k8s, "container.cpu.throttling_data.throttled_periods", &[]),
        7.0
    );
    assert_eq!(
        total(k8s, "container.cpu.throttling_data.throttled_time", &[]),
        0.35
    );
    let mem = (64u64 << 20) as f64;
    assert_eq!(total(k8s, "container.memory.usage", &[]), mem);
    assert_eq!(
        total(k8s, "container.memory.working_set", &[]),
        mem - mem / 8.0
    );
    assert_eq!(total(k8s, "container.memory.rss", &[]), mem / 2.0);
    assert_eq!(total(k8s, "container.memory.file", &[]), mem / 4.0);
    assert_eq!(
        total(k8s, "container.memory.usage.limit", &[]),
        268_435_456.0
    );
    assert_eq!(total(k8s, "container.memory.oom_kills", &[]), 1.0);
    assert_eq!(
        total(
            k8s,
            "container.disk.io",
            &[("system.device", "sda"), ("disk.io.direction", "write")]
        ),
        2_097_152.0
    );
    assert_eq!(
        total(
            k8s,
            "container.disk.operations",
            &[("disk.io.direction", "read")]
        ),
        16.0
    );
    assert_eq!(total(k8s, "container.pids.count", &[]), 4.0);
    assert_eq!(total(k8s, "container.up", &[]), 1.0);

    let docker = by_attr(&c, "container.id", &docker_id)[0];
    assert_eq!(attr(docker, "container.runtime"), Some("docker"));
    assert_eq!(attr(docker, "k8s.pod.uid"), None);
    assert_eq!(
        total(docker, "container.memory.usage", &[]),
        (8u64 << 20) as f64
    );
    let svc = by_attr(&c, "systemd.unit", "nginx.service");
    assert_eq!(svc.len(), 1);
    assert_eq!(attr(svc[0], "container.id"), None);
    assert_eq!(total(svc[0], "container.cpu.time", &[]), 0.1);
    assert_eq!(
        c.resources.len(),
        3,
        "pod slice and session scope are not containers"
    );

    // GET /inventory on a real HTTP server.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = agent.containers.router();
    let server = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let body = http_get(addr, "/inventory").await;
    let json: serde_json::Value =
        serde_json::from_str(body.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    let items = json.as_array().unwrap();
    assert_eq!(items.len(), 3);
    let k8s_item = items
        .iter()
        .find(|i| i["container_id"] == k8s_id.as_str())
        .unwrap();
    assert_eq!(k8s_item["kind"], "kubernetes");
    assert_eq!(k8s_item["qos"], "burstable");
    assert_eq!(k8s_item["metadata"]["pod_name"], "cart-7d9f");
    assert!(k8s_item["cgroup_path"]
        .as_str()
        .unwrap()
        .starts_with("/kubepods.slice/"));
    assert!(k8s_item["first_seen"].as_str().unwrap().ends_with('Z'));
    server.abort();

    // A new container is seen within the 2 s contract.
    let new_id = hex_id(3);
    v2_container(
        &cg.join(format!("system.slice/docker-{new_id}.scope")),
        1,
        1,
    );
    agent.wait_len(Duration::from_secs(2), |n| n == 4).await;

    // Removal: forgotten, and its series ended with one NO_RECORDED_VALUE point each.
    std::fs::remove_dir_all(&docker_dir).unwrap();
    agent.wait_len(Duration::from_secs(5), |n| n == 3).await;
    assert_eq!(agent.telemetry.containers_removed.get(), 1);
    let c = agent.collect().await;
    let ended = by_attr(&c, "container.id", &docker_id);
    assert_eq!(ended.len(), 1);
    let stale: Vec<_> = ended[0].scope_metrics[0].metrics.iter().collect();
    assert!(stale.len() > 5);
    for name in [
        "container.cpu.time",
        "container.memory.usage",
        "container.up",
    ] {
        let ps = points(ended[0], name);
        assert!(!ps.is_empty(), "{name}");
        assert!(
            ps.iter().all(|p| p.flags == 1 && p.value.is_none()),
            "{name}"
        );
    }
    // Only once.
    let c = agent.collect().await;
    assert!(by_attr(&c, "container.id", &docker_id).is_empty());
    assert!(agent
        .telemetry
        .encode()
        .contains("sightline_agent_containers_removed_total 1"));
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_of_2000_containers_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let cg = root.join("cgroup");
    put(&cg.join("cgroup.controllers"), "cpu memory pids\n");
    std::fs::create_dir_all(cg.join("system.slice")).unwrap();
    std::fs::create_dir_all(cg.join("kubepods.slice/kubepods-besteffort.slice")).unwrap();
    let agent = start(options(root));
    agent.wait_len(Duration::from_secs(5), |n| n == 0).await;
    let baseline = agent.containers.inventory().lock().unwrap().footprint();
    let n = 2_000u64;
    let mut dirs = Vec::new();
    for i in 0..n {
        let d = if i % 2 == 0 {
            cg.join(format!("system.slice/docker-{}.scope", hex_id(i)))
        } else {
            cg.join(format!(
                "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{:08x}_0000_0000_0000_000000000000.slice/cri-containerd-{}.scope",
                i,
                hex_id(i)
            ))
        };
        std::fs::create_dir_all(&d).unwrap();
        put(
            &d.join("cpu.stat"),
            "usage_usec 10\nuser_usec 5\nsystem_usec 5\n",
        );
        put(&d.join("memory.current"), "4096\n");
        dirs.push(d);
    }
    agent
        .wait_len(Duration::from_secs(30), |len| len == n as usize)
        .await;
    assert_eq!(agent.telemetry.containers_discovered.get(), n);
    let c = agent.collect().await;
    assert_eq!(c.resources.len(), n as usize);
    for d in &dirs {
        std::fs::remove_dir_all(d).unwrap();
        if let Some(pod) = d.parent().filter(|p| p.to_string_lossy().contains("-pod")) {
            std::fs::remove_dir(pod).unwrap();
        }
    }
    agent
        .wait_len(Duration::from_secs(30), |len| len == 0)
        .await;
    assert_eq!(agent.telemetry.containers_removed.get(), n);
    assert_eq!(agent.telemetry.containers.get(), 0);
    // Every series is ended once, then nothing is kept.
    let c = agent.collect().await;
    assert_eq!(c.resources.len(), n as usize);
    assert!(agent.collect().await.resources.is_empty());
    let inventory = agent.containers.inventory();
    assert_eq!(inventory.lock().unwrap().footprint(), baseline);
    assert!(inventory.lock().unwrap().items().is_empty());
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_budget_folds_newest_containers_into_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let cg = root.join("cgroup");
    put(&cg.join("cgroup.controllers"), "cpu memory pids\n");
    let mut opts = options(root);
    // One container's worth of series (up, 2 cpu, 3 throttling, 4 memory + limit,
    // oom, 4 io, pids = 17).
    opts.max_series = 17;
    let agent = start(opts);
    for i in 0..3 {
        v2_container(
            &cg.join(format!("system.slice/docker-{}.scope", hex_id(i))),
            1_000_000,
            1 << 20,
        );
        agent
            .wait_len(Duration::from_secs(5), |n| n == i as usize + 1)
            .await;
        // Distinct first_seen stamps so "oldest first" is well defined.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let c = agent.collect().await;
    assert_eq!(c.resources.len(), 2);
    let overflow = by_attr(&c, "container.id", "overflow");
    assert_eq!(overflow.len(), 1);
    assert_eq!(total(overflow[0], "container.up", &[]), 2.0);
    assert_eq!(
        total(overflow[0], "container.memory.usage", &[]),
        2.0 * (1 << 20) as f64
    );
    assert_eq!(c.overflow_series, 34);
    assert_eq!(agent.telemetry.series_overflow.get(), 34);
    assert!(agent
        .telemetry
        .encode()
        .contains("sightline_agent_series_overflow_total 34"));
    assert_eq!(
        by_attr(&c, "container.id", &hex_id(0)).len(),
        1,
        "oldest keeps its series"
    );
    agent.stop().await;
}

async fn wait_for_listen_file(path: &Path) -> std::net::SocketAddr {
    for _ in 0..200 {
        if let Ok(text) = std::fs::read_to_string(path) {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            return v["http"].as_str().unwrap().parse().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("listen file {} never appeared", path.display());
}

/// The whole agent (`run::run`) with `--cgroup-root` on a temp tree: container resources
/// reach a real OTLP/gRPC server, `/inventory` and the counters are served on the agent's
/// HTTP address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_agent_ships_container_resources_and_serves_inventory() {
    let server = support::FakeCollector::default();
    let (endpoint, _) = server.start().await;
    let dir = tempfile::tempdir().unwrap();
    let cg = dir.path().join("cgroup");
    put(&cg.join("cgroup.controllers"), "cpu memory pids\n");
    let id = hex_id(42);
    v2_container(
        &cg.join(format!("system.slice/docker-{id}.scope")),
        3_000_000,
        32 << 20,
    );
    let listen = dir.path().join("listen.json");
    let config = dir.path().join("agent.yaml");
    std::fs::write(
        &config,
        "interval: 200ms\ncontainers:\n  pod_logs_root: \"\"\n  docker_socket: \"\"\n",
    )
    .unwrap();
    let args = sightline_agent::config::RunArgs {
        config: Some(config),
        endpoint: vec![endpoint],
        http_addr: Some("127.0.0.1:0".into()),
        listen_file: Some(listen.clone()),
        cgroup_root: Some(cg.clone()),
        ..Default::default()
    };
    let cfg = sightline_agent::config::resolve(&args).unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let agent = tokio::spawn(sightline_agent::run::run(
        cfg,
        Arc::new(SystemClock),
        async {
            let _ = stop_rx.await;
        },
    ));
    let addr = wait_for_listen_file(&listen).await;
    let t0 = Instant::now();
    let shipped = loop {
        let found = server.received().into_iter().find_map(|r| {
            r.request
                .resource_metrics
                .into_iter()
                .find(|rm| attr(rm, "container.id") == Some(id.as_str()))
        });
        if let Some(rm) = found {
            break rm;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "no container resource shipped"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        shipped.scope_metrics[0].scope.as_ref().unwrap().name,
        "sightline-agent/containers"
    );
    assert_eq!(total(&shipped, "container.cpu.time", &[]), 3.0);
    assert_eq!(
        total(&shipped, "container.memory.usage", &[]),
        (32u64 << 20) as f64
    );
    let body = http_get(addr, "/inventory").await;
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(
        body.contains(&format!("\"container_id\":\"{id}\"")),
        "{body}"
    );
    let metrics = http_get(addr, "/metrics").await;
    assert!(
        metrics.contains("sightline_agent_containers 1"),
        "{metrics}"
    );
    assert!(metrics.contains("sightline_agent_containers_discovered_total 1"));
    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(15), agent)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

/// Network counters come from `/proc/<pid>/net/dev` of a process in the container when it
/// has its own network namespace (`unshare -n`), and not from a process on the host's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_counters_from_a_process_in_its_own_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let cg = dir.path().join("cgroup");
    put(&cg.join("cgroup.controllers"), "cpu memory pids\n");
    let own = cg.join(format!("system.slice/docker-{}.scope", hex_id(50)));
    let shared = cg.join(format!("system.slice/docker-{}.scope", hex_id(51)));
    v2_container(&own, 1, 1);
    v2_container(&shared, 1, 1);
    let mut child = std::process::Command::new("unshare")
        .args(["-n", "sleep", "60"])
        .spawn()
        .expect("unshare (util-linux) and root are needed for a network namespace");
    let pid = child.id();
    // unshare(2) runs right after the spawn; wait until the namespace differs.
    let host_ns = std::fs::read_link("/proc/1/ns/net")
        .or_else(|_| std::fs::read_link("/proc/self/ns/net"))
        .unwrap();
    let t0 = Instant::now();
    while std::fs::read_link(format!("/proc/{pid}/ns/net")).unwrap() == host_ns {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "unshare -n did not take effect (root needed)"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    put(&own.join("cgroup.procs"), &format!("{pid}\n"));
    put(
        &shared.join("cgroup.procs"),
        &format!("{}\n", std::process::id()),
    );
    let agent = start(options(dir.path()));
    agent.wait_len(Duration::from_secs(5), |n| n == 2).await;
    let c = agent.collect().await;
    let _ = child.kill();
    let _ = child.wait();
    let own_r = by_attr(&c, "container.id", &hex_id(50))[0];
    let lo: Vec<_> = points(own_r, "container.network.io")
        .into_iter()
        .filter(|p| point_attr(p, "network.interface.name") == Some("lo"))
        .collect();
    assert_eq!(lo.len(), 2, "receive and transmit of lo");
    assert_eq!(points(own_r, "container.network.packets").len(), 2);
    let shared_r = by_attr(&c, "container.id", &hex_id(51))[0];
    assert!(points(shared_r, "container.network.io").is_empty());
    agent.stop().await;
}
