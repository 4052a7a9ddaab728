//! The one place the WebRTC output touches the house: the stream registry and handle
//! (`hub`), the shared refusals (`http::refuse`) and the task group (`tasks`). It owns
//! nothing; it translates them into the few calls the sessions make.

use std::sync::Arc;
use std::time::Duration;

use media::{CodecParams, Frame};

pub use crate::http::AppError;
use crate::http::refuse::{check_stream_path, stream_not_found, too_many_viewers};
use crate::hub::Protocol;
pub use crate::hub::{Consumer, ViewerGuard};
use crate::tasks::Tasks;

/// What the output tells the rest of the gateway about a session (the app turns it into a
/// `webrtc` event on the bus; this output does not know the bus).
#[derive(Clone, Debug, PartialEq)]
pub struct SessionReport {
    pub camera_id: String,
    pub stream_path: String,
    pub session: String,
    /// `started` or `ended`.
    pub action: &'static str,
    /// Why it ended (`None` when it started).
    pub reason: Option<String>,
    pub seconds: u64,
    pub bytes_sent: u64,
    pub nacks: u64,
    pub plis: u64,
    pub firs: u64,
    pub rtt_ms: Option<f64>,
}

pub type Announce = Arc<dyn Fn(SessionReport) + Send + Sync>;

/// Every stream the gateway serves, as this output needs them.
#[derive(Clone)]
pub struct Registry {
    streams: Arc<crate::hub::Registry>,
    start_timeout: Duration,
    tasks: Tasks,
    announce: Option<Announce>,
}

impl Registry {
    pub fn new(
        streams: Arc<crate::hub::Registry>,
        start_timeout: Duration,
        tasks: Tasks,
    ) -> Registry {
        Registry {
            streams,
            start_timeout,
            tasks,
            announce: None,
        }
    }

    /// Where session starts and ends are reported.
    pub fn with_announce(mut self, announce: Announce) -> Registry {
        self.announce = Some(announce);
        self
    }

    pub fn announce(&self, report: SessionReport) {
        if let Some(a) = &self.announce {
            a(report);
        }
    }

    /// The stream for a path (or camera id), or the shared 400/404 answer.
    pub fn get(&self, path: &str) -> Result<LiveStream, AppError> {
        check_stream_path(path)?;
        let stream = self
            .streams
            .get(path)
            .ok_or_else(|| stream_not_found(path))?;
        Ok(LiveStream {
            stream,
            streams: self.streams.clone(),
        })
    }

    /// How long an on-demand camera may take to send its first keyframe.
    pub fn start_timeout(&self) -> Duration {
        self.start_timeout
    }

    /// Runs a task of this output in the app's task group.
    pub fn spawn(&self, name: String, fut: impl std::future::Future<Output = ()> + Send + 'static) {
        self.tasks.spawn(name, fut);
    }
}

/// One stream as this output sees it.
#[derive(Clone)]
pub struct LiveStream {
    stream: crate::hub::LiveStream,
    streams: Arc<crate::hub::Registry>,
}

impl LiveStream {
    pub fn path(&self) -> String {
        self.stream.path()
    }

    pub fn camera_id(&self) -> String {
        self.stream.camera_id()
    }

    /// Counts one WebRTC viewer (which also keeps an on-demand camera connected), or the
    /// shared 429 answer.
    pub fn join(&self) -> Result<ViewerGuard, AppError> {
        self.stream
            .join(Protocol::Webrtc)
            .map_err(|e| too_many_viewers(&self.path(), e.max))
    }

    /// Frames from the cached keyframe on.
    pub fn subscribe(&self) -> Consumer {
        self.stream.subscribe()
    }

    /// The newest frame's decode time, to measure how far behind a session is.
    pub fn latest_dts(&self) -> Option<i64> {
        self.stream.hub().latest_dts()
    }

    pub fn add_bytes_sent(&self, n: u64) {
        self.streams.add_bytes_sent(n);
    }
}

/// A frame's video parameters, `None` for a frame of another track.
pub fn video(frame: &Frame) -> Option<&CodecParams> {
    frame.video().map(|p| &**p)
}
