//! The one place the WebRTC output touches camgate's live path and HTTP plumbing (today:
//! `streams::Streams`, `CameraRuntime`, `hub::Consumer`, `api::AppError`, viewers). When the
//! house lands (`hub::Registry`, `hub::LiveStream`, `http::refuse`), only this file changes.
//! It owns nothing; it translates.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use media::{CodecParams, Frame};

pub use crate::api::AppError;
pub use crate::hub::Consumer;
pub use crate::streams::ViewerGuard;
use crate::streams::{CameraRuntime, Protocol, Streams};

/// Every stream the gateway serves (later `hub::Registry`).
#[derive(Clone)]
pub struct Registry {
    streams: Arc<Streams>,
}

impl Registry {
    pub fn new(streams: Arc<Streams>) -> Registry {
        Registry { streams }
    }

    /// The stream for a path (or camera id), or the shared 404 answer.
    pub fn get(&self, path: &str) -> Result<LiveStream, AppError> {
        crate::cameras::validate_stream_path(path)
            .map_err(|e| AppError::bad_request("invalid_stream_path", e.message))?;
        let rt = self.streams.by_path(path).ok_or_else(|| {
            AppError::new(
                StatusCode::NOT_FOUND,
                "stream_not_found",
                format!("no camera has stream path or id {path:?}; see GET /streams"),
            )
        })?;
        Ok(LiveStream {
            rt,
            streams: self.streams.clone(),
        })
    }

    /// How long an on-demand camera may take to send its first keyframe.
    pub fn start_timeout(&self) -> Duration {
        self.streams.settings().start_timeout
    }
}

/// One stream as an output sees it (later `hub::LiveStream`).
#[derive(Clone)]
pub struct LiveStream {
    rt: Arc<CameraRuntime>,
    streams: Arc<Streams>,
}

impl LiveStream {
    pub fn path(&self) -> String {
        self.rt.stream_path()
    }

    pub fn camera_id(&self) -> String {
        self.rt.camera_id()
    }

    /// Counts one WebRTC viewer (which also keeps an on-demand camera connected), or the
    /// shared 429 answer.
    pub fn join(&self) -> Result<ViewerGuard, AppError> {
        self.rt.viewers().join(Protocol::Webrtc).map_err(|e| {
            AppError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_viewers",
                format!(
                    "stream {} already has {} viewers (max_viewers_per_stream)",
                    self.path(),
                    e.max
                ),
            )
        })
    }

    /// Frames from the cached keyframe on.
    pub fn subscribe(&self) -> Consumer {
        self.rt.hub().subscribe()
    }

    /// The newest frame's decode time, to measure how far behind a session is.
    pub fn latest_dts(&self) -> Option<i64> {
        self.rt.hub().latest_dts()
    }

    pub fn add_bytes_sent(&self, n: u64) {
        self.streams.add_bytes_sent(n);
    }
}

/// A frame's video parameters, `None` for a frame of another track (the house's
/// `Frame::video()`; today every frame is video).
pub fn video(frame: &Frame) -> Option<&CodecParams> {
    Some(&frame.params)
}
