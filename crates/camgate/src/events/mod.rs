//! Events and observability: the in-process event bus (bus.rs), the WebSocket feeds
//! `WS /ws/events/{path}` and `WS /ws/dashboard` (ws.rs), the NATS publisher (nats.rs), and the
//! counters and process figures behind `/metrics` (metrics.rs, process.rs).
//!
//! The live path (streams/) only publishes: a state change and a viewer count change each
//! become one bus event. Everything that reads events lives here and reads them from its own
//! subscription, so a slow reader (a WebSocket client, NATS) never slows a camera.
//! It does not own the cameras, their runtimes or the HTTP routers of other areas.

mod bus;
pub mod metrics;
mod nats;
pub mod process;
pub mod ws;

use std::sync::{Arc, Weak};
use std::time::Duration;

pub use bus::{
    CAPACITY, CameraAction, CameraEvent, Event, EventBus, Received, StateEvent, StatusEvent,
    Subscription, ViewersEvent, now, rfc3339, state_reason,
};
pub use metrics::{HlsRequestKind, Metrics, NatsStatus};

use crate::api::AppState;
use crate::cameras::StreamState;
use crate::streams::CameraRuntime;

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

/// Publishes a `viewers` event whenever the number of players of `rt` changes, for as long
/// as the runtime exists. A task that follows the viewer registry's watch channel, so joining
/// and leaving stay as cheap as they are; changes closer together than the task runs are
/// reported once, with the newest count.
pub fn follow_viewers(rt: &Arc<CameraRuntime>, bus: EventBus) {
    let mut demand = rt.viewers().subscribe();
    let weak: Weak<CameraRuntime> = Arc::downgrade(rt);
    let mut last = demand.borrow().viewers;
    tokio::spawn(async move {
        while demand.changed().await.is_ok() {
            let counts = demand.borrow_and_update().viewers;
            if counts == last {
                continue; // a hold came or went: not a viewer
            }
            last = counts;
            let Some(rt) = weak.upgrade() else { return };
            bus.publish(Event::Viewers(ViewersEvent {
                camera_id: rt.camera_id(),
                stream_path: rt.stream_path(),
                ts: now(),
                viewers: counts.total(),
                by_protocol: counts,
            }));
        }
    });
}

/// The background tasks of this module; dropping it stops them.
pub struct EventTasks {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for EventTasks {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Starts the periodic status and, when `[nats] url` is set, the NATS publisher.
pub fn start(state: &AppState) -> EventTasks {
    let mut tasks = vec![tokio::spawn(periodic_status(
        state.clone(),
        state.config.events.status_interval,
    ))];
    if state.config.nats.enabled() {
        tasks.push(tokio::spawn(nats::run(
            state.config.nats.clone(),
            state.streams.clone(),
            state.metrics.clone(),
        )));
    }
    EventTasks { tasks }
}

/// Every camera's full status on the bus every `interval` (NATS's periodic status, and the
/// `status` events of the WebSocket feeds).
async fn periodic_status(state: AppState, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate; the state events cover the start
    loop {
        tick.tick().await;
        for rt in state.streams.list() {
            state
                .streams
                .events()
                .publish(Event::Status(StatusEvent::new(rt.status())));
        }
    }
}
