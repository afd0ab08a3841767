//! Turning a file's lines into records.
//!
//! Per output stream (stdout/stderr, or none for plain files) an [`Assembler`] first joins
//! partial pieces (CRI `P` lines, Docker lines without `\n`) up to the final piece, then,
//! when a [`MultilineRule`] is set, appends continuation lines (stack-trace frames:
//! leading whitespace, `at `, `Caused by:`, `...`) to the previous record. A record is
//! emitted when a non-continuation line arrives, at the `max_lines`/`max_bytes` cap, or
//! after `flush_timeout` without new lines. Each record keeps the byte range
//! `[start, end)` of the lines it came from; [`Assembler::pending_start`] tells the tailer
//! where the oldest not-yet-emitted data begins, so checkpoints never pass it.

use std::time::{Duration, Instant};

use regex::Regex;

use super::format::Line;

/// Which lines continue the previous record.
#[derive(Debug, Clone)]
pub struct MultilineRule {
    pub continuation: Regex,
    pub max_lines: usize,
    pub max_bytes: usize,
    pub flush_timeout: Duration,
}

/// Lines starting with whitespace, `at `, `Caused by:` or `...` (Java/Python/Go traces).
pub const DEFAULT_CONTINUATION: &str = r"^(\s|at\s|Caused by:|\.\.\.)";

impl MultilineRule {
    pub fn default_rule() -> Result<Self, regex::Error> {
        Ok(Self {
            continuation: Regex::new(DEFAULT_CONTINUATION)?,
            max_lines: 500,
            max_bytes: 256 * 1024,
            flush_timeout: Duration::from_secs(1),
        })
    }
}

/// One log record ready to ship.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Offset of the first byte of the first line.
    pub start: u64,
    /// Offset just past the last line's `\n`.
    pub end: u64,
    pub message: String,
    pub stream: Option<&'static str>,
    pub time: u64,
    pub lines: usize,
}

#[derive(Debug)]
struct Pending {
    stream: Option<&'static str>,
    partial: Option<Record>,
    record: Option<Record>,
    updated: Instant,
}

/// Record assembly for one file.
#[derive(Debug)]
pub struct Assembler {
    rule: Option<MultilineRule>,
    /// Cap on a record joined from partial pieces.
    max_bytes: usize,
    pending: Vec<Pending>,
    /// Records cut at the cap since the last call to [`Self::take_truncated`].
    truncated: u64,
}

impl Assembler {
    pub fn new(rule: Option<MultilineRule>, max_bytes: usize) -> Self {
        Self {
            rule,
            max_bytes,
            pending: Vec::new(),
            truncated: 0,
        }
    }

    fn slot_index(&mut self, stream: Option<&'static str>, now: Instant) -> usize {
        match self.pending.iter().position(|p| p.stream == stream) {
            Some(i) => i,
            None => {
                self.pending.push(Pending {
                    stream,
                    partial: None,
                    record: None,
                    updated: now,
                });
                self.pending.len() - 1
            }
        }
    }

    /// Feed the line occupying `[start, end)`; completed records are pushed to `out`.
    pub fn push(&mut self, start: u64, end: u64, line: Line, now: Instant, out: &mut Vec<Record>) {
        let max_bytes = self.max_bytes;
        let mut truncated = 0;
        // Borrow the rule and the slot separately: cloning the rule (a `Regex`) per line
        // cost more than the rest of the assembly.
        let i = self.slot_index(line.stream, now);
        let rule = self.rule.as_ref();
        let slot = &mut self.pending[i];
        slot.updated = now;
        // 1. Join partial pieces.
        let logical = match slot.partial.take() {
            Some(mut p) => {
                p.message.push_str(&line.message);
                p.end = end;
                if line.partial && p.message.len() < max_bytes {
                    slot.partial = Some(p);
                    return;
                }
                if line.partial {
                    truncated += 1;
                }
                p
            }
            None => {
                let r = Record {
                    start,
                    end,
                    message: line.message,
                    stream: line.stream,
                    time: line.time,
                    lines: 1,
                };
                if line.partial && r.message.len() < max_bytes {
                    slot.partial = Some(r);
                    return;
                }
                r
            }
        };
        // 2. Multiline.
        match rule {
            None => out.push(logical),
            Some(rule) => {
                let continues =
                    slot.record.is_some() && rule.continuation.is_match(&logical.message);
                let joins = continues
                    && slot.record.as_ref().is_some_and(|r| {
                        r.lines < rule.max_lines
                            && r.message.len() + 1 + logical.message.len() <= rule.max_bytes
                    });
                if joins {
                    if let Some(r) = slot.record.as_mut() {
                        r.message.push('\n');
                        r.message.push_str(&logical.message);
                        r.end = logical.end;
                        r.lines += 1;
                    }
                } else {
                    if continues {
                        truncated += 1;
                    }
                    if let Some(prev) = slot.record.replace(logical) {
                        out.push(prev);
                    }
                }
            }
        }
        self.truncated += truncated;
    }

