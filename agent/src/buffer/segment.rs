//! The on-disk format of buffer segments and the scan that validates them.
//!
//! A segment file `<seq:020>.seg` starts with the 8-byte magic `SLBUF\0\0\x01` and then
//! holds frames back to back:
//!
//! ```text
//! u32 LE body length · u32 LE CRC32C(body) · body = u8 signal · u32 LE items · payload
//! ```
//! `signal` is 1 metrics, 2 logs, 3 traces; `items` the data points / log records /
//! spans in the request; `payload` the protobuf-encoded OTLP `Export*ServiceRequest`.
//! [`scan`] walks a whole segment: a frame whose header or body runs past the end is a
//! torn tail (a write cut short), anything else that does not check out (magic, CRC,
//! signal, a length over [`MAX_BODY`]) is corruption.

/// Magic bytes at the start of every segment (the last byte is the format version).
pub const MAGIC: &[u8; 8] = b"SLBUF\x00\x00\x01";
/// Frame header: length and CRC.
pub const HEADER: usize = 8;
/// Largest frame body accepted (a bigger length is corruption).
pub const MAX_BODY: usize = 64 << 20;

/// Which OTLP signal a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    Metrics = 1,
    Logs = 2,
    Traces = 3,
}

impl Signal {
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(Self::Metrics),
            2 => Some(Self::Logs),
            3 => Some(Self::Traces),
            _ => None,
        }
    }

    /// Label value in the buffer metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Metrics => "metrics",
            Self::Logs => "logs",
            Self::Traces => "traces",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize - 1
    }

    pub(crate) const ALL: [Signal; 3] = [Self::Metrics, Self::Logs, Self::Traces];
}

const fn crc32c_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

static CRC32C: [u32; 256] = crc32c_table();

