//! Shipping metrics to the collector over OTLP/gRPC.
//!
//! [`Exporter::export`] sends one [`Batch`] with the configured compression, bearer token
//! (`authorization: Bearer ...`) and tenant (`x-scope-orgid`), and retries per
//! [`retry`]: retryable statuses wait (computed backoff or the server's `RetryInfo`) on the
//! injected [`Clock`] until `max_elapsed` or the shutdown deadline; permanent statuses drop
//! the batch at once. Compression is negotiated the gRPC way: a server that cannot decode
//! zstd answers `UNIMPLEMENTED` with `grpc-accept-encoding`, and the exporter steps down
//! to gzip or none (logged once, counted). Every attempt and every dropped point is counted in [`Telemetry`];
//! each distinct permanent status code and the first partial success are logged at warn,
//! repeats at debug. Several endpoints fail over to each other per [`endpoints`].

pub mod batch;
pub mod endpoints;
pub mod queue;
pub mod retry;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sightline_proto::otlp::collector::logs::v1::logs_service_client::LogsServiceClient;
use sightline_proto::otlp::collector::logs::v1::ExportLogsServiceRequest;
use sightline_proto::otlp::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use sightline_proto::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use sightline_proto::otlp::collector::trace::v1::trace_service_client::TraceServiceClient;
use sightline_proto::otlp::collector::trace::v1::ExportTraceServiceRequest;
use tokio::sync::watch;
use tonic::codec::CompressionEncoding;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::clock::Clock;
use crate::telemetry::{outcome, reason, Telemetry};
use crate::{Error, Result};
use endpoints::{AfterFailure, Endpoints};
use queue::Batch;
use retry::{Backoff, Disposition, RetryConfig};

/// Payload compression of export requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    #[default]
    Zstd,
    Gzip,
    None,
}

impl Compression {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "zstd" => Some(Self::Zstd),
            "gzip" => Some(Self::Gzip),
            "none" => Some(Self::None),
            _ => None,
        }
    }

    fn encoding(self) -> Option<CompressionEncoding> {
        match self {
            Self::Zstd => Some(CompressionEncoding::Zstd),
            Self::Gzip => Some(CompressionEncoding::Gzip),
            Self::None => None,
        }
    }
}

fn encoding_name(e: CompressionEncoding) -> &'static str {
    match e {
        CompressionEncoding::Gzip => "gzip",
        CompressionEncoding::Zstd => "zstd",
        _ => "other",
    }
}

/// Where and how to export.
#[derive(Debug, Clone)]
pub struct ExporterConfig {
    /// `http://host:port` or `https://host:port`; several as a comma-separated list in
    /// preference order (failover, see [`endpoints`]).
    pub endpoint: String,
    /// With several endpoints: how long a standby is used before the primary is tried
    /// again ([`endpoints::DEFAULT_PROBE_INTERVAL`]).
    pub probe_interval: Duration,
    pub compression: Compression,
    /// PEM CA bundle to verify the collector's certificate; `https` without it uses the
    /// system bundle (`/etc/ssl/certs/ca-certificates.crt` and friends).
    pub tls_ca: Option<PathBuf>,
    pub token: Option<String>,
    pub tenant: Option<String>,
    /// Deadline of one export attempt.
    pub timeout: Duration,
    pub retry: RetryConfig,
}

/// Well-known locations of the system CA bundle.
pub const SYSTEM_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// How one batch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportOutcome {
    /// Accepted; `rejected` points were refused through an OTLP partial success.
    Sent { retries: u32, rejected: u64 },
    /// Refused with a permanent status.
    Permanent { code: tonic::Code, retries: u32 },
    /// Still failing when `max_elapsed` or the shutdown deadline was reached.
    GaveUp { code: tonic::Code, retries: u32 },
}

/// What a successful Export call reported: items the collector rejected (partial
/// success) and its message.
#[derive(Debug, Default)]
pub struct Accepted {
    pub rejected: u64,
    pub message: String,
    pub partial: bool,
}

impl Accepted {
    /// From an OTLP `partial_success` (same shape for every signal): a partial success
    /// is any rejected item or a non-empty message.
    fn from_partial_success(rejected: i64, message: String) -> Self {
        Accepted {
            rejected: u64::try_from(rejected).unwrap_or(0),
            partial: rejected != 0 || !message.is_empty(),
            message,
        }
    }
}

