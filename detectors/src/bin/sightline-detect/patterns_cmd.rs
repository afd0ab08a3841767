//! `patterns INPUT OUTPUT`: mines the log lines of INPUT (one message per line,
//! invalid UTF-8 replaced) with the streaming miner and writes one
//! `ID<TAB>TEMPLATE` line per input line.
//!
//! Each line gets its id online, in order. After the last line the ids are
//! resolved once more: a pattern that was later merged into an older one is
//! written under the surviving id with the final template (the library's
//! `PatternMiner::resolve`). Nothing else is revised, so this is the grouping a
//! streaming consumer sees when it resolves ids at the end.
//!
//! `bench_rows` times the miner on a synthetic stream of 1,000,000 lines (on-CPU
//! time of the mining thread where Linux reports it, else wall time).

use std::collections::HashMap;
use std::io::Write;
use std::time::Instant;

use sightline_detectors::patterns::{MinerConfig, PatternMiner};

use crate::BenchRow;

pub fn run(input: &str, output: &str) -> Result<(), Box<dyn std::error::Error>> {
    let data = std::fs::read(input).map_err(|e| format!("reading {input}: {e}"))?;
    let mut miner = PatternMiner::new(MinerConfig::default())?;
    let mut ids = Vec::new();
    for (i, raw) in split_lines(&data).enumerate() {
        let line = String::from_utf8_lossy(raw);
        ids.push(miner.observe(&line, i as i64).pattern_id);
    }
    let file = std::fs::File::create(output).map_err(|e| format!("creating {output}: {e}"))?;
    let mut out = std::io::BufWriter::new(file);
    let mut finals: HashMap<u64, (u64, String)> = HashMap::new();
    for id in ids {
        let (fid, tpl) = finals.entry(id).or_insert_with(|| {
            let fid = miner.resolve(id).unwrap_or(id);
            let tpl = miner.pattern(fid).map(|p| p.template).unwrap_or_default();
            (fid, tpl)
        });
        writeln!(out, "{fid}\t{tpl}")?;
    }
    out.flush()?;
    Ok(())
}

/// Lines of a file: split on `\n`, a trailing `\r` dropped, no empty piece
/// after a final newline.
fn split_lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    let empty = data.is_empty();
    body.split(|&b| b == b'\n')
        .filter(move |_| !empty)
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
}

pub fn bench_rows() -> Result<Vec<BenchRow>, Box<dyn std::error::Error>> {
    const LINES: usize = 1_000_000;
    let lines = synthetic_log(LINES, 42);
    let mut miner = PatternMiner::new(MinerConfig::default())?;
    let start = Instant::now();
    let cpu_start = thread_cpu_seconds();
    let mut new_patterns = 0u64;
    for (i, line) in lines.iter().enumerate() {
        // timestamps: 1 ms apart
        if miner.observe(line, i as i64).is_new {
            new_patterns += 1;
        }
    }
    let wall = start.elapsed().as_secs_f64();
    // On-CPU time of this thread when the kernel reports it: on a shared machine
    // wall time also counts the time spent waiting for a core.
    let seconds = match (cpu_start, thread_cpu_seconds()) {
        (Some(a), Some(b)) if b > a => b - a,
        _ => wall,
    };
    if new_patterns == 0 {
        return Err("patterns bench: the miner found no patterns".into());
    }
    Ok(vec![BenchRow {
        capability: "log patterns (streaming miner)".to_string(),
        items: LINES as u64,
        unit: "lines",
        seconds,
    }])
}

/// Time this thread has run on a CPU (Linux `/proc/thread-self/schedstat`, ns).
fn thread_cpu_seconds() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(ns as f64 / 1e9)
}

