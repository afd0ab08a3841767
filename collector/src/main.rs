//! `sightline-collector` CLI.
//!
//! - `sightline-collector [run] [--config FILE] [--data-dir DIR] [--grpc-addr ADDR]
//!   [--otlp-http-addr ADDR] [--http-addr ADDR] [--listen-file FILE]`: serve until
//!   SIGTERM / Ctrl-C, then drain and flush.
//! - `sightline-collector validate --config FILE`: print every config error.
//! - `sightline-collector up [--data-dir DIR] [--interval 10s]`: the collector with
//!   defaults plus a supervised `sightline-agent` (found next to this binary) that
//!   ships this host's telemetry to it; the agent's own `/metrics` is stored by the
//!   collector's self-monitoring (`job="sightline-agent"`).
//!
//! Every flag has an environment twin (`SIGHTLINE_DATA_DIR`, ...).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};
use sightline_collector::config::Config;
use sightline_collector::server::{self, Collector};
use sightline_store::SystemClock;
use tokio::sync::watch;

#[derive(Parser, Debug)]
#[command(
    name = "sightline-collector",
    version,
    about = "Sightline collector: OTLP and remote-write ingest, storage, Prometheus/Loki/Tempo APIs"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the collector (the default).
    Run(RunArgs),
    /// Check a configuration file and print all errors.
    Validate {
        /// YAML configuration file.
        #[arg(long, env = "SIGHTLINE_CONFIG")]
        config: PathBuf,
    },
    /// Run the collector with defaults plus a local sightline-agent.
    Up {
        #[command(flatten)]
        run: RunArgs,
        /// Agent collection interval.
        #[arg(long, env = "SIGHTLINE_INTERVAL", default_value = "10s")]
        interval: String,
    },
}

#[derive(Args, Debug, Clone, Default)]
struct RunArgs {
    /// YAML configuration file (all keys optional).
    #[arg(long, env = "SIGHTLINE_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (overrides storage.data_dir).
    #[arg(long, env = "SIGHTLINE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// OTLP/gRPC listen address (overrides server.grpc_addr).
    #[arg(long, env = "SIGHTLINE_GRPC_ADDR")]
    grpc_addr: Option<String>,
    /// OTLP/HTTP listen address (overrides server.otlp_http_addr).
    #[arg(long, env = "SIGHTLINE_OTLP_HTTP_ADDR")]
    otlp_http_addr: Option<String>,
    /// HTTP API listen address (overrides server.http_addr).
    #[arg(long, env = "SIGHTLINE_HTTP_ADDR")]
    http_addr: Option<String>,
    /// Write the bound addresses here as JSON once ready.
    #[arg(long, env = "SIGHTLINE_LISTEN_FILE")]
    listen_file: Option<PathBuf>,
    /// Set by `up`: the local agent's /metrics, stored by self-monitoring.
    #[arg(skip)]
    scrape_agent: Option<String>,
}

