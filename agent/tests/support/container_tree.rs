//! A cgroup v2 tree in a temp dir with the kernel's file names and formats, a running
//! discovery loop over it, and accessors for the OTLP resources the agent produces.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use sightline_agent::clock::{Clock, SystemClock};
use sightline_agent::containers::metadata::MetadataOptions;
use sightline_agent::containers::{ContainerCollection, ContainerOptions, Containers};
use sightline_agent::telemetry::Telemetry;
use sightline_proto::otlp::common::v1::any_value;
use sightline_proto::otlp::metrics::v1::{
    metric, number_data_point, NumberDataPoint, ResourceMetrics,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const POD_UID: &str = "0f6c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b";

pub fn hex_id(n: u64) -> String {
    format!("{:064x}", 0xc0ffee_u64 * 1_000_003 + n)
}

/// Write like the kernel does: readers never see half a file.
pub fn put(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A v2 container directory with the files and formats the kernel has.
pub fn v2_container(dir: &Path, cpu_usec: u64, memory: u64) {
    std::fs::create_dir_all(dir).unwrap();
    put(&dir.join("cpu.stat"), &format!(
        "usage_usec {cpu_usec}\nuser_usec {}\nsystem_usec {}\nnr_periods 120\nnr_throttled 7\nthrottled_usec 350000\nnr_bursts 0\nburst_usec 0\n",
        cpu_usec * 3 / 4,
        cpu_usec - cpu_usec * 3 / 4
    ));
    put(&dir.join("memory.current"), &format!("{memory}\n"));
    put(&dir.join("memory.stat"), &format!(
        "anon {}\nfile {}\nkernel 385024\nkernel_stack 32768\npagetables 65536\nsock 0\nshmem 0\nfile_mapped 0\nfile_dirty 0\nfile_writeback 0\nanon_thp 0\ninactive_anon {}\nactive_anon 4096\ninactive_file {}\nactive_file {}\nunevictable 0\nslab_reclaimable 0\nslab_unreclaimable 0\npgfault 1000\npgmajfault 3\n",
        memory / 2, memory / 4, memory / 2, memory / 8, memory / 8
    ));
    put(&dir.join("memory.max"), "268435456\n");
    put(
        &dir.join("memory.events"),
        "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\noom_group_kill 0\n",
    );
    put(
        &dir.join("io.stat"),
        "8:0 rbytes=1048576 wbytes=2097152 rios=16 wios=32 dbytes=0 dios=0\n",
    );
    put(&dir.join("pids.current"), "4\n");
    put(&dir.join("cgroup.procs"), "");
}

pub fn options(root: &Path) -> ContainerOptions {
    ContainerOptions {
        cgroup_root: root.join("cgroup"),
        proc_root: PathBuf::from("/proc"),
        sys_root: root.join("sys"),
        metadata: MetadataOptions {
            pod_logs_root: Some(root.join("log/pods")),
            kubelet_url: None,
            kubelet_token_file: None,
            kubelet_ca_file: None,
            kubelet_insecure_skip_verify: false,
            docker_socket: None,
        },
        max_series: 20_000,
        rescan_interval: Duration::from_secs(1),
    }
}

pub struct Running {
    pub containers: Arc<Containers>,
    pub telemetry: Arc<Telemetry>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

pub fn start(opts: ContainerOptions) -> Running {
    let telemetry = Arc::new(Telemetry::new());
    let containers =
        Arc::new(Containers::new(opts, telemetry.clone(), "node-1", SystemTime::now()).unwrap());
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let task = tokio::spawn(containers.clone().run_discovery(clock, async {
        let _ = rx.await;
    }));
    Running {
        containers,
        telemetry,
        stop,
        task,
    }
}

impl Running {
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }

    pub fn len(&self) -> usize {
        self.containers.inventory().lock().unwrap().len()
    }

    /// Wait (at most `limit`) until `cond` holds on the inventory size.
    pub async fn wait_len(&self, limit: Duration, cond: impl Fn(usize) -> bool) -> Duration {
        let t0 = Instant::now();
        while !cond(self.len()) {
            assert!(
                t0.elapsed() < limit,
                "inventory has {} entries after {limit:?}",
                self.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        t0.elapsed()
    }

    pub async fn collect(&self) -> ContainerCollection {
        let c = self.containers.clone();
        tokio::task::spawn_blocking(move || c.collect(SystemTime::now()))
            .await
            .unwrap()
    }
}

pub fn attr<'a>(r: &'a ResourceMetrics, key: &str) -> Option<&'a str> {
    r.resource.as_ref()?.attributes.iter().find_map(|kv| {
        if kv.key != key {
            return None;
        }
        match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some(s.as_str()),
            _ => None,
        }
    })
}

pub fn by_attr<'a>(c: &'a ContainerCollection, key: &str, value: &str) -> Vec<&'a ResourceMetrics> {
    c.resources
        .iter()
        .filter(|r| attr(r, key) == Some(value))
        .collect()
}

pub fn points<'a>(r: &'a ResourceMetrics, name: &str) -> Vec<&'a NumberDataPoint> {
    r.scope_metrics
        .iter()
        .flat_map(|s| &s.metrics)
        .filter(|m| m.name == name)
        .flat_map(|m| match &m.data {
            Some(metric::Data::Sum(s)) => s.data_points.iter().collect::<Vec<_>>(),
            Some(metric::Data::Gauge(g)) => g.data_points.iter().collect(),
            _ => Vec::new(),
        })
        .collect()
}

pub fn value(p: &NumberDataPoint) -> f64 {
    match p.value {
        Some(number_data_point::Value::AsDouble(v)) => v,
        Some(number_data_point::Value::AsInt(v)) => v as f64,
        None => f64::NAN,
    }
}

pub fn point_attr<'a>(p: &'a NumberDataPoint, key: &str) -> Option<&'a str> {
    p.attributes
        .iter()
        .find_map(|kv| match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) if kv.key == key => Some(s.as_str()),
            _ => None,
        })
}

/// Sum of a metric's points matching `filter` (`(key, value)` on point attributes).
pub fn total(r: &ResourceMetrics, name: &str, filter: &[(&str, &str)]) -> f64 {
    points(r, name)
        .into_iter()
        .filter(|p| filter.iter().all(|(k, v)| point_attr(p, k) == Some(*v)))
        .map(value)
        .sum()
}

pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}