/// One OTLP signal's `Export` RPC. Metrics and logs share the exporter's retry,
/// compression negotiation, TLS and headers through this seam; each signal counts its
/// own exported and dropped items.
pub trait SignalRpc {
    type Request: Clone + Send + Sync + 'static;
    /// Whether a give-up after `max_elapsed` keeps the data (it stays in the disk buffer
    /// and is sent again) rather than dropping it; only the log wording depends on it.
    const GIVE_UP_KEEPS_DATA: bool = false;
    /// Send one request on `channel` with the given request compression.
    fn call(
        channel: Channel,
        compression: Option<CompressionEncoding>,
        request: tonic::Request<Self::Request>,
    ) -> impl std::future::Future<Output = Result<Accepted, tonic::Status>> + Send;
    /// Count `n` items accepted by the collector.
    fn count_exported(telemetry: &Telemetry, n: u64);
    /// Count `n` items dropped for `reason`.
    fn count_dropped(telemetry: &Telemetry, reason: &'static str, n: u64);
}

/// `MetricsService/Export`.
#[derive(Debug)]
pub struct MetricsRpc;

impl SignalRpc for MetricsRpc {
    type Request = ExportMetricsServiceRequest;
    async fn call(
        channel: Channel,
        compression: Option<CompressionEncoding>,
        request: tonic::Request<Self::Request>,
    ) -> Result<Accepted, tonic::Status> {
        let mut client = MetricsServiceClient::new(channel)
            .max_encoding_message_size(64 << 20)
            .accept_compressed(CompressionEncoding::Zstd)
            .accept_compressed(CompressionEncoding::Gzip);
        if let Some(enc) = compression {
            client = client.send_compressed(enc);
        }
        let partial = client.export(request).await?.into_inner().partial_success;
        Ok(partial
            .map(|p| Accepted::from_partial_success(p.rejected_data_points, p.error_message))
            .unwrap_or_default())
    }
    fn count_exported(telemetry: &Telemetry, n: u64) {
        telemetry.exported_points.inc_by(n);
    }
    fn count_dropped(telemetry: &Telemetry, reason: &'static str, n: u64) {
        telemetry.dropped(reason, n);
    }
}

/// `TraceService/Export` (spans from applications, via the agent's OTLP receiver).
#[derive(Debug)]
pub struct TracesRpc;

impl SignalRpc for TracesRpc {
    type Request = ExportTraceServiceRequest;
    async fn call(
        channel: Channel,
        compression: Option<CompressionEncoding>,
        request: tonic::Request<Self::Request>,
    ) -> Result<Accepted, tonic::Status> {
        let mut client = TraceServiceClient::new(channel)
            .max_encoding_message_size(64 << 20)
            .accept_compressed(CompressionEncoding::Zstd)
            .accept_compressed(CompressionEncoding::Gzip);
        if let Some(enc) = compression {
            client = client.send_compressed(enc);
        }
        let partial = client.export(request).await?.into_inner().partial_success;
        Ok(partial
            .map(|p| Accepted::from_partial_success(p.rejected_spans, p.error_message))
            .unwrap_or_default())
    }
    fn count_exported(telemetry: &Telemetry, n: u64) {
        telemetry.receiver.forwarded("traces", n);
    }
    fn count_dropped(telemetry: &Telemetry, reason: &'static str, n: u64) {
        telemetry.receiver.dropped("traces", reason, n);
    }
}

/// `LogsService/Export`.
#[derive(Debug)]
pub struct LogsRpc;

impl SignalRpc for LogsRpc {
    type Request = ExportLogsServiceRequest;
    async fn call(
        channel: Channel,
        compression: Option<CompressionEncoding>,
        request: tonic::Request<Self::Request>,
    ) -> Result<Accepted, tonic::Status> {
        let mut client = LogsServiceClient::new(channel)
            .max_encoding_message_size(64 << 20)
            .accept_compressed(CompressionEncoding::Zstd)
            .accept_compressed(CompressionEncoding::Gzip);
        if let Some(enc) = compression {
            client = client.send_compressed(enc);
        }
        let partial = client.export(request).await?.into_inner().partial_success;
        Ok(partial
            .map(|p| Accepted::from_partial_success(p.rejected_log_records, p.error_message))
            .unwrap_or_default())
    }
    fn count_exported(telemetry: &Telemetry, n: u64) {
        telemetry.logs.records_exported.inc_by(n);
    }
    fn count_dropped(telemetry: &Telemetry, reason: &'static str, n: u64) {
        // The logs shipper never gives up on retryable errors (it tries again and the file
        // offset stays put), so only permanent refusals and rejections lose records.
        if reason != reason::RETRIES_EXHAUSTED {
            telemetry.logs.dropped(reason, n);
        }
    }
}

/// The OTLP/gRPC exporter (metrics via [`Exporter::export`], logs via
/// [`Exporter::export_logs`]).
pub struct Exporter {
    /// One channel per collector endpoint, shared by every signal's client;
    /// [`Self::compression`] is applied per call.
    endpoints: Endpoints,
    /// Current request compression; lowered when the server does not support it.
    compression: Compression,
    authorization: Option<AsciiMetadataValue>,
    tenant: Option<AsciiMetadataValue>,
    timeout: Duration,
    retry: RetryConfig,
    clock: Arc<dyn Clock>,
    telemetry: Arc<Telemetry>,
    /// Set to the flush deadline when shutting down.
    deadline: watch::Receiver<Option<SystemTime>>,
    logged_codes: HashSet<tonic::Code>,
    logged_partial: bool,
    /// A give-up was logged at warn; reset by the next successful export.
    outage_logged: bool,
    seed: u64,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter")
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// Validate a header value (token, tenant) without building the exporter.
pub fn header_value(name: &str, value: &str) -> Result<AsciiMetadataValue, String> {
    MetadataValue::try_from(value)
        .map_err(|_| format!("{name}: not a valid header value (printable ASCII only)"))
}

fn channel(cfg: &ExporterConfig, url: &str) -> Result<Channel> {
    let mut endpoint = Endpoint::from_shared(url.to_string())
        .map_err(|e| Error::Transport(format!("endpoint {url:?}: {e}")))?
        .connect_timeout(Duration::from_secs(10))
        // Client-side bound on each attempt (grpc-timeout alone relies on the server).
        .timeout(cfg.timeout)
        .tcp_keepalive(Some(Duration::from_secs(60)))
        .user_agent(concat!("sightline-agent/", env!("CARGO_PKG_VERSION")))
        .map_err(|e| Error::Transport(e.to_string()))?;
    if url.starts_with("https://") {
        let ca_path = match &cfg.tls_ca {
            Some(p) => p.clone(),
            None => SYSTEM_CA_BUNDLES
                .iter()
                .map(PathBuf::from)
                .find(|p| p.is_file())
                .ok_or_else(|| {
                    Error::Transport("https endpoint: no --tls-ca and no system CA bundle".into())
                })?,
        };
        let pem = std::fs::read(&ca_path).map_err(|e| Error::io(&ca_path, e))?;
        let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem));
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|e| Error::Transport(format!("TLS setup: {e}")))?;
    }
    Ok(endpoint.connect_lazy())
}

