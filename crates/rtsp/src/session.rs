//! RTSP sessions: what SETUP created (stream, tracks, their transport and RTP identity),
//! whether PLAY started them, their liveness for the session timeout, and the registry that
//! counts them per stream. Sans-IO: time comes in as arguments, and the UDP sockets of a
//! track are an opaque `U` the server layer attaches (tests use `()`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::source::TrackStart;

/// How one track's packets reach the client.
#[derive(Debug, Clone)]
pub enum TrackTransport<U> {
    /// Interleaved on the RTSP connection that created the session.
    Tcp { rtp_channel: u8, rtcp_channel: u8 },
    /// Separate UDP sockets of ours (`io`), to the client's ports.
    Udp {
        client_rtp: SocketAddr,
        client_rtcp: SocketAddr,
        io: U,
    },
}

impl<U> TrackTransport<U> {
    pub fn is_tcp(&self) -> bool {
        matches!(self, TrackTransport::Tcp { .. })
    }
}

/// One set-up track of a session.
#[derive(Debug, Clone)]
pub struct SetupTrack<U> {
    /// Its RTP identity as announced at SETUP.
    pub start: TrackStart,
    pub transport: TrackTransport<U>,
    /// Where the next packet stands (for the RTP-Info of a later PLAY).
    pub seq: u16,
    pub rtptime: u32,
}

pub struct Session<U> {
    pub id: String,
    pub stream: String,
    /// The RTSP connection that created it.
    pub conn_id: u64,
    tracks: Mutex<Vec<SetupTrack<U>>>,
    playing: Mutex<bool>,
    last_seen: Mutex<Instant>,
    /// Set to true to stop the session's tasks.
    pub stop: watch::Sender<bool>,
}

impl<U: Clone> Session<U> {
    pub fn new(id: String, stream: String, conn_id: u64, now: Instant) -> Session<U> {
        Session {
            id,
            stream,
            conn_id,
            tracks: Mutex::new(Vec::new()),
            playing: Mutex::new(false),
            last_seen: Mutex::new(now),
            stop: watch::Sender::new(false),
        }
    }

    /// Any request naming the session, or RTCP from the client, keeps it alive.
    pub fn touch(&self, now: Instant) {
        *lock(&self.last_seen) = now;
    }

    pub fn idle_since(&self) -> Instant {
        *lock(&self.last_seen)
    }

    pub fn is_playing(&self) -> bool {
        *lock(&self.playing)
    }

    /// Marks it playing; returns whether it already was.
    pub fn set_playing(&self) -> bool {
        std::mem::replace(&mut *lock(&self.playing), true)
    }

    pub fn tracks(&self) -> Vec<SetupTrack<U>> {
        lock(&self.tracks).clone()
    }

    pub fn add_track(&self, t: SetupTrack<U>) {
        lock(&self.tracks).push(t);
    }

    /// Whether its packets go down its RTSP connection (all its tracks share one transport).
    pub fn is_tcp(&self) -> bool {
        lock(&self.tracks).iter().any(|t| t.transport.is_tcp())
    }

    /// Records where the next packet of stream track `track` stands.
    pub fn set_position(&self, track: usize, seq: u16, rtptime: u32) {
        if let Some(t) = lock(&self.tracks)
            .iter_mut()
            .find(|t| t.start.track == track)
        {
            t.seq = seq;
            t.rtptime = rtptime;
        }
    }

    fn kind(&self) -> &'static str {
        if self.is_tcp() { "tcp" } else { "udp" }
    }
}

/// A poisoned lock only means another task panicked mid-update of a plain value; the value
/// is still usable, so take it rather than spread the panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// All live sessions of a server, by id.
pub struct Registry<U> {
    sessions: Mutex<HashMap<String, Arc<Session<U>>>>,
    /// Names the server in log lines (`sim`, `restream`).
    label: &'static str,
}

impl<U: Clone> Registry<U> {
    pub fn new(label: &'static str) -> Registry<U> {
        Registry {
            sessions: Mutex::new(HashMap::new()),
            label,
        }
    }

    pub fn insert(&self, s: Arc<Session<U>>) {
        let (id, stream, kind) = (s.id.clone(), s.stream.clone(), s.kind());
        lock(&self.sessions).insert(id.clone(), s);
        tracing::info!(server = self.label, session = %id, stream = %stream, transport = kind,
            active = self.count(&stream), "rtsp session created");
    }

    pub fn get(&self, id: &str) -> Option<Arc<Session<U>>> {
        lock(&self.sessions).get(id).cloned()
    }

    /// Removes a session and stops its tasks. `why` goes to the log.
    pub fn remove(&self, id: &str, why: &str) -> Option<Arc<Session<U>>> {
        let s = lock(&self.sessions).remove(id)?;
        s.stop.send_replace(true);
        tracing::info!(server = self.label, session = %id, stream = %s.stream, reason = why,
            active = self.count(&s.stream), "rtsp session ended");
        Some(s)
    }

    pub fn count(&self, stream: &str) -> usize {
        lock(&self.sessions)
            .values()
            .filter(|s| s.stream == stream)
            .count()
    }

    pub fn count_playing(&self, stream: &str) -> usize {
        lock(&self.sessions)
            .values()
            .filter(|s| s.stream == stream && s.is_playing())
            .count()
    }

    pub fn total(&self) -> usize {
        lock(&self.sessions).len()
    }

    pub fn of_connection(&self, conn_id: u64) -> Vec<Arc<Session<U>>> {
        lock(&self.sessions)
            .values()
            .filter(|s| s.conn_id == conn_id)
            .cloned()
            .collect()
    }

    /// Ids of sessions idle longer than `timeout`.
    pub fn expired(&self, now: Instant, timeout: Duration) -> Vec<String> {
        lock(&self.sessions)
            .values()
            .filter(|s| now.saturating_duration_since(s.idle_since()) > timeout)
            .map(|s| s.id.clone())
            .collect()
    }

    pub fn ids(&self) -> Vec<String> {
        lock(&self.sessions).keys().cloned().collect()
    }
}
