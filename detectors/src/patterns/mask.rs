//! Variable masking: one log line in, its masked token sequence out.
//!
//! The line is split on whitespace. Each token is taken apart into a leading
//! run of openers (`( [ { < ' " \``), a core, and a trailing run of closers and
//! punctuation (`) ] } > ' " \` , ; : .`; a closing bracket stays in the core
//! when the core opened it). Inside the core an alphabetic `key=`, `key:` or
//! `key.....` prefix is kept as text. What remains of the core is replaced by
//! [`VAR`] when its characters say it is a value:
//!
//! - numbers, ids, IPs, hex, versions, timestamps: any ASCII digit — except
//!   short device/level names such as `eth0`, `ee0`, `sda1`, `L2` (one to four
//!   lower-case letters or one capital, then one digit), which name fixed things;
//! - MAC / IPv6-like groups (`FF:F2:9F:16`, `fe80::1`) with a digit;
//! - paths: starting with `/`, `./`, `../`, `~/`, or holding two or more `/` or `\`.
//!
//! Two context rules follow: month and weekday names next to a masked token are
//! part of a timestamp (`Tue Aug 09 10:08:23`), and a size or duration unit
//! right after a masked number is part of it (`93.0 B`, `5.2 KB`, `12 ms`).
//! Finally runs of consecutive whole-token variables collapse into one, so a
//! variable-length list of values (`an14 an15 an16 ...`) gives one template.
//!
//! The output is written into a caller-owned buffer as the tokens joined by a
//! single space, which is both the exact-match key and the template text; the
//! caller also gets each token's byte range in that buffer. No allocation
//! happens once the buffers have grown to the longest line seen.

/// The wildcard that stands for a variable in templates.
pub const VAR: &str = "<*>";

const LEAD: &[u8] = b"([{<'\"`";
const TRAIL: &[u8] = b")]}>'\"`,;:.";
const MONTHS_DAYS: &[&str] = &[
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec", "Mon",
    "Tue", "Wed", "Thu", "Fri", "Sat", "Sun",
];
const UNITS: &[&str] = &[
    "B", "KB", "MB", "GB", "TB", "PB", "KiB", "MiB", "GiB", "TiB", "K", "M", "G", "ms", "s", "sec",
    "secs", "us", "ns",
];

/// One whitespace token of the input line, as byte offsets into the line.
#[derive(Clone, Copy, Debug, Default)]
struct RawToken {
    start: usize,
    end: usize,
    /// Core before the `key=` split (used for month and unit names).
    bare_start: usize,
    bare_end: usize,
    /// The part that is replaced by `<*>` when `var`.
    core_start: usize,
    core_end: usize,
    var: bool,
}

/// Reusable buffers for [`Masker::mask`].
#[derive(Debug, Default)]
pub struct Masker {
    raw: Vec<RawToken>,
}

/// Result of masking one line: `text` is the masked line, `tokens[i]` the byte
/// range of token `i` in `text`.
#[derive(Debug, Default)]
pub struct Masked {
    pub text: String,
    pub tokens: Vec<(u32, u32)>,
}

