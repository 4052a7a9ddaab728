//! The per-camera live runtime registry: which cameras exist on the live path, their
//! lifecycle (on demand or always on, reconnect, stall, idle), their viewers and their status.
//!
//! It owns one `CameraRuntime` per camera: the camera's hub, its viewer counts and a
//! supervisor task (runtime.rs) that connects the source when there is demand and keeps it
//! connected. It does not own the camera records (the database and API do; they call
//! `upsert`/`remove`) nor the output protocols (hls/, mse/ consume hubs and join viewers).

mod runtime;
mod viewers;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::sync::watch;

use crate::cameras::{Camera, Transport};
pub use crate::cameras::{CameraStatus, StreamState};
use crate::config::Config;
use crate::events::EventBus;
use crate::hub::{Hub, HubLimits};
use crate::ingest::Source;

pub use viewers::{ByProtocol, Demand, Protocol, TooManyViewers, ViewerGuard, Viewers};

/// The live path's settings (`[streams]` and `[hls]` of the config file).
#[derive(Clone, Debug, PartialEq)]
pub struct LiveSettings {
    pub idle_timeout: Duration,
    pub start_timeout: Duration,
    pub stall_timeout: Duration,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    pub max_viewers_per_stream: u32,
    pub mse_max_lag: Duration,
    pub segment_duration: Duration,
    pub part_duration: Duration,
    pub list_size: usize,
}

impl Default for LiveSettings {
    fn default() -> Self {
        LiveSettings {
            idle_timeout: Duration::from_secs(30),
            start_timeout: Duration::from_secs(10),
            stall_timeout: Duration::from_secs(5),
            reconnect_min: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(30),
            max_viewers_per_stream: 100,
            mse_max_lag: Duration::from_secs(1),
            segment_duration: Duration::from_secs(1),
            part_duration: Duration::from_millis(200),
            list_size: 7,
        }
    }
}

impl LiveSettings {
    pub fn from_config(c: &Config) -> LiveSettings {
        LiveSettings {
            idle_timeout: c.streams.idle_timeout,
            start_timeout: c.streams.start_timeout,
            stall_timeout: c.streams.stall_timeout,
            reconnect_min: c.streams.reconnect_min,
            reconnect_max: c.streams.reconnect_max,
            max_viewers_per_stream: c.streams.max_viewers_per_stream,
            mse_max_lag: c.streams.mse_max_lag,
            segment_duration: c.hls.segment_duration,
            part_duration: c.hls.part_duration,
            list_size: c.hls.list_size as usize,
        }
    }
}

/// What the live path needs of a camera record.
#[derive(Clone, PartialEq)]
pub struct LiveCamera {
    pub camera_id: String,
    pub stream_path: String,
    /// With credentials; never printed as-is.
    pub rtsp_url: String,
    pub on_demand: bool,
    pub record: bool,
    pub transport: Transport,
    /// Per-camera override of `LiveSettings::idle_timeout`.
    pub idle_timeout: Option<Duration>,
}

impl std::fmt::Debug for LiveCamera {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveCamera")
            .field("camera_id", &self.camera_id)
            .field("stream_path", &self.stream_path)
            .field("rtsp_url", &crate::redact::redact_url(&self.rtsp_url))
            .field("on_demand", &self.on_demand)
            .field("record", &self.record)
            .field("transport", &self.transport)
            .field("idle_timeout", &self.idle_timeout)
            .finish()
    }
}

impl From<&Camera> for LiveCamera {
    fn from(c: &Camera) -> LiveCamera {
        LiveCamera {
            camera_id: c.camera_id.clone(),
            stream_path: c.stream_path.clone(),
            rtsp_url: c.rtsp_url.clone(),
            on_demand: c.on_demand,
            record: c.record,
            transport: c.transport,
            idle_timeout: c.idle_timeout,
        }
    }
}

impl LiveCamera {
    /// Connected regardless of viewers.
    pub fn always_on(&self) -> bool {
        !self.on_demand || self.record
    }
}

/// The API's `state` value of a camera.
pub fn state_name(s: StreamState) -> &'static str {
    match s {
        StreamState::Idle => "idle",
        StreamState::Starting => "starting",
        StreamState::Live => "live",
        StreamState::Reconnecting => "reconnecting",
        StreamState::Unauthorized => "unauthorized",
        StreamState::Unreachable => "unreachable",
        StreamState::Error => "error",
    }
}

/// State plus the last failure, as the supervisor publishes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuntimeState {
    pub state: StreamState,
    /// Human, names the camera and the stage, never a password. Kept after recovery so an
    /// operator can see what happened last.
    pub last_error: Option<String>,
}

