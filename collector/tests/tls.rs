//! TLS on all listeners with a throwaway self-signed certificate made by the
//! `openssl` CLI (the test fails with the install command when it is missing).

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns fail the test on error

mod harness;

use std::path::Path;
use std::sync::Arc;

use harness::*;
use sightline_proto::otlp::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn make_cert(dir: &Path) -> bool {
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ])
        .arg("-keyout")
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .args([
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
        ])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .stderr(std::process::Stdio::null())
        .status();
    matches!(status, Ok(s) if s.success())
}

async fn https_get(addr: &str, path: &str, cert_pem: &[u8]) -> String {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut &cert_pem[..]) {
        roots.add(c.unwrap()).unwrap();
    }
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = String::new();
    tls.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn all_listeners_speak_tls() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        make_cert(dir.path()),
        "the openssl CLI is needed to make a test certificate: apt-get install -y openssl"
    );
    let c = start(&format!(
        "server:\n  tls: {{cert_file: {}, key_file: {}}}\n",
        dir.path().join("cert.pem").display(),
        dir.path().join("key.pem").display()
    ))
    .await;
    let cert = std::fs::read(dir.path().join("cert.pem")).unwrap();
    let resp = https_get(c.http.trim_start_matches("http://"), "/-/healthy", &cert).await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let resp = https_get(c.otlp.trim_start_matches("http://"), "/v1/metrics", &cert).await;
    assert!(
        resp.starts_with("HTTP/1.1 405"),
        "GET on an OTLP route: {resp}"
    );

    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(&cert))
        .domain_name("localhost");
    let url = c.grpc.replace("http://", "https://");
    let channel = tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = MetricsServiceClient::new(channel);
    client
        .export(gauge_request("svc", "tls_gauge", &[(now_ms(), 1.0)]))
        .await
        .unwrap();
    // plain text is refused on the TLS port
    let plain = MetricsServiceClient::connect(c.grpc.clone()).await;
    if let Ok(mut p) = plain {
        assert!(p
            .export(gauge_request("svc", "g", &[(now_ms(), 1.0)]))
            .await
            .is_err());
    }
    c.stop().await;
}