impl Masked {
    pub fn token(&self, i: usize) -> &str {
        let (s, e) = self.tokens[i];
        &self.text[s as usize..e as usize]
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

impl Masker {
    /// Masks `line` into `out` (cleared first).
    pub fn mask(&mut self, line: &str, out: &mut Masked) {
        out.text.clear();
        out.tokens.clear();
        self.raw.clear();
        let bytes = line.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            while i < bytes.len() && is_space(bytes[i]) {
                i += 1;
            }
            if i >= bytes.len() {
                break;
            }
            let start = i;
            while i < bytes.len() && !is_space(bytes[i]) {
                i += 1;
            }
            self.raw.push(split_token(line, start, i));
        }
        // Context rules, applied twice so that `Sat Sep 17` masks both names.
        for _ in 0..2 {
            for k in 0..self.raw.len() {
                let t = self.raw[k];
                if t.var {
                    continue;
                }
                let bare = &line[t.bare_start..t.bare_end];
                let prev_var = k > 0 && self.raw[k - 1].var;
                let next_var = k + 1 < self.raw.len() && self.raw[k + 1].var;
                if MONTHS_DAYS.contains(&bare) && (prev_var || next_var) {
                    self.mark_bare_var(k);
                } else if UNITS.contains(&bare) && prev_var {
                    let p = self.raw[k - 1];
                    if p.core_end == p.end {
                        self.mark_bare_var(k);
                    }
                }
            }
        }
        let mut prev_whole_var = false;
        for t in &self.raw {
            let mark = out.text.len();
            if !out.text.is_empty() {
                out.text.push(' ');
            }
            let s = out.text.len();
            if t.var {
                out.text.push_str(&line[t.start..t.core_start]);
                out.text.push_str(VAR);
                out.text.push_str(&line[t.core_end..t.end]);
            } else {
                out.text.push_str(&line[t.start..t.end]);
            }
            // Runs of whole-token variables collapse into one.
            let whole_var = &out.text[s..] == VAR;
            if whole_var && prev_whole_var {
                out.text.truncate(mark);
                continue;
            }
            prev_whole_var = whole_var;
            out.tokens.push((s as u32, out.text.len() as u32));
        }
    }

    fn mark_bare_var(&mut self, k: usize) {
        let t = &mut self.raw[k];
        t.core_start = t.bare_start;
        t.core_end = t.bare_end;
        t.var = true;
    }
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn split_token(line: &str, start: usize, end: usize) -> RawToken {
    let b = line.as_bytes();
    let mut i = start;
    while i < end && LEAD.contains(&b[i]) {
        i += 1;
    }
    let mut j = end;
    while j > i && TRAIL.contains(&b[j - 1]) {
        let c = b[j - 1];
        let open = match c {
            b')' => Some(b'('),
            b']' => Some(b'['),
            b'}' => Some(b'{'),
            _ => None,
        };
        if let Some(open) = open {
            let inner = &b[i..j - 1];
            let opens = inner.iter().filter(|&&x| x == open).count();
            let closes = inner.iter().filter(|&&x| x == c).count();
            if opens > closes {
                break;
            }
        }
        j -= 1;
    }
    let mut t = RawToken {
        start,
        end,
        bare_start: i,
        bare_end: j,
        core_start: i,
        core_end: j,
        var: false,
    };
    if i == j {
        return t;
    }
    let core = &line[i..j];
    if !is_whole_value(core) {
        t.core_start = i + key_prefix_len(core.as_bytes());
    }
    t.var = is_variable(&line[t.core_start..j]);
    t
}

/// Length of an alphabetic `key=` / `key:` / `key....` prefix, 0 if none.
fn key_prefix_len(s: &[u8]) -> usize {
    if s.is_empty() || !(s[0].is_ascii_alphabetic() || s[0] == b'_') {
        return 0;
    }
    let mut j = 1;
    while j < s.len() {
        let c = s[j];
        if c == b'=' || c == b':' {
            return if j + 1 < s.len() { j + 1 } else { 0 };
        }
        if c == b'.' && j + 1 < s.len() && s[j + 1] == b'.' {
            let mut k = j;
            while k < s.len() && s[k] == b'.' {
                k += 1;
            }
            return if k < s.len() { k } else { 0 };
        }
        if !(c.is_ascii_alphabetic() || c == b'_' || c == b'.' || c == b'-') {
            return 0;
        }
        j += 1;
    }
    0
}

/// Values recognised as a whole, before any `key:` split: paths and
/// colon/dash separated hex groups (MAC addresses, IPv6).
fn is_whole_value(s: &str) -> bool {
    is_path_start(s) || is_hex_groups(s)
}

fn is_path_start(s: &str) -> bool {
    let rest = s
        .strip_prefix("../")
        .or_else(|| s.strip_prefix("./"))
        .or_else(|| s.strip_prefix("~/"))
        .or_else(|| s.strip_prefix('/'));
    matches!(rest, Some(r) if !r.is_empty())
}

fn is_hex_groups(s: &str) -> bool {
    let b = s.as_bytes();
    let mut groups = 0;
    let mut run = 0;
    let mut digit = false;
    for &c in b {
        if c.is_ascii_hexdigit() {
            run += 1;
            digit |= c.is_ascii_digit();
            if run > 4 {
                return false;
            }
        } else if c == b':' || c == b'-' {
            if run == 0 {
                // "::" inside IPv6 is fine, a leading or doubled dash is not
                if c == b'-' {
                    return false;
                }
            } else {
                groups += 1;
            }
            run = 0;
        } else {
            return false;
        }
    }
    digit && run > 0 && groups >= 2
}

/// Whether a token core (after the `key=` split) is a value.
fn is_variable(s: &str) -> bool {
    if s.is_empty() || s == VAR {
        return s == VAR;
    }
    if is_device_name(s.as_bytes()) {
        return false;
    }
    if s.bytes().any(|c| c.is_ascii_digit()) || is_whole_value(s) {
        return true;
    }
    s.bytes().filter(|&c| c == b'/' || c == b'\\').count() >= 2
}

/// `eth0`, `ee0`, `sda1`, `L2`: 1-4 lower-case letters or one capital, one digit.
fn is_device_name(s: &[u8]) -> bool {
    let n = s.len();
    if !(2..=5).contains(&n) || !s[n - 1].is_ascii_digit() {
        return false;
    }
    let letters = &s[..n - 1];
    letters.iter().all(u8::is_ascii_lowercase) || (n == 2 && letters[0].is_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(line: &str) -> String {
        let mut masker = Masker::default();
        let mut out = Masked::default();
        masker.mask(line, &mut out);
        out.text
    }

    #[test]
    fn numbers_and_ids() {
        assert_eq!(
            m("PacketResponder 1 for block blk_-695229 terminating"),
            "PacketResponder <*> for block <*> terminating"
        );
        assert_eq!(m("took 12.5 ms"), "took <*>");
        assert_eq!(m("attempt_1445144423722_0020_m_000000_0 done"), "<*> done");
        assert_eq!(m("size=1024, count:-3"), "size=<*>, count:<*>");
        assert_eq!(m("threshold.........0"), "threshold.........<*>");
    }

    #[test]
    fn ips_and_hex() {
        assert_eq!(
            m("connect to 10.251.73.220:50010 from /10.0.0.1"),
            "connect to <*> from <*>"
        );
        assert_eq!(m("addr 0x7fed806eb5d and deadbeef12"), "addr <*> and <*>");
        assert_eq!(m("mac FF:F2:9F:16:DC:81 ok"), "mac <*> ok");
        assert_eq!(m("ipv6 fe80::1:2 up"), "ipv6 <*> up");
        // words made of hex letters without a digit stay words
        assert_eq!(m("be-a-face dead"), "be-a-face dead");
    }

    #[test]
    fn paths() {
        assert_eq!(
            m("Error loading /home/x/run.rts: bad"),
            "Error loading <*>: bad"
        );
        assert_eq!(
            m("Error loading ./runtime_malloc: bad"),
            "Error loading <*>: bad"
        );
        assert_eq!(m("chdir(/p/bg1/da) failed"), "<*> failed");
        assert_eq!(m(r"at C:\Windows\winsxs\cbscore.dll now"), "at C:<*> now");
        assert_eq!(m("and/or stays"), "and/or stays");
    }

    #[test]
    fn timestamps() {
        assert_eq!(
            m("status=M Tue Aug 09 10:08:23 PDT 2005"),
            "status=M <*> PDT <*>"
        );
        assert_eq!(m("at 2016-09-28T04:30:30Z ok"), "at <*> ok");
        assert_eq!(m("May I help"), "May I help");
    }

    #[test]
    fn units_and_devices() {
        assert_eq!(
            m("size 93.0 B, free 317.1 KB)"),
            "size <*> <*>, free <*> <*>)"
        );
        assert_eq!(m("via interface ee0"), "via interface ee0");
        assert_eq!(m("cache L2 error"), "cache L2 error");
        assert_eq!(m("host cadmin1 down"), "host <*> down");
    }

    #[test]
    fn brackets_and_lists() {
        assert_eq!(
            m("synchronized to LOCAL(0), stratum 10"),
            "synchronized to <*>, stratum <*>"
        );
        assert_eq!(m("names an14 an15 an16 an17 done"), "names <*> done");
        assert_eq!(
            m("Link [LNKA] (IRQs 3 4 5) *14"),
            "Link [LNKA] (IRQs <*> <*>) <*>"
        );
    }

    #[test]
    fn odd_input() {
        assert_eq!(m(""), "");
        assert_eq!(m("   \t "), "");
        assert_eq!(m("((( ))) :::"), "((( ))) :::");
        assert_eq!(m("é 日本 12"), "é 日本 <*>");
        let mut masker = Masker::default();
        let mut out = Masked::default();
        masker.mask("a b  c", &mut out);
        assert_eq!(out.len(), 3);
        assert_eq!(out.token(2), "c");
    }
}