impl Exporter {
    /// Build the exporter; the connection is made lazily on the first export.
    pub fn new(
        cfg: &ExporterConfig,
        clock: Arc<dyn Clock>,
        telemetry: Arc<Telemetry>,
        deadline: watch::Receiver<Option<SystemTime>>,
    ) -> Result<Self> {
        let urls = endpoints::split_list(&cfg.endpoint);
        if urls.is_empty() {
            return Err(Error::Config(vec![
                "endpoint: no collector endpoint given".into()
            ]));
        }
        let channels = urls
            .iter()
            .map(|url| channel(cfg, url))
            .collect::<Result<Vec<_>>>()?;
        let endpoints = Endpoints::new(urls, channels, cfg.probe_interval);
        telemetry.export_active_endpoint.set(0);
        let mut problems = Vec::new();
        let authorization = cfg
            .token
            .as_deref()
            .map(|t| header_value("token", &format!("Bearer {t}")))
            .transpose()
            .unwrap_or_else(|e| {
                problems.push(e);
                None
            });
        let tenant = cfg
            .tenant
            .as_deref()
            .map(|t| header_value("tenant", t))
            .transpose()
            .unwrap_or_else(|e| {
                problems.push(e);
                None
            });
        if !problems.is_empty() {
            return Err(Error::Config(problems));
        }
        Ok(Self {
            endpoints,
            compression: cfg.compression,
            authorization,
            tenant,
            timeout: cfg.timeout,
            retry: cfg.retry.clone(),
            clock,
            telemetry,
            deadline,
            logged_codes: HashSet::new(),
            logged_partial: false,
            outage_logged: false,
            seed: rand::random(),
        })
    }

