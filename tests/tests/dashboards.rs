//! Every shipped Grafana dashboard (`dashboards/json/*.json`) works against a real
//! collector: its template variables resolve, and every panel query runs without error
//! and returns data whenever the data it shows exists.
//!
//! The collector is filled the way users fill it: the real agent (host metrics, plus a
//! Kubernetes-shaped cgroup v2 tree and pod log directory in a temp dir, so container
//! metrics and pod logs carry namespace/pod names), a small data set of the load
//! generator (`../shared/eval/peers/gen.py`, remote write), OTLP spans of two services
//! (tonic client; the collector turns them into `traces_spanmetrics_*`), and the
//! collector's own and the agent's `/metrics` (self-monitoring, 1 s interval).
//!
//! Variables are expanded as Grafana does (`label_values(...)` queried from the
//! collector, `All` = the variable's allValue, `$__interval`, `$__rate_interval`,
//! `$__range`), first with every variable at All, then with every variable at its first
//! concrete value. Prometheus targets run as range (or instant) queries, Loki targets
//! through the Loki API, Tempo targets through `/api/search`. A panel may come back
//! empty only when a metric it reads does not exist in the collector and that metric is
//! listed in [`MAY_BE_ABSENT`] with the reason.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use sightline_e2e::otlp_grpc::export_traces;
use sightline_e2e::remote_write::push_body;
use sightline_e2e::{now_ms, now_ns, wait_for, Agent, Collector, CollectorOptions, Http};
use sightline_proto::otlp::collector::trace::v1::ExportTraceServiceRequest;
use sightline_proto::otlp::common::v1::{any_value, AnyValue, KeyValue};
use sightline_proto::otlp::resource::v1::Resource;
use sightline_proto::otlp::trace::v1::{span, status, ResourceSpans, ScopeSpans, Span, Status};

/// Metrics a dashboard may read that do not exist in this test's collector, and why.
/// A panel reading one of these (and finding it absent) may be empty; any other
/// empty panel fails the test.
const MAY_BE_ABSENT: &[(&str, &str)] = &[
    (
        "sightline_anomaly_score",
        "AIOps: anomaly detection does not write scores into the store yet",
    ),
    (
        "sightline_anomalies_detected_total",
        "AIOps: anomaly detection does not write into the store yet",
    ),
    (
        "sightline_forecast_value",
        "AIOps: forecasting does not write into the store yet",
    ),
    (
        "sightline_forecast_exhaustion_seconds",
        "AIOps: forecasting does not write into the store yet",
    ),
    (
        "sightline_incidents_open",
        "AIOps: the incident engine does not exist yet",
    ),
    (
        "sightline_notifications_total",
        "AIOps: notifiers do not exist yet",
    ),
    (
        "sightline_agent_dropped_points_total",
        "only after an agent dropped data; this test drops none",
    ),
    (
        "sightline_promql_query_errors_total",
        "only after a PromQL query failed; the dashboards' queries do not fail",
    ),
    (
        "sightline_spanmetrics_overflow_total",
        "present from the start, but listed for collectors built before span metrics",
    ),
];

/// Grafana's `$__interval` for the test range (5 min at ~20 points) and the
/// datasource's scrape interval (`timeInterval: 15s` in the provisioning).
const INTERVAL_S: i64 = 15;
const RANGE_S: i64 = 300;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn python() -> PathBuf {
    std::env::var_os("SIGHTLINE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/var/tmp/sightline-venv/bin/python".into())
}

fn gen_py() -> PathBuf {
    // `../shared` next to the repository (or next to the worktrees' folder)
    let candidates: Vec<PathBuf> = match std::env::var_os("SIGHTLINE_SHARED") {
        Some(s) => vec![PathBuf::from(s)],
        None => vec![
            repo_root().join("../shared"),
            repo_root().join("../../shared"),
        ],
    };
    let found = candidates
        .iter()
        .map(|s| s.join("eval/peers/gen.py"))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!(
            "the load generator gen.py is not in {candidates:?}/eval/peers (set SIGHTLINE_SHARED)"
        )
    })
}

// ---------------------------------------------------------------- data

