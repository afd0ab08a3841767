//! Line formats and severity.
//!
//! A raw line (without its `\n`) becomes a [`Line`]: the message, its stream
//! (stdout/stderr), the writer's timestamp, and whether it is a partial piece that
//! continues on the next line (CRI `P`, Docker's `log` without a trailing newline).
//! Lines that do not parse in their format are shipped raw (counted by the caller).

use serde::Deserialize;

/// How the lines of a file are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `<RFC3339Nano> <stdout|stderr> <P|F> <message>` (`/var/log/pods`).
    Cri,
    /// Docker `json-file`: `{"log":"...\n","stream":"stdout","time":"..."}`.
    DockerJson,
    /// One message per line, no envelope.
    Plain,
}

/// One parsed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub message: String,
    pub stream: Option<&'static str>,
    /// Unix nanoseconds from the envelope; 0 when unknown.
    pub time: u64,
    /// More of this message follows on the next line of the same stream.
    pub partial: bool,
}

/// Parse one line; `Err` carries the raw line as a [`Line`] for shipping as is.
pub fn parse(format: Format, raw: &[u8]) -> Result<Line, Line> {
    let text = String::from_utf8_lossy(raw);
    let raw_line = |text: &str| Line {
        message: text.to_string(),
        stream: None,
        time: 0,
        partial: false,
    };
    match format {
        Format::Plain => Ok(raw_line(text.strip_suffix('\r').unwrap_or(&text))),
        Format::Cri => parse_cri(&text).ok_or_else(|| raw_line(&text)),
        Format::DockerJson => parse_docker(&text).ok_or_else(|| raw_line(&text)),
    }
}

fn stream_name(s: &str) -> Option<&'static str> {
    match s {
        "stdout" => Some("stdout"),
        "stderr" => Some("stderr"),
        _ => None,
    }
}

fn parse_cri(text: &str) -> Option<Line> {
    let mut parts = text.splitn(4, ' ');
    let time = parse_rfc3339(parts.next()?)?;
    let stream = stream_name(parts.next()?)?;
    let partial = match parts.next()? {
        "P" => true,
        "F" => false,
        _ => return None,
    };
    Some(Line {
        message: parts.next().unwrap_or("").to_string(),
        stream: Some(stream),
        time,
        partial,
    })
}

#[derive(Deserialize)]
struct DockerLine {
    log: String,
    #[serde(default)]
    stream: String,
    #[serde(default)]
    time: String,
}

fn parse_docker(text: &str) -> Option<Line> {
    let d: DockerLine = serde_json::from_str(text).ok()?;
    let (message, partial) = match d.log.strip_suffix('\n') {
        Some(m) => (m.strip_suffix('\r').unwrap_or(m).to_string(), false),
        None => (d.log, true),
    };
    Some(Line {
        message,
        stream: stream_name(&d.stream),
        time: parse_rfc3339(&d.time).unwrap_or(0),
        partial,
    })
}

/// `2024-01-02T03:04:05.123456789Z` or with a `+hh:mm` offset → Unix nanoseconds.
pub fn parse_rfc3339(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        b.get(r)?.iter().try_fold(0_i64, |n, d| {
            d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0'))
        })
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut nanos: i64 = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        // First nine digits, scaled to nanoseconds (no allocation: this runs per line).
        for (i, d) in frac
            .bytes()
            .take(9)
            .take_while(u8::is_ascii_digit)
            .enumerate()
        {
            nanos += i64::from(d - b'0') * 10_i64.pow(8 - i as u32);
        }
        rest = &frac[digits..];
    }
    let offset_secs: i64 = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) => {
            let h: i64 = rest.get(1..3)?.parse().ok()?;
            let m: i64 = rest.get(4..6)?.parse().ok()?;
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (h * 3600 + m * 60)
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset_secs;
    u64::try_from(secs)
        .ok()?
        .checked_mul(1_000_000_000)?
        .checked_add(u64::try_from(nanos).ok()?)
}

/// OTLP severity of a message, found from its level word: `ERROR`, `level=warn`,
/// `"level":"info"`, `[DEBUG]`, klog's `E0102 ...` and common variants. Returns the
/// OTLP severity number and its canonical text, or `None`.
pub fn severity(message: &str) -> Option<(i32, &'static str)> {
    let head = message.get(..message.len().min(200)).unwrap_or(message);
    // klog / glog: `I0102 15:04:05.000000 ...`.
    let b = head.as_bytes();
    if b.len() > 5 && b[1..5].iter().all(u8::is_ascii_digit) && b[5] == b' ' {
        match b[0] {
            b'I' => return Some((9, "INFO")),
            b'W' => return Some((13, "WARN")),
            b'E' => return Some((17, "ERROR")),
            b'F' => return Some((21, "FATAL")),
            _ => {}
        }
    }
    // Words are runs of ASCII letters and digits; scanned as bytes (this runs per line).
    let mut start = 0;
    for (i, c) in b.iter().chain(std::iter::once(&b' ')).enumerate() {
        if c.is_ascii_alphanumeric() {
            continue;
        }
        if let Some(found) = b.get(start..i).and_then(level_word) {
            return Some(found);
        }
        start = i + 1;
    }
    None
}

