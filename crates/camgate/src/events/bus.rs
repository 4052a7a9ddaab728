//! The in-process event bus: typed events about cameras, published by the live path and the
//! API, read by the WebSocket endpoints, the NATS publisher and anything else that subscribes.
//!
//! Publishing never waits: the bus is a bounded `tokio::sync::broadcast` ring. A subscriber
//! that falls more than [`CAPACITY`] events behind loses the oldest ones and is told how many
//! (`Received::Lagged`), so a slow WebSocket client or a stalled NATS connection can never
//! slow a camera. Events hold no secrets: camera URLs never enter them, and error texts come
//! from the live path already redacted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use tokio::sync::broadcast;

use crate::cameras::{CameraStatus, RecordingStatus, StreamState};
use crate::hub::ByProtocol;

/// Events a subscriber may fall behind before it starts losing the oldest.
pub const CAPACITY: usize = 1024;

/// One event. Serialized as JSON with a `type` tag; see docs/events.md for every shape.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A camera record was provisioned, updated or deleted.
    Camera(CameraEvent),
    /// A camera's source changed state.
    State(StateEvent),
    /// The number of players watching a camera changed.
    Viewers(ViewersEvent),
    /// A camera's full status (periodic, or on request).
    Status(StatusEvent),
    /// The recorder wrote a file, removed files, or hit disk pressure (docs/recording.md).
    Recording(RecordingEvent),
    /// A WebRTC (WHEP) session started or ended, with what it was sent and its peer's
    /// feedback (docs/webrtc.md).
    Webrtc(WebrtcEvent),
}