/// One entry of `GET /streams`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StreamInfo {
    pub stream_path: String,
    pub camera_id: String,
    pub state: StreamState,
    pub viewers: u64,
    pub codec: Option<String>,
    pub resolution: Option<String>,
    pub bitrate_kbps: u64,
}

/// `GET /streams/{path}/viewers`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ViewersInfo {
    pub stream_path: String,
    pub viewers: u32,
    pub by_protocol: ByProtocol,
}

/// One camera on the live path.
pub struct CameraRuntime {
    spec: RwLock<LiveCamera>,
    hub: Hub,
    viewers: Arc<Viewers>,
    state: watch::Sender<RuntimeState>,
    supervisor: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// State changes go here (events/: WebSockets, NATS).
    events: EventBus,
    /// Source failures, each followed by a reconnect attempt (`/metrics`).
    reconnects: AtomicU64,
}

impl CameraRuntime {
    pub fn spec(&self) -> LiveCamera {
        self.spec.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    // These two are called per camera by every listing (metrics, `/streams`, the HLS
    // follower every 250 ms): read the one field rather than clone the whole spec.
    pub fn camera_id(&self) -> String {
        self.spec
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .camera_id
            .clone()
    }

    pub fn stream_path(&self) -> String {
        self.spec
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .stream_path
            .clone()
    }

    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    pub fn viewers(&self) -> &Arc<Viewers> {
        &self.viewers
    }

    pub fn state(&self) -> RuntimeState {
        self.state.borrow().clone()
    }

    /// Source failures so far, each followed by a reconnect attempt.
    pub fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
    }

    /// Tells the event bus about a state change; `cause` is the failure or other reason.
    fn announce_state(&self, previous: StreamState, state: StreamState, cause: Option<&str>) {
        let spec = self.spec();
        self.events.publish(crate::events::state_event(
            &spec.camera_id,
            &spec.stream_path,
            previous,
            state,
            cause,
            spec.always_on(),
        ));
    }

    /// Follows state changes (for waiting on `live`, events, consumers that stop on idle).
    pub fn watch_state(&self) -> watch::Receiver<RuntimeState> {
        self.state.subscribe()
    }

    pub fn status(&self) -> CameraStatus {
        let spec = self.spec();
        let st = self.state();
        let hs = self.hub.stats();
        let live = st.state == StreamState::Live;
        CameraStatus {
            camera_id: spec.camera_id,
            stream_path: spec.stream_path,
            state: st.state,
            online: live,
            fps: if live { hs.fps } else { 0.0 },
            bitrate_kbps: if live { hs.bitrate_kbps as u64 } else { 0 },
            dropped_frames: hs.dropped_frames,
            uptime_seconds: if live { hs.uptime_seconds } else { 0 },
            viewers: u64::from(self.viewers.counts().total()),
            codec: hs.codec().map(str::to_owned),
            resolution: hs.resolution(),
            last_error: st.last_error,
            last_frame_at: hs.last_frame_at.map(rfc3339),
        }
    }

    fn stop(&self) {
        if let Some(t) = self
            .supervisor
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            // Aborting drops the open session, which tears it down at the camera.
            t.abort();
        }
    }
}

