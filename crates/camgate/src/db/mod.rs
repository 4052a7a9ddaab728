//! The SQLite database in the data directory (`{data_dir}/camgate.db`, WAL mode): opening it
//! safely (mode 0600, it stores camera credentials), migrating it, and running queries off
//! the async runtime. Tables and their queries live in one file per area (`cameras.rs`).

mod cameras;
pub mod recordings;
pub mod schema;

use std::fs::{self, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::Connection;

pub use cameras::Upserted;

/// The database file's name inside the data directory.
pub const DB_FILE: &str = "camgate.db";
/// Locked (advisory, released when the process ends) while a camgate uses the directory:
/// two servers on one registry would both connect and record every camera.
pub const LOCK_FILE: &str = "camgate.lock";

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the database has schema version {found} but this camgate knows only up to {supported}; \
         run a newer camgate or use another --data-dir"
    )]
    TooNew { found: u32, supported: u32 },
    #[error("stream_path `{stream_path}` is already used by camera `{camera_id}`")]
    StreamPathInUse {
        stream_path: String,
        camera_id: String,
    },
    #[error(
        "{field} `{name}` would make `{name}` in stream URLs name two cameras: it is already \
         the {other_field} of camera `{camera_id}`"
    )]
    PathAmbiguous {
        /// `stream_path` or `camera_id`: the field of the request.
        field: &'static str,
        name: String,
        /// The other camera's field that holds `name`.
        other_field: &'static str,
        camera_id: String,
    },
    #[error("database task failed: {0}")]
    Task(String),
    #[error(
        "another camgate is using the data directory {} (it holds {}); stop it or use another --data-dir",
        dir.display(), LOCK_FILE
    )]
    InUse { dir: PathBuf },
}

/// A handle on the database, cheap to clone. One connection behind a mutex is plenty for the
/// control plane (a handful of small queries per API call); queries run on tokio's blocking
/// pool so they never stall the runtime.
#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
    path: Arc<PathBuf>,
    /// Holds the data directory's lock for as long as any clone lives.
    _lock: Arc<fs::File>,
    /// The last storage failure of a write (disk full, I/O error, read-only), until a later
    /// write succeeds: `/health` reports it at once, where its probe write alone could still
    /// fit in the WAL's leftover space.
    write_error: Arc<Mutex<Option<String>>>,
}