impl Event {
    pub fn camera_id(&self) -> &str {
        match self {
            Event::Camera(e) => &e.camera_id,
            Event::State(e) => &e.camera_id,
            Event::Viewers(e) => &e.camera_id,
            Event::Status(e) => &e.status.camera_id,
            Event::Recording(e) => &e.camera_id,
            Event::Webrtc(e) => &e.camera_id,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CameraAction {
    Provisioned,
    Updated,
    Deleted,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CameraEvent {
    pub action: CameraAction,
    pub camera_id: String,
    pub stream_path: String,
    pub ts: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StateEvent {
    pub camera_id: String,
    pub stream_path: String,
    pub ts: String,
    pub state: StreamState,
    pub previous: StreamState,
    /// Why, in words: the failure (redacted) or what caused the transition.
    pub reason: String,
    /// `state == live`, for consumers that only care whether video flows.
    pub online: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ViewersEvent {
    pub camera_id: String,
    pub stream_path: String,
    pub ts: String,
    pub viewers: u32,
    pub by_protocol: ByProtocol,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StatusEvent {
    pub ts: String,
    #[serde(flatten)]
    pub status: CameraStatus,
}

impl StatusEvent {
    pub fn new(status: CameraStatus) -> StatusEvent {
        StatusEvent { ts: now(), status }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RecordingEvent {
    pub camera_id: String,
    pub stream_path: String,
    pub ts: String,
    /// What happened, in words: "file written", "removed 3 files (max_bytes)", "disk full".
    pub reason: String,
    /// The stream's recording status after it.
    pub recording: RecordingStatus,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WebrtcEvent {
    pub camera_id: String,
    pub stream_path: String,
    pub ts: String,
    /// `started` or `ended`.
    pub action: &'static str,
    pub session: String,
    /// Why it ended: DELETE, ICE failure, DTLS close, the stream going away.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub seconds: u64,
    pub bytes_sent: u64,
    pub nacks: u64,
    pub plis: u64,
    pub firs: u64,
    /// The latest round-trip time the peer's RTCP gave, when it gave one.
    pub rtt_ms: Option<f64>,
}

/// What a state change was caused by, from the transition itself: the live path's code only
/// says which state it enters and, on failure, the error.
pub fn state_reason(
    previous: StreamState,
    next: StreamState,
    error: Option<&str>,
    always_on: bool,
) -> String {
    if let Some(e) = error {
        return e.to_owned();
    }
    match (previous, next) {
        (_, StreamState::Live) if previous != StreamState::Starting => {
            "video is flowing again".to_owned()
        }
        (_, StreamState::Live) => "first video received".to_owned(),
        (StreamState::Idle, StreamState::Starting) if always_on => {
            "connecting (camera is always on)".to_owned()
        }
        (StreamState::Idle, StreamState::Starting) => "a viewer asked for the camera".to_owned(),
        (_, StreamState::Idle) => "no viewers for the idle timeout; disconnected".to_owned(),
        (_, s) => format!("now {}", s.as_str()),
    }
}

pub use crate::timestamps::{now, rfc3339};

/// The bus. Cheap to clone; all clones are the same bus.
#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Arc<Event>>,
    counters: Arc<BusCounters>,
}

#[derive(Default)]
struct BusCounters {
    published: AtomicU64,
    lagged: AtomicU64,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new(CAPACITY)
    }
}

impl EventBus {
    pub fn new(capacity: usize) -> EventBus {
        let (tx, _) = broadcast::channel(capacity.max(1));
        EventBus {
            tx,
            counters: Arc::default(),
        }
    }

    /// Hands the event to every subscriber. Never waits.
    pub fn publish(&self, event: Event) {
        self.counters.published.fetch_add(1, Ordering::Relaxed);
        // An error only means nobody is subscribed right now, which is fine.
        let _ = self.tx.send(Arc::new(event));
    }

    pub fn subscribe(&self) -> Subscription {
        Subscription {
            rx: self.tx.subscribe(),
            counters: self.counters.clone(),
        }
    }

    /// Events published since start.
    pub fn published_total(&self) -> u64 {
        self.counters.published.load(Ordering::Relaxed)
    }

    /// Events that subscribers lost because they fell behind, summed over subscribers.
    pub fn lagged_total(&self) -> u64 {
        self.counters.lagged.load(Ordering::Relaxed)
    }

    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }
}

/// What a subscriber gets next.
#[derive(Clone, Debug, PartialEq)]
pub enum Received {
    Event(Arc<Event>),
    /// This many events were lost because the subscriber fell behind.
    Lagged(u64),
}

pub struct Subscription {
    rx: broadcast::Receiver<Arc<Event>>,
    counters: Arc<BusCounters>,
}

impl Subscription {
    /// The next event, or `None` once the bus is gone.
    pub async fn recv(&mut self) -> Option<Received> {
        match self.rx.recv().await {
            Ok(e) => Some(Received::Event(e)),
            Err(broadcast::error::RecvError::Lagged(n)) => {
                self.counters.lagged.fetch_add(n, Ordering::Relaxed);
                Some(Received::Lagged(n))
            }
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn viewers(n: u32) -> Event {
        Event::Viewers(ViewersEvent {
            camera_id: "1".into(),
            stream_path: "cam_1".into(),
            ts: now(),
            viewers: n,
            by_protocol: ByProtocol {
                hls: n,
                ..Default::default()
            },
        })
    }

    #[tokio::test]
    async fn a_lagging_subscriber_is_told_how_many_it_missed_and_publishers_never_wait() {
        let bus = EventBus::new(4);
        let mut slow = bus.subscribe();
        // Far more than the capacity: publish must not wait for the slow subscriber.
        for n in 0..10 {
            bus.publish(viewers(n));
        }
        assert_eq!(slow.recv().await, Some(Received::Lagged(6)));
        match slow.recv().await {
            Some(Received::Event(e)) => assert_eq!(*e, viewers_at(&e, 6)),
            other => panic!("{other:?}"),
        }
        assert_eq!(bus.lagged_total(), 6);
        assert_eq!(bus.published_total(), 10);
    }

    fn viewers_at(e: &Event, n: u32) -> Event {
        // Same event as `viewers(n)` with the received timestamp.
        let mut want = viewers(n);
        if let (Event::Viewers(w), Event::Viewers(got)) = (&mut want, e) {
            w.ts = got.ts.clone();
        }
        want
    }

    #[test]
    fn events_serialize_with_their_type_tag() {
        let v = serde_json::to_value(viewers(2)).unwrap();
        assert_eq!(v["type"], "viewers");
        assert_eq!(v["stream_path"], "cam_1");
        assert_eq!(v["by_protocol"]["hls"], 2);
        let s = serde_json::to_value(Event::State(StateEvent {
            camera_id: "1".into(),
            stream_path: "cam_1".into(),
            ts: now(),
            state: StreamState::Reconnecting,
            previous: StreamState::Live,
            reason: "camera 1: the session ended".into(),
            online: false,
        }))
        .unwrap();
        assert_eq!(s["type"], "state");
        assert_eq!(s["state"], "reconnecting");
        assert_eq!(s["previous"], "live");
        assert_eq!(s["ts"].as_str().unwrap().len(), 24);
    }

    #[test]
    fn reasons_name_the_cause() {
        use StreamState::*;
        assert_eq!(
            state_reason(Idle, Starting, None, false),
            "a viewer asked for the camera"
        );
        assert_eq!(
            state_reason(Starting, Live, None, false),
            "first video received"
        );
        assert_eq!(
            state_reason(Reconnecting, Live, None, true),
            "video is flowing again"
        );
        assert_eq!(
            state_reason(Live, Reconnecting, Some("stall"), true),
            "stall"
        );
    }
}
