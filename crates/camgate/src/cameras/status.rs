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
    /// Present for a camera with `record: true`: the recorder's own state and last error
    /// (recording errors never touch `last_error` above).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording: Option<RecordingStatus>,
}

/// What the recorder is doing for one stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordingState {
    /// Waiting for the first keyframe (camera connecting or down).
    Waiting,
    /// Frames are going to disk.
    Recording,
    /// The disk is full: nothing is written until retention frees space (live video goes on).
    DiskFull,
    /// Writing failed for another reason; retried by itself.
    Error,
}

impl RecordingState {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordingState::Waiting => "waiting",
            RecordingState::Recording => "recording",
            RecordingState::DiskFull => "disk_full",
            RecordingState::Error => "error",
        }
    }
}

/// The `recording` object of a camera's status and of the `recording` event.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RecordingStatus {
    pub state: RecordingState,
    /// Bytes of this stream's recordings on disk (the file being written included).
    pub bytes: u64,
    /// RFC 3339 start of the oldest recording kept, and end of the newest.
    pub oldest: Option<String>,
    pub newest: Option<String>,
    /// Files removed by retention or DELETE since start.
    pub removed_files: u64,
    /// The recorder's last failure (a full disk, an I/O error), kept after recovery.
    pub last_error: Option<String>,
}

/// Every recorded stream's [`RecordingStatus`], by stream path: written by the recorder, read
/// by the camera status, `/health` and `/metrics`. Cheap to clone; clones share the board.
#[derive(Clone, Default)]
pub struct RecordingBoard {
    inner: std::sync::Arc<std::sync::RwLock<std::collections::BTreeMap<String, RecordingStatus>>>,
}

impl RecordingBoard {
    pub fn get(&self, stream_path: &str) -> Option<RecordingStatus> {
        let map = self.inner.read().unwrap_or_else(|p| p.into_inner());
        map.get(stream_path).cloned()
    }

    /// Changes one stream's status in place (created as `waiting` if absent); returns the new one.
    pub fn update(
        &self,
        stream_path: &str,
        f: impl FnOnce(&mut RecordingStatus),
    ) -> RecordingStatus {
        let mut map = self.inner.write().unwrap_or_else(|p| p.into_inner());
        let entry = map
            .entry(stream_path.to_owned())
            .or_insert_with(|| RecordingStatus {
                state: RecordingState::Waiting,
                bytes: 0,
                oldest: None,
                newest: None,
                removed_files: 0,
                last_error: None,
            });
        f(entry);
        entry.clone()
    }

    pub fn remove(&self, stream_path: &str) {
        let mut map = self.inner.write().unwrap_or_else(|p| p.into_inner());
        map.remove(stream_path);
    }

    /// Every stream's status, by path.
    pub fn all(&self) -> Vec<(String, RecordingStatus)> {
        let map = self.inner.read().unwrap_or_else(|p| p.into_inner());
        map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// `/health` warnings: streams whose recording is stopped by the disk or an error.
    pub fn warnings(&self) -> Vec<String> {
        self.all()
            .into_iter()
            .filter(|(_, s)| matches!(s.state, RecordingState::DiskFull | RecordingState::Error))
            .map(|(path, s)| {
                format!(
                    "recording {path}: {}{}; live video is unaffected",
                    s.state.as_str(),
                    s.last_error.map(|e| format!(" ({e})")).unwrap_or_default()
                )
            })
            .collect()
    }
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
            recording: None,
        }
    }
}
