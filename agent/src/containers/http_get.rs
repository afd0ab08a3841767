//! A minimal HTTP/1.1 `GET` client over TCP or a unix socket, for the two local peers the
//! agent asks about containers: the Docker Engine API (`/var/run/docker.sock`) and the
//! kubelet's `/pods`. One request per connection (`Connection: close`); the body is read
//! by `Content-Length`, `Transfer-Encoding: chunked` or until the peer closes, capped at
//! [`MAX_BODY`]. `https://` through rustls (see `kubelet_tls`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Responses larger than this are refused (a kubelet pod list is a few MB at most).
pub const MAX_BODY: usize = 64 << 20;

/// Where to connect.
#[derive(Debug, Clone)]
pub enum Peer<'a> {
    /// `host:port`.
    Tcp(&'a str),
    /// `host:port` over TLS, verifying the certificate for `host`.
    Tls(&'a str, Arc<tokio_rustls::rustls::ClientConfig>),
    Unix(&'a Path),
}

/// Status code and body of a response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Split `http[s]://host:port/prefix` into (`host:port`, `/prefix` without trailing `/`, https).
pub fn split_http_url(url: &str) -> Result<(String, String, bool), String> {
    let (rest, https) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
        (Some(rest), _) => (rest, false),
        (_, Some(rest)) => (rest, true),
        _ => return Err(format!("{url:?}: not an http:// or https:// URL")),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    if authority.is_empty() {
        return Err(format!("{url:?}: no host"));
    }
    let authority = if authority.contains(':') {
        authority.to_string()
    } else if https {
        format!("{authority}:443")
    } else {
        format!("{authority}:80")
    };
    Ok((authority, path.to_string(), https))
}

/// `GET path` from `peer`, with an optional bearer token, within `timeout`.
pub async fn get(
    peer: Peer<'_>,
    host_header: &str,
    path: &str,
    bearer: Option<&str>,
    timeout: Duration,
) -> Result<Response, String> {
    let fut = async {
        match peer {
            Peer::Tcp(addr) => {
                let s = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(|e| format!("connect {addr}: {e}"))?;
                exchange(s, host_header, path, bearer).await
            }
            Peer::Tls(addr, config) => {
                let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
                let name = tokio_rustls::rustls::pki_types::ServerName::try_from(
                    host.trim_matches(|c| c == '[' || c == ']').to_string(),
                )
                .map_err(|e| format!("{host}: {e}"))?;
                let tcp = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(|e| format!("connect {addr}: {e}"))?;
                let tls = tokio_rustls::TlsConnector::from(config)
                    .connect(name, tcp)
                    .await
                    .map_err(|e| format!("TLS with {addr}: {e}"))?;
                exchange(tls, host_header, path, bearer).await
            }
            Peer::Unix(p) => {
                let s = tokio::net::UnixStream::connect(p)
                    .await
                    .map_err(|e| format!("connect {}: {e}", p.display()))?;
                exchange(s, host_header, path, bearer).await
            }
        }
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| format!("GET {path}: no answer within {timeout:?}"))?
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    host: &str,
    path: &str,
    bearer: Option<&str>,
) -> Result<Response, String> {
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\nConnection: close\r\nUser-Agent: sightline-agent\r\n"
    );
    if let Some(token) = bearer {
        req.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| format!("sending GET {path}: {e}"))?;
    let mut raw = Vec::new();
    (&mut s)
        .take(MAX_BODY as u64 + 64 * 1024)
        .read_to_end(&mut raw)
        .await
        .map_err(|e| format!("reading answer to GET {path}: {e}"))?;
    parse_response(&raw)
}

/// Parse a complete HTTP/1.1 response.
pub fn parse_response(raw: &[u8]) -> Result<Response, String> {
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of HTTP headers")?;
    let head = std::str::from_utf8(&raw[..head_end]).map_err(|_| "headers are not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut content_length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            content_length = value.parse::<usize>().ok();
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            && value.to_ascii_lowercase().contains("chunked")
        {
            chunked = true;
        }
    }
    let rest = &raw[head_end + 4..];
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(n) = content_length {
        rest.get(..n)
            .ok_or_else(|| format!("body shorter than Content-Length {n}"))?
            .to_vec()
    } else {
        rest.to_vec()
    };
    if body.len() > MAX_BODY {
        return Err(format!("body larger than {MAX_BODY} bytes"));
    }
    Ok(Response { status, body })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk size")?;
        let size_text = std::str::from_utf8(&data[..line_end]).map_err(|_| "bad chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = data.get(..size).ok_or("truncated chunk")?;
        out.extend_from_slice(chunk);
        data = data.get(size + 2..).ok_or("truncated chunk end")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_length_chunked_and_close_delimited_bodies() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.body, b"hello world");
        let r = parse_response(b"HTTP/1.0 404 Not Found\r\nX: y\r\n\r\nnope").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (404, &b"nope"[..]));
        assert!(parse_response(b"garbage").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort").is_err());
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").is_err()
        );
    }

    #[test]
    fn urls() {
        assert_eq!(
            split_http_url("http://127.0.0.1:10255/").unwrap(),
            ("127.0.0.1:10255".to_string(), String::new(), false)
        );
        assert_eq!(
            split_http_url("http://node/kubelet").unwrap(),
            ("node:80".to_string(), "/kubelet".to_string(), false)
        );
        assert_eq!(
            split_http_url("https://node:10250").unwrap(),
            ("node:10250".to_string(), String::new(), true)
        );
        assert!(split_http_url("ftp://node").is_err());
        assert!(split_http_url("http://").is_err());
    }
}
