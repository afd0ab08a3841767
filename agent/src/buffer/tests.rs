//! Unit tests of the disk buffer on real files in a temp dir.

use std::sync::Arc;
use std::time::Duration;

use super::metrics::reason;
use super::*;

fn cfg(dir: &Path, max_bytes: u64, segment_bytes: u64, when_full: WhenFull) -> BufferConfig {
    BufferConfig {
        dir: dir.to_path_buf(),
        max_bytes,
        segment_bytes,
        when_full,
    }
}

fn payload(n: u64, size: usize) -> Vec<u8> {
    let mut p = n.to_le_bytes().to_vec();
    p.resize(size, b'x');
    p
}

fn id(r: &Record) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&r.payload[..8]);
    u64::from_le_bytes(b)
}

async fn next_now(b: &Arc<Buffer>) -> Option<Record> {
    tokio::time::timeout(Duration::from_secs(5), b.next())
        .await
        .ok()
        .flatten()
}

#[tokio::test]
async fn frames_come_back_in_order_and_a_restart_resumes_after_the_acked_ones() {
    let dir = tempfile::tempdir().unwrap();
    let t = Arc::new(Telemetry::new());
    let c = cfg(dir.path(), 1 << 20, 4096, WhenFull::Backpressure);
    let b = Buffer::open(c.clone(), t.clone()).unwrap();
    for n in 0..20 {
        assert_eq!(
            b.push(Signal::Logs, 3, payload(n, 500)).await,
            Pushed::Stored
        );
    }
    assert!(
        t.buffer.segments.get() > 2,
        "segments roll at segment_bytes"
    );
    for n in 0..7 {
        let r = next_now(&b).await.unwrap();
        assert_eq!((id(&r), r.items, r.signal), (n, 3, Signal::Logs));
        b.ack(&r, true);
    }
    // handed out but not acked: must come again after the restart
    let r = next_now(&b).await.unwrap();
    assert_eq!(id(&r), 7);
    b.persist_cursor();
    assert_eq!(b.pending()[1], 13 * 3);
    drop(b);
    let b = Buffer::open(c, t.clone()).unwrap();
    assert_eq!(b.pending()[1], 13 * 3);
    for n in 7..20 {
        let r = next_now(&b).await.unwrap();
        assert_eq!(id(&r), n);
        b.ack(&r, true);
    }
    b.close();
    assert!(next_now(&b).await.is_none(), "closed and drained");
    assert_eq!(b.pending(), [0, 0, 0]);
    let segs = list_segments(dir.path()).unwrap();
    assert_eq!(segs.len(), 1, "only the active segment is left: {segs:?}");
    let text = t.encode();
    assert!(text.contains("sightline_agent_buffer_records_written_total{signal=\"logs\"} 60"));
    assert!(text.contains("sightline_agent_buffer_records_shipped_total{signal=\"logs\"} 60"));
}

/// Push frames of `size` payload bytes until the next one would not fit.
async fn fill(b: &Arc<Buffer>, size: usize) -> u64 {
    let frame = (size + 13) as u64;
    let mut n = 0;
    while b.bytes() + frame <= b.config().max_bytes {
        assert_eq!(
            b.push(Signal::Metrics, 1, payload(n, size)).await,
            Pushed::Stored
        );
        n += 1;
    }
    n
}

