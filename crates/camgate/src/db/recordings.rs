//! Queries on the `recording_files` table: the index of recording files the recorder writes
//! (`record/`), playback reads and retention counts. Rows are written only after the bytes
//! they describe are fsynced; the recorder owns the order of file and row operations.

use rusqlite::{Connection, Row, params};

use super::{Db, DbError};

/// Where a file is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileState {
    Writing,
    Complete,
    /// Marked by retention or DELETE before the unlink; finished off at start-up if left.
    Deleting,
}

impl FileState {
    pub fn as_str(self) -> &'static str {
        match self {
            FileState::Writing => "writing",
            FileState::Complete => "complete",
            FileState::Deleting => "deleting",
        }
    }

    fn parse(s: &str) -> Option<FileState> {
        match s {
            "writing" => Some(FileState::Writing),
            "complete" => Some(FileState::Complete),
            "deleting" => Some(FileState::Deleting),
            _ => None,
        }
    }
}

/// One recording file's index row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingFile {
    pub id: i64,
    pub stream_path: String,
    pub camera_id: String,
    pub file_name: String,
    /// Unix ms (UTC) of the first frame and just after the last flushed one.
    pub start_ms: i64,
    pub end_ms: i64,
    pub bytes: u64,
    pub init_bytes: u64,
    pub samples: u64,
    pub codec: String,
    pub width: u32,
    pub height: u32,
    pub state: FileState,
}

const COLUMNS: &str = "id, stream_path, camera_id, file_name, start_ms, end_ms, bytes, init_bytes, \
                       samples, codec, width, height, state";

fn from_row(row: &Row<'_>) -> rusqlite::Result<RecordingFile> {
    let state: String = row.get(12)?;
    let state = FileState::parse(&state).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            12,
            rusqlite::types::Type::Text,
            format!("unknown recording state {state}").into(),
        )
    })?;
    let u = |i: usize| -> rusqlite::Result<u64> { Ok(row.get::<_, i64>(i)?.max(0) as u64) };
    Ok(RecordingFile {
        id: row.get(0)?,
        stream_path: row.get(1)?,
        camera_id: row.get(2)?,
        file_name: row.get(3)?,
        start_ms: row.get(4)?,
        end_ms: row.get(5)?,
        bytes: u(6)?,
        init_bytes: u(7)?,
        samples: u(8)?,
        codec: row.get(9)?,
        width: u(10)? as u32,
        height: u(11)? as u32,
        state,
    })
}

fn i(v: u64) -> i64 {
    v.min(i64::MAX as u64) as i64
}

/// Inserts a row (its `id` is ignored) and returns the new id.
pub fn insert(conn: &Connection, f: &RecordingFile) -> Result<i64, DbError> {
    conn.execute(
        "INSERT INTO recording_files (stream_path, camera_id, file_name, start_ms, end_ms, bytes,
                                      init_bytes, samples, codec, width, height, state)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            f.stream_path,
            f.camera_id,
            f.file_name,
            f.start_ms,
            f.end_ms.max(f.start_ms),
            i(f.bytes),
            i(f.init_bytes),
            i(f.samples),
            f.codec,
            f.width,
            f.height,
            f.state.as_str(),
        ],
    )?;
    Ok(conn.last_insert_rowid())
}

/// Rewrites a row's flushed extent and state.
pub fn update(conn: &Connection, f: &RecordingFile) -> Result<(), DbError> {
    conn.execute(
        "UPDATE recording_files SET end_ms = ?2, bytes = ?3, samples = ?4, state = ?5
         WHERE id = ?1",
        params![
            f.id,
            f.end_ms.max(f.start_ms),
            i(f.bytes),
            i(f.samples),
            f.state.as_str()
        ],
    )?;
    Ok(())
}

pub fn set_state(conn: &Connection, id: i64, state: FileState) -> Result<(), DbError> {
    conn.execute(
        "UPDATE recording_files SET state = ?2 WHERE id = ?1",
        params![id, state.as_str()],
    )?;
    Ok(())
}

pub fn delete(conn: &Connection, id: i64) -> Result<(), DbError> {
    conn.execute("DELETE FROM recording_files WHERE id = ?1", [id])?;
    Ok(())
}

