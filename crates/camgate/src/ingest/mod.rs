//! Sources of frames for a hub, behind one trait so the camera supervisor (live/) and its
//! tests do not care whether frames come from a real RTSP camera or a scripted fake.
//!
//! It owns: the `Source` trait, the classified `IngestError` (what failed, at which stage, and
//! how the runtime should react), and the RTSP implementation (`rtsp`). It must not touch hubs
//! or viewer state: a source only produces frames or an error.

pub mod ffmpeg;
pub mod rtsp;

use std::fmt;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use media::Frame;

pub use crate::cameras::{SecretUrl, Transport};

/// What a source needs to know about its camera.
#[derive(Clone, Debug)]
pub struct SourceSpec {
    pub camera_id: String,
    /// May carry credentials; it redacts itself when printed.
    pub url: SecretUrl,
    pub transport: Transport,
}

/// Frames of one open session. Dropping it ends the session (and tears it down at the camera).
pub type FrameStream = BoxStream<'static, Result<Frame, IngestError>>;

/// A way to open sessions to cameras. Implemented by `rtsp::RtspSource`; tests implement it
/// to inject faults.
pub trait Source: Send + Sync + 'static {
    /// Connects and starts playing; resolves once the camera has accepted PLAY.
    fn open(&self, spec: &SourceSpec) -> BoxFuture<'static, Result<FrameStream, IngestError>>;

    /// Waits, up to `limit`, until the sessions this source closed have been torn down at
    /// their cameras (shutdown calls it so no camera keeps counting a session from us).
    fn wait_teardowns(&self, limit: std::time::Duration) -> BoxFuture<'static, ()> {
        let _ = limit;
        Box::pin(async {})
    }
}

/// How the camera runtime should treat a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// The camera rejected the credentials: retried slowly, an operator must fix it.
    Unauthorized,
    /// Refused, timed out, no route, DNS: the camera (or the network) is not there.
    Unreachable,
    /// No frame for `stall_timeout` while the session looked open.
    Stalled,
    /// Anything else: protocol errors, unsupported media, the camera ending the session.
    Error,
}

/// The step of the RTSP exchange that failed, named as operators know them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Connect,
    Describe,
    Setup,
    Play,
    Data,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Connect => "connect",
            Stage::Describe => "DESCRIBE",
            Stage::Setup => "SETUP",
            Stage::Play => "PLAY",
            Stage::Data => "data",
        })
    }
}

/// A classified failure of a source. `Display` is the human `last_error`: it names the camera
/// and the stage and never contains a password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngestError {
    pub kind: FailureKind,
    pub stage: Stage,
    pub camera_id: String,
    /// Already redacted.
    pub message: String,
}

impl IngestError {
    pub fn new(
        kind: FailureKind,
        stage: Stage,
        camera_id: &str,
        message: impl Into<String>,
    ) -> IngestError {
        IngestError {
            kind,
            stage,
            camera_id: camera_id.to_owned(),
            message: message.into(),
        }
    }
}

impl fmt::Display for IngestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "camera {}: {} failed: {}",
            self.camera_id, self.stage, self.message
        )
    }
}

impl std::error::Error for IngestError {}
