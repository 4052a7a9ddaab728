//! `LiveStream`: the one handle every output gets for one stream (a camera, later also a
//! camera's transcode profile or a grid). Through it an output subscribes to frames (from the
//! cached keyframe), reads the latest keyframe, keeps the source connected (`hold`, for a
//! recorder or a frame publisher that is not a viewer), counts a viewer by protocol, and
//! follows the stream's state.
//!
//! It owns the stream's hub, its demand (viewers and holds) and its published state. It does
//! not own the source or its supervisor (`live/` writes the state and feeds the hub) and never
//! talks to the event bus: `live/` announces what changes.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use media::Frame;
use tokio::sync::watch;

use super::demand::{ByProtocol, Demand, Protocol, TooManyViewers, ViewerGuard, Viewers};
use super::{Consumer, Hub, HubLimits};
use crate::cameras::{CameraStatus, StreamState};
use crate::timestamps::rfc3339;

/// State plus the last failure, as the supervisor publishes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuntimeState {
    pub state: StreamState,
    /// Human, names the camera and the stage, never a password. Kept after recovery so an
    /// operator can see what happened last.
    pub last_error: Option<String>,
}

impl RuntimeState {
    pub const IDLE: RuntimeState = RuntimeState {
        state: StreamState::Idle,
        last_error: None,
    };
}

/// What outputs may know about a stream's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamSpec {
    pub camera_id: String,
    pub path: String,
    /// Recorded continuously (`record: true`): a recorder attaches and holds demand.
    pub record: bool,
    /// Connected regardless of viewers.
    pub always_on: bool,
    /// A grid (`[grids.NAME]`): not a camera; `camera_id` is its name, for the outputs that
    /// key by it (recorder, events).
    pub grid: bool,
}

/// A stream's handle. Cheap to clone; all clones are the same stream.
#[derive(Clone)]
pub struct LiveStream {
    inner: Arc<Shared>,
}

/// See [`LiveStream::downgrade`].
#[derive(Clone)]
pub struct WeakStream(std::sync::Weak<Shared>);

impl WeakStream {
    pub fn upgrade(&self) -> Option<LiveStream> {
        self.0.upgrade().map(|inner| LiveStream { inner })
    }
}

struct Shared {
    spec: RwLock<StreamSpec>,
    hub: Hub,
    viewers: Arc<Viewers>,
    state: watch::Sender<RuntimeState>,
    /// Source failures, each followed by a reconnect attempt (`/metrics`).
    reconnects: AtomicU64,
    /// What a transcode profile promises before it runs (the ABR master playlist lists it).
    variant: RwLock<Option<Variant>>,
}

/// A transcode profile's nominal output, known from its configuration before any frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variant {
    /// The profile's name (after `~`).
    pub profile: String,
    pub bitrate_kbps: u32,
    /// 0 = the camera's height.
    pub height: u32,
    /// 0 = the camera's rate.
    pub fps: u32,
}

impl LiveStream {
    pub fn new(spec: StreamSpec, limits: HubLimits, max_viewers: u32) -> LiveStream {
        LiveStream {
            inner: Arc::new(Shared {
                spec: RwLock::new(spec),
                hub: Hub::new(limits),
                viewers: Viewers::new(max_viewers),
                state: watch::Sender::new(RuntimeState::IDLE),
                reconnects: AtomicU64::new(0),
                variant: RwLock::new(None),
            }),
        }
    }

    /// A handle that does not keep the stream alive (for tasks that follow a stream but must
    /// not outlive it).
    pub fn downgrade(&self) -> WeakStream {
        WeakStream(Arc::downgrade(&self.inner))
    }

