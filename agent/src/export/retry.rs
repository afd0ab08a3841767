//! Which export failures to retry and how long to wait.
//!
//! Classification follows the OTLP/gRPC specification ("Failures" section): `CANCELLED`,
//! `DEADLINE_EXCEEDED`, `ABORTED`, `OUT_OF_RANGE`, `UNAVAILABLE` and `DATA_LOSS` are
//! retryable; `RESOURCE_EXHAUSTED` only when the server attached a `google.rpc.RetryInfo`
//! (it signals recoverable throttling); everything else (`INVALID_ARGUMENT`,
//! `UNAUTHENTICATED`, `PERMISSION_DENIED`, `UNIMPLEMENTED`, `INTERNAL`, ...) is permanent.
//! A `RetryInfo.retry_delay` from the server replaces the computed backoff.
//! The computed backoff is exponential with full jitter: attempt `n` waits a uniformly
//! random time in `[0, min(max_backoff, initial_backoff * 2^n)]`.

use std::time::Duration;

use prost::Message;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tonic::Code;

/// Retry policy for exports.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryConfig {
    /// Ceiling of the first wait.
    pub initial_backoff: Duration,
    /// Largest ceiling of any wait.
    pub max_backoff: Duration,
    /// Give up on a batch after retrying this long (it is then dropped and counted).
    pub max_elapsed: Duration,
    /// Full jitter (default) or the plain exponential ceiling (deterministic tests).
    pub jitter: Jitter,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            max_elapsed: Duration::from_secs(300),
            jitter: Jitter::Full,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// Uniform in `[0, ceiling]` (AWS "full jitter"): spreads agents that failed together.
    Full,
    /// Exactly the ceiling.
    None,
}

/// What to do after a failed export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Try again, after the server's requested delay if it gave one.
    Retryable { server_delay: Option<Duration> },
    /// Do not try again; the data is dropped.
    Permanent,
}

/// Classify a gRPC status per the OTLP specification. A status the client made up from
/// a transport failure (it carries the underlying error as its `source`, e.g. tonic's
/// `Unknown: transport error` when the connection drops mid-request, or `Internal` from an
/// HTTP/2 reset) never came from the server: the request may not have been processed,
/// so it is retryable like `UNAVAILABLE`.
pub fn classify(status: &tonic::Status) -> Disposition {
    let server_delay = retry_delay(status.details());
    let local = std::error::Error::source(status).is_some();
    match status.code() {
        Code::Unknown | Code::Internal if local => Disposition::Retryable { server_delay },
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss => Disposition::Retryable { server_delay },
        Code::ResourceExhausted if server_delay.is_some() => {
            Disposition::Retryable { server_delay }
        }
        _ => Disposition::Permanent,
    }
}

/// Exponential backoff state for one batch.
#[derive(Debug)]
pub struct Backoff {
    config: RetryConfig,
    attempt: u32,
    rng: StdRng,
}

impl Backoff {
    pub fn new(config: RetryConfig, seed: u64) -> Self {
        Self {
            config,
            attempt: 0,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// The ceiling for the next wait, before jitter.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        self.config
            .initial_backoff
            .saturating_mul(factor)
            .min(self.config.max_backoff)
    }

    /// The next wait; advances the attempt counter.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        match self.config.jitter {
            Jitter::None => ceiling,
            Jitter::Full => {
                let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
                Duration::from_nanos(self.rng.random_range(0..=nanos))
            }
        }
    }
}

// google.rpc.Status / google.protobuf.Any / google.rpc.RetryInfo, decoded from the
// `grpc-status-details-bin` trailer. Only the fields needed to read a retry delay.
#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<ProtoAny>,
}

#[derive(Clone, PartialEq, Message)]
struct ProtoAny {
    #[prost(string, tag = "1")]
    type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    retry_delay: Option<ProtoDuration>,
}

