//! Behaviour tests of the streaming miner (masking details are in `mask`).

use super::*;

fn miner() -> PatternMiner {
    PatternMiner::new(MinerConfig::default()).unwrap()
}

fn id(m: &mut PatternMiner, line: &str) -> u64 {
    m.observe(line, 0).pattern_id
}

fn metric(m: &PatternMiner, name: &str) -> u64 {
    m.metrics().into_iter().find(|(n, _)| *n == name).unwrap().1
}

/// A stream with numbers, ips, words in variable positions and repeats.
fn stream(n: usize) -> Vec<String> {
    let words = ["alpha", "beta", "gamma", "delta", "eps", "zeta"];
    (0..n)
        .map(|i| match i % 7 {
            0 => format!(
                "Receiving block blk_{i} src: /10.0.{}.{}:50010",
                i % 256,
                i % 7
            ),
            1 => format!("removing item {} from queue now", words[i % words.len()]),
            2 => format!("user {} logged in from host-{}", words[(i / 7) % 3], i % 5),
            3 => format!("GC pause {}ms", i % 300),
            4 => "service ready".to_string(),
            5 => format!("worker {} exited with {}", i % 13, words[i % 2]),
            _ => format!("job {i} took {}.{}s on /var/lib/job/{i}/out", i % 9, i % 10),
        })
        .collect()
}

#[test]
fn same_template_same_id_different_templates_differ() {
    let mut m = miner();
    let a = id(&mut m, "Connection from 10.0.0.1 port 22 closed");
    let b = id(&mut m, "Connection from 192.168.1.20 port 51234 closed");
    let c = id(&mut m, "Connection from 10.0.0.1 port 22 reset");
    let d = id(&mut m, "Disk /dev/sda1 is 91% full");
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_ne!(a, d);
    assert_ne!(c, d);
    assert_eq!(
        m.pattern(a).unwrap().template,
        "Connection from <*> port <*> closed"
    );
    assert_eq!(m.pattern(a).unwrap().count, 2);
}

#[test]
fn new_pattern_signal_and_rate_window() {
    let mut m = PatternMiner::new(MinerConfig {
        rate_bucket: 10,
        rate_buckets: 3,
        ..MinerConfig::default()
    })
    .unwrap();
    let r = m.observe("job 1 started", 0);
    assert!(r.is_new);
    assert_eq!((r.count, r.window_count), (1, 1));
    let pid = r.pattern_id;
    for ts in [5, 12, 25] {
        let r = m.observe("job 7 started", ts);
        assert!(!r.is_new);
        assert_eq!(r.pattern_id, pid);
    }
    // window at 25 covers buckets 0..=2 -> all four lines
    assert_eq!(m.window_count(pid, 25), 4);
    // at 35 the window is buckets 1..=3
    assert_eq!(m.window_count(pid, 35), 2);
    assert_eq!(m.window_count(pid, 1000), 0);
    let r = m.observe("job 8 failed", 40);
    assert!(r.is_new);
    assert_eq!(metric(&m, "sightline_patterns_created_total"), 2);
    assert_eq!(metric(&m, "sightline_patterns_lines_total"), 5);
}

#[test]
fn word_subsumed_by_general_template() {
    let mut m = miner();
    let g = id(
        &mut m,
        "not allocating divert_blk for non-ethernet device sit0x1",
    );
    assert_eq!(
        m.pattern(g).unwrap().template,
        "not allocating divert_blk for non-ethernet device <*>"
    );
    assert_eq!(
        id(
            &mut m,
            "not allocating divert_blk for non-ethernet device lo"
        ),
        g
    );
    // a non-word value (no letters) is not taken by the wildcard
    assert_ne!(
        id(
            &mut m,
            "not allocating divert_blk for non-ethernet device ****"
        ),
        g
    );
}

#[test]
fn one_position_merge_after_enough_distinct_words() {
    let mut m = miner();
    let ids: Vec<u64> = ["ftp", "echo", "rsync"]
        .iter()
        .map(|w| id(&mut m, &format!("removing service {w} from pool")))
        .collect();
    // three distinct words: still three patterns
    assert_eq!(ids.len(), 3);
    assert!(ids[0] != ids[1] && ids[1] != ids[2]);
    let r = m.observe("removing service telnet from pool", 0);
    assert!(!r.is_new, "merged into an existing pattern");
    let merged = r.pattern_id;
    assert_eq!(merged, ids[0], "the oldest id survives");
    assert_eq!(
        m.pattern(merged).unwrap().template,
        "removing service <*> from pool"
    );
    for &old in &ids {
        assert_eq!(m.resolve(old), Some(merged));
    }
    // cached keys of merged patterns now answer the surviving id
    assert_eq!(id(&mut m, "removing service echo from pool"), merged);
    assert_eq!(id(&mut m, "removing service sshd from pool"), merged);
    assert_eq!(m.pattern(merged).unwrap().count, 6);
    assert_eq!(metric(&m, "sightline_patterns_merged_total"), 3);
}

