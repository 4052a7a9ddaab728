//! Recorded access units read back for other outputs, through the hub's [`RecordedVideo`]
//! seam (snapshots' `/recordings/{path}/frame.jpg`): the index row of the file covering a time,
//! that file's video samples (`export::scan`, up to its indexed length), and the bytes of the
//! samples from the keyframe before the time up to the frame showing at it. Owns nothing but
//! this reading; it never decodes.

use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use media::{Codec, CodecParams, TrackParams};

use super::Recorder;
use super::export;
use super::store::Store;
use crate::db::recordings::{self, RecordingFile};
use crate::hub::recorded::RecordedFuture;
use crate::hub::{RecordedError, RecordedFrames, RecordedVideo};

/// What one request may read: a GOP of 10 s at 60 fps, or 64 MiB (the hub's GOP bound), so a
/// recording without keyframes cannot make a request read a whole file into memory.
const MAX_FRAMES: usize = 600;
const MAX_BYTES: u64 = 64 << 20;

impl RecordedVideo for Recorder {
    fn frames_at<'a>(&'a self, stream_path: &'a str, at_ms: i64) -> RecordedFuture<'a> {
        Box::pin(frames_at(self.store.clone(), stream_path.to_owned(), at_ms))
    }
}

async fn frames_at(
    store: Arc<Store>,
    path: String,
    at_ms: i64,
) -> Result<RecordedFrames, RecordedError> {
    let p = path.clone();
    let rows = store
        .db
        .recordings(move |c| recordings::overlapping(c, &p, at_ms, at_ms.saturating_add(1)))
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "recording index failed");
            RecordedError::Storage(
                "the recording index could not be read; see the server log".into(),
            )
        })?;
    // The newest file that started at or before the time (two overlap only by a few ms at a
    // file change).
    let Some(row) = rows.into_iter().rfind(|r| r.start_ms <= at_ms) else {
        return Err(nothing(&path));
    };
    let fs_path = store.file_path(&row);
    tokio::task::spawn_blocking(move || read_frames(&fs_path, &row, at_ms, &path))
        .await
        .map_err(|_| RecordedError::Storage("reading the recording failed unexpectedly".into()))?
}

fn nothing(path: &str) -> RecordedError {
    RecordedError::NothingThere(format!(
        "nothing is recorded on {path:?} at that time; see GET /recordings/{path} for the ranges"
    ))
}

fn read_frames(
    fs_path: &std::path::Path,
    row: &RecordingFile,
    at_ms: i64,
    path: &str,
) -> Result<RecordedFrames, RecordedError> {
    let unreadable = |why: String| {
        tracing::debug!(file = %fs_path.display(), why, "recorded frame unreadable");
        RecordedError::Unreadable(format!(
            "the recording of {path:?} at that time cannot be read: {why}"
        ))
    };
    // A file retention removed since the index was read: nothing there any more.
    let scanned = match export::scan(fs_path, row.bytes) {
        Ok(Some(s)) => s,
        Ok(None) => return Err(unreadable("no video track".into())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(nothing(path)),
        Err(e) => return Err(unreadable(e.to_string())),
    };
    match scanned.track.codec {
        Some(Codec::H264) => {}
        Some(Codec::H265) => return Err(RecordedError::UnsupportedCodec("h265".into())),
        None => return Err(RecordedError::UnsupportedCodec(row.codec.clone())),
    }
    let params = Arc::new(
        CodecParams::from_avcc(&scanned.track.decoder_config)
            .map_err(|e| unreadable(e.to_string()))?,
    );
    let samples = &scanned.samples;
    let Some(first) = samples.first() else {
        return Err(nothing(path));
    };
    let ts = u64::from(scanned.track.timescale.max(1));
    let wall = |dts: u64| row.start_ms + ((dts.saturating_sub(first.dts)) * 1000 / ts) as i64;
    // The frame showing at `at_ms`: the last that starts at or before it, if it has not ended
    // (past the last flushed frame nothing is known yet).
    let Some(k) = samples.iter().rposition(|s| wall(s.dts) <= at_ms) else {
        return Err(nothing(path));
    };
    let last = &samples[k];
    if k + 1 == samples.len() && wall(last.dts + u64::from(last.duration.max(1))) <= at_ms {
        return Err(nothing(path));
    }
    let Some(key) = samples[..=k].iter().rposition(|s| s.keyframe()) else {
        return Err(unreadable(
            "no keyframe before that time in its file".into(),
        ));
    };
    let run = &samples[key..=k];
    let bytes: u64 = run.iter().map(|s| u64::from(s.size)).sum();
    if run.len() > MAX_FRAMES || bytes > MAX_BYTES {
        return Err(unreadable(format!(
            "{} frames ({bytes} bytes) since the keyframe, more than one request reads",
            run.len()
        )));
    }
    let file = std::fs::File::open(fs_path).map_err(|e| unreadable(e.to_string()))?;
    let to_timescale = |t: i64| (i128::from(t) * i128::from(media::TIMESCALE) / ts as i128) as i64;
    let mut frames = Vec::with_capacity(run.len());
    for s in run {
        let mut data = vec![0u8; s.size as usize];
        file.read_exact_at(&mut data, s.offset)
            .map_err(|e| unreadable(e.to_string()))?;
        let dts = to_timescale(s.dts as i64);
        frames.push(media::Frame {
            data: Bytes::from(data),
            pts: to_timescale(s.pts()),
            dts,
            keyframe: s.keyframe(),
            params: TrackParams::Video(params.clone()),
            wallclock: SystemTime::UNIX_EPOCH + Duration::from_millis(wall(s.dts).max(0) as u64),
        });
    }
    Ok(RecordedFrames { frames })
}
