//! Snapshots: a stream's latest picture as JPEG (`/cameras/{id}/snapshot.jpg`,
//! `/streams/{path}/snapshot.jpg`), and the frames announced on NATS (`{prefix}.camera.frame`,
//! fetched at `/cameras/{id}/frames/{n}.jpg`). See docs/snapshots.md.
//!
//! It owns the decoders kept warm per stream, the picture and JPEG cached per stream and
//! frame, the bound on decodes running at once, the store of announced frames and the tasks
//! that announce them. A picture comes from the hub's cached GOP (the latest keyframe and
//! every frame after it), decoded in-process with OpenH264 on a blocking thread: current, and
//! without waiting for the next keyframe. An output: it imports `hub`, `media`, `http`,
//! `events` (the frame publisher), `tasks`, `config` and `cameras`; it must not import another
//! output, `ingest`, `live` or `api`.

mod decode;
mod frames;
mod http;
mod metrics;
mod picture;
mod recorded;
pub mod untrusted;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::http::StatusCode;
use bytes::Bytes;
use media::{Codec, Frame};
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::cameras::StreamState;
use crate::config::Config;
use crate::events::Metrics;
use crate::http::AppError;
use crate::hub::{LiveStream, Output, Registry, WeakStream};
use crate::tasks::Tasks;
pub use decode::DecodeError;
use decode::{Decoded, H264Decoder, codec_name};
pub use http::router;
pub use metrics::{DECODE_BUCKETS, DecodeTimesSnapshot, SnapshotMetrics};
pub use picture::Picture;

/// JPEGs of one picture kept for different `?width=`/`?quality=` (a grid and a full view).
const JPEGS_PER_PICTURE: usize = 4;
/// The default `?quality=` (API.md).
pub const DEFAULT_QUALITY: u8 = 80;

/// What snapshots are configured with.
#[derive(Clone, Debug)]
pub struct SnapshotSettings {
    pub max_decodes: usize,
    pub warm: Duration,
    pub reuse: Duration,
    /// How long a cold request waits for the camera's first keyframe.
    pub start_timeout: Duration,
    pub frame_interval: Duration,
    pub frame_keep: Duration,
    pub frames_max_bytes: u64,
}

impl SnapshotSettings {
    pub fn from_config(c: &Config) -> SnapshotSettings {
        SnapshotSettings {
            max_decodes: c.snapshot.max_decodes as usize,
            warm: c.snapshot.warm,
            reuse: c.snapshot.reuse,
            start_timeout: c.streams.start_timeout,
            frame_interval: c.nats.frame_interval,
            frame_keep: c.nats.frame_keep,
            frames_max_bytes: c.snapshot.frames_max_bytes.bytes(),
        }
    }
}

/// A camera's own frame message interval by camera id (`None`: `[nats] frame_interval`
/// applies). A lookup, so snapshots need not know where camera settings live.
pub type FrameIntervals = Arc<dyn Fn(&str) -> Option<Duration> + Send + Sync>;

/// A JPEG and the capture time of its frame.
#[derive(Clone, Debug)]
pub struct Jpeg {
    pub data: Bytes,
    pub wallclock: SystemTime,
}

/// Counters of the snapshot output (`GET /snapshots/stats`).
#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    /// Decoder runs (one request's decode, however many frames it fed).
    decodes: AtomicU64,
    frames_decoded: AtomicU64,
    jpeg_encodes: AtomicU64,
    /// Requests answered from a cached JPEG or picture.
    cache_hits: AtomicU64,
    cold_starts: AtomicU64,
    errors: AtomicU64,
    /// `errors` by the answer's code.
    error_reasons: metrics::ErrorReasons,
    decode_times: metrics::DecodeTimes,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct SnapshotStats {
    pub requests: u64,
    pub decodes: u64,
    pub frames_decoded: u64,
    pub jpeg_encodes: u64,
    pub cache_hits: u64,
    pub cold_starts: u64,
    pub errors: u64,
    pub warm_decoders: u64,
    pub frames_kept: u64,
    pub frames_kept_bytes: u64,
    pub frames_announced: u64,
}

