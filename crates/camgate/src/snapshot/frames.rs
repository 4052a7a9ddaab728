//! Frames announced on NATS: per camera, every `frame_interval`, the newest frame is kept
//! (compressed: the cached GOP up to it, shared `Bytes`, bounded in bytes and by
//! `frame_keep`) and a `{prefix}.camera.frame` message names its URL. The JPEG is decoded on
//! the first fetch and cached in the entry, so messages nobody fetches cost a GOP's worth of
//! reference counts. Owns the store and the announcing tasks; the NATS side is
//! `events::frames`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use media::Frame;
use tokio::sync::OnceCell;
use tokio::time::Instant;

use super::video_gop;
use crate::cameras::StreamState;
use crate::events::frames::{FramePayload, FrameSender};
use crate::http::token::{Grant, Scope, TokenKeys};
use crate::hub::{LiveStream, Registry};

/// How often a camera whose frame messages are off is looked at again (provisioning may
/// switch them on), and the longest wait before a changed interval is seen.
const SPEC_POLL: Duration = Duration::from_secs(1);

/// One announced frame.
pub(super) struct Kept {
    pub number: u64,
    pub until: Instant,
    /// The cached GOP up to and including the frame (keyframe first).
    pub gop: Arc<[Frame]>,
    bytes: u64,
    /// The JPEG at the default quality, decoded by the first fetch.
    pub jpeg: Arc<OnceCell<Bytes>>,
}

#[derive(Default)]
struct CameraFrames {
    kept: VecDeque<Kept>,
    bytes: u64,
    /// The newest number announced: older unknown numbers are gone (410), newer never were.
    newest: u64,
}

/// What a fetch of `/cameras/{id}/frames/{n}.jpg` finds.
pub(super) enum Lookup {
    Found(Arc<[Frame]>, Arc<OnceCell<Bytes>>),
    Gone,
    Unknown,
}

pub(super) struct FrameStore {
    publisher: Option<FrameSender>,
    base_url: String,
    cameras: Arc<Mutex<HashMap<String, CameraFrames>>>,
    announced: Arc<AtomicU64>,
    /// Set when API keys are: each announced URL then carries a viewer token (snapshot
    /// scope, that camera only, valid while the frame is kept), so an analytics container
    /// fetches it with no key of its own.
    tokens: Arc<std::sync::OnceLock<Arc<TokenKeys>>>,
}

impl FrameStore {
    pub fn new(publisher: Option<FrameSender>, base_url: String) -> FrameStore {
        FrameStore {
            publisher,
            base_url,
            cameras: Arc::default(),
            announced: Arc::default(),
            tokens: Arc::default(),
        }
    }

    /// Announced URLs carry viewer tokens signed with `keys` from now on.
    pub fn sign_urls(&self, keys: Arc<TokenKeys>) {
        let _ = self.tokens.set(keys);
    }

    pub fn publishing(&self) -> bool {
        self.publisher.is_some()
    }

    /// (frames kept, their bytes as counted, messages sent).
    pub fn figures(&self) -> (u64, u64, u64) {
        let map = self.cameras.lock().unwrap_or_else(|p| p.into_inner());
        let kept = map.values().map(|c| c.kept.len() as u64).sum();
        let bytes = map.values().map(|c| c.bytes).sum();
        (kept, bytes, self.announced.load(Ordering::Relaxed))
    }

    pub fn lookup(&self, camera_id: &str, number: u64) -> Lookup {
        let mut map = self.cameras.lock().unwrap_or_else(|p| p.into_inner());
        let Some(cam) = map.get_mut(camera_id) else {
            return Lookup::Unknown;
        };
        expire(cam, Instant::now());
        match cam.kept.iter().find(|k| k.number == number) {
            Some(k) => Lookup::Found(k.gop.clone(), k.jpeg.clone()),
            None if number > 0 && number <= cam.newest => Lookup::Gone,
            None => Lookup::Unknown,
        }
    }

