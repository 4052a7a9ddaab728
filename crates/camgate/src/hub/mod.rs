//! The hub of one stream: the single point where a source's frames fan out to every consumer
//! (LL-HLS segmenter, MSE sockets, recorder, snapshots, ...).
//!
//! It owns the fan-out, the cache of the last GOP (so a new consumer starts at the latest
//! keyframe at once instead of waiting for the next one) and the live statistics. It does not
//! know where frames come from (ingest) or where they go (consumers); it never blocks the
//! source: every consumer has a bounded queue, and a consumer whose queue overflows skips to
//! the next keyframe, which is counted in `dropped_frames`.
//!
//! Frames are shared by reference (`Frame` clones a `Bytes` and an `Arc`), never copied.
//!
//! The module also holds what outputs attach through: the [`LiveStream`] handle (stream.rs),
//! demand by viewers and holds (demand.rs) and the [`Registry`] of streams (registry.rs). It
//! imports only `media` and the camera model; it must not import `live`, `ingest`, outputs,
//! `http` or `api`.

mod consumer;
pub mod demand;
pub mod recorded;
mod registry;
mod stats;
mod stream;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use media::Frame;

pub use consumer::Consumer;
use consumer::ConsumerShared;
pub use demand::{ByProtocol, Demand, Protocol, TooManyViewers, ViewerGuard};
pub use recorded::{RecordedError, RecordedFrames, RecordedVideo};
pub use registry::{Output, Registry};
pub use stats::HubStats;
use stats::StatsWindow;
pub use stream::{LiveStream, RuntimeState, StreamSpec, Variant, WeakStream};

/// Limits of one hub; the defaults suit cameras up to 4K with GOPs of a few seconds.
#[derive(Clone, Debug)]
pub struct HubLimits {
    /// Frames a consumer may have waiting before it is made to skip to the next keyframe.
    pub consumer_queue: usize,
    /// The GOP cache is dropped (until the next keyframe) past this many video frames (or four
    /// times as many frames of all tracks)...
    pub gop_max_frames: usize,
    /// ...or this many bytes, so a camera that never sends a keyframe cannot grow it unbounded.
    pub gop_max_bytes: usize,
}

impl Default for HubLimits {
    fn default() -> Self {
        HubLimits {
            consumer_queue: 512,
            gop_max_frames: 1_000,
            gop_max_bytes: 64 << 20,
        }
    }
}

/// One camera's fan-out point. Cheap to clone; all clones are the same hub.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<HubInner>,
}

struct HubInner {
    limits: HubLimits,
    state: Mutex<HubState>,
}

struct HubState {
    /// Frames from the latest keyframe on; empty until the first keyframe.
    gop: VecDeque<Frame>,
    gop_bytes: usize,
    /// Video frames in `gop`: the frame limit is about the GOP's length, which the camera's
    /// audio frames (up to 50 a second next to 25 of video) must not shorten.
    gop_video: usize,
    consumers: Vec<Weak<ConsumerShared>>,
    stats: StatsWindow,
    /// Drops of consumers that have gone, so the total never goes backwards.
    dropped_by_gone: u64,
    closed: bool,
}

