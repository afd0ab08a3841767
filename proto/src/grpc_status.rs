//! Normalising the statuses tonic answers before a handler runs, for every OTLP/gRPC
//! server (collector and agent).
//!
//! tonic decodes and decompresses a request before the service sees it, and reports
//! failures with codes that mislead an OTLP client: a malformed protobuf body comes back
//! INTERNAL (a client would retry it forever), an oversize one OUT_OF_RANGE.
//! [`StatusLayer`] wraps the server, reads the trailers-only `grpc-status` of each
//! response, rewrites it (malformed → INVALID_ARGUMENT, too large → RESOURCE_EXHAUSTED)
//! and hands every answer to a callback with its rejection reason (`malformed`,
//! `too_large`, `unsupported_encoding`), so the server counts them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http::HeaderValue;
use tonic::Code;

/// One answer: its final code, the rejection reason when tonic refused the request
/// before the handler ran, the (decoded) message, and the seconds it took.
#[derive(Debug, Clone)]
pub struct Answer<'a> {
    /// Request path (`/opentelemetry.proto.collector.metrics.v1.MetricsService/Export`).
    pub path: &'a str,
    pub code: Code,
    pub reason: Option<&'static str>,
    pub message: &'a str,
    pub seconds: f64,
}

/// Called once per gRPC answer.
pub type Observer = Arc<dyn Fn(&Answer<'_>) + Send + Sync>;

/// Tower layer around a tonic server; see the module docs.
#[derive(Clone)]
pub struct StatusLayer {
    observer: Observer,
}

impl StatusLayer {
    pub fn new(observer: Observer) -> Self {
        Self { observer }
    }
}

impl std::fmt::Debug for StatusLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusLayer").finish_non_exhaustive()
    }
}

impl<S> tower::Layer<S> for StatusLayer {
    type Service = StatusService<S>;
    fn layer(&self, inner: S) -> StatusService<S> {
        StatusService {
            inner,
            observer: self.observer.clone(),
        }
    }
}

/// The service [`StatusLayer`] produces.
#[derive(Clone)]
pub struct StatusService<S> {
    inner: S,
    observer: Observer,
}

impl<S, ReqB, ResB> tower::Service<http::Request<ReqB>> for StatusService<S>
where
    S: tower::Service<http::Request<ReqB>, Response = http::Response<ResB>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<ResB>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqB>) -> Self::Future {
        let start = Instant::now();
        let observer = self.observer.clone();
        let path = req.uri().path().to_string();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let mut resp = fut.await?;
            let (code, reason, message) = normalise(resp.headers_mut());
            observer(&Answer {
                path: &path,
                code,
                reason,
                message: &message,
                seconds: start.elapsed().as_secs_f64(),
            });
            Ok(resp)
        })
    }
}

/// Reads (and where needed rewrites) the trailers-only `grpc-status` of a response;
/// a response without one carries its status in the trailers, which only a successful
/// handler produces. Returns the final code, the rejection reason of a request tonic
/// refused, and the decoded `grpc-message`.
pub fn normalise(headers: &mut http::HeaderMap) -> (Code, Option<&'static str>, String) {
    let Some(code) = headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse::<i32>().ok())
        .map(Code::from)
    else {
        return (Code::Ok, None, String::new());
    };
    let message = headers
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .map(percent_decode)
        .unwrap_or_default();
    let (new_code, reason) = match code {
        Code::OutOfRange if message.contains("message length too large") => {
            (Code::ResourceExhausted, Some("too_large"))
        }
        Code::ResourceExhausted if message.starts_with("Error decompressing") => {
            (code, Some("too_large"))
        }
        Code::Internal
            if message.starts_with("failed to decode Protobuf message")
                || message.starts_with("Error decompressing")
                || message.starts_with("protocol error") =>
        {
            (Code::InvalidArgument, Some("malformed"))
        }
        Code::Unimplemented if message.starts_with("Content is compressed with") => {
            (code, Some("unsupported_encoding"))
        }
        _ => (code, None),
    };
    if new_code != code {
        headers.insert("grpc-status", HeaderValue::from(new_code as i32));
    }
    (new_code, reason, message)
}

/// Undoes the percent-encoding of `grpc-message`.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() && s.is_char_boundary(i + 3) {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("failed%20to%20decode"), "failed to decode");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("a%2"), "a%2");
    }

    #[test]
    fn tonic_decode_errors_become_invalid_argument() {
        let mut h = http::HeaderMap::new();
        h.insert("grpc-status", HeaderValue::from(13));
        h.insert(
            "grpc-message",
            HeaderValue::from_static("failed%20to%20decode%20Protobuf%20message:%20x"),
        );
        let (code, reason, _) = normalise(&mut h);
        assert_eq!((code, reason), (Code::InvalidArgument, Some("malformed")));
        assert_eq!(h.get("grpc-status").unwrap(), "3");
        let mut h = http::HeaderMap::new();
        h.insert("grpc-status", HeaderValue::from(13));
        h.insert("grpc-message", HeaderValue::from_static("storage%20error"));
        assert_eq!(normalise(&mut h).0, Code::Internal);
        assert_eq!(normalise(&mut http::HeaderMap::new()).0, Code::Ok);
        let mut h = http::HeaderMap::new();
        h.insert("grpc-status", HeaderValue::from(11));
        h.insert(
            "grpc-message",
            HeaderValue::from_static("Error,%20decoded%20message%20length%20too%20large"),
        );
        assert_eq!(
            normalise(&mut h),
            (
                Code::ResourceExhausted,
                Some("too_large"),
                "Error, decoded message length too large".into()
            )
        );
    }
}
