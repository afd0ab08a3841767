//! Crash, concurrency and edge-of-range tests: a child process killed with SIGKILL while
//! writing and flushing, reads racing writes and flushes, timestamps at the ends of `i64`.

use super::*;

/// Child side of the crash test: writes sample `i` of series `crash` (plus a log
/// record) one request at a time, printing `ack <i>` after each acknowledged write,
/// with flushes running all the time, until killed.
fn crash_child(dir: &Path) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut c = cfg(dir);
        c.memtable_flush_bytes = 2048;
        c.wal_segment_bytes = 4096;
        let s = Store::open(c, Arc::new(SystemClock)).unwrap();
        // resume after the last sample that has both its metric and its log (rewriting
        // an identical sample is a no-op)
        let metrics = all_series(&s, "t").first().map_or(0, |s| s.samples.len());
        let logs = s.select_logs("t", 0, i64::MAX, usize::MAX).unwrap().len();
        let first = metrics.min(logs) as i64;
        for i in first.. {
            let b = WriteBatch::Metrics(vec![series(
                &[("__name__", "crash")],
                &[(i, i as f64 / 10.0)],
            )]);
            s.write("t", b).await.unwrap();
            s.write("t", WriteBatch::Logs(vec![log(i, "l")]))
                .await
                .unwrap();
            println!("ack {i}");
        }
    });
}

#[test]
fn sigkill_at_any_moment_loses_no_acknowledged_write() {
    if let Ok(dir) = std::env::var("SL_STORE_CRASH_CHILD") {
        crash_child(Path::new(&dir));
        return;
    }
    use std::io::BufRead;
    let d = tempfile::tempdir().unwrap();
    let mut acked = -1i64;
    for round in 0..4 {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "tests::crash::sigkill_at_any_moment_loses_no_acknowledged_write",
                "--nocapture",
            ])
            .env("SL_STORE_CRASH_CHILD", d.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        let target = acked + 60 + round * 17;
        for line in out.lines() {
            if let Some(i) = line.unwrap().strip_prefix("ack ") {
                acked = i.trim().parse().unwrap();
                if acked >= target {
                    break;
                }
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        assert!(acked >= target, "child stopped early at {acked}");
    }
    let s = Store::open(cfg(d.path()), Arc::new(SystemClock)).unwrap();
    let got = all_series(&s, "t");
    let samples = &got[0].samples;
    // every acknowledged sample is there, in order, once (a few unacknowledged ones may be too)
    assert!(
        samples.len() as i64 > acked,
        "{} samples, {acked} acknowledged",
        samples.len()
    );
    for (i, smp) in samples.iter().enumerate() {
        assert_eq!((smp.timestamp_ms, smp.value), (i as i64, i as f64 / 10.0));
    }
    let logs = s.select_logs("t", 0, i64::MAX, usize::MAX).unwrap();
    assert!(
        logs.len() as i64 > acked,
        "{} logs, {acked} acknowledged",
        logs.len()
    );
    for (i, l) in logs.iter().enumerate() {
        assert_eq!(l.timestamp_ns, i as i64, "no log lost or doubled");
    }
    assert!(s.stats().flushes_total + s.stats().parts_total > 0);
    assert_eq!(s.stats().quarantined_files_total, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extreme_timestamps_round_trip_through_parts_and_restart() {
    let d = tempfile::tempdir().unwrap();
    let s = open(d.path());
    let edge = [
        (i64::MIN, 1.0),
        (-1, 2.0),
        (0, 3.0),
        (i64::MAX - 1, 4.0),
        (i64::MAX, 5.0),
    ];
    s.write(
        "t",
        WriteBatch::Metrics(vec![series(&[("__name__", "edge")], &edge)]),
    )
    .await
    .unwrap();
    s.write(
        "t",
        WriteBatch::Logs(vec![log(i64::MIN, "a"), log(i64::MAX - 1, "b")]),
    )
    .await
    .unwrap();
    s.flush().await.unwrap();
    drop(s);
    let s = open(d.path());
    assert_eq!(s.stats().quarantined_files_total, 0);
    let got = all_series(&s, "t");
    let back: Vec<(i64, f64)> = got[0]
        .samples
        .iter()
        .map(|s| (s.timestamp_ms, s.value))
        .collect();
    assert_eq!(back, edge.to_vec());
    assert_eq!(s.select_logs("t", i64::MIN, i64::MAX, 10).unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_during_writes_and_flushes_see_every_sample_exactly_once() {
    let d = tempfile::tempdir().unwrap();
    let s = Arc::new(open(d.path()));
    let n = 400i64;
    let writer = {
        let s = s.clone();
        tokio::spawn(async move {
            for i in 0..n {
                let b = WriteBatch::Metrics(vec![series(&[("__name__", "seq")], &[(i, i as f64)])]);
                s.write("t", b).await.unwrap();
                if i % 37 == 0 {
                    s.flush().await.unwrap();
                }
            }
        })
    };
    let reader = {
        let s = s.clone();
        tokio::task::spawn_blocking(move || {
            let mut seen = 0usize;
            let mut reads = 0;
            while seen < n as usize {
                let got = s.select_series("t", &[], i64::MIN, i64::MAX).unwrap();
                let samples = got.first().map(|s| s.samples.clone()).unwrap_or_default();
                for (i, smp) in samples.iter().enumerate() {
                    assert_eq!(
                        smp.timestamp_ms, i as i64,
                        "gap or duplicate while flushing"
                    );
                }
                assert!(samples.len() >= seen, "a sample disappeared");
                seen = samples.len();
                reads += 1;
            }
            reads
        })
    };
    writer.await.unwrap();
    let reads = reader.await.unwrap();
    assert!(reads > 1);
    assert!(s.stats().flushes_total >= 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hours_parts_are_merged_and_a_crashed_merge_resolves_at_start() {
    let d = tempfile::tempdir().unwrap();
    let s = open(d.path());
    let hour = d.path().join("metrics/t/2023111422");
    for i in 0..6i64 {
        let b = WriteBatch::Metrics(vec![
            series(&[("__name__", "a")], &[(T0 + i * 1000, i as f64 * 0.5)]),
            series(&[("__name__", "b")], &[(T0 + i * 1000, 4096.0 * i as f64)]),
        ]);
        s.write("t", b).await.unwrap();
        s.flush().await.unwrap();
        if i == 0 {
            std::fs::copy(
                hour.join("part-0000000001.parquet"),
                d.path().join("saved.parquet"),
            )
            .unwrap();
        }
    }
    wait_for(|| s.stats().compactions_total >= 1).await;
    let want = all_series(&s, "t");
    assert_eq!(want[0].samples.len(), 6);
    assert_eq!(want[1].samples[5].value, 4096.0 * 5.0);
    wait_for(|| s.stats().parts_total <= 3).await;
    drop(s);
    let files = std::fs::read_dir(&hour).unwrap().count();
    assert!(files <= 3, "{files} files left in the hour");
    // as if the merge had crashed before deleting its first input
    std::fs::copy(
        d.path().join("saved.parquet"),
        hour.join("part-0000000001.parquet"),
    )
    .unwrap();
    let s = open(d.path());
    assert!(!hour.join("part-0000000001.parquet").exists());
    assert_eq!(all_series(&s, "t"), want, "no sample doubled");
    assert_eq!(s.stats().quarantined_files_total, 0);
}