/// CRC-32C (Castagnoli), as used by iSCSI, ext4 and LevelDB.
pub fn crc32c(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for b in bytes {
        c = CRC32C[((c ^ u32::from(*b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// One frame, ready to append.
pub fn frame(signal: Signal, items: u32, payload: &[u8]) -> Vec<u8> {
    let body_len = 5 + payload.len();
    let mut out = Vec::with_capacity(HEADER + body_len);
    out.extend_from_slice(&(body_len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.push(signal as u8);
    out.extend_from_slice(&items.to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32c(&out[HEADER..]);
    out[4..8].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Where a valid frame sits in its segment and what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameMeta {
    pub offset: u64,
    /// Header plus body.
    pub len: u64,
    pub signal: Signal,
    pub items: u32,
}

/// How a segment scan ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanEnd {
    /// Every byte belongs to a valid frame.
    Clean,
    /// The last frame is incomplete (a write cut short) from `at` on.
    TornTail { at: u64 },
    /// Invalid data at `at`.
    Corrupt { at: u64, reason: String },
}

/// The valid frames of a segment and how the scan ended.
#[derive(Debug, Clone)]
pub struct Scan {
    pub frames: Vec<FrameMeta>,
    pub end: ScanEnd,
}

impl Scan {
    /// Bytes of the valid prefix (magic plus valid frames).
    pub fn valid_len(&self) -> u64 {
        self.frames
            .last()
            .map_or(MAGIC.len() as u64, |f| f.offset + f.len)
    }
}

/// Check one frame at `at`; `Ok(None)` at the end of `data`.
pub fn parse_at(data: &[u8], at: usize) -> Result<Option<(FrameMeta, &[u8])>, ScanEnd> {
    let rest = data.len().saturating_sub(at);
    if rest == 0 {
        return Ok(None);
    }
    let torn = ScanEnd::TornTail { at: at as u64 };
    if rest < HEADER {
        return Err(torn);
    }
    let word = |i: usize| u32::from_le_bytes([data[i], data[i + 1], data[i + 2], data[i + 3]]);
    let len = word(at) as usize;
    let crc = word(at + 4);
    let corrupt = |reason: String| ScanEnd::Corrupt {
        at: at as u64,
        reason,
    };
    if !(5..=MAX_BODY).contains(&len) {
        return Err(corrupt(format!("frame length {len} out of range")));
    }
    if len > rest - HEADER {
        return Err(torn);
    }
    let body = &data[at + HEADER..at + HEADER + len];
    if crc32c(body) != crc {
        return Err(corrupt("CRC32C mismatch".into()));
    }
    let signal = Signal::from_byte(body[0])
        .ok_or_else(|| corrupt(format!("unknown signal byte {}", body[0])))?;
    let items = u32::from_le_bytes([body[1], body[2], body[3], body[4]]);
    Ok(Some((
        FrameMeta {
            offset: at as u64,
            len: (HEADER + len) as u64,
            signal,
            items,
        },
        &body[5..],
    )))
}

/// Validate a whole segment file's content.
pub fn scan(data: &[u8]) -> Scan {
    let mut frames = Vec::new();
    if data.len() < MAGIC.len() {
        let end = if MAGIC.starts_with(data) {
            ScanEnd::TornTail { at: 0 }
        } else {
            ScanEnd::Corrupt {
                at: 0,
                reason: "bad magic".into(),
            }
        };
        return Scan { frames, end };
    }
    if &data[..MAGIC.len()] != MAGIC {
        return Scan {
            frames,
            end: ScanEnd::Corrupt {
                at: 0,
                reason: "bad magic".into(),
            },
        };
    }
    let mut at = MAGIC.len();
    loop {
        match parse_at(data, at) {
            Ok(None) => {
                return Scan {
                    frames,
                    end: ScanEnd::Clean,
                }
            }
            Ok(Some((meta, _))) => {
                at += meta.len as usize;
                frames.push(meta);
            }
            Err(end) => return Scan { frames, end },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(frames: &[(Signal, u32, &[u8])]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        for (s, n, p) in frames {
            out.extend(frame(*s, *n, p));
        }
        out
    }

    #[test]
    fn crc32c_matches_the_reference_vectors() {
        // RFC 3720 B.4 and the classic check value.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62A8_AB43);
    }

    #[test]
    fn frames_round_trip_and_scan_clean() {
        let data = segment(&[(Signal::Logs, 3, b"abc"), (Signal::Metrics, 7, b"")]);
        let s = scan(&data);
        assert_eq!(s.end, ScanEnd::Clean);
        assert_eq!(s.frames.len(), 2);
        assert_eq!(s.frames[0].signal, Signal::Logs);
        assert_eq!(s.frames[0].items, 3);
        assert_eq!(s.valid_len(), data.len() as u64);
        let (meta, payload) = parse_at(&data, s.frames[0].offset as usize)
            .unwrap()
            .unwrap();
        assert_eq!((meta.items, payload), (3, &b"abc"[..]));
    }

    #[test]
    fn torn_tails_and_corruption_are_told_apart() {
        let data = segment(&[(Signal::Logs, 1, b"hello"), (Signal::Logs, 1, b"world")]);
        let whole = scan(&data);
        // cut inside the second frame: torn tail after the first
        let cut = &data[..data.len() - 2];
        let s = scan(cut);
        assert_eq!(s.frames.len(), 1);
        assert_eq!(
            s.end,
            ScanEnd::TornTail {
                at: whole.frames[1].offset
            }
        );
        // a flipped payload bit: CRC mismatch
        let mut bad = data.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(matches!(scan(&bad).end, ScanEnd::Corrupt { .. }));
        // garbage instead of the magic
        assert!(matches!(scan(b"garbage!!").end, ScanEnd::Corrupt { .. }));
        assert!(matches!(scan(b"SLB").end, ScanEnd::TornTail { at: 0 }));
        // an absurd length is corruption, not a torn tail
        let mut huge = MAGIC.to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        huge.extend_from_slice(&[0; 12]);
        assert!(matches!(scan(&huge).end, ScanEnd::Corrupt { .. }));
    }
}
