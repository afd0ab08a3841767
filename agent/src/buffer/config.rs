//! The `buffer:` section of the agent's YAML file. The buffer runs when a data dir is
//! configured (`--data-dir`) or `buffer.dir` is set, unless `enabled: false`; without
//! it metrics go through the in-memory queue only and logs are checkpointed after the
//! collector's ack.
//!
//! ```yaml
//! buffer:
//!   enabled: true              # default when a data dir exists
//!   dir: /var/lib/sightline-agent/buffer   # default <data_dir>/buffer
//!   max_bytes: 256MiB          # bytes on disk before when_full applies (B, KiB, MiB, GiB)
//!   segment_bytes: 8MiB        # segment size; at most max_bytes / 2
//!   when_full: backpressure    # backpressure (collection pauses) | drop_oldest (counted)
//! ```

use std::path::PathBuf;

use serde::Deserialize;

use super::{BufferConfig, WhenFull};

/// A byte size: a number or a string with a unit.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ByteSize {
    Bytes(u64),
    Text(String),
}

impl ByteSize {
    pub fn bytes(&self) -> Result<u64, String> {
        match self {
            Self::Bytes(n) => Ok(*n),
            Self::Text(t) => parse_bytes(t),
        }
    }
}

/// Parse `1048576`, `64KiB`, `256MiB`, `1GiB` (also KB/MB/GB = powers of 1000).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let s = text.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{text:?}: expected a number of bytes (e.g. 256MiB)"))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?} (B, KiB, MiB, GiB)"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{text:?}: too large"))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BufferSection {
    /// Default: on when a data dir (or `dir`) is configured.
    pub enabled: Option<bool>,
    /// Default `<data_dir>/buffer`.
    pub dir: Option<PathBuf>,
    /// Default 256MiB.
    pub max_bytes: Option<ByteSize>,
    /// Default 8MiB (at most max_bytes / 2).
    pub segment_bytes: Option<ByteSize>,
    /// `backpressure` (default) or `drop_oldest`.
    pub when_full: Option<String>,
}

/// Resolve the section; problems are appended to `errors`.
pub fn resolve(
    section: BufferSection,
    data_dir: Option<&PathBuf>,
    errors: &mut Vec<String>,
) -> Option<BufferConfig> {
    if section.enabled == Some(false) {
        return None;
    }
    let dir = match (section.dir, data_dir) {
        (Some(d), _) => d,
        (None, Some(d)) => d.join("buffer"),
        (None, None) => {
            if section.enabled == Some(true) {
                errors.push("buffer.enabled: needs buffer.dir or a data dir (--data-dir)".into());
            }
            return None;
        }
    };
    let mut cfg = BufferConfig::new(dir);
    let mut size = |key: &str, v: Option<ByteSize>, default: u64| match v.map(|v| v.bytes()) {
        None => default,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            errors.push(format!("buffer.{key}: {e}"));
            default
        }
    };
    cfg.max_bytes = size("max_bytes", section.max_bytes, cfg.max_bytes);
    let default_segment = cfg.segment_bytes.min(cfg.max_bytes / 4).max(64 << 10);
    cfg.segment_bytes = size("segment_bytes", section.segment_bytes, default_segment);
    if cfg.segment_bytes < 64 << 10 {
        errors.push("buffer.segment_bytes: must be at least 64KiB".into());
    }
    if cfg.max_bytes < cfg.segment_bytes.saturating_mul(2) {
        errors.push(format!(
            "buffer.max_bytes: must be at least twice segment_bytes ({} bytes)",
            cfg.segment_bytes
        ));
    }
    if let Some(w) = section.when_full {
        match WhenFull::parse(&w) {
            Some(p) => cfg.when_full = p,
            None => errors.push(format!(
                "buffer.when_full: {w:?} is not one of backpressure, drop_oldest"
            )),
        }
    }
    Some(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(yaml: &str) -> BufferSection {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_bytes("1048576").unwrap(), 1 << 20);
        assert_eq!(parse_bytes("256MiB").unwrap(), 256 << 20);
        assert_eq!(parse_bytes("64KiB").unwrap(), 64 << 10);
        assert_eq!(parse_bytes("2GB").unwrap(), 2_000_000_000);
        for bad in ["", "MiB", "1.5MiB", "12XB", "-1"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn defaults_follow_the_data_dir() {
        let mut errors = Vec::new();
        let data = PathBuf::from("/var/lib/agent");
        let c = resolve(BufferSection::default(), Some(&data), &mut errors).unwrap();
        assert_eq!(c.dir, data.join("buffer"));
        assert_eq!(c.max_bytes, 256 << 20);
        assert_eq!(c.segment_bytes, 8 << 20);
        assert_eq!(c.when_full, WhenFull::Backpressure);
        assert!(resolve(BufferSection::default(), None, &mut errors).is_none());
        assert!(errors.is_empty());
        let off = section("enabled: false\n");
        assert!(resolve(off, Some(&data), &mut errors).is_none());
    }

    #[test]
    fn settings_and_every_problem_reported() {
        let mut errors = Vec::new();
        let c = resolve(
            section("dir: /x\nmax_bytes: 1MiB\nwhen_full: drop_oldest\n"),
            None,
            &mut errors,
        )
        .unwrap();
        assert_eq!(c.dir, PathBuf::from("/x"));
        assert_eq!(c.segment_bytes, 256 << 10, "a quarter of a small max_bytes");
        assert_eq!(c.when_full, WhenFull::DropOldest);
        assert!(errors.is_empty(), "{errors:?}");
        resolve(
            section("max_bytes: lots\nsegment_bytes: 1KiB\nwhen_full: never\n"),
            Some(&PathBuf::from("/d")),
            &mut errors,
        );
        let all = errors.join("\n");
        for want in ["segment_bytes", "max_bytes", "when_full"] {
            assert!(all.contains(want), "{want} not in {all}");
        }
        errors.clear();
        resolve(section("enabled: true\n"), None, &mut errors);
        assert!(errors[0].contains("buffer.enabled"));
        assert!(serde_yaml::from_str::<BufferSection>("size: 1\n").is_err());
    }
}
