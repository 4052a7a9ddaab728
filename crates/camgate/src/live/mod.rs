//! The live path's supervisors: one per camera stream, connecting its source when there is
//! demand (viewers or holds) or always (on_demand false, record true), feeding the stream's hub,
//! retrying failures with backoff, stopping an on-demand camera at the idle timeout
//! (supervisor.rs), and keeping one timeline per stream (timeline.rs).
//!
//! It owns the per-camera supervisor tasks and the camera specs they run with. The streams
//! themselves (hub, demand, state) are `hub::LiveStream`s in the `hub::Registry`, which is
//! what outputs see; this module inserts and removes them. It announces state changes on the
//! event bus. It must not import outputs, `http` or `api`; the store is the caller's business
//! (`registry` orchestrates store -> live -> event).

mod grids;
mod profiles;
mod supervisor;
mod timeline;

pub use grids::{GridDef, from_config as grids_from_config};
pub use profiles::{PROFILE_SEPARATOR, Profiles, profile_path};

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::Serialize;

use crate::cameras::{CameraSpec, InvalidInput, StreamState};
use crate::config::Config;
use crate::events::EventBus;
use crate::hub::{ByProtocol, HubLimits, LiveStream, Registry, StreamSpec};
use crate::ingest::{Source, SourceSpec};
use crate::tasks::{TaskHandle, Tasks};

/// The live path's settings (`[streams]` and `[hls]` of the config file), read from `Config`
/// so their defaults are declared once, there.
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
        LiveSettings::from_config(&Config::default())
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

/// One entry of `GET /streams`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StreamInfo {
    pub stream_path: String,
    /// `None` for a grid (several cameras, no camera of its own).
    pub camera_id: Option<String>,
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
struct CameraRuntime {
    spec: CameraSpec,
    stream: LiveStream,
    supervisor: Option<TaskHandle>,
    /// Its `{path}~{profile}` streams.
    profiles: Vec<profiles::ProfileRuntime>,
}

/// Every camera's supervisor. One per process.
pub struct Live {
    settings: RwLock<LiveSettings>,
    source: Arc<dyn Source>,
    registry: Arc<Registry>,
    cameras: Mutex<HashMap<String, CameraRuntime>>,
    hub_limits: HubLimits,
    events: EventBus,
    tasks: Tasks,
    /// Transcode profiles; none until `set_profiles` (tests of the camera path alone).
    profiles: RwLock<Option<Arc<Profiles>>>,
    /// `[grids.NAME]` streams; none until `set_grids`.
    grids: Mutex<Vec<grids::GridRuntime>>,
}

fn stream_spec(c: &CameraSpec) -> StreamSpec {
    StreamSpec {
        camera_id: c.camera_id.clone(),
        path: c.stream_path.clone(),
        record: c.record,
        always_on: c.always_on(),
        grid: false,
    }
}

impl Live {
    /// A live path with a registry, bus and task group of its own (tests, tools).
    pub fn new(settings: LiveSettings, source: Arc<dyn Source>) -> Arc<Live> {
        Live::with_parts(
            settings,
            source,
            Registry::new(),
            EventBus::default(),
            Tasks::new(),
        )
    }

    /// A live path publishing streams into `registry`, state changes onto `events`, and
    /// running its supervisors in `tasks` (the composition root's).
    pub fn with_parts(
        settings: LiveSettings,
        source: Arc<dyn Source>,
        registry: Arc<Registry>,
        events: EventBus,
        tasks: Tasks,
    ) -> Arc<Live> {
        Arc::new(Live {
            settings: RwLock::new(settings),
            source,
            registry,
            cameras: Mutex::new(HashMap::new()),
            hub_limits: HubLimits::default(),
            events,
            tasks,
            profiles: RwLock::new(None),
            grids: Mutex::new(Vec::new()),
        })
    }

