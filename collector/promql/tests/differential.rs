//! Differential test: our engine against Prometheus 2.x on the same data.
//!
//! A deterministic data set (counters with resets, gauges, classic histograms, gaps,
//! series that start and stop, staleness markers, NaN values, jittered timestamps) is
//! pushed into a fresh `prometheus` (Debian package) over remote write, then every query
//! of `golden/queries.txt` runs against Prometheus' HTTP API and against
//! [`MemQueryable`] holding the same series. Results must agree (same result type,
//! series, labels, timestamps; values within 1e-9 relative; NaN = NaN; errors on both
//! sides with the same `errorType`). Prometheus' answers are kept in
//! `golden/expected.jsonl`, one line per query (a changed answer is a reviewed diff);
//! the engine is compared with them first, then with the live Prometheus, which is
//! required: without `/usr/bin/prometheus` the test fails. `UPDATE_GOLDEN=1` rewrites
//! the golden answers from the live Prometheus.

#![allow(clippy::unwrap_used)] // tests may unwrap (STYLE.md); helpers here are test code too

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use prost::Message;
use serde_json::{json, Value};
use sightline_promql::{
    instant_query, range_query, Labels, MemQueryable, QueryOptions, Sample, Series,
};

/// Start of the data set: 2023-11-14T22:00:00Z, on an hour boundary.
const T0: i64 = 1_699_999_200_000;
const STALE: u64 = 0x7ff0_0000_0000_0002;

// ---------- data set ----------

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn series(pairs: &[(&str, &str)], samples: Vec<(i64, f64)>) -> Series {
    Series {
        labels: Labels::from_pairs(pairs.iter().copied()),
        samples: samples
            .into_iter()
            .map(|(t, v)| Sample {
                timestamp_ms: T0 + t,
                value: v,
            })
            .collect(),
    }
}

fn stale() -> f64 {
    f64::from_bits(STALE)
}

/// Grid of offsets (ms) every 15 s from `from_s` to `to_s` inclusive.
fn grid(from_s: i64, to_s: i64) -> Vec<i64> {
    (from_s / 15..=to_s / 15).map(|i| i * 15_000).collect()
}