async fn wait_backpressure(t: &Telemetry, at_least: u64) {
    for _ in 0..1000 {
        if t.buffer.backpressure_events.get() >= at_least {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the push never waited for space");
}

#[tokio::test]
async fn backpressure_waits_for_the_shipper_and_counts_the_wait() {
    let dir = tempfile::tempdir().unwrap();
    let t = Arc::new(Telemetry::new());
    let b = Buffer::open(
        cfg(dir.path(), 8192, 2048, WhenFull::Backpressure),
        t.clone(),
    )
    .unwrap();
    let n = fill(&b, 900).await;
    assert!(n >= 4 && b.bytes() <= 8192);
    // the next producer waits until the shipper frees a segment
    let waiting = {
        let b = b.clone();
        tokio::spawn(async move { b.push(Signal::Metrics, 1, payload(999, 900)).await })
    };
    wait_backpressure(&t, 1).await;
    assert!(!waiting.is_finished());
    let mut shipped = Vec::new();
    while shipped.len() < n as usize {
        let r = next_now(&b).await.unwrap();
        shipped.push(id(&r));
        b.ack(&r, true);
    }
    assert_eq!(shipped, (0..n).collect::<Vec<_>>());
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .unwrap()
            .unwrap(),
        Pushed::Stored
    );
    let r = next_now(&b).await.unwrap();
    assert_eq!(id(&r), 999);
    b.ack(&r, true);
    assert!(t.buffer.backpressure_seconds.get() > 0.0);
    assert_eq!(
        t.buffer.dropped_with(Signal::Metrics, reason::DROP_OLDEST),
        0
    );
    // closing releases a producer waiting for space, without storing its frame
    let dir2 = tempfile::tempdir().unwrap();
    let b2 = Buffer::open(
        cfg(dir2.path(), 4096, 1024, WhenFull::Backpressure),
        t.clone(),
    )
    .unwrap();
    fill(&b2, 900).await;
    let blocked = {
        let b2 = b2.clone();
        tokio::spawn(async move { b2.push(Signal::Logs, 1, payload(0, 900)).await })
    };
    wait_backpressure(&t, 2).await;
    b2.close();
    assert_eq!(blocked.await.unwrap(), Pushed::Closed);
}

#[tokio::test]
async fn drop_oldest_counts_exactly_what_was_never_shipped() {
    let dir = tempfile::tempdir().unwrap();
    let t = Arc::new(Telemetry::new());
    let b = Buffer::open(
        cfg(dir.path(), 16 << 10, 4 << 10, WhenFull::DropOldest),
        t.clone(),
    )
    .unwrap();
    const N: u64 = 200;
    // ship a few first, one stays in flight while segments are dropped
    let mut in_flight = None;
    for n in 0..N {
        assert_eq!(
            b.push(Signal::Logs, 2, payload(n, 700)).await,
            Pushed::Stored
        );
        if n == 3 {
            for _ in 0..3 {
                let r = next_now(&b).await.unwrap();
                b.ack(&r, true);
            }
            in_flight = next_now(&b).await;
        }
    }
    assert!(b.bytes() <= 16 << 10);
    // the export of the in-flight frame succeeded after its segment was dropped
    b.ack(&in_flight.unwrap(), true);
    let mut shipped = 4u64;
    while let Some(r) = tokio::time::timeout(Duration::from_millis(300), b.next())
        .await
        .ok()
        .flatten()
    {
        b.ack(&r, true);
        shipped += 1;
    }
    let dropped = t.buffer.dropped_with(Signal::Logs, reason::DROP_OLDEST);
    assert!(dropped > 0);
    assert_eq!(
        dropped + shipped * 2,
        N * 2,
        "dropped {dropped}, shipped {shipped}"
    );
}

#[tokio::test]
async fn corrupt_segments_are_moved_aside_and_the_rest_ships() {
    let dir = tempfile::tempdir().unwrap();
    let t = Arc::new(Telemetry::new());
    let c = cfg(dir.path(), 1 << 20, 2048, WhenFull::Backpressure);
    let b = Buffer::open(c.clone(), t.clone()).unwrap();
    for n in 0..12 {
        b.push(Signal::Logs, 1, payload(n, 600)).await;
    }
    drop(b);
    let segs = list_segments(dir.path()).unwrap();
    assert!(segs.len() >= 3, "{segs:?}");
    // garbage in the middle of the first segment's second frame
    let first = seg_path(dir.path(), segs[0]);
    let mut bytes = std::fs::read(&first).unwrap();
    let frames = scan(&bytes).frames;
    assert!(frames.len() >= 2);
    let at = frames[1].offset as usize + 20;
    bytes[at..at + 16].copy_from_slice(b"garbage garbage!");
    std::fs::write(&first, &bytes).unwrap();
    // and a torn tail on the newest non-empty segment
    let newest = segs
        .iter()
        .rev()
        .map(|s| seg_path(dir.path(), *s))
        .find(|p| std::fs::metadata(p).unwrap().len() > MAGIC.len() as u64)
        .unwrap();
    let len = std::fs::metadata(&newest).unwrap().len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&newest)
        .unwrap();
    f.set_len(len - 10).unwrap();
    drop(f);

    let b = Buffer::open(c, t.clone()).unwrap();
    assert_eq!(t.buffer.corrupt_segments.get(), 1);
    let moved: Vec<_> = std::fs::read_dir(dir.path().join(CORRUPT_DIR))
        .unwrap()
        .collect();
    assert_eq!(moved.len(), 1);
    let mut got = Vec::new();
    while let Some(r) = tokio::time::timeout(Duration::from_millis(300), b.next())
        .await
        .ok()
        .flatten()
    {
        got.push(id(&r));
        b.ack(&r, true);
    }
    // frame 0 (before the damage) survives; the damaged frame and what followed it in
    // that segment are skipped; the torn last frame is gone; the rest ships in order.
    let per_first = frames.len() as u64;
    let mut want: Vec<u64> = vec![0];
    want.extend(per_first..11);
    assert_eq!(got, want);
    // a frame damaged after start-up is caught when read
    for n in 100..106 {
        b.push(Signal::Logs, 1, payload(n, 600)).await;
    }
    let segs = list_segments(dir.path()).unwrap();
    let p = seg_path(dir.path(), segs[0]);
    let mut bytes = std::fs::read(&p).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&p, &bytes).unwrap();
    let mut got = Vec::new();
    while let Some(r) = tokio::time::timeout(Duration::from_millis(300), b.next())
        .await
        .ok()
        .flatten()
    {
        got.push(id(&r));
        b.ack(&r, true);
    }
    assert_eq!(t.buffer.corrupt_segments.get(), 2);
    assert!(!got.is_empty() && got.len() < 6, "{got:?}");
}

#[tokio::test]
async fn a_request_larger_than_the_buffer_is_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let t = Arc::new(Telemetry::new());
    let b = Buffer::open(
        cfg(dir.path(), 4096, 1024, WhenFull::Backpressure),
        t.clone(),
    )
    .unwrap();
    assert_eq!(
        b.push(Signal::Metrics, 5, payload(0, 5000)).await,
        Pushed::TooLarge
    );
    assert_eq!(t.buffer.dropped_with(Signal::Metrics, reason::TOO_LARGE), 5);
}
