//! `forecast` subcommand: forecasts, time to exhaustion and the rolling-origin
//! evaluation used by `detectors/eval/forecast_compare.py`.
//!
//! ```text
//! sightline-detect forecast run [--horizon 48] [--level 0.8] [--folds 2] INPUT.csv
//!     prints timestamp,mean,lower,upper for the steps after the last row
//! sightline-detect forecast exhaustion --limit X [--probability 0.8] INPUT.csv
//!     prints when the series reaches X (eta,lower,upper in RFC 3339, basis)
//! sightline-detect forecast eval [--horizon 48] [--origins 3] [--max-history 4032]
//!                                [--level 0.8] [--folds 2] --out PREDICTIONS.csv INPUT.csv...
//!     for each input and origin o = n - k*horizon (k = 1..origins), forecasts
//!     from the `max-history` values before o; writes
//!     series,origin,step,mean,lower,upper,seconds,cpu_seconds,method,period
//!     (seconds: wall time of the library call; cpu_seconds: this thread's CPU time)
//! ```
//! Inputs are NAB-style CSV: `timestamp,value` with a header; timestamps as
//! `YYYY-MM-DD HH:MM:SS` (UTC) or Unix seconds.

use std::fmt::Write as _;
use std::time::Instant;

use sightline_detectors::forecast::{
    forecast, forecast_samples, time_to_exhaustion, ForecastConfig, Method, Sample, SeasonSetting,
};
use sightline_detectors::outliers::{peer_outliers, MemberWindows, PeerConfig};

use crate::BenchRow;

type CmdResult<T> = Result<T, Box<dyn std::error::Error>>;

const USAGE: &str = "usage: sightline-detect forecast run [--horizon N] [--level L] INPUT.csv\n       sightline-detect forecast exhaustion --limit X [--probability P] INPUT.csv\n       sightline-detect forecast eval [--horizon N] [--origins K] [--max-history W] [--level L] --out OUT.csv INPUT.csv...";

/// Parsed `--name value` options and positional arguments.
struct Args {
    opts: Vec<(String, String)>,
    positional: Vec<String>,
}

impl Args {
    fn parse(args: &[String]) -> CmdResult<Args> {
        let (mut opts, mut positional) = (Vec::new(), Vec::new());
        let mut it = args.iter();
        while let Some(a) = it.next() {
            if let Some(name) = a.strip_prefix("--") {
                let v = it
                    .next()
                    .ok_or_else(|| format!("--{name} needs a value\n{USAGE}"))?;
                opts.push((name.to_string(), v.clone()));
            } else {
                positional.push(a.clone());
            }
        }
        Ok(Args { opts, positional })
    }

    fn get<T: std::str::FromStr>(&self, name: &str, default: Option<T>) -> CmdResult<T> {
        match self.opts.iter().rev().find(|(n, _)| n == name) {
            Some((_, v)) => v
                .parse()
                .map_err(|_| format!("--{name}: cannot parse {v:?}").into()),
            None => default.ok_or_else(|| format!("--{name} is required\n{USAGE}").into()),
        }
    }

    fn check_known(&self, known: &[&str]) -> CmdResult<()> {
        match self.opts.iter().find(|(n, _)| !known.contains(&n.as_str())) {
            Some((n, _)) => Err(format!("unknown option --{n}\n{USAGE}").into()),
            None => Ok(()),
        }
    }
}

