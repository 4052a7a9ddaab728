//! One camera's LL-HLS output: a `media::hls::Segmenter` fed by a hub consumer, a version
//! counter that wakes blocked requests, the rendered playlists of the current version, and
//! the camera's HLS viewer sessions.
//!
//! Built for thousands of players of one camera: waiters wake only when the playlist changed
//! (a part or segment completed, five times a second with 200 ms parts), not on every frame;
//! the playlist is rendered once per version and variant (plain, delta) and each request only
//! splices its session query into a copy; the segmenter lock is held for decisions and
//! lookups, never while rendering a response for one client.
//!
//! It exists while a camera has HLS viewers or is connected; the feeder task ends (and the
//! registry forgets the stream) when the hub closes (camera deleted) or the camera has gone
//! idle with nobody left, so the next viewer gets a fresh segmenter with new file names.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use media::hls::{PlaylistTemplate, ReloadDecision, Segmenter, SegmenterConfig};
use rand::Rng;
use tokio::sync::watch;
use tokio::time::Instant;

use super::HlsSettings;
use super::delay::PartDelay;
use crate::cameras::StreamState;
use crate::hub::{LiveStream, Protocol, TooManyViewers, ViewerGuard};
use crate::tasks::Tasks;

/// A player that made no request for this long is no longer a viewer. Players reload the
/// playlist every part (LL-HLS) or every segment, so this is many reloads without a word.
pub const SESSION_IDLE: Duration = Duration::from_secs(10);

pub struct HlsStream {
    pub camera: LiveStream,
    segmenter: Mutex<Segmenter>,
    /// Playlist changes so far (parts or segments completed). Written only while holding
    /// `segmenter`, so a reader holding it sees the version of the state it reads.
    changes: AtomicU64,
    /// Follows `changes` (sent after the segmenter lock is released); blocked requests wait
    /// for it to move.
    version: watch::Sender<u64>,
    /// The last rendered playlist of each variant: [plain, delta (`_HLS_skip`)].
    playlists: [Mutex<Option<CachedPlaylist>>; 2],
    sessions: Mutex<HashMap<String, Session>>,
    /// Per client address, its one unconfirmed session (made for a request that named no
    /// known session): cookie-less requests from one address share it, so they cannot fill
    /// the stream's viewer slots. Locked before `sessions`.
    provisional: Mutex<HashMap<IpAddr, String>>,
    part_delay: Arc<PartDelay>,
}

/// A playlist rendered at `version`.
struct CachedPlaylist {
    version: u64,
    template: Arc<PlaylistTemplate>,
}

