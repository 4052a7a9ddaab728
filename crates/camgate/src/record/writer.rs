//! One recorded stream's writer: frames from the hub become fMP4 files (init segment, then
//! fragments of at most about a second, each starting a new one at a keyframe), one file per
//! `file_duration` cut at a keyframe, a new file on a codec or resolution change, a gap, a
//! stream path change, or when retention asks. File I/O runs on the blocking pool (std::fs);
//! the file is fsynced every `flush_interval` and only then is its index row moved forward,
//! so the index never promises bytes the disk may not hold.
//!
//! A write that fails (a full disk above all) closes the file at its last whole fragment,
//! puts the stream's recording in `disk_full` or `error` with its own last error, and is
//! retried at a keyframe a second later: the live path and its viewers never notice.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use media::{CodecParams, Frame, TIMESCALE, fmp4};

use super::store::{Store, io_err, sync_dir};
use crate::cameras::RecordingState;
use crate::db::recordings::{self, FileState, RecordingFile};

/// Longest fragment (90 kHz): about one second.
const FRAGMENT_TICKS: i64 = TIMESCALE as i64;
/// A decode-time jump larger than this (or backwards) is a gap: the file ends there.
const GAP_TICKS: i64 = 3 * TIMESCALE as i64;
/// After a failed write, the next attempt waits at least this long.
const RETRY_AFTER: Duration = Duration::from_secs(1);

struct OpenFile {
    /// `None` only while a blocking operation holds it.
    file: Option<File>,
    row: RecordingFile,
    params: Arc<CodecParams>,
    first_dts: i64,
    seq: u32,
    /// Bytes written so far: whole fragments only.
    written: u64,
    written_end_dts: i64,
    written_samples: u64,
    synced_at: Instant,
    /// Bytes written but not yet fsynced.
    dirty: bool,
}

pub struct StreamWriter {
    store: Arc<Store>,
    camera_id: String,
    path: String,
    open: Option<OpenFile>,
    pending: Vec<Frame>,
    last_dts: Option<i64>,
    last_delta: i64,
    retry_at: Option<Instant>,
}

fn disk_full(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::StorageFull
        || e.kind() == io::ErrorKind::QuotaExceeded
        || e.raw_os_error() == Some(libc::ENOSPC)
}

impl StreamWriter {
    pub fn new(store: Arc<Store>, camera_id: String, path: String) -> StreamWriter {
        store.board.update(&path, |s| {
            if s.state == RecordingState::Recording {
                s.state = RecordingState::Waiting;
            }
        });
        StreamWriter {
            store,
            camera_id,
            path,
            open: None,
            pending: Vec::new(),
            last_dts: None,
            last_delta: 3000,
            retry_at: None,
        }
    }

    /// The stream's path changed (re-provisioned): later files go to the new folder.
    pub async fn set_path(&mut self, path: &str) {
        if path != self.path {
            self.finish().await;
            self.path = path.to_owned();
        }
    }

    pub async fn push(&mut self, frame: Frame) {
        let Some(params) = frame.video().cloned() else {
            return; // video only (docs/recording.md)
        };
        if let Some(last) = self.last_dts {
            let delta = frame.dts - last;
            if delta <= 0 || delta > GAP_TICKS {
                let end = last + self.last_delta;
                self.finish_at(end).await;
                self.last_dts = None;
            } else {
                self.last_delta = delta;
            }
        }
        if let Some(open) = &self.open {
            let changed = !Arc::ptr_eq(&open.params, &params) && *open.params != *params;
            let long = frame.dts - open.first_dts
                >= (self.store.config.file_duration.as_secs_f64() * f64::from(TIMESCALE)) as i64;
            if changed || (frame.keyframe && (long || self.store.take_cut(&self.path))) {
                self.finish_at(frame.dts).await;
            }
        }
        if self.open.is_none() {
            if !frame.keyframe || self.retry_at.is_some_and(|t| Instant::now() < t) {
                self.last_dts = None;
                return;
            }
            // A cut asked for before the file existed is already done.
            self.store.take_cut(&self.path);
            if !self.start_file(&frame, &params).await {
                return;
            }
        }
        let cut_fragment = self
            .pending
            .first()
            .is_some_and(|first| frame.keyframe || frame.dts - first.dts >= FRAGMENT_TICKS);
        if cut_fragment && !self.write_pending(frame.dts).await {
            return;
        }
        self.last_dts = Some(frame.dts);
        self.pending.push(frame);
    }

    /// No frame for a while: what is pending goes to disk and is flushed, the file stays open.
    pub async fn idle(&mut self) {
        if let Some(last) = self.last_dts
            && !self.pending.is_empty()
        {
            let end = last + self.last_delta;
            if !self.write_pending(end).await {
                return;
            }
        }
        self.sync_and_index(false).await;
    }