fn rfc3339(t: SystemTime) -> String {
    let odt = time::OffsetDateTime::from(t);
    odt.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// All cameras on the live path. One per process, shared by the API and the output modules.
pub struct Streams {
    settings: RwLock<LiveSettings>,
    source: Arc<dyn Source>,
    cameras: RwLock<HashMap<String, Arc<CameraRuntime>>>,
    hub_limits: HubLimits,
    bytes_sent: AtomicU64,
    events: EventBus,
}

impl Streams {
    pub fn new(settings: LiveSettings, source: Arc<dyn Source>) -> Arc<Streams> {
        Arc::new(Streams {
            settings: RwLock::new(settings),
            source,
            cameras: RwLock::new(HashMap::new()),
            hub_limits: HubLimits::default(),
            bytes_sent: AtomicU64::new(0),
            events: EventBus::default(),
        })
    }

    /// Where every camera's state and viewer changes are published.
    pub fn events(&self) -> &EventBus {
        &self.events
    }

    pub fn settings(&self) -> LiveSettings {
        self.settings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Adds a camera or applies new settings to it. A changed camera's runtime restarts (its
    /// session is torn down and reopened); its hub and viewers stay, so players continue.
    /// An unchanged camera is left alone.
    pub fn upsert(&self, spec: LiveCamera) -> Arc<CameraRuntime> {
        let settings = self.settings();
        let mut map = self.cameras.write().unwrap_or_else(|p| p.into_inner());
        if let Some(rt) = map.get(&spec.camera_id) {
            if rt.spec() == spec {
                return rt.clone();
            }
            rt.stop();
            *rt.spec.write().unwrap_or_else(|p| p.into_inner()) = spec.clone();
            rt.hub.clear_cache();
            runtime::spawn(rt, self.source.clone(), settings);
            return rt.clone();
        }
        let rt = Arc::new(CameraRuntime {
            spec: RwLock::new(spec.clone()),
            hub: Hub::new(self.hub_limits.clone()),
            viewers: Viewers::new(settings.max_viewers_per_stream),
            state: watch::Sender::new(RuntimeState {
                state: StreamState::Idle,
                last_error: None,
            }),
            supervisor: std::sync::Mutex::new(None),
            events: self.events.clone(),
            reconnects: AtomicU64::new(0),
        });
        crate::events::follow_viewers(&rt, self.events.clone());
        runtime::spawn(&rt, self.source.clone(), settings);
        map.insert(spec.camera_id.clone(), rt.clone());
        rt
    }

    /// Stops everything for a camera: the session closes, consumers see the end of the hub.
    pub fn remove(&self, camera_id: &str) -> bool {
        let rt = self
            .cameras
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(camera_id);
        match rt {
            Some(rt) => {
                rt.stop();
                rt.hub.close();
                let previous = rt.state.send_replace(RuntimeState {
                    state: StreamState::Idle,
                    last_error: None,
                });
                if previous.state != StreamState::Idle {
                    rt.announce_state(previous.state, StreamState::Idle, Some("camera deleted"));
                }
                true
            }
            None => false,
        }
    }

    pub fn get(&self, camera_id: &str) -> Option<Arc<CameraRuntime>> {
        self.cameras
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(camera_id)
            .cloned()
    }

    /// By `stream_path`, or by `camera_id` (the API's alias).
    pub fn by_path(&self, path: &str) -> Option<Arc<CameraRuntime>> {
        let map = self.cameras.read().unwrap_or_else(|p| p.into_inner());
        map.values()
            // Compared in place: this runs for every HLS request, over every camera.
            .find(|rt| {
                rt.spec
                    .read()
                    .unwrap_or_else(|p| p.into_inner())
                    .stream_path
                    == path
            })
            .or_else(|| map.get(path))
            .cloned()
    }

    pub fn list(&self) -> Vec<Arc<CameraRuntime>> {
        let mut v: Vec<_> = self
            .cameras
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        v.sort_by_cached_key(|rt| rt.camera_id());
        v
    }

    /// `GET /streams`.
    pub fn stream_infos(&self) -> Vec<StreamInfo> {
        self.list()
            .iter()
            .map(|rt| {
                let s = rt.status();
                StreamInfo {
                    stream_path: s.stream_path,
                    camera_id: s.camera_id,
                    state: s.state,
                    viewers: s.viewers,
                    codec: s.codec,
                    resolution: s.resolution,
                    bitrate_kbps: s.bitrate_kbps,
                }
            })
            .collect()
    }

    /// `GET /streams/{path}/viewers`.
    pub fn viewers_info(&self, path: &str) -> Option<ViewersInfo> {
        self.by_path(path).map(|rt| {
            let by = rt.viewers.counts();
            ViewersInfo {
                stream_path: rt.stream_path(),
                viewers: by.total(),
                by_protocol: by,
            }
        })
    }

    /// Cameras whose frames are flowing (`/health` and `/stats` `active_streams`).
    pub fn active_streams(&self) -> usize {
        self.list()
            .iter()
            .filter(|rt| rt.state().state == StreamState::Live)
            .count()
    }

    pub fn total_viewers(&self) -> u32 {
        self.list()
            .iter()
            .map(|rt| rt.viewers.counts().total())
            .sum()
    }

    pub fn total_bytes_received(&self) -> u64 {
        self.list()
            .iter()
            .map(|rt| rt.hub.stats().bytes_received)
            .sum()
    }

    /// Counts bytes sent to viewers (any protocol), for `/stats`.
    pub fn add_bytes_sent(&self, n: u64) {
        self.bytes_sent.fetch_add(n, Ordering::Relaxed);
    }

    pub fn total_bytes_sent(&self) -> u64 {
        self.bytes_sent.load(Ordering::Relaxed)
    }

    /// Stops every camera (shutdown).
    pub fn shutdown(&self) {
        let ids: Vec<String> = self.list().iter().map(|rt| rt.camera_id()).collect();
        for id in ids {
            self.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests;
