//! OTLP/HTTP request decoding and answers, shared by the collector's and the agent's
//! `POST /v1/{metrics,logs,traces}` handlers.
//!
//! Data flow of one request: [`Format::from_headers`] (`application/x-protobuf` or
//! `application/json`) → [`read_request`]: body within the size limit, gzip / zstd
//! undone within the same limit ([`crate::http_body`]), then protobuf or OTLP-JSON
//! decoding. Answers go back in the request's format: [`ok_response`] with the export
//! response, or [`error_response`] with a `google.rpc.Status` carrying a specific
//! message, as the OTLP specification asks (503 and 429 add `Retry-After`).

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, StatusCode};
use http_body_util::Full;
use serde::de::DeserializeOwned;

use crate::http_body::{read_body, Encoding};
use crate::{Error, Result};

/// `Content-Type` of protobuf OTLP/HTTP bodies.
pub const PROTOBUF: &str = "application/x-protobuf";
/// `Content-Type` of OTLP-JSON bodies.
pub const JSON: &str = "application/json";
/// Encodings OTLP/HTTP endpoints accept.
pub const ENCODINGS: &[Encoding] = &[Encoding::Identity, Encoding::Gzip, Encoding::Zstd];

/// Body format of a request (and of its answer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Protobuf,
    Json,
}

impl Format {
    /// From `Content-Type` (parameters such as `charset` ignored).
    pub fn from_headers(headers: &HeaderMap) -> Result<Format> {
        let raw = headers
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or("<non-ascii>"))
            .unwrap_or("");
        let essence = raw
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            PROTOBUF => Ok(Format::Protobuf),
            JSON => Ok(Format::Json),
            "" => Err(Error::UnsupportedContentType(format!(
                "missing Content-Type: use {PROTOBUF} or {JSON}"
            ))),
            _ => Err(Error::UnsupportedContentType(format!(
                "unsupported Content-Type {raw:?}: use {PROTOBUF} or {JSON}"
            ))),
        }
    }

    fn content_type(self) -> HeaderValue {
        match self {
            Format::Protobuf => HeaderValue::from_static(PROTOBUF),
            Format::Json => HeaderValue::from_static(JSON),
        }
    }
}

/// `google.rpc.Status`, the OTLP/HTTP error body.
#[derive(Clone, PartialEq, prost::Message, serde::Serialize)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

/// `msg` in `format`.
pub fn encode<M: prost::Message + serde::Serialize>(format: Format, msg: &M) -> Vec<u8> {
    match format {
        Format::Protobuf => msg.encode_to_vec(),
        // serializing generated messages into a Vec cannot fail
        Format::Json => serde_json::to_vec(msg).unwrap_or_default(),
    }
}

/// Decodes an already decompressed body.
pub fn decode<R>(format: Format, bytes: Bytes) -> Result<R>
where
    R: prost::Message + Default + DeserializeOwned,
{
    match format {
        Format::Protobuf => R::decode(bytes)
            .map_err(|e| Error::Malformed(format!("invalid OTLP protobuf body: {e}"))),
        Format::Json => serde_json::from_slice::<R>(&bytes)
            .map_err(|e| Error::Malformed(format!("invalid OTLP JSON body: {e}"))),
    }
}

/// Reads (within `limit`, before and after decompression), decompresses and decodes
/// one export request of `format`.
pub async fn read_request<R, B>(
    format: Format,
    headers: &HeaderMap,
    body: B,
    limit: usize,
) -> Result<R>
where
    R: prost::Message + Default + DeserializeOwned,
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let bytes = read_body(headers, body, ENCODINGS, limit).await?;
    decode(format, bytes)
}

/// HTTP 200 with the export response in `format`.
pub fn ok_response<M: prost::Message + serde::Serialize>(
    format: Format,
    msg: &M,
) -> http::Response<Full<Bytes>> {
    response(format, StatusCode::OK, encode(format, msg))
}

/// An error answer: `status` plus a `google.rpc.Status` body in `format`. 503 and 429
/// carry `Retry-After: retry_after_s`, 401 `WWW-Authenticate: Bearer`.
pub fn error_response(
    format: Format,
    status: StatusCode,
    code: tonic::Code,
    message: String,
    retry_after_s: u32,
) -> http::Response<Full<Bytes>> {
    let body = encode(
        format,
        &RpcStatus {
            code: code as i32,
            message,
        },
    );
    let mut resp = response(format, status, body);
    if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s.max(1)));
    }
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    resp
}

/// The answer for a request that could not be used.
pub fn rejection(format: Format, e: &Error) -> http::Response<Full<Bytes>> {
    error_response(format, e.http_status(), e.grpc_code(), e.to_string(), 1)
}

fn response(format: Format, status: StatusCode, body: Vec<u8>) -> http::Response<Full<Bytes>> {
    let mut resp = http::Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, format.content_type());
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp::collector::logs::v1::ExportLogsServiceRequest;

    #[test]
    fn content_types() {
        let mut h = HeaderMap::new();
        assert_eq!(
            Format::from_headers(&h).unwrap_err().reason(),
            "unsupported_content_type"
        );
        h.insert(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8".parse().unwrap(),
        );
        assert_eq!(Format::from_headers(&h).unwrap(), Format::Json);
        h.insert(
            header::CONTENT_TYPE,
            "Application/X-Protobuf".parse().unwrap(),
        );
        assert_eq!(Format::from_headers(&h).unwrap(), Format::Protobuf);
        h.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        let e = Format::from_headers(&h).unwrap_err();
        assert_eq!(e.http_status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }

    #[test]
    fn decoding_and_errors() {
        let r: ExportLogsServiceRequest =
            decode(Format::Json, Bytes::from_static(b"{\"resourceLogs\":[{}]}")).unwrap();
        assert_eq!(r.resource_logs.len(), 1);
        let e = decode::<ExportLogsServiceRequest>(
            Format::Protobuf,
            Bytes::from_static(b"\xff\xff\xff"),
        )
        .unwrap_err();
        assert_eq!(e.reason(), "malformed");
        assert_eq!(e.grpc_code(), tonic::Code::InvalidArgument);
        let resp = error_response(
            Format::Json,
            StatusCode::TOO_MANY_REQUESTS,
            tonic::Code::ResourceExhausted,
            "queue full".into(),
            3,
        );
        assert_eq!(resp.headers()[header::RETRY_AFTER], "3");
        assert_eq!(resp.headers()[header::CONTENT_TYPE], JSON);
    }
}
