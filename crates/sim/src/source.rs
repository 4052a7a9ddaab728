//! Where the video of every camera comes from: one clip encoded at start and looped (cheap
//! for hundreds of cameras), or one live encoder shared by all cameras (`--live`, so the
//! burned-in clock is current). No per-session encoding in either case. `SimSource` is
//! what the RTSP server (crates/rtsp) serves: cameras `/cam1 ... /camN`, one H.264 track.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::broadcast;

use crate::encode::{Clip, EncodedFrame, VideoEncoder, encode_clip};
use crate::play::SimPlay;
use crate::rtp::PAYLOAD_TYPE;
use crate::{SimConfig, SimError};

pub(crate) fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub(crate) enum VideoSource {
    Clip(Arc<Clip>),
    Live(Arc<LiveFeed>),
}

impl VideoSource {
    /// Encodes the clip, or starts the live encoder. CPU-heavy; runs on a blocking thread.
    pub(crate) async fn start(config: &SimConfig) -> Result<VideoSource, SimError> {
        let c = config.clone();
        let job = move || -> Result<VideoSource, SimError> {
            if c.live {
                Ok(VideoSource::Live(LiveFeed::start(&c)?))
            } else {
                let clip = encode_clip(
                    c.width,
                    c.height,
                    c.fps,
                    c.gop_frames(),
                    c.bitrate,
                    c.clip_frames(),
                    unix_ms_now(),
                )?;
                Ok(VideoSource::Clip(Arc::new(clip)))
            }
        };
        tokio::task::spawn_blocking(job)
            .await
            .map_err(|e| SimError::Encoder(format!("encoder task failed: {e}")))?
    }

    pub(crate) fn parameter_sets(&self) -> (Bytes, Bytes) {
        match self {
            VideoSource::Clip(c) => (c.sps.clone(), c.pps.clone()),
            VideoSource::Live(l) => (l.sps.clone(), l.pps.clone()),
        }
    }

    pub(crate) fn stop(&self) {
        if let VideoSource::Live(l) = self {
            l.stop.store(true, Ordering::Relaxed);
        }
    }
}

/// The simulator's cameras, as the RTSP server sees them.
pub(crate) struct SimSource {
    pub(crate) config: SimConfig,
    pub(crate) video: VideoSource,
    /// The server's start: origin of the clip sessions' shared pacing grid.
    pub(crate) epoch: tokio::time::Instant,
}

impl SimSource {
    /// `camN` -> N, for 1 <= N <= cameras; no leading zeros, so each camera has one name.
    pub(crate) fn camera(&self, name: &str) -> Option<u32> {
        name.strip_prefix("cam")
            .filter(|n| !n.starts_with('0') && n.len() <= 6)
            .and_then(|n| n.parse::<u32>().ok())
            .filter(|n| (1..=self.config.cameras).contains(n))
    }
}

impl rtsp::Source for SimSource {
    type Play = SimPlay;

    fn describe(&self, name: &str) -> Option<rtsp::StreamInfo> {
        let camera = self.camera(name)?;
        let (sps, pps) = self.video.parameter_sets();
        let c = &self.config;
        let track = rtsp::Track::h264(PAYLOAD_TYPE, &sps, &pps)
            .with_attribute(format!("framerate:{}", c.fps))
            .with_attribute(format!("x-dimensions:{},{}", c.width, c.height));
        Some(rtsp::StreamInfo {
            title: format!("camgate sim cam{camera}"),
            tracks: vec![track],
        })
    }

    fn play(&self, start: &rtsp::PlayStart) -> Option<SimPlay> {
        self.camera(&start.stream)?;
        let track = *start.tracks.first()?;
        Some(SimPlay::new(self, start.session.clone(), track))
    }
}

/// The live encoder: a thread that encodes the picture at the frame rate while anyone
/// watches, and broadcasts each frame to every playing session of every camera.
pub(crate) struct LiveFeed {
    pub(crate) frames: broadcast::Sender<Arc<EncodedFrame>>,
    pub(crate) sps: Bytes,
    pub(crate) pps: Bytes,
    /// Set by a session that starts playing: the next frame is an IDR, so it starts at once.
    pub(crate) want_keyframe: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl LiveFeed {
    fn start(c: &SimConfig) -> Result<Arc<LiveFeed>, SimError> {
        let mut encoder = VideoEncoder::new(c.width, c.height, c.fps, c.gop_frames(), c.bitrate)?;
        // One frame up front, for the SPS/PPS every DESCRIBE needs.
        encoder.encode_next(unix_ms_now())?;
        let (sps, pps) = encoder
            .parameter_sets()
            .ok_or_else(|| SimError::Encoder("the encoder produced no SPS/PPS".into()))?;
        let (frames, _) = broadcast::channel(c.fps as usize * 2);
        let feed = Arc::new(LiveFeed {
            frames,
            sps,
            pps,
            want_keyframe: Arc::new(AtomicBool::new(true)),
            stop: Arc::new(AtomicBool::new(false)),
        });
        let fps = c.fps;
        let weak = Arc::downgrade(&feed);
        std::thread::Builder::new()
            .name("sim-live-encoder".into())
            .spawn(move || live_loop(weak, encoder, fps))
            .map_err(SimError::Io)?;
        Ok(feed)
    }
}

fn live_loop(feed: std::sync::Weak<LiveFeed>, mut encoder: VideoEncoder, fps: u32) {
    let period = Duration::from_secs_f64(1.0 / f64::from(fps));
    let mut next = Instant::now();
    loop {
        let Some(feed) = feed.upgrade() else { return };
        if feed.stop.load(Ordering::Relaxed) {
            return;
        }
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else if now - next > period * 2 {
            // Fell behind (busy machine): skip ahead rather than burst frames.
            next = now;
        }
        next += period;
        if feed.frames.receiver_count() == 0 {
            feed.want_keyframe.store(true, Ordering::Relaxed);
            continue;
        }
        if feed.want_keyframe.swap(false, Ordering::Relaxed) {
            encoder.request_keyframe();
        }
        match encoder.encode_next(unix_ms_now()) {
            // No receivers left is fine: nobody watches right now.
            Ok(frame) => drop(feed.frames.send(Arc::new(frame))),
            Err(e) => {
                tracing::error!(error = %e, "live encoder failed; live cameras stop");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtsp::Source;

    #[tokio::test]
    async fn cameras_have_one_name_each() {
        let config = SimConfig {
            cameras: 2,
            width: 64,
            height: 48,
            fps: 10,
            clip: Duration::from_secs(1),
            ..SimConfig::default()
        };
        let source = SimSource {
            video: VideoSource::start(&config).await.unwrap(),
            config,
            epoch: tokio::time::Instant::now(),
        };
        let info = source.describe("cam2").unwrap();
        assert_eq!(info.title, "camgate sim cam2");
        let fmtp = info.tracks[0].fmtp.as_deref().unwrap();
        assert!(fmtp.contains("sprop-parameter-sets="), "{fmtp}");
        assert_eq!(
            info.tracks[0].attributes,
            ["framerate:10", "x-dimensions:64,48"]
        );
        for bad in [
            "cam3",
            "cam0",
            "cam01",
            "camera1",
            "cam",
            "cam-1",
            "Cam1",
            "cam9999999",
        ] {
            assert!(source.describe(bad).is_none(), "{bad}");
        }
    }
}
