//! The data directory's layout: `wal/`, `metrics|logs|traces/<tenant>/<YYYYMMDDHH>/part-<gen>.parquet`,
//! `index/`, `quarantine/`. Tenant names are escaped into one safe path component;
//! hours are UTC. Also holds the free-space probe (statvfs) and the quarantine move.

use crate::{Error, Result};
use std::path::{Path, PathBuf};

pub(crate) const WAL_DIR: &str = "wal";
pub(crate) const INDEX_DIR: &str = "index";
pub(crate) const QUARANTINE_DIR: &str = "quarantine";
pub(crate) const HOUR_MS: i64 = 3_600_000;

/// The three kinds of data, each with its own part directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Signal {
    Metrics,
    Logs,
    Traces,
}

impl Signal {
    pub(crate) const ALL: [Signal; 3] = [Signal::Metrics, Signal::Logs, Signal::Traces];
    pub(crate) fn dir(self) -> &'static str {
        match self {
            Signal::Metrics => "metrics",
            Signal::Logs => "logs",
            Signal::Traces => "traces",
        }
    }
    /// Units per hour of the signal's time column (ms for metrics, ns otherwise).
    pub(crate) fn units_per_hour(self) -> i64 {
        match self {
            Signal::Metrics => HOUR_MS,
            Signal::Logs | Signal::Traces => HOUR_MS * 1_000_000,
        }
    }
}

