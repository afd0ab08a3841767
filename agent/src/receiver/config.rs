//! Configuration of the OTLP receiver: two listen addresses (top-level keys and flags,
//! like the agent's other listeners) and a `receiver:` section.
//!
//! ```yaml
//! otlp_grpc_addr: 127.0.0.1:4317   # --otlp-grpc-addr; "" disables; 0.0.0.0:4317 = host port
//! otlp_http_addr: 127.0.0.1:4318   # --otlp-http-addr; "" disables
//! receiver:
//!   max_request_bytes: 4194304     # per request, on the wire and decompressed
//!   queue_capacity: 64             # requests waiting to be forwarded; full => 429 / RESOURCE_EXHAUSTED
//! ```

use std::net::SocketAddr;

use serde::Deserialize;

/// Default OTLP/gRPC address (the OTLP standard port, loopback only).
pub const DEFAULT_GRPC_ADDR: &str = "127.0.0.1:4317";
/// Default OTLP/HTTP address.
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:4318";

/// The `receiver:` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverSection {
    /// Largest request accepted, in bytes, before and after decompression (default 4 MiB).
    pub max_request_bytes: Option<usize>,
    /// Requests accepted and waiting to be forwarded (default 64); when full, senders
    /// are told to retry later.
    pub queue_capacity: Option<usize>,
}

/// The checked receiver configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverConfig {
    /// `None` = disabled.
    pub grpc_addr: Option<String>,
    pub http_addr: Option<String>,
    /// The address was configured (a bind failure is then an error, not a warning).
    pub grpc_explicit: bool,
    pub http_explicit: bool,
    pub max_request_bytes: usize,
    pub queue_capacity: usize,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        Self {
            grpc_addr: Some(DEFAULT_GRPC_ADDR.into()),
            http_addr: Some(DEFAULT_HTTP_ADDR.into()),
            grpc_explicit: false,
            http_explicit: false,
            max_request_bytes: 4 << 20,
            queue_capacity: 64,
        }
    }
}

fn address(
    key: &str,
    configured: Option<String>,
    default: &str,
    errors: &mut Vec<String>,
) -> (Option<String>, bool) {
    match configured {
        None => (Some(default.to_string()), false),
        Some(a) if a.trim().is_empty() => (None, true),
        Some(a) => {
            if a.parse::<SocketAddr>().is_err() {
                errors.push(format!("{key}: {a:?} is not IP:PORT (\"\" disables)"));
            }
            (Some(a), true)
        }
    }
}

/// Merge flag/env (`grpc`, `http`, already preferred over the file) and the section;
/// problems are appended to `errors`.
pub fn resolve(
    grpc: Option<String>,
    http: Option<String>,
    section: &ReceiverSection,
    errors: &mut Vec<String>,
) -> ReceiverConfig {
    let d = ReceiverConfig::default();
    let (grpc_addr, grpc_explicit) = address("otlp_grpc_addr", grpc, DEFAULT_GRPC_ADDR, errors);
    let (http_addr, http_explicit) = address("otlp_http_addr", http, DEFAULT_HTTP_ADDR, errors);
    let max_request_bytes = section.max_request_bytes.unwrap_or(d.max_request_bytes);
    if max_request_bytes < 1024 {
        errors.push("receiver.max_request_bytes: must be at least 1024".into());
    }
    let queue_capacity = section.queue_capacity.unwrap_or(d.queue_capacity);
    if queue_capacity == 0 {
        errors.push("receiver.queue_capacity: must be at least 1".into());
    }
    ReceiverConfig {
        grpc_addr,
        http_addr,
        grpc_explicit,
        http_explicit,
        max_request_bytes,
        queue_capacity,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_disable_and_errors() {
        let mut errors = Vec::new();
        let c = resolve(None, None, &ReceiverSection::default(), &mut errors);
        assert_eq!(c, ReceiverConfig::default());
        let c = resolve(
            Some(String::new()),
            Some("0.0.0.0:14318".into()),
            &ReceiverSection {
                max_request_bytes: Some(1 << 20),
                queue_capacity: Some(3),
            },
            &mut errors,
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(c.grpc_addr, None);
        assert_eq!(c.http_addr.as_deref(), Some("0.0.0.0:14318"));
        assert!(c.http_explicit);
        assert_eq!((c.max_request_bytes, c.queue_capacity), (1 << 20, 3));
        resolve(
            Some("localhost".into()),
            None,
            &ReceiverSection {
                max_request_bytes: Some(1),
                queue_capacity: Some(0),
            },
            &mut errors,
        );
        let all = errors.join("\n");
        for needle in [
            "otlp_grpc_addr",
            "receiver.max_request_bytes",
            "receiver.queue_capacity",
        ] {
            assert!(all.contains(needle), "{needle} in {all}");
        }
    }
}