    /// Closes the open file (recording stops or the stream ends).
    pub async fn finish(&mut self) {
        if let Some(last) = self.last_dts {
            self.finish_at(last + self.last_delta).await;
        }
        self.last_dts = None;
    }

    async fn finish_at(&mut self, end_dts: i64) {
        if self.open.is_none() {
            self.pending.clear();
            return;
        }
        if !self.pending.is_empty() && !self.write_pending(end_dts).await {
            return;
        }
        if self.sync_and_index(true).await {
            let bytes = self.open.as_ref().map_or(0, |o| o.written);
            self.open = None;
            // A closed file may be what puts the stream over a limit: check now.
            self.store.wake_retention();
            self.store.refresh_board().await;
            self.store.announce(
                &self.camera_id,
                &self.path,
                &format!("file written ({bytes} bytes)"),
            );
        }
        self.open = None;
    }

    async fn start_file(&mut self, frame: &Frame, params: &Arc<CodecParams>) -> bool {
        let init = match fmp4::init_segment(params) {
            Ok(b) => b,
            Err(e) => {
                // A camera whose parameter sets our muxer refuses: nothing to record.
                self.failed(
                    RecordingState::Error,
                    format!("cannot write an init segment: {e}"),
                )
                .await;
                return false;
            }
        };
        let wall_ms = frame
            .wallclock
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let dir = self.store.stream_dir(&self.path);
        let opened = tokio::task::spawn_blocking(move || create_file(&dir, wall_ms, &init))
            .await
            .unwrap_or_else(|e| Err(io::Error::other(e.to_string())));
        let (file, file_name, start_ms, init_len) = match opened {
            Ok(v) => v,
            Err(e) => {
                let state = if disk_full(&e) {
                    RecordingState::DiskFull
                } else {
                    RecordingState::Error
                };
                self.failed(state, format!("cannot create a recording file: {e}"))
                    .await;
                return false;
            }
        };
        let mut row = RecordingFile {
            id: 0,
            stream_path: self.path.clone(),
            camera_id: self.camera_id.clone(),
            file_name,
            start_ms,
            end_ms: start_ms,
            bytes: init_len,
            init_bytes: init_len,
            samples: 0,
            codec: params.rfc6381.clone(),
            width: u32::from(params.width),
            height: u32::from(params.height),
            state: FileState::Writing,
        };
        let insert = row.clone();
        match self
            .store
            .db
            .recordings(move |c| recordings::insert(c, &insert))
            .await
        {
            Ok(id) => row.id = id,
            Err(e) => {
                tracing::warn!(error = %e, "cannot index a new recording file");
                let path = self.store.file_path(&row);
                let _ = tokio::task::spawn_blocking(move || fs::remove_file(path)).await;
                self.failed(RecordingState::Error, format!("recording index: {e}"))
                    .await;
                return false;
            }
        }
        self.open = Some(OpenFile {
            file: Some(file),
            row,
            params: params.clone(),
            first_dts: frame.dts,
            seq: 0,
            written: init_len,
            written_end_dts: frame.dts,
            written_samples: 0,
            synced_at: Instant::now(),
            dirty: false,
        });
        self.retry_at = None;
        let was = self.store.board.get(&self.path).map(|s| s.state);
        self.store
            .board
            .update(&self.path, |s| s.state = RecordingState::Recording);
        if was != Some(RecordingState::Recording) {
            self.store.refresh_board().await;
            self.store
                .announce(&self.camera_id, &self.path, "recording started");
        }
        true
    }

    /// Writes the pending frames as one fragment ending at `end_dts`; fsyncs and indexes when
    /// the flush interval has passed. `false` when the write failed (the file is closed).
    async fn write_pending(&mut self, end_dts: i64) -> bool {
        let frames = std::mem::take(&mut self.pending);
        let Some(open) = self.open.as_mut() else {
            return false;
        };
        open.seq = open.seq.wrapping_add(1);
        let chunks = match fmp4::fragment(open.seq, &frames, end_dts) {
            Ok(c) => c,
            Err(e) => {
                // Timestamps the muxer refuses: this fragment is lost, the file goes on.
                tracing::debug!(error = %e, "fragment skipped");
                return true;
            }
        };
        let len = fmp4::chunks_len(&chunks) as u64;
        if !self.on_file(move |file| write_chunks(file, &chunks)).await {
            return false;
        }
        let Some(open) = self.open.as_mut() else {
            return false;
        };
        open.written += len;
        open.written_end_dts = end_dts;
        open.written_samples += frames.len() as u64;
        open.dirty = true;
        if open.synced_at.elapsed() >= self.store.config.flush_interval {
            return self.sync_and_index(false).await;
        }
        true
    }

