//! `/recordings/{path}/frame.jpg?at=T`: a recorded instant as JPEG. The frames come from
//! whatever keeps recordings, through the hub's [`RecordedVideo`] seam (app.rs hands the
//! recorder over; snapshots never import it): the keyframe before `T` and the frames after it
//! up to `T`, decoded with a decoder of their own (the warm ones follow the live edge) and
//! encoded like a live snapshot. The last few answers are kept: a report or a page asking for
//! the same instant again decodes once.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use bytes::Bytes;

use super::decode::{DecodeError, H264Decoder};
use super::{Jpeg, Snapshots, decode_error, scaled_jpeg};
use crate::http::AppError;
use crate::hub::{RecordedError, RecordedVideo};

/// Recorded JPEGs kept (by stream, frame, width and quality).
const KEPT: usize = 8;

/// The seam's other end and the last answers.
#[derive(Default)]
pub struct Recorded {
    source: std::sync::OnceLock<Arc<dyn RecordedVideo>>,
    kept: Mutex<VecDeque<(String, Jpeg)>>,
}

impl Recorded {
    pub fn set_source(&self, source: Arc<dyn RecordedVideo>) {
        let _ = self.source.set(source);
    }

    fn kept(&self, key: &str) -> Option<Jpeg> {
        let kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.iter().find(|(k, _)| k == key).map(|(_, j)| j.clone())
    }

    fn keep(&self, key: String, jpeg: Jpeg) {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        kept.retain(|(k, _)| *k != key);
        kept.push_front((key, jpeg));
        kept.truncate(KEPT);
    }
}

impl Snapshots {
    /// Hands snapshots the recorded video (app.rs, once, after both are built).
    pub fn set_recordings(&self, source: Arc<dyn RecordedVideo>) {
        self.recorded.set_source(source);
    }

    /// The recorded frame of `path` showing at `at_ms` (Unix ms), as JPEG.
    pub async fn recorded_frame(
        &self,
        path: &str,
        at_ms: i64,
        width: Option<u32>,
        quality: u8,
    ) -> Result<Jpeg, AppError> {
        self.recorded_inner(path, at_ms, width, quality).await
    }

    async fn recorded_inner(
        &self,
        path: &str,
        at_ms: i64,
        width: Option<u32>,
        quality: u8,
    ) -> Result<Jpeg, AppError> {
        let source = self.recorded.source.get().ok_or_else(|| {
            AppError::new(
                StatusCode::NOT_FOUND,
                "nothing_recorded",
                "recordings are not available in this process",
            )
        })?;
        let got = source
            .frames_at(path, at_ms)
            .await
            .map_err(recorded_error)?;
        let frames = got.frames;
        let (Some(first), Some(last)) = (frames.first(), frames.last()) else {
            return Err(recorded_error(RecordedError::NothingThere(format!(
                "nothing is recorded on {path:?} at that time"
            ))));
        };
        // The frame is named by its stream, its keyframe and itself: the same instant asked
        // twice (or two instants showing the same frame) is one decode.
        let key = format!(
            "{path}|{}|{}|{}|{}",
            first.dts,
            last.dts,
            width.unwrap_or(0),
            quality
        );
        let wallclock = last.wallclock;
        if let Some(jpeg) = self.recorded.kept(&key) {
            self.count_cache_hit();
            return Ok(jpeg);
        }
        let params = first.video().cloned().ok_or_else(super::no_video)?;
        let mut decoder = H264Decoder::new(params).map_err(decode_error)?;
        let permit = self.decode_permit().await?;
        let started = std::time::Instant::now();
        let outcome = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let (decoded, n) = decoder.feed(&frames)?;
            let jpeg = scaled_jpeg(&decoded.picture, width, quality)?;
            Ok::<_, DecodeError>((n, jpeg))
        })
        .await;
        self.observe_decode(started.elapsed());
        let (n, jpeg) = outcome
            .map_err(|_| {
                AppError::internal("decode_failed", "decoding the frame failed unexpectedly")
            })?
            .map_err(decode_error)?;
        self.count_decode(n);
        let jpeg = Jpeg {
            data: Bytes::from(jpeg),
            wallclock,
        };
        self.recorded.keep(key, jpeg.clone());
        Ok(jpeg)
    }
}

fn recorded_error(e: RecordedError) -> AppError {
    match e {
        RecordedError::NothingThere(m) => {
            AppError::new(StatusCode::NOT_FOUND, "nothing_recorded", m)
        }
        RecordedError::UnsupportedCodec(codec) => super::unsupported(&codec),
        RecordedError::Unreadable(m) => {
            AppError::new(StatusCode::UNPROCESSABLE_ENTITY, "recording_unreadable", m)
        }
        RecordedError::Storage(m) => AppError::internal("storage_error", m),
    }
}