/// A deterministic mix of service logs: 40 message shapes with numbers, ids,
/// IPs, hex, paths, durations, user and host names, timestamps and free words.
pub fn synthetic_log(n: usize, seed: u64) -> Vec<String> {
    let mut r = Rng(seed | 1);
    const USERS: &[&str] = &[
        "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi",
    ];
    const VERBS: &[&str] = &["GET", "POST", "PUT", "DELETE"];
    const LEVELS: &[&str] = &["connecting", "retrying", "closing", "draining", "ready"];
    (0..n)
        .map(|_| {
            let k = r.below(40);
            let a = r.below(100_000);
            let b = r.below(65_536);
            let ip = format!("10.{}.{}.{}", r.below(256), r.below(256), r.below(256));
            let user = USERS[r.below(USERS.len() as u64) as usize];
            match k {
                0 => format!("Receiving block blk_{a}{b} src: /{ip}:{b} dest: /{ip}:50010"),
                1 => format!("PacketResponder {} for block blk_-{a}{b} terminating", r.below(3)),
                2 => format!("Accepted password for {user} from {ip} port {b} ssh2"),
                3 => format!("session opened for user {user} by (uid={})", r.below(1000)),
                4 => format!(
                    "{} /api/v1/items/{a} HTTP/1.1 {} {}ms",
                    VERBS[r.below(4) as usize],
                    200 + r.below(5) * 100,
                    r.below(900)
                ),
                5 => format!("Block broadcast_{a}_piece0 stored as bytes in memory (estimated size {}.{} KB, free {}.0 MB)", r.below(500), r.below(10), r.below(900)),
                6 => format!("Connection to {ip}:{b} {} after {} attempts", LEVELS[r.below(5) as usize], r.below(9)),
                7 => format!("worker {} exited with status {} in {}.{}s", r.below(64), r.below(3), a, b % 100),
                8 => format!("checkpoint {a} written to /var/lib/app/data/{b}/chk-{a}.bin ({} bytes)", a * 7),
                9 => format!("cache miss key=user:{a} shard={} latency={}us", r.below(16), b),
                10 => format!("Tue Aug {:02} {:02}:{:02}:{:02} 2025 cron[{a}]: job {user} finished", 1 + r.below(28), r.below(24), r.below(60), r.below(60)),
                11 => format!("kernel: eth0: link up, {} Mbps, full duplex, lpa 0x{b:04x}", [100, 1000, 10000][r.below(3) as usize]),
                12 => format!("txn {:016x} committed at 2025-11-{:02}T{:02}:{:02}:{:02}Z", a * 2654435761, 1 + r.below(28), r.below(24), r.below(60), r.below(60)),
                13 => format!("request id={:08x}-{:04x}-4abc-9def-{:012x} user={user} ok", a, b, a * b),
                14 => format!("GC pause {}ms young={}MB old={}MB", r.below(300), r.below(512), r.below(4096)),
                15 => format!("Failed password for invalid user {} from {ip} port {b} ssh2", ["admin", "test", "oracle", "guest", "pi"][r.below(5) as usize]),
                16 => format!("removing container {a:x}{b:x} from pool {}", r.below(8)),
                17 => format!("disk /dev/sd{} usage at {}% ({} of {} blocks)", ["a", "b", "c"][r.below(3) as usize], r.below(100), a, a + b),
                18 => format!("job {a} state changed from {} to {}", LEVELS[r.below(5) as usize], LEVELS[r.below(5) as usize]),
                19 => format!("Verification succeeded for blk_{a}"),
                20 => "Starting periodic health check".to_string(),
                21 => format!("health check passed for {} services", r.below(40)),
                22 => format!("Exception in thread \"main\" java.io.IOException: Broken pipe at line {a}"),
                23 => format!("upstream timed out (110: Connection timed out) while reading response header from upstream, client: {ip}"),
                24 => format!("node-{} heartbeat lost, last seen {} s ago", r.below(512), r.below(120)),
                25 => format!("Loaded module {} version {}.{}.{}", ["auth", "db", "net", "fs"][r.below(4) as usize], r.below(5), r.below(20), r.below(100)),
                26 => format!("replica {} lag {} bytes behind primary {ip}", r.below(5), a),
                27 => format!("quota exceeded for tenant t{a}: {} series > {} limit", b, 10_000),
                28 => format!("WARN memory usage {}% above threshold {}%", 80 + r.below(20), 80),
                29 => format!("user {user} logged out after {} minutes", r.below(600)),
                30 => format!("Scheduled task {} took {}.{} seconds", a, r.below(100), r.below(1000)),
                31 => format!("mount point /mnt/vol{} remounted read-only", r.below(20)),
                32 => format!("Deleting block blk_{a} file /data/{b}/current/blk_{a}"),
                33 => format!("rpc call {}.{} failed: deadline exceeded after {}ms", ["Store", "Query", "Ingest"][r.below(3) as usize], ["Get", "Put", "Scan"][r.below(3) as usize], r.below(5000)),
                34 => format!("temperature sensor {} reads {}C", r.below(16), 20 + r.below(70)),
                35 => format!("MAC {:02X}:{:02X}:{:02X}:{:02X}:{:02X}:{:02X} assigned to port {}", r.below(256), r.below(256), r.below(256), r.below(256), r.below(256), r.below(256), r.below(48)),
                36 => format!("compaction of level {} produced {} files, {} KB", r.below(7), r.below(30), a),
                37 => format!("tls handshake with {ip} failed: certificate expired on {}-{:02}-{:02}", 2020 + r.below(6), 1 + r.below(12), 1 + r.below(28)),
                38 => format!("queue {} depth {} dropped {}", ["ingest", "export", "alerts"][r.below(3) as usize], b, r.below(10)),
                _ => format!("pid {a} ({}) killed by signal {}", ["java", "python3", "nginx", "postgres"][r.below(4) as usize], r.below(16)),
            }
        })
        .collect()
}

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) % n.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_lines_handles_endings() {
        let v: Vec<&[u8]> = split_lines(b"a\r\nb\n\nc\n").collect();
        assert_eq!(v, vec![&b"a"[..], b"b", b"", b"c"]);
        assert_eq!(split_lines(b"").count(), 0);
        assert_eq!(split_lines(b"x").count(), 1);
        assert_eq!(split_lines(b"\n").count(), 1);
    }

    #[test]
    fn cli_writes_one_line_per_input_line() {
        let dir = std::env::temp_dir().join(format!("sl-patterns-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let input = dir.join("in.txt");
        let output = dir.join("out.txt");
        let mut data = b"open file 12\nopen file 13\n\n\xff\xfe bad utf8 7\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', 100_000));
        data.push(b'\n');
        std::fs::write(&input, &data).unwrap();
        run(input.to_str().unwrap(), output.to_str().unwrap()).unwrap();
        let out = std::fs::read_to_string(&output).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 5);
        assert_eq!(lines[0], lines[1]);
        assert!(lines[0].ends_with("\topen file <*>"), "{}", lines[0]);
        assert!(lines[3].contains("bad utf8 <*>"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn synthetic_log_is_deterministic_and_varied() {
        let a = synthetic_log(2000, 7);
        assert_eq!(a, synthetic_log(2000, 7));
        let mut miner = PatternMiner::new(MinerConfig::default()).unwrap();
        for (i, l) in a.iter().enumerate() {
            miner.observe(l, i as i64);
        }
        assert!(
            miner.len() >= 30 && miner.len() < 200,
            "{} patterns",
            miner.len()
        );
    }
}
