//! `WS /ws/events/{path}` (one camera's events) and `WS /ws/dashboard` (stats every
//! `dashboard_interval` plus every camera's state changes). See docs/events.md.
//!
//! Each socket reads its own bus subscription. A client that reads too slowly loses the
//! oldest events and gets a `lagged` message saying how many; it never slows the cameras or
//! the other clients. A client that stops answering WebSocket pings for two ping intervals,
//! or whose socket accepts nothing for that long, is closed.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{
    CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade,
    rejection::WebSocketUpgradeRejection,
};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};
use tokio::time::Instant;

use std::sync::Arc;

use futures::future::BoxFuture;

use super::counters::{Metrics, WsEndpoint};
use super::{CameraAction, Event, EventBus, Received, StatusEvent, now};
use crate::config::EventsConfig;
use crate::http::extract::StreamPathParam;
use crate::http::{AppError, RouteDoc, Routes};
use crate::hub::Registry;

/// What the dashboard's `stats` message holds, read when it is sent (built by the composition
/// root from the store and the registry; the API's `GET /stats` reads the same).
pub type StatsSource =
    Arc<dyn Fn() -> BoxFuture<'static, Result<serde_json::Value, String>> + Send + Sync>;

/// The event feeds' state.
#[derive(Clone)]
pub struct EventsState {
    pub config: EventsConfig,
    pub bus: EventBus,
    pub registry: Arc<Registry>,
    pub metrics: Arc<Metrics>,
    pub stats: StatsSource,
}

/// Close codes (4000-4999 is the range RFC 6455 leaves to applications).
pub const CLOSE_UNKNOWN_STREAM: u16 = 4404;
pub const CLOSE_CAMERA_DELETED: u16 = 4410;
/// 1001 "going away" for a client that no longer answers pings.
const CLOSE_UNRESPONSIVE: u16 = 1001;

/// Client messages are single words; anything larger is not one of ours.
const MAX_CLIENT_MESSAGE: usize = 4096;

pub fn router(state: EventsState) -> (Router, Vec<RouteDoc>) {
    Routes::new()
        .websocket(
            "/ws/events/{path}",
            "One camera's state, viewers, status and camera events",
            events,
        )
        .websocket(
            "/ws/dashboard",
            "Statistics every dashboard_interval and every camera's state",
            dashboard,
        )
        .with_state(state)
}