/// A cgroup v2 container of a pod plus its log directory, the way kubelet lays them out.
fn fake_pod(root: &Path, ns: &str, pod: &str, uid: &str, container: &str, id: &str, pid: u32) {
    let cpu_usec = 1_000_000u64;
    let dir = root.join(format!("cgroup/kubepods/pod{uid}/{id}"));
    std::fs::create_dir_all(&dir).unwrap();
    let files = [
        ("cpu.stat", format!("usage_usec {cpu_usec}\nuser_usec {}\nsystem_usec {}\nnr_periods 100\nnr_throttled 5\nthrottled_usec 2000\n", cpu_usec / 2, cpu_usec / 2)),
        ("memory.current", "52428800\n".into()),
        ("memory.stat", "anon 20971520\nfile 10485760\ninactive_file 4194304\nactive_file 4194304\n".into()),
        ("memory.max", "268435456\n".into()),
        ("memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n".into()),
        ("io.stat", "8:0 rbytes=1048576 wbytes=2097152 rios=16 wios=32 dbytes=0 dios=0\n".into()),
        ("pids.current", "3\n".into()),
        // a process in its own network namespace: the agent reads the pod's network
        // counters through it
        ("cgroup.procs", format!("{pid}\n")),
    ];
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let logs = root.join(format!("log/pods/{ns}_{pod}_{uid}/{container}"));
    std::fs::create_dir_all(&logs).unwrap();
}

/// A child process killed (and reaped) when dropped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Appends CRI-format lines to a pod's container log.
fn write_pod_log(root: &Path, ns: &str, pod: &str, uid: &str, container: &str, lines: &[String]) {
    use std::io::Write;
    let path = root.join(format!("log/pods/{ns}_{pod}_{uid}/{container}/0.log"));
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for l in lines {
        writeln!(f, "{} stdout F {l}", rfc3339(now_ns())).unwrap();
    }
}

/// `ns` since the epoch as RFC 3339 UTC with nanoseconds (the CRI log time format).
fn rfc3339(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // civil_from_days (Howard Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60,
        ns.rem_euclid(1_000_000_000)
    )
}

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

/// Server spans of `checkout` and `cart` (some errors), ending now.
fn spans(round: u8) -> ExportTraceServiceRequest {
    let now = now_ns();
    let resource_spans = ["checkout", "cart"]
        .iter()
        .enumerate()
        .map(|(si, service)| {
            let spans = (0..20u8)
                .map(|i| Span {
                    trace_id: [round, si as u8 + 1, i]
                        .into_iter()
                        .chain([7; 13])
                        .collect(),
                    span_id: vec![round, si as u8 + 1, i, 9, 9, 9, 9, 1],
                    name: if i % 2 == 0 {
                        "GET /items".into()
                    } else {
                        "POST /order".into()
                    },
                    kind: span::SpanKind::Server as i32,
                    start_time_unix_nano: (now - (i as i64 + 1) * 7_000_000) as u64,
                    end_time_unix_nano: now as u64,
                    status: Some(Status {
                        code: i32::from(if i % 5 == 0 {
                            status::StatusCode::Error
                        } else {
                            status::StatusCode::Ok
                        }),
                        message: String::new(),
                    }),
                    ..Default::default()
                })
                .collect();
            ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", service)],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }
        })
        .collect();
    ExportTraceServiceRequest { resource_spans }
}

/// Generates a small gen.py data set ending now and remote-writes it.
fn load_generator_data(http: &Http, dir: &Path) {
    let out = dir.join("gen");
    let status = Command::new(python())
        .arg(gen_py())
        .args(["--out"])
        .arg(&out)
        .args([
            "--hosts",
            "2",
            "--containers",
            "3",
            "--span-h",
            "1",
            "--shards",
            "2",
        ])
        .status()
        .unwrap_or_else(|e| panic!("run {} {}: {e}", python().display(), gen_py().display()));
    assert!(
        status.success(),
        "gen.py failed (needs cramjam: {} -m pip install -r tests/python/requirements.txt)",
        python().display()
    );
    let bin = std::fs::read(out.join("remote_write.bin")).unwrap();
    let mut at = 0;
    let mut records = 0;
    while at + 16 <= bin.len() {
        let len = u32::from_le_bytes(bin[at..at + 4].try_into().unwrap()) as usize;
        let body = &bin[at + 16..at + 16 + len];
        let reply = push_body(http, body).unwrap();
        assert!(
            reply.status < 300,
            "remote write: {} {}",
            reply.status,
            reply.body
        );
        at += 16 + len;
        records += 1;
    }
    assert!(records > 0, "gen.py wrote no records");
}

