//! Grids: `[grids.NAME]`, several cameras in one picture, served as the stream `NAME` (a
//! stream in the registry like a camera's, flagged `grid`, so it plays, records and snapshots
//! like one but is no camera). Its source is ffmpeg (`xstack`, ingest/ffmpeg/grid.rs) fed one
//! pipe per camera from that camera's hub, supervised exactly like a camera (on demand, idle
//! stop, stall, backoff, state, last error).
//!
//! A grid session holds every camera it shows (so on-demand cameras connect and stay
//! connected while the grid is watched). A camera that is down (not live, or no frame for the
//! stall timeout, or not provisioned) is a grey placeholder tile. Because `xstack` waits for a
//! frame from every input, a silent camera pipe would freeze the whole picture: so when a
//! camera goes down or comes back, the session restarts ffmpeg with the new set of inputs,
//! inside the same frame stream (the stream's timeline keeps timestamps increasing), and the
//! grid keeps playing with a short pause instead of stopping.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::{StreamExt, stream};
use media::Frame;
use media::mpegts::TsMuxer;
use tokio::io::AsyncWriteExt;

use super::LiveSettings;
use super::supervisor::Supervisor;
use crate::cameras::StreamState;
use crate::config::GridsConfig;
use crate::events::EventBus;
use crate::hub::{HubLimits, LiveStream, Registry, StreamSpec, ViewerGuard};
use crate::ingest::ffmpeg::grid::{GridOutput, TileInput, grid_args};
use crate::ingest::ffmpeg::{Encoder, Transcoder, output, spawn, spawn_error};
use crate::ingest::{
    FailureKind, FrameStream, IngestError, SecretUrl, Source, SourceSpec, Stage, Transport,
};
use crate::tasks::{TaskHandle, Tasks};

/// How often a session looks at its cameras.
const CHECK_EVERY: Duration = Duration::from_millis(500);
/// Fewest seconds between two restarts of one session's ffmpeg (a flapping camera).
const MIN_RESTART_GAP: Duration = Duration::from_secs(2);

/// One grid from the config file.
#[derive(Clone, Debug)]
pub struct GridDef {
    pub name: String,
    pub cameras: Vec<String>,
    pub output: GridOutput,
    pub record: bool,
}

/// The config file's grids.
pub fn from_config(config: &GridsConfig) -> Vec<GridDef> {
    config
        .0
        .iter()
        .map(|(name, g)| {
            let (width, height) = g.dimensions().unwrap_or((1280, 720));
            GridDef {
                name: name.clone(),
                cameras: g.cameras.clone(),
                output: GridOutput {
                    width,
                    height,
                    fps: g.fps,
                    bitrate_kbps: g.bitrate.0,
                    encoder: g.encoder.ffmpeg_name().and_then(Encoder::from_name),
                },
                record: g.record,
            }
        })
        .collect()
}

/// A running grid.
pub(super) struct GridRuntime {
    pub stream: LiveStream,
    pub supervisor: TaskHandle,
}

/// Makes the grid's stream and starts its supervisor.
pub(super) fn start(
    def: GridDef,
    transcoder: Arc<Transcoder>,
    registry: Arc<Registry>,
    settings: &LiveSettings,
    hub_limits: &HubLimits,
    events: &EventBus,
    tasks: &Tasks,
) -> GridRuntime {
    let stream = LiveStream::new(
        StreamSpec {
            camera_id: def.name.clone(),
            path: def.name.clone(),
            record: def.record,
            always_on: def.record,
            grid: true,
        },
        hub_limits.clone(),
        settings.max_viewers_per_stream,
    );
    let name = format!("grid {}", def.name);
    let source = GridSource {
        transcoder,
        registry,
        // The cameras may need their whole start (connect, first keyframe) first.
        settle: settings
            .start_timeout
            .clamp(Duration::from_secs(1), Duration::from_secs(5)),
        down_after: settings.stall_timeout.max(Duration::from_secs(1)),
        def: Arc::new(def.clone()),
    };
    let run = Supervisor {
        stream: stream.clone(),
        source: Arc::new(source),
        source_spec: SourceSpec {
            camera_id: def.name.clone(),
            url: SecretUrl::new(String::new()),
            transport: Transport::Auto,
        },
        always_on: def.record,
        idle_timeout: settings.idle_timeout,
        settings: settings.clone(),
        events: events.clone(),
    };
    GridRuntime {
        supervisor: tasks.spawn(name, run.run()),
        stream,
    }
}

