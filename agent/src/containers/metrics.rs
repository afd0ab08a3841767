//! Container readings → OTLP: one `ResourceMetrics` per container, named after the
//! OpenTelemetry semantic conventions for containers (and the docker_stats / kubeletstats
//! receivers where the conventions have no name), with the container's identity as
//! resource attributes.
//!
//! Three things beyond plain conversion happen here: removed containers get one last
//! point per series flagged `NO_RECORDED_VALUE` ([`stale_resource`]); containers beyond
//! the node's series budget are summed into one overflow resource ([`sum_stats`]); and
//! resources are packed into requests under the size cap ([`pack`]).

use prost::Message;
use sightline_proto::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use sightline_proto::otlp::common::v1::{InstrumentationScope, KeyValue};
use sightline_proto::otlp::metrics::v1::{ResourceMetrics, ScopeMetrics};
use sightline_proto::otlp::resource::v1::Resource;

use super::cgroup_stats::{ContainerStats, DeviceIo};
use super::discovery::Kind;
use super::inventory::Entry;
use crate::export::queue::Batch;
use crate::otlp_metric::{point_count, points_mut, string_attr, MetricSet, MetricSpec};

/// Scope of every container metric.
pub const SCOPE_NAME: &str = "sightline-agent/containers";

pub const CPU_TIME: MetricSpec = MetricSpec::counter(
    "container.cpu.time",
    "s",
    "CPU time consumed by the container, by cpu.mode (user, system).",
);
pub const THROTTLE_PERIODS: MetricSpec = MetricSpec::counter(
    "container.cpu.throttling_data.periods",
    "{period}",
    "CFS enforcement periods that elapsed.",
);
pub const THROTTLED_PERIODS: MetricSpec = MetricSpec::counter(
    "container.cpu.throttling_data.throttled_periods",
    "{period}",
    "Periods in which the container was throttled.",
);
pub const THROTTLED_TIME: MetricSpec = MetricSpec::counter(
    "container.cpu.throttling_data.throttled_time",
    "s",
    "Time the container was throttled.",
);
pub const MEMORY_USAGE: MetricSpec = MetricSpec::updown(
    "container.memory.usage",
    "By",
    "Memory charged to the cgroup (memory.current / memory.usage_in_bytes).",
);
pub const MEMORY_WORKING_SET: MetricSpec = MetricSpec::updown(
    "container.memory.working_set",
    "By",
    "Usage minus inactive file cache (what the kubelet evicts on).",
);
pub const MEMORY_RSS: MetricSpec = MetricSpec::updown(
    "container.memory.rss",
    "By",
    "Anonymous memory (anon / total_rss).",
);
pub const MEMORY_FILE: MetricSpec = MetricSpec::updown(
    "container.memory.file",
    "By",
    "Page cache charged to the cgroup (file / total_cache).",
);
pub const MEMORY_LIMIT: MetricSpec = MetricSpec::updown(
    "container.memory.usage.limit",
    "By",
    "Memory limit (only when one is set).",
);
pub const OOM_KILLS: MetricSpec = MetricSpec::counter(
    "container.memory.oom_kills",
    "{event}",
    "Processes of the container killed by the OOM killer.",
);
pub const DISK_IO: MetricSpec = MetricSpec::counter(
    "container.disk.io",
    "By",
    "Bytes read and written, by system.device and disk.io.direction.",
);
pub const DISK_OPERATIONS: MetricSpec = MetricSpec::counter(
    "container.disk.operations",
    "{operation}",
    "Read and write operations, by system.device and disk.io.direction.",
);
pub const NET_IO: MetricSpec = MetricSpec::counter(
    "container.network.io",
    "By",
    "Bytes received and transmitted, by network.interface.name and network.io.direction.",
);
pub const NET_PACKETS: MetricSpec = MetricSpec::counter(
    "container.network.packets",
    "{packet}",
    "Packets received and transmitted.",
);
pub const NET_ERRORS: MetricSpec = MetricSpec::counter(
    "container.network.errors",
    "{error}",
    "Receive and transmit errors.",
);
pub const NET_DROPPED: MetricSpec = MetricSpec::counter(
    "container.network.dropped",
    "{packet}",
    "Packets dropped on receive and transmit.",
);
pub const PIDS: MetricSpec = MetricSpec::updown(
    "container.pids.count",
    "{process}",
    "Processes and threads in the cgroup.",
);
pub const UP: MetricSpec = MetricSpec::gauge(
    "container.up",
    "{container}",
    "1 while the container exists (the overflow resource: containers folded into it).",
);

