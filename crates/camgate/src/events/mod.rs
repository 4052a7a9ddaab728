//! Events and observability: the in-process event bus (bus.rs), the WebSocket feeds
//! `WS /ws/events/{path}` and `WS /ws/dashboard` (ws.rs), the NATS publisher (nats.rs; frame
//! messages in frames.rs, fed by the snapshot output), and the
//! counters that exist nowhere else (counters.rs: HLS requests, WebSocket clients, NATS).
//!
//! The live path only publishes: a state change becomes one bus event; viewer count changes
//! are followed here, per stream, through the `hub::Output` interface. Everything that reads
//! events lives here and reads them from its own subscription, so a slow reader (a WebSocket
//! client, NATS) never slows a camera. It does not own the cameras, their streams or the
//! HTTP routers of other areas; it must not import `live`, outputs or `api`.

mod bus;
pub mod counters;
pub mod frames;
mod nats;
pub mod ws;

use std::sync::Arc;
use std::time::Duration;

pub use bus::{
    CAPACITY, CameraAction, CameraEvent, Event, EventBus, Received, RecordingEvent, StateEvent,
    StatusEvent, Subscription, ViewersEvent, WebrtcEvent, now, rfc3339, state_reason,
};
pub use counters::{HlsRequestKind, Metrics, NatsStatus};

use crate::cameras::StreamState;
use crate::config::NatsConfig;
use crate::hub::{LiveStream, Output, Registry};
use crate::tasks::Tasks;

/// A state change of one camera as a bus event.
pub fn state_event(
    camera_id: &str,
    stream_path: &str,
    previous: StreamState,
    state: StreamState,
    cause: Option<&str>,
    always_on: bool,
) -> Event {
    Event::State(StateEvent {
        camera_id: camera_id.to_owned(),
        stream_path: stream_path.to_owned(),
        ts: now(),
        state,
        previous,
        reason: state_reason(previous, state, cause, always_on),
        online: state == StreamState::Live,
    })
}

/// Publishes a `viewers` event whenever the number of players of a stream changes, for as
/// long as the stream exists: one task per stream following its demand channel, so joining
/// and leaving stay as cheap as they are; changes closer together than the task runs are
/// reported once, with the newest count.
pub struct ViewerEvents {
    bus: EventBus,
    tasks: Tasks,
}

impl ViewerEvents {
    pub fn new(bus: EventBus, tasks: Tasks) -> Arc<ViewerEvents> {
        Arc::new(ViewerEvents { bus, tasks })
    }
}

impl Output for ViewerEvents {
    fn attach(&self, stream: &LiveStream) {
        let mut demand = stream.watch_demand();
        let mut closed = stream.subscribe();
        let weak = stream.downgrade();
        let bus = self.bus.clone();
        let mut last = demand.borrow().viewers;
        self.tasks
            .spawn(format!("viewer events {}", stream.path()), async move {
                loop {
                    tokio::select! {
                        changed = demand.changed() => if changed.is_err() { return },
                        // The hub closed (stream removed): nothing more to report.
                        None = closed.recv() => return,
                    }
                    let counts = demand.borrow_and_update().viewers;
                    if counts == last {
                        continue; // a hold came or went: not a viewer
                    }
                    last = counts;
                    let Some(stream) = weak.upgrade() else { return };
                    bus.publish(Event::Viewers(ViewersEvent {
                        camera_id: stream.camera_id(),
                        stream_path: stream.path(),
                        ts: now(),
                        viewers: counts.total(),
                        by_protocol: counts,
                    }));
                }
            });
    }
}

/// Starts the periodic status and, when `[nats] url` is set, the NATS publisher, in `tasks`.
pub fn start(
    tasks: &Tasks,
    bus: &EventBus,
    registry: &Arc<Registry>,
    metrics: &Arc<Metrics>,
    status_interval: Duration,
    nats: &NatsConfig,
) {
    tasks.spawn(
        "periodic status",
        periodic_status(bus.clone(), registry.clone(), status_interval),
    );
    if nats.enabled() {
        tasks.spawn(
            "nats publisher",
            nats::run(nats.clone(), bus.clone(), registry.clone(), metrics.clone()),
        );
    }
}

/// Every stream's full status on the bus every `interval` (NATS's periodic status, and the
/// `status` events of the WebSocket feeds).
async fn periodic_status(bus: EventBus, registry: Arc<Registry>, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate; the state events cover the start
    loop {
        tick.tick().await;
        // Per camera: a profile stream shares its camera's id and would read as the camera.
        for s in registry.cameras() {
            bus.publish(Event::Status(StatusEvent::new(s.status())));
        }
    }
}