/// The snapshot output. Cheap to share (`Arc`).
pub struct Snapshots {
    registry: Arc<Registry>,
    settings: SnapshotSettings,
    permits: Arc<Semaphore>,
    streams: Mutex<HashMap<String, Arc<StreamSnaps>>>,
    counters: Counters,
    frames: frames::FrameStore,
    /// Each camera's own `frame_interval` (provisioning), once app.rs hands the lookup over.
    frame_intervals: Arc<std::sync::OnceLock<FrameIntervals>>,
    /// Recorded frames (`/recordings/{path}/frame.jpg`), once app.rs hands them over.
    recorded: recorded::Recorded,
    tasks: Tasks,
}

/// One stream's decoder and cache, behind one lock so concurrent requests decode once.
struct StreamSnaps {
    stream: WeakStream,
    work: tokio::sync::Mutex<Work>,
}

#[derive(Default)]
struct Work {
    decoder: Option<H264Decoder>,
    last: Option<Decoded>,
    decoded_at: Option<Instant>,
    last_used: Option<Instant>,
    jpegs: Vec<((u32, u8), Bytes)>,
}

impl Snapshots {
    /// `publisher`: where frame messages go (NATS), when they are on. `base_url`: the scheme
    /// and host of the frame URLs (messages are built without a request).
    pub fn new(
        settings: SnapshotSettings,
        registry: Arc<Registry>,
        publisher: Option<crate::events::frames::FrameSender>,
        base_url: String,
        tasks: Tasks,
    ) -> Arc<Snapshots> {
        let snaps = Arc::new(Snapshots {
            registry,
            permits: Arc::new(Semaphore::new(settings.max_decodes.max(1))),
            frames: frames::FrameStore::new(publisher, base_url),
            streams: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            recorded: recorded::Recorded::default(),
            frame_intervals: Arc::default(),
            settings,
            tasks: tasks.clone(),
        });
        let weak = Arc::downgrade(&snaps);
        tasks.spawn("snapshot decoders", async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(snaps) = weak.upgrade() else { return };
                snaps.cool_down();
            }
        });
        snaps
    }

    /// Builds it from the configuration: the frame publisher starts when NATS and frame
    /// messages are on.
    pub fn from_config(
        config: &Config,
        registry: Arc<Registry>,
        metrics: Arc<Metrics>,
        local_addr: std::net::SocketAddr,
        output_tasks: Tasks,
        service_tasks: &Tasks,
    ) -> Arc<Snapshots> {
        let publisher = crate::events::frames::start(service_tasks, &config.nats, metrics);
        // A frame message's URL is built with no request to take a Host from: `[http]
        // public_url` when set (behind a proxy, TLS), else the listen address.
        let base_url = if config.http.public_url.is_empty() {
            let mut addr = local_addr;
            if addr.ip().is_unspecified() {
                addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            format!("http://{addr}")
        } else {
            config.http.public_url.trim_end_matches('/').to_owned()
        };
        Snapshots::new(
            SnapshotSettings::from_config(config),
            registry,
            publisher,
            base_url,
            output_tasks,
        )
    }

    pub fn stats(&self) -> SnapshotStats {
        let c = &self.counters;
        let warm = self
            .lock_streams()
            .values()
            .filter(|s| s.work.try_lock().is_ok_and(|w| w.decoder.is_some()))
            .count();
        let (kept, kept_bytes, announced) = self.frames.figures();
        SnapshotStats {
            requests: c.requests.load(Ordering::Relaxed),
            decodes: c.decodes.load(Ordering::Relaxed),
            frames_decoded: c.frames_decoded.load(Ordering::Relaxed),
            jpeg_encodes: c.jpeg_encodes.load(Ordering::Relaxed),
            cache_hits: c.cache_hits.load(Ordering::Relaxed),
            cold_starts: c.cold_starts.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            warm_decoders: warm as u64,
            frames_kept: kept,
            frames_kept_bytes: kept_bytes,
            frames_announced: announced,
        }
    }

    /// Hands snapshots the per-camera frame intervals (app.rs, before cameras load).
    pub fn set_frame_intervals(&self, of: FrameIntervals) {
        let _ = self.frame_intervals.set(of);
    }

    /// With API keys set: the URLs of frame messages carry viewer tokens signed by `keys`
    /// (API.md: the frame message's `url`), since whoever reads NATS has no key of ours.
    pub fn sign_frame_urls(&self, keys: Arc<crate::http::token::TokenKeys>) {
        self.frames.sign_urls(keys);
    }

    /// Every answer of the image routes (http.rs), counted once: a request, and an error by
    /// its code (bad input included).
    fn answered<T>(&self, result: Result<T, AppError>) -> Result<T, AppError> {
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = &result {
            self.counters.errors.fetch_add(1, Ordering::Relaxed);
            self.counters.error_reasons.count(e.code);
        }
        result
    }

    /// One decoder or encoder run's time on its blocking thread.
    fn observe_decode(&self, took: std::time::Duration) {
        self.counters.decode_times.observe(took);
    }

    /// What `/metrics` shows.
    pub fn metrics(&self) -> SnapshotMetrics {
        SnapshotMetrics {
            stats: self.stats(),
            errors: self.counters.error_reasons.all(),
            decode_times: self.counters.decode_times.snapshot(),
        }
    }

    fn count_cache_hit(&self) {
        self.counters.cache_hits.fetch_add(1, Ordering::Relaxed);
    }

    /// One decoder run that fed `frames` frames, and its JPEG.
    fn count_decode(&self, frames: usize) {
        self.counters.decodes.fetch_add(1, Ordering::Relaxed);
        self.counters
            .frames_decoded
            .fetch_add(frames as u64, Ordering::Relaxed);
        self.counters.jpeg_encodes.fetch_add(1, Ordering::Relaxed);
    }

    /// A place among the decodes allowed at once (`[snapshot] max_decodes`).
    async fn decode_permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, AppError> {
        self.permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| AppError::internal("shutting_down", "the service is stopping"))
    }

    fn lock_streams(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<StreamSnaps>>> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops decoders and pictures unused for `warm`, and the entries of removed streams.
    fn cool_down(&self) {
        let warm = self.settings.warm;
        self.lock_streams().retain(|_, s| {
            let Some(stream) = s.stream.upgrade() else {
                return false;
            };
            if let Ok(mut w) = s.work.try_lock()
                && w.last_used.is_none_or(|t| t.elapsed() >= warm)
            {
                *w = Work::default();
                // Nothing kept: forget the stream too unless it is still registered.
                return self.registry.list().iter().any(|r| r.same(&stream));
            }
            true
        });
    }

    fn entry(&self, stream: &LiveStream) -> Arc<StreamSnaps> {
        let path = stream.path();
        let mut map = self.lock_streams();
        if let Some(s) = map.get(&path)
            && s.stream.upgrade().is_some_and(|r| r.same(stream))
        {
            return s.clone();
        }
        let s = Arc::new(StreamSnaps {
            stream: stream.downgrade(),
            work: tokio::sync::Mutex::new(Work::default()),
        });
        map.insert(path, s.clone());
        s
    }

    /// The stream's latest picture as JPEG, `width` pixels wide (aspect kept; `None`: as
    /// decoded). Starts an idle on-demand camera (a demand hold, not a viewer) and waits up
    /// to the start timeout for its first keyframe.
    pub async fn snapshot(
        &self,
        stream: &LiveStream,
        width: Option<u32>,
        quality: u8,
    ) -> Result<Jpeg, AppError> {
        match self.snapshot_inner(stream, width, quality).await {
            // An H.265 camera: OpenH264 cannot decode it, its `~h264` profile (an on-demand
            // ffmpeg transcode, started here like an idle camera) can.
            Err(e) if e.code == "unsupported_codec" => {
                let alt = format!("{}~{}", stream.path(), crate::config::RESERVED_PROFILE);
                match self.registry.get(&alt) {
                    Some(h264) if h264.path() != stream.path() => {
                        self.snapshot_inner(&h264, width, quality).await
                    }
                    _ => Err(e),
                }
            }
            other => other,
        }
    }

    async fn snapshot_inner(
        &self,
        stream: &LiveStream,
        width: Option<u32>,
        quality: u8,
    ) -> Result<Jpeg, AppError> {
        let asked_at = Instant::now();
        let (gop, started) = self.current_gop(stream).await?;
        let newest = gop.last().map(|f| f.dts);
        let entry = self.entry(stream);
        let mut work = entry.work.lock().await;
        if started {
            // A new session: its timestamps may repeat the old one's (a camera restarts them),
            // so the old picture and decoder state must not be taken for its frames.
            *work = Work::default();
        }
        work.last_used = Some(Instant::now());
        // A picture decoded while we waited, of the newest frame, or recent enough, serves.
        let reusable = match (&work.last, work.decoded_at) {
            (Some(last), Some(at)) => {
                at >= asked_at || Some(last.dts) == newest || at.elapsed() < self.settings.reuse
            }
            _ => false,
        };
        let key = (width.unwrap_or(0), quality);
        if reusable {
            let last = work.last.clone().expect("reusable implies a picture"); // checked above
            if let Some((_, jpeg)) = work.jpegs.iter().find(|(k, _)| *k == key) {
                self.counters.cache_hits.fetch_add(1, Ordering::Relaxed);
                return Ok(Jpeg {
                    data: jpeg.clone(),
                    wallclock: last.wallclock,
                });
            }
            self.counters.cache_hits.fetch_add(1, Ordering::Relaxed);
            let data = self.encode(last.picture.clone(), width, quality).await?;
            remember(&mut work.jpegs, key, data.clone());
            return Ok(Jpeg {
                data,
                wallclock: last.wallclock,
            });
        }
        // Decode what the warm decoder has not seen yet (all of the GOP when cold).
        let params = gop[0].video().cloned().ok_or_else(no_video)?;
        let mut decoder = match work.decoder.take() {
            Some(d) if **d.params() == *params => d,
            _ => H264Decoder::new(params).map_err(decode_error)?,
        };
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| AppError::internal("shutting_down", "the service is stopping"))?;
        let started = std::time::Instant::now();
        let outcome = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let todo = decoder.pending(&gop);
            let result = if todo.is_empty() {
                decoder
                    .last()
                    .cloned()
                    .map(|d| (d, 0))
                    .ok_or(DecodeError::NoPicture)
            } else {
                decoder.feed(todo)
            };
            let result = result.and_then(|(decoded, n)| {
                let jpeg = scaled_jpeg(&decoded.picture, width, quality)?;
                Ok((decoded, n, jpeg))
            });
            (decoder, result)
        })
        .await;
        self.observe_decode(started.elapsed());
        let (decoder, result) = outcome.map_err(|_| {
            // A panic in the decode thread: the decoder went with it.
            AppError::internal("decode_failed", "decoding the frame failed unexpectedly")
        })?;
        let (decoded, n, jpeg) = result.map_err(decode_error)?;
        self.counters.decodes.fetch_add(1, Ordering::Relaxed);
        self.counters
            .frames_decoded
            .fetch_add(n as u64, Ordering::Relaxed);
        self.counters.jpeg_encodes.fetch_add(1, Ordering::Relaxed);
        if !self.settings.warm.is_zero() {
            work.decoder = Some(decoder);
        }
        let data = Bytes::from(jpeg);
        work.jpegs.clear();
        remember(&mut work.jpegs, key, data.clone());
        work.decoded_at = Some(Instant::now());
        let wallclock = decoded.wallclock;
        work.last = Some(decoded);
        Ok(Jpeg { data, wallclock })
    }

    /// JPEG-encodes a picture on a blocking thread (under the decode bound: it is as heavy).
    async fn encode(
        &self,
        picture: Arc<Picture>,
        width: Option<u32>,
        quality: u8,
    ) -> Result<Bytes, AppError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| AppError::internal("shutting_down", "the service is stopping"))?;
        let started = std::time::Instant::now();
        let out = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            scaled_jpeg(&picture, width, quality)
        })
        .await;
        self.observe_decode(started.elapsed());
        let out = out
            .map_err(|_| AppError::internal("encode_failed", "JPEG encoding failed unexpectedly"))?
            .map_err(decode_error)?;
        self.counters.jpeg_encodes.fetch_add(1, Ordering::Relaxed);
        Ok(Bytes::from(out))
    }

    /// Frame `number` of camera `camera_id` as announced on NATS: `404` for a number never
    /// announced, `410` once it is no longer kept. The default JPEG is decoded once and cached.
    pub async fn announced_frame(
        &self,
        camera_id: &str,
        number: u64,
        width: Option<u32>,
        quality: u8,
    ) -> Result<Jpeg, AppError> {
        let (gop, cell) = match self.frames.lookup(camera_id, number) {
            frames::Lookup::Found(gop, cell) => (gop, cell),
            frames::Lookup::Gone => {
                return Err(AppError::new(
                    StatusCode::GONE,
                    "frame_gone",
                    format!(
                        "frame {number} of camera {camera_id} is no longer kept ([nats] frame_keep is {:?}); fetch frames sooner after their message",
                        self.settings.frame_keep
                    ),
                ));
            }
            frames::Lookup::Unknown => {
                return Err(AppError::new(
                    StatusCode::NOT_FOUND,
                    "frame_not_found",
                    format!("camera {camera_id} announced no frame {number}"),
                ));
            }
        };
        let wallclock = gop
            .last()
            .map(|f| f.wallclock)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let data = if width.is_none() && quality == DEFAULT_QUALITY {
            if cell.initialized() {
                self.counters.cache_hits.fetch_add(1, Ordering::Relaxed);
            }
            cell.get_or_try_init(|| self.decode_kept(gop, None, quality))
                .await?
                .clone()
        } else {
            self.decode_kept(gop, width, quality).await?
        };
        Ok(Jpeg { data, wallclock })
    }

    /// Decodes a kept GOP with a decoder of its own (the stream's warm one is at the live
    /// edge) and encodes its last frame.
    async fn decode_kept(
        &self,
        gop: Arc<[Frame]>,
        width: Option<u32>,
        quality: u8,
    ) -> Result<Bytes, AppError> {
        let params = gop
            .first()
            .and_then(|f| f.video().cloned())
            .ok_or_else(no_video)?;
        let mut decoder = H264Decoder::new(params).map_err(decode_error)?;
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| AppError::internal("shutting_down", "the service is stopping"))?;
        let started = std::time::Instant::now();
        let outcome = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let (decoded, n) = decoder.feed(&gop)?;
            let jpeg = scaled_jpeg(&decoded.picture, width, quality)?;
            Ok::<_, DecodeError>((decoded, n, jpeg))
        })
        .await;
        self.observe_decode(started.elapsed());
        let (decoded, n, jpeg) = outcome
            .map_err(|_| {
                AppError::internal("decode_failed", "decoding the frame failed unexpectedly")
            })?
            .map_err(decode_error)?;
        drop(decoded);
        self.counters.decodes.fetch_add(1, Ordering::Relaxed);
        self.counters
            .frames_decoded
            .fetch_add(n as u64, Ordering::Relaxed);
        self.counters.jpeg_encodes.fetch_add(1, Ordering::Relaxed);
        Ok(Bytes::from(jpeg))
    }

    /// The video frames of the stream's cached GOP, starting the camera and waiting for its
    /// first keyframe when it has none (idle on-demand, or still connecting); `true` when it
    /// waited for a new session.
    async fn current_gop(&self, stream: &LiveStream) -> Result<(Vec<Frame>, bool), AppError> {
        // The hub keeps its last GOP after the camera stops (idle, reconnecting): that
        // picture is old, so only a live stream's GOP is current.
        let live = stream.state().state == StreamState::Live;
        let gop = if live { video_gop(stream) } else { Vec::new() };
        if !gop.is_empty() {
            check_codec(&gop)?;
            return Ok((gop, false));
        }
        self.counters.cold_starts.fetch_add(1, Ordering::Relaxed);
        // A new consumer is handed the cached GOP first; from a stopped camera that is the old
        // picture, so its frames (known by their buffers) do not count as the first keyframe.
        let old: Vec<usize> = stream
            .cached_gop()
            .iter()
            .map(|f| f.data.as_ptr() as usize)
            .collect();
        let is_old = |f: &Frame| old.contains(&(f.data.as_ptr() as usize));
        // Demand, not a viewer; released when we return, then the idle timeout runs.
        let _hold = stream.hold();
        let mut consumer = stream.subscribe();
        let wait = async {
            while let Some(frame) = consumer.recv().await {
                if frame.keyframe && frame.video().is_some() && !is_old(&frame) {
                    return true;
                }
            }
            false
        };
        match tokio::time::timeout(self.settings.start_timeout, wait).await {
            Ok(true) => {}
            Ok(false) => {
                return Err(AppError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "stream_closed",
                    format!(
                        "stream {} was removed while waiting for a picture",
                        stream.path()
                    ),
                ));
            }
            Err(_) => return Err(no_keyframe(stream, self.settings.start_timeout)),
        }
        let gop = video_gop(stream);
        if gop.first().is_none_or(is_old) {
            return Err(no_keyframe(stream, self.settings.start_timeout));
        }
        check_codec(&gop)?;
        Ok((gop, true))
    }
}

