//! The collector's YAML configuration (`--config FILE`).
//!
//! Data flow: [`Config::load`] reads and parses the file (unknown keys are errors),
//! CLI flags / environment variables override single fields, then [`Config::validate`]
//! returns every problem at once so `sightline-collector validate` and start-up report
//! them together. The sections map onto the running parts: `server` onto the three
//! listeners, `auth` onto tenant resolution, `limits` onto the receivers and the
//! store's series limit, `ingest` onto translation, `storage` onto
//! [`sightline_store::StoreConfig`], `query` onto the read APIs' limits
//! ([`QueryConfig::limits`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Top-level configuration. Every section and key is optional.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listen addresses and TLS.
    #[serde(default)]
    pub server: ServerConfig,
    /// Bearer-token authentication; off unless at least one token is configured.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Request size and cardinality limits.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// How incoming data is translated.
    #[serde(default)]
    pub ingest: IngestConfig,
    /// Where and how data is stored.
    #[serde(default)]
    pub storage: StorageConfig,
    /// Own metrics, local scrape targets and span metrics written into the store.
    #[serde(default)]
    pub self_monitoring: crate::self_monitoring::SelfMonitoringConfig,
    /// Limits of the read APIs (PromQL, series/labels, trace search).
    #[serde(default)]
    pub query: QueryConfig,
}

/// `server:` section.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// OTLP/gRPC listen address. Port 0 picks a free port (see `--listen-file`).
    #[serde(default = "default_grpc_addr")]
    pub grpc_addr: String,
    /// OTLP/HTTP listen address (`/v1/metrics`, `/v1/logs`, `/v1/traces`).
    #[serde(default = "default_otlp_http_addr")]
    pub otlp_http_addr: String,
    /// HTTP API listen address: Prometheus API, remote write (`/api/v1/write`),
    /// Loki and Tempo read APIs, `/metrics`, `/-/ready`, `/-/healthy`.
    #[serde(default = "default_http_addr")]
    pub http_addr: String,
    /// TLS for all three listeners; plain text when absent.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            grpc_addr: default_grpc_addr(),
            otlp_http_addr: default_otlp_http_addr(),
            http_addr: default_http_addr(),
            tls: None,
        }
    }
}

fn default_grpc_addr() -> String {
    "0.0.0.0:4317".into()
}
fn default_otlp_http_addr() -> String {
    "0.0.0.0:4318".into()
}
fn default_http_addr() -> String {
    "0.0.0.0:9090".into()
}

/// `server.tls:` PEM certificate chain and private key.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file with the server certificate followed by its chain.
    pub cert_file: PathBuf,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

/// `auth:` section. Authentication is on when any token is configured (inline or in
/// `tokens_file`); each request must then carry `Authorization: Bearer <token>` and
/// is stored under the token's tenant.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Inline tokens.
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    /// YAML file with a list of `{token, tenant}` entries, read at start-up, so the
    /// secrets can live outside the main config (e.g. a Kubernetes secret).
    #[serde(default)]
    pub tokens_file: Option<PathBuf>,
}

/// One bearer token and the tenant it writes to and reads from.
#[derive(Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    pub token: String,
    pub tenant: String,
}

impl std::fmt::Debug for TokenConfig {
    // never print secrets, not even in debug output
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenConfig")
            .field("token", &"<redacted>")
            .field("tenant", &self.tenant)
            .finish()
    }
}

/// `limits:` section.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest accepted request body in bytes, checked both on the wire and after
    /// decompression (gzip, zstd, snappy). Larger requests get 413 / RESOURCE_EXHAUSTED.
    #[serde(default = "default_max_request_bytes")]
    pub max_request_bytes: usize,
    /// Active series per tenant; samples of new series beyond it are rejected
    /// (`reason="series_limit"`).
    #[serde(default = "default_max_series_per_tenant")]
    pub max_series_per_tenant: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_request_bytes: default_max_request_bytes(),
            max_series_per_tenant: default_max_series_per_tenant(),
        }
    }
}

fn default_max_request_bytes() -> usize {
    4 * 1024 * 1024
}
fn default_max_series_per_tenant() -> usize {
    1_000_000
}

/// Policy for NaN / ±Inf sample values (`ingest.non_finite`).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum NonFinite {
    /// Reject the sample (`reason` reported by the translator).
    #[default]
    Reject,
    /// Store it as is.
    Accept,
}

/// `ingest:` section.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    /// `reject` (default) or `accept` NaN and infinite sample values.
    #[serde(default)]
    pub non_finite: NonFinite,
    /// OTLP resource attributes copied onto every series as labels (dots become
    /// underscores), in addition to `job`/`instance`. When absent, the translator's
    /// default list applies (`service.namespace`, `deployment.environment`,
    /// `host.name`, `k8s.namespace.name`, `k8s.pod.name`, ...); `[]` promotes none.
    #[serde(default)]
    pub promote_resource_attributes: Option<Vec<String>>,
}

