//! Live statistics of a hub: what arrived, how fast, and what consumers lost.
//!
//! Rates are computed over a short sliding window of arrival times (the tokio clock, so tests
//! can pause it), and decay to zero when frames stop arriving.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use media::{AudioParams, CodecParams, Frame};
use tokio::time::Instant;

/// Rates look back this far.
const WINDOW: Duration = Duration::from_secs(2);

/// A point-in-time copy of a hub's statistics.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HubStats {
    pub frames_received: u64,
    pub bytes_received: u64,
    pub fps: f64,
    pub bitrate_kbps: f64,
    pub dropped_frames: u64,
    /// Since the first frame of the current session (see `Hub::begin_session`).
    pub uptime_seconds: u64,
    pub last_frame_at: Option<SystemTime>,
    pub params: Option<Arc<CodecParams>>,
}

impl HubStats {
    /// `h264` / `h265`, once parameters are known.
    pub fn codec(&self) -> Option<&'static str> {
        self.params.as_ref().map(|p| match p.codec {
            media::Codec::H264 => "h264",
            media::Codec::H265 => "h265",
        })
    }

    /// `WIDTHxHEIGHT`, once parameters are known.
    pub fn resolution(&self) -> Option<String> {
        self.params
            .as_ref()
            .map(|p| format!("{}x{}", p.width, p.height))
    }
}

pub(super) struct StatsWindow {
    frames_received: u64,
    bytes_received: u64,
    recent: VecDeque<(Instant, usize)>,
    session_start: Option<Instant>,
    last_frame_at: Option<SystemTime>,
    latest_dts: Option<i64>,
    params: Option<Arc<CodecParams>>,
    /// The newest audio frame's parameters (kept across sessions: the camera's audio).
    audio: Option<Arc<AudioParams>>,
}

impl StatsWindow {
    pub(super) fn new() -> StatsWindow {
        StatsWindow {
            frames_received: 0,
            bytes_received: 0,
            recent: VecDeque::new(),
            session_start: None,
            last_frame_at: None,
            latest_dts: None,
            params: None,
            audio: None,
        }
    }

    pub(super) fn record(&mut self, frame: &Frame) {
        let now = Instant::now();
        self.bytes_received += frame.data.len() as u64;
        // Frame rate, bitrate, codec and the timeline are the video's.
        let Some(params) = frame.video() else {
            if let Some(a) = frame.audio()
                && self.audio.as_ref() != Some(a)
            {
                self.audio = Some(a.clone());
            }
            return;
        };
        self.frames_received += 1;
        self.recent.push_back((now, frame.data.len()));
        self.trim(now);
        self.session_start.get_or_insert(now);
        self.last_frame_at = Some(SystemTime::now());
        self.latest_dts = Some(frame.dts);
        if self.params.as_ref() != Some(params) {
            self.params = Some(params.clone());
        }
    }

    fn trim(&mut self, now: Instant) {
        while let Some(&(t, _)) = self.recent.front() {
            if now.duration_since(t) > WINDOW {
                self.recent.pop_front();
            } else {
                break;
            }
        }
    }

    pub(super) fn begin_session(&mut self) {
        self.session_start = None;
        self.recent.clear();
    }

    pub(super) fn latest_dts(&self) -> Option<i64> {
        self.latest_dts
    }

    pub(super) fn audio(&self) -> Option<Arc<AudioParams>> {
        self.audio.clone()
    }

    pub(super) fn snapshot(&self, dropped_frames: u64) -> HubStats {
        let now = Instant::now();
        let (mut frames, mut bytes) = (0usize, 0usize);
        for &(t, b) in &self.recent {
            if now.duration_since(t) <= WINDOW {
                frames += 1;
                bytes += b;
            }
        }
        // Early in a session the window is shorter than WINDOW; dividing by the full window
        // would under-report for the first seconds.
        // (counting intervals between frames then, not frames).
        let session = self.session_start.map(|s| now.duration_since(s));
        let (count, span) = match session {
            Some(d) if d < WINDOW => (frames.saturating_sub(1), d),
            _ => (frames, WINDOW),
        };
        let secs = span.as_secs_f64();
        let (fps, bitrate_kbps) = if count == 0 || secs <= 0.0 {
            (0.0, 0.0)
        } else {
            (count as f64 / secs, bytes as f64 * 8.0 / secs / 1000.0)
        };
        HubStats {
            frames_received: self.frames_received,
            bytes_received: self.bytes_received,
            fps: (fps * 10.0).round() / 10.0,
            bitrate_kbps: bitrate_kbps.round(),
            dropped_frames,
            uptime_seconds: self
                .session_start
                .map(|s| now.duration_since(s).as_secs())
                .unwrap_or(0),
            last_frame_at: self.last_frame_at,
            params: self.params.clone(),
        }
    }
}
