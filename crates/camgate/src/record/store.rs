//! The recordings on disk and their index, together: where a stream's files live, removing
//! files in the durable order (index marks, unlink, fsync the directory, row gone), the
//! retention pass, the start-up reconcile of disk against index, free space (statvfs), and the
//! per-stream [`RecordingBoard`] entries. The per-stream writer (`writer.rs`) writes files; the
//! routes (`http.rs`) read them through this.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::boxes;
use super::retention::{self, CameraLimits, Limits};
use crate::cameras::{RecordingBoard, RecordingStatus};
use crate::config::RecordConfig;
use crate::db::recordings::{self, FileState, RecordingFile};
use crate::db::{Db, DbError};
use crate::timestamps::rfc3339;

/// Tells the rest of the service (the event bus, built by `app`) what the recorder did:
/// `(camera_id, stream_path, status, reason)`.
pub type Announce = Arc<dyn Fn(&str, &str, &RecordingStatus, &str) + Send + Sync>;

/// How often retention runs when nothing wakes it earlier.
const RETENTION_EVERY: Duration = Duration::from_secs(2);

pub struct Store {
    pub dir: PathBuf,
    pub db: Db,
    pub board: RecordingBoard,
    pub config: RecordConfig,
    announce: Announce,
    /// Streams asked to close their open file at the next keyframe (retention).
    cuts: Mutex<HashSet<String>>,
    /// Wakes the retention pass early (a full disk).
    wake: Notify,
    /// Counters for `/metrics`.
    pub figures: Figures,
}

#[derive(Default)]
pub struct Figures {
    pub removed_files: std::sync::atomic::AtomicU64,
    pub removed_bytes: std::sync::atomic::AtomicU64,
    pub disk_full: std::sync::atomic::AtomicU64,
}

pub(super) fn io_err(path: &Path, e: io::Error) -> String {
    format!("{}: {e}", path.display())
}