/// `storage:` section.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// Data directory (`wal/`, `metrics/`, `logs/`, `traces/`, `index/`).
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// WAL segment size before rolling to a new file.
    #[serde(default = "default_wal_segment_bytes")]
    pub wal_segment_bytes: u64,
    /// Memtable size (all tenants) that triggers a flush to Parquet.
    #[serde(default = "default_memtable_flush_bytes")]
    pub memtable_flush_bytes: usize,
    /// Age of the oldest unflushed data that triggers a flush, e.g. `10m`, `30s`.
    #[serde(default = "default_flush_interval")]
    pub flush_interval: String,
    /// Keep at least this many bytes free on the data volume; writes fail with
    /// 503 / UNAVAILABLE below it.
    #[serde(default = "default_min_free_bytes")]
    pub min_free_bytes: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            data_dir: default_data_dir(),
            wal_segment_bytes: default_wal_segment_bytes(),
            memtable_flush_bytes: default_memtable_flush_bytes(),
            flush_interval: default_flush_interval(),
            min_free_bytes: default_min_free_bytes(),
        }
    }
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("./sightline-data")
}
fn default_wal_segment_bytes() -> u64 {
    64 * 1024 * 1024
}
fn default_memtable_flush_bytes() -> usize {
    256 * 1024 * 1024
}
fn default_flush_interval() -> String {
    "10m".into()
}
fn default_min_free_bytes() -> u64 {
    256 * 1024 * 1024
}

/// `query:` section: what one read request may cost. Hits are counted in
/// `sightline_collector_query_limit_hits_total{limit}`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct QueryConfig {
    /// Most samples a PromQL query may hold in memory at once (loaded plus
    /// computed), like Prometheus' `--query.max-samples`. Beyond it the query fails
    /// with 422 `execution` "query processing would load too many samples into
    /// memory in query execution".
    #[serde(default = "default_max_samples")]
    pub max_samples: usize,
    /// Longest a PromQL query may run (including the wait for a free slot), like
    /// `--query.timeout`; beyond it 503 `timeout`.
    #[serde(default = "default_query_timeout")]
    pub timeout: String,
    /// Most series one PromQL selector may match (422 `execution`); also the most
    /// series, label names or values `/api/v1/series`, `/labels`,
    /// `/label/<name>/values` return — more are cut off with a warning.
    #[serde(default = "default_query_max_series")]
    pub max_series: usize,
    /// PromQL queries evaluated at once; more wait for a slot (within `timeout`),
    /// like `--query.max-concurrency`.
    #[serde(default = "default_max_concurrency")]
    pub max_concurrency: usize,
    /// Most spans one trace search or tag lookup reads (newest first); a search
    /// over more returns what it found in the newest ones.
    #[serde(default = "default_max_search_spans")]
    pub max_search_spans: usize,
}

impl Default for QueryConfig {
    fn default() -> Self {
        QueryConfig {
            max_samples: default_max_samples(),
            timeout: default_query_timeout(),
            max_series: default_query_max_series(),
            max_concurrency: default_max_concurrency(),
            max_search_spans: default_max_search_spans(),
        }
    }
}

fn default_max_samples() -> usize {
    50_000_000
}
fn default_query_timeout() -> String {
    "2m".into()
}
fn default_query_max_series() -> usize {
    500_000
}
fn default_max_concurrency() -> usize {
    20
}
fn default_max_search_spans() -> usize {
    200_000
}

/// The `query:` section, parsed (see [`QueryConfig`]).
#[derive(Clone, Debug, PartialEq)]
pub struct QueryLimits {
    pub max_samples: usize,
    pub timeout: Duration,
    pub max_series: usize,
    pub max_concurrency: usize,
    pub max_search_spans: usize,
}

impl QueryConfig {
    /// The parsed limits. Call after [`Config::validate`] returned no errors.
    pub fn limits(&self) -> QueryLimits {
        QueryLimits {
            max_samples: self.max_samples,
            timeout: parse_duration(&self.timeout).unwrap_or(Duration::from_secs(120)),
            max_series: self.max_series,
            max_concurrency: self.max_concurrency,
            max_search_spans: self.max_search_spans,
        }
    }

