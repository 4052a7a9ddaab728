//! The live state of a camera as the API reports it (`GET /cameras/{id}/status`).
//!
//! Until a camera's runtime exists (the live path), every camera is `idle` with zero counters
//! and no codec: that is the truth, not a placeholder, because nothing is connected.

use serde::Serialize;

use super::Camera;

/// The states a camera's source goes through (see docs/live.md "States"). The names come
/// from [`StreamState::as_str`] alone: the API, events and metrics all use it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamState {
    /// On-demand and nobody watching: the camera is not contacted.
    Idle,
    Starting,
    Live,
    Reconnecting,
    Unauthorized,
    Unreachable,
    Error,
}

impl StreamState {
    /// Every state, in lifecycle order (metrics export one series per state).
    pub const ALL: [StreamState; 7] = [
        StreamState::Idle,
        StreamState::Starting,
        StreamState::Live,
        StreamState::Reconnecting,
        StreamState::Unauthorized,
        StreamState::Unreachable,
        StreamState::Error,
    ];

    /// The state's name in the API, events and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamState::Idle => "idle",
            StreamState::Starting => "starting",
            StreamState::Live => "live",
            StreamState::Reconnecting => "reconnecting",
            StreamState::Unauthorized => "unauthorized",
            StreamState::Unreachable => "unreachable",
            StreamState::Error => "error",
        }
    }
}

impl std::fmt::Display for StreamState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for StreamState {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The body of `GET /cameras/{id}/status`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CameraStatus {
    pub camera_id: String,
    pub stream_path: String,
    pub state: StreamState,
    pub online: bool,
    pub fps: f64,
    pub bitrate_kbps: u64,
    pub dropped_frames: u64,
    pub uptime_seconds: u64,
    pub viewers: u64,
    pub codec: Option<String>,
    pub resolution: Option<String>,
    /// Already redacted: errors from a source may quote its URL.
    pub last_error: Option<String>,
    /// RFC 3339.
    pub last_frame_at: Option<String>,
}

impl CameraStatus {
    /// A camera with no running source: nothing received, nobody watching.
    pub fn idle(camera: &Camera) -> Self {
        CameraStatus {
            camera_id: camera.spec.camera_id.clone(),
            stream_path: camera.spec.stream_path.clone(),
            state: StreamState::Idle,
            online: false,
            fps: 0.0,
            bitrate_kbps: 0,
            dropped_frames: 0,
            uptime_seconds: 0,
            viewers: 0,
            codec: None,
            resolution: None,
            last_error: None,
            last_frame_at: None,
        }
    }
}