// ---------------------------------------------------------------- dashboards

struct Target {
    datasource: String,
    expr: String,
    instant: bool,
}

struct Panel {
    dashboard: String,
    title: String,
    targets: Vec<Target>,
}

fn load_dashboards() -> Vec<(String, Value)> {
    let dir = repo_root().join("dashboards/json");
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let v: Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p.file_name().unwrap().to_string_lossy().into_owned(), v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(
        out.len() >= 6,
        "expected at least 6 dashboards in {}",
        dir.display()
    );
    out
}

fn panels_of(name: &str, d: &Value) -> Vec<Panel> {
    let mut all = Vec::new();
    let mut stack: Vec<&Value> = d["panels"].as_array().unwrap().iter().collect();
    while let Some(p) = stack.pop() {
        if let Some(inner) = p["panels"].as_array() {
            stack.extend(inner);
        }
        if p["type"] == "row" {
            continue;
        }
        let title = p["title"].as_str().unwrap_or_default().to_string();
        assert!(
            p["description"]
                .as_str()
                .is_some_and(|s| !s.trim().is_empty()),
            "{name}: panel {title:?} has no description"
        );
        let targets: Vec<Target> = p["targets"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: panel {title:?} has no targets"))
            .iter()
            .map(|t| {
                let ds = t["datasource"]["type"]
                    .as_str()
                    .or(p["datasource"]["type"].as_str())
                    .unwrap_or_else(|| panic!("{name}: {title:?}: target without datasource"))
                    .to_string();
                let expr = t["expr"]
                    .as_str()
                    .or(t["query"].as_str())
                    .unwrap_or_else(|| panic!("{name}: {title:?}: target without expr/query"))
                    .to_string();
                let instant = t["instant"] == true || t["queryType"] == "instant";
                Target {
                    datasource: ds,
                    expr,
                    instant,
                }
            })
            .collect();
        assert!(
            !targets.is_empty(),
            "{name}: panel {title:?} has no targets"
        );
        all.push(Panel {
            dashboard: name.to_string(),
            title,
            targets,
        });
    }
    all
}

/// Grafana's variable interpolation for our variables and the built-in intervals.
fn interpolate(expr: &str, vars: &BTreeMap<String, String>) -> String {
    let rate_interval = (INTERVAL_S + 15).max(4 * 15);
    let mut all: Vec<(String, String)> = vec![
        ("__rate_interval".into(), format!("{rate_interval}s")),
        ("__interval".into(), format!("{INTERVAL_S}s")),
        ("__range".into(), format!("{RANGE_S}s")),
    ];
    all.extend(vars.iter().map(|(k, v)| (k.clone(), v.clone())));
    // longest names first so $pod does not eat $pod_name
    all.sort_by_key(|x| std::cmp::Reverse(x.0.len()));
    let mut out = expr.to_string();
    for (k, v) in &all {
        out = out
            .replace(&format!("${{{k}}}"), v)
            .replace(&format!("${k}"), v);
    }
    assert!(!out.contains('$'), "uninterpolated variable in {out}");
    out
}

/// Resolves `label_values(...)` of a query variable against the collector.
fn variable_values(http: &Http, var: &Value, vars: &BTreeMap<String, String>) -> Vec<String> {
    let ds = var["datasource"]["type"].as_str().unwrap_or("prometheus");
    let q = var["query"]["query"]
        .as_str()
        .or(var["query"].as_str())
        .or(var["definition"].as_str())
        .unwrap();
    let q = interpolate(q, vars);
    let inner = q
        .strip_prefix("label_values(")
        .and_then(|s| s.strip_suffix(')'))
        .unwrap_or_else(|| panic!("unsupported variable query {q}"));
    let (selector, label) = match inner.rfind(',') {
        Some(i) => (Some(inner[..i].trim()), inner[i + 1..].trim()),
        None => (None, inner.trim()),
    };
    let (s, e) = (
        (now_ms() / 1000 - RANGE_S).to_string(),
        (now_ms() / 1000).to_string(),
    );
    let (path, mut query) = match ds {
        "loki" => (
            format!("/loki/api/v1/label/{label}/values"),
            vec![
                ("start", format!("{s}000000000")),
                ("end", format!("{e}000000000")),
            ],
        ),
        _ => (
            format!("/api/v1/label/{label}/values"),
            vec![("start", s), ("end", e)],
        ),
    };
    if let Some(sel) = selector {
        query.push((
            if ds == "loki" { "query" } else { "match[]" },
            sel.to_string(),
        ));
    }
    let q: Vec<(&str, &str)> = query.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let reply = http.get_ok(&path, &q);
    assert_eq!(
        reply.status, 200,
        "variable {}: GET {path} {q:?}: {}",
        var["name"], reply.body
    );
    let json = reply.json();
    json["data"]
        .as_array()
        .unwrap_or_else(|| panic!("variable {}: {}", var["name"], reply.body))
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

/// Metric names a PromQL expression selects (`name{...}`; our dashboards always
/// write selectors with braces).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = expr.as_bytes();
    let mut in_str = false;
    let mut start = None;
    for (i, &c) in bytes.iter().enumerate() {
        if c == b'"' {
            in_str = !in_str;
            start = None;
            continue;
        }
        if in_str {
            continue;
        }
        let word = c.is_ascii_alphanumeric() || c == b'_' || c == b':';
        match (word, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                if c == b'{' && !bytes[s].is_ascii_digit() {
                    out.insert(expr[s..i].to_string());
                }
                start = None;
            }
            _ => {}
        }
    }
    out
}