struct GridSource {
    transcoder: Arc<Transcoder>,
    registry: Arc<Registry>,
    def: Arc<GridDef>,
    /// How long a session waits at its start for the cameras to send.
    settle: Duration,
    /// A camera without a frame for this long is shown as a placeholder.
    down_after: Duration,
}

impl Source for GridSource {
    fn open(
        &self,
        _spec: &SourceSpec,
    ) -> futures::future::BoxFuture<'static, Result<FrameStream, IngestError>> {
        let transcoder = self.transcoder.clone();
        let def = self.def.clone();
        let mut tiles = Tiles {
            registry: self.registry.clone(),
            tiles: def
                .cameras
                .iter()
                .map(|c| Tile {
                    camera: c.clone(),
                    held: None,
                })
                .collect(),
            down_after: self.down_after,
        };
        let settle = self.settle;
        Box::pin(async move {
            let encoder = transcoder.encoder(def.output.encoder).await.map_err(|m| {
                IngestError::new(
                    FailureKind::Error,
                    Stage::Setup,
                    &def.name,
                    format!("grid {}: {m}", def.name),
                )
            })?;
            // Holding the cameras starts the on-demand ones; give them a moment to send.
            tiles.refresh();
            let deadline = Instant::now() + settle;
            while Instant::now() < deadline && tiles.up().contains(&false) {
                tokio::time::sleep(Duration::from_millis(200)).await;
                tiles.refresh();
            }
            let layout = tiles.up();
            let session = Session::start(&transcoder, &def, encoder, &tiles, &layout)?;
            let mut tick = tokio::time::interval(CHECK_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let run = GridRun {
                transcoder,
                def,
                encoder,
                tiles,
                layout,
                session,
                started: Instant::now(),
                tick,
                done: false,
            };
            Ok(stream::unfold(run, GridRun::step).boxed())
        })
    }
}

/// One camera's place in the grid.
struct Tile {
    camera: String,
    /// The camera's stream, held while the session lasts.
    held: Option<(LiveStream, ViewerGuard)>,
}

struct Tiles {
    registry: Arc<Registry>,
    tiles: Vec<Tile>,
    down_after: Duration,
}

impl Tiles {
    /// Follows the registry: holds each camera's current stream (a camera provisioned,
    /// re-provisioned or deleted since is picked up or let go).
    fn refresh(&mut self) {
        for t in &mut self.tiles {
            let now = self
                .registry
                .by_camera(&t.camera)
                .filter(|s| !s.is_grid() && !s.is_profile());
            match (now, &t.held) {
                (Some(s), Some((h, _))) if s.same(h) => {}
                (Some(s), _) => {
                    let guard = s.hold();
                    t.held = Some((s, guard));
                }
                (None, _) => t.held = None,
            }
        }
    }

    /// Which cameras are sending now: live, a keyframe to start from, a recent frame.
    fn up(&self) -> Vec<bool> {
        self.tiles
            .iter()
            .map(|t| {
                t.held.as_ref().is_some_and(|(s, _)| {
                    let recent = s.hub().stats().last_frame_at.is_some_and(|at| {
                        SystemTime::now()
                            .duration_since(at)
                            .is_ok_and(|age| age < self.down_after)
                            // A frame stamped after now (clock step): recent.
                            || at > SystemTime::now()
                    });
                    s.state().state == StreamState::Live && recent && s.latest_keyframe().is_some()
                })
            })
            .collect()
    }
}

/// One ffmpeg run of a grid session.
struct Session {
    frames: FrameStream,
}

