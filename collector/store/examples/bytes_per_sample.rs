//! Writes a realistic synthetic metrics data set through the store (WAL, memtables,
//! Parquet flush) and prints bytes per sample on disk, per column.
//!
//! Data: ~2,000 series scraped every 15 s for 6 h (≈ 2.9 M samples), shaped like
//! node_exporter + cAdvisor + application metrics: monotonic counters (requests, bytes,
//! CPU seconds with 2 decimals), gauges with few decimals (load, temperature,
//! percentages), byte-sized gauges (memory), constant gauges (up, info). Scrape
//! timestamps carry a small per-target jitter of a few ms, as real Prometheus scrapes do.
//!
//! `cargo run -p sightline-store --example bytes_per_sample [-- SERIES HOURS]`

use sightline_store::{Labels, ManualClock, Sample, Series, Store, StoreConfig, WriteBatch};
use std::sync::Arc;

/// Small deterministic PRNG (xorshift64*), so the data set is the same on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

enum Kind {
    /// Counter with integer increments around `rate` per scrape.
    Counter {
        rate: f64,
    },
    /// Counter in seconds with 2 decimals (cpu_seconds_total).
    SecondsCounter {
        rate: f64,
    },
    /// Gauge random walk with `decimals` digits, within [lo, hi].
    Gauge {
        decimals: i32,
        lo: f64,
        hi: f64,
        step: f64,
    },
    /// Memory-like byte gauge moving in 4 KiB pages.
    Bytes {
        base: f64,
    },
    Constant(f64),
}

struct Gen {
    labels: Labels,
    kind: Kind,
    value: f64,
    target: usize,
}

