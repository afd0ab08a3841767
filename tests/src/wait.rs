//! Bounded waiting: poll a condition instead of sleeping a fixed time.

use std::time::{Duration, Instant};

/// Polls `probe` every 100 ms until it returns `Some`, for at most `timeout`.
/// Panics naming `what` when the time is up.
pub fn wait_for<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