/// Level words (matched case-insensitively) and what they mean.
const LEVEL_WORDS: [(&str, i32, &str); 20] = [
    ("TRACE", 1, "TRACE"),
    ("TRC", 1, "TRACE"),
    ("DEBUG", 5, "DEBUG"),
    ("DBG", 5, "DEBUG"),
    ("INFO", 9, "INFO"),
    ("INF", 9, "INFO"),
    ("NOTICE", 9, "INFO"),
    ("WARN", 13, "WARN"),
    ("WARNING", 13, "WARN"),
    ("WRN", 13, "WARN"),
    ("ERROR", 17, "ERROR"),
    ("ERR", 17, "ERROR"),
    ("SEVERE", 17, "ERROR"),
    ("FATAL", 21, "FATAL"),
    ("FTL", 21, "FATAL"),
    ("CRITICAL", 21, "FATAL"),
    ("CRIT", 21, "FATAL"),
    ("PANIC", 21, "FATAL"),
    ("EMERG", 21, "FATAL"),
    ("ALERT", 21, "FATAL"),
];

fn level_word(word: &[u8]) -> Option<(i32, &'static str)> {
    // Runs for every word of every line's head: compare in place, no allocation.
    if !(3..=8).contains(&word.len())
        || !matches!(
            word[0].to_ascii_uppercase(),
            b'T' | b'D' | b'I' | b'N' | b'W' | b'E' | b'S' | b'F' | b'C' | b'P' | b'A'
        )
    {
        return None;
    }
    LEVEL_WORDS
        .iter()
        .find(|(w, _, _)| w.as_bytes().eq_ignore_ascii_case(word))
        .map(|&(_, n, t)| (n, t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cri_lines() {
        let l = parse(
            Format::Cri,
            b"2024-01-02T03:04:05.123456789Z stderr P part one",
        )
        .unwrap();
        assert_eq!(l.stream, Some("stderr"));
        assert!(l.partial);
        assert_eq!(l.message, "part one");
        assert_eq!(l.time, 1_704_164_645_123_456_789);
        let l = parse(Format::Cri, b"2024-01-02T03:04:05Z stdout F ").unwrap();
        assert_eq!(l.message, "");
        assert!(!l.partial);
        assert!(parse(Format::Cri, b"not a cri line").is_err());
        assert!(parse(Format::Cri, b"2024-01-02T03:04:05Z stdin F x").is_err());
    }

    #[test]
    fn docker_lines() {
        let l = parse(
            Format::DockerJson,
            br#"{"log":"hello \"world\"\n","stream":"stdout","time":"2024-01-02T03:04:05.5+01:00"}"#,
        )
        .unwrap();
        assert_eq!(l.message, "hello \"world\"");
        assert_eq!(l.stream, Some("stdout"));
        assert!(!l.partial);
        assert_eq!(l.time, 1_704_164_645_500_000_000 - 3_600_000_000_000);
        let l = parse(
            Format::DockerJson,
            br#"{"log":"no newline","stream":"stderr"}"#,
        )
        .unwrap();
        assert!(l.partial);
        let raw = parse(Format::DockerJson, b"{broken").unwrap_err();
        assert_eq!(raw.message, "{broken");
    }

    #[test]
    fn plain_lines_strip_cr() {
        assert_eq!(parse(Format::Plain, b"a b\r").unwrap().message, "a b");
    }

    #[test]
    fn rfc3339_edge_cases() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:01.5Z"), Some(1_500_000_000));
        assert_eq!(
            parse_rfc3339("2000-02-29T00:00:00Z"),
            Some(951_782_400_000_000_000)
        );
        assert_eq!(parse_rfc3339("2024-13-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("2024-01-01 00:00:00Z"), None);
    }

    #[test]
    fn severities() {
        let cases = [
            ("2024-01-01 ERROR something broke", Some("ERROR")),
            ("level=warn msg=\"disk\"", Some("WARN")),
            (r#"{"level":"info","msg":"ok"}"#, Some("INFO")),
            ("[DEBUG] x", Some("DEBUG")),
            ("trace: entering", Some("TRACE")),
            ("FATAL: out of memory", Some("FATAL")),
            ("E0102 15:04:05.000000   1 main.go:1] boom", Some("ERROR")),
            ("W0102 15:04:05.000000   1 main.go:1] hmm", Some("WARN")),
            ("Warning: deprecated", Some("WARN")),
            ("CRITICAL failure", Some("FATAL")),
            ("just a message about information", None),
            ("errors are words too: terror", None),
        ];
        for (msg, want) in cases {
            assert_eq!(severity(msg).map(|s| s.1), want, "{msg}");
        }
        assert_eq!(severity("ERROR x").map(|s| s.0), Some(17));
    }
}
