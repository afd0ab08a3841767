//! A real OTLP/gRPC MetricsService on 127.0.0.1:0 that records what it receives and
//! answers from a script (e.g. `Unavailable` twice, then OK).

#![allow(dead_code, clippy::unwrap_used)]

pub mod container_tree;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use sightline_proto::otlp::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use sightline_proto::otlp::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Received {
    pub request: ExportMetricsServiceRequest,
    pub authorization: Option<String>,
    pub tenant: Option<String>,
    pub encoding: Option<String>,
}

#[derive(Default)]
struct State {
    /// Never answer (a collector that accepted the connection and hung).
    hang: bool,
    received: Vec<Received>,
    script: VecDeque<Result<ExportMetricsServiceResponse, Status>>,
}

#[derive(Clone, Default)]
pub struct FakeCollector {
    state: Arc<Mutex<State>>,
}

#[tonic::async_trait]
impl MetricsService for FakeCollector {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let header = |name: &str| {
            request
                .metadata()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let received = Received {
            authorization: header("authorization"),
            tenant: header("x-scope-orgid"),
            encoding: header("grpc-encoding"),
            request: request.get_ref().clone(),
        };
        let answer = {
            let mut state = self.state.lock().unwrap();
            state.received.push(received);
            if state.hang {
                None
            } else {
                Some(state.script.pop_front())
            }
        };
        let Some(answer) = answer else {
            return std::future::pending().await;
        };
        match answer {
            Some(answer) => answer.map(Response::new),
            None => Ok(Response::new(ExportMetricsServiceResponse::default())),
        }
    }
}

impl FakeCollector {
    /// Queue the next answers; once the script is empty every request gets OK.
    pub fn answer(
        &self,
        answers: impl IntoIterator<Item = Result<ExportMetricsServiceResponse, Status>>,
    ) {
        self.state.lock().unwrap().script.extend(answers);
    }

    /// From now on, accept requests but never answer them.
    pub fn hang(&self) {
        self.state.lock().unwrap().hang = true;
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    /// Serve on 127.0.0.1:0 (zstd and gzip accepted); returns the `http://` endpoint.
    pub async fn start(&self) -> (String, SocketAddr) {
        self.start_accepting(&[CompressionEncoding::Zstd, CompressionEncoding::Gzip])
            .await
    }

    /// Serve over TLS with the given PEM certificate chain and key; returns the
    /// `https://127.0.0.1:PORT` endpoint.
    pub async fn start_tls(&self, cert_pem: Vec<u8>, key_pem: Vec<u8>) -> (String, SocketAddr) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let service = MetricsServiceServer::new(self.clone())
            .accept_compressed(CompressionEncoding::Zstd)
            .accept_compressed(CompressionEncoding::Gzip);
        let tls = tonic::transport::ServerTlsConfig::new()
            .identity(tonic::transport::Identity::from_pem(cert_pem, key_pem));
        let mut builder = tonic::transport::Server::builder().tls_config(tls).unwrap();
        tokio::spawn(async move {
            builder
                .add_service(service)
                .serve_with_incoming(TcpListenerStream::new(listener))
                .await
                .unwrap();
        });
        (format!("https://{addr}"), addr)
    }

    /// Serve accepting only the given request compressions.
    pub async fn start_accepting(&self, encodings: &[CompressionEncoding]) -> (String, SocketAddr) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut service = MetricsServiceServer::new(self.clone());
        for e in encodings {
            service = service.accept_compressed(*e);
        }
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(TcpListenerStream::new(listener))
                .await
                .unwrap();
        });
        (format!("http://{addr}"), addr)
    }
}

/// Number of data points in a request.
pub fn points(request: &ExportMetricsServiceRequest) -> usize {
    use sightline_proto::otlp::metrics::v1::metric::Data;
    request
        .resource_metrics
        .iter()
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
        .map(|m| match &m.data {
            Some(Data::Gauge(g)) => g.data_points.len(),
            Some(Data::Sum(s)) => s.data_points.len(),
            _ => 0,
        })
        .sum()
}
