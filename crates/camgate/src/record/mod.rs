//! Output: continuous recording. For every camera stream provisioned with `record: true` it
//! holds demand (the camera stays connected; a recorder is not a viewer), subscribes to the
//! hub and writes the camera's own frames, never re-encoded, to fMP4 files under
//! `[record] dir` (`{dir}/{stream_path}/{start_ms}.mp4`), indexed in SQLite
//! (`recording_files`); it reconciles disk and index at start, applies retention, reports its
//! state (the `recording` object of a camera's status, `recording` events, `/health`
//! warnings, metrics), and serves the recordings over HTTP (`http.rs`).
//!
//! It owns the recording files, their index rows and the retention of both. It imports
//! `hub`, `media`, `http`, `tasks`, `config`, `db` and the camera model's recording status;
//! never another output, `ingest`, `live` or `api`. Files: `writer.rs` (frames -> files),
//! `store.rs` (removal order, retention pass, reconcile, free space), `retention.rs` (which
//! files go), `boxes.rs` (reading our own fMP4), `export.rs` (export.mp4 from the files'
//! samples), `http.rs` (the routes), `playlist.rs` (VOD HLS and ranges), `frames.rs` (recorded access units for
//! snapshots, through `hub::RecordedVideo`). docs/recording.md is the user's side of it.

mod boxes;
mod export;
mod frames;
pub mod http;
mod playlist;
mod retention;
mod store;
mod writer;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

pub use http::router;
pub use store::{Announce, Reconciled, Store};

use crate::cameras::{RecordingBoard, RecordingState};
use crate::config::RecordConfig;
use crate::db::Db;
use crate::hub::{LiveStream, Output, Registry};
use crate::tasks::Tasks;
use writer::StreamWriter;

/// How often a stream that is not recorded is looked at again (`record` may be switched on).
const SPEC_POLL: Duration = Duration::from_secs(1);

/// The recorder. Cheap to share.
pub struct Recorder {
    store: Arc<Store>,
    registry: Arc<Registry>,
    /// Per-stream writers: they end when their hub closes, so they belong with the cameras'
    /// tasks (a writer closes its file cleanly during shutdown instead of being aborted).
    writer_tasks: Tasks,
    /// Recent export layouts (`export.rs`), so a player's Range requests do not rescan.
    exports: export::PlanCache,
    /// Set once reconcile is done: writers start only then, so reconcile never sees a file
    /// being written by this process.
    ready: watch::Receiver<bool>,
}

impl Recorder {
    /// Builds the recorder and starts, in `service_tasks`, reconcile and then the retention
    /// loop.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        config: &RecordConfig,
        data_dir: &Path,
        db: Db,
        board: RecordingBoard,
        registry: Arc<Registry>,
        announce: Announce,
        service_tasks: &Tasks,
        writer_tasks: Tasks,
    ) -> Arc<Recorder> {
        let store = Store::new(config.clone(), data_dir, db, board, announce);
        let (ready_tx, ready) = watch::channel(false);
        let s = store.clone();
        service_tasks.spawn("recording retention", async move {
            if let Err(e) = tokio::fs::create_dir_all(&s.dir).await {
                tracing::error!(dir = %s.dir.display(), error = %e, "cannot create the recordings folder");
            }
            match s.reconcile().await {
                Ok(r) if r != Reconciled::default() => {
                    tracing::info!(?r, "recordings reconciled with their index")
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "cannot reconcile the recordings"),
            }
            let _ = ready_tx.send(true);
            s.retention_loop().await;
        });
        Arc::new(Recorder {
            store,
            registry,
            writer_tasks,
            exports: export::PlanCache::default(),
            ready,
        })
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }
}

impl Output for Recorder {
    fn attach(&self, stream: &LiveStream) {
        if stream.is_profile() {
            return;
        }
        let follow = Follow {
            store: self.store.clone(),
            registry: self.registry.clone(),
            stream: stream.downgrade(),
            ready: self.ready.clone(),
        };
        self.writer_tasks
            .spawn(format!("recorder {}", stream.path()), follow.run());
    }
}

struct Follow {
    store: Arc<Store>,
    registry: Arc<Registry>,
    stream: crate::hub::WeakStream,
    ready: watch::Receiver<bool>,
}

impl Follow {
    async fn run(mut self) {
        if self.ready.wait_for(|r| *r).await.is_err() {
            return;
        }
        loop {
            let Some(stream) = self.stream.upgrade() else {
                return;
            };
            let camera_id = stream.camera_id();
            if !self
                .registry
                .by_camera(&camera_id)
                .is_some_and(|s| s.same(&stream))
            {
                return; // the camera was deleted or replaced
            }
            let spec = stream.spec();
            if !spec.record {
                drop(stream);
                tokio::time::sleep(SPEC_POLL).await;
                continue;
            }
            if self.record(&stream, camera_id, spec.path).await {
                return;
            }
        }
    }

    /// Records until `record` is switched off (`false`) or the hub closes (`true`).
    async fn record(&self, stream: &LiveStream, camera_id: String, path: String) -> bool {
        let _hold = stream.hold();
        let mut consumer = stream.subscribe();
        let flush = self.store.config.flush_interval;
        let mut w = StreamWriter::new(self.store.clone(), camera_id, path);
        let closed = loop {
            match tokio::time::timeout(flush, consumer.recv()).await {
                Ok(Some(frame)) => {
                    if consumer.take_skips() > 0 {
                        // The recorder fell behind and the hub skipped frames: a gap.
                        w.finish().await;
                    }
                    w.push(frame).await;
                }
                Ok(None) => break true,
                Err(_) => w.idle().await,
            }
            let spec = stream.spec();
            if !spec.record {
                break false;
            }
            w.set_path(&spec.path).await;
        };
        w.finish().await;
        let path = stream.path();
        self.store.board.update(&path, |s| {
            if s.state == RecordingState::Recording {
                s.state = RecordingState::Waiting;
            }
        });
        closed
    }
}
