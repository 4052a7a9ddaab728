//! Counters that exist nowhere else, for `/metrics` and `/stats`: HLS requests, WebSocket
//! clients, the NATS connection. Per-camera figures are not kept here; they are read from the
//! hubs and runtimes when `/metrics` is scraped, so the two can never disagree.
//!
//! One `Metrics` per process, in `AppState::metrics`. Every method is a relaxed atomic
//! operation: cheap enough for the request path of every HLS part.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, Ordering};

/// What an HLS request asked for (`camgate_hls_requests_total{kind}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HlsRequestKind {
    Playlist,
    Init,
    Segment,
    Part,
}

impl HlsRequestKind {
    pub const ALL: [HlsRequestKind; 4] = [
        HlsRequestKind::Playlist,
        HlsRequestKind::Init,
        HlsRequestKind::Segment,
        HlsRequestKind::Part,
    ];

    /// The kind of a media file request, by the name the playlist gave it (`None` for a
    /// name no segmenter makes).
    pub fn of_file(file: &str) -> Option<HlsRequestKind> {
        use media::hls::names::{Name, parse};
        parse(file).map(|(_, name)| match name {
            Name::Init { .. } => HlsRequestKind::Init,
            Name::Segment { .. } => HlsRequestKind::Segment,
            Name::Part { .. } => HlsRequestKind::Part,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            HlsRequestKind::Playlist => "playlist",
            HlsRequestKind::Init => "init",
            HlsRequestKind::Segment => "segment",
            HlsRequestKind::Part => "part",
        }
    }
}

/// The NATS publisher's connection, as `/health` and `/metrics` show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NatsStatus {
    /// `[nats] url` is not set.
    Disabled,
    /// Not connected yet since start.
    Connecting,
    Connected,
    /// Was connected, lost the server; reconnecting by itself.
    Disconnected,
}

impl NatsStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            NatsStatus::Disabled => "disabled",
            NatsStatus::Connecting => "connecting",
            NatsStatus::Connected => "connected",
            NatsStatus::Disconnected => "disconnected",
        }
    }

    fn from_u8(v: u8) -> NatsStatus {
        match v {
            1 => NatsStatus::Connecting,
            2 => NatsStatus::Connected,
            3 => NatsStatus::Disconnected,
            _ => NatsStatus::Disabled,
        }
    }
}

/// WebSocket endpoints whose clients are counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WsEndpoint {
    Events,
    Dashboard,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_kinds_follow_the_segmenter_names() {
        assert_eq!(
            HlsRequestKind::of_file("init-3-0.mp4"),
            Some(HlsRequestKind::Init)
        );
        assert_eq!(
            HlsRequestKind::of_file("seg-3-17.m4s"),
            Some(HlsRequestKind::Segment)
        );
        assert_eq!(
            HlsRequestKind::of_file("part-3-90.m4s"),
            Some(HlsRequestKind::Part)
        );
        assert_eq!(HlsRequestKind::of_file("../etc/passwd"), None);
        let m = Metrics::new(false);
        m.hls_request(HlsRequestKind::Part);
        m.hls_request(HlsRequestKind::Part);
        assert_eq!(m.hls_requests(HlsRequestKind::Part), 2);
        assert_eq!(m.hls_requests(HlsRequestKind::Init), 0);
        assert_eq!(m.nats_status(), NatsStatus::Disabled);
    }
}

#[derive(Default)]
pub struct Metrics {
    hls_requests: [AtomicU64; 4],
    hls_blocking_waits: AtomicU64,
    hls_sent_bytes: AtomicU64,
    ws_events_clients: AtomicI64,
    ws_dashboard_clients: AtomicI64,
    ws_messages_sent: AtomicU64,
    nats_status: AtomicU8,
    nats_published: AtomicU64,
    nats_skipped: AtomicU64,
    nats_errors: AtomicU64,
    nats_connects: AtomicU64,
    nats_last_error: Mutex<Option<String>>,
}

impl Metrics {
    pub fn new(nats_enabled: bool) -> Metrics {
        let m = Metrics::default();
        if nats_enabled {
            m.set_nats_status(NatsStatus::Connecting);
        }
        m
    }

