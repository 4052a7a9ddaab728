//! The seam between an output that keeps video on disk and outputs that read it back: the
//! recorder exposes recorded access units through [`RecordedVideo`], snapshots consume them
//! (`/recordings/{path}/frame.jpg`), and app.rs hands one to the other. Outputs never import
//! each other; both import `hub`, so the trait and its types live here. It knows nothing of
//! files, the index or decoding.

use std::future::Future;
use std::pin::Pin;

use media::Frame;

/// The frames needed to show a recorded instant: decode order, a keyframe first, the frame
/// showing at the asked time last. Each `Frame` carries the codec parameters of the
/// recording and its wall-clock time.
#[derive(Clone, Debug)]
pub struct RecordedFrames {
    pub frames: Vec<Frame>,
}

/// Why no frames come back; the messages are for an API answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordedError {
    /// Nothing is recorded at that time on that stream (before the first file, in a gap,
    /// after the last flushed frame, or a stream never recorded).
    #[error("{0}")]
    NothingThere(String),
    /// The recording cannot be read back as frames (another codec, a damaged file, a GOP
    /// too large to read).
    #[error("{0}")]
    Unreadable(String),
    /// The recording is of a codec the reader cannot give as frames (named as the API names
    /// codecs: `h265`).
    #[error("the recording is {0}")]
    UnsupportedCodec(String),
    /// The index or the files could not be read (details are in the server log).
    #[error("{0}")]
    Storage(String),
}

pub type RecordedFuture<'a> =
    Pin<Box<dyn Future<Output = Result<RecordedFrames, RecordedError>> + Send + 'a>>;

/// Recorded video, by stream path and wall-clock time.
pub trait RecordedVideo: Send + Sync {
    /// The frames from the keyframe at or before `at_ms` (Unix ms) to the last frame that
    /// starts at or before it.
    fn frames_at<'a>(&'a self, stream_path: &'a str, at_ms: i64) -> RecordedFuture<'a>;
}