/// fsync a directory, so a file created or removed in it survives a power cut.
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// Bytes available to us on the filesystem holding `dir`.
pub fn free_space(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized out-parameter.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (rc == 0).then(|| (st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

pub fn ms_rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map(rfc3339)
        .unwrap_or_default()
}

impl Store {
    pub fn new(
        config: RecordConfig,
        data_dir: &Path,
        db: Db,
        board: RecordingBoard,
        announce: Announce,
    ) -> Arc<Store> {
        Arc::new(Store {
            dir: config.dir_in(data_dir),
            db,
            board,
            config,
            announce,
            cuts: Mutex::new(HashSet::new()),
            wake: Notify::new(),
            figures: Figures::default(),
        })
    }

    pub fn stream_dir(&self, stream_path: &str) -> PathBuf {
        self.dir.join(stream_path)
    }

    pub fn file_path(&self, f: &RecordingFile) -> PathBuf {
        self.stream_dir(&f.stream_path).join(&f.file_name)
    }

    pub fn announce(&self, camera_id: &str, stream_path: &str, reason: &str) {
        if let Some(status) = self.board.get(stream_path) {
            (self.announce)(camera_id, stream_path, &status, reason);
        }
    }

    /// Whether retention asked this stream to close its open file (and forgets the ask).
    pub fn take_cut(&self, stream_path: &str) -> bool {
        self.cuts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(stream_path)
    }

    pub fn wake_retention(&self) {
        self.wake.notify_one();
    }

    /// Removes these files: every row is marked first, then the files are unlinked, their
    /// directories fsynced, and only then the rows deleted. Returns the bytes removed.
    pub async fn remove(&self, files: Vec<RecordingFile>) -> Result<u64, DbError> {
        if files.is_empty() {
            return Ok(0);
        }
        let ids: Vec<i64> = files.iter().map(|f| f.id).collect();
        let marked = ids.clone();
        self.db
            .recordings(move |c| {
                for id in &marked {
                    recordings::set_state(c, *id, FileState::Deleting)?;
                }
                Ok(())
            })
            .await?;
        let paths: Vec<PathBuf> = files.iter().map(|f| self.file_path(f)).collect();
        let gone = tokio::task::spawn_blocking(move || {
            let mut dirs = HashSet::new();
            let mut gone = Vec::new();
            for p in &paths {
                match fs::remove_file(p) {
                    Ok(()) => gone.push(true),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => gone.push(true),
                    Err(e) => {
                        tracing::warn!(error = %io_err(p, e), "cannot remove a recording");
                        gone.push(false);
                    }
                }
                if let Some(d) = p.parent() {
                    dirs.insert(d.to_owned());
                }
            }
            for d in dirs {
                if let Err(e) = sync_dir(&d) {
                    tracing::warn!(error = %io_err(&d, e), "cannot fsync a recordings folder");
                }
            }
            gone
        })
        .await
        .map_err(|e| DbError::Task(e.to_string()))?;
        let removed: Vec<i64> = ids
            .iter()
            .zip(&gone)
            .filter(|(_, g)| **g)
            .map(|(id, _)| *id)
            .collect();
        let bytes: u64 = files
            .iter()
            .zip(&gone)
            .filter(|(_, g)| **g)
            .map(|(f, _)| f.bytes)
            .sum();
        let n = removed.len() as u64;
        self.db
            .recordings(move |c| {
                for id in removed {
                    recordings::delete(c, id)?;
                }
                Ok(())
            })
            .await?;
        use std::sync::atomic::Ordering::Relaxed;
        self.figures.removed_files.fetch_add(n, Relaxed);
        self.figures.removed_bytes.fetch_add(bytes, Relaxed);
        let mut per_stream: HashMap<(String, String), u64> = HashMap::new();
        for (f, g) in files.iter().zip(&gone) {
            if *g {
                *per_stream
                    .entry((f.camera_id.clone(), f.stream_path.clone()))
                    .or_default() += 1;
            }
        }
        self.refresh_board().await;
        for ((camera, path), count) in per_stream {
            self.board.update(&path, |s| s.removed_files += count);
            self.announce(&camera, &path, &format!("removed {count} file(s)"));
        }
        Ok(bytes)
    }

    fn limits(&self) -> Limits {
        let ms = |d: Duration| (d > Duration::ZERO).then_some(d.as_millis() as i64);
        Limits {
            retain_ms: ms(self.config.retain),
            max_bytes: self.config.max_bytes.limit(),
            camera_max_bytes: self.config.camera_max_bytes.limit(),
            min_free: self.config.min_free.limit(),
        }
    }

    /// One retention pass over the index.
    pub async fn retention_pass(&self) -> Result<(), DbError> {
        let (files, cams) = self
            .db
            .recordings(|c| Ok((recordings::all(c)?, recordings::camera_limits(c)?)))
            .await?;
        let cameras: HashMap<String, CameraLimits> = cams
            .into_iter()
            .map(|(id, retain, bytes)| {
                (
                    id,
                    CameraLimits {
                        retain_ms: retain,
                        max_bytes: bytes.map(|b| b.max(0) as u64),
                    },
                )
            })
            .collect();
        let free = free_space(&self.dir);
        let choice = retention::choose(&files, &self.limits(), &cameras, now_ms(), free);
        if !choice.cut.is_empty() {
            self.cuts
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(choice.cut.iter().cloned());
        }
        let doomed: HashSet<i64> = choice.delete.iter().copied().collect();
        let list: Vec<RecordingFile> = files
            .into_iter()
            .filter(|f| doomed.contains(&f.id))
            .collect();
        if list.is_empty() {
            self.refresh_board().await;
            return Ok(());
        }
        tracing::info!(files = list.len(), "retention removes recordings");
        self.remove(list).await?;
        Ok(())
    }

    /// Runs retention every few seconds and whenever woken, until the task is stopped.
    pub async fn retention_loop(self: Arc<Self>) {
        loop {
            if let Err(e) = self.retention_pass().await {
                tracing::warn!(error = %e, "recording retention pass failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(RETENTION_EVERY) => {}
                _ = self.wake.notified() => {}
            }
        }
    }

    /// Bytes, oldest and newest of every stream on the board, from the index.
    pub async fn refresh_board(&self) {
        let Ok(streams) = self.db.recordings(recordings::by_stream).await else {
            return;
        };
        let mut seen = HashSet::new();
        for s in streams {
            seen.insert(s.stream_path.clone());
            self.board.update(&s.stream_path, |b| {
                b.bytes = s.bytes;
                b.oldest = Some(ms_rfc3339(s.oldest_ms));
                b.newest = Some(ms_rfc3339(s.newest_ms));
            });
        }
        for (path, _) in self.board.all() {
            if !seen.contains(&path) {
                self.board.update(&path, |b| {
                    b.bytes = 0;
                    b.oldest = None;
                    b.newest = None;
                });
            }
        }
    }

    /// Start-up: makes disk and index agree. A row whose file is gone is dropped; a row left
    /// marked for deletion is finished off; a file's torn last fragment is cut off and its row
    /// rewritten from the file's own fragments; a file without a row is indexed from its
    /// fragments (or removed when it holds none). Returns what it did, for the log.
    pub async fn reconcile(&self) -> Result<Reconciled, DbError> {
        let rows = self.db.recordings(recordings::all).await?;
        let cameras = self.db.cameras().await?;
        let by_path: HashMap<String, String> = cameras
            .into_iter()
            .map(|c| (c.spec.stream_path, c.spec.camera_id))
            .collect();
        let dir = self.dir.clone();
        let plan = tokio::task::spawn_blocking(move || reconcile_disk(&dir, rows, &by_path))
            .await
            .map_err(|e| DbError::Task(e.to_string()))?;
        let done = plan.report.clone();
        self.db
            .recordings(move |c| {
                for id in &plan.drop_rows {
                    recordings::delete(c, *id)?;
                }
                for f in &plan.update_rows {
                    recordings::update(c, f)?;
                }
                for f in &plan.new_rows {
                    recordings::insert(c, f)?;
                }
                Ok(())
            })
            .await?;
        self.refresh_board().await;
        Ok(done)
    }
}

/// What reconcile did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    pub rows_dropped: u64,
    pub files_truncated: u64,
    pub files_indexed: u64,
    pub files_removed: u64,
}

struct Plan {
    drop_rows: Vec<i64>,
    update_rows: Vec<RecordingFile>,
    new_rows: Vec<RecordingFile>,
    report: Reconciled,
}

/// A folder name that can be a stream path we record (profiles are not recorded).
fn is_stream_dir_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 2 * crate::cameras::MAX_ID_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `{start_ms}.mp4` (what the writer names files).
pub fn start_of(file_name: &str) -> Option<i64> {
    let digits = file_name.strip_suffix(".mp4")?;
    if digits.is_empty() || digits.len() > 16 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A file's whole part, its torn tail cut off (and fsynced). `None` when the file holds no
/// init segment (nothing playable).
fn repair(path: &Path, report: &mut Reconciled) -> io::Result<Option<boxes::FileLayout>> {
    let data = fs::read(path)?;
    let layout = boxes::layout(&data);
    if layout.init_len == 0 {
        return Ok(None);
    }
    if layout.whole_len < data.len() as u64 {
        let f = fs::OpenOptions::new().write(true).open(path)?;
        f.set_len(layout.whole_len)?;
        f.sync_all()?;
        report.files_truncated += 1;
    }
    Ok(Some(layout))
}

fn reconcile_disk(dir: &Path, rows: Vec<RecordingFile>, by_path: &HashMap<String, String>) -> Plan {
    let mut plan = Plan {
        drop_rows: Vec::new(),
        update_rows: Vec::new(),
        new_rows: Vec::new(),
        report: Reconciled::default(),
    };
    let mut known: HashSet<(String, String)> = HashSet::new();
    let mut touched_dirs: HashSet<PathBuf> = HashSet::new();
    for mut row in rows {
        let sdir = dir.join(&row.stream_path);
        let path = sdir.join(&row.file_name);
        known.insert((row.stream_path.clone(), row.file_name.clone()));
        if row.state == FileState::Deleting {
            let _ = fs::remove_file(&path);
            touched_dirs.insert(sdir);
            plan.drop_rows.push(row.id);
            plan.report.files_removed += 1;
            continue;
        }
        match repair(&path, &mut plan.report) {
            Ok(Some(layout)) => {
                row.bytes = layout.whole_len;
                row.init_bytes = layout.init_len;
                row.samples = layout.samples();
                row.end_ms = row.start_ms + (layout.duration() / 90) as i64;
                row.state = FileState::Complete;
                plan.update_rows.push(row);
            }
            Ok(None) => {
                let _ = fs::remove_file(&path);
                touched_dirs.insert(sdir);
                plan.drop_rows.push(row.id);
                plan.report.files_removed += 1;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                plan.drop_rows.push(row.id);
                plan.report.rows_dropped += 1;
            }
            Err(e) => {
                // Unreadable: keep the row (the file may come back, e.g. a slow mount), but
                // close it so nothing appends to it.
                tracing::warn!(error = %io_err(&path, e), "cannot check a recording");
                row.state = FileState::Complete;
                plan.update_rows.push(row);
            }
        }
    }
    // Files without a row.
    if let Ok(streams) = fs::read_dir(dir) {
        for s in streams.flatten() {
            let name = s.file_name().to_string_lossy().into_owned();
            if !is_stream_dir_name(&name) || !s.path().is_dir() {
                continue;
            }
            let Ok(files) = fs::read_dir(s.path()) else {
                continue;
            };
            for f in files.flatten() {
                let file_name = f.file_name().to_string_lossy().into_owned();
                let Some(start_ms) = start_of(&file_name) else {
                    continue;
                };
                if known.contains(&(name.clone(), file_name.clone())) {
                    continue;
                }
                let path = f.path();
                let entry = fs::read(&path).ok().and_then(|d| boxes::sample_entry(&d));
                match (repair(&path, &mut plan.report), entry) {
                    (Ok(Some(layout)), Some((codec, width, height)))
                        if !layout.fragments.is_empty() =>
                    {
                        plan.new_rows.push(RecordingFile {
                            id: 0,
                            stream_path: name.clone(),
                            camera_id: by_path.get(&name).cloned().unwrap_or_else(|| name.clone()),
                            file_name,
                            start_ms,
                            end_ms: start_ms + (layout.duration() / 90) as i64,
                            bytes: layout.whole_len,
                            init_bytes: layout.init_len,
                            samples: layout.samples(),
                            codec,
                            width: u32::from(width),
                            height: u32::from(height),
                            state: FileState::Complete,
                        });
                        plan.report.files_indexed += 1;
                    }
                    _ => {
                        let _ = fs::remove_file(&path);
                        touched_dirs.insert(s.path());
                        plan.report.files_removed += 1;
                    }
                }
            }
        }
    }
    for d in touched_dirs {
        let _ = sync_dir(&d);
    }
    plan
}
