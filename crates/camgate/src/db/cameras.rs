//! Queries on the `cameras` table: the persisted camera registry.

use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, params};
use time::OffsetDateTime;

use super::{Db, DbError, now_ms};
use crate::cameras::{Camera, CameraSpec, RecordLimits, SecretUrl, Transport};

/// Whether a provision created a camera or replaced an existing one's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upserted {
    Created,
    Updated,
}

const COLUMNS: &str = "camera_id, name, rtsp_url, stream_path, on_demand, record, transport, \
                       idle_timeout_ms, created_at_ms, updated_at_ms, record_retain_ms, \
                       record_max_bytes, profiles, frame_interval_ms";

impl Db {
    /// Creates the camera or replaces all its settings (keeping `created_at`). Fails with
    /// [`DbError::StreamPathInUse`] when another camera has the requested stream path.
    pub async fn upsert_camera(&self, spec: CameraSpec) -> Result<(Camera, Upserted), DbError> {
        self.call(move |conn| upsert(conn, &spec, now_ms())).await
    }

    pub async fn camera(&self, camera_id: &str) -> Result<Option<Camera>, DbError> {
        let id = camera_id.to_owned();
        self.call(move |conn| get(conn, &id)).await
    }

    /// Every camera, ordered by id.
    pub async fn cameras(&self) -> Result<Vec<Camera>, DbError> {
        self.call(|conn| {
            let mut stmt =
                conn.prepare_cached(&format!("SELECT {COLUMNS} FROM cameras ORDER BY camera_id"))?;
            let rows = stmt.query_map([], from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Removes the camera; `false` if it did not exist.
    pub async fn delete_camera(&self, camera_id: &str) -> Result<bool, DbError> {
        let id = camera_id.to_owned();
        self.call(move |conn| {
            Ok(conn.execute("DELETE FROM cameras WHERE camera_id = ?1", [id])? > 0)
        })
        .await
    }

    /// The stored pairs that make a `{path}` ambiguous (see [`DbError::PathAmbiguous`]), as
    /// warnings saying which camera the path opens (the stream path wins).
    pub async fn ambiguous_paths(&self) -> Result<Vec<String>, DbError> {
        let pairs = self.call(|conn| ambiguous(conn)).await?;
        Ok(pairs
            .into_iter()
            .map(|(by_path, path, by_id)| {
                format!(
                    "`{path}` is camera `{by_path}`'s stream_path and camera `{by_id}`'s id: \
                     stream URLs with `{path}` open camera `{by_path}`; give one of them another name"
                )
            })
            .collect())
    }

    pub async fn camera_count(&self) -> Result<u64, DbError> {
        self.call(|conn| {
            Ok(conn.query_row("SELECT count(*) FROM cameras", [], |r| r.get::<_, i64>(0))? as u64)
        })
        .await
    }
}

fn get(conn: &Connection, camera_id: &str) -> Result<Option<Camera>, DbError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM cameras WHERE camera_id = ?1"
    ))?;
    Ok(stmt.query_row([camera_id], from_row).optional()?)
}

fn upsert(
    conn: &mut Connection,
    spec: &CameraSpec,
    now: i64,
) -> Result<(Camera, Upserted), DbError> {
    // The conflict check and the write are one transaction, so two provisions racing for one
    // stream path cannot both win (the UNIQUE constraint would catch it anyway).
    let tx = conn.transaction()?;
    let holder: Option<String> = tx
        .query_row(
            "SELECT camera_id FROM cameras WHERE stream_path = ?1 AND camera_id <> ?2",
            params![spec.stream_path, spec.camera_id],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(camera_id) = holder {
        return Err(DbError::StreamPathInUse {
            stream_path: spec.stream_path.clone(),
            camera_id,
        });
    }
    let existing = get(&tx, &spec.camera_id)?;
    let existed = existing.is_some();
    refuse_ambiguous(&tx, spec, existing.as_ref())?;
    tx.execute(
        "INSERT INTO cameras (camera_id, name, rtsp_url, stream_path, on_demand, record, transport,
                              idle_timeout_ms, created_at_ms, updated_at_ms, record_retain_ms,
                              record_max_bytes, profiles, frame_interval_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT (camera_id) DO UPDATE SET
             name = excluded.name, rtsp_url = excluded.rtsp_url,
             stream_path = excluded.stream_path, on_demand = excluded.on_demand,
             record = excluded.record, transport = excluded.transport,
             idle_timeout_ms = excluded.idle_timeout_ms, updated_at_ms = excluded.updated_at_ms,
             record_retain_ms = excluded.record_retain_ms,
             record_max_bytes = excluded.record_max_bytes,
             profiles = excluded.profiles,
             frame_interval_ms = excluded.frame_interval_ms",
        params![
            spec.camera_id,
            spec.name,
            spec.rtsp_url.expose(),
            spec.stream_path,
            spec.on_demand,
            spec.record,
            spec.transport.as_str(),
            spec.idle_timeout.map(|d| d.as_millis() as i64),
            now,
            spec.record_limits.retain.map(|d| d.as_millis() as i64),
            spec.record_limits
                .max_bytes
                .map(|b| b.min(i64::MAX as u64) as i64),
            spec.profiles
                .as_ref()
                .map(|p| serde_json::Value::from(p.clone()).to_string()),
            spec.frame_interval.map(|d| d.as_millis() as i64),
        ],
    )?;
    let camera =
        get(&tx, &spec.camera_id)?.ok_or(DbError::Sqlite(rusqlite::Error::QueryReturnedNoRows))?;
    tx.commit()?;
    let how = if existed {
        Upserted::Updated
    } else {
        Upserted::Created
    };
    Ok((camera, how))
}

/// `{path}` in stream URLs is a stream path, else a camera id: refuses a new stream path that
/// is another camera's id, and a new camera whose id is another camera's stream path. What a
/// camera already had is left alone (a database from before this check keeps working).
fn refuse_ambiguous(
    conn: &Connection,
    spec: &CameraSpec,
    existing: Option<&Camera>,
) -> Result<(), DbError> {
    let other = |sql: &str, value: &str| -> Result<Option<String>, DbError> {
        Ok(conn
            .query_row(sql, params![value, spec.camera_id], |r| r.get(0))
            .optional()?)
    };
    let new_path = existing.is_none_or(|c| c.spec.stream_path != spec.stream_path);
    if new_path
        && let Some(camera_id) = other(
            "SELECT camera_id FROM cameras WHERE camera_id = ?1 AND camera_id <> ?2",
            &spec.stream_path,
        )?
    {
        return Err(DbError::PathAmbiguous {
            field: "stream_path",
            name: spec.stream_path.clone(),
            other_field: "camera_id",
            camera_id,
        });
    }
    if existing.is_none()
        && let Some(camera_id) = other(
            "SELECT camera_id FROM cameras WHERE stream_path = ?1 AND camera_id <> ?2",
            &spec.camera_id,
        )?
    {
        return Err(DbError::PathAmbiguous {
            field: "camera_id",
            name: spec.camera_id.clone(),
            other_field: "stream_path",
            camera_id,
        });
    }
    Ok(())
}

/// Pairs already stored that make a `{path}` ambiguous, from before the check above:
/// `(camera whose stream_path it is, the path, camera whose id it is)`.
fn ambiguous(conn: &Connection) -> Result<Vec<(String, String, String)>, DbError> {
    let mut stmt = conn.prepare_cached(
        "SELECT a.camera_id, a.stream_path, b.camera_id FROM cameras a
         JOIN cameras b ON a.stream_path = b.camera_id AND a.camera_id <> b.camera_id
         ORDER BY a.camera_id",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Camera> {
    let transport: String = row.get(6)?;
    let transport = transport.parse::<Transport>().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(6, rusqlite::types::Type::Text, Box::new(e))
    })?;
    let idle_ms: Option<i64> = row.get(7)?;
    let rtsp_url: String = row.get(2)?;
    let retain_ms: Option<i64> = row.get(10)?;
    let max_bytes: Option<i64> = row.get(11)?;
    let profiles: Option<String> = row.get(12)?;
    let profiles = profiles
        .map(|text| {
            serde_json::from_str::<Vec<String>>(&text).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    12,
                    rusqlite::types::Type::Text,
                    Box::new(e),
                )
            })
        })
        .transpose()?;
    let frame_ms: Option<i64> = row.get(13)?;
    Ok(Camera {
        spec: CameraSpec {
            camera_id: row.get(0)?,
            name: row.get(1)?,
            rtsp_url: SecretUrl::new(rtsp_url),
            stream_path: row.get(3)?,
            on_demand: row.get(4)?,
            record: row.get(5)?,
            transport,
            idle_timeout: idle_ms.map(|ms| Duration::from_millis(ms.max(0) as u64)),
            record_limits: RecordLimits {
                retain: retain_ms.map(|ms| Duration::from_millis(ms.max(0) as u64)),
                max_bytes: max_bytes.map(|b| b.max(0) as u64),
            },
            profiles,
            frame_interval: frame_ms.map(|ms| Duration::from_millis(ms.max(0) as u64)),
        },
        created_at: timestamp(row, 8)?,
        updated_at: timestamp(row, 9)?,
    })
}