    fn validate(&self, errors: &mut Vec<String>) {
        for (key, v) in [
            ("query.max_samples", self.max_samples),
            ("query.max_series", self.max_series),
            ("query.max_concurrency", self.max_concurrency),
            ("query.max_search_spans", self.max_search_spans),
        ] {
            if v == 0 {
                errors.push(format!("{key}: must be at least 1"));
            }
        }
        match parse_duration(&self.timeout) {
            Ok(d) if d < Duration::from_millis(1) => {
                errors.push("query.timeout: must be at least 1ms".into())
            }
            Ok(_) => {}
            Err(e) => errors.push(format!("query.timeout: {e}")),
        }
    }
}

/// Parses durations like `500ms`, `10s`, `5m`, `2h`, `1d` (one number, one unit).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .ok_or_else(|| format!("duration {s:?} has no unit (use ms, s, m, h or d)"))?;
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("duration {s:?} does not start with a number"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        _ => {
            return Err(format!(
                "duration {s:?} has unknown unit {unit:?} (use ms, s, m, h or d)"
            ))
        }
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("duration {s:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

impl Config {
    /// Reads and parses a YAML file (without validating it).
    pub fn load(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses YAML text; an empty document is the default configuration.
    pub fn parse(text: &str) -> Result<Config, String> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        serde_yaml::from_str(text).map_err(|e| e.to_string())
    }

    /// Every problem in the configuration, empty when it is usable.
    pub fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        for (key, addr) in [
            ("server.grpc_addr", &self.server.grpc_addr),
            ("server.otlp_http_addr", &self.server.otlp_http_addr),
            ("server.http_addr", &self.server.http_addr),
        ] {
            if addr.parse::<SocketAddr>().is_err() {
                errors.push(format!(
                    "{key}: {addr:?} is not an IP:port address (e.g. 0.0.0.0:4317)"
                ));
            }
        }
        let addrs = [
            &self.server.grpc_addr,
            &self.server.otlp_http_addr,
            &self.server.http_addr,
        ];
        for (i, a) in addrs.iter().enumerate() {
            for b in &addrs[i + 1..] {
                if a == b && !a.ends_with(":0") {
                    errors.push(format!("server: address {a} is used by two listeners"));
                }
            }
        }
        if let Some(tls) = &self.server.tls {
            for (key, path) in [
                ("server.tls.cert_file", &tls.cert_file),
                ("server.tls.key_file", &tls.key_file),
            ] {
                if !path.is_file() {
                    errors.push(format!(
                        "{key}: {} does not exist or is not a file",
                        path.display()
                    ));
                }
            }
        }
        match self.auth.all_tokens() {
            Ok(tokens) => {
                let mut seen: HashMap<&str, usize> = HashMap::new();
                for (i, t) in tokens.iter().enumerate() {
                    if t.token.trim().is_empty() {
                        errors.push(format!("auth.tokens[{i}]: token is empty"));
                    }
                    if !valid_tenant(&t.tenant) {
                        errors.push(format!(
                            "auth.tokens[{i}]: tenant {:?} must be 1-150 characters of [A-Za-z0-9_.-]",
                            t.tenant
                        ));
                    }
                    if let Some(first) = seen.insert(t.token.as_str(), i) {
                        errors.push(format!("auth.tokens[{i}]: same token as entry {first}"));
                    }
                }
            }
            Err(e) => errors.push(e),
        }
        if self.limits.max_request_bytes < 1024 {
            errors.push(format!(
                "limits.max_request_bytes: {} is too small (at least 1024)",
                self.limits.max_request_bytes
            ));
        }
        if self.limits.max_series_per_tenant == 0 {
            errors.push("limits.max_series_per_tenant: must be at least 1".into());
        }
        if self.storage.data_dir.as_os_str().is_empty() {
            errors.push("storage.data_dir: must not be empty".into());
        }
        if self.storage.wal_segment_bytes < 64 * 1024 {
            errors.push(format!(
                "storage.wal_segment_bytes: {} is too small (at least 65536)",
                self.storage.wal_segment_bytes
            ));
        }
        if self.storage.memtable_flush_bytes < 64 * 1024 {
            errors.push(format!(
                "storage.memtable_flush_bytes: {} is too small (at least 65536)",
                self.storage.memtable_flush_bytes
            ));
        }
        match parse_duration(&self.storage.flush_interval) {
            Ok(d) if d < Duration::from_secs(1) => {
                errors.push("storage.flush_interval: must be at least 1s".into())
            }
            Ok(_) => {}
            Err(e) => errors.push(format!("storage.flush_interval: {e}")),
        }
        errors.extend(self.self_monitoring.validate());
        self.query.validate(&mut errors);
        errors
    }

    /// The store's configuration. Call after [`Config::validate`] returned no errors.
    pub fn store_config(&self) -> sightline_store::StoreConfig {
        sightline_store::StoreConfig {
            data_dir: self.storage.data_dir.clone(),
            wal_segment_bytes: self.storage.wal_segment_bytes,
            memtable_flush_bytes: self.storage.memtable_flush_bytes,
            memtable_flush_interval: parse_duration(&self.storage.flush_interval)
                .unwrap_or(Duration::from_secs(600)),
            min_free_bytes: self.storage.min_free_bytes,
            max_series_per_tenant: self.limits.max_series_per_tenant,
        }
    }
}

impl AuthConfig {
    /// Inline tokens plus those in `tokens_file`.
    pub fn all_tokens(&self) -> Result<Vec<TokenConfig>, String> {
        let mut out = self.tokens.clone();
        if let Some(path) = &self.tokens_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("auth.tokens_file: cannot read {}: {e}", path.display()))?;
            let more: Vec<TokenConfig> = serde_yaml::from_str(&text).map_err(|e| {
                // serde_yaml errors quote positions, never the token values
                format!(
                    "auth.tokens_file: {} is not a list of {{token, tenant}}: {e}",
                    path.display()
                )
            })?;
            out.extend(more);
        }
        Ok(out)
    }
}