struct Outcome {
    series: usize,
}

fn run_target(http: &Http, t: &Target, expr: &str) -> Result<Outcome, String> {
    let end = now_ms() / 1000;
    let start = end - RANGE_S;
    let (s, e, step) = (start.to_string(), end.to_string(), INTERVAL_S.to_string());
    // Loki takes nanoseconds, as Grafana sends them
    let (s_ns, e_ns) = (format!("{s}000000000"), format!("{e}000000000"));
    let (path, query): (&str, Vec<(&str, &str)>) = match (t.datasource.as_str(), t.instant) {
        ("prometheus", true) => ("/api/v1/query", vec![("query", expr), ("time", &e)]),
        ("prometheus", false) => (
            "/api/v1/query_range",
            vec![("query", expr), ("start", &s), ("end", &e), ("step", &step)],
        ),
        ("loki", true) => (
            "/loki/api/v1/query",
            vec![("query", expr), ("time", &e_ns), ("limit", "100")],
        ),
        ("loki", false) => (
            "/loki/api/v1/query_range",
            vec![
                ("query", expr),
                ("start", &s_ns),
                ("end", &e_ns),
                ("step", &step),
                ("limit", "100"),
            ],
        ),
        ("tempo", _) => (
            "/api/search",
            vec![("q", expr), ("start", &s), ("end", &e), ("limit", "20")],
        ),
        (other, _) => return Err(format!("unsupported datasource {other}")),
    };
    let reply = http.get(path, &query, &[]).map_err(|e| e.to_string())?;
    if reply.status != 200 {
        return Err(format!("HTTP {}: {}", reply.status, reply.body));
    }
    let json: Value =
        serde_json::from_str(&reply.body).map_err(|e| format!("{e}: {}", reply.body))?;
    let series = if t.datasource == "tempo" {
        json["traces"]
            .as_array()
            .map(Vec::len)
            .ok_or(format!("no traces array: {}", reply.body))?
    } else {
        if json["status"] != "success" {
            return Err(reply.body);
        }
        json["data"]["result"]
            .as_array()
            .map(Vec::len)
            .ok_or(format!("no result array: {}", reply.body))?
    };
    Ok(Outcome { series })
}

/// The names (of `names`) with no series in the collector over the test range.
fn absent_metrics(http: &Http, names: &BTreeSet<String>) -> Vec<String> {
    let end = (now_ms() / 1000) as f64;
    names
        .iter()
        .filter(|n| {
            http.series(&format!("{{__name__=\"{n}\"}}"), end - RANGE_S as f64, end)
                .is_empty()
        })
        .cloned()
        .collect()
}