impl Session {
    fn start(
        transcoder: &Arc<Transcoder>,
        def: &GridDef,
        encoder: Encoder,
        tiles: &Tiles,
        layout: &[bool],
    ) -> Result<Session, IngestError> {
        let fail = |msg: String| {
            IngestError::new(
                FailureKind::Error,
                Stage::Connect,
                &def.name,
                format!("grid {}: {msg}", def.name),
            )
        };
        let mut inputs = Vec::with_capacity(layout.len());
        let mut fed: Vec<LiveStream> = Vec::new();
        for (t, up) in tiles.tiles.iter().zip(layout) {
            match (&t.held, up) {
                (Some((s, _)), true) => {
                    inputs.push(TileInput::Pipe(fed.len()));
                    fed.push(s.clone());
                }
                _ => inputs.push(TileInput::Placeholder),
            }
        }
        let args = grid_args(&def.output, &inputs, encoder);
        let live: Vec<&str> = tiles
            .tiles
            .iter()
            .zip(layout)
            .filter(|(_, up)| **up)
            .map(|(t, _)| t.camera.as_str())
            .collect();
        tracing::info!(
            grid = %def.name,
            encoder = encoder.ffmpeg_name(),
            cameras_live = ?live,
            "starting ffmpeg for grid"
        );
        let (child, pipes) = spawn(&transcoder.ffmpeg_path(), &args, fed.len())
            .map_err(|e| fail(spawn_error(&transcoder.ffmpeg_path(), &e)))?;
        let mut writers = Vec::with_capacity(fed.len());
        for (camera, mut pipe) in fed.into_iter().zip(pipes) {
            let name = format!("grid {} input {}", def.name, camera.path());
            writers.push(transcoder.tasks().spawn(name, async move {
                let mut consumer = camera.subscribe();
                // The consumer starts at the cached keyframe; the muxer needs the codec.
                let mut mux: Option<TsMuxer> = None;
                while let Some(f) = consumer.recv().await {
                    if mux.is_none() {
                        match f.video() {
                            Some(p) if f.keyframe => mux = Some(TsMuxer::new(p.codec)),
                            _ => continue,
                        }
                    }
                    let Some(mux) = mux.as_mut() else { continue };
                    // A frame the muxer refuses (malformed framing) is skipped, not fatal.
                    if let Ok(ts) = mux.frame(&f)
                        && !ts.is_empty()
                        && pipe.write_all(&ts).await.is_err()
                    {
                        break; // ffmpeg is gone; its stdout ends and the session with it.
                    }
                }
            }));
        }
        let frames = output(
            transcoder,
            &def.name,
            format!("grid {}", def.name),
            child,
            writers,
        )
        .map_err(fail)?;
        Ok(Session { frames })
    }
}

/// A grid session as a frame stream: ffmpeg's output, restarted with other inputs when a
/// camera goes down or comes back.
struct GridRun {
    transcoder: Arc<Transcoder>,
    def: Arc<GridDef>,
    encoder: Encoder,
    tiles: Tiles,
    /// Which tiles the running ffmpeg reads from a camera.
    layout: Vec<bool>,
    session: Session,
    started: Instant,
    tick: tokio::time::Interval,
    done: bool,
}

impl GridRun {
    async fn step(mut self) -> Option<(Result<Frame, IngestError>, GridRun)> {
        loop {
            if self.done {
                return None;
            }
            tokio::select! {
                item = self.session.frames.next() => match item {
                    Some(Ok(f)) => return Some((Ok(f), self)),
                    Some(Err(e)) => {
                        self.done = true;
                        return Some((Err(e), self));
                    }
                    None => return None,
                },
                _ = self.tick.tick() => {
                    self.tiles.refresh();
                    let now = self.tiles.up();
                    if now == self.layout || self.started.elapsed() < MIN_RESTART_GAP {
                        continue;
                    }
                    let changed: Vec<String> = self
                        .tiles
                        .tiles
                        .iter()
                        .zip(now.iter().zip(&self.layout))
                        .filter(|(_, (a, b))| a != b)
                        .map(|(t, (up, _))| {
                            format!("{} {}", t.camera, if *up { "back" } else { "down" })
                        })
                        .collect();
                    tracing::info!(grid = %self.def.name, changed = ?changed, "grid cameras changed; restarting its ffmpeg");
                    // The old ffmpeg is killed as its session drops (kill_on_drop).
                    match Session::start(&self.transcoder, &self.def, self.encoder, &self.tiles, &now) {
                        Ok(s) => {
                            self.session = s;
                            self.layout = now;
                            self.started = Instant::now();
                        }
                        Err(e) => {
                            self.done = true;
                            return Some((Err(e), self));
                        }
                    }
                }
            }
        }
    }
}