impl RunArgs {
    fn config(&self) -> anyhow::Result<Config> {
        let mut cfg = match &self.config {
            Some(p) => Config::load(p).map_err(anyhow::Error::msg)?,
            None => Config::default(),
        };
        if let Some(d) = &self.data_dir {
            cfg.storage.data_dir = d.clone();
        }
        if let Some(a) = &self.grpc_addr {
            cfg.server.grpc_addr = a.clone();
        }
        if let Some(a) = &self.otlp_http_addr {
            cfg.server.otlp_http_addr = a.clone();
        }
        if let Some(a) = &self.http_addr {
            cfg.server.http_addr = a.clone();
        }
        if let Some(url) = &self.scrape_agent {
            cfg.self_monitoring
                .scrape
                .push(sightline_collector::self_monitoring::ScrapeTarget {
                    job: "sightline-agent".into(),
                    url: url.clone(),
                });
        }
        Ok(cfg)
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match cli.command {
        Some(Command::Validate { config }) => validate(&config),
        Some(Command::Run(run)) => block_on(serve(run, None)),
        Some(Command::Up { run, interval }) => block_on(up(run, interval)),
        None => block_on(serve(cli.run, None)),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn block_on(f: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(f)
}

fn validate(path: &Path) -> anyhow::Result<()> {
    let cfg = Config::load(path).map_err(anyhow::Error::msg)?;
    let errors = cfg.validate();
    if errors.is_empty() {
        println!("{}: configuration is valid", path.display());
        return Ok(());
    }
    for e in &errors {
        println!("{}: {e}", path.display());
    }
    bail!("{} error(s) in {}", errors.len(), path.display())
}

/// SIGTERM / SIGINT handlers, installed before the listeners open so a signal
/// that arrives right after the listen file appears is never lost.
struct Termination {
    #[cfg(unix)]
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Termination {
    fn install() -> Termination {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let signals = match (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) {
                (Ok(t), Ok(i)) => Some((t, i)),
                _ => None,
            };
            Termination { signals }
        }
        #[cfg(not(unix))]
        Termination {}
    }

    /// Resolves on SIGTERM or Ctrl-C.
    async fn wait(&mut self) {
        #[cfg(unix)]
        if let Some((term, int)) = &mut self.signals {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs the collector; `started` is told the gRPC address once listening.
async fn serve(
    run: RunArgs,
    started: Option<watch::Sender<Option<std::net::SocketAddr>>>,
) -> anyhow::Result<()> {
    let cfg = run.config()?;
    let mut termination = Termination::install();
    let mut collector: Collector =
        server::start(&cfg, Arc::new(SystemClock), run.listen_file.as_deref()).await?;
    if let Some(tx) = started {
        let _ = tx.send(Some(collector.addrs.grpc));
    }
    tokio::select! {
        _ = termination.wait() => {}
        r = collector.wait_failure() => {
            r?;
        }
    }
    collector.shutdown().await?;
    Ok(())
}

async fn up(run: RunArgs, interval: String) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot locate the sightline-collector binary")?;
    let agent = exe
        .parent()
        .map(|d| d.join(format!("sightline-agent{}", std::env::consts::EXE_SUFFIX)))
        .context("cannot locate the directory of the sightline-collector binary")?;
    if !agent.is_file() {
        bail!(
            "the agent binary was not found at {}; build it with `cargo build --release` (it must sit next to sightline-collector)",
            agent.display()
        );
    }
    // The agent's /metrics gets a fixed port so the collector's self-monitoring can
    // store the agent's own metrics next to its own (job="sightline-agent").
    let agent_http = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .context("cannot pick a port for the agent's /metrics")?;
    let mut run = run;
    run.scrape_agent = Some(format!("http://{agent_http}/metrics"));
    let (tx, mut rx) = watch::channel(None);
    let (stop_tx, stop_rx) = watch::channel(false);
    let collector = tokio::spawn(serve(run, Some(tx)));
    let grpc = loop {
        if let Some(a) = *rx.borrow() {
            break a;
        }
        if rx.changed().await.is_err() {
            // the collector stopped before listening; report its error
            return collector.await.context("collector task failed")?;
        }
    };
    let supervisor = tokio::spawn(supervise_agent(
        agent,
        grpc.port(),
        agent_http.to_string(),
        interval,
        stop_rx,
    ));
    let result = collector.await.context("collector task failed")?;
    let _ = stop_tx.send(true);
    let _ = supervisor.await;
    result
}

/// Keeps the agent running (restarting it with backoff) until `stop` is set.
async fn supervise_agent(
    agent: PathBuf,
    grpc_port: u16,
    http_addr: String,
    interval: String,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let started = Instant::now();
        let mut child = match tokio::process::Command::new(&agent)
            .arg("--endpoint")
            .arg(format!("http://127.0.0.1:{grpc_port}"))
            .arg("--interval")
            .arg(&interval)
            .arg("--http-addr")
            .arg(&http_addr)
            .kill_on_drop(true)
            .spawn()
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(agent = %agent.display(), error = %e, "cannot start the agent");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stopped(&mut stop) => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        tracing::info!(pid = child.id(), "agent started");
        let exited = tokio::select! {
            status = child.wait() => Some(status),
            _ = stopped(&mut stop) => None,
        };
        let Some(status) = exited else {
            stop_child(&mut child).await;
            return;
        };
        tracing::warn!(?status, "agent exited; restarting");
        if started.elapsed() > Duration::from_secs(60) {
            backoff = Duration::from_secs(1);
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stopped(&mut stop) => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// SIGTERM, then SIGKILL if the agent has not exited after 10 s.
async fn stop_child(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id() {
        let _ = tokio::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .await;
        if tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .is_ok()
        {
            return;
        }
    }
    let _ = child.kill().await;
}
