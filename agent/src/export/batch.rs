//! Turning one collection into export requests.
//!
//! Every request carries the agent's resource (`service.name`, `service.instance.id`,
//! `host.name`, `os.type`, `host.arch`) and instrumentation scope. A collection normally
//! fits one request; if its encoded size exceeds `max_request_bytes`, metrics are packed
//! greedily into several requests, and a single metric that is too big on its own is
//! split by data points.

use prost::Message;
use sightline_proto::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use sightline_proto::otlp::common::v1::InstrumentationScope;
use sightline_proto::otlp::metrics::v1::{Metric, ResourceMetrics, ScopeMetrics};
use sightline_proto::otlp::resource::v1::Resource;

use super::queue::Batch;
use crate::otlp_metric::{point_count, points_mut, string_attr};

/// Name of the instrumentation scope on every exported metric.
pub const SCOPE_NAME: &str = "sightline-agent/host";

/// `host.arch` value (semantic conventions) for the architecture the agent was built for.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm32",
        "x86" => "x86",
        "powerpc64" => "ppc64",
        "s390x" => "s390x",
        other => other,
    }
}

/// The resource every export carries.
pub fn agent_resource(hostname: &str) -> Resource {
    Resource {
        attributes: vec![
            string_attr("service.name", "sightline-agent"),
            string_attr("service.instance.id", hostname),
            string_attr("service.version", env!("CARGO_PKG_VERSION")),
            string_attr("host.name", hostname),
            string_attr("os.type", "linux"),
            string_attr("host.arch", host_arch()),
        ],
        ..Default::default()
    }
}

pub fn agent_scope() -> InstrumentationScope {
    InstrumentationScope {
        name: SCOPE_NAME.to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        ..Default::default()
    }
}

fn request(resource: &Resource, scope: &InstrumentationScope, metrics: Vec<Metric>) -> Batch {
    let points = metrics.iter().map(point_count).sum();
    Batch {
        request: ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(resource.clone()),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(scope.clone()),
                    metrics,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        },
        points,
    }
}

/// Bytes a metric adds to a request: its encoding plus tag and length prefix.
fn framed_len(m: &Metric) -> usize {
    let len = m.encoded_len();
    len + prost::length_delimiter_len(len) + 1
}

/// Split one metric's data points until every piece fits `budget` (or has one point).
fn split_metric(metric: Metric, budget: usize, out: &mut Vec<Metric>) {
    let n = point_count(&metric);
    if framed_len(&metric) <= budget || n <= 1 {
        out.push(metric);
        return;
    }
    let mut first = metric;
    let mut second = first.clone();
    if let (Some(a), Some(b)) = (points_mut(&mut first), points_mut(&mut second)) {
        let tail = a.split_off(n / 2);
        *b = tail;
    } else {
        // Not a gauge or sum: cannot split by points, send as is.
        out.push(first);
        return;
    }
    split_metric(first, budget, out);
    split_metric(second, budget, out);
}

/// Build export requests from one collection, each at most `max_bytes` when possible
/// (a single data point larger than the cap is sent alone).
pub fn build_batches(
    resource: &Resource,
    scope: &InstrumentationScope,
    metrics: Vec<Metric>,
    max_bytes: usize,
) -> Vec<Batch> {
    if metrics.is_empty() {
        return Vec::new();
    }
    let envelope = request(resource, scope, Vec::new()).request.encoded_len();
    // Headroom for the grown length prefixes of ScopeMetrics and ResourceMetrics.
    let budget = max_bytes.saturating_sub(envelope + 16).max(1);
    let mut pieces = Vec::with_capacity(metrics.len());
    for m in metrics {
        split_metric(m, budget, &mut pieces);
    }
    let mut batches = Vec::new();
    let mut current = Vec::new();
    let mut used = 0;
    for m in pieces {
        let len = framed_len(&m);
        if !current.is_empty() && used + len > budget {
            batches.push(request(resource, scope, std::mem::take(&mut current)));
            used = 0;
        }
        used += len;
        current.push(m);
    }
    if !current.is_empty() {
        batches.push(request(resource, scope, current));
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp_metric::{MetricSet, MetricSpec};

    const IO: MetricSpec = MetricSpec::counter("system.network.io", "By", "bytes");
    const LOAD: MetricSpec = MetricSpec::gauge("system.cpu.load_average.1m", "{thread}", "load");

    fn metrics(devices: usize) -> Vec<Metric> {
        let mut set = MetricSet::new(1_000);
        for i in 0..devices {
            let dev = format!("veth{i:05}");
            set.push(
                &IO,
                1,
                &[("device", &dev), ("direction", "receive")],
                i as u64,
            );
        }
        set.push(&LOAD, 0, &[], 0.5);
        set.into_metrics()
    }

    #[test]
    fn resource_has_the_agreed_attributes() {
        let r = agent_resource("node-1");
        let keys: Vec<_> = r.attributes.iter().map(|kv| kv.key.as_str()).collect();
        for k in [
            "service.name",
            "service.instance.id",
            "host.name",
            "os.type",
            "host.arch",
        ] {
            assert!(keys.contains(&k), "{k}");
        }
        assert_eq!(
            r.attributes[0],
            string_attr("service.name", "sightline-agent")
        );
        assert_eq!(r.attributes[3], string_attr("host.name", "node-1"));
    }

    #[test]
    fn small_collection_is_one_request() {
        let b = build_batches(&agent_resource("h"), &agent_scope(), metrics(10), 1 << 20);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].points, 11);
        assert!(build_batches(&agent_resource("h"), &agent_scope(), vec![], 100).is_empty());
    }

    #[test]
    fn large_collection_is_split_under_the_cap_without_losing_points() {
        let cap = 4_096;
        let batches = build_batches(&agent_resource("h"), &agent_scope(), metrics(2_000), cap);
        assert!(batches.len() > 10, "{}", batches.len());
        let mut total = 0;
        for b in &batches {
            let len = b.request.encoded_len();
            assert!(len <= cap, "request of {len} bytes exceeds {cap}");
            let rm = &b.request.resource_metrics[0];
            assert_eq!(rm.resource, Some(agent_resource("h")));
            let counted: usize = rm.scope_metrics[0].metrics.iter().map(point_count).sum();
            assert_eq!(counted, b.points);
            total += b.points;
        }
        assert_eq!(total, 2_001);
    }
}