fn dataset() -> Vec<Series> {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = Vec::new();
    // Counters with occasional resets.
    for job in ["api", "web"] {
        for inst in ["a", "b"] {
            for code in ["200", "500"] {
                let mut v = r.below(100) as f64;
                let resets = inst == "b" && code == "200";
                let mut s = Vec::new();
                for (i, t) in grid(0, 3600).into_iter().enumerate() {
                    if resets && (i == 80 || i == 170) {
                        v = r.below(5) as f64;
                    } else {
                        v += if code == "200" {
                            r.below(20) as f64
                        } else {
                            r.below(3) as f64
                        };
                    }
                    s.push((t, v));
                }
                out.push(series(
                    &[
                        ("__name__", "http_requests_total"),
                        ("job", job),
                        ("instance", inst),
                        ("code", code),
                    ],
                    s,
                ));
            }
        }
    }
    // Gauges; instance c has a 10-minute gap.
    for inst in ["a", "b", "c"] {
        let mut v = 1.0e9 + r.below(1_000_000) as f64;
        let mut s = Vec::new();
        for t in grid(0, 3600) {
            v += (r.unit() - 0.5) * 1.0e6;
            if inst == "c" && (1_200_000..1_800_000).contains(&t) {
                continue;
            }
            s.push((t, (v * 100.0).round() / 100.0));
        }
        out.push(series(
            &[("__name__", "node_memory_free_bytes"), ("instance", inst)],
            s,
        ));
    }
    // Counters with fractional increments and jittered timestamps.
    for inst in ["a", "b"] {
        for mode in ["idle", "user"] {
            let mut v = 1000.0 * r.unit();
            let mut s = Vec::new();
            for t in grid(0, 3600) {
                v += r.unit() * if mode == "idle" { 14.0 } else { 1.5 };
                let jitter = r.below(3000) as i64 - 1500;
                s.push(((t + jitter).max(0), v));
            }
            out.push(series(
                &[
                    ("__name__", "node_cpu_seconds_total"),
                    ("instance", inst),
                    ("mode", mode),
                ],
                s,
            ));
        }
    }
    // Classic histograms with _sum and _count.
    let bounds = ["0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"];
    for job in ["api", "web"] {
        let mut counts = [0.0f64; 7];
        let mut sum = 0.0;
        let mut per_le: Vec<Vec<(i64, f64)>> = vec![Vec::new(); 7];
        let mut sums = Vec::new();
        let mut cnts = Vec::new();
        for t in grid(0, 3600) {
            for _ in 0..r.below(30) {
                let obs = r.unit() * r.unit() * 3.0;
                sum += obs;
                for (i, b) in [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, f64::INFINITY]
                    .iter()
                    .enumerate()
                {
                    if obs <= *b {
                        counts[i] += 1.0;
                    }
                }
            }
            for i in 0..7 {
                per_le[i].push((t, counts[i]));
            }
            sums.push((t, sum));
            cnts.push((t, counts[6]));
        }
        for (i, le) in bounds.iter().enumerate() {
            out.push(series(
                &[
                    ("__name__", "request_duration_seconds_bucket"),
                    ("job", job),
                    ("le", le),
                ],
                per_le[i].clone(),
            ));
        }
        out.push(series(
            &[("__name__", "request_duration_seconds_sum"), ("job", job)],
            sums,
        ));
        out.push(series(
            &[("__name__", "request_duration_seconds_count"), ("job", job)],
            cnts,
        ));
    }
    // Gauges around zero; s3 has NaN values.
    for sensor in ["s1", "s2", "s3", "s4"] {
        let mut v = 20.0 * r.unit() - 5.0;
        let mut s = Vec::new();
        for (i, t) in grid(0, 3600).into_iter().enumerate() {
            v += (r.unit() - 0.5) * 2.0;
            let val = if sensor == "s3" && i % 17 == 5 {
                f64::NAN
            } else {
                (v * 10.0).round() / 10.0
            };
            s.push((t, val));
        }
        out.push(series(
            &[("__name__", "temperature_celsius"), ("sensor", sensor)],
            s,
        ));
    }
    // A series that starts late and ends with a staleness marker.
    let mut s: Vec<(i64, f64)> = grid(1500, 2700)
        .into_iter()
        .map(|t| (t, (t / 60_000) as f64))
        .collect();
    s.push((2_715_000, stale()));
    out.push(series(
        &[("__name__", "batch_last_success"), ("job", "batch")],
        s,
    ));
    // A series that goes stale twice and comes back.
    let mut s = Vec::new();
    for t in grid(0, 3600) {
        let ts = t / 1000;
        if (1000..1300).contains(&ts) || (2500..2600).contains(&ts) {
            if ts == 1005 || ts == 2505 {
                s.push((t, stale()));
            }
            continue;
        }
        s.push((t, (ts % 7) as f64));
    }
    out.push(series(&[("__name__", "flappy"), ("instance", "f")], s));
    // up: 1/0 values.
    for (job, inst) in [("api", "a"), ("api", "b"), ("web", "a"), ("web", "b")] {
        let s = grid(0, 3600)
            .into_iter()
            .map(|t| {
                (
                    t,
                    if inst == "b" && job == "web" && (1_700_000..2_000_000).contains(&t) {
                        0.0
                    } else {
                        1.0
                    },
                )
            })
            .collect();
        out.push(series(
            &[("__name__", "up"), ("job", job), ("instance", inst)],
            s,
        ));
    }
    // Same labels under different names, for name-dropping collisions.
    for (name, k) in [("metric_a", 1.0), ("metric_b", 2.0)] {
        let s = grid(0, 3600)
            .into_iter()
            .map(|t| (t, k * (t / 15_000) as f64))
            .collect();
        out.push(series(&[("__name__", name), ("x", "1")], s));
    }
    // Info metric for group_left joins.
    for (inst, ver) in [("a", "1.0"), ("b", "1.1")] {
        let s = grid(0, 3600).into_iter().map(|t| (t, 1.0)).collect();
        out.push(series(
            &[
                ("__name__", "build_info"),
                ("instance", inst),
                ("version", ver),
            ],
            s,
        ));
    }
    // Small integers with ties, for topk/bottomk/count_values.
    for q in ["q1", "q2", "q3", "q4", "q5"] {
        let s = grid(0, 3600)
            .into_iter()
            .map(|t| (t, (r.below(4) * 5) as f64))
            .collect();
        out.push(series(&[("__name__", "queue_length"), ("queue", q)], s));
    }
    // A sparse gauge: one sample every 2 minutes, large values.
    let s = (0..=30)
        .map(|i| (i * 120_000, 1.0e15 + (i * i) as f64 * 12.5))
        .collect();
    out.push(series(&[("__name__", "sparse_gauge"), ("id", "1")], s));
    // Infinities.
    let s = grid(0, 3600)
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            (
                t,
                if i % 40 == 7 {
                    f64::INFINITY
                } else if i % 40 == 23 {
                    f64::NEG_INFINITY
                } else {
                    i as f64
                },
            )
        })
        .collect();
    out.push(series(&[("__name__", "weird_values"), ("kind", "inf")], s));
    out
}

