//! Store-level tests on real files in temp dirs: durability through WAL replay and
//! Parquet flushes, ingest rules, recovery from torn and corrupt files, group commit,
//! disk-full handling, tenant isolation and selects.

use super::*;
use serde_json::json;

mod crash;
use std::path::Path;
use std::time::Duration;

fn cfg(dir: &Path) -> StoreConfig {
    StoreConfig {
        data_dir: dir.to_path_buf(),
        wal_segment_bytes: 1 << 20,
        memtable_flush_bytes: 1 << 30,
        memtable_flush_interval: Duration::from_secs(3600),
        min_free_bytes: 0,
        max_series_per_tenant: 1000,
    }
}

fn open(dir: &Path) -> Store {
    Store::open(cfg(dir), Arc::new(ManualClock::new(1_700_000_000_000))).unwrap()
}

const T0: i64 = 1_700_000_000_000;
const STALE: u64 = 0x7ff0_0000_0000_0002;

fn series(pairs: &[(&str, &str)], samples: &[(i64, f64)]) -> Series {
    Series {
        labels: Labels::from_pairs(pairs.iter().copied()),
        samples: samples
            .iter()
            .map(|&(t, v)| Sample {
                timestamp_ms: t,
                value: v,
            })
            .collect(),
    }
}

fn metrics() -> WriteBatch {
    WriteBatch::Metrics(vec![
        series(
            &[("__name__", "up"), ("job", "node")],
            &[(T0, 1.0), (T0 + 15_000, f64::from_bits(STALE))],
        ),
        series(
            &[("__name__", "cpu"), ("job", "node"), ("mode", "idle")],
            &[(T0, 0.25), (T0 + 3_600_000, 12.5)],
        ),
        series(&[("__name__", "up"), ("job", "api")], &[(T0 - 1, 1.0)]),
    ])
}

fn log(ts: i64, body: &str) -> LogRecord {
    LogRecord {
        timestamp_ns: ts,
        observed_timestamp_ns: ts + 1,
        severity_number: 9,
        severity_text: "INFO".into(),
        body: body.into(),
        attributes: vec![
            ("z".into(), json!(1.5)),
            ("a".into(), json!({"nested": [1, "x", null]})),
        ],
        resource: vec![("service.name".into(), json!("api"))],
        scope_name: "scope".into(),
        scope_version: "1.0".into(),
        trace_id: vec![7; 16],
        span_id: vec![8; 8],
        flags: 1,
    }
}

fn span(trace: u8, start: i64) -> SpanRecord {
    SpanRecord {
        trace_id: vec![trace; 16],
        span_id: vec![trace, 1, 2, 3, 4, 5, 6, 7],
        parent_span_id: vec![],
        trace_state: "a=b".into(),
        name: "GET /x".into(),
        kind: 2,
        start_time_ns: start,
        end_time_ns: start + 1000,
        attributes: vec![("http.status_code".into(), json!(200))],
        events: json!([{"name": "ev", "timeUnixNano": "5", "attributes": {"k": true}}]),
        links: json!([]),
        status_code: 2,
        status_message: "boom".into(),
        resource: vec![("host".into(), json!("h1"))],
        scope_name: "s".into(),
        scope_version: "".into(),
    }
}

fn eq(n: &str, v: &str) -> Matcher {
    Matcher::new(n, MatchOp::Equal, v).unwrap()
}

fn all_series(s: &Store, tenant: &str) -> Vec<Series> {
    s.select_series(tenant, &[], i64::MIN, i64::MAX).unwrap()
}

/// Writes one of each signal and checks a store returns exactly them.
async fn write_all(s: &Store) {
    let o = s.write("t1", metrics()).await.unwrap();
    assert_eq!((o.accepted, o.rejected.len()), (5, 0));
    let logs = vec![
        log(T0 * 1_000_000 + 5, "second"),
        log(T0 * 1_000_000, "first ✓"),
    ];
    assert_eq!(
        s.write("t1", WriteBatch::Logs(logs))
            .await
            .unwrap()
            .accepted,
        2
    );
    let spans = vec![span(1, T0 * 1_000_000), span(2, T0 * 1_000_000 + 10)];
    assert_eq!(
        s.write("t1", WriteBatch::Spans(spans))
            .await
            .unwrap()
            .accepted,
        2
    );
}