    /// gRPC compression negotiation: a server that cannot decode the request answers
    /// `UNIMPLEMENTED` with the encodings it accepts in `grpc-accept-encoding`. Pick the
    /// best of those (zstd > gzip > none) below the current one.
    fn compression_fallback(&self, status: &tonic::Status) -> Option<Compression> {
        if status.code() != tonic::Code::Unimplemented || self.compression == Compression::None {
            return None;
        }
        let accepted = status
            .metadata()
            .get("grpc-accept-encoding")?
            .to_str()
            .ok()?;
        let accepted: Vec<&str> = accepted.split(',').map(str::trim).collect();
        let lower: &[Compression] = match self.compression {
            Compression::Zstd => &[Compression::Gzip],
            _ => &[],
        };
        lower
            .iter()
            .copied()
            .find(|c| {
                c.encoding()
                    .is_some_and(|e| accepted.contains(&encoding_name(e)))
            })
            .or(Some(Compression::None))
    }

    /// The compression currently used for requests.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    fn request<R>(&self, request: &R) -> tonic::Request<R>
    where
        R: Clone,
    {
        let mut req = tonic::Request::new(request.clone());
        req.set_timeout(self.timeout);
        let md = req.metadata_mut();
        if let Some(v) = &self.authorization {
            md.insert("authorization", v.clone());
        }
        if let Some(v) = &self.tenant {
            md.insert("x-scope-orgid", v.clone());
        }
        req
    }

    /// Record a retryable failure on `endpoint`; switches to the next endpoint when the
    /// failure is one another collector could avoid.
    fn fail_over(&mut self, endpoint: usize, status: &tonic::Status) -> AfterFailure {
        let failover = endpoints::is_failover(status);
        let now = self.clock.now();
        let (after, switched) = self
            .endpoints
            .selector_mut()
            .failed(endpoint, failover, now);
        if switched {
            let active = self.endpoints.active();
            self.telemetry.export_failovers.inc();
            self.telemetry.export_active_endpoint.set(active as i64);
            tracing::warn!(
                from = self.endpoints.url(endpoint),
                to = self.endpoints.url(active),
                code = ?status.code(),
                message = status.message(),
                "collector endpoint failing, switched to the next one"
            );
        }
        after
    }

    /// Index (in the configured list) of the endpoint exports currently go to.
    pub fn active_endpoint(&self) -> usize {
        self.endpoints.active()
    }

    /// Export one request of spans (from the OTLP receiver) holding `spans` spans.
    pub async fn export_traces(
        &mut self,
        request: &ExportTraceServiceRequest,
        spans: usize,
    ) -> ExportOutcome {
        self.export_rpc::<TracesRpc>(request, spans).await
    }

    /// Export one metrics batch, retrying as the policy allows. Never fails: the outcome
    /// says what happened and the counters record it.
    pub async fn export(&mut self, batch: &Batch) -> ExportOutcome {
        self.export_rpc::<MetricsRpc>(&batch.request, batch.points)
            .await
    }

    /// Export one logs request holding `records` log records (same policy as metrics).
    pub async fn export_logs(
        &mut self,
        request: &ExportLogsServiceRequest,
        records: usize,
    ) -> ExportOutcome {
        self.export_rpc::<LogsRpc>(request, records).await
    }

