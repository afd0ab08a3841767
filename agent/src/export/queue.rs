//! Bounded in-memory queue between collection and shipping.
//!
//! Capacity is counted in batches (one batch = one export request). Full-policy: **drop
//! the oldest batch** to make room — during an outage the freshest readings are the most
//! useful, and counters are cumulative so a later point still carries the totals. The
//! caller counts the dropped points (`sightline_agent_dropped_points_total{reason="queue_full"}`).
//! A disk-backed buffer replaces this in a later issue.

use std::collections::VecDeque;
use std::sync::Mutex;

use sightline_proto::otlp::collector::metrics::v1::ExportMetricsServiceRequest;
use tokio::sync::Notify;

/// One export request and the number of data points in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub request: ExportMetricsServiceRequest,
    pub points: usize,
}

#[derive(Debug)]
struct State {
    items: VecDeque<Batch>,
    closed: bool,
}

/// A bounded multi-producer queue with drop-oldest on overflow.
#[derive(Debug)]
pub struct BatchQueue {
    state: Mutex<State>,
    capacity: usize,
    notify: Notify,
}

impl BatchQueue {
    /// A queue holding at most `capacity` batches (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State {
                items: VecDeque::new(),
                closed: false,
            }),
            capacity: capacity.max(1),
            notify: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Append a batch; returns the batch dropped to make room, if the queue was full.
    /// After [`close`](Self::close) the batch itself is returned (dropped).
    pub fn push(&self, batch: Batch) -> Option<Batch> {
        let dropped = {
            let mut state = self.lock();
            if state.closed {
                return Some(batch);
            }
            let dropped = if state.items.len() >= self.capacity {
                state.items.pop_front()
            } else {
                None
            };
            state.items.push_back(batch);
            dropped
        };
        self.notify.notify_one();
        dropped
    }

    /// The oldest batch, waiting for one; `None` once closed and empty.
    pub async fn pop(&self) -> Option<Batch> {
        loop {
            let notified = self.notify.notified();
            {
                let mut state = self.lock();
                if let Some(batch) = state.items.pop_front() {
                    return Some(batch);
                }
                if state.closed {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// Stop accepting batches; `pop` drains what is left, then returns `None`.
    pub fn close(&self) {
        self.lock().closed = true;
        self.notify.notify_waiters();
        self.notify.notify_one();
    }

    /// Remove everything still queued (used when the shutdown flush runs out of time).
    pub fn drain(&self) -> Vec<Batch> {
        self.lock().items.drain(..).collect()
    }

    pub fn len(&self) -> usize {
        self.lock().items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn batch(points: usize) -> Batch {
        Batch {
            request: ExportMetricsServiceRequest::default(),
            points,
        }
    }

    #[tokio::test]
    async fn drops_oldest_when_full() {
        let q = BatchQueue::new(2);
        assert_eq!(q.push(batch(1)), None);
        assert_eq!(q.push(batch(2)), None);
        assert_eq!(q.push(batch(3)), Some(batch(1)));
        assert_eq!(q.len(), 2);
        assert_eq!(q.pop().await, Some(batch(2)));
        assert_eq!(q.pop().await, Some(batch(3)));
        assert!(q.is_empty());
    }

    #[tokio::test]
    async fn pop_waits_for_push_and_ends_after_close() {
        let q = Arc::new(BatchQueue::new(4));
        let consumer = {
            let q = q.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                while let Some(b) = q.pop().await {
                    got.push(b.points);
                }
                got
            })
        };
        tokio::task::yield_now().await;
        q.push(batch(5));
        q.push(batch(6));
        q.close();
        assert_eq!(q.push(batch(7)), Some(batch(7)), "closed queue refuses");
        assert_eq!(consumer.await.unwrap(), vec![5, 6]);
    }
}