#[test]
fn dashboards_every_panel_runs_and_shows_data() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // agent /metrics on a known port so self-monitoring can scrape it
    let agent_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = Collector::start_with(CollectorOptions {
        config_yaml: Some(format!(
            "self_monitoring:\n  interval: 1s\n  scrape:\n    - job: sightline-agent\n      url: http://127.0.0.1:{agent_port}/metrics\n"
        )),
        ..Default::default()
    });
    let http = c.http();
    // one bad request early (so its counter has history), for the "Rejected" panel
    let reply = push_body(&http, b"not snappy").unwrap();
    assert!((400..500).contains(&reply.status), "{}", reply.body);

    // Kubernetes-shaped containers and pod logs for the agent
    std::fs::create_dir_all(root.join("cgroup")).unwrap();
    std::fs::write(
        root.join("cgroup/cgroup.controllers"),
        "cpu memory io pids\n",
    )
    .unwrap();
    let pods = [
        (
            "shop",
            "web-7d9f-abcde",
            "11111111-2222-3333-4444-555555555555",
            "web",
            1u64,
        ),
        (
            "payments",
            "api-0",
            "66666666-7777-8888-9999-000000000000",
            "api",
            2u64,
        ),
    ];
    // a real process in its own network namespace stands in for the pods' processes
    let mut netns = KillOnDrop(
        Command::new("unshare")
            .args(["--net", "sleep", "600"])
            .spawn()
            .expect("spawn `unshare --net sleep 600` (util-linux, needs root)"),
    );
    let pid = netns.0.id();
    wait_for("the unshare'd process", Duration::from_secs(10), || {
        let ns = std::fs::read_link(format!("/proc/{pid}/ns/net")).ok()?;
        let me = std::fs::read_link("/proc/self/ns/net").ok()?;
        (ns != me).then_some(())
    });
    assert!(
        netns.0.try_wait().unwrap().is_none(),
        "unshare --net exited"
    );
    for (ns, pod, uid, container, n) in pods {
        let id = format!("{n:064x}");
        fake_pod(root, ns, pod, uid, container, &id, pid);
    }
    let agent_data = root.join("agent-data");
    let http_addr = format!("127.0.0.1:{agent_port}");
    let cgroup_root = root.join("cgroup").to_string_lossy().into_owned();
    let pods_root = root.join("log/pods").to_string_lossy().into_owned();
    let data_dir = agent_data.to_string_lossy().into_owned();
    let mut agent = Agent::start(
        &c.grpc_endpoint(),
        "1s",
        &[
            "--http-addr",
            &http_addr,
            "--cgroup-root",
            &cgroup_root,
            "--pod-logs-root",
            &pods_root,
            "--data-dir",
            &data_dir,
        ],
    );
    for round in 0..3 {
        for (ns, pod, uid, container, _) in pods {
            let lines: Vec<String> = (0..5)
                .map(|i| match i {
                    0 => format!("level=error msg=\"payment declined\" order={round}{i}"),
                    _ => format!(
                        "level=info msg=\"request served\" path=/items/{i} ms={}",
                        10 + i
                    ),
                })
                .collect();
            write_pod_log(root, ns, pod, uid, container, &lines);
        }
        export_traces(&c.grpc_endpoint(), spans(round), &[]).unwrap();
        std::thread::sleep(Duration::from_millis(1500));
    }
    load_generator_data(&http, root);

    // wait until every kind of data is queryable, and rate() has two samples
    let now = || now_ms() as f64 / 1000.0;
    for (what, q) in [
        ("host metrics", "count(system_cpu_time_seconds_total) > 0"),
        (
            "container metrics",
            "count(container_cpu_time_seconds_total{k8s_namespace_name=\"shop\"}) > 0",
        ),
        (
            "span metrics",
            "count(rate(traces_spanmetrics_calls_total{service=\"checkout\"}[1m])) > 0",
        ),
        (
            "collector self-metrics",
            "count(rate(sightline_collector_requests_total{job=\"sightline-collector\"}[1m])) > 0",
        ),
        (
            "agent self-metrics",
            "count(rate(sightline_agent_exported_points_total{job=\"sightline-agent\"}[1m])) > 0",
        ),
        (
            "rejections in self-metrics",
            "count(rate(sightline_collector_rejected_total[1m])) > 0",
        ),
        (
            "host metric rates",
            "count(rate(system_network_io_bytes_total[1m])) > 0",
        ),
    ] {
        wait_for(what, Duration::from_secs(90), || {
            agent.process.assert_running();
            (!http.query(q, now()).is_empty()).then_some(())
        });
    }
    wait_for("pod logs", Duration::from_secs(60), || {
        let r = http.get_ok(
            "/loki/api/v1/query_range",
            &[("query", "{k8s_namespace_name=\"shop\"}"), ("limit", "10")],
        );
        (r.status == 200 && r.body.contains("payment declined")).then_some(())
    });

    // the counters of span metrics and self-monitoring moved
    let scrape = sightline_e2e::metrics_text::Scrape::fetch(&http);
    assert_eq!(scrape.sum("sightline_spanmetrics_spans_total", &[]), 120.0);
    assert_eq!(scrape.sum("sightline_spanmetrics_overflow_total", &[]), 0.0);
    assert!(scrape.sum("sightline_spanmetrics_series", &[]) >= 4.0);
    assert!(scrape.sum("sightline_self_monitoring_samples_total", &[]) > 0.0);

    let mut failures = Vec::new();
    let mut checked = 0;
    for (name, d) in load_dashboards() {
        assert_eq!(
            d["schemaVersion"].as_i64(),
            Some(39),
            "{name}: schemaVersion"
        );
        let panels = panels_of(&name, &d);
        let vars_json = d["templating"]["list"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        // pass 1: every variable at All; pass 2: at its first concrete value
        for pass in 0..2 {
            let mut vars = BTreeMap::new();
            for v in &vars_json {
                let vname = v["name"].as_str().unwrap().to_string();
                let value = match v["type"].as_str() {
                    Some("query") => {
                        let values = variable_values(&http, v, &vars);
                        let all = v["allValue"].as_str().unwrap_or(".*").to_string();
                        if pass == 0 || values.is_empty() {
                            all
                        } else {
                            values[0].clone()
                        }
                    }
                    _ => v["current"]["value"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                };
                vars.insert(vname, value);
            }
            for p in &panels {
                for t in &p.targets {
                    let expr = interpolate(&t.expr, &vars);
                    checked += 1;
                    match run_target(&http, t, &expr) {
                        Err(e) => failures.push(format!(
                            "{} / {} [{}]: {expr}: {e}",
                            p.dashboard, p.title, t.datasource
                        )),
                        Ok(o) if o.series == 0 => {
                            let names = if t.datasource == "prometheus" {
                                metric_names(&expr)
                            } else {
                                BTreeSet::new()
                            };
                            let absent = absent_metrics(&http, &names);
                            let excused = !absent.is_empty()
                                && absent
                                    .iter()
                                    .all(|a| MAY_BE_ABSENT.iter().any(|(n, _)| n == a));
                            if !excused {
                                failures.push(format!(
                                    "{} / {} [{}] (vars {vars:?}): empty result for {expr}{}",
                                    p.dashboard,
                                    p.title,
                                    t.datasource,
                                    if absent.is_empty() {
                                        String::new()
                                    } else {
                                        format!(" (absent metrics: {absent:?})")
                                    }
                                ));
                            }
                        }
                        Ok(_) => {}
                    }
                }
            }
        }
    }
    println!("{checked} panel queries checked, {} failed", failures.len());
    assert!(
        failures.is_empty(),
        "{} failing panel queries:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn dashboards_test_helper_rfc3339_formats_utc() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000000Z");
    assert_eq!(
        rfc3339(1_700_000_000_123_456_789),
        "2023-11-14T22:13:20.123456789Z"
    );
    assert_eq!(
        rfc3339(951_782_400_000_000_000),
        "2000-02-29T00:00:00.000000000Z"
    );
}

#[test]
fn dashboards_test_helper_finds_metric_names() {
    let names = metric_names(
        r#"1 - sum by (x) (rate(a_b_total{s="idle{x}"}[1m])) / histogram_quantile(0.9, c:d{}) + e_f{g=~"h"}"#,
    );
    let want: BTreeSet<String> = ["a_b_total", "c:d", "e_f"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(names, want);
}
