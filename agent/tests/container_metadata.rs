//! Container names from real peers: a kubelet `/pods` server over HTTP and HTTPS (test
//! PKI in `tests/tls`, bearer token checked) and a Docker Engine API on a unix socket.

#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::container_tree::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubelet_pods_endpoint_names_containers() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let cg = root.join("cgroup");
    put(&cg.join("cgroup.controllers"), "cpu memory pids\n");
    let id = hex_id(7);
    // cgroupfs driver layout, guaranteed QoS.
    v2_container(&cg.join(format!("kubepods/pod{POD_UID}/{id}")), 10, 10);
    let hits = Arc::new(AtomicU64::new(0));
    let pods = serde_json::json!({
        "kind": "PodList", "apiVersion": "v1",
        "items": [{
            "metadata": {"name": "api-0", "namespace": "prod", "uid": POD_UID},
            "status": {"phase": "Running", "containerStatuses": [{
                "name": "api", "image": "registry.local:5000/team/api:2.4.1",
                "containerID": format!("containerd://{id}"), "ready": true
            }]}
        }]
    });
    let app = {
        let hits = hits.clone();
        axum::Router::new().route(
            "/pods",
            axum::routing::get(move || {
                hits.fetch_add(1, Ordering::SeqCst);
                let pods = pods.clone();
                async move { axum::Json(pods) }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let mut opts = options(root);
    opts.metadata.pod_logs_root = None;
    opts.metadata.kubelet_url = Some(format!("http://{addr}"));
    let agent = start(opts);
    agent.wait_len(Duration::from_secs(5), |n| n == 1).await;
    let t0 = Instant::now();
    loop {
        let c = agent.collect().await;
        let r = &c.resources[0];
        if attr(r, "k8s.pod.name").is_some() {
            assert_eq!(attr(r, "k8s.namespace.name"), Some("prod"));
            assert_eq!(attr(r, "k8s.pod.name"), Some("api-0"));
            assert_eq!(attr(r, "k8s.container.name"), Some("api"));
            assert_eq!(
                attr(r, "container.image.name"),
                Some("registry.local:5000/team/api")
            );
            assert_eq!(attr(r, "container.image.tag"), Some("2.4.1"));
            assert_eq!(attr(r, "container.id"), Some(id.as_str()));
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "kubelet metadata never arrived"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(hits.load(Ordering::SeqCst) >= 1);
    // Once everything is named the kubelet is not asked again.
    let before = hits.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(hits.load(Ordering::SeqCst), before);
    agent.stop().await;
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_socket_names_and_unreachable_peers_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let cg = root.join("cgroup");
    put(&cg.join("cgroup.controllers"), "cpu memory pids\n");
    let id = hex_id(9);
    let other = hex_id(10);
    v2_container(&cg.join(format!("docker/{id}")), 10, 10);
    v2_container(
        &cg.join(format!("system.slice/docker-{other}.scope")),
        10,
        10,
    );
    let socket = root.join("docker.sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    let known = id.clone();
    let app = axum::Router::new().route(
        "/containers/{id}/json",
        axum::routing::get(
            move |axum::extract::Path(asked): axum::extract::Path<String>| {
                let known = known.clone();
                async move {
                    if asked == known {
                        Ok(axum::Json(serde_json::json!({
                            "Id": asked, "Name": "/web-1", "Config": {"Image": "nginx:1.27"}
                        })))
                    } else {
                        Err(axum::http::StatusCode::NOT_FOUND)
                    }
                }
            },
        ),
    );
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let mut opts = options(root);
    opts.metadata.docker_socket = Some(socket);
    // A kubelet that is not there: counted, never fatal (no k8s container, so not asked).
    opts.metadata.kubelet_url = Some("http://127.0.0.1:9".into());
    let agent = start(opts);
    agent.wait_len(Duration::from_secs(5), |n| n == 2).await;
    let t0 = Instant::now();
    loop {
        let c = agent.collect().await;
        let named = by_attr(&c, "container.name", "web-1");
        if let Some(r) = named.first() {
            assert_eq!(attr(r, "container.id"), Some(id.as_str()));
            assert_eq!(attr(r, "container.image.name"), Some("nginx"));
            assert_eq!(attr(r, "container.image.tag"), Some("1.27"));
            // 404 for the other: no name, no error.
            let o = by_attr(&c, "container.id", &other)[0];
            assert_eq!(attr(o, "container.name"), None);
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "docker metadata never arrived"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!agent
        .telemetry
        .encode()
        .contains("container_metadata_errors_total{source=\"docker\"}"));
    agent.stop().await;
    server.abort();
}

/// An HTTPS kubelet on 127.0.0.1:0 (test PKI in `tests/tls/a`, certificate for 127.0.0.1)
/// answering every request with `body`; it checks the bearer token.
async fn https_kubelet(body: String) -> std::net::SocketAddr {
    use tokio_rustls::rustls;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tls/a");
    let certs: Vec<_> =
        rustls_pemfile::certs(&mut std::fs::read(dir.join("server.pem")).unwrap().as_slice())
            .collect::<Result<_, _>>()
            .unwrap();
    let key =
        rustls_pemfile::private_key(&mut std::fs::read(dir.join("server.key")).unwrap().as_slice())
            .unwrap()
            .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let body = body.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if tls.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).to_string();
                let (status, body) = if !head.starts_with("GET /pods ") {
                    ("404 Not Found", String::new())
                } else if !head.contains("Authorization: Bearer kubelet-token") {
                    ("401 Unauthorized", String::new())
                } else {
                    ("200 OK", body)
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(resp.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_kubelet_with_ca_token_and_insecure_mode() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let cg = root.join("cgroup");
    put(&cg.join("cgroup.controllers"), "cpu memory pids\n");
    let id = hex_id(77);
    v2_container(
        &cg.join(format!("kubepods/besteffort/pod{POD_UID}/{id}")),
        10,
        10,
    );
    let pods = serde_json::json!({"items": [{
        "metadata": {"name": "db-0", "namespace": "data", "uid": POD_UID},
        "status": {"containerStatuses": [{"name": "postgres", "image": "postgres:17",
                    "containerID": format!("cri-o://{id}")}]}
    }]});
    let addr = https_kubelet(pods.to_string()).await;
    let token = root.join("token");
    std::fs::write(&token, "kubelet-token\n").unwrap();
    let tls = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tls");
    // (CA, insecure, expect names)
    let cases = [
        (Some(tls.join("a/ca.pem")), false, true),
        (Some(tls.join("b/ca.pem")), false, false),
        (None, true, true),
    ];
    for (ca, insecure, named) in cases {
        let mut opts = options(root);
        opts.metadata.pod_logs_root = None;
        opts.metadata.kubelet_url = Some(format!("https://{addr}"));
        opts.metadata.kubelet_token_file = Some(token.clone());
        opts.metadata.kubelet_ca_file = ca.clone();
        opts.metadata.kubelet_insecure_skip_verify = insecure;
        let agent = start(opts);
        agent.wait_len(Duration::from_secs(5), |n| n == 1).await;
        let t0 = Instant::now();
        loop {
            let c = agent.collect().await;
            let r = &c.resources[0];
            if named && attr(r, "k8s.pod.name").is_some() {
                assert_eq!(attr(r, "k8s.namespace.name"), Some("data"));
                assert_eq!(attr(r, "k8s.container.name"), Some("postgres"));
                assert_eq!(attr(r, "container.image.name"), Some("postgres"));
                break;
            }
            if !named
                && agent
                    .telemetry
                    .encode()
                    .contains("container_metadata_errors_total{source=\"kubelet\"}")
            {
                assert_eq!(
                    attr(r, "k8s.pod.name"),
                    None,
                    "untrusted certificate accepted"
                );
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "case {ca:?}/{insecure}: no outcome"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        agent.stop().await;
    }
}