pub fn run(args: &[String]) -> CmdResult<()> {
    let Some(cmd) = args.first() else {
        return Err(USAGE.into());
    };
    let a = Args::parse(&args[1..])?;
    match cmd.as_str() {
        "run" => run_forecast(&a),
        "exhaustion" => run_exhaustion(&a),
        "eval" => run_eval(&a),
        _ => Err(USAGE.into()),
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DD HH:MM:SS` (or with `T`) as UTC, or Unix seconds, to Unix ms.
fn parse_ts(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        return Some((secs * 1000.0).round() as i64);
    }
    let b = s.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some(((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60_000 + se * 1000)
}

fn format_ts(ms: i64) -> String {
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000) / 1000);
    // Inverse of days_from_civil.
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
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Reads `timestamp,value` rows (header and unparsable rows skipped, counted).
fn read_csv(path: &str) -> CmdResult<Vec<Sample>> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let mut out = Vec::new();
    let mut bad = 0usize;
    for (i, line) in text.lines().enumerate() {
        let mut cols = line.split(',');
        let (Some(t), Some(v)) = (cols.next(), cols.next()) else {
            continue;
        };
        match (parse_ts(t), v.trim().parse::<f64>()) {
            (Some(ts_ms), Ok(value)) => out.push(Sample { ts_ms, value }),
            _ if i == 0 => {} // header
            _ => bad += 1,
        }
    }
    if bad > 0 {
        eprintln!("{path}: skipped {bad} unparsable rows");
    }
    if out.is_empty() {
        return Err(format!("{path}: no timestamp,value rows").into());
    }
    Ok(out)
}

fn config(a: &Args) -> CmdResult<ForecastConfig> {
    let d = ForecastConfig::default();
    Ok(ForecastConfig {
        horizon: a.get("horizon", Some(d.horizon))?,
        level: a.get("level", Some(d.level))?,
        max_history: a.get("max-history", Some(d.max_history))?,
        validation_folds: a.get("folds", Some(d.validation_folds))?,
        ..d
    })
}

fn single_input(a: &Args) -> CmdResult<&str> {
    match a.positional.as_slice() {
        [one] => Ok(one),
        _ => Err(format!("expected one INPUT.csv\n{USAGE}").into()),
    }
}

fn run_forecast(a: &Args) -> CmdResult<()> {
    a.check_known(&["horizon", "level", "max-history", "folds"])?;
    let samples = read_csv(single_input(a)?)?;
    let tf = forecast_samples(&samples, &config(a)?)?;
    let f = &tf.forecast;
    eprintln!(
        "method {:?}, season {:?}, step {} ms",
        f.method, f.season, tf.step_ms
    );
    let mut out = String::from("timestamp,mean,lower,upper\n");
    for (j, ts) in tf.timestamps_ms.iter().enumerate() {
        writeln!(
            out,
            "{},{},{},{}",
            format_ts(*ts),
            f.mean[j],
            f.lower[j],
            f.upper[j]
        )?;
    }
    print!("{out}");
    Ok(())
}

fn run_exhaustion(a: &Args) -> CmdResult<()> {
    a.check_known(&["limit", "probability"])?;
    let samples = read_csv(single_input(a)?)?;
    let limit: f64 = a.get("limit", None)?;
    let p: f64 = a.get("probability", Some(0.8))?;
    match time_to_exhaustion(&samples, limit, p)? {
        None => println!("not filling up towards {limit}"),
        Some(e) => println!(
            "eta {} lower {} upper {} probability {} rate {}/s basis {:?}",
            format_ts(e.eta),
            format_ts(e.lower),
            e.upper.map_or_else(|| "unbounded".into(), format_ts),
            e.probability,
            e.rate_per_s,
            e.basis
        ),
    }
    Ok(())
}

fn method_name(m: Method) -> String {
    match m {
        Method::SeasonalNaive { .. } => "snaive".into(),
        Method::Decomposed { trend, .. } => format!("decomp+{trend:?}").to_lowercase(),
        Method::Smoothing { trend } => format!("ets+{trend:?}").to_lowercase(),
        Method::Blend { trend, .. } => format!("blend+{trend:?}").to_lowercase(),
        Method::MeanReverting { period: None } => "ar1".into(),
        Method::MeanReverting { period: Some(_) } => "decomp+ar1".into(),
    }
}

fn run_eval(a: &Args) -> CmdResult<()> {
    a.check_known(&["horizon", "origins", "max-history", "level", "folds", "out"])?;
    let cfg = config(a)?;
    let origins: usize = a.get("origins", Some(3))?;
    let out_path: String = a.get("out", None)?;
    if a.positional.is_empty() {
        return Err(format!("no inputs\n{USAGE}").into());
    }
    let h = cfg.horizon;
    let mut out =
        String::from("series,origin,step,mean,lower,upper,seconds,cpu_seconds,method,period\n");
    let (mut total_s, mut count) = (0.0, 0usize);
    for path in &a.positional {
        let samples = read_csv(path)?;
        let values: Vec<f64> = samples.iter().map(|s| s.value).collect();
        // The rows are forecast as a sequence (as statsforecast sees them); their median
        // spacing lets detected seasons snap to calendar periods.
        let mut steps: Vec<i64> = samples
            .windows(2)
            .map(|w| w[1].ts_ms - w[0].ts_ms)
            .collect();
        steps.sort_unstable();
        let cfg = ForecastConfig {
            step_ms: steps.get(steps.len() / 2).copied().unwrap_or(0),
            ..cfg.clone()
        };
        for k in 1..=origins {
            let Some(origin) = values.len().checked_sub(k * h) else {
                break;
            };
            if origin < 2 * h {
                break;
            }
            let train = &values[origin.saturating_sub(cfg.max_history)..origin];
            let (t, cpu0) = (Instant::now(), thread_cpu_ns());
            let f = forecast(train, &cfg)?;
            let secs = t.elapsed().as_secs_f64();
            let cpu = match (cpu0, thread_cpu_ns()) {
                (Some(a), Some(b)) => (b.saturating_sub(a)) as f64 / 1e9,
                _ => f64::NAN,
            };
            total_s += secs;
            count += 1;
            let period = f.season.map_or(0, |s| s.period);
            for j in 0..h {
                writeln!(
                    out,
                    "{path},{origin},{},{},{},{},{secs:.6},{cpu:.6},{},{period}",
                    j + 1,
                    f.mean[j],
                    f.lower[j],
                    f.upper[j],
                    method_name(f.method)
                )?;
            }
        }
    }
    std::fs::write(&out_path, out).map_err(|e| format!("{out_path}: {e}"))?;
    eprintln!(
        "forecast eval: {count} forecasts in {total_s:.3} s ({:.2} ms each)",
        1e3 * total_s / count.max(1) as f64
    );
    Ok(())
}

/// CPU time of this thread in ns (Linux `/proc/thread-self/schedstat`), so the
/// evaluation's timings do not depend on how busy the machine is.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Deterministic pseudo-random numbers for the bench inputs (xorshift64*).
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    }
}

pub fn bench_rows() -> CmdResult<Vec<BenchRow>> {
    let mut rows = Vec::new();
    let mut noise = Noise(0x9E37_79B9_7F4A_7C15);
    // 100 series of one week at 5-minute steps with a daily cycle, forecast 4 h ahead.
    let series: Vec<Vec<f64>> = (0..100)
        .map(|s| {
            (0..2016)
                .map(|t| {
                    let day = (2.0 * std::f64::consts::PI * t as f64 / 288.0).sin();
                    50.0 + s as f64 + 10.0 * day + 0.01 * t as f64 + 4.0 * noise.next()
                })
                .collect()
        })
        .collect();
    let cfg = ForecastConfig {
        horizon: 48,
        season: SeasonSetting::Auto { max_period: 1008 },
        ..Default::default()
    };
    let t = Instant::now();
    for y in &series {
        forecast(y, &cfg)?;
    }
    rows.push(BenchRow {
        capability: "forecast (2016-point 5-min series, season detection, h=48)".into(),
        items: series.len() as u64,
        unit: "series",
        seconds: t.elapsed().as_secs_f64(),
    });
    // Time to exhaustion on a day of per-minute disk usage, 200 times.
    let disk: Vec<Sample> = (0..1440)
        .map(|m| Sample {
            ts_ms: m * 60_000,
            value: 40e9 + 1e9 * m as f64 / 60.0 + 1e8 * noise.next(),
        })
        .collect();
    let t = Instant::now();
    for _ in 0..200 {
        time_to_exhaustion(&disk, 100e9, 0.8)?;
    }
    rows.push(BenchRow {
        capability: "forecast (time to exhaustion, 1440 points)".into(),
        items: 200 * disk.len() as u64,
        unit: "points",
        seconds: t.elapsed().as_secs_f64(),
    });
    // Peer outliers: 50 members x 4 metrics x 60-point windows, 100 groups.
    let windows: Vec<Vec<Vec<f64>>> = (0..50)
        .map(|_| {
            (0..4)
                .map(|_| (0..60).map(|_| 1.0 + 0.1 * noise.next()).collect())
                .collect()
        })
        .collect();
    let names = ["cpu", "memory", "latency", "errors"];
    let members: Vec<MemberWindows<'_>> = windows
        .iter()
        .map(|m| MemberWindows {
            name: "pod",
            metrics: m.iter().map(Vec::as_slice).collect(),
        })
        .collect();
    let t = Instant::now();
    for _ in 0..100 {
        peer_outliers(&names, &members, &PeerConfig::default())?;
    }
    rows.push(BenchRow {
        capability: "forecast (peer outliers, 50 members x 4 metrics x 60 points)".into(),
        items: 100 * 50 * 4,
        unit: "series",
        seconds: t.elapsed().as_secs_f64(),
    });
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip() {
        let ms = parse_ts("2014-04-01 00:05:00").unwrap();
        assert_eq!(ms, 1_396_310_700_000);
        assert_eq!(format_ts(ms), "2014-04-01T00:05:00Z");
        assert_eq!(parse_ts("1396310700"), Some(1_396_310_700_000));
        assert_eq!(parse_ts("2014-13-01 00:00:00"), None);
        assert_eq!(parse_ts("timestamp"), None);
        assert_eq!(
            format_ts(parse_ts("2024-02-29 23:59:59").unwrap()),
            "2024-02-29T23:59:59Z"
        );
    }
}