/// Append one container's points. `start` anchors the cumulative sums.
pub fn push_stats(set: &mut MetricSet, s: &ContainerStats, start: u64, up: u64) {
    set.push(&UP, start, &[], up);
    match (s.cpu_user_s, s.cpu_system_s, s.cpu_total_s) {
        (Some(user), Some(system), _) => {
            set.push(&CPU_TIME, start, &[("cpu.mode", "user")], user);
            set.push(&CPU_TIME, start, &[("cpu.mode", "system")], system);
        }
        (_, _, Some(total)) => set.push(&CPU_TIME, start, &[], total),
        _ => {}
    }
    let counter = |set: &mut MetricSet, spec: &MetricSpec, v: Option<u64>| {
        if let Some(v) = v {
            set.push(spec, start, &[], v);
        }
    };
    counter(set, &THROTTLE_PERIODS, s.cpu_periods);
    counter(set, &THROTTLED_PERIODS, s.cpu_throttled_periods);
    if let Some(t) = s.cpu_throttled_s {
        set.push(&THROTTLED_TIME, start, &[], t);
    }
    counter(set, &MEMORY_USAGE, s.memory_usage);
    counter(set, &MEMORY_WORKING_SET, s.memory_working_set);
    counter(set, &MEMORY_RSS, s.memory_rss);
    counter(set, &MEMORY_FILE, s.memory_file);
    counter(set, &MEMORY_LIMIT, s.memory_limit);
    counter(set, &OOM_KILLS, s.oom_kills);
    for d in &s.io {
        let dev = d.device.as_str();
        set.push(
            &DISK_IO,
            start,
            &[("system.device", dev), ("disk.io.direction", "read")],
            d.read_bytes,
        );
        set.push(
            &DISK_IO,
            start,
            &[("system.device", dev), ("disk.io.direction", "write")],
            d.write_bytes,
        );
        set.push(
            &DISK_OPERATIONS,
            start,
            &[("system.device", dev), ("disk.io.direction", "read")],
            d.read_ops,
        );
        set.push(
            &DISK_OPERATIONS,
            start,
            &[("system.device", dev), ("disk.io.direction", "write")],
            d.write_ops,
        );
    }
    for i in &s.network {
        for (spec, idx) in [
            (&NET_IO, 0),
            (&NET_PACKETS, 1),
            (&NET_ERRORS, 2),
            (&NET_DROPPED, 3),
        ] {
            for (dir, values) in [("receive", &i.receive), ("transmit", &i.transmit)] {
                set.push(
                    spec,
                    start,
                    &[
                        ("network.interface.name", i.device.as_str()),
                        ("network.io.direction", dir),
                    ],
                    values[idx],
                );
            }
        }
    }
    counter(set, &PIDS, s.pids);
}

/// Split `registry/repo:tag` into name and tag (a digest `@sha256:` stays in the name).
pub fn split_image(image: &str) -> (&str, Option<&str>) {
    if image.contains('@') {
        return (image, None);
    }
    match image.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, Some(tag)),
        _ => (image, None),
    }
}

/// Resource attributes of a container.
pub fn resource(entry: &Entry, hostname: &str) -> Resource {
    let id = &entry.identity;
    let m = &entry.metadata;
    let mut attrs: Vec<KeyValue> = vec![string_attr("host.name", hostname)];
    if let Some(cid) = &id.container_id {
        attrs.push(string_attr("container.id", cid.as_str()));
    }
    if let Some(name) = m.container_name.as_ref().or(m.k8s_container_name.as_ref()) {
        attrs.push(string_attr("container.name", name.as_str()));
    }
    if let Some(image) = &m.image {
        let (name, tag) = split_image(image);
        attrs.push(string_attr("container.image.name", name));
        if let Some(tag) = tag {
            attrs.push(string_attr("container.image.tag", tag));
        }
    }
    if let Some(rt) = id.runtime {
        attrs.push(string_attr("container.runtime", rt.as_str()));
    }
    if id.kind == Kind::Kubernetes {
        attrs.push(string_attr("k8s.node.name", hostname));
        if let Some(uid) = &id.pod_uid {
            attrs.push(string_attr("k8s.pod.uid", uid.as_str()));
        }
        for (key, v) in [
            ("k8s.namespace.name", &m.namespace),
            ("k8s.pod.name", &m.pod_name),
            ("k8s.container.name", &m.k8s_container_name),
        ] {
            if let Some(v) = v {
                attrs.push(string_attr(key, v.as_str()));
            }
        }
    }
    if let Some(unit) = &id.unit {
        attrs.push(string_attr("systemd.unit", unit.as_str()));
    }
    Resource {
        attributes: attrs,
        ..Default::default()
    }
}

