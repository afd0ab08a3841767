//! What the receiver needs to know about each OTLP signal: its name, how many items a
//! request holds, where its resources are, and how it travels to the shipper.

use serde::de::DeserializeOwned;
use serde::Serialize;
use sightline_proto::otlp::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use sightline_proto::otlp::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use sightline_proto::otlp::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use sightline_proto::otlp::metrics::v1::metric::Data;
use sightline_proto::otlp::resource::v1::Resource;

use super::forward::AppRequest;

/// Signal names (`signal` label).
pub const METRICS: &str = "metrics";
pub const LOGS: &str = "logs";
pub const TRACES: &str = "traces";

/// An OTLP export request the receiver accepts.
pub trait AppSignal: prost::Message + Default + DeserializeOwned + Send + 'static {
    type Response: prost::Message + Serialize + Default + Send + 'static;
    const SIGNAL: &'static str;
    /// Data points, log records or spans.
    fn items(&self) -> usize;
    /// Every resource of the request (created empty where missing).
    fn resources_mut(&mut self) -> Vec<&mut Resource>;
    fn into_app_request(self) -> AppRequest;
}

/// Data points of a metrics request (histograms and summaries count one per point).
pub fn metric_points(r: &ExportMetricsServiceRequest) -> usize {
    r.resource_metrics
        .iter()
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
        .map(|m| match &m.data {
            Some(Data::Gauge(g)) => g.data_points.len(),
            Some(Data::Sum(s)) => s.data_points.len(),
            Some(Data::Histogram(h)) => h.data_points.len(),
            Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
            Some(Data::Summary(s)) => s.data_points.len(),
            None => 0,
        })
        .sum()
}

impl AppSignal for ExportMetricsServiceRequest {
    type Response = ExportMetricsServiceResponse;
    const SIGNAL: &'static str = METRICS;
    fn items(&self) -> usize {
        metric_points(self)
    }
    fn resources_mut(&mut self) -> Vec<&mut Resource> {
        self.resource_metrics
            .iter_mut()
            .map(|r| r.resource.get_or_insert_with(Resource::default))
            .collect()
    }
    fn into_app_request(self) -> AppRequest {
        AppRequest::Metrics(self)
    }
}

impl AppSignal for ExportLogsServiceRequest {
    type Response = ExportLogsServiceResponse;
    const SIGNAL: &'static str = LOGS;
    fn items(&self) -> usize {
        self.resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .map(|s| s.log_records.len())
            .sum()
    }
    fn resources_mut(&mut self) -> Vec<&mut Resource> {
        self.resource_logs
            .iter_mut()
            .map(|r| r.resource.get_or_insert_with(Resource::default))
            .collect()
    }
    fn into_app_request(self) -> AppRequest {
        AppRequest::Logs(self)
    }
}

impl AppSignal for ExportTraceServiceRequest {
    type Response = ExportTraceServiceResponse;
    const SIGNAL: &'static str = TRACES;
    fn items(&self) -> usize {
        self.resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum()
    }
    fn resources_mut(&mut self) -> Vec<&mut Resource> {
        self.resource_spans
            .iter_mut()
            .map(|r| r.resource.get_or_insert_with(Resource::default))
            .collect()
    }
    fn into_app_request(self) -> AppRequest {
        AppRequest::Traces(self)
    }
}