// ---------- Prometheus process ----------

struct Prometheus {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        // Stop exactly the process we started.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

fn start_prometheus(bin: &Path) -> Prometheus {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(&cfg, "global:\n  scrape_interval: 15s\n").unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let child = Command::new(bin)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--web.enable-remote-write-receiver")
        .arg("--enable-feature=promql-negative-offset")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let p = Prometheus {
        child,
        base: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = agent().get(&format!("{}/-/ready", p.base)).call() {
            if r.status() == 200 {
                break;
            }
        }
        assert!(Instant::now() < deadline, "prometheus did not become ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    p
}

fn push(p: &Prometheus, data: &[Series]) {
    use sightline_proto::prometheus as pb;
    let req = pb::WriteRequest {
        timeseries: data
            .iter()
            .map(|s| pb::TimeSeries {
                labels: s
                    .labels
                    .iter()
                    .map(|l| pb::Label {
                        name: l.name.clone(),
                        value: l.value.clone(),
                    })
                    .collect(),
                samples: s
                    .samples
                    .iter()
                    .map(|x| pb::Sample {
                        value: x.value,
                        timestamp: x.timestamp_ms,
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let body = snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap();
    let mut resp = agent()
        .post(&format!("{}/api/v1/write", p.base))
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "snappy")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .send(&body[..])
        .unwrap();
    let status = resp.status();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    assert!(status.is_success(), "remote write failed: {status} {text}");
}

// ---------- corpus ----------

#[derive(Clone, Debug)]
enum Kind {
    Instant(i64),
    Range(i64, i64, i64),
}

#[derive(Clone, Debug)]
struct Query {
    line: String,
    kind: Kind,
    expr: String,
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn secs(s: &str) -> i64 {
    (s.parse::<f64>().unwrap() * 1000.0).round() as i64
}

fn load_corpus() -> Vec<Query> {
    let text = std::fs::read_to_string(golden_dir().join("queries.txt")).unwrap();
    let mut out = Vec::new();
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let (kind, rest) = l.split_once(' ').unwrap();
        let (kind, expr) = match kind {
            "instant" => {
                let (t, e) = rest.split_once(' ').unwrap();
                (Kind::Instant(T0 + secs(t)), e)
            }
            "range" => {
                let mut p = rest.splitn(4, ' ');
                let (s, e, st) = (p.next().unwrap(), p.next().unwrap(), p.next().unwrap());
                (
                    Kind::Range(T0 + secs(s), T0 + secs(e), secs(st)),
                    p.next().unwrap(),
                )
            }
            other => panic!("bad corpus line kind {other}: {l}"),
        };
        out.push(Query {
            line: l.to_string(),
            kind,
            expr: expr.to_string(),
        });
    }
    out
}

fn fmt_ts(ms: i64) -> String {
    format!("{}", ms as f64 / 1000.0)
}

/// Prometheus' answer as `{"status":..,"data":..}` or `{"status":"error","errorType":..}`.
fn ask_prometheus(p: &Prometheus, q: &Query) -> Value {
    let a = agent();
    let mut resp = match q.kind {
        Kind::Instant(t) => a
            .get(&format!("{}/api/v1/query", p.base))
            .query("query", &q.expr)
            .query("time", fmt_ts(t))
            .call(),
        Kind::Range(s, e, st) => a
            .get(&format!("{}/api/v1/query_range", p.base))
            .query("query", &q.expr)
            .query("start", fmt_ts(s))
            .query("end", fmt_ts(e))
            .query("step", fmt_ts(st))
            .call(),
    }
    .unwrap();
    let v: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
    normalize_answer(v)
}

fn normalize_answer(v: Value) -> Value {
    if v["status"] == "success" {
        json!({"status": "success", "data": v["data"].clone()})
    } else {
        json!({"status": "error", "errorType": v["errorType"].clone(), "error": v["error"].clone()})
    }
}

fn ask_engine(data: &MemQueryable, q: &Query) -> Value {
    let opts = QueryOptions::default();
    let r = match q.kind {
        Kind::Instant(t) => instant_query(data, &q.expr, t, &opts),
        Kind::Range(s, e, st) => range_query(data, &q.expr, s, e, st, &opts),
    };
    match r {
        Ok(r) => json!({"status": "success", "data": r.to_prometheus_json()}),
        Err(e) => {
            json!({"status": "error", "errorType": e.prometheus_error().0, "error": e.to_string()})
        }
    }
}

// ---------- comparison ----------

fn parse_val(v: &Value) -> f64 {
    match v.as_str().unwrap_or("missing") {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        s => s.parse().unwrap_or(f64::MIN_POSITIVE),
    }
}

fn close(a: f64, b: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

fn cmp_point(a: &Value, b: &Value) -> Result<(), String> {
    if a[0].as_f64() != b[0].as_f64() {
        return Err(format!("timestamp {} vs {}", a[0], b[0]));
    }
    let (x, y) = (parse_val(&a[1]), parse_val(&b[1]));
    if !close(x, y) {
        return Err(format!("value at {}: {} vs {}", a[0], a[1], b[1]));
    }
    Ok(())
}

fn keyed(result: &Value) -> BTreeMap<String, Value> {
    let mut m = BTreeMap::new();
    for s in result.as_array().unwrap() {
        m.insert(s["metric"].to_string(), s.clone());
    }
    m
}

/// Ok when `ours` matches `theirs` (Prometheus).
fn compare(q: &Query, ours: &Value, theirs: &Value) -> Result<(), String> {
    if ours["status"] != theirs["status"] {
        return Err(format!("status: ours {} theirs {}", ours, theirs));
    }
    if theirs["status"] == "error" {
        if ours["errorType"] != theirs["errorType"] {
            return Err(format!("errorType: ours {} theirs {}", ours, theirs));
        }
        return Ok(());
    }
    let (a, b) = (&ours["data"], &theirs["data"]);
    if a["resultType"] != b["resultType"] {
        return Err(format!(
            "resultType {} vs {}",
            a["resultType"], b["resultType"]
        ));
    }
    match b["resultType"].as_str().unwrap() {
        "scalar" => cmp_point(&a["result"], &b["result"]),
        "string" => (a["result"] == b["result"])
            .then_some(())
            .ok_or_else(|| "string differs".into()),
        "vector" | "matrix" => {
            let ordered = q.expr.trim_start().starts_with("sort") && b["resultType"] == "vector";
            let (ra, rb) = (
                a["result"].as_array().unwrap(),
                b["result"].as_array().unwrap(),
            );
            if ra.len() != rb.len() {
                return Err(format!(
                    "{} series vs {}: ours {} theirs {}",
                    ra.len(),
                    rb.len(),
                    a,
                    b
                ));
            }
            if ordered {
                // sort() orders by value; ties may come in any order, so compare values in order.
                for (x, y) in ra.iter().zip(rb) {
                    cmp_point(&x["value"], &y["value"])?;
                }
            }
            let (ka, kb) = (keyed(&a["result"]), keyed(&b["result"]));
            for (k, sb) in &kb {
                let Some(sa) = ka.get(k) else {
                    return Err(format!("missing series {k}: ours {} theirs {}", a, b));
                };
                if b["resultType"] == "vector" {
                    cmp_point(&sa["value"], &sb["value"]).map_err(|e| format!("{k}: {e}"))?;
                } else {
                    let (pa, pb) = (
                        sa["values"].as_array().unwrap(),
                        sb["values"].as_array().unwrap(),
                    );
                    if pa.len() != pb.len() {
                        return Err(format!(
                            "{k}: {} points vs {}: ours {} theirs {}",
                            pa.len(),
                            pb.len(),
                            sa,
                            sb
                        ));
                    }
                    for (x, y) in pa.iter().zip(pb) {
                        cmp_point(x, y).map_err(|e| format!("{k}: {e}"))?;
                    }
                }
            }
            Ok(())
        }
        other => Err(format!("unknown resultType {other}")),
    }
}

// ---------- the test ----------

#[test]
fn engine_matches_prometheus() {
    let corpus = load_corpus();
    assert!(corpus.len() >= 300, "corpus has {} queries", corpus.len());
    let data = dataset();
    let mem = MemQueryable::new(data.clone());
    let golden_path = golden_dir().join("expected.jsonl");
    let update = std::env::var("UPDATE_GOLDEN").is_ok();
    let ours: Vec<Value> = corpus.iter().map(|q| ask_engine(&mem, q)).collect();

    // 1. Against the reviewed golden answers (always).
    let mut golden_failures = Vec::new();
    if !update {
        let golden: Vec<Value> = std::fs::read_to_string(&golden_path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        for (i, q) in corpus.iter().enumerate() {
            match golden.iter().find(|g| g["query"] == q.line.as_str()) {
                Some(g) => {
                    if let Err(e) = compare(q, &ours[i], &g["answer"]) {
                        golden_failures.push(format!("[{i}] {}\n    {}", q.line, truncate(&e)));
                    }
                }
                None => golden_failures.push(format!(
                    "[{i}] {}: no golden answer (run with UPDATE_GOLDEN=1)",
                    q.line
                )),
            }
        }
        println!(
            "{}/{} queries identical to the golden answers",
            corpus.len() - golden_failures.len(),
            corpus.len()
        );
        for f in &golden_failures {
            println!("GOLDEN MISMATCH {f}");
        }
    }

    // 2. Against a live Prometheus (required).
    let bin = Path::new("/usr/bin/prometheus");
    assert!(
        bin.exists() && golden_failures.is_empty(),
        "{} golden mismatches; Prometheus is the reference for this test, install it: apt-get install -y prometheus",
        golden_failures.len()
    );
    let prom = start_prometheus(bin);
    push(&prom, &data);
    let mut new_golden = Vec::new();
    let mut failures = Vec::new();
    for (i, q) in corpus.iter().enumerate() {
        let theirs = ask_prometheus(&prom, q);
        if let Err(e) = compare(q, &ours[i], &theirs) {
            failures.push(format!("[{i}] {}\n    {}", q.line, truncate(&e)));
        }
        new_golden.push(json!({"query": q.line, "answer": theirs}));
    }
    drop(prom);
    if update {
        let mut f = std::fs::File::create(&golden_path).unwrap();
        for g in &new_golden {
            writeln!(f, "{}", serde_json::to_string(g).unwrap()).unwrap();
        }
    }
    println!(
        "{}/{} queries identical to Prometheus",
        corpus.len() - failures.len(),
        corpus.len()
    );
    for f in &failures {
        println!("MISMATCH {f}");
    }
    assert!(
        failures.is_empty(),
        "{} of {} queries differ from Prometheus",
        failures.len(),
        corpus.len()
    );
}

fn truncate(s: &str) -> String {
    if s.chars().count() > 1500 {
        format!("{}...", s.chars().take(1500).collect::<String>())
    } else {
        s.to_string()
    }
}