#[derive(Clone, PartialEq, Message)]
struct ProtoDuration {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

const RETRY_INFO_TYPE: &str = "type.googleapis.com/google.rpc.RetryInfo";

/// The `RetryInfo.retry_delay` in encoded `google.rpc.Status` details, if any.
pub fn retry_delay(details: &[u8]) -> Option<Duration> {
    if details.is_empty() {
        return None;
    }
    let status = RpcStatus::decode(details).ok()?;
    let any = status
        .details
        .iter()
        .find(|a| a.type_url == RETRY_INFO_TYPE)?;
    let delay = RetryInfo::decode(any.value.as_slice()).ok()?.retry_delay?;
    let secs = u64::try_from(delay.seconds).ok()?;
    let nanos = u32::try_from(delay.nanos).ok()?;
    Some(Duration::new(secs, nanos.min(999_999_999)))
}

/// Encoded `google.rpc.Status` details carrying a `RetryInfo` — what a server (or a test)
/// attaches with `tonic::Status::with_details` to ask for a retry after `delay`.
pub fn retry_info_details(code: Code, message: &str, delay: Duration) -> Vec<u8> {
    let info = RetryInfo {
        retry_delay: Some(ProtoDuration {
            seconds: i64::try_from(delay.as_secs()).unwrap_or(i64::MAX),
            nanos: i32::try_from(delay.subsec_nanos()).unwrap_or(0),
        }),
    };
    RpcStatus {
        code: code as i32,
        message: message.to_string(),
        details: vec![ProtoAny {
            type_url: RETRY_INFO_TYPE.to_string(),
            value: info.encode_to_vec(),
        }],
    }
    .encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: Code) -> tonic::Status {
        tonic::Status::new(code, "x")
    }

    #[test]
    fn classification_follows_the_otlp_spec() {
        for code in [
            Code::Cancelled,
            Code::DeadlineExceeded,
            Code::Aborted,
            Code::OutOfRange,
            Code::Unavailable,
            Code::DataLoss,
        ] {
            assert_eq!(
                classify(&status(code)),
                Disposition::Retryable { server_delay: None },
                "{code:?}"
            );
        }
        for code in [
            Code::Unknown,
            Code::InvalidArgument,
            Code::NotFound,
            Code::AlreadyExists,
            Code::PermissionDenied,
            Code::Unauthenticated,
            Code::FailedPrecondition,
            Code::Unimplemented,
            Code::Internal,
            Code::ResourceExhausted,
        ] {
            assert_eq!(classify(&status(code)), Disposition::Permanent, "{code:?}");
        }
    }

    #[test]
    fn transport_failures_made_into_statuses_by_the_client_are_retryable() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection reset");
        let local = tonic::Status::from_error(Box::new(io));
        assert_eq!(local.code(), Code::Unknown);
        assert_eq!(
            classify(&local),
            Disposition::Retryable { server_delay: None }
        );
        // the same code sent by a server stays permanent
        assert_eq!(
            classify(&tonic::Status::unknown("transport error")),
            Disposition::Permanent
        );
    }

    #[test]
    fn resource_exhausted_with_retry_info_is_retryable_with_server_delay() {
        let details = retry_info_details(
            Code::ResourceExhausted,
            "slow down",
            Duration::from_millis(1_500),
        );
        let s = tonic::Status::with_details(Code::ResourceExhausted, "slow down", details.into());
        assert_eq!(
            classify(&s),
            Disposition::Retryable {
                server_delay: Some(Duration::from_millis(1_500))
            }
        );
        assert_eq!(retry_delay(b"\xff\xff garbage"), None);
    }

    #[test]
    fn ceilings_double_up_to_the_max() {
        let cfg = RetryConfig {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
            max_elapsed: Duration::from_secs(10),
            jitter: Jitter::None,
        };
        let mut b = Backoff::new(cfg, 1);
        let delays: Vec<_> = (0..5).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 500, 500]);
        // No overflow after many attempts.
        for _ in 0..100 {
            assert_eq!(b.next_delay(), Duration::from_millis(500));
        }
    }

    #[test]
    fn full_jitter_stays_under_the_ceiling_and_varies() {
        let cfg = RetryConfig {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
            ..RetryConfig::default()
        };
        let mut b = Backoff::new(cfg, 42);
        let mut seen = std::collections::HashSet::new();
        for n in 0..6u32 {
            let ceiling = Duration::from_millis(100) * 2u32.pow(n);
            assert_eq!(b.ceiling(), ceiling);
            let d = b.next_delay();
            assert!(d <= ceiling, "attempt {n}: {d:?} > {ceiling:?}");
            seen.insert(d);
        }
        assert!(seen.len() > 1, "jitter must vary: {seen:?}");
    }
}
