//! Reading HTTP request bodies within the size limit and undoing their
//! `Content-Encoding`. The limit applies to the bytes on the wire and again to the
//! decompressed bytes, so a small "zip bomb" cannot allocate more than the limit.
//! Used by every HTTP receiver (OTLP/HTTP on the collector and the agent, Prometheus
//! remote write); [`read_body`] is the whole sequence for one request.

use std::io::Read;

use bytes::Bytes;
use http::HeaderMap;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::Error as BodyError;

/// A body compression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Zstd,
    /// Snappy block format (Prometheus remote write), not the framed format.
    Snappy,
}

impl Encoding {
    /// Parses `Content-Encoding`; absent means identity. `allowed` lists the
    /// encodings this endpoint accepts.
    pub fn from_headers(headers: &HeaderMap, allowed: &[Encoding]) -> Result<Encoding, BodyError> {
        let raw = match headers.get(http::header::CONTENT_ENCODING) {
            None => "identity".to_string(),
            Some(v) => v
                .to_str()
                .unwrap_or("<non-ascii>")
                .trim()
                .to_ascii_lowercase(),
        };
        let enc = match raw.as_str() {
            "" | "identity" => Some(Encoding::Identity),
            "gzip" | "x-gzip" => Some(Encoding::Gzip),
            "zstd" => Some(Encoding::Zstd),
            "snappy" => Some(Encoding::Snappy),
            _ => None,
        };
        match enc {
            Some(e) if allowed.contains(&e) => Ok(e),
            _ => Err(BodyError::UnsupportedEncoding(format!(
                "unsupported Content-Encoding {raw:?}: this endpoint accepts {}",
                allowed
                    .iter()
                    .map(|e| e.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Encoding::Identity => "identity",
            Encoding::Gzip => "gzip",
            Encoding::Zstd => "zstd",
            Encoding::Snappy => "snappy",
        }
    }
}

/// Collects at most `limit` bytes of `body`.
pub async fn read_limited<B>(body: B, limit: usize) -> Result<Bytes, BodyError>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large(limit, "")),
        Err(e) => Err(BodyError::Malformed(format!(
            "cannot read request body: {e}"
        ))),
    }
}

/// `Content-Encoding` (one of `allowed`) → body read within `limit` → decompressed
/// within `limit`.
pub async fn read_body<B>(
    headers: &HeaderMap,
    body: B,
    allowed: &[Encoding],
    limit: usize,
) -> Result<Bytes, BodyError>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let enc = Encoding::from_headers(headers, allowed)?;
    let raw = read_limited(body, limit).await?;
    decompress(enc, raw, limit)
}

fn too_large(limit: usize, what: &str) -> BodyError {
    BodyError::TooLarge(format!(
        "request body{what} exceeds the limit of {limit} bytes (the receiver's request size limit); send smaller batches"
    ))
}

/// Undoes `encoding`, refusing output larger than `limit`.
pub fn decompress(encoding: Encoding, data: Bytes, limit: usize) -> Result<Bytes, BodyError> {
    let read_all = |mut r: Box<dyn Read + '_>, name: &str| -> Result<Bytes, BodyError> {
        let mut out = Vec::new();
        r.by_ref()
            .take(limit as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| BodyError::Malformed(format!("invalid {name} data: {e}")))?;
        if out.len() > limit {
            return Err(too_large(limit, " after decompression"));
        }
        Ok(Bytes::from(out))
    };
    match encoding {
        Encoding::Identity => Ok(data),
        Encoding::Gzip => read_all(
            Box::new(flate2::read::MultiGzDecoder::new(&data[..])),
            "gzip",
        ),
        Encoding::Zstd => {
            let dec = zstd::stream::read::Decoder::new(&data[..])
                .map_err(|e| BodyError::Malformed(format!("invalid zstd data: {e}")))?;
            read_all(Box::new(dec), "zstd")
        }
        Encoding::Snappy => {
            let len = snap::raw::decompress_len(&data)
                .map_err(|e| BodyError::Malformed(format!("invalid snappy data: {e}")))?;
            if len > limit {
                return Err(too_large(limit, " after decompression"));
            }
            snap::raw::Decoder::new()
                .decompress_vec(&data)
                .map(Bytes::from)
                .map_err(|e| BodyError::Malformed(format!("invalid snappy data: {e}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Bytes {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        Bytes::from(e.finish().unwrap())
    }

    #[test]
    fn round_trips_and_limits() {
        let data = vec![7u8; 10_000];
        assert_eq!(
            decompress(Encoding::Gzip, gzip(&data), 10_000)
                .unwrap()
                .len(),
            10_000
        );
        let z = Bytes::from(zstd::encode_all(&data[..], 1).unwrap());
        assert_eq!(
            decompress(Encoding::Zstd, z.clone(), 10_000).unwrap().len(),
            10_000
        );
        let s = Bytes::from(snap::raw::Encoder::new().compress_vec(&data).unwrap());
        assert_eq!(
            decompress(Encoding::Snappy, s.clone(), 10_000)
                .unwrap()
                .len(),
            10_000
        );
        for (enc, d) in [
            (Encoding::Gzip, gzip(&data)),
            (Encoding::Zstd, z),
            (Encoding::Snappy, s),
        ] {
            let e = decompress(enc, d, 9_999).unwrap_err();
            assert_eq!(e.reason(), "too_large", "{enc:?}");
        }
        // (snappy's header is a varint length: keep it small so the body is what is wrong)
        for enc in [Encoding::Gzip, Encoding::Zstd, Encoding::Snappy] {
            let e = decompress(enc, Bytes::from_static(b"\x10not compressed at all"), 1000)
                .unwrap_err();
            assert_eq!(e.reason(), "malformed", "{enc:?}");
        }
    }

    #[test]
    fn content_encoding_header() {
        let mut h = HeaderMap::new();
        let all = [Encoding::Identity, Encoding::Gzip];
        assert_eq!(
            Encoding::from_headers(&h, &all).unwrap(),
            Encoding::Identity
        );
        h.insert("content-encoding", "GZIP".parse().unwrap());
        assert_eq!(Encoding::from_headers(&h, &all).unwrap(), Encoding::Gzip);
        h.insert("content-encoding", "br".parse().unwrap());
        let e = Encoding::from_headers(&h, &all).unwrap_err();
        assert!(e.to_string().contains("\"br\""), "{e}");
    }
}