    /// Runs `op` on the open file in the blocking pool (std::fs blocks). False when there is
    /// no open file, when the pool is gone (shutdown: the row keeps what was fsynced, the file
    /// is dropped) or when `op` failed (then the failure is reported as the recording's).
    async fn on_file(
        &mut self,
        op: impl FnOnce(&mut File) -> io::Result<()> + Send + 'static,
    ) -> bool {
        let Some(mut file) = self.open.as_mut().and_then(|o| o.file.take()) else {
            return false;
        };
        let Ok((file, result)) = tokio::task::spawn_blocking(move || {
            let r = op(&mut file);
            (file, r)
        })
        .await
        else {
            self.open = None;
            return false;
        };
        // Nothing between the take and here clears `self.open`.
        let Some(open) = self.open.as_mut() else {
            return false;
        };
        open.file = Some(file);
        if let Err(e) = result {
            self.write_failed(e).await;
            return false;
        }
        true
    }

    /// fsync the file, then move its row to what is on disk (and close it when `complete`).
    async fn sync_and_index(&mut self, complete: bool) -> bool {
        let Some(open) = self.open.as_mut() else {
            return true;
        };
        if (open.dirty || complete) && !self.on_file(|file| file.sync_data()).await {
            return false;
        }
        let Some(open) = self.open.as_mut() else {
            return false;
        };
        open.synced_at = Instant::now();
        open.dirty = false;
        open.row.bytes = open.written;
        open.row.samples = open.written_samples;
        open.row.end_ms = open.row.start_ms
            + (open.written_end_dts - open.first_dts).max(0) * 1000 / i64::from(TIMESCALE);
        if complete {
            open.row.state = FileState::Complete;
        }
        let row = open.row.clone();
        if let Err(e) = self
            .store
            .db
            .recordings(move |c| recordings::update(c, &row))
            .await
        {
            tracing::warn!(error = %e, "cannot update the recording index");
        }
        true
    }

    /// A write or fsync failed: cut the file back to its last whole, indexed fragment, close
    /// it, and say why.
    async fn write_failed(&mut self, e: io::Error) {
        let state = if disk_full(&e) {
            RecordingState::DiskFull
        } else {
            RecordingState::Error
        };
        if let Some(mut open) = self.open.take() {
            let keep = open.row.bytes;
            let path = self.store.file_path(&open.row);
            let file = open.file.take();
            let _ = tokio::task::spawn_blocking(move || {
                if let Some(f) = file {
                    let _ = f.set_len(keep);
                    let _ = f.sync_all();
                }
                drop(path);
            })
            .await;
            open.row.state = FileState::Complete;
            let row = open.row.clone();
            let _ = self
                .store
                .db
                .recordings(move |c| recordings::update(c, &row))
                .await;
        }
        self.pending.clear();
        self.failed(state, format!("writing a recording failed: {e}"))
            .await;
    }

    async fn failed(&mut self, state: RecordingState, message: String) {
        tracing::warn!(stream = %self.path, error = %message, "recording stopped");
        self.retry_at = Some(Instant::now() + RETRY_AFTER);
        self.last_dts = None;
        if state == RecordingState::DiskFull {
            self.store
                .figures
                .disk_full
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.store.wake_retention();
        }
        let was = self.store.board.get(&self.path);
        self.store.board.update(&self.path, |s| {
            s.state = state;
            s.last_error = Some(message.clone());
        });
        if was.is_none_or(|w| w.state != state || w.last_error.as_deref() != Some(&message)) {
            self.store
                .announce(&self.camera_id, &self.path, state.as_str());
        }
    }
}

fn write_chunks(file: &mut File, chunks: &[Bytes]) -> io::Result<()> {
    for c in chunks {
        file.write_all(c)?;
    }
    Ok(())
}

/// Creates `{dir}/{start_ms}.mp4` (the next free millisecond if taken) with the init segment,
/// fsynced together with its folder. Returns the file, its name, its start and init length.
fn create_file(
    dir: &std::path::Path,
    wall_ms: i64,
    init: &[u8],
) -> io::Result<(File, String, i64, u64)> {
    if !dir.exists() {
        fs::create_dir_all(dir)?;
        if let Some(parent) = dir.parent() {
            sync_dir(parent)?;
        }
    }
    let mut start = wall_ms;
    for _ in 0..1000 {
        let name = format!("{start}.mp4");
        let path = dir.join(&name);
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut f) => {
                let written = f.write_all(init).and_then(|()| f.sync_all());
                if let Err(e) = written.and_then(|()| sync_dir(dir)) {
                    let _ = fs::remove_file(&path);
                    return Err(e);
                }
                return Ok((f, name, start, init.len() as u64));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => start += 1,
            Err(e) => return Err(io::Error::new(e.kind(), io_err(&path, e))),
        }
    }
    Err(io::Error::other("no free file name"))
}
