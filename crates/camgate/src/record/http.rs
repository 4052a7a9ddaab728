//! The recordings over HTTP: the list of recorded streams, a stream's time ranges, the VOD
//! HLS playlist over a range, the files' bytes (with `Range`) that the playlist points into,
//! and deleting a range. Access is the shared layer's (`http::access`): viewer tokens with
//! scope `recordings` open the GET routes of their camera (`http::media_paths`), never DELETE.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::Recorder;
use super::boxes;
use super::export;
use super::playlist::{self, parse_time};
use super::store::{Store, ms_rfc3339, now_ms, start_of};
use crate::cameras::RecordingState;
use crate::db::recordings::{self, FileState, RecordingFile};
use crate::http::refuse::check_stream_path;
use crate::http::{AppError, RouteDoc, Routes, range};
use crate::hub::Registry;

#[derive(Clone)]
pub struct RecordState {
    pub recorder: Arc<Recorder>,
    pub registry: Arc<Registry>,
}

pub fn router(state: RecordState) -> (Router, Vec<RouteDoc>) {
    Routes::new()
        .get(
            "/recordings",
            "Recorded streams: bytes, oldest, newest",
            list,
        )
        .get(
            "/recordings/{path}",
            "A stream's recorded time ranges (gaps split them)",
            ranges,
        )
        .delete(
            "/recordings/{path}",
            "Delete the recordings inside a time range",
            delete,
        )
        .get(
            "/recordings/{path}/index.m3u8",
            "VOD HLS playlist over a recorded range",
            vod,
        )
        .get(
            "/recordings/{path}/export.mp4",
            "One progressive MP4 of a recorded range (HEAD, Range, ETag, If-Range)",
            export,
        )
        .get(
            "/recordings/{path}/{file}",
            "A recording file's bytes (Range supported), as the VOD playlist names them",
            file,
        )
        .with_state(state)
}

const DAY_MS: i64 = 86_400_000;

/// `start`/`end` of a request: RFC 3339 or Unix seconds; default the last 24 h.
struct Window {
    from: i64,
    to: i64,
}