    // --- HLS (called by hls/) ---

    /// One HLS request served (or refused after it was understood).
    pub fn hls_request(&self, kind: HlsRequestKind) {
        self.hls_requests[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// A playlist request that had to wait for a part (LL-HLS blocking reload).
    pub fn hls_blocking_reload_wait(&self) {
        self.hls_blocking_waits.fetch_add(1, Ordering::Relaxed);
    }

    /// Bytes of playlists, init segments, segments and parts sent.
    pub fn hls_bytes_sent(&self, n: u64) {
        self.hls_sent_bytes.fetch_add(n, Ordering::Relaxed);
    }

    pub fn hls_requests(&self, kind: HlsRequestKind) -> u64 {
        self.hls_requests[kind as usize].load(Ordering::Relaxed)
    }

    pub fn hls_blocking_reload_waits(&self) -> u64 {
        self.hls_blocking_waits.load(Ordering::Relaxed)
    }

    pub fn hls_sent_bytes(&self) -> u64 {
        self.hls_sent_bytes.load(Ordering::Relaxed)
    }

    // --- WebSocket event feeds ---

    /// Counts a connected client until the returned guard drops.
    pub fn ws_client(self: &std::sync::Arc<Self>, endpoint: WsEndpoint) -> WsClientGuard {
        self.ws_gauge(endpoint).fetch_add(1, Ordering::Relaxed);
        WsClientGuard {
            metrics: self.clone(),
            endpoint,
        }
    }

    fn ws_gauge(&self, endpoint: WsEndpoint) -> &AtomicI64 {
        match endpoint {
            WsEndpoint::Events => &self.ws_events_clients,
            WsEndpoint::Dashboard => &self.ws_dashboard_clients,
        }
    }

    pub fn ws_clients(&self, endpoint: WsEndpoint) -> u64 {
        self.ws_gauge(endpoint).load(Ordering::Relaxed).max(0) as u64
    }

    pub fn ws_message_sent(&self) {
        self.ws_messages_sent.fetch_add(1, Ordering::Relaxed);
    }

    pub fn ws_messages_sent(&self) -> u64 {
        self.ws_messages_sent.load(Ordering::Relaxed)
    }

    // --- NATS ---

    pub fn set_nats_status(&self, s: NatsStatus) {
        let v = match s {
            NatsStatus::Disabled => 0,
            NatsStatus::Connecting => 1,
            NatsStatus::Connected => 2,
            NatsStatus::Disconnected => 3,
        };
        self.nats_status.store(v, Ordering::Relaxed);
        if s == NatsStatus::Connected {
            self.nats_connects.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn nats_status(&self) -> NatsStatus {
        NatsStatus::from_u8(self.nats_status.load(Ordering::Relaxed))
    }

    pub fn nats_published(&self) {
        self.nats_published.fetch_add(1, Ordering::Relaxed);
    }

    /// Messages not sent because NATS was not connected (current state is republished on
    /// reconnect instead of replaying stale messages).
    pub fn nats_skipped(&self, n: u64) {
        self.nats_skipped.fetch_add(n, Ordering::Relaxed);
    }

    pub fn nats_error(&self, message: String) {
        self.nats_errors.fetch_add(1, Ordering::Relaxed);
        *self
            .nats_last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(message);
    }

    pub fn nats_last_error(&self) -> Option<String> {
        self.nats_last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn nats_counts(&self) -> NatsCounts {
        NatsCounts {
            published: self.nats_published.load(Ordering::Relaxed),
            skipped: self.nats_skipped.load(Ordering::Relaxed),
            errors: self.nats_errors.load(Ordering::Relaxed),
            connects: self.nats_connects.load(Ordering::Relaxed),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NatsCounts {
    pub published: u64,
    pub skipped: u64,
    pub errors: u64,
    pub connects: u64,
}

/// One connected WebSocket client; dropping it stops counting it.
pub struct WsClientGuard {
    metrics: std::sync::Arc<Metrics>,
    endpoint: WsEndpoint,
}

impl Drop for WsClientGuard {
    fn drop(&mut self) {
        self.metrics
            .ws_gauge(self.endpoint)
            .fetch_sub(1, Ordering::Relaxed);
    }
}