impl Db {
    /// Opens (creating if needed) `{data_dir}/camgate.db` and migrates it.
    pub fn open(data_dir: &Path) -> Result<Db, DbError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| DbError::Io { path, source }
        };
        if !data_dir.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(data_dir)
                .map_err(io(data_dir))?;
        }
        let lock_path = data_dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(DbError::InUse {
                    dir: data_dir.to_owned(),
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(io(&lock_path)(e)),
        }
        let path = data_dir.join(DB_FILE);
        // Create the file ourselves so it is never readable by others, not even briefly.
        if !path.exists() {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(io(&path))?;
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).map_err(io(&path))?;

        let mut conn = Connection::open(&path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(mode, "SQLite refused WAL mode; continuing with {mode}");
        }
        // NORMAL is durable across process crashes in WAL mode; a power cut may lose the last
        // transactions, which an operator re-provisions.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        schema::migrate(&mut conn)?;
        Ok(Db {
            conn: Arc::new(Mutex::new(conn)),
            path: Arc::new(path),
            _lock: Arc::new(lock),
            write_error: Arc::default(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` with the connection on the blocking pool. Also the way for other modules (the
    /// recording index) to run their own queries.
    pub async fn call<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, DbError> + Send + 'static,
    {
        self.run(f, true).await
    }

    /// As [`Db::call`]; `clears`: whether a successful write clears the recorded write error
    /// (the health probe's does not: it is what fits where real writes do not).
    async fn run<T, F>(&self, f: F, clears: bool) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, DbError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let write_error = Arc::clone(&self.write_error);
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock cannot leave SQLite half-written (an open
            // transaction is rolled back when dropped), so a poisoned lock is still usable.
            let mut guard = conn.lock().unwrap_or_else(|poison| poison.into_inner());
            let changes_before = guard.total_changes();
            let result = f(&mut guard);
            let wrote = guard.total_changes() > changes_before;
            drop(guard);
            let mut last = write_error.lock().unwrap_or_else(|p| p.into_inner());
            match &result {
                Err(DbError::Sqlite(e)) if is_storage_failure(e) => {
                    if last.is_none() {
                        tracing::error!(error = %e, "the camera registry cannot be written");
                    }
                    *last = Some(e.to_string());
                }
                Ok(_) if wrote && clears && last.is_some() => {
                    tracing::info!("the camera registry is writable again");
                    *last = None;
                }
                _ => {}
            }
            result
        })
        .await
        .map_err(|e| DbError::Task(e.to_string()))?
    }

    /// The last storage failure of a write, if no write has succeeded since.
    pub fn last_write_error(&self) -> Option<String> {
        self.write_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Closing step of shutdown: moves the write-ahead log into the database file, so a
    /// stopped service leaves one self-contained file behind.
    pub async fn checkpoint(&self) -> Result<(), DbError> {
        self.call(|conn| {
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
            Ok(())
        })
        .await
    }

    /// Proves the database can be read and written: reads the registry and rewrites the
    /// one-row probe table. Cheap enough for every `GET /health`.
    pub async fn check_health(&self) -> Result<(), DbError> {
        self.run(
            |conn| {
                conn.query_row("SELECT count(*) FROM cameras", [], |r| r.get::<_, i64>(0))?;
                conn.execute(
                    "INSERT INTO health_probe (id, checked_at_ms) VALUES (1, ?1)
                 ON CONFLICT (id) DO UPDATE SET checked_at_ms = excluded.checked_at_ms",
                    [now_ms()],
                )?;
                Ok(())
            },
            false,
        )
        .await
    }
}

/// Errors of the storage under SQLite, not of a query: what makes the registry degraded.
fn is_storage_failure(e: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode::*;
    matches!(
        e.sqlite_error_code(),
        Some(
            DiskFull
                | SystemIoFailure
                | ReadOnly
                | CannotOpen
                | DatabaseCorrupt
                | NotADatabase
                | PermissionDenied
                | FileLockingProtocolFailed
        )
    )
}

pub(crate) fn now_ms() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1_000_000) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_a_private_wal_database() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("nested/data");
        let db = Db::open(&data).unwrap();
        let mode = fs::metadata(db.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = fs::metadata(&data).unwrap().permissions().mode() & 0o777;
        assert_eq!(dir_mode, 0o700);
        let conn = db.conn.lock().unwrap();
        let journal: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(journal, "wal");
        assert_eq!(schema::version(&conn).unwrap(), schema::CURRENT_VERSION);
    }

    #[test]
    fn one_user_of_a_data_directory_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let first = Db::open(dir.path()).unwrap();
        assert!(matches!(Db::open(dir.path()), Err(DbError::InUse { .. })));
        let clone = first.clone();
        drop(first);
        assert!(matches!(Db::open(dir.path()), Err(DbError::InUse { .. })));
        drop(clone);
        Db::open(dir.path()).unwrap();
    }

    #[tokio::test]
    async fn health_check_sees_a_read_only_database() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        db.check_health().await.unwrap();
        db.call(|c| Ok(c.pragma_update(None, "query_only", true)?))
            .await
            .unwrap();
        assert!(db.check_health().await.is_err());
    }

    /// The database may not grow: writes that need a page fail as on a full disk, while the
    /// health probe (rewriting its one row) still succeeds, as it did in leftover WAL space.
    #[tokio::test]
    async fn a_failed_write_is_remembered_until_a_write_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        db.check_health().await.unwrap();
        let pages: i64 = db
            .call(|c| Ok(c.query_row("PRAGMA page_count", [], |r| r.get(0))?))
            .await
            .unwrap();
        db.call(move |c| Ok(c.pragma_update(None, "max_page_count", pages)?))
            .await
            .unwrap();
        async fn fill(db: &Db) -> Result<(), DbError> {
            db.call(|c| {
                c.execute("CREATE TABLE IF NOT EXISTS filler (b BLOB)", [])?;
                c.execute("INSERT INTO filler (b) VALUES (zeroblob(65536))", [])?;
                Ok(())
            })
            .await
        }
        let err = fill(&db).await.unwrap_err();
        assert!(matches!(err, DbError::Sqlite(_)), "{err}");
        let remembered = db.last_write_error().expect("the failure is remembered");
        assert!(remembered.contains("full"), "{remembered}");
        // The probe still writes, and does not clear it.
        db.check_health().await.unwrap();
        assert!(db.last_write_error().is_some());
        // Room again: the next write clears it.
        db.call(|c| Ok(c.pragma_update(None, "max_page_count", 1_000_000)?))
            .await
            .unwrap();
        fill(&db).await.unwrap();
        assert_eq!(db.last_write_error(), None);
    }
}