/// Tenant ids: what Cortex/Mimir accept, minus the characters that are awkward in paths.
pub fn valid_tenant(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 150
        && t != "."
        && t != ".."
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses_and_validates() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.yaml");
        let cfg = Config::load(&path).unwrap();
        assert_eq!(cfg.validate(), Vec::<String>::new());
        assert_eq!(cfg.server.grpc_addr, "0.0.0.0:4317");
        assert_eq!(cfg.limits.max_request_bytes, 4 * 1024 * 1024);
        assert_eq!(cfg.ingest.non_finite, NonFinite::Reject);
    }

    #[test]
    fn empty_config_is_defaults() {
        let cfg = Config::parse("").unwrap();
        assert_eq!(cfg, Config::default());
        assert!(cfg.validate().is_empty());
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = Config::parse("server:\n  grpc_adr: 1.2.3.4:1\n").unwrap_err();
        assert!(err.contains("grpc_adr"), "{err}");
        let err = Config::parse("srever: {}\n").unwrap_err();
        assert!(err.contains("srever"), "{err}");
    }

    #[test]
    fn validate_reports_all_errors_together() {
        let cfg = Config::parse(
            "server:\n  grpc_addr: nonsense\n  tls: {cert_file: /nonexistent/c.pem, key_file: /nonexistent/k.pem}\n\
             auth:\n  tokens:\n    - {token: abc, tenant: 'bad tenant'}\n    - {token: abc, tenant: ok}\n\
             limits: {max_request_bytes: 10, max_series_per_tenant: 0}\n\
             storage: {flush_interval: 10 parsecs}\n\
             query: {max_samples: 0, timeout: soon}\n",
        )
        .unwrap();
        let errs = cfg.validate();
        let joined = errs.join("\n");
        for needle in [
            "server.grpc_addr",
            "server.tls.cert_file",
            "server.tls.key_file",
            "auth.tokens[0]: tenant",
            "auth.tokens[1]: same token",
            "limits.max_request_bytes",
            "limits.max_series_per_tenant",
            "storage.flush_interval",
            "query.max_samples",
            "query.timeout",
        ] {
            assert!(joined.contains(needle), "missing {needle} in:\n{joined}");
        }
        assert!(
            !joined.contains("abc"),
            "token leaked into errors: {joined}"
        );
        assert_eq!(errs.len(), 10, "{joined}");
    }

    #[test]
    fn tokens_file_is_merged() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tokens.yaml");
        std::fs::write(&f, "- {token: t1, tenant: team-a}\n").unwrap();
        let cfg = Config::parse(&format!(
            "auth:\n  tokens: [{{token: t0, tenant: ops}}]\n  tokens_file: {}\n",
            f.display()
        ))
        .unwrap();
        let tokens = cfg.auth.all_tokens().unwrap();
        assert_eq!(tokens.len(), 2);
        assert_eq!(tokens[1].tenant, "team-a");
        assert!(cfg.validate().is_empty());
    }

    #[test]
    fn query_limits() {
        let cfg =
            Config::parse("query: {max_samples: 1000, timeout: 500ms, max_series: 7}\n").unwrap();
        assert!(cfg.validate().is_empty());
        let l = cfg.query.limits();
        assert_eq!(l.max_samples, 1000);
        assert_eq!(l.timeout, Duration::from_millis(500));
        assert_eq!(l.max_series, 7);
        assert_eq!(l.max_concurrency, 20);
        let d = QueryConfig::default().limits();
        assert_eq!(d.max_samples, 50_000_000);
        assert_eq!(d.timeout, Duration::from_secs(120));
        assert!(Config::parse("query: {max_sample: 1}\n").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("10y").is_err());
    }
}