#[test]
fn first_token_and_short_templates_are_never_generalised() {
    let mut m = miner();
    let first: Vec<u64> = ["boot", "wait", "halt", "reboot", "start"]
        .iter()
        .map(|w| id(&mut m, &format!("{w} (command 12)")))
        .collect();
    let mut uniq = first.clone();
    uniq.sort_unstable();
    uniq.dedup();
    assert_eq!(uniq.len(), 5);
    let short: Vec<u64> = ["running", "normal", "warning", "critical", "blocked"]
        .iter()
        .map(|w| id(&mut m, w))
        .collect();
    let mut uniq = short.clone();
    uniq.sort_unstable();
    uniq.dedup();
    assert_eq!(uniq.len(), 5);
}

#[test]
fn cap_and_eviction_keep_memory_bounded() {
    let cfg = MinerConfig {
        max_templates: 50,
        max_cached_keys: 100,
        ..MinerConfig::default()
    };
    let mut m = PatternMiner::new(cfg).unwrap();
    let hot = id(&mut m, "heartbeat ok from 10.0.0.1");
    for i in 0..5000 {
        // distinct constant words -> distinct templates
        // a one-word line per i: never generalised, so one template each
        let w: String = format!("{i:x}")
            .chars()
            .map(|c| (b'g' + c.to_digit(16).unwrap() as u8) as char)
            .collect();
        m.observe(&w, i);
        if i % 10 == 0 {
            assert_eq!(m.observe("heartbeat ok from 10.0.0.2", i).pattern_id, hot);
        }
        assert!(m.len() <= 50);
        assert!(m.cache.len() <= 100);
        assert!(m.diffs.len() <= 100);
    }
    assert!(metric(&m, "sightline_patterns_evicted_total") > 4000);
    assert!(metric(&m, "sightline_patterns_cache_resets_total") > 0);
    assert!(m.aliases.len() <= 200);
    // the recently used pattern survived the evictions
    assert_eq!(m.resolve(hot), Some(hot));
}

#[test]
fn snapshot_restore_gives_identical_ids() {
    let lines = stream(3000);
    let mut a = miner();
    for (i, l) in lines[..1500].iter().enumerate() {
        a.observe(l, i as i64);
    }
    let json = serde_json::to_string(&a.snapshot()).unwrap();
    let mut b = PatternMiner::restore(serde_json::from_str(&json).unwrap()).unwrap();
    assert_eq!(b.snapshot(), a.snapshot());
    for (i, l) in lines[1500..].iter().enumerate() {
        let ra = a.observe(l, i as i64).pattern_id;
        let rb = b.observe(l, i as i64).pattern_id;
        assert_eq!(ra, rb, "line {l}");
    }
    assert_eq!(
        serde_json::to_string(&a.snapshot()).unwrap(),
        serde_json::to_string(&b.snapshot()).unwrap()
    );
    // new lines after restore continue the id sequence
    let na = a.observe("a brand new kind of message", 0).pattern_id;
    let nb = b.observe("a brand new kind of message", 0).pattern_id;
    assert_eq!(na, nb);
}