/// Escapes a tenant name into one path component: `[A-Za-z0-9_-]` stay, every other
/// byte becomes `%XX`; the empty tenant is `%`. Reversible with [`tenant_from_dir`].
pub(crate) fn tenant_dir(tenant: &str) -> String {
    if tenant.is_empty() {
        return "%".into();
    }
    let mut out = String::with_capacity(tenant.len());
    for b in tenant.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Inverse of [`tenant_dir`]; `None` for names it cannot have produced.
pub(crate) fn tenant_from_dir(dir: &str) -> Option<String> {
    if dir == "%" {
        return Some(String::new());
    }
    let b = dir.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYYMMDDHH` (UTC) of the hour starting at `hour_ms` (a multiple of an hour).
pub(crate) fn hour_dir(hour_ms: i64) -> String {
    let hours = hour_ms.div_euclid(HOUR_MS);
    let (y, m, d) = civil_from_days(hours.div_euclid(24));
    format!("{y:04}{m:02}{d:02}{:02}", hours.rem_euclid(24))
}

/// Inverse of [`hour_dir`].
pub(crate) fn hour_from_dir(s: &str) -> Option<i64> {
    // `YYYY` may be longer or negative for timestamps far from today
    let split = s.len().checked_sub(6)?;
    let (ys, rest) = (s.get(..split)?, s.get(split..)?);
    if ys.len() < 4 || !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let y: i64 = ys.parse().ok()?;
    let m: u32 = rest[0..2].parse().ok()?;
    let d: u32 = rest[2..4].parse().ok()?;
    let h: i64 = rest[4..6].parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || h > 23 || y.unsigned_abs() > 400_000_000
    {
        return None;
    }
    // saturating like `hour_of`, so the extreme hours map back to the same value
    Some(
        days_from_civil(y, m, d)
            .saturating_mul(24)
            .saturating_add(h)
            .saturating_mul(HOUR_MS),
    )
}

/// Start of the hour containing `t` (in the signal's units), in milliseconds.
pub(crate) fn hour_of(signal: Signal, t: i64) -> i64 {
    t.div_euclid(signal.units_per_hour())
        .saturating_mul(HOUR_MS)
}

pub(crate) fn part_dir(root: &Path, signal: Signal, tenant: &str, hour_ms: i64) -> PathBuf {
    root.join(signal.dir())
        .join(tenant_dir(tenant))
        .join(hour_dir(hour_ms))
}

pub(crate) fn part_file_name(gen: u64) -> String {
    format!("part-{gen:010}.parquet")
}

/// Name of a part that merges an hour's parts up to generation `gen`.
pub(crate) fn merged_part_file_name(gen: u64) -> String {
    format!("part-{gen:010}-m.parquet")
}

/// Generation of a flushed (`part-<gen>.parquet`) or merged (`part-<gen>-m.parquet`) part.
pub(crate) fn part_gen(file_name: &str) -> Option<u64> {
    let stem = file_name.strip_prefix("part-")?.strip_suffix(".parquet")?;
    stem.strip_suffix("-m").unwrap_or(stem).parse().ok()
}

pub(crate) fn io_err(path: &Path, source: std::io::Error) -> Error {
    if matches!(
        source.raw_os_error(),
        Some(libc::ENOSPC) | Some(libc::EDQUOT)
    ) {
        return Error::DiskFull(format!("{}: {source}", path.display()));
    }
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn create_dir_all(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|e| io_err(path, e))
}

/// fsyncs a directory so renames and creations inside it are durable.
pub(crate) fn sync_dir(path: &Path) -> Result<()> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| io_err(path, e))
}

/// Moves `path` into `quarantine/` under a name that says where it came from.
/// Returns the new path.
pub(crate) fn quarantine(root: &Path, path: &Path) -> Result<PathBuf> {
    let qdir = root.join(QUARANTINE_DIR);
    create_dir_all(&qdir)?;
    let rel = path.strip_prefix(root).unwrap_or(path);
    let base: String = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("__");
    let mut dest = qdir.join(&base);
    let mut n = 1;
    while dest.exists() {
        dest = qdir.join(format!("{base}.{n}"));
        n += 1;
    }
    std::fs::rename(path, &dest).map_err(|e| io_err(path, e))?;
    Ok(dest)
}

/// Bytes available to unprivileged users on the volume holding `path`.
#[allow(unsafe_code)]
pub(crate) fn free_bytes(path: &Path) -> Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::Io {
        path: path.to_path_buf(),
        source: std::io::ErrorKind::InvalidInput.into(),
    })?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `c` is a valid NUL-terminated string and `st` points to writable memory
    // of the right type; statvfs only writes into it.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return Err(io_err(path, std::io::Error::last_os_error()));
    }
    // SAFETY: statvfs returned 0, so it initialised the struct.
    let st = unsafe { st.assume_init() };
    #[allow(clippy::unnecessary_cast)]
    let (avail, frsize) = (st.f_bavail as u64, st.f_frsize as u64);
    Ok(avail.saturating_mul(frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_names_escape_reversibly_into_one_component() {
        for t in [
            "", "a", "team-a_1", "../etc", "a/b", ".", "..", "%41", "ünï",
        ] {
            let d = tenant_dir(t);
            assert!(
                !d.contains('/') && d != "." && d != ".." && !d.is_empty(),
                "{d}"
            );
            assert_eq!(tenant_from_dir(&d).as_deref(), Some(t));
        }
        assert_eq!(tenant_from_dir("%zz"), None);
    }

    #[test]
    fn hour_dirs_are_utc_and_reversible() {
        assert_eq!(hour_dir(0), "1970010100");
        // 2023-11-14T22:13:20Z
        assert_eq!(
            hour_dir(hour_of(Signal::Metrics, 1_700_000_000_000)),
            "2023111422"
        );
        assert_eq!(
            hour_of(Signal::Logs, 1_700_000_000_000_000_000),
            1_699_999_200_000
        );
        let extremes = [
            hour_of(Signal::Metrics, i64::MIN),
            hour_of(Signal::Metrics, i64::MAX),
        ];
        for h in [
            -HOUR_MS,
            0,
            1_699_999_200_000,
            4_102_444_800_000,
            extremes[0],
            extremes[1],
        ] {
            assert_eq!(hour_from_dir(&hour_dir(h)), Some(h));
        }
        assert_eq!(hour_from_dir("2023131422"), None);
        assert_eq!(hour_from_dir("99999999999999999999999"), None);
        assert_eq!(hour_from_dir("x"), None);
    }

    #[test]
    fn free_bytes_reads_the_volume() {
        let d = tempfile::tempdir().unwrap();
        assert!(free_bytes(d.path()).unwrap() > 0);
    }
}