struct Session {
    _viewer: ViewerGuard,
    last_seen: Instant,
    /// Named again by a later request (a player following our playlist's URIs).
    confirmed: bool,
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl HlsStream {
    /// A new stream for `camera`, with its feeder task in `tasks`. `on_end` runs when the
    /// feeder stops.
    pub fn start(
        camera: LiveStream,
        settings: &HlsSettings,
        part_delay: Arc<PartDelay>,
        tasks: &Tasks,
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
            changes: AtomicU64::new(0),
            version: watch::Sender::new(0),
            playlists: Default::default(),
            sessions: Mutex::new(HashMap::new()),
            provisional: Mutex::new(HashMap::new()),
            part_delay,
        });
        let s = stream.clone();
        tasks.spawn(format!("hls {}", stream.camera.path()), async move {
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

    /// A receiver that sees every playlist change (not every frame).
    pub fn watch_version(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// The blocking-reload decision for `msn`/`part` and the playlist version it was made at
    /// (a playlist at least that new contains what was asked for).
    pub fn reload_decision(&self, msn: Option<u64>, part: Option<u64>) -> (ReloadDecision, u64) {
        let seg = self.segmenter();
        let decision = seg.blocking_reload(msn, part);
        (decision, self.changes.load(Ordering::Acquire))
    }

    /// The current playlist (`skip`: the delta variant), at least as new as `at_least`:
    /// rendered once per version and variant, shared by every request that follows.
    pub fn playlist(&self, skip: bool, at_least: u64) -> Arc<PlaylistTemplate> {
        let want = at_least.max(self.changes.load(Ordering::Acquire));
        // Held while rendering, so requests arriving together render once between them.
        let mut slot = self.playlists[usize::from(skip)]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(c) = slot.as_ref().filter(|c| c.version >= want) {
            return c.template.clone();
        }
        let seg = self.segmenter();
        let version = self.changes.load(Ordering::Acquire);
        let template = Arc::new(seg.playlist_template(skip));
        drop(seg);
        *slot = Some(CachedPlaylist {
            version,
            template: template.clone(),
        });
        template
    }

    /// Pushes one frame (received by the hub at `arrived`, if known) into the segmenter and,
    /// when that completed a part, wakes the waiting requests and records each completed
    /// frame's delay. `arrivals` holds the arrival of every accepted frame not yet in a part.
    pub(super) fn push(
        &self,
        frame: &media::Frame,
        arrived: Option<std::time::Instant>,
        arrivals: &mut VecDeque<Option<std::time::Instant>>,
    ) {
        let (outcome, version) = {
            let mut seg = self.segmenter();
            let outcome = seg.push(frame, unix_ms());
            let version = if outcome.changed() {
                self.changes.fetch_add(1, Ordering::AcqRel) + 1
            } else {
                0
            };
            (outcome, version)
        };
        // The segmenter counts video frames only (audio rides along in the video's parts).
        if !outcome.dropped && frame.video().is_some() {
            arrivals.push_back(arrived);
        }
        if outcome.changed() {
            self.version.send_replace(version);
        }
        let available = std::time::Instant::now();
        for _ in 0..outcome.frames_completed {
            // Frames of a part that could not be built (never happens with the timeline the
            // segmenter keeps) leave without a change: they were never available.
            if let Some(Some(t)) = arrivals.pop_front()
                && outcome.changed()
            {
                self.part_delay
                    .observe(available.saturating_duration_since(t));
            }
        }
    }

    async fn feed(&self) {
        let mut consumer = self.camera.subscribe();
        let mut state = self.camera.watch_state();
        let mut sweep = tokio::time::interval(Duration::from_secs(1));
        let mut arrivals = VecDeque::new();
        loop {
            tokio::select! {
                frame = consumer.recv_with_arrival() => {
                    let Some((frame, arrived)) = frame else { return };
                    self.push(&frame, arrived, &mut arrivals);
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
        self.camera.state().state == StreamState::Idle && !self.camera.watch_demand().borrow().any()
    }

    fn lock_sessions(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_provisional(&self) -> MutexGuard<'_, HashMap<IpAddr, String>> {
        self.provisional.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn expire_sessions(&self) {
        let now = Instant::now();
        let mut provisional = self.lock_provisional();
        let mut sessions = self.lock_sessions();
        sessions.retain(|_, s| now.duration_since(s.last_seen) < SESSION_IDLE);
        provisional.retain(|_, id| sessions.contains_key(id));
    }

    /// The session of a request from `client` that names `claimed` (its `hls_session` query
    /// or cookie): `(id, fresh)`, fresh when the answer should set the cookie.
    ///
    /// A known id is that player (and confirms it). An unknown id (made up, or ours but
    /// expired) or none (with `may_create`) gets the client address's one unconfirmed
    /// session, made (counted as a viewer, or refused past the limit) only if the address has
    /// none: a page firing cookie-less requests holds one slot, however many it sends.
    /// Without `may_create` and without an id: `None`.
    pub fn resolve_session(
        &self,
        claimed: Option<&str>,
        client: Option<IpAddr>,
        may_create: bool,
    ) -> Result<Option<(String, bool)>, TooManyViewers> {
        if claimed.is_none() && !may_create {
            return Ok(None);
        }
        let now = Instant::now();
        let mut provisional = self.lock_provisional();
        let mut sessions = self.lock_sessions();
        if let Some(id) = claimed
            && let Some(s) = sessions.get_mut(id)
        {
            s.last_seen = now;
            if !s.confirmed {
                s.confirmed = true;
                provisional.retain(|_, p| p != id);
            }
            return Ok(Some((id.to_owned(), false)));
        }
        if let Some(ip) = client
            && let Some(id) = provisional.get(&ip)
            && let Some(s) = sessions.get_mut(id)
        {
            s.last_seen = now;
            return Ok(Some((id.clone(), true)));
        }
        let viewer = self.camera.join(Protocol::Hls)?;
        // Always a new id: an unknown claimed id (made up, or ours but expired) must not
        // become a session, or a page repeating a made-up id would confirm it and then hold
        // a second slot with its cookie-less requests. The answer sets the new id's cookie.
        let id = session_id();
        sessions.insert(
            id.clone(),
            Session {
                _viewer: viewer,
                last_seen: now,
                confirmed: false,
            },
        );
        if let Some(ip) = client {
            provisional.insert(ip, id.clone());
        }
        Ok(Some((id, true)))
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