    /// Emit records (and partial pieces) idle for at least the flush timeout.
    pub fn flush_idle(&mut self, now: Instant, out: &mut Vec<Record>) {
        let timeout = self
            .rule
            .as_ref()
            .map(|r| r.flush_timeout)
            .unwrap_or(Duration::from_secs(1));
        for p in &mut self.pending {
            if now.saturating_duration_since(p.updated) >= timeout {
                Self::flush_slot(p, out);
            }
        }
        self.sort_out(out);
    }

    /// Emit everything pending (file finished).
    pub fn flush_all(&mut self, out: &mut Vec<Record>) {
        for p in &mut self.pending {
            Self::flush_slot(p, out);
        }
        self.sort_out(out);
    }

    fn flush_slot(p: &mut Pending, out: &mut Vec<Record>) {
        if let Some(r) = p.record.take() {
            out.push(r);
        }
        if let Some(r) = p.partial.take() {
            out.push(r);
        }
    }

    fn sort_out(&self, out: &mut [Record]) {
        out.sort_by_key(|r| r.start);
    }

    /// Start offset of the oldest data not yet emitted as a record.
    pub fn pending_start(&self) -> Option<u64> {
        self.pending
            .iter()
            .flat_map(|p| [p.record.as_ref(), p.partial.as_ref()])
            .flatten()
            .map(|r| r.start)
            .min()
    }

    /// Records cut at a cap since the last call.
    pub fn take_truncated(&mut self) -> u64 {
        std::mem::take(&mut self.truncated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::format::{parse, Format};

    fn feed(a: &mut Assembler, format: Format, text: &str) -> Vec<Record> {
        let now = Instant::now();
        let mut out = Vec::new();
        let mut offset = 0u64;
        for raw in text.split_inclusive('\n') {
            let end = offset + raw.len() as u64;
            let body = raw.strip_suffix('\n').unwrap_or(raw);
            let line = parse(format, body.as_bytes()).unwrap_or_else(|l| l);
            a.push(offset, end, line, now, &mut out);
            offset = end;
        }
        out
    }

    #[test]
    fn cri_partials_merge_per_stream_keeping_time_and_stream() {
        let mut a = Assembler::new(None, 1 << 20);
        let text = "2024-01-01T00:00:01Z stdout P hel\n\
                    2024-01-01T00:00:02Z stderr F err line\n\
                    2024-01-01T00:00:03Z stdout P lo \n\
                    2024-01-01T00:00:04Z stdout F world\n";
        let out = feed(&mut a, Format::Cri, text);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].message, "err line");
        assert_eq!(out[0].stream, Some("stderr"));
        assert_eq!(out[1].message, "hello world");
        assert_eq!(out[1].stream, Some("stdout"));
        assert_eq!(
            out[1].time, 1_704_067_201_000_000_000,
            "time of the first piece"
        );
        assert_eq!(out[1].start, 0);
        assert_eq!(out[1].end, text.len() as u64);
        assert_eq!(a.pending_start(), None);
    }

    #[test]
    fn pending_partial_holds_back_the_safe_offset() {
        let mut a = Assembler::new(None, 1 << 20);
        let out = feed(
            &mut a,
            Format::Cri,
            "2024-01-01T00:00:01Z stdout P a\n2024-01-01T00:00:02Z stderr F b\n",
        );
        assert_eq!(out.len(), 1);
        assert_eq!(a.pending_start(), Some(0));
        let mut rest = Vec::new();
        a.flush_all(&mut rest);
        assert_eq!(rest[0].message, "a");
    }

    #[test]
    fn java_stack_trace_is_one_record() {
        let mut a = Assembler::new(Some(MultilineRule::default_rule().unwrap()), 1 << 20);
        let text = "INFO start\n\
                    ERROR boom java.lang.IllegalStateException: x\n\
                    \tat com.example.A.run(A.java:10)\n\
                    \tat com.example.B.main(B.java:5)\n\
                    Caused by: java.io.IOException: y\n\
                    \t... 2 more\n\
                    INFO next\n";
        let mut out = feed(&mut a, Format::Plain, text);
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[0].message, "INFO start");
        assert_eq!(out[1].lines, 5);
        assert!(out[1].message.starts_with("ERROR boom"));
        assert!(out[1].message.ends_with("\t... 2 more"));
        a.flush_all(&mut out);
        assert_eq!(out[2].message, "INFO next");
    }

    #[test]
    fn multiline_cap_and_idle_flush() {
        let mut rule = MultilineRule::default_rule().unwrap();
        rule.max_lines = 3;
        rule.flush_timeout = Duration::from_millis(10);
        let mut a = Assembler::new(Some(rule), 1 << 20);
        let out = feed(&mut a, Format::Plain, "head\n a\n b\n c\n d\n");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].message, "head\n a\n b");
        assert_eq!(a.take_truncated(), 1);
        let mut later = Vec::new();
        a.flush_idle(Instant::now(), &mut later);
        assert!(later.is_empty(), "not idle yet");
        a.flush_idle(Instant::now() + Duration::from_millis(20), &mut later);
        assert_eq!(later[0].message, " c\n d");
    }
}