fn upgrade(
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<WebSocketUpgrade, AppError> {
    ws.map(|ws| ws.max_message_size(MAX_CLIENT_MESSAGE))
        .map_err(|_| {
            AppError::new(
                StatusCode::UPGRADE_REQUIRED,
                "websocket_required",
                "this endpoint speaks WebSocket; connect with a WebSocket client (ws://...)",
            )
        })
}

async fn events(
    State(state): State<EventsState>,
    StreamPathParam(path): StreamPathParam,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, AppError> {
    Ok(upgrade(ws)?.on_upgrade(move |socket| stream_feed(socket, state, path)))
}

async fn dashboard(
    State(state): State<EventsState>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, AppError> {
    Ok(upgrade(ws)?.on_upgrade(move |socket| dashboard_feed(socket, state)))
}

/// A socket with the bookkeeping every feed needs: bounded sends and liveness.
struct Feed {
    socket: WebSocket,
    state: EventsState,
    ping_interval: Duration,
    last_heard: Instant,
}

/// Why a feed ends.
struct Closed;

impl Feed {
    fn new(socket: WebSocket, state: EventsState) -> Feed {
        Feed {
            socket,
            ping_interval: state.config.ws_ping_interval,
            state,
            last_heard: Instant::now(),
        }
    }

    /// Sends one message; a client that accepts nothing for two ping intervals is dead.
    async fn send(&mut self, msg: Message) -> Result<(), Closed> {
        match tokio::time::timeout(2 * self.ping_interval, self.socket.send(msg)).await {
            Ok(Ok(())) => {
                self.state.metrics.ws_message_sent();
                Ok(())
            }
            _ => Err(Closed),
        }
    }

    async fn send_json(&mut self, v: &impl serde::Serialize) -> Result<(), Closed> {
        // Our own event types always serialize.
        let text = serde_json::to_string(v).map_err(|_| Closed)?;
        self.send(Message::Text(text.into())).await
    }

    async fn close(mut self, code: u16, reason: &str) {
        let mut reason = reason.to_owned();
        // A close frame's reason is at most 123 bytes.
        while reason.len() > 123 {
            reason.pop();
        }
        let _ = self
            .send(Message::Close(Some(CloseFrame {
                code,
                reason: Utf8Bytes::from(reason),
            })))
            .await;
    }

    /// The ping tick: closes (Err) a client silent for two intervals, else pings it.
    async fn keepalive(&mut self) -> Result<(), Closed> {
        if self.last_heard.elapsed() > 2 * self.ping_interval {
            return Err(Closed);
        }
        self.send(Message::Ping(bytes::Bytes::from_static(b"camgate")))
            .await
    }

    /// Interprets what the client sent. `Ok(Some(cmd))` for a command, `Ok(None)` for
    /// control frames, `Err` when the client is gone.
    fn heard(
        &mut self,
        msg: Option<Result<Message, axum::Error>>,
    ) -> Result<Option<String>, Closed> {
        match msg {
            None | Some(Err(_)) | Some(Ok(Message::Close(_))) => Err(Closed),
            Some(Ok(Message::Text(t))) => {
                self.last_heard = Instant::now();
                Ok(Some(command(&t)))
            }
            Some(Ok(_)) => {
                // Pongs, pings (answered by the library), binary: all prove the client lives.
                self.last_heard = Instant::now();
                Ok(None)
            }
        }
    }
}

/// `status`, `ping`, or the same as JSON `{"type":"status"}`; anything else comes back as is
/// (and is answered with an error message).
fn command(text: &str) -> String {
    let t = text.trim();
    if t.starts_with('{')
        && let Ok(v) = serde_json::from_str::<Value>(t)
        && let Some(kind) = v.get("type").and_then(Value::as_str)
    {
        return kind.to_owned();
    }
    t.to_owned()
}

fn unknown_command(cmd: &str, allowed: &str) -> Value {
    let shown: String = cmd.chars().take(40).collect();
    json!({
        "type": "error",
        "ts": now(),
        "message": format!("unknown message {shown:?}; send {allowed}"),
    })
}

fn pong(stream_path: Option<&str>) -> Value {
    let mut v = json!({"type": "pong", "ts": now()});
    if let Some(p) = stream_path {
        v["stream_path"] = json!(p);
    }
    v
}

fn lagged(missed: u64, stream_path: Option<&str>) -> Value {
    let mut v = json!({"type": "lagged", "missed": missed, "ts": now()});
    if let Some(p) = stream_path {
        v["stream_path"] = json!(p);
    }
    v
}

async fn stream_feed(socket: WebSocket, state: EventsState, path: String) {
    let _counted = state.metrics.ws_client(WsEndpoint::Events);
    let mut feed = Feed::new(socket, state.clone());
    let Some(camera_id) = state.registry.get(&path).map(|rt| rt.camera_id()) else {
        feed.close(
            CLOSE_UNKNOWN_STREAM,
            &format!("unknown stream {path}; see GET /streams"),
        )
        .await;
        return;
    };
    // Subscribed before anything else, so no event after the lookup is missed.
    let mut sub = state.bus.subscribe();
    let mut ping = tokio::time::interval(feed.ping_interval);
    ping.tick().await;
    loop {
        let outcome: Result<(), Closed> = tokio::select! {
            msg = feed.socket.recv() => match feed.heard(msg) {
                Err(c) => Err(c),
                Ok(None) => Ok(()),
                Ok(Some(cmd)) => match cmd.as_str() {
                    "ping" => feed.send_json(&pong(Some(&path))).await,
                    "status" => match state.registry.by_camera(&camera_id) {
                        Some(rt) => feed.send_json(&Event::Status(StatusEvent::new(rt.status()))).await,
                        None => {
                            feed.close(CLOSE_CAMERA_DELETED, "camera deleted").await;
                            return;
                        }
                    },
                    other => feed.send_json(&unknown_command(other, "\"status\" or \"ping\"")).await,
                },
            },
            got = sub.recv() => match got {
                None => Err(Closed),
                Some(Received::Lagged(n)) => {
                    // Whatever was missed, the current status puts the client right again.
                    let status = state.registry.by_camera(&camera_id).map(|rt| Event::Status(StatusEvent::new(rt.status())));
                    match feed.send_json(&lagged(n, Some(&path))).await {
                        Ok(()) => match status {
                            Some(s) => feed.send_json(&s).await,
                            None => Ok(()),
                        },
                        Err(c) => Err(c),
                    }
                }
                Some(Received::Event(e)) if e.camera_id() == camera_id => {
                    let sent = feed.send_json(&*e).await;
                    if matches!(&*e, Event::Camera(c) if c.action == CameraAction::Deleted) {
                        feed.close(CLOSE_CAMERA_DELETED, "camera deleted").await;
                        return;
                    }
                    sent
                }
                Some(Received::Event(_)) => Ok(()),
            },
            _ = ping.tick() => feed.keepalive().await,
        };
        if outcome.is_err() {
            if feed.last_heard.elapsed() > 2 * feed.ping_interval {
                feed.close(CLOSE_UNRESPONSIVE, "no answer to pings").await;
            }
            return;
        }
    }
}

async fn dashboard_feed(socket: WebSocket, state: EventsState) {
    let _counted = state.metrics.ws_client(WsEndpoint::Dashboard);
    let mut feed = Feed::new(socket, state.clone());
    let mut sub = state.bus.subscribe();
    let mut stats = tokio::time::interval(state.config.dashboard_interval);
    stats.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ping = tokio::time::interval(feed.ping_interval);
    ping.tick().await;
    loop {
        let outcome: Result<(), Closed> = tokio::select! {
            msg = feed.socket.recv() => match feed.heard(msg) {
                Err(c) => Err(c),
                Ok(None) => Ok(()),
                Ok(Some(cmd)) => match cmd.as_str() {
                    "ping" => feed.send_json(&pong(None)).await,
                    "stats" | "status" => send_stats(&mut feed).await,
                    other => feed.send_json(&unknown_command(other, "\"stats\" or \"ping\"")).await,
                },
            },
            _ = stats.tick() => send_stats(&mut feed).await,
            got = sub.recv() => match got {
                None => Err(Closed),
                Some(Received::Lagged(n)) => feed.send_json(&lagged(n, None)).await,
                Some(Received::Event(e)) => match &*e {
                    Event::State(_) | Event::Camera(_) => feed.send_json(&*e).await,
                    Event::Viewers(_) | Event::Status(_) | Event::Recording(_) | Event::Webrtc(_) => Ok(()),
                },
            },
            _ = ping.tick() => feed.keepalive().await,
        };
        if outcome.is_err() {
            if feed.last_heard.elapsed() > 2 * feed.ping_interval {
                feed.close(CLOSE_UNRESPONSIVE, "no answer to pings").await;
            }
            return;
        }
    }
}

async fn send_stats(feed: &mut Feed) -> Result<(), Closed> {
    match (feed.state.stats)().await {
        Ok(stats) => {
            feed.send_json(&json!({"type": "stats", "ts": now(), "data": stats}))
                .await
        }
        Err(e) => {
            tracing::warn!(error = %e, "dashboard: statistics cannot be read");
            Ok(())
        }
    }
}
