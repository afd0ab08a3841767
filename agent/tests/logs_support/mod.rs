//! A real OTLP/gRPC LogsService on 127.0.0.1:0 that records the requests it acknowledged
//! and can be told to fail (`Unavailable`) or hang; plus a CRI log writer.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sightline_proto::otlp::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use sightline_proto::otlp::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use sightline_proto::otlp::common::v1::any_value::Value;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

/// One acknowledged log record, flattened.
#[derive(Debug, Clone)]
pub struct Rec {
    pub body: String,
    pub stream: String,
    pub offset: i64,
    pub resource: HashMap<String, String>,
    pub attrs: HashMap<String, String>,
    pub severity: i32,
    pub time: u64,
}

#[derive(Default)]
struct State {
    fail_until: Option<Instant>,
    hang: bool,
    attempts: usize,
    failed: usize,
    acked: Vec<Rec>,
}

#[derive(Clone, Default)]
pub struct LogsCollector {
    state: Arc<Mutex<State>>,
}

fn text(v: &Option<sightline_proto::otlp::common::v1::AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        _ => String::new(),
    }
}

#[tonic::async_trait]
impl LogsService for LogsCollector {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let hang = {
            let mut s = self.state.lock().unwrap();
            s.attempts += 1;
            if s.fail_until.is_some_and(|t| Instant::now() < t) {
                s.failed += 1;
                return Err(Status::unavailable("collector down"));
            }
            s.hang
        };
        if hang {
            return std::future::pending().await;
        }
        let mut recs = Vec::new();
        for rl in &request.get_ref().resource_logs {
            let resource: HashMap<String, String> = rl
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .map(|kv| (kv.key.clone(), text(&kv.value)))
                .collect();
            for sl in &rl.scope_logs {
                for lr in &sl.log_records {
                    let attrs: HashMap<String, String> = lr
                        .attributes
                        .iter()
                        .map(|kv| (kv.key.clone(), text(&kv.value)))
                        .collect();
                    recs.push(Rec {
                        body: text(&lr.body),
                        stream: attrs
                            .get("sightline.log.stream")
                            .cloned()
                            .unwrap_or_default(),
                        offset: attrs
                            .get("sightline.log.offset")
                            .and_then(|o| o.parse().ok())
                            .unwrap_or(-1),
                        resource: resource.clone(),
                        attrs,
                        severity: lr.severity_number,
                        time: lr.time_unix_nano,
                    });
                }
            }
        }
        self.state.lock().unwrap().acked.extend(recs);
        Ok(Response::new(ExportLogsServiceResponse::default()))
    }
}

impl LogsCollector {
    pub fn fail_for(&self, d: Duration) {
        self.state.lock().unwrap().fail_until = Some(Instant::now() + d);
    }
    pub fn hang(&self, on: bool) {
        self.state.lock().unwrap().hang = on;
    }
    pub fn acked(&self) -> Vec<Rec> {
        self.state.lock().unwrap().acked.clone()
    }
    pub fn acked_len(&self) -> usize {
        self.state.lock().unwrap().acked.len()
    }
    pub fn failed(&self) -> usize {
        self.state.lock().unwrap().failed
    }

    /// Serve on 127.0.0.1:0; returns the `http://` endpoint.
    pub async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let service = LogsServiceServer::new(self.clone())
            .accept_compressed(CompressionEncoding::Zstd)
            .accept_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(64 << 20);
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(TcpListenerStream::new(listener))
                .await
                .unwrap();
        });
        format!("http://{addr}")
    }
}

/// Sequence number in a line `seq=<n> ...`.
pub fn seq_of(body: &str) -> Option<u64> {
    body.split_whitespace()
        .find_map(|w| w.strip_prefix("seq="))
        .and_then(|n| n.parse().ok())
}

/// Write `total` CRI lines `seq=N` into `dir/0.log` at about `rate` lines/s, rotating
/// every `rotate_every` lines, alternating rename-and-create and copytruncate.
/// Returns the number of rotations of each kind.
pub fn write_cri(dir: &std::path::Path, total: u64, rate: u64, rotate_every: u64) -> (u32, u32) {
    use std::io::Write;
    let path = dir.join("0.log");
    let open = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap()
    };
    let mut f = std::io::BufWriter::new(open());
    let started = Instant::now();
    let (mut renames, mut truncates) = (0u32, 0u32);
    for n in 0..total {
        let ts = "2024-05-01T10:00:00.123456789Z";
        if n % 7 == 3 {
            // A line split into partial pieces: merged back by the agent.
            writeln!(f, "{ts} stdout P seq={n} part-one ").unwrap();
            writeln!(f, "{ts} stdout F part-two").unwrap();
        } else {
            writeln!(
                f,
                "{ts} stdout F seq={n} INFO payload {}",
                "x".repeat((n % 50) as usize)
            )
            .unwrap();
        }
        if n > 0 && n % rotate_every == 0 {
            f.flush().unwrap();
            let k = n / rotate_every;
            if k % 2 == 1 {
                renames += 1;
                std::fs::rename(&path, dir.join(format!("0.log.{k:06}"))).unwrap();
            } else {
                truncates += 1;
                std::fs::copy(&path, dir.join(format!("0.log.{k:06}"))).unwrap();
                let t = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
                t.set_len(0).unwrap();
            }
            f = std::io::BufWriter::new(open());
        }
        if n % 500 == 0 {
            f.flush().unwrap();
            let due = Duration::from_secs_f64(n as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
    f.flush().unwrap();
    (renames, truncates)
}