/// The resource that containers beyond the series budget are summed into.
pub fn overflow_resource(hostname: &str) -> Resource {
    Resource {
        attributes: vec![
            string_attr("host.name", hostname),
            string_attr("container.id", "overflow"),
            string_attr("container.name", "overflow"),
        ],
        ..Default::default()
    }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: SCOPE_NAME.to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        ..Default::default()
    }
}

/// One container's `ResourceMetrics`.
pub fn resource_metrics(resource: Resource, set: MetricSet) -> ResourceMetrics {
    ResourceMetrics {
        resource: Some(resource),
        scope_metrics: vec![ScopeMetrics {
            scope: Some(scope()),
            metrics: set.into_metrics(),
            schema_url: String::new(),
        }],
        schema_url: String::new(),
    }
}

/// The series of `last`, each ended by one value-less point flagged `NO_RECORDED_VALUE`.
pub fn stale_resource(
    resource: Resource,
    last: &ContainerStats,
    start: u64,
    now: u64,
) -> ResourceMetrics {
    let mut set = MetricSet::new(now);
    push_stats(&mut set, last, start, 1);
    let mut metrics = set.into_metrics();
    for m in &mut metrics {
        if let Some(points) = points_mut(m) {
            for p in points {
                p.value = None;
                p.flags =
                    sightline_proto::otlp::metrics::v1::DataPointFlags::NoRecordedValueMask as u32;
            }
        }
    }
    ResourceMetrics {
        resource: Some(resource),
        scope_metrics: vec![ScopeMetrics {
            scope: Some(scope()),
            metrics,
            schema_url: String::new(),
        }],
        schema_url: String::new(),
    }
}

fn add(a: &mut Option<u64>, b: Option<u64>) {
    if let Some(b) = b {
        *a = Some(a.unwrap_or(0).saturating_add(b));
    }
}

fn add_f(a: &mut Option<f64>, b: Option<f64>) {
    if let Some(b) = b {
        *a = Some(a.unwrap_or(0.0) + b);
    }
}

/// Add `b` into `a`, field by field (devices and interfaces by name).
pub fn sum_stats(a: &mut ContainerStats, b: &ContainerStats) {
    add_f(&mut a.cpu_total_s, b.cpu_total_s);
    add_f(&mut a.cpu_user_s, b.cpu_user_s);
    add_f(&mut a.cpu_system_s, b.cpu_system_s);
    add(&mut a.cpu_periods, b.cpu_periods);
    add(&mut a.cpu_throttled_periods, b.cpu_throttled_periods);
    add_f(&mut a.cpu_throttled_s, b.cpu_throttled_s);
    add(&mut a.memory_usage, b.memory_usage);
    add(&mut a.memory_working_set, b.memory_working_set);
    add(&mut a.memory_rss, b.memory_rss);
    add(&mut a.memory_file, b.memory_file);
    add(&mut a.memory_limit, b.memory_limit);
    add(&mut a.oom_kills, b.oom_kills);
    add(&mut a.pids, b.pids);
    for d in &b.io {
        match a.io.iter_mut().find(|x| x.device == d.device) {
            Some(x) => {
                x.read_bytes += d.read_bytes;
                x.write_bytes += d.write_bytes;
                x.read_ops += d.read_ops;
                x.write_ops += d.write_ops;
            }
            None => a.io.push(DeviceIo { ..d.clone() }),
        }
    }
    for i in &b.network {
        match a.network.iter_mut().find(|x| x.device == i.device) {
            Some(x) => {
                for k in 0..4 {
                    x.receive[k] += i.receive[k];
                    x.transmit[k] += i.transmit[k];
                }
            }
            None => a.network.push(i.clone()),
        }
    }
}

