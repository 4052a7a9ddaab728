//! The snapshot routes: `GET /cameras/{id}/snapshot.jpg`, `GET /streams/{path}/snapshot.jpg`,
//! `GET /cameras/{id}/frames/{n}.jpg` (frames announced on NATS), `GET
//! /recordings/{path}/frame.jpg?at=` (a recorded instant) and `GET /snapshots/stats`.
//! Owns parsing `?width=`/`?quality=` and the answer's headers; the work is mod.rs's.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::picture::{MAX_WIDTH, MIN_WIDTH};
use super::{DEFAULT_QUALITY, Jpeg, SnapshotStats, Snapshots};
use crate::cameras::validate_camera_id;
use crate::http::extract::{CameraIdParam, StreamPathParam};
use crate::http::refuse::{check_stream_path, stream_not_found};
use crate::http::{AppError, RouteDoc, Routes};
use crate::timestamps::{parse_time, rfc3339};

pub fn router(snaps: Arc<Snapshots>) -> (Router, Vec<RouteDoc>) {
    Routes::new()
        .get(
            "/cameras/{id}/snapshot.jpg",
            "the camera's latest frame as JPEG (?width=16-3840, ?quality=1-100)",
            camera_snapshot,
        )
        .get(
            "/streams/{path}/snapshot.jpg",
            "a stream's latest frame as JPEG (?width=, ?quality=)",
            stream_snapshot,
        )
        .get(
            "/cameras/{id}/frames/{file}",
            "`{n}.jpg`: frame n as announced on NATS ({prefix}.camera.frame), for [nats] frame_keep; then 410",
            announced_frame,
        )
        .get(
            "/recordings/{path}/frame.jpg",
            "the recorded frame showing at ?at= (RFC 3339 or Unix seconds) as JPEG (?width=, ?quality=)",
            recorded_frame,
        )
        .get(
            "/snapshots/stats",
            "snapshot counters: requests, decodes, frames decoded, cache hits, warm decoders",
            stats,
        )
        .with_state(snaps)
}

/// `?width=` and `?quality=`, checked; other parameters (a viewer token) are not ours.
struct Shape {
    width: Option<u32>,
    quality: u8,
}

fn shape(q: &HashMap<String, String>) -> Result<Shape, AppError> {
    let width = match q.get("width") {
        None => None,
        Some(w) => match w.parse::<u32>() {
            Ok(w) if (MIN_WIDTH..=MAX_WIDTH).contains(&w) => Some(w),
            _ => {
                return Err(AppError::bad_request(
                    "invalid_width",
                    format!(
                        "width must be a whole number of pixels from {MIN_WIDTH} to {MAX_WIDTH}"
                    ),
                ));
            }
        },
    };
    let quality = match q.get("quality") {
        None => DEFAULT_QUALITY,
        Some(v) => match v.parse::<u8>() {
            Ok(v) if (1..=100).contains(&v) => v,
            _ => {
                return Err(AppError::bad_request(
                    "invalid_quality",
                    "quality must be a whole number from 1 to 100 (default 80)",
                ));
            }
        },
    };
    Ok(Shape { width, quality })
}

fn answer(snaps: &Snapshots, jpeg: Jpeg) -> Response {
    snaps.registry.add_bytes_sent(jpeg.data.len() as u64);
    let mut r = (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        jpeg.data,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&rfc3339(jpeg.wallclock)) {
        r.headers_mut().insert("x-frame-time", v);
    }
    r
}

async fn camera_snapshot(
    State(snaps): State<Arc<Snapshots>>,
    CameraIdParam(id): CameraIdParam,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, AppError> {
    let result = async {
        let shape = shape(&q)?;
        let stream = snaps
            .registry
            .by_camera(&id)
            .ok_or_else(|| AppError::camera_not_found(&id))?;
        let jpeg = snaps.snapshot(&stream, shape.width, shape.quality).await?;
        Ok(answer(&snaps, jpeg))
    }
    .await;
    snaps.answered(result)
}

async fn stream_snapshot(
    State(snaps): State<Arc<Snapshots>>,
    StreamPathParam(path): StreamPathParam,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, AppError> {
    let result = async {
        let shape = shape(&q)?;
        let stream = snaps
            .registry
            .get(&path)
            .ok_or_else(|| stream_not_found(&path))?;
        let jpeg = snaps.snapshot(&stream, shape.width, shape.quality).await?;
        Ok(answer(&snaps, jpeg))
    }
    .await;
    snaps.answered(result)
}

async fn announced_frame(
    State(snaps): State<Arc<Snapshots>>,
    Path((id, file)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, AppError> {
    let result = async {
        validate_camera_id(&id)
            .map_err(|e| AppError::bad_request("invalid_camera_id", e.message))?;
        let number = file
            .strip_suffix(".jpg")
            .filter(|n| !n.is_empty() && n.len() <= 20 && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| {
                AppError::bad_request(
                    "invalid_frame",
                    "a frame URL ends in {frame_number}.jpg, as the NATS frame message gives it",
                )
            })?;
        let shape = shape(&q)?;
        let jpeg = snaps
            .announced_frame(&id, number, shape.width, shape.quality)
            .await?;
        Ok(answer(&snaps, jpeg))
    }
    .await;
    snaps.answered(result)
}

async fn recorded_frame(
    State(snaps): State<Arc<Snapshots>>,
    Path(path): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, AppError> {
    let result = async {
        check_stream_path(&path)?;
        let at = match q.get("at") {
            None => {
                return Err(AppError::bad_request(
                    "missing_time",
                    "at is required: the recorded time to show, RFC 3339 or Unix seconds",
                ));
            }
            Some(v) => parse_time(v)
                .map_err(|m| AppError::bad_request("invalid_time", format!("at: {m}")))?,
        };
        let shape = shape(&q)?;
        let jpeg = snaps
            .recorded_frame(&path, at, shape.width, shape.quality)
            .await?;
        Ok(answer(&snaps, jpeg))
    }
    .await;
    snaps.answered(result)
}

async fn stats(State(snaps): State<Arc<Snapshots>>) -> Json<SnapshotStats> {
    Json(snaps.stats())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn width_and_quality_are_checked() {
        let s = shape(&q(&[])).unwrap();
        assert_eq!((s.width, s.quality), (None, 80));
        let s = shape(&q(&[("width", "320"), ("quality", "50"), ("token", "x")])).unwrap();
        assert_eq!((s.width, s.quality), (Some(320), 50));
        for bad in ["0", "15", "3841", "-1", "abc", "", "1e3", "99999999999"] {
            let e = shape(&q(&[("width", bad)])).err().unwrap();
            assert_eq!(e.code, "invalid_width", "{bad}");
        }
        for bad in ["0", "101", "x", "-5", "256"] {
            let e = shape(&q(&[("quality", bad)])).err().unwrap();
            assert_eq!(e.code, "invalid_quality", "{bad}");
        }
    }
}