#[test]
fn restore_rejects_bad_snapshots() {
    let mut m = miner();
    for l in stream(50) {
        m.observe(&l, 0);
    }
    let mut s = m.snapshot();
    s.version = 99;
    assert!(matches!(
        PatternMiner::restore(s),
        Err(crate::Error::BadSnapshot(_))
    ));
    let mut s = m.snapshot();
    s.next_id = 1;
    assert!(matches!(
        PatternMiner::restore(s),
        Err(crate::Error::BadSnapshot(_))
    ));
    let mut s = m.snapshot();
    s.config.max_templates = 0;
    assert!(PatternMiner::restore(s).is_err());
    assert!(serde_json::from_str::<MinerSnapshot>(r#"{"version":1}"#).is_err());
}

#[test]
fn deterministic() {
    let lines = stream(2000);
    let run = || {
        let mut m = miner();
        let ids: Vec<u64> = lines.iter().map(|l| id(&mut m, l)).collect();
        (ids, serde_json::to_string(&m.snapshot()).unwrap())
    };
    assert_eq!(run(), run());
}

#[test]
fn bad_input_never_panics() {
    let mut m = PatternMiner::new(MinerConfig {
        max_line_bytes: 1000,
        ..MinerConfig::default()
    })
    .unwrap();
    let long = "é".repeat(5000);
    let many_tokens = (0..3000)
        .map(|i| format!("w{i}x y"))
        .collect::<Vec<_>>()
        .join(" ");
    let inputs = [
        "",
        " ",
        "\t\t",
        "<*>",
        "<*> <*> <*>",
        "\u{0}\u{1}\u{7f}",
        "((((((((",
        ")))) ]]]] }}}}",
        "=:=:=",
        "key=",
        "a.....",
        "\u{FFFD}\u{FFFD} 12",
        long.as_str(),
        many_tokens.as_str(),
    ];
    for (i, l) in inputs.iter().enumerate() {
        let r = m.observe(l, i as i64);
        assert!(r.count >= 1);
    }
    // empty lines share one pattern
    assert_eq!(id(&mut m, ""), id(&mut m, "   "));
    assert!(metric(&m, "sightline_patterns_truncated_lines_total") >= 2);
    for p in m.patterns() {
        assert!(p.template.len() <= 3000, "{}", p.template.len());
    }
}

#[test]
fn config_defaults_and_validation() {
    let cfg: MinerConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, MinerConfig::default());
    assert!(cfg.validate().is_ok());
    let bad = MinerConfig {
        max_templates: 0,
        rate_bucket: 0,
        ..MinerConfig::default()
    };
    let msg = bad.validate().unwrap_err().to_string();
    assert!(
        msg.contains("max_templates") && msg.contains("rate_bucket"),
        "{msg}"
    );
    assert!(serde_json::from_str::<MinerConfig>(r#"{"nope": 1}"#).is_err());
}

#[test]
fn merge_at_second_token_relists_the_template() {
    let mut m = miner();
    let ids: Vec<u64> = ["alice", "bob", "carol", "dave"]
        .iter()
        .map(|u| id(&mut m, &format!("user {u} logged in")))
        .collect();
    assert_eq!(ids[3], ids[0]);
    assert_eq!(m.pattern(ids[0]).unwrap().template, "user <*> logged in");
    // an unseen word at the merged position finds the template via the index
    assert_eq!(id(&mut m, "user zed logged in"), ids[0]);
    assert_ne!(id(&mut m, "user zed logged out"), ids[0]);
    // and a restored miner finds it too
    let mut r = PatternMiner::restore(m.snapshot()).unwrap();
    assert_eq!(id(&mut r, "user yan logged in"), ids[0]);
}

#[test]
fn bytes_and_window_counts() {
    let mut m = PatternMiner::new(MinerConfig {
        rate_bucket: 10,
        rate_buckets: 2,
        ..MinerConfig::default()
    })
    .unwrap();
    let a = m
        .observe_bytes(b"read 12 bytes from \xff\xfe", 0)
        .pattern_id;
    assert_eq!(
        m.pattern(a).unwrap().template,
        "read <*> bytes from \u{FFFD}\u{FFFD}"
    );
    assert_eq!(
        m.observe_bytes(b"read 99 bytes from \xff\xfe", 5)
            .pattern_id,
        a
    );
    let b = m.observe("disk full", 15).pattern_id;
    m.observe("disk full", 16);
    m.observe("disk full", 17);
    assert_eq!(m.window_counts(17), vec![(b, 3), (a, 2)]);
    // at 25 the window holds buckets 1 and 2 only
    assert_eq!(m.window_counts(25), vec![(b, 3)]);
    assert!(m.window_counts(100).is_empty());
}

#[test]
fn merge_signatures_stay_bounded_without_evictions() {
    let mut m = PatternMiner::new(MinerConfig {
        max_cached_keys: 64,
        ..MinerConfig::default()
    })
    .unwrap();
    // 2000 distinct templates, all below the template cap: nothing is evicted
    for i in 0..2000u32 {
        let w: String = format!("{i:x}")
            .chars()
            .map(|c| (b'g' + c.to_digit(16).unwrap() as u8) as char)
            .collect();
        m.observe(&format!("job {w} finished in stage q{w} now"), 0);
        assert!(m.diffs.len() <= 64, "{}", m.diffs.len());
    }
    assert_eq!(metric(&m, "sightline_patterns_evicted_total"), 0);
}