/// Pack resources into requests of at most `max_bytes` (a larger single resource goes alone).
pub fn pack(resources: Vec<ResourceMetrics>, max_bytes: usize) -> Vec<Batch> {
    let mut batches = Vec::new();
    let mut current: Vec<ResourceMetrics> = Vec::new();
    let mut size = 0usize;
    let flush = |current: &mut Vec<ResourceMetrics>, batches: &mut Vec<Batch>| {
        if current.is_empty() {
            return;
        }
        let resource_metrics = std::mem::take(current);
        let points = resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
            .map(point_count)
            .sum();
        batches.push(Batch {
            request: ExportMetricsServiceRequest { resource_metrics },
            points,
        });
    };
    for r in resources {
        let len = r.encoded_len();
        let framed = len + prost::length_delimiter_len(len) + 1;
        if size + framed > max_bytes && !current.is_empty() {
            flush(&mut current, &mut batches);
            size = 0;
        }
        size += framed;
        current.push(r);
    }
    flush(&mut current, &mut batches);
    batches
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::network::InterfaceStats;

    fn stats() -> ContainerStats {
        ContainerStats {
            cpu_total_s: Some(3.0),
            cpu_user_s: Some(2.0),
            cpu_system_s: Some(1.0),
            memory_usage: Some(100),
            memory_working_set: Some(60),
            io: vec![DeviceIo {
                device: "vda".into(),
                read_bytes: 10,
                write_bytes: 20,
                read_ops: 1,
                write_ops: 2,
            }],
            network: vec![InterfaceStats {
                device: "eth0".into(),
                receive: [1, 2, 3, 4],
                transmit: [5, 6, 7, 8],
            }],
            pids: Some(3),
            ..Default::default()
        }
    }

    #[test]
    fn points_and_stale_markers() {
        let mut set = MetricSet::new(2_000);
        push_stats(&mut set, &stats(), 1_000, 1);
        // up + 2 cpu + usage + working set + 4 io + 8 net + pids
        assert_eq!(set.point_count(), 18);
        let r = stale_resource(Resource::default(), &stats(), 1_000, 3_000);
        let points: Vec<_> = r.scope_metrics[0]
            .metrics
            .iter()
            .flat_map(|m| match &m.data {
                Some(sightline_proto::otlp::metrics::v1::metric::Data::Sum(s)) => {
                    s.data_points.clone()
                }
                Some(sightline_proto::otlp::metrics::v1::metric::Data::Gauge(g)) => {
                    g.data_points.clone()
                }
                _ => vec![],
            })
            .collect();
        assert_eq!(points.len(), 18);
        assert!(points
            .iter()
            .all(|p| p.flags == 1 && p.value.is_none() && p.time_unix_nano == 3_000));
    }

    #[test]
    fn sums_and_images_and_packing() {
        let mut total = ContainerStats::default();
        sum_stats(&mut total, &stats());
        sum_stats(&mut total, &stats());
        assert_eq!(total.cpu_user_s, Some(4.0));
        assert_eq!(total.memory_usage, Some(200));
        assert_eq!(total.memory_limit, None);
        assert_eq!(total.io[0].write_ops, 4);
        assert_eq!(total.network[0].transmit[3], 16);
        assert_eq!(split_image("nginx:1.27"), ("nginx", Some("1.27")));
        assert_eq!(split_image("reg:5000/app"), ("reg:5000/app", None));
        assert_eq!(split_image("app@sha256:ab"), ("app@sha256:ab", None));
        let rm = |n| {
            let mut set = MetricSet::new(1);
            push_stats(&mut set, &stats(), 0, n);
            resource_metrics(Resource::default(), set)
        };
        let one = rm(1).encoded_len();
        let batches = pack((0..10).map(rm).collect(), one * 3 + 20);
        assert_eq!(batches.len(), 4);
        assert_eq!(batches.iter().map(|b| b.points).sum::<usize>(), 180);
        assert!(pack(Vec::new(), 100).is_empty());
    }
}