    /// Gives every camera added from now on its profile streams (`~h264` and the config
    /// file's `[profiles.NAME]`).
    pub fn set_profiles(&self, profiles: Profiles) {
        *self.profiles.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(profiles));
    }

    /// Starts the config file's grids (after `set_profiles`, whose ffmpeg they use): each is
    /// the stream of its name, idle until watched (or recorded).
    pub fn set_grids(&self, defs: Vec<GridDef>) {
        let Some(transcoder) = self
            .profiles
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|p| p.transcoder.clone())
        else {
            return;
        };
        let settings = self.settings();
        let mut list = self.grids.lock().unwrap_or_else(|p| p.into_inner());
        for def in defs {
            let g = grids::start(
                def,
                transcoder.clone(),
                self.registry.clone(),
                &settings,
                &self.hub_limits,
                &self.events,
                &self.tasks,
            );
            self.registry.insert(g.stream.clone());
            list.push(g);
        }
    }

    /// Refuses a camera whose id or stream path is a grid's name: that name is the grid's
    /// stream (`grid_name_in_use`, 422).
    pub fn check_grid_names(&self, spec: &CameraSpec) -> Result<(), InvalidInput> {
        let list = self.grids.lock().unwrap_or_else(|p| p.into_inner());
        for g in list.iter() {
            let name = g.stream.path();
            if name == spec.stream_path || name == spec.camera_id {
                return Err(InvalidInput::new(
                    "grid_name_in_use",
                    format!(
                        "`{name}` is the name of a grid ([grids.{name}] in the config file); give the camera another camera_id or stream_path"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Refuses a camera whose `profiles` names one the config file does not have, naming it
    /// and the ones there are (`unknown_profile`, 422).
    pub fn check_profiles(&self, spec: &CameraSpec) -> Result<(), InvalidInput> {
        let Some(names) = &spec.profiles else {
            return Ok(());
        };
        let list = self
            .profiles
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let (unknown, known) = match &list {
            Some(l) => (l.unknown(names), l.names()),
            None => (names.first().map(String::as_str), Vec::new()),
        };
        match unknown {
            None => Ok(()),
            // The name was checked to be [A-Za-z0-9_-]{1,32}: safe to repeat.
            Some(name) => Err(InvalidInput::new(
                "unknown_profile",
                format!(
                    "profile `{name}` is not configured; the config file has: {} (add [profiles.{name}] to it first)",
                    known.join(", ")
                ),
            )),
        }
    }

    fn start_profiles(
        &self,
        spec: &CameraSpec,
        stream: &LiveStream,
    ) -> Vec<profiles::ProfileRuntime> {
        let Some(list) = self
            .profiles
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        else {
            return Vec::new();
        };
        let settings = self.settings();
        let parts = profiles::Parts {
            profiles: &list,
            settings: &settings,
            hub_limits: &self.hub_limits,
            events: &self.events,
            tasks: &self.tasks,
        };
        let started = profiles::start(&parts, spec, stream);
        for p in &started {
            self.registry.insert(p.stream.clone());
        }
        started
    }

    fn stop_profiles(&self, list: &mut Vec<profiles::ProfileRuntime>) {
        for p in list.drain(..) {
            p.supervisor.abort();
            let path = p.stream.path();
            if self.registry.get(&path).is_some_and(|s| s.same(&p.stream)) {
                self.registry.remove(&path);
            }
            p.stream.hub().close();
            p.stream.reset_state();
        }
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Where every stream's state changes are published.
    pub fn events(&self) -> &EventBus {
        &self.events
    }

    pub fn settings(&self) -> LiveSettings {
        self.settings
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, CameraRuntime>> {
        self.cameras.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a camera or applies new settings to it. A changed camera's supervisor restarts
    /// (its session is torn down and reopened); its stream (hub, viewers) stays, so players
    /// continue. An unchanged camera is left alone.
    pub fn upsert(&self, spec: CameraSpec) -> LiveStream {
        let settings = self.settings();
        let mut map = self.lock();
        if let Some(rt) = map.get_mut(&spec.camera_id) {
            if rt.spec == spec {
                return rt.stream.clone();
            }
            if let Some(t) = rt.supervisor.take() {
                // Aborting drops the open session, which tears it down at the camera.
                t.abort();
            }
            let old_path = rt.stream.path();
            rt.stream.set_spec(stream_spec(&spec));
            if old_path != spec.stream_path {
                self.registry.rename(&old_path, &rt.stream);
            }
            rt.stream.hub().clear_cache();
            rt.spec = spec;
            rt.supervisor = Some(self.spawn_supervisor(&rt.spec, &rt.stream, settings));
            // Profiles follow the camera's path and settings: made anew.
            let mut old = std::mem::take(&mut rt.profiles);
            let (spec, stream) = (rt.spec.clone(), rt.stream.clone());
            drop(map);
            self.stop_profiles(&mut old);
            let started = self.start_profiles(&spec, &stream);
            if let Some(rt) = self.lock().get_mut(&spec.camera_id) {
                rt.profiles = started;
            }
            return stream;
        }
        let stream = LiveStream::new(
            stream_spec(&spec),
            self.hub_limits.clone(),
            settings.max_viewers_per_stream,
        );
        let supervisor = self.spawn_supervisor(&spec, &stream, settings);
        let spec_copy = spec.clone();
        map.insert(
            spec.camera_id.clone(),
            CameraRuntime {
                spec,
                stream: stream.clone(),
                supervisor: Some(supervisor),
                profiles: Vec::new(),
            },
        );
        drop(map);
        self.registry.insert(stream.clone());
        let started = self.start_profiles(&spec_copy, &stream);
        if let Some(rt) = self.lock().get_mut(&stream.camera_id()) {
            rt.profiles = started;
        }
        stream
    }

    fn spawn_supervisor(
        &self,
        spec: &CameraSpec,
        stream: &LiveStream,
        settings: LiveSettings,
    ) -> TaskHandle {
        let source_spec = SourceSpec {
            camera_id: spec.camera_id.clone(),
            url: spec.rtsp_url.clone(),
            transport: spec.transport,
        };
        let run = supervisor::Supervisor {
            stream: stream.clone(),
            source: self.source.clone(),
            source_spec,
            always_on: spec.always_on(),
            idle_timeout: spec.idle_timeout.unwrap_or(settings.idle_timeout),
            settings,
            events: self.events.clone(),
        };
        self.tasks
            .spawn(format!("camera {}", spec.camera_id), run.run())
    }

    /// Stops everything for a camera: the session closes, consumers see the end of the hub.
    pub fn remove(&self, camera_id: &str) -> bool {
        let Some(mut rt) = self.lock().remove(camera_id) else {
            return false;
        };
        self.stop_profiles(&mut rt.profiles);
        if let Some(t) = &rt.supervisor {
            t.abort();
        }
        self.forget(&rt, "camera deleted");
        true
    }

    /// Ends a camera's session now (the stream manager API's stop) while it stays provisioned:
    /// its stream closes for every viewer, and the camera is added again as it was, so the
    /// next viewer starts a new session (an always-on camera reconnects at once). False if
    /// unknown.
    pub fn stop(&self, camera_id: &str) -> bool {
        let Some(mut rt) = self.lock().remove(camera_id) else {
            return false;
        };
        self.stop_profiles(&mut rt.profiles);
        if let Some(t) = &rt.supervisor {
            t.abort();
        }
        self.forget(&rt, "stopped through the API");
        self.upsert(rt.spec.clone());
        true
    }

    fn forget(&self, rt: &CameraRuntime, why: &str) {
        let path = rt.stream.path();
        if self.registry.get(&path).is_some_and(|s| s.same(&rt.stream)) {
            self.registry.remove(&path);
        }
        rt.stream.hub().close();
        let previous = rt.stream.reset_state();
        if previous != StreamState::Idle {
            supervisor::announce(
                &self.events,
                &rt.stream,
                previous,
                StreamState::Idle,
                Some(why),
            );
        }
    }

    /// The stream of a camera, by camera id.
    pub fn get(&self, camera_id: &str) -> Option<LiveStream> {
        self.lock().get(camera_id).map(|rt| rt.stream.clone())
    }

    /// A camera's spec as the live path runs it, by camera id.
    pub fn spec(&self, camera_id: &str) -> Option<CameraSpec> {
        self.lock().get(camera_id).map(|rt| rt.spec.clone())
    }

    /// By `stream_path`, or by `camera_id` (the API's alias).
    pub fn by_path(&self, path: &str) -> Option<LiveStream> {
        self.registry.get(path)
    }

    /// Every camera's stream, by camera id.
    pub fn list(&self) -> Vec<LiveStream> {
        let map = self.lock();
        let mut v: Vec<(String, LiveStream)> = map
            .iter()
            .map(|(id, rt)| (id.clone(), rt.stream.clone()))
            .collect();
        drop(map);
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v.into_iter().map(|(_, s)| s).collect()
    }

    /// `GET /streams`.
    pub fn stream_infos(&self) -> Vec<StreamInfo> {
        self.registry
            .list()
            .iter()
            .map(|stream| {
                let grid = stream.is_grid();
                let s = stream.status();
                StreamInfo {
                    stream_path: s.stream_path,
                    camera_id: (!grid).then_some(s.camera_id),
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
        self.registry.get(path).map(|s| {
            let by = s.viewer_counts();
            ViewersInfo {
                stream_path: s.path(),
                viewers: by.total(),
                by_protocol: by,
            }
        })
    }

    /// Streams whose frames are flowing.
    pub fn active_streams(&self) -> usize {
        self.registry.active_streams()
    }

    pub fn total_viewers(&self) -> u32 {
        self.registry.total_viewers()
    }

    /// Stops every camera: each supervisor ends (dropping its session), hubs close so
    /// consumers finish, and then waits up to `teardown` for the cameras to confirm TEARDOWN.
    pub async fn shutdown(&self, teardown: Duration) {
        let grids: Vec<grids::GridRuntime> = self
            .grids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
            .collect();
        for g in &grids {
            g.supervisor.abort();
        }
        for g in &grids {
            g.supervisor.ended().await;
            let path = g.stream.path();
            if self.registry.get(&path).is_some_and(|s| s.same(&g.stream)) {
                self.registry.remove(&path);
            }
            g.stream.hub().close();
            g.stream.reset_state();
        }
        let mut all: Vec<CameraRuntime> = self.lock().drain().map(|(_, rt)| rt).collect();
        for rt in &mut all {
            let mut list = std::mem::take(&mut rt.profiles);
            self.stop_profiles(&mut list);
        }
        for rt in &all {
            if let Some(t) = &rt.supervisor {
                t.abort();
            }
        }
        for rt in &all {
            if let Some(t) = &rt.supervisor {
                t.ended().await;
            }
            self.forget(rt, "camera deleted");
        }
        self.source.wait_teardowns(teardown).await;
    }
}

#[cfg(test)]
mod tests;