impl Output for Snapshots {
    fn attach(&self, stream: &LiveStream) {
        // Frame messages are per camera; a profile stream shares the camera's id, and holding
        // it would start a transcode nobody asked for. Every camera gets an announcer while
        // NATS is on: its provisioning may set `frame_interval` at any time.
        if !self.frames.publishing() || stream.is_profile() {
            return;
        }
        let default = self.settings.frame_interval;
        let per_camera = self.frame_intervals.clone();
        let interval = move |camera_id: &str| {
            per_camera
                .get()
                .and_then(|of| of(camera_id))
                .unwrap_or(default)
        };
        let task = self.frames.announcer(
            stream,
            self.registry.clone(),
            interval,
            self.settings.frame_keep,
            self.settings.frames_max_bytes,
        );
        self.tasks.spawn(format!("frames {}", stream.path()), task);
    }
}

/// Keeps at most `JPEGS_PER_PICTURE` encodings, newest first.
fn remember(jpegs: &mut Vec<((u32, u8), Bytes)>, key: (u32, u8), data: Bytes) {
    jpegs.retain(|(k, _)| *k != key);
    jpegs.insert(0, (key, data));
    jpegs.truncate(JPEGS_PER_PICTURE);
}

fn scaled_jpeg(picture: &Picture, width: Option<u32>, quality: u8) -> Result<Vec<u8>, DecodeError> {
    let out = match width {
        Some(w) if w as usize != picture.width => picture.scaled(w as usize).to_jpeg(quality),
        _ => picture.to_jpeg(quality),
    };
    out.map_err(DecodeError::Corrupt)
}

