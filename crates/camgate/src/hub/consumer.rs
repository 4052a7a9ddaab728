//! One consumer's end of a hub: a bounded queue of frames and the skip-to-keyframe rule.
//!
//! The hub pushes under the consumer's own small lock and never waits for it; the consumer
//! awaits frames. On overflow the queue is emptied and frames are discarded until the next
//! keyframe, because a decoder can only resume at a keyframe anyway.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use media::Frame;
use tokio::sync::Notify;

use super::Hub;

pub(super) struct ConsumerShared {
    queue: Mutex<Queue>,
    notify: Notify,
}

struct Queue {
    /// Each frame with the instant the hub received it (`None` for frames handed over from
    /// the GOP cache at subscription: they arrived before this consumer existed).
    frames: VecDeque<(Frame, Option<Instant>)>,
    /// Discarding until the next keyframe (after an overflow or an explicit skip).
    skipping: bool,
    /// The discarded frames count as dropped (false while waiting for the very first
    /// keyframe: nothing was lost then).
    count_skipped: bool,
    /// Frames this consumer never received.
    dropped: u64,
    /// Skips not yet reported to the consumer by `take_skips`.
    unreported_skips: u64,
    closed: bool,
}

impl ConsumerShared {
    pub(super) fn new(initial: impl Iterator<Item = Frame>, closed: bool) -> ConsumerShared {
        let frames: VecDeque<(Frame, Option<Instant>)> = initial.map(|f| (f, None)).collect();
        ConsumerShared {
            queue: Mutex::new(Queue {
                // Without a cached keyframe the consumer must wait for one to be decodable.
                skipping: frames.is_empty(),
                count_skipped: false,
                frames,
                dropped: 0,
                unreported_skips: 0,
                closed,
            }),
            notify: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // The queue is consistent between statements; a poisoned lock only means another
        // thread panicked elsewhere, so the data is still usable.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Called by the hub for every new frame, received at `arrived`; never blocks on the
    /// consumer.
    pub(super) fn offer(&self, frame: &Frame, capacity: usize, arrived: Instant) {
        let mut q = self.lock();
        if q.closed {
            return;
        }
        if q.skipping {
            if !frame.keyframe {
                if q.count_skipped {
                    q.dropped += 1;
                }
                return;
            }
            q.skipping = false;
            q.count_skipped = false;
        } else if q.frames.len() >= capacity.max(1) {
            q.dropped += q.frames.len() as u64;
            q.frames.clear();
            q.unreported_skips += 1;
            if !frame.keyframe {
                q.dropped += 1;
                q.skipping = true;
                q.count_skipped = true;
                drop(q);
                return;
            }
        }
        q.frames.push_back((frame.clone(), Some(arrived)));
        drop(q);
        self.notify.notify_one();
    }

    pub(super) fn close(&self) {
        self.lock().closed = true;
        self.notify.notify_one();
    }

    pub(super) fn dropped(&self) -> u64 {
        self.lock().dropped
    }
}

/// A subscription to a hub. Dropping it unsubscribes.
pub struct Consumer {
    shared: Arc<ConsumerShared>,
    hub: Hub,
}

impl Consumer {
    pub(super) fn new(shared: Arc<ConsumerShared>, hub: Hub) -> Consumer {
        Consumer { shared, hub }
    }

    /// The next frame; `None` once the hub is closed and the queue is drained.
    pub async fn recv(&mut self) -> Option<Frame> {
        self.recv_with_arrival().await.map(|(f, _)| f)
    }

    /// The next frame and when the hub received it (`None` for frames from the GOP cache,
    /// which arrived before this consumer subscribed), for consumers that measure latency.
    pub async fn recv_with_arrival(&mut self) -> Option<(Frame, Option<Instant>)> {
        loop {
            {
                let mut q = self.shared.lock();
                if let Some(f) = q.frames.pop_front() {
                    return Some(f);
                }
                if q.closed {
                    return None;
                }
            }
            self.shared.notify.notified().await;
        }
    }

    /// A frame if one is queued now, without waiting.
    pub fn try_recv(&mut self) -> Option<Frame> {
        self.shared.lock().frames.pop_front().map(|(f, _)| f)
    }

    /// Frames waiting in this consumer's queue.
    pub fn queued(&self) -> usize {
        self.shared.lock().frames.len()
    }

    /// Drops everything queued and resumes at the next keyframe: for a consumer that knows
    /// it is too far behind (e.g. an MSE client lagging past `mse_max_lag`).
    pub fn skip_to_next_keyframe(&mut self) {
        let mut q = self.shared.lock();
        q.dropped += q.frames.len() as u64;
        q.frames.clear();
        q.skipping = true;
        q.count_skipped = true;
        q.unreported_skips += 1;
    }

    /// How many times frames were skipped since the last call (overflow or explicit skip),
    /// so the consumer can tell its client.
    pub fn take_skips(&mut self) -> u64 {
        std::mem::take(&mut self.shared.lock().unreported_skips)
    }

    /// Frames this consumer lost to skips.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped()
    }

    /// The hub this consumer reads from.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.hub.consumer_gone(&self.shared);
    }
}
