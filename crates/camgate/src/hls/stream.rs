//! One camera's LL-HLS output: a `media::hls::Segmenter` fed by a hub consumer, a version
//! counter that wakes blocked requests, and the camera's HLS viewer sessions.
//!
//! It exists while a camera has HLS viewers or is connected; the feeder task ends (and the
//! registry forgets the stream) when the hub closes (camera deleted) or the camera has gone
//! idle with nobody left, so the next viewer gets a fresh segmenter with new file names.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use media::hls::{Segmenter, SegmenterConfig};
use rand::Rng;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::streams::{
    CameraRuntime, LiveSettings, Protocol, StreamState, TooManyViewers, ViewerGuard,
};

/// A player that made no request for this long is no longer a viewer. Players reload the
/// playlist every part (LL-HLS) or every segment, so this is many reloads without a word.
pub const SESSION_IDLE: Duration = Duration::from_secs(10);

pub struct HlsStream {
    pub camera: Arc<CameraRuntime>,
    segmenter: Mutex<Segmenter>,
    /// Bumped after every frame pushed; blocked requests wait for a change.
    version: watch::Sender<u64>,
    sessions: Mutex<HashMap<String, Session>>,
}

struct Session {
    _viewer: ViewerGuard,
    last_seen: Instant,
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl HlsStream {
    /// A new stream for `camera`, with its feeder task. `on_end` runs when the feeder stops.
    pub fn start(
        camera: Arc<CameraRuntime>,
        settings: &LiveSettings,
        on_end: impl FnOnce(&Arc<HlsStream>) + Send + 'static,
    ) -> Arc<HlsStream> {
        let mut config = SegmenterConfig::new(
            settings.segment_duration,
            settings.part_duration,
            settings.list_size.max(1),
        );
        // New names for every new segmenter of this camera: the old ones were served as
        // immutable and may sit in caches.
        config.instance = unix_ms() as u64;
        let stream = Arc::new(HlsStream {
            camera,
            segmenter: Mutex::new(Segmenter::new(config)),
            version: watch::Sender::new(0),
            sessions: Mutex::new(HashMap::new()),
        });
        let s = stream.clone();
        tokio::spawn(async move {
            s.feed().await;
            on_end(&s);
        });
        stream
    }

    pub fn segmenter(&self) -> MutexGuard<'_, Segmenter> {
        // The segmenter is sans-IO and does not panic on input; a poisoned lock would mean a
        // bug there, and its state is still the best we have.
        self.segmenter.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn watch_version(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    async fn feed(&self) {
        let mut consumer = self.camera.hub().subscribe();
        let mut state = self.camera.watch_state();
        let mut sweep = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                frame = consumer.recv() => {
                    let Some(frame) = frame else { return };
                    self.segmenter().push(&frame, unix_ms());
                    self.version.send_modify(|v| *v += 1);
                }
                changed = state.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    if self.is_abandoned() {
                        return;
                    }
                }
                _ = sweep.tick() => {
                    self.expire_sessions();
                    if self.is_abandoned() {
                        return;
                    }
                }
            }
        }
    }

    /// The camera went idle and nobody wants it: this output has nothing left to do.
    fn is_abandoned(&self) -> bool {
        self.camera.state().state == StreamState::Idle
            && !self.camera.viewers().subscribe().borrow().any()
    }

    fn lock_sessions(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn expire_sessions(&self) {
        let now = Instant::now();
        self.lock_sessions()
            .retain(|_, s| now.duration_since(s.last_seen) < SESSION_IDLE);
    }

    /// Marks a known session as active; false if it is unknown (expired or made up).
    pub fn touch(&self, id: &str) -> bool {
        match self.lock_sessions().get_mut(id) {
            Some(s) => {
                s.last_seen = Instant::now();
                true
            }
            None => false,
        }
    }

    /// A new player: counts as a viewer (or is refused past the limit).
    pub fn new_session(&self) -> Result<String, TooManyViewers> {
        let viewer = self.camera.viewers().join(Protocol::Hls)?;
        let id = session_id();
        self.lock_sessions().insert(
            id.clone(),
            Session {
                _viewer: viewer,
                last_seen: Instant::now(),
            },
        );
        Ok(id)
    }

    /// A session id we issued earlier but forgot (expired): the player is still there, so it
    /// counts again under the same id.
    pub fn revive_session(&self, id: &str) -> Result<(), TooManyViewers> {
        let viewer = self.camera.viewers().join(Protocol::Hls)?;
        self.lock_sessions().insert(
            id.to_owned(),
            Session {
                _viewer: viewer,
                last_seen: Instant::now(),
            },
        );
        Ok(())
    }
}

/// 128 random bits, hex: unguessable, so one player cannot keep another's count alive.
fn session_id() -> String {
    let v: u128 = rand::rng().random();
    format!("{v:032x}")
}

/// Accepts only ids of our own shape (32 lowercase hex digits).
pub fn valid_session_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