/// Every row, oldest first.
pub fn all(conn: &Connection) -> Result<Vec<RecordingFile>, DbError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM recording_files ORDER BY start_ms, id"
    ))?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// A stream's files that overlap `[from_ms, to_ms)`, oldest first (none being deleted).
pub fn overlapping(
    conn: &Connection,
    stream_path: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<RecordingFile>, DbError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM recording_files
         WHERE stream_path = ?1 AND start_ms < ?3 AND end_ms > ?2 AND state <> 'deleting'
         ORDER BY start_ms, id"
    ))?;
    let rows = stmt.query_map(params![stream_path, from_ms, to_ms], from_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// One stream's recordings in total.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamRecordings {
    pub stream_path: String,
    pub camera_id: String,
    pub bytes: u64,
    pub oldest_ms: i64,
    pub newest_ms: i64,
    pub files: u64,
}

/// Every stream with recordings, by path.
pub fn by_stream(conn: &Connection) -> Result<Vec<StreamRecordings>, DbError> {
    let mut stmt = conn.prepare_cached(
        "SELECT stream_path, max(camera_id), sum(bytes), min(start_ms), max(end_ms), count(*)
         FROM recording_files WHERE state <> 'deleting'
         GROUP BY stream_path ORDER BY stream_path",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(StreamRecordings {
            stream_path: r.get(0)?,
            camera_id: r.get(1)?,
            bytes: r.get::<_, i64>(2)?.max(0) as u64,
            oldest_ms: r.get(3)?,
            newest_ms: r.get(4)?,
            files: r.get::<_, i64>(5)?.max(0) as u64,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// One camera's retention overrides: `(camera_id, retain_ms, max_bytes)`.
pub type CameraLimits = (String, Option<i64>, Option<i64>);

/// Per-camera retention overrides.
pub fn camera_limits(conn: &Connection) -> Result<Vec<CameraLimits>, DbError> {
    let mut stmt =
        conn.prepare_cached("SELECT camera_id, record_retain_ms, record_max_bytes FROM cameras")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

impl Db {
    /// Runs `f` on the connection (see [`Db::call`]); for the recording index's functions
    /// above, which the recorder combines in its own order.
    pub async fn recordings<T, F>(&self, f: F) -> Result<T, DbError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, DbError> + Send + 'static,
    {
        self.call(move |conn| f(conn)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(stream: &str, start: i64, end: i64, bytes: u64) -> RecordingFile {
        RecordingFile {
            id: 0,
            stream_path: stream.into(),
            camera_id: "1".into(),
            file_name: format!("{start}.mp4"),
            start_ms: start,
            end_ms: end,
            bytes,
            init_bytes: 700,
            samples: 10,
            codec: "avc1.64001f".into(),
            width: 320,
            height: 240,
            state: FileState::Writing,
        }
    }

    #[tokio::test]
    async fn index_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        let got = db
            .recordings(|c| {
                let id = insert(c, &file("cam_1", 1000, 1000, 700))?;
                insert(c, &file("cam_1", 5000, 9000, 2000))?;
                insert(c, &file("cam_2", 2000, 3000, 100))?;
                let mut f = file("cam_1", 1000, 4000, 1500);
                f.id = id;
                f.state = FileState::Complete;
                update(c, &f)?;
                Ok((all(c)?, overlapping(c, "cam_1", 3500, 6000)?, by_stream(c)?))
            })
            .await
            .unwrap();
        let (all_rows, over, streams) = got;
        assert_eq!(all_rows.len(), 3);
        assert_eq!(all_rows[0].end_ms, 4000);
        assert_eq!(all_rows[0].state, FileState::Complete);
        assert_eq!(over.len(), 2);
        assert_eq!(streams[0].bytes, 3500);
        assert_eq!((streams[0].oldest_ms, streams[0].newest_ms), (1000, 9000));
        // One file name per stream.
        let dup = db
            .recordings(|c| insert(c, &file("cam_1", 1000, 1000, 1)))
            .await;
        assert!(dup.is_err());
    }
}