    /// Export one request of signal `S` carrying `items` items, retrying as the policy allows.
    pub async fn export_rpc<S: SignalRpc>(
        &mut self,
        request: &S::Request,
        items: usize,
    ) -> ExportOutcome {
        let started = self.clock.now();
        self.seed = self.seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut backoff = Backoff::new(self.retry.clone(), self.seed);
        let mut retries = 0u32;
        loop {
            let (endpoint, channel) = self.endpoints.pick(self.clock.now());
            let result = S::call(channel, self.compression.encoding(), self.request(request)).await;
            let status = match result {
                Ok(accepted) => {
                    if self.endpoints.selector_mut().succeeded(endpoint) {
                        self.telemetry.export_active_endpoint.set(endpoint as i64);
                        tracing::info!(
                            endpoint = self.endpoints.url(endpoint),
                            "exporting to the primary collector endpoint again"
                        );
                    }
                    if self.outage_logged {
                        self.outage_logged = false;
                        tracing::info!(retries, "export succeeded again");
                    }
                    let rejected = accepted.rejected;
                    if accepted.partial {
                        self.telemetry.export_request(outcome::PARTIAL_SUCCESS);
                        self.telemetry.export_partial_successes.inc();
                        S::count_dropped(&self.telemetry, reason::REJECTED, rejected);
                        let message = accepted.message;
                        if self.logged_partial {
                            tracing::debug!(rejected, %message, "export partially rejected");
                        } else {
                            self.logged_partial = true;
                            tracing::warn!(rejected, %message, "collector rejected part of an export (partial success); further ones logged at debug");
                        }
                    } else {
                        self.telemetry.export_request(outcome::SUCCESS);
                    }
                    let exported = (items as u64).saturating_sub(rejected);
                    S::count_exported(&self.telemetry, exported);
                    return ExportOutcome::Sent { retries, rejected };
                }
                Err(status) => status,
            };
            let code = status.code();
            if let Some(fallback) = self.compression_fallback(&status) {
                tracing::warn!(from = ?self.compression, to = ?fallback, "collector does not accept this compression, switching");
                self.compression = fallback;
                self.telemetry
                    .export_request(outcome::COMPRESSION_UNSUPPORTED);
                continue;
            }
            let server_delay = match retry::classify(&status) {
                Disposition::Permanent => {
                    self.telemetry.export_request(outcome::PERMANENT_ERROR);
                    S::count_dropped(&self.telemetry, reason::PERMANENT_ERROR, items as u64);
                    if self.logged_codes.insert(code) {
                        tracing::warn!(?code, message = status.message(), points = items, "export refused with a permanent error, batch dropped; further ones with this code logged at debug");
                    } else {
                        tracing::debug!(?code, message = status.message(), "export refused");
                    }
                    return ExportOutcome::Permanent { code, retries };
                }
                Disposition::Retryable { server_delay } => server_delay,
            };
            self.telemetry.export_request(outcome::RETRYABLE_ERROR);
            if self.fail_over(endpoint, &status) == AfterFailure::TryNext {
                retries += 1;
                self.telemetry.export_retries.inc();
                continue;
            }
            let delay = server_delay.unwrap_or_else(|| backoff.next_delay());
            let now = self.clock.now();
            let elapsed = now.duration_since(started).unwrap_or_default();
            let past_budget = elapsed + delay > self.retry.max_elapsed;
            // Marks the current value seen, so `changed()` below fires only on a new one.
            let past_deadline =
                (*self.deadline.borrow_and_update()).is_some_and(|d| now + delay > d);
            if past_budget || past_deadline {
                S::count_dropped(&self.telemetry, reason::RETRIES_EXHAUSTED, items as u64);
                if S::GIVE_UP_KEEPS_DATA {
                    if !self.outage_logged {
                        self.outage_logged = true;
                        tracing::warn!(?code, message = status.message(), retries, ?elapsed, points = items, "export still failing; the batch stays in the disk buffer and is retried");
                    }
                } else if self.outage_logged {
                    tracing::debug!(
                        ?code,
                        message = status.message(),
                        retries,
                        ?elapsed,
                        points = items,
                        "export still failing, batch dropped"
                    );
                } else {
                    self.outage_logged = true;
                    tracing::warn!(?code, message = status.message(), retries, ?elapsed, points = items, "export still failing, batch dropped; further drops logged at debug until an export succeeds");
                }
                return ExportOutcome::GaveUp { code, retries };
            }
            tracing::debug!(
                ?code,
                message = status.message(),
                ?delay,
                "export failed, retrying"
            );
            retries += 1;
            self.telemetry.export_retries.inc();
            tokio::select! {
                _ = self.clock.sleep(delay) => {}
                // A shutdown mid-wait re-checks the deadline at once.
                Ok(()) = self.deadline.changed() => {}
            }
        }
    }
}
