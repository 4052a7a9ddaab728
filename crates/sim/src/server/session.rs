//! RTSP sessions: what SETUP created (camera, transport, RTP identity), their liveness for
//! the session timeout, and the registry that counts them per camera. Owns no sockets'
//! lifetimes beyond the UDP pair a session was given.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::{Notify, mpsc, watch};

/// How a session's packets reach the client.
pub(crate) enum SessionTransport {
    /// Interleaved on the RTSP connection, through its writer queue.
    Tcp {
        out: mpsc::Sender<Bytes>,
        rtp_channel: u8,
        rtcp_channel: u8,
    },
    /// Separate UDP sockets of ours, to the client's ports.
    Udp {
        rtp: Arc<UdpSocket>,
        rtcp: Arc<UdpSocket>,
        client_rtp: SocketAddr,
        client_rtcp: SocketAddr,
    },
}

impl SessionTransport {
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            SessionTransport::Tcp { .. } => "tcp",
            SessionTransport::Udp { .. } => "udp",
        }
    }
}

/// Where the next RTP packet of a session stands (for RTP-Info).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RtpPosition {
    pub(crate) seq: u16,
    pub(crate) rtptime: u32,
}

pub(crate) struct Session {
    pub(crate) id: String,
    pub(crate) camera: u32,
    /// The RTSP connection that created it.
    pub(crate) conn_id: u64,
    pub(crate) transport: SessionTransport,
    pub(crate) ssrc: u32,
    pub(crate) playing: Mutex<bool>,
    pub(crate) position: Mutex<RtpPosition>,
    last_seen: Mutex<Instant>,
    /// Set to true to stop the session's tasks.
    pub(crate) stop: watch::Sender<bool>,
    /// Wakes the owning connection so it closes (the drop fault).
    pub(crate) kill_conn: Arc<Notify>,
}

impl Session {
    pub(crate) fn new(
        id: String,
        camera: u32,
        conn_id: u64,
        transport: SessionTransport,
        kill_conn: Arc<Notify>,
    ) -> Session {
        Session {
            id,
            camera,
            conn_id,
            transport,
            ssrc: rand::random(),
            playing: Mutex::new(false),
            position: Mutex::new(RtpPosition {
                seq: rand::random(),
                rtptime: rand::random(),
            }),
            last_seen: Mutex::new(Instant::now()),
            stop: watch::Sender::new(false),
            kill_conn,
        }
    }

    /// Any request naming the session, or RTCP from the client, keeps it alive.
    pub(crate) fn touch(&self) {
        *lock(&self.last_seen) = Instant::now();
    }

    pub(crate) fn idle_since(&self) -> Instant {
        *lock(&self.last_seen)
    }

    pub(crate) fn is_playing(&self) -> bool {
        *lock(&self.playing)
    }
}

/// A poisoned lock only means another task panicked mid-update of a plain value; the value
/// is still usable, so take it rather than spread the panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// All live sessions of a server, by id.
#[derive(Default)]
pub(crate) struct Registry {
    sessions: Mutex<HashMap<String, Arc<Session>>>,
}

impl Registry {
    pub(crate) fn insert(&self, s: Arc<Session>) {
        let camera = s.camera;
        let id = s.id.clone();
        let kind = s.transport.kind();
        lock(&self.sessions).insert(id.clone(), s);
        tracing::info!(session = %id, camera = %format!("cam{camera}"), transport = kind,
            active = self.count(camera), "sim session created");
    }

    pub(crate) fn get(&self, id: &str) -> Option<Arc<Session>> {
        lock(&self.sessions).get(id).cloned()
    }

    /// Removes a session and stops its tasks. `why` goes to the log.
    pub(crate) fn remove(&self, id: &str, why: &str) -> Option<Arc<Session>> {
        let s = lock(&self.sessions).remove(id)?;
        s.stop.send_replace(true);
        tracing::info!(session = %id, camera = %format!("cam{}", s.camera), reason = why,
            active = self.count(s.camera), "sim session ended");
        Some(s)
    }

    pub(crate) fn count(&self, camera: u32) -> usize {
        lock(&self.sessions)
            .values()
            .filter(|s| s.camera == camera)
            .count()
    }

    pub(crate) fn count_playing(&self, camera: u32) -> usize {
        lock(&self.sessions)
            .values()
            .filter(|s| s.camera == camera && s.is_playing())
            .count()
    }

    pub(crate) fn total(&self) -> usize {
        lock(&self.sessions).len()
    }

    pub(crate) fn of_connection(&self, conn_id: u64) -> Vec<Arc<Session>> {
        lock(&self.sessions)
            .values()
            .filter(|s| s.conn_id == conn_id)
            .cloned()
            .collect()
    }

    /// Ids of sessions idle longer than `timeout`.
    pub(crate) fn expired(&self, now: Instant, timeout: std::time::Duration) -> Vec<String> {
        lock(&self.sessions)
            .values()
            .filter(|s| now.saturating_duration_since(s.idle_since()) > timeout)
            .map(|s| s.id.clone())
            .collect()
    }

    pub(crate) fn ids(&self) -> Vec<String> {
        lock(&self.sessions).keys().cloned().collect()
    }
}