impl Hub {
    pub fn new(limits: HubLimits) -> Hub {
        Hub {
            inner: Arc::new(HubInner {
                limits,
                state: Mutex::new(HubState {
                    gop: VecDeque::new(),
                    gop_bytes: 0,
                    gop_video: 0,
                    consumers: Vec::new(),
                    stats: StatsWindow::new(),
                    dropped_by_gone: 0,
                    closed: false,
                }),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        // A panic while holding this lock would be a bug in this module; the state stays
        // consistent between statements, so carrying on with it is safe.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Hands a frame to every consumer. Never waits: a consumer that cannot keep up loses
    /// frames up to the next keyframe instead of slowing the source or the others.
    pub fn publish(&self, frame: Frame) {
        let mut st = self.lock();
        if st.closed {
            return;
        }
        st.stats.record(&frame);
        let limits = &self.inner.limits;
        if frame.keyframe {
            st.gop.clear();
            st.gop_bytes = 0;
            st.gop_video = 0;
        }
        if frame.keyframe || !st.gop.is_empty() {
            // Audio does not count against the GOP's length, but is bounded all the same (a
            // camera whose video stopped while its audio goes on).
            if st.gop_video >= limits.gop_max_frames
                || st.gop.len() >= 4 * limits.gop_max_frames
                || st.gop_bytes + frame.data.len() > limits.gop_max_bytes
            {
                // Too long without a keyframe: a GOP this large is not worth caching.
                st.gop.clear();
                st.gop_bytes = 0;
                st.gop_video = 0;
            } else {
                st.gop_bytes += frame.data.len();
                st.gop_video += usize::from(frame.video().is_some());
                st.gop.push_back(frame.clone());
            }
        }
        // One clock read per frame: consumers measuring latency start from here.
        let arrived = std::time::Instant::now();
        st.consumers.retain(|weak| match weak.upgrade() {
            Some(c) => {
                c.offer(&frame, limits.consumer_queue, arrived);
                true
            }
            None => false,
        });
    }

    /// A new consumer, starting with the cached GOP (if any) so it can decode at once.
    pub fn subscribe(&self) -> Consumer {
        let mut st = self.lock();
        let shared = Arc::new(ConsumerShared::new(st.gop.iter().cloned(), st.closed));
        st.consumers.push(Arc::downgrade(&shared));
        Consumer::new(shared, self.clone())
    }

    /// Called by a consumer when it goes: its drops move to the hub's total, so the total never
    /// goes backwards, and it leaves the fan-out list.
    fn consumer_gone(&self, shared: &Arc<ConsumerShared>) {
        let mut st = self.lock();
        st.dropped_by_gone += shared.dropped();
        let me = Arc::downgrade(shared);
        st.consumers.retain(|w| !w.ptr_eq(&me));
    }

    /// Ends the stream for every consumer (they see `None` after their queued frames) and
    /// releases the GOP cache. A closed hub ignores further frames.
    pub fn close(&self) {
        let consumers = {
            let mut st = self.lock();
            st.closed = true;
            st.gop.clear();
            st.gop_bytes = 0;
            st.gop_video = 0;
            std::mem::take(&mut st.consumers)
        };
        for c in consumers.iter().filter_map(Weak::upgrade) {
            c.close();
        }
    }

    /// Marks the start of a new source session (a (re)connection): uptime restarts from the
    /// next frame.
    pub fn begin_session(&self) {
        self.lock().stats.begin_session();
    }

    /// Forgets the cached GOP, e.g. when the source restarts and the old frames no longer
    /// belong to what comes next. Consumers keep what they already have.
    pub fn clear_cache(&self) {
        let mut st = self.lock();
        st.gop.clear();
        st.gop_bytes = 0;
        st.gop_video = 0;
    }

    /// The cached GOP: the latest keyframe and the frames after it (empty before the first
    /// keyframe). Clones share the frames' bytes.
    pub fn cached_gop(&self) -> Vec<Frame> {
        self.lock().gop.iter().cloned().collect()
    }

    /// Whether a keyframe is cached, i.e. a new consumer would start at once.
    pub fn has_keyframe(&self) -> bool {
        !self.lock().gop.is_empty()
    }

    /// The newest frame's decode time (90 kHz), if any frame has arrived.
    pub fn latest_dts(&self) -> Option<i64> {
        self.lock().stats.latest_dts()
    }

    /// The parameters of the newest audio frame this hub has seen, in any session: the
    /// camera's audio, for outputs that must describe their tracks before its audio arrives.
    pub fn audio_params(&self) -> Option<Arc<media::AudioParams>> {
        self.lock().stats.audio()
    }

    /// Number of consumers currently attached.
    pub fn consumer_count(&self) -> usize {
        let st = self.lock();
        st.consumers.iter().filter(|w| w.strong_count() > 0).count()
    }

    /// A snapshot of the live statistics.
    pub fn stats(&self) -> HubStats {
        let st = self.lock();
        let live_drops: u64 = st
            .consumers
            .iter()
            .filter_map(Weak::upgrade)
            .map(|c| c.dropped())
            .sum();
        st.stats.snapshot(st.dropped_by_gone + live_drops)
    }
}

#[cfg(test)]
mod tests;