    /// Whether two handles are the same stream.
    pub fn same(&self, other: &LiveStream) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    pub fn spec(&self) -> StreamSpec {
        self.inner
            .spec
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Marks the stream as a transcode profile with this nominal output (set by `live/`).
    pub fn set_variant(&self, v: Variant) {
        *self
            .inner
            .variant
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(v);
    }

    /// `Some` for a camera's transcode profile.
    pub fn variant(&self) -> Option<Variant> {
        self.inner
            .variant
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Replaces the configuration (a camera re-provisioned); hub, viewers and state stay.
    pub fn set_spec(&self, spec: StreamSpec) {
        *self.inner.spec.write().unwrap_or_else(|p| p.into_inner()) = spec;
    }

    // Called per stream by every listing and every request lookup: read one field rather
    // than clone the whole spec.
    pub fn path(&self) -> String {
        self.inner
            .spec
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .path
            .clone()
    }

    /// A camera's transcode profile (`{path}~{profile}`), which shares the camera's id.
    pub fn is_profile(&self) -> bool {
        self.inner
            .spec
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .path
            .contains('~')
    }

    /// A grid of cameras rather than a camera's own stream (see [`StreamSpec::grid`]).
    pub fn is_grid(&self) -> bool {
        self.inner
            .spec
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .grid
    }

    pub fn has_path(&self, path: &str) -> bool {
        self.inner
            .spec
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .path
            == path
    }

    pub fn camera_id(&self) -> String {
        self.inner
            .spec
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .camera_id
            .clone()
    }

    /// The fan-out itself (for the source side and statistics).
    pub fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    /// A new consumer, starting at the cached keyframe when there is one.
    pub fn subscribe(&self) -> Consumer {
        self.inner.hub.subscribe()
    }

    /// The newest keyframe (the first frame of the cached GOP), for snapshots.
    pub fn latest_keyframe(&self) -> Option<Frame> {
        self.inner.hub.cached_gop().into_iter().next()
    }

    /// The cached GOP: the latest keyframe and every frame after it.
    pub fn cached_gop(&self) -> Vec<Frame> {
        self.inner.hub.cached_gop()
    }

    /// Counts a viewer of protocol `p` (and so starts an on-demand source), or refuses it
    /// past `max_viewers_per_stream`.
    pub fn join(&self, p: Protocol) -> Result<ViewerGuard, TooManyViewers> {
        self.inner.viewers.join(p)
    }

    /// Keeps the source connected without counting as a viewer (a request waiting for the
    /// first part, a recorder, a frame publisher). Dropping the guard releases it.
    pub fn hold(&self) -> ViewerGuard {
        self.inner.viewers.hold()
    }

    pub fn viewer_counts(&self) -> ByProtocol {
        self.inner.viewers.counts()
    }

    pub fn set_max_viewers(&self, max: u32) {
        self.inner.viewers.set_max(max);
    }

    /// Follows demand (viewers and holds): the supervisor waits on it.
    pub fn watch_demand(&self) -> watch::Receiver<Demand> {
        self.inner.viewers.subscribe()
    }

    pub fn state(&self) -> RuntimeState {
        self.inner.state.borrow().clone()
    }

    /// Follows state changes (waiting for `live`, outputs that start when video flows).
    pub fn watch_state(&self) -> watch::Receiver<RuntimeState> {
        self.inner.state.subscribe()
    }

    /// Sets the state; `last_error` replaces the previous one when given, else it stays (it
    /// is history: what went wrong last). Returns the previous state when the state changed.
    /// Written by the stream's supervisor only.
    pub fn set_state(&self, state: StreamState, last_error: Option<String>) -> Option<StreamState> {
        if last_error.is_some() {
            self.inner.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        let mut previous = None;
        self.inner.state.send_if_modified(|s| {
            let next = RuntimeState {
                state,
                last_error: last_error.or_else(|| s.last_error.clone()),
            };
            if *s == next {
                return false;
            }
            if s.state != next.state {
                previous = Some(s.state);
            }
            *s = next;
            true
        });
        previous
    }

    /// Back to idle with no error (the stream was removed); the previous state.
    pub fn reset_state(&self) -> StreamState {
        self.inner.state.send_replace(RuntimeState::IDLE).state
    }

    /// Source failures so far, each followed by a reconnect attempt.
    pub fn reconnects(&self) -> u64 {
        self.inner.reconnects.load(Ordering::Relaxed)
    }

    /// The stream's status as the API reports it.
    pub fn status(&self) -> CameraStatus {
        let spec = self.spec();
        let st = self.state();
        let hs = self.inner.hub.stats();
        let live = st.state == StreamState::Live;
        CameraStatus {
            camera_id: spec.camera_id,
            stream_path: spec.path,
            state: st.state,
            online: live,
            fps: if live { hs.fps } else { 0.0 },
            bitrate_kbps: if live { hs.bitrate_kbps as u64 } else { 0 },
            dropped_frames: hs.dropped_frames,
            uptime_seconds: if live { hs.uptime_seconds } else { 0 },
            viewers: u64::from(self.viewer_counts().total()),
            codec: hs.codec().map(str::to_owned),
            resolution: hs.resolution(),
            last_error: st.last_error,
            last_frame_at: hs.last_frame_at.map(rfc3339),
            recording: None,
        }
    }
}