fn query_map(raw: Option<&str>) -> HashMap<String, String> {
    url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn window(raw: Option<&str>, required: bool) -> Result<Window, AppError> {
    let q = query_map(raw);
    let get = |name: &str| -> Result<Option<i64>, AppError> {
        match q.get(name) {
            None => Ok(None),
            Some(v) => parse_time(v)
                .map(Some)
                .map_err(|m| AppError::bad_request("invalid_time", format!("{name}: {m}"))),
        }
    };
    let (start, end) = (get("start")?, get("end")?);
    if required && (start.is_none() || end.is_none()) {
        return Err(AppError::bad_request(
            "missing_range",
            "both start and end are required (RFC 3339 or Unix seconds)",
        ));
    }
    let to = end.unwrap_or_else(now_ms);
    let from = start.unwrap_or(to - DAY_MS);
    if to <= from {
        return Err(AppError::bad_request(
            "invalid_range",
            "end must be after start",
        ));
    }
    Ok(Window { from, to })
}

fn not_recorded(path: &str) -> AppError {
    AppError::new(
        StatusCode::NOT_FOUND,
        "recording_not_found",
        format!("no recordings and no recorded stream named {path:?}; see GET /recordings"),
    )
}

fn storage(e: crate::db::DbError) -> AppError {
    tracing::warn!(error = %e, "recording index failed");
    AppError::internal(
        "storage_error",
        "the recording index could not be read; see the server log",
    )
}

/// 404 unless the stream has recordings or is a stream of ours.
async fn known(state: &RecordState, path: &str) -> Result<(), AppError> {
    check_stream_path(path)?;
    if state.registry.get(path).is_some_and(|s| s.has_path(path)) {
        return Ok(());
    }
    let p = path.to_owned();
    let any = state
        .recorder
        .store
        .db
        .recordings(move |c| Ok(!recordings::overlapping(c, &p, i64::MIN, i64::MAX)?.is_empty()))
        .await
        .map_err(storage)?;
    if any { Ok(()) } else { Err(not_recorded(path)) }
}

#[derive(Serialize)]
struct StreamEntry {
    stream_path: String,
    camera_id: String,
    bytes: u64,
    oldest: Option<String>,
    newest: Option<String>,
    /// Frames are going to disk right now.
    recording: bool,
    /// `waiting`, `recording`, `disk_full` or `error`; `null` when not recorded now.
    state: Option<RecordingState>,
    last_error: Option<String>,
}

async fn list(State(state): State<RecordState>) -> Result<Json<Vec<StreamEntry>>, AppError> {
    let store = &state.recorder.store;
    let streams = store
        .db
        .recordings(recordings::by_stream)
        .await
        .map_err(storage)?;
    let mut out: Vec<StreamEntry> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for s in streams {
        let live = store.board.get(&s.stream_path);
        seen.insert(s.stream_path.clone());
        out.push(StreamEntry {
            recording: live
                .as_ref()
                .is_some_and(|l| l.state == RecordingState::Recording),
            state: live.as_ref().map(|l| l.state),
            last_error: live.and_then(|l| l.last_error),
            stream_path: s.stream_path,
            camera_id: s.camera_id,
            bytes: s.bytes,
            oldest: Some(ms_rfc3339(s.oldest_ms)),
            newest: Some(ms_rfc3339(s.newest_ms)),
        });
    }
    // Streams recorded but with nothing on disk yet.
    for (path, s) in store.board.all() {
        if seen.contains(&path) {
            continue;
        }
        let Some(stream) = state.registry.get(&path).filter(|s| s.spec().record) else {
            continue;
        };
        out.push(StreamEntry {
            stream_path: path,
            camera_id: stream.camera_id(),
            bytes: 0,
            oldest: None,
            newest: None,
            recording: s.state == RecordingState::Recording,
            state: Some(s.state),
            last_error: s.last_error,
        });
    }
    Ok(Json(out))
}

#[derive(Serialize)]
struct RangeEntry {
    start: String,
    end: String,
    /// Seconds.
    duration: f64,
    bytes: u64,
}

async fn files_in(store: &Store, path: &str, w: &Window) -> Result<Vec<RecordingFile>, AppError> {
    let (p, from, to) = (path.to_owned(), w.from, w.to);
    store
        .db
        .recordings(move |c| recordings::overlapping(c, &p, from, to))
        .await
        .map_err(storage)
}

async fn ranges(
    State(state): State<RecordState>,
    Path(path): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Vec<RangeEntry>>, AppError> {
    known(&state, &path).await?;
    let w = window(raw.as_deref(), false)?;
    let files = files_in(&state.recorder.store, &path, &w).await?;
    let out = playlist::ranges(&files, w.from, w.to)
        .into_iter()
        .map(|r| RangeEntry {
            start: ms_rfc3339(r.start_ms),
            end: ms_rfc3339(r.end_ms),
            duration: (r.end_ms - r.start_ms) as f64 / 1000.0,
            bytes: r.bytes,
        })
        .collect();
    Ok(Json(out))
}

async fn vod(
    State(state): State<RecordState>,
    Path(path): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, AppError> {
    known(&state, &path).await?;
    let w = window(raw.as_deref(), false)?;
    let store = state.recorder.store.clone();
    let files = files_in(&store, &path, &w).await?;
    let with_layouts = tokio::task::spawn_blocking(move || {
        files
            .into_iter()
            .filter_map(|f| {
                let layout = boxes::scan_file(&store.file_path(&f), f.bytes).ok()?;
                Some((f, layout))
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| AppError::internal("internal_error", e.to_string()))?;
    let Some(text) = playlist::vod_playlist(&with_layouts, w.from, w.to) else {
        return Err(AppError::new(
            StatusCode::NOT_FOUND,
            "nothing_recorded",
            "nothing is recorded in that range; see GET /recordings/{path} for the ranges",
        ));
    };
    Ok((
        [
            (header::CONTENT_TYPE, "application/vnd.apple.mpegurl"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        text,
    )
        .into_response())
}

async fn file(
    State(state): State<RecordState>,
    Path((path, name)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    check_stream_path(&path)?;
    let file_missing = || {
        AppError::new(
            StatusCode::NOT_FOUND,
            "recording_file_not_found",
            format!("no recording file {name:?} in {path:?}; the VOD playlist names the files"),
        )
    };
    if start_of(&name).is_none() {
        return Err(file_missing());
    }
    let store = state.recorder.store.clone();
    let (p, n) = (path.clone(), name.clone());
    let row = store
        .db
        .recordings(move |c| {
            Ok(recordings::overlapping(c, &p, i64::MIN, i64::MAX)?
                .into_iter()
                .find(|f| f.file_name == n))
        })
        .await
        .map_err(storage)?
        .ok_or_else(file_missing)?;
    // Only the indexed (flushed) length is served: a file being written may hold a torn
    // fragment past it. The name and that length identify the content, so they are the ETag.
    let cache = if row.state == FileState::Complete {
        "max-age=3600"
    } else {
        "no-cache"
    };
    let fs_path = store.file_path(&row);
    if tokio::fs::metadata(&fs_path).await.is_err() {
        return Err(file_missing());
    }
    let etag = format!("{}-{}", row.file_name.trim_end_matches(".mp4"), row.bytes);
    let entity = range::Entity::new(range::PieceList::file(fs_path, row.bytes), "video/mp4")
        .with_etag(&etag);
    let mut r = range::serve(entity, &method, &headers);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    Ok(r)
}

async fn export(
    State(state): State<RecordState>,
    Path(path): Path<String>,
    RawQuery(raw): RawQuery,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    known(&state, &path).await?;
    let w = window(raw.as_deref(), false)?;
    let cap = state.recorder.store.config.export_max;
    if (w.to - w.from) as u128 > cap.as_millis() {
        return Err(AppError::bad_request(
            "range_too_long",
            format!(
                "an export spans at most {} s ([record] export_max); ask for a shorter range",
                cap.as_secs()
            ),
        ));
    }
    let store = state.recorder.store.clone();
    let rows = files_in(&store, &path, &w).await?;
    let key = export::PlanCache::key(&path, w.from, w.to, &rows);
    let plan = match state.recorder.exports.get(&key) {
        Some(plan) => plan,
        None => {
            let plan = Arc::new(build_export(store, rows, &path, w.from, w.to).await?);
            state.recorder.exports.put(key, plan.clone());
            plan
        }
    };
    let cache = if plan.complete {
        "max-age=3600"
    } else {
        "no-cache"
    };
    let name = export::file_name(&path, plan.first_ms);
    let entity = range::Entity::new(export::ExportMap::new(plan.clone()), "video/mp4")
        .with_etag(&plan.etag)
        .with_last_modified(plan.last_modified)
        .with_disposition(&name, true);
    let mut r = range::serve(entity, &method, &headers);
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    // What the file holds, for a client that asked for more than was recorded.
    for (k, v) in [
        ("x-export-start", ms_rfc3339(plan.first_ms)),
        ("x-export-end", ms_rfc3339(plan.end_ms)),
        ("x-export-samples", plan.samples.to_string()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    }
    if plan.cut_at_change {
        h.insert(
            "x-export-truncated",
            HeaderValue::from_static("codec-or-resolution-change"),
        );
    }
    Ok(r)
}

/// Scans the files of an export and lays it out (blocking work, on the blocking pool).
async fn build_export(
    store: Arc<Store>,
    rows: Vec<RecordingFile>,
    path: &str,
    from: i64,
    to: i64,
) -> Result<export::Plan, AppError> {
    let p = path.to_owned();
    let plan = tokio::task::spawn_blocking(move || {
        let files: Vec<(export::Source, Option<export::Scanned>)> = rows
            .into_iter()
            .map(|row| {
                let fs_path = store.file_path(&row);
                // A file retention removed since the index was read is left out.
                let scanned = export::scan(&fs_path, row.bytes).unwrap_or_else(|e| {
                    tracing::debug!(file = %fs_path.display(), error = %e, "export skips a file");
                    None
                });
                (export::Source { row, path: fs_path }, scanned)
            })
            .collect();
        export::plan(&p, &files, from, to)
    })
    .await
    .map_err(|e| AppError::internal("internal_error", e.to_string()))?;
    match plan {
        Ok(plan) => Ok(plan),
        Err(export::NoExport::Nothing) => Err(AppError::new(
            StatusCode::NOT_FOUND,
            "nothing_recorded",
            "nothing is recorded in that range; see GET /recordings/{path} for the ranges",
        )),
        Err(export::NoExport::Layout(e)) => {
            tracing::warn!(stream = %path, error = %e, "export layout failed");
            Err(AppError::internal(
                "export_failed",
                "the recorded samples could not be laid out as an MP4; see the server log",
            ))
        }
    }
}

#[derive(Serialize)]
struct Deleted {
    deleted_bytes: u64,
    deleted_files: u64,
}

async fn delete(
    State(state): State<RecordState>,
    Path(path): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Deleted>, AppError> {
    known(&state, &path).await?;
    let w = window(raw.as_deref(), true)?;
    let store = &state.recorder.store;
    // Whole files inside the range; the file being written stays (retention takes it later).
    let doomed: Vec<RecordingFile> = files_in(store, &path, &w)
        .await?
        .into_iter()
        .filter(|f| f.start_ms >= w.from && f.end_ms <= w.to && f.state == FileState::Complete)
        .collect();
    let n = doomed.len() as u64;
    let deleted_bytes = store.remove(doomed).await.map_err(storage)?;
    Ok(Json(Deleted {
        deleted_bytes,
        deleted_files: n,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows() {
        let w = window(Some("start=1700000000&end=1700000060"), false)
            .ok()
            .unwrap();
        assert_eq!((w.from, w.to), (1_700_000_000_000, 1_700_000_060_000));
        let w = window(None, false).ok().unwrap();
        assert_eq!(w.to - w.from, DAY_MS);
        let code = |q| window(Some(q), false).err().unwrap().code;
        assert_eq!(code("start=never"), "invalid_time");
        assert_eq!(code("start=1700000060&end=1700000000"), "invalid_range");
        assert_eq!(
            window(Some("start=1"), true).err().unwrap().code,
            "missing_range"
        );
    }
}