/// The video frames of the cached GOP (audio is skipped), empty without a keyframe.
fn video_gop(stream: &LiveStream) -> Vec<Frame> {
    let mut gop = stream.cached_gop();
    gop.retain(|f| f.video().is_some());
    if gop.first().is_some_and(|f| !f.keyframe) {
        gop.clear();
    }
    gop
}

/// `415` for a codec we cannot decode, naming it.
fn check_codec(gop: &[Frame]) -> Result<(), AppError> {
    match gop[0].video().map(|p| p.codec) {
        Some(Codec::H264) => Ok(()),
        Some(other) => Err(unsupported(codec_name(other))),
        None => Err(no_video()),
    }
}

fn unsupported(codec: &str) -> AppError {
    AppError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_codec",
        format!(
            "snapshots decode H.264; this is {codec} (a live H.265 camera is pictured through its ~h264 profile, a recording is not)"
        ),
    )
}

fn no_video() -> AppError {
    AppError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "no_video",
        "this stream carries no video",
    )
}

fn no_keyframe(stream: &LiveStream, waited: Duration) -> AppError {
    let state: StreamState = stream.state().state;
    AppError::new(
        StatusCode::GATEWAY_TIMEOUT,
        "snapshot_timeout",
        format!(
            "no keyframe from stream {} within {:?} (the camera is {}); try again or check GET /cameras/{}/status",
            stream.path(),
            waited,
            state.as_str(),
            stream.camera_id()
        ),
    )
}

fn decode_error(e: DecodeError) -> AppError {
    match e {
        DecodeError::Unsupported(codec) => unsupported(codec),
        DecodeError::Corrupt(_) | DecodeError::NoPicture => AppError::new(
            StatusCode::BAD_GATEWAY,
            "undecodable_frame",
            format!("{e}; the camera sent video the decoder rejects"),
        ),
    }
}