fn round(v: f64, d: i32) -> f64 {
    let p = 10f64.powi(d);
    (v * p).round() / p
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let n_series: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(2000);
    let hours: i64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(6);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let targets = 40;
    let mut gens = Vec::with_capacity(n_series);
    let metrics: &[(&str, u8)] = &[
        ("node_cpu_seconds_total", 0),
        ("http_requests_total", 1),
        ("node_network_receive_bytes_total", 2),
        ("node_memory_Active_bytes", 3),
        ("node_load1", 4),
        ("node_hwmon_temp_celsius", 5),
        ("container_cpu_usage_percent", 6),
        ("up", 7),
        ("process_open_fds", 8),
        ("http_request_duration_seconds_sum", 9),
    ];
    for i in 0..n_series {
        let target = i % targets;
        let (name, k) = metrics[(i / targets) % metrics.len()];
        let kind = match k {
            0 => Kind::SecondsCounter {
                rate: 0.5 + rng.unit() * 14.0,
            },
            1 => Kind::Counter {
                rate: 1.0 + rng.unit() * 200.0,
            },
            2 => Kind::Counter {
                rate: 1e4 + rng.unit() * 1e6,
            },
            3 => Kind::Bytes {
                base: 1e8 + rng.unit() * 4e9,
            },
            4 => Kind::Gauge {
                decimals: 2,
                lo: 0.0,
                hi: 16.0,
                step: 0.3,
            },
            5 => Kind::Gauge {
                decimals: 1,
                lo: 30.0,
                hi: 90.0,
                step: 0.5,
            },
            6 => Kind::Gauge {
                decimals: 2,
                lo: 0.0,
                hi: 100.0,
                step: 3.0,
            },
            7 => Kind::Constant(1.0),
            8 => Kind::Gauge {
                decimals: 0,
                lo: 10.0,
                hi: 2000.0,
                step: 3.0,
            },
            _ => Kind::SecondsCounter {
                rate: 0.01 + rng.unit() * 3.0,
            },
        };
        let value = match &kind {
            Kind::Gauge {
                lo, hi, decimals, ..
            } => round(lo + rng.unit() * (hi - lo), *decimals),
            Kind::Bytes { base } => (base / 4096.0).round() * 4096.0,
            Kind::Constant(v) => *v,
            _ => (rng.below(1_000_000)) as f64,
        };
        let labels = Labels::from_pairs([
            ("__name__", name.to_string()),
            (
                "instance",
                format!("10.0.{}.{}:9100", target / 256, target % 256),
            ),
            (
                "job",
                if k == 1 || k == 9 {
                    "api".to_string()
                } else {
                    "node".to_string()
                },
            ),
            ("series", format!("{}", i / (targets * metrics.len()))),
        ]);
        gens.push(Gen {
            labels,
            kind,
            value,
            target,
        });
    }

    // BPS_DATA_DIR keeps the data directory for inspection with other Parquet tools
    let tmp = tempfile::tempdir()?;
    let dir_path =
        std::env::var_os("BPS_DATA_DIR").map_or_else(|| tmp.path().to_path_buf(), Into::into);
    let start = 1_700_000_000_000i64 / 3_600_000 * 3_600_000;
    let clock = Arc::new(ManualClock::new(start));
    let mut config = StoreConfig::new(&dir_path);
    config.memtable_flush_bytes = usize::MAX;
    config.memtable_flush_interval = std::time::Duration::from_secs(365 * 24 * 3600);
    config.min_free_bytes = 0;
    let store = Store::open(config, clock.clone())?;
    let rt = tokio::runtime::Builder::new_current_thread().build()?;
    let scrapes = hours * 3600 / 15;
    let offsets: Vec<i64> = (0..targets).map(|_| rng.below(15_000) as i64).collect();
    let mut samples = 0u64;
    let mut kept: Vec<(Vec<i64>, Vec<f64>)> = vec![(Vec::new(), Vec::new()); gens.len()];
    let per_write = 4; // one write per minute of data
    let flush_minutes: Option<i64> = std::env::var("BPS_FLUSH_MINUTES")
        .ok()
        .and_then(|v| v.parse().ok());
    for chunk_start in (0..scrapes).step_by(per_write) {
        let mut batch = Vec::with_capacity(gens.len());
        for g in gens.iter_mut() {
            let mut s = Vec::with_capacity(per_write);
            for k in chunk_start..(chunk_start + per_write as i64).min(scrapes) {
                let jitter = if rng.below(10) == 0 {
                    rng.below(5) as i64
                } else {
                    0
                };
                let ts = start + k * 15_000 + offsets[g.target] + jitter;
                g.value = match g.kind {
                    Kind::Counter { rate } => g.value + (rate * (0.5 + rng.unit())).round(),
                    Kind::SecondsCounter { rate } => {
                        round(g.value + rate * (0.5 + rng.unit()) * 15.0 / 15.0, 2)
                    }
                    Kind::Gauge {
                        decimals,
                        lo,
                        hi,
                        step,
                    } => round(
                        (g.value + (rng.unit() - 0.5) * 2.0 * step).clamp(lo, hi),
                        decimals,
                    ),
                    Kind::Bytes { base } => {
                        let pages = (rng.unit() - 0.5) * 2000.0;
                        ((g.value + pages.round() * 4096.0).max(base / 2.0) / 4096.0).round()
                            * 4096.0
                    }
                    Kind::Constant(v) => v,
                };
                s.push(Sample {
                    timestamp_ms: ts,
                    value: g.value,
                });
            }
            samples += s.len() as u64;
            let k = &mut kept[batch.len()];
            k.0.extend(s.iter().map(|x| x.timestamp_ms));
            k.1.extend(s.iter().map(|x| x.value));
            batch.push(Series {
                labels: g.labels.clone(),
                samples: s,
            });
        }
        let out = rt.block_on(store.write("default", WriteBatch::Metrics(batch)))?;
        if !out.rejected.is_empty() {
            return Err(format!("unexpected rejections: {:?}", out.rejected).into());
        }
        // BPS_FLUSH_MINUTES=10 flushes every 10 minutes of data, like the default
        // memtable_flush_interval (parts are not compacted yet)
        let minute = chunk_start / per_write as i64 + 1;
        clock.set(start + (chunk_start + per_write as i64) * 15_000);
        if flush_minutes.is_some_and(|m| minute % m == 0) {
            rt.block_on(store.flush())?;
        }
    }
    // a few logs and spans, so all three part kinds exist for inspection
    let logs = (0..1000)
        .map(|i| sightline_store::LogRecord {
            timestamp_ns: (start + i * 1000) * 1_000_000,
            observed_timestamp_ns: (start + i * 1000) * 1_000_000 + 5,
            severity_number: 9,
            severity_text: "INFO".into(),
            body: format!("request {i} served"),
            attributes: vec![
                ("http.status".into(), serde_json::json!(200)),
                ("ratio".into(), serde_json::json!(0.1)),
            ],
            resource: vec![("service.name".into(), serde_json::json!("api"))],
            scope_name: "example".into(),
            scope_version: "1".into(),
            trace_id: vec![i as u8; 16],
            span_id: vec![1; 8],
            flags: 0,
        })
        .collect();
    rt.block_on(store.write("default", WriteBatch::Logs(logs)))?;
    let spans = (0..100)
        .map(|i| sightline_store::SpanRecord {
            trace_id: vec![i as u8; 16],
            span_id: vec![2; 8],
            parent_span_id: vec![],
            trace_state: String::new(),
            name: "GET /".into(),
            kind: 2,
            start_time_ns: (start + i * 1000) * 1_000_000,
            end_time_ns: (start + i * 1000 + 7) * 1_000_000,
            attributes: vec![("http.route".into(), serde_json::json!("/"))],
            events: serde_json::json!([]),
            links: serde_json::json!([]),
            status_code: 0,
            status_message: String::new(),
            resource: vec![("service.name".into(), serde_json::json!("api"))],
            scope_name: "example".into(),
            scope_version: "1".into(),
        })
        .collect();
    rt.block_on(store.write("default", WriteBatch::Spans(spans)))?;
    rt.block_on(store.flush())?;
    let stats = store.stats();
    let parts_bytes = stats.metrics_parts_bytes;
    let index_bytes = std::fs::metadata(dir_path.join("index/series.idx"))?.len();
    println!("series            {}", gens.len());
    println!("samples           {samples}");
    println!("parts             {}", stats.parts_total);
    println!("metrics parts     {parts_bytes} bytes");
    println!("series index      {index_bytes} bytes");
    println!(
        "bytes/sample      {:.3} (parts only)",
        parts_bytes as f64 / samples as f64
    );
    println!(
        "bytes/sample      {:.3} (parts + index)",
        (parts_bytes + index_bytes) as f64 / samples as f64
    );
    // per-column breakdown from the Parquet footers
    let mut cols: std::collections::BTreeMap<String, i64> = Default::default();
    for entry in walk(&dir_path.join("metrics"))? {
        let f = std::fs::File::open(&entry)?;
        let r = parquet::file::reader::SerializedFileReader::new(f)?;
        use parquet::file::reader::FileReader;
        for rg in r.metadata().row_groups() {
            for c in rg.columns() {
                *cols.entry(c.column_path().string()).or_default() += c.compressed_size();
            }
        }
    }
    for (c, b) in cols {
        println!("  {c:<14} {:.3} bytes/sample", b as f64 / samples as f64);
    }
    let vm = vm_style_bytes(&kept)?;
    println!("VictoriaMetrics-style block encoding of the same samples (data only, no block headers/index):");
    println!("  {:.3} bytes/sample", vm as f64 / samples as f64);
    Ok(())
}