fn timestamp(row: &Row<'_>, idx: usize) -> rusqlite::Result<OffsetDateTime> {
    let ms: i64 = row.get(idx)?;
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Integer, Box::new(e))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cameras::default_stream_path;

    fn spec(id: &str, stream_path: Option<&str>) -> CameraSpec {
        CameraSpec {
            camera_id: id.into(),
            name: format!("camera {id}"),
            rtsp_url: SecretUrl::new(format!("rtsp://admin:pw@cam{id}/s")),
            stream_path: stream_path.map_or_else(|| default_stream_path(id), str::to_owned),
            on_demand: true,
            record: false,
            transport: Transport::Tcp,
            idle_timeout: Some(Duration::from_millis(1500)),
            record_limits: RecordLimits::default(),
            profiles: None,
            frame_interval: None,
        }
    }

    #[tokio::test]
    async fn upsert_get_list_delete() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        let (cam, how) = db.upsert_camera(spec("1", None)).await.unwrap();
        assert_eq!(how, Upserted::Created);
        assert_eq!(cam.spec.stream_path, "cam_1");
        assert_eq!(cam.spec.idle_timeout, Some(Duration::from_millis(1500)));
        assert_eq!(cam.spec.transport, Transport::Tcp);

        let mut changed = spec("1", Some("front"));
        changed.record = true;
        changed.record_limits = RecordLimits {
            retain: Some(Duration::from_secs(3600)),
            max_bytes: Some(1 << 30),
        };
        changed.profiles = Some(vec!["720p".into(), "360p".into()]);
        changed.frame_interval = Some(Duration::from_millis(500));
        let (cam2, how) = db.upsert_camera(changed).await.unwrap();
        assert_eq!(how, Upserted::Updated);
        assert_eq!(cam2.created_at, cam.created_at);
        assert!(cam2.spec.record);
        assert_eq!(cam2.spec.record_limits.max_bytes, Some(1 << 30));
        assert_eq!(
            cam2.spec.record_limits.retain,
            Some(Duration::from_secs(3600))
        );
        assert_eq!(cam2.spec.stream_path, "front");
        assert_eq!(
            cam2.spec.profiles.as_deref(),
            Some(&["720p".to_string(), "360p".to_string()][..])
        );
        assert_eq!(cam.spec.profiles, None);
        assert_eq!(cam2.spec.frame_interval, Some(Duration::from_millis(500)));

        db.upsert_camera(spec("2", None)).await.unwrap();
        let ids: Vec<String> = db
            .cameras()
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.spec.camera_id)
            .collect();
        assert_eq!(ids, ["1", "2"]);
        assert_eq!(db.camera_count().await.unwrap(), 2);
        assert!(db.delete_camera("1").await.unwrap());
        assert!(!db.delete_camera("1").await.unwrap());
        assert!(db.camera("1").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn stream_path_is_unique() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        db.upsert_camera(spec("1", Some("front"))).await.unwrap();
        let err = db
            .upsert_camera(spec("2", Some("front")))
            .await
            .unwrap_err();
        assert!(matches!(err, DbError::StreamPathInUse { ref camera_id, .. } if camera_id == "1"));
        // A default path taken explicitly by another camera conflicts too.
        db.upsert_camera(spec("3", Some("cam_4"))).await.unwrap();
        assert!(db.upsert_camera(spec("4", None)).await.is_err());
        assert_eq!(db.camera_count().await.unwrap(), 2);
    }

    #[tokio::test]
    async fn a_path_cannot_name_two_cameras() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        db.upsert_camera(spec("door", None)).await.unwrap();
        // A stream path that is another camera's id.
        let err = db
            .upsert_camera(spec("yard", Some("door")))
            .await
            .unwrap_err();
        assert!(
            matches!(err, DbError::PathAmbiguous { field: "stream_path", ref camera_id, .. } if camera_id == "door"),
            "{err}"
        );
        // A camera id that is another camera's stream path.
        db.upsert_camera(spec("gate", Some("front"))).await.unwrap();
        let err = db.upsert_camera(spec("front", None)).await.unwrap_err();
        assert!(
            matches!(err, DbError::PathAmbiguous { field: "camera_id", ref camera_id, .. } if camera_id == "gate"),
            "{err}"
        );
        assert!(err.to_string().contains("`gate`"), "{err}");
        // A camera's own id as its path is not ambiguous.
        db.upsert_camera(spec("own", Some("own"))).await.unwrap();
        assert!(db.ambiguous_paths().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_stored_ambiguous_pair_keeps_working_and_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        db.upsert_camera(spec("door", None)).await.unwrap();
        db.upsert_camera(spec("yard", None)).await.unwrap();
        // As a database written before the check could hold it.
        db.call(|c| {
            Ok(c.execute(
                "UPDATE cameras SET stream_path = 'door' WHERE camera_id = 'yard'",
                [],
            )?)
        })
        .await
        .unwrap();
        let warnings = db.ambiguous_paths().await.unwrap();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("open camera `yard`"), "{warnings:?}");
        // Both cameras can still be updated as they are.
        let mut yard = db.camera("yard").await.unwrap().unwrap().spec;
        yard.name = "renamed".into();
        db.upsert_camera(yard).await.unwrap();
        let mut door = db.camera("door").await.unwrap().unwrap().spec;
        door.name = "renamed".into();
        db.upsert_camera(door).await.unwrap();
    }
}