    /// The task that announces `stream`'s frames for as long as it is registered, every
    /// `interval(camera_id)` (looked up again each time, so provisioning changes it), holding
    /// its demand while that is above zero (analytics needs frames whether or not anyone
    /// watches). With a zero interval it holds nothing and looks again every `SPEC_POLL`.
    pub fn announcer(
        &self,
        stream: &LiveStream,
        registry: Arc<Registry>,
        interval: impl Fn(&str) -> Duration + Send + 'static,
        keep: Duration,
        max_bytes: u64,
    ) -> impl Future<Output = ()> + Send + 'static {
        let weak = stream.downgrade();
        let publisher = self.publisher.clone();
        let cameras = self.cameras.clone();
        let announced = self.announced.clone();
        let base_url = self.base_url.clone();
        let tokens = self.tokens.clone();
        async move {
            let Some(publisher) = publisher else { return };
            let mut hold = None;
            let mut last_dts = None;
            let mut next: Option<Instant> = None;
            loop {
                let Some(stream) = weak.upgrade() else { return };
                // By its path (one map lookup per message, not a scan of every stream).
                if !registry
                    .get(&stream.path())
                    .is_some_and(|r| r.same(&stream))
                {
                    return; // removed (or replaced): its frames are no longer announced
                }
                let every = interval(&stream.camera_id());
                if every.is_zero() {
                    // Off for this camera: release it to its idle timeout.
                    hold = None;
                    next = None;
                    drop(stream);
                    tokio::time::sleep(SPEC_POLL).await;
                    continue;
                }
                if hold.is_none() {
                    hold = Some(stream.hold());
                }
                // The first message at once, then one per interval; a shortened interval
                // takes effect at once, a changed one is seen within `SPEC_POLL`.
                let now = Instant::now();
                let due = next.unwrap_or(now).min(now + every);
                if due > now {
                    drop(stream);
                    tokio::time::sleep_until(due.min(now + SPEC_POLL)).await;
                    next = Some(due);
                    continue;
                }
                // One interval after this one (not after now, so the rate stays even when a
                // message is late), or from now when it fell behind by more than one.
                next = Some(if due + every < now {
                    now + every
                } else {
                    due + every
                });
                if stream.state().state != StreamState::Live {
                    continue;
                }
                let gop = video_gop(&stream);
                let Some(frame) = gop.last().cloned() else {
                    continue;
                };
                if last_dts == Some(frame.dts) {
                    continue; // no new frame since the last message
                }
                last_dts = Some(frame.dts);
                let stats = stream.hub().stats();
                let camera_id = stream.camera_id();
                // The count as the hub has it now; a frame arriving between the two reads
                // makes it one too high, which only shifts the numbering.
                let number = stats.frames_received.max(1);
                let bytes: u64 = gop.iter().map(|f| f.data.len() as u64).sum();
                let resolution = frame
                    .video()
                    .map(|p| format!("{}x{}", p.width, p.height))
                    .unwrap_or_default();
                {
                    let mut map = cameras.lock().unwrap_or_else(|p| p.into_inner());
                    let cam = map.entry(camera_id.clone()).or_default();
                    let now = Instant::now();
                    expire(cam, now);
                    cam.kept.push_back(Kept {
                        number,
                        until: now + keep,
                        gop: gop.into(),
                        bytes,
                        jpeg: Arc::new(OnceCell::new()),
                    });
                    cam.bytes += bytes;
                    cam.newest = cam.newest.max(number);
                    // Bounded in bytes: the oldest go first (their URLs answer 410).
                    while cam.bytes > max_bytes && cam.kept.len() > 1 {
                        if let Some(old) = cam.kept.pop_front() {
                            cam.bytes -= old.bytes;
                        }
                    }
                }
                announced.fetch_add(1, Ordering::Relaxed);
                let mut url = format!("{base_url}/cameras/{camera_id}/frames/{number}.jpg");
                if let Some(keys) = tokens.get() {
                    let grant = Grant::Viewer {
                        camera_id: camera_id.clone(),
                        stream_path: stream.path().to_string(),
                        scope: Scope::SNAPSHOT,
                    };
                    // Valid as long as the frame is kept (then the URL is 410 anyway).
                    let expires = unix_millis(SystemTime::now()) as u64 + keep.as_secs() + 1;
                    url.push_str("?token=");
                    url.push_str(&keys.issue(&grant, expires));
                }
                publisher.send(FramePayload {
                    url,
                    camera_id,
                    timestamp: unix_millis(frame.wallclock),
                    frame_number: number,
                    resolution,
                    fps: (stats.fps * 100.0).round() / 100.0,
                });
            }
        }
    }
}

fn expire(cam: &mut CameraFrames, now: Instant) {
    while cam.kept.front().is_some_and(|k| k.until <= now) {
        if let Some(old) = cam.kept.pop_front() {
            cam.bytes -= old.bytes;
        }
    }
}

/// Unix seconds with milliseconds.
fn unix_millis(t: SystemTime) -> f64 {
    let ms = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    ms as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_gone_and_kept_numbers_are_told_apart() {
        let store = FrameStore::new(None, "http://x".into());
        let params = media::test_util::h264_params();
        {
            let mut map = store.cameras.lock().unwrap();
            let cam = map.entry("1".into()).or_default();
            cam.newest = 10;
            cam.kept.push_back(Kept {
                number: 10,
                until: Instant::now() + Duration::from_secs(30),
                gop: media::test_util::gop(&params, 3, 25).into(),
                bytes: 30,
                jpeg: Arc::new(OnceCell::new()),
            });
            cam.bytes = 30;
        }
        assert!(matches!(store.lookup("1", 10), Lookup::Found(..)));
        assert!(matches!(store.lookup("1", 9), Lookup::Gone));
        assert!(matches!(store.lookup("1", 11), Lookup::Unknown));
        assert!(matches!(store.lookup("1", 0), Lookup::Unknown));
        assert!(matches!(store.lookup("2", 1), Lookup::Unknown));
        assert_eq!(store.figures(), (1, 30, 0));
        assert_eq!(
            unix_millis(UNIX_EPOCH + Duration::from_millis(1_234)),
            1.234
        );
    }
}