fn check_all(s: &Store) {
    let got = all_series(s, "t1");
    let WriteBatch::Metrics(mut want) = metrics() else {
        unreachable!()
    };
    want.sort_by(|a, b| a.labels.cmp(&b.labels));
    assert_eq!(got.len(), 3);
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g.labels, w.labels);
        let gb: Vec<(i64, u64)> = g
            .samples
            .iter()
            .map(|s| (s.timestamp_ms, s.value.to_bits()))
            .collect();
        let wb: Vec<(i64, u64)> = w
            .samples
            .iter()
            .map(|s| (s.timestamp_ms, s.value.to_bits()))
            .collect();
        assert_eq!(gb, wb, "{:?}", g.labels);
    }
    let logs = s.select_logs("t1", 0, i64::MAX, 100).unwrap();
    assert_eq!(
        logs,
        vec![
            log(T0 * 1_000_000, "first ✓"),
            log(T0 * 1_000_000 + 5, "second")
        ]
    );
    assert_eq!(s.select_logs("t1", 0, i64::MAX, 1).unwrap().len(), 1);
    let spans = s.select_spans("t1", None, 0, i64::MAX).unwrap();
    assert_eq!(
        spans,
        vec![span(1, T0 * 1_000_000), span(2, T0 * 1_000_000 + 10)]
    );
    let one = s.select_spans("t1", Some(&[2; 16]), 0, i64::MAX).unwrap();
    assert_eq!(one, vec![span(2, T0 * 1_000_000 + 10)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_signal_survives_wal_replay() {
    let d = tempfile::tempdir().unwrap();
    let s = open(d.path());
    write_all(&s).await;
    check_all(&s);
    assert_eq!(s.stats().wal_records_total, 3);
    drop(s);
    let s = open(d.path());
    assert_eq!(s.stats().wal_replayed_records_total, 3);
    assert_eq!(s.stats().parts_total, 0);
    check_all(&s);
    // replayed state still enforces ordering
    let o = s
        .write(
            "t1",
            WriteBatch::Metrics(vec![series(
                &[("__name__", "up"), ("job", "node")],
                &[(T0, 1.0)],
            )]),
        )
        .await;
    assert_eq!(o.unwrap().rejected[0].reason, RejectReason::OutOfOrder);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_signal_round_trips_through_parquet() {
    let d = tempfile::tempdir().unwrap();
    let s = open(d.path());
    write_all(&s).await;
    s.flush().await.unwrap();
    let st = s.stats();
    assert_eq!(st.flushes_total, 1);
    assert_eq!(st.memtable_bytes, 0);
    // metrics span two hours: 2 parts; 1 logs, 1 traces
    assert_eq!(st.parts_total, 4, "{st:?}");
    let hour = d.path().join("metrics/t1/2023111422");
    assert!(hour.join("part-0000000001.parquet").is_file());
    assert!(d
        .path()
        .join("logs/t1/2023111422/part-0000000001.parquet")
        .is_file());
    check_all(&s);
    // WAL segments covered by the flush are gone
    let segs = wal::list_segments(&d.path().join("wal")).unwrap();
    assert_eq!(segs.len(), 1, "{segs:?}");
    drop(s);
    let s = open(d.path());
    assert_eq!(s.stats().wal_replayed_records_total, 0);
    assert_eq!(s.stats().series_total, 3);
    check_all(&s);
    // the last timestamp per series came back from the index checkpoint
    let o = s
        .write(
            "t1",
            WriteBatch::Metrics(vec![series(
                &[("__name__", "up"), ("job", "node")],
                &[(T0, 2.0)],
            )]),
        )
        .await;
    assert_eq!(o.unwrap().rejected[0].reason, RejectReason::OutOfOrder);
    // new data after a flush merges with parts
    s.write(
        "t1",
        WriteBatch::Metrics(vec![series(
            &[("__name__", "up"), ("job", "node")],
            &[(T0 + 30_000, 3.0)],
        )]),
    )
    .await
    .unwrap();
    let got = s
        .select_series(
            "t1",
            &[eq("job", "node"), eq("__name__", "up")],
            T0 + 1,
            T0 + 60_000,
        )
        .unwrap();
    let ts: Vec<i64> = got[0].samples.iter().map(|s| s.timestamp_ms).collect();
    assert_eq!(ts, vec![T0 + 15_000, T0 + 30_000]);
    assert_eq!(got[0].samples[0].value.to_bits(), STALE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_duplicate_and_series_limit() {
    let d = tempfile::tempdir().unwrap();
    let mut c = cfg(d.path());
    c.max_series_per_tenant = 2;
    let s = Store::open(c, Arc::new(SystemClock)).unwrap();
    let m = |name: &str, samples: &[(i64, f64)]| {
        WriteBatch::Metrics(vec![series(&[("__name__", name)], samples)])
    };
    s.write("t", m("a", &[(10, 1.0), (20, 2.0)])).await.unwrap();
    let o = s
        .write("t", m("a", &[(20, 2.0), (20, 5.0), (5, 1.0), (30, 3.0)]))
        .await
        .unwrap();
    assert_eq!(o.accepted, 2);
    let r: Vec<_> = o.rejected.iter().map(|r| (r.reason, r.count)).collect();
    assert_eq!(
        r,
        vec![(RejectReason::OutOfOrder, 1), (RejectReason::Duplicate, 1)]
    );
    s.write("t", m("b", &[(1, 1.0)])).await.unwrap();
    let o = s.write("t", m("c", &[(1, 1.0)])).await.unwrap();
    assert_eq!(
        (o.accepted, o.rejected[0].reason),
        (0, RejectReason::SeriesLimit)
    );
    assert!(o.rejected[0].example.contains("__name__=\"c\""));
    let st = s.stats();
    assert_eq!(
        (
            st.rejected_out_of_order_total,
            st.rejected_duplicate_total,
            st.rejected_series_limit_total
        ),
        (1, 1, 1)
    );
    let got = all_series(&s, "t");
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[0].samples.iter().map(|s| s.value).collect::<Vec<_>>(),
        vec![1.0, 2.0, 3.0]
    );
    drop(s);
    // replay decides the same way: same series, same samples, same rejections counted
    let mut c = cfg(d.path());
    c.max_series_per_tenant = 2;
    let s = Store::open(c, Arc::new(SystemClock)).unwrap();
    assert_eq!(all_series(&s, "t"), got);
    let st = s.stats();
    assert_eq!(
        (
            st.rejected_out_of_order_total,
            st.rejected_duplicate_total,
            st.rejected_series_limit_total
        ),
        (1, 1, 1)
    );
}

fn last_segment(dir: &Path) -> std::path::PathBuf {
    let wal = dir.join("wal");
    let segs = wal::list_segments(&wal).unwrap();
    // the newest segment is the empty one the last open created; take the newest non-empty
    segs.iter()
        .rev()
        .map(|&s| wal::segment_path(&wal, s))
        .find(|p| std::fs::metadata(p).unwrap().len() > 0)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_tail_is_truncated() {
    let d = tempfile::tempdir().unwrap();
    let s = open(d.path());
    write_all(&s).await;
    drop(s);
    let seg = last_segment(d.path());
    let mut f = std::fs::OpenOptions::new().append(true).open(&seg).unwrap();
    std::io::Write::write_all(&mut f, &[200, 0, 0, 0, 1, 2, 3, 4, 5, 6]).unwrap();
    drop(f);
    let s = open(d.path());
    assert_eq!(s.stats().wal_truncated_tails_total, 1);
    assert_eq!(s.stats().quarantined_files_total, 0);
    check_all(&s);
    drop(s);
    let s = open(d.path());
    assert_eq!(
        s.stats().wal_truncated_tails_total,
        0,
        "the tail was cut off for good"
    );
    check_all(&s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_wal_record_is_quarantined_and_the_rest_served() {
    let d = tempfile::tempdir().unwrap();
    let s = open(d.path());
    let m = |v: f64, t: i64| WriteBatch::Metrics(vec![series(&[("__name__", "m")], &[(t, v)])]);
    s.write("t", m(1.0, 1)).await.unwrap();
    s.write("t", m(2.0, 2)).await.unwrap();
    s.write("t", m(3.0, 3)).await.unwrap();
    drop(s);
    let seg = last_segment(d.path());
    let mut bytes = std::fs::read(&seg).unwrap();
    let rec = bytes.len() / 3;
    bytes[rec + 12] ^= 0x55; // inside the second record's payload
    std::fs::write(&seg, &bytes).unwrap();
    let s = open(d.path());
    let st = s.stats();
    assert_eq!(
        (st.wal_corrupt_records_total, st.quarantined_files_total),
        (1, 1)
    );
    let vals: Vec<f64> = all_series(&s, "t")[0]
        .samples
        .iter()
        .map(|s| s.value)
        .collect();
    assert_eq!(vals, vec![1.0, 3.0]);
    assert_eq!(
        std::fs::read_dir(d.path().join("quarantine"))
            .unwrap()
            .count(),
        1
    );
    // the store flushes right away, so the bad segment is gone before the next start
    wait_for(|| s.stats().flushes_total >= 1).await;
    drop(s);
    let s = open(d.path());
    assert_eq!(s.stats().wal_corrupt_records_total, 0);
    let vals: Vec<f64> = all_series(&s, "t")[0]
        .samples
        .iter()
        .map(|s| s.value)
        .collect();
    assert_eq!(vals, vec![1.0, 3.0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_part_is_quarantined() {
    let d = tempfile::tempdir().unwrap();
    let s = open(d.path());
    write_all(&s).await;
    s.flush().await.unwrap();
    drop(s);
    let p = d.path().join("logs/t1/2023111422/part-0000000001.parquet");
    std::fs::write(&p, b"PAR1 this is not parquet").unwrap();
    // a part from a flush that never reached its checkpoint is removed, not served
    let orphan = d.path().join("logs/t1/2023111422/part-0000000009.parquet");
    std::fs::write(&orphan, b"x").unwrap();
    let s = open(d.path());
    assert_eq!(s.stats().quarantined_files_total, 1);
    assert!(!p.exists() && !orphan.exists());
    assert!(s.select_logs("t1", 0, i64::MAX, 10).unwrap().is_empty());
    assert_eq!(all_series(&s, "t1").len(), 3);
    assert_eq!(s.select_spans("t1", None, 0, i64::MAX).unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_index_quarantines_metrics_but_store_opens() {
    let d = tempfile::tempdir().unwrap();
    let s = open(d.path());
    write_all(&s).await;
    s.flush().await.unwrap();
    drop(s);
    std::fs::write(d.path().join("index/series.idx"), b"garbage").unwrap();
    let s = open(d.path());
    // index + 2 metrics parts; logs and spans still served
    assert_eq!(s.stats().quarantined_files_total, 3);
    assert!(all_series(&s, "t1").is_empty());
    assert_eq!(s.select_logs("t1", 0, i64::MAX, 10).unwrap().len(), 2);
    s.write("t1", metrics()).await.unwrap();
    assert_eq!(all_series(&s, "t1").len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_share_fsyncs() {
    let d = tempfile::tempdir().unwrap();
    let s = Arc::new(open(d.path()));
    let mut tasks = Vec::new();
    for i in 0..400 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let b = WriteBatch::Metrics(vec![series(
                &[("__name__", "w"), ("i", &i.to_string())],
                &[(T0, i as f64)],
            )]);
            s.write("t", b).await.unwrap().accepted
        }));
    }
    let mut n = 0;
    for t in tasks {
        n += t.await.unwrap();
    }
    assert_eq!(n, 400);
    let st = s.stats();
    assert_eq!(st.wal_records_total, 400);
    assert!(st.wal_fsyncs_total < st.wal_records_total, "{st:?}");
    assert_eq!(all_series(&s, "t").len(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_refuses_writes_and_recovers() {
    let d = tempfile::tempdir().unwrap();
    let s = open(d.path());
    s.write("t1", metrics()).await.unwrap();
    s.set_min_free_bytes(u64::MAX);
    let e = s
        .write("t1", WriteBatch::Logs(vec![log(1, "x")]))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::DiskFull(_)) && e.is_retryable(), "{e}");
    assert_eq!(s.stats().disk_full_total, 1);
    s.set_min_free_bytes(0);
    assert_eq!(
        s.write("t1", WriteBatch::Logs(vec![log(1, "x")]))
            .await
            .unwrap()
            .accepted,
        1
    );
    drop(s);
    let s = open(d.path());
    assert_eq!(s.stats().wal_replayed_records_total, 2);
    assert_eq!(
        s.stats().wal_corrupt_records_total + s.stats().wal_truncated_tails_total,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_are_isolated_and_path_safe() {
    let d = tempfile::tempdir().unwrap();
    let s = open(d.path());
    s.write("a", metrics()).await.unwrap();
    s.write(
        "../b",
        WriteBatch::Metrics(vec![series(&[("__name__", "secret")], &[(T0, 42.0)])]),
    )
    .await
    .unwrap();
    s.write("../b", WriteBatch::Logs(vec![log(T0, "b only")]))
        .await
        .unwrap();
    s.flush().await.unwrap();
    s.write("../b", WriteBatch::Logs(vec![log(T0 + 1, "b again")]))
        .await
        .unwrap();
    assert_eq!(all_series(&s, "a").len(), 3);
    assert_eq!(all_series(&s, "../b").len(), 1);
    assert!(s.select_logs("a", 0, i64::MAX, 10).unwrap().is_empty());
    assert_eq!(s.select_logs("../b", 0, i64::MAX, 10).unwrap().len(), 2);
    assert!(all_series(&s, "c").is_empty());
    assert!(!s
        .label_values("a", "__name__", &[], i64::MIN, i64::MAX)
        .unwrap()
        .contains(&"secret".to_string()));
    assert!(d.path().join("metrics/%2E%2E%2Fb").is_dir());
    assert!(!d.path().join("b").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matchers_and_label_queries() {
    let d = tempfile::tempdir().unwrap();
    let s = open(d.path());
    s.write("t1", metrics()).await.unwrap();
    s.flush().await.unwrap();
    let re = |n: &str, v: &str| Matcher::new(n, MatchOp::RegexMatch, v).unwrap();
    let nre = |n: &str, v: &str| Matcher::new(n, MatchOp::RegexNoMatch, v).unwrap();
    let names = |v: Vec<Series>| {
        v.into_iter()
            .map(|s| s.labels.get("job").unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let got = s
        .select_series("t1", &[re("__name__", "u.")], i64::MIN, i64::MAX)
        .unwrap();
    assert_eq!(names(got), vec!["api", "node"]);
    let got = s
        .select_series(
            "t1",
            &[eq("__name__", "up"), nre("job", "no.*")],
            i64::MIN,
            i64::MAX,
        )
        .unwrap();
    assert_eq!(names(got), vec!["api"]);
    let got = s
        .select_series(
            "t1",
            &[Matcher::new("mode", MatchOp::NotEqual, "idle").unwrap()],
            i64::MIN,
            i64::MAX,
        )
        .unwrap();
    assert_eq!(got.len(), 2);
    // time range: only the cpu sample one hour later
    let got = s
        .select_series("t1", &[], T0 + 1_000_000, T0 + 4_000_000)
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].samples,
        vec![Sample {
            timestamp_ms: T0 + 3_600_000,
            value: 12.5
        }]
    );
    let all = i64::MIN..i64::MAX;
    assert_eq!(
        s.label_names("t1", &[], all.start, all.end).unwrap(),
        vec!["__name__", "job", "mode"]
    );
    assert_eq!(
        s.label_names("t1", &[vec![eq("__name__", "up")]], all.start, all.end)
            .unwrap(),
        vec!["__name__", "job"]
    );
    assert_eq!(
        s.label_values("t1", "job", &[], all.start, all.end)
            .unwrap(),
        vec!["api", "node"]
    );
    let sets = vec![vec![eq("job", "api")], vec![eq("__name__", "cpu")]];
    assert_eq!(
        s.label_values("t1", "__name__", &sets, all.start, all.end)
            .unwrap(),
        vec!["cpu", "up"]
    );
    assert_eq!(s.series("t1", &sets, all.start, all.end).unwrap().len(), 2);
    assert_eq!(
        s.series("t1", &[], T0 + 20_000, T0 + 30_000).unwrap().len(),
        1
    );
    assert!(s
        .label_values("nobody", "job", &[], all.start, all.end)
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memtable_flushes_by_age_on_the_injected_clock_and_by_size() {
    let d = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let mut c = cfg(d.path());
    c.memtable_flush_interval = Duration::from_secs(60);
    let s = Store::open(c, clock.clone()).unwrap();
    s.write("t1", metrics()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.stats().flushes_total, 0, "not old enough yet");
    clock.advance(61_000);
    wait_for(|| s.stats().flushes_total >= 1).await;
    assert!(s.stats().parts_total >= 1);
    drop(s);

    let d = tempfile::tempdir().unwrap();
    let mut c = cfg(d.path());
    c.memtable_flush_bytes = 1;
    let s = Store::open(c, Arc::new(ManualClock::new(T0))).unwrap();
    s.write("t1", metrics()).await.unwrap();
    wait_for(|| s.stats().flushes_total >= 1).await;
    check_metrics_only(&s);
}

fn check_metrics_only(s: &Store) {
    assert_eq!(all_series(s, "t1").len(), 3);
}

async fn wait_for(cond: impl Fn() -> bool) {
    for _ in 0..200 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition not reached in 10 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_segments_roll_and_are_deleted_after_flush() {
    let d = tempfile::tempdir().unwrap();
    let mut c = cfg(d.path());
    c.wal_segment_bytes = 64;
    let s = Store::open(c.clone(), Arc::new(ManualClock::new(T0))).unwrap();
    for i in 0..20 {
        s.write(
            "t",
            WriteBatch::Metrics(vec![series(&[("__name__", "m")], &[(T0 + i, i as f64)])]),
        )
        .await
        .unwrap();
    }
    assert!(wal::list_segments(&d.path().join("wal")).unwrap().len() > 3);
    s.flush().await.unwrap();
    assert_eq!(wal::list_segments(&d.path().join("wal")).unwrap().len(), 1);
    s.write(
        "t",
        WriteBatch::Metrics(vec![series(&[("__name__", "m")], &[(T0 + 100, 1.0)])]),
    )
    .await
    .unwrap();
    drop(s);
    let s = Store::open(c, Arc::new(ManualClock::new(T0))).unwrap();
    assert_eq!(s.stats().wal_replayed_records_total, 1);
    assert_eq!(all_series(&s, "t")[0].samples.len(), 21);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selects_prune_parts_by_time_and_row_groups_by_statistics() {
    let d = tempfile::tempdir().unwrap();
    let s = open(d.path());
    s.write("t1", metrics()).await.unwrap();
    s.flush().await.unwrap();
    // the second hour's part only: the first hour's part is never opened
    let got = s
        .select_series("t1", &[], T0 + 3_000_000, T0 + 4_000_000)
        .unwrap();
    assert_eq!(got.len(), 1);
    let st = s.stats();
    assert_eq!((st.parts_read_total, st.row_groups_read_total), (1, 1));
    // job="api" is series 2; the second hour's part holds only series 1: skipped by stats
    let got = s
        .select_series("t1", &[eq("job", "api")], i64::MIN, i64::MAX)
        .unwrap();
    assert_eq!(got.len(), 1);
    let st = s.stats();
    assert_eq!(
        (
            st.parts_read_total,
            st.row_groups_read_total,
            st.row_groups_pruned_total
        ),
        (3, 2, 1)
    );
    // logs outside the range of every part read nothing
    s.write("t1", WriteBatch::Logs(vec![log(T0 * 1_000_000, "x")]))
        .await
        .unwrap();
    s.flush().await.unwrap();
    assert!(s.select_logs("t1", 0, 10, 10).unwrap().is_empty());
    assert_eq!(s.stats().parts_read_total, 3);
    // a trace id that is not in the part is ruled out by the bloom filter
    s.write("t1", WriteBatch::Spans(vec![span(1, T0 * 1_000_000)]))
        .await
        .unwrap();
    s.flush().await.unwrap();
    let before = s.stats().row_groups_pruned_total;
    assert!(s
        .select_spans("t1", Some(&[9; 16]), 0, i64::MAX)
        .unwrap()
        .is_empty());
    assert_eq!(s.stats().row_groups_pruned_total, before + 1);
    assert_eq!(
        s.select_spans("t1", Some(&[1; 16]), 0, i64::MAX)
            .unwrap()
            .len(),
        1
    );
    assert_eq!(s.stats().row_groups_pruned_total, before + 1);
}
