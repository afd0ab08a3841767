//! `anomaly INPUT.csv OUTPUT.csv`: runs the default streaming detector over a
//! `timestamp,value` CSV (NAB layout) and writes `timestamp,value,anomaly_score`,
//! one row per input row. Timestamps: `YYYY-MM-DD HH:MM:SS[.ffffff]` (or with `T`,
//! optional `Z`), or integer epoch seconds. A malformed row is an error naming its line.
//!
//! Environment (for experiments only; the defaults are the measured configuration):
//! `SIGHTLINE_ANOMALY_CONFIG` = JSON object of [`AnomalyConfig`] fields to override;
//! `SIGHTLINE_ANOMALY_DEBUG=1` adds the per-component evidence columns.

use std::fmt::Write as _;
use std::time::Instant;

use sightline_detectors::anomaly::{AnomalyConfig, AnomalyDetector};

use crate::BenchRow;

type BoxError = Box<dyn std::error::Error>;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn num(s: &str, what: &str) -> Result<i64, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("bad {what} {s:?}"));
    }
    s.parse::<i64>()
        .map_err(|e| format!("bad {what} {s:?}: {e}"))
}

/// Parses a timestamp into milliseconds since the epoch (UTC).
pub fn parse_timestamp(text: &str) -> Result<i64, String> {
    let s = text.trim().trim_end_matches('Z');
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let v = num(s, "epoch seconds")?;
        return v
            .checked_mul(1000)
            .ok_or_else(|| format!("timestamp {s} out of range"));
    }
    let (date, time) = s
        .split_once([' ', 'T'])
        .ok_or_else(|| format!("timestamp {text:?} is not 'YYYY-MM-DD HH:MM:SS'"))?;
    let mut dp = date.split('-');
    let (Some(y), Some(mo), Some(d), None) = (dp.next(), dp.next(), dp.next(), dp.next()) else {
        return Err(format!("bad date {date:?}"));
    };
    let (y, mo, d) = (num(y, "year")?, num(mo, "month")?, num(d, "day")?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return Err(format!("date {date:?} out of range"));
    }
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut tp = hms.split(':');
    let (Some(h), Some(mi), sec, None) = (tp.next(), tp.next(), tp.next(), tp.next()) else {
        return Err(format!("bad time {time:?}"));
    };
    let (h, mi, sec) = (
        num(h, "hour")?,
        num(mi, "minute")?,
        sec.map(|s| num(s, "second")).transpose()?.unwrap_or(0),
    );
    if h > 23 || mi > 59 || sec > 60 {
        return Err(format!("time {time:?} out of range"));
    }
    let ms = if frac.is_empty() {
        0
    } else {
        let digits: String = frac.chars().chain("000".chars()).take(3).collect();
        num(&digits, "fraction of a second")?
    };
    Ok(((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60_000 + sec * 1000 + ms)
}

fn config_from_env() -> Result<AnomalyConfig, BoxError> {
    match std::env::var("SIGHTLINE_ANOMALY_CONFIG") {
        Ok(text) if !text.trim().is_empty() => Ok(
            serde_json::from_str(&text).map_err(|e| format!("SIGHTLINE_ANOMALY_CONFIG: {e}"))?
        ),
        _ => Ok(AnomalyConfig::default()),
    }
}

pub fn run(input: &str, output: &str) -> Result<(), BoxError> {
    let text = std::fs::read_to_string(input).map_err(|e| format!("{input}: {e}"))?;
    let mut lines = text.lines().enumerate();
    let header = lines
        .next()
        .map(|(_, h)| h)
        .ok_or_else(|| format!("{input}: empty file"))?;
    let cols: Vec<&str> = header.split(',').map(str::trim).collect();
    let ti = cols.iter().position(|c| *c == "timestamp");
    let vi = cols.iter().position(|c| *c == "value");
    let (Some(ti), Some(vi)) = (ti, vi) else {
        return Err(format!(
            "{input}:1: header must name 'timestamp' and 'value' columns, got {header:?}"
        )
        .into());
    };
    let debug = std::env::var("SIGHTLINE_ANOMALY_DEBUG").is_ok_and(|v| v == "1");
    let mut det = AnomalyDetector::new(config_from_env()?)?;
    let mut out = String::with_capacity(text.len() + text.len() / 2);
    out.push_str("timestamp,value,anomaly_score");
    if debug {
        out.push_str(",residual,fast,shift,variance,seasonality,component");
    }
    out.push('\n');
    for (i, line) in lines {
        let lineno = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        let (Some(ts), Some(val)) = (fields.get(ti), fields.get(vi)) else {
            return Err(format!(
                "{input}:{lineno}: expected {} columns, got {}",
                cols.len(),
                fields.len()
            )
            .into());
        };
        let ms = parse_timestamp(ts).map_err(|e| format!("{input}:{lineno}: {e}"))?;
        let v: f64 = val
            .trim()
            .parse()
            .map_err(|_| format!("{input}:{lineno}: value {:?} is not a number", val.trim()))?;
        let s = det.update(ms, v);
        let _ = write!(out, "{},{},{:.6}", ts.trim(), val.trim(), s.value);
        if debug {
            let e = s.evidence;
            let _ = write!(
                out,
                ",{:.4},{:.4},{:.4},{:.4},{:?},{:?}",
                e.residual, e.fast, e.shift, e.variance, s.seasonality, s.component
            );
        }
        out.push('\n');
    }
    std::fs::write(output, out).map_err(|e| format!("{output}: {e}"))?;
    Ok(())
}

/// Synthetic ops-like series: daily sine, noise, a trend, spikes and a level shift.
fn synthetic(i: u64) -> f64 {
    let t = i as f64;
    let mut h = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h ^= h >> 29;
    let noise = (h % 10_000) as f64 / 10_000.0 - 0.5;
    let mut v = 50.0 + 10.0 * (t * std::f64::consts::TAU / 288.0).sin() + 2.0 * noise + t * 1e-6;
    if i.is_multiple_of(5000) {
        v += 40.0;
    }
    if (i / 250_000) % 2 == 1 {
        v += 15.0;
    }
    v
}

pub fn bench_rows() -> Result<Vec<BenchRow>, BoxError> {
    const N: u64 = 5_000_000;
    let mut det = AnomalyDetector::new(AnomalyConfig::default())?;
    let start_ms: i64 = 1_700_000_000_000;
    let mut sink = 0.0;
    let t0 = Instant::now();
    for i in 0..N {
        let s = det.update(start_ms + i as i64 * 300_000, synthetic(i));
        sink += s.value;
    }
    let seconds = t0.elapsed().as_secs_f64();
    std::hint::black_box(sink);
    Ok(vec![BenchRow {
        capability: "anomaly (default detector)".into(),
        items: N,
        unit: "points",
        seconds,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nab_and_iso_timestamps() {
        assert_eq!(parse_timestamp("1970-01-01 00:00:00").unwrap(), 0);
        assert_eq!(
            parse_timestamp("2014-04-01 00:05:00").unwrap(),
            1_396_310_700_000
        );
        assert_eq!(
            parse_timestamp("2014-04-01T00:05:00.250Z").unwrap(),
            1_396_310_700_250
        );
        assert_eq!(
            parse_timestamp("2015-01-24 20:30:00.000000").unwrap(),
            1_422_131_400_000
        );
        assert_eq!(parse_timestamp("1396310700").unwrap(), 1_396_310_700_000);
        for bad in [
            "",
            "2014-04-01",
            "2014-13-01 00:00:00",
            "2014-04-01 25:00:00",
            "x-04-01 00:00:00",
        ] {
            assert!(parse_timestamp(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn malformed_row_reports_line_number() {
        let dir = std::env::temp_dir().join(format!("sl-anomaly-cmd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let input = dir.join("in.csv");
        let output = dir.join("out.csv");
        std::fs::write(
            &input,
            "timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:05:00,abc\n",
        )
        .unwrap();
        let err = run(input.to_str().unwrap(), output.to_str().unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains(":3:") && err.contains("abc"), "{err}");
        std::fs::write(
            &input,
            "timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:05:00,2\n",
        )
        .unwrap();
        run(input.to_str().unwrap(), output.to_str().unwrap()).unwrap();
        let out = std::fs::read_to_string(&output).unwrap();
        assert_eq!(out.lines().count(), 3);
        assert!(out.starts_with("timestamp,value,anomaly_score\n2014-04-01 00:00:00,1,0.000000\n"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
