//! What the OTLP receivers (gRPC and HTTP) need to know about each signal: the
//! request and response messages, how to translate a request and how to report a
//! partial success.

use serde::de::DeserializeOwned;
use serde::Serialize;
use sightline_proto::otlp::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use sightline_proto::otlp::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use sightline_proto::otlp::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};

use crate::ingest::{Ingested, Signal};
use crate::metadata::{self, MetricMeta};
use crate::translate::{self, TranslateOptions, Translated};

/// An OTLP export request type.
pub trait OtlpRequest: prost::Message + Default + DeserializeOwned + Send + 'static {
    type Response: prost::Message + Serialize + Default + Send + 'static;
    const SIGNAL: Signal;
    fn translate(self, opts: &TranslateOptions) -> Translated;
    /// Metric metadata the request carries (metrics only), see [`crate::metadata`].
    fn metadata(&self) -> Vec<(String, MetricMeta)> {
        Vec::new()
    }
    /// The success response; `partial_success` is set when items were not stored.
    fn response(outcome: &Ingested) -> Self::Response;
}

fn rejected(outcome: &Ingested) -> Option<(i64, String)> {
    (outcome.rejected > 0 || !outcome.message.is_empty()).then(|| {
        (
            i64::try_from(outcome.rejected).unwrap_or(i64::MAX),
            outcome.message.clone(),
        )
    })
}

impl OtlpRequest for ExportMetricsServiceRequest {
    type Response = ExportMetricsServiceResponse;
    const SIGNAL: Signal = Signal::Metrics;
    fn translate(self, opts: &TranslateOptions) -> Translated {
        translate::otlp_metrics(self, opts)
    }
    fn metadata(&self) -> Vec<(String, MetricMeta)> {
        metadata::from_otlp(self)
    }
    fn response(outcome: &Ingested) -> Self::Response {
        ExportMetricsServiceResponse {
            partial_success: rejected(outcome).map(|(n, m)| ExportMetricsPartialSuccess {
                rejected_data_points: n,
                error_message: m,
            }),
        }
    }
}

impl OtlpRequest for ExportLogsServiceRequest {
    type Response = ExportLogsServiceResponse;
    const SIGNAL: Signal = Signal::Logs;
    fn translate(self, _opts: &TranslateOptions) -> Translated {
        translate::otlp_logs(self)
    }
    fn response(outcome: &Ingested) -> Self::Response {
        ExportLogsServiceResponse {
            partial_success: rejected(outcome).map(|(n, m)| ExportLogsPartialSuccess {
                rejected_log_records: n,
                error_message: m,
            }),
        }
    }
}

impl OtlpRequest for ExportTraceServiceRequest {
    type Response = ExportTraceServiceResponse;
    const SIGNAL: Signal = Signal::Traces;
    fn translate(self, _opts: &TranslateOptions) -> Translated {
        translate::otlp_traces(self)
    }
    fn response(outcome: &Ingested) -> Self::Response {
        ExportTraceServiceResponse {
            partial_success: rejected(outcome).map(|(n, m)| ExportTracePartialSuccess {
                rejected_spans: n,
                error_message: m,
            }),
        }
    }
}