/// Estimates what a VictoriaMetrics-like block encoding takes for the same data: per
/// series block, values as decimals with a common exponent, delta-of-delta for
/// monotonic series and delta otherwise, zigzag varints, zstd on blocks > 64 bytes.
fn vm_style_bytes(series: &[(Vec<i64>, Vec<f64>)]) -> Result<usize, Box<dyn std::error::Error>> {
    fn varints(a: &[i64], order2: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut put = |v: i64| {
            let mut u = ((v << 1) ^ (v >> 63)) as u64;
            while u >= 0x80 {
                out.push((u as u8) | 0x80);
                u >>= 7;
            }
            out.push(u as u8);
        };
        if a.is_empty() {
            return Vec::new();
        }
        put(a[0]);
        let d: Vec<i64> = a.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
        if order2 && !d.is_empty() {
            put(d[0]);
            for w in d.windows(2) {
                put(w[1].wrapping_sub(w[0]));
            }
        } else {
            for x in d {
                put(x);
            }
        }
        out
    }
    fn block(a: &[i64], order2: bool) -> std::io::Result<usize> {
        if a.windows(2).all(|w| w[0] == w[1]) {
            return Ok(9); // constant block
        }
        let raw = varints(a, order2);
        if raw.len() <= 64 {
            return Ok(raw.len());
        }
        let level = if a.len() <= 128 {
            1
        } else if a.len() <= 1024 {
            2
        } else if a.len() <= 8192 {
            3
        } else {
            4
        };
        Ok(zstd::bulk::compress(&raw, level)?.len().min(raw.len()))
    }
    let mut total = 0;
    for (ts, vals) in series {
        let exp = vals
            .iter()
            .map(|&v| {
                (0..16)
                    .find(|&d| ((v * 10f64.powi(d)).round() / 10f64.powi(d)) == v)
                    .unwrap_or(15)
            })
            .max()
            .unwrap_or(0);
        let ints: Vec<i64> = vals
            .iter()
            .map(|&v| (v * 10f64.powi(exp)).round() as i64)
            .collect();
        let monotonic = ints.windows(2).all(|w| w[1] >= w[0]);
        total += block(&ints, monotonic)? + block(ts, true)?;
    }
    Ok(total)
}

fn walk(dir: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            out.extend(walk(&p)?);
        } else if p.extension().is_some_and(|e| e == "parquet") {
            out.push(p);
        }
    }
    Ok(out)
}
