//! The camera registry over HTTP: provision (upsert), list, info, status, delete.
//!
//! Handlers stay small: validate, call the registry, shape the answer, and tell the live path
//! (provision starts or restarts the camera's runtime, delete stops it, status reads it).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;

use super::extract::{CameraIdParam, JsonBody};
use super::urls::public_authority;
use super::{AppError, AppState};
use crate::cameras::{Camera, CameraStatus, parse_provision};
use crate::db::Upserted;
use crate::events::{CameraAction, CameraEvent, Event, now};
use crate::streams::LiveCamera;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/cameras/provision", post(provision))
        .route("/cameras", post(provision).get(list))
        .route("/cameras/{id}", get(info).delete(delete))
        .route("/cameras/{id}/info", get(info))
        .route("/cameras/{id}/status", get(status))
        .with_state(state)
}

/// The answer to a provision: where to watch the camera.
#[derive(Serialize)]
struct Provisioned {
    success: bool,
    camera_id: String,
    stream_path: String,
    hls_url: String,
    webrtc_url: String,
    snapshot_url: String,
    ws_events_url: String,
}

/// What `GET /cameras` and `GET /cameras/{id}/info` show of a camera; the URL redacted.
#[derive(Serialize)]
struct CameraInfo {
    camera_id: String,
    name: String,
    rtsp_url: String,
    stream_path: String,
    on_demand: bool,
    record: bool,
    transport: &'static str,
    /// The per-camera idle timeout, `null` when the configured default applies.
    idle_timeout_seconds: Option<f64>,
    created_at: String,
    updated_at: String,
}

impl From<&Camera> for CameraInfo {
    fn from(c: &Camera) -> Self {
        CameraInfo {
            camera_id: c.camera_id.clone(),
            name: c.name.clone(),
            rtsp_url: c.redacted_url(),
            stream_path: c.stream_path.clone(),
            on_demand: c.on_demand,
            record: c.record,
            transport: c.transport.as_str(),
            idle_timeout_seconds: c.idle_timeout.map(|d| d.as_secs_f64()),
            created_at: rfc3339(c.created_at),
            updated_at: rfc3339(c.updated_at),
        }
    }
}

/// RFC 3339 in UTC with exactly three fractional digits, so timestamps have one length and
/// sort as text (`2026-11-22T00:37:44.790Z`).
fn rfc3339(t: time::OffsetDateTime) -> String {
    const FORMAT: &[time::format_description::FormatItem<'static>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    // Any time from our own database (Unix milliseconds, stored in UTC) formats.
    t.to_offset(time::UtcOffset::UTC)
        .format(FORMAT)
        .unwrap_or_default()
}

async fn provision(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Provisioned>), AppError> {
    let spec = parse_provision(&body)?;
    let (camera, how) = state.db.upsert_camera(spec).await?;
    tracing::info!(
        camera_id = %camera.camera_id,
        stream_path = %camera.stream_path,
        rtsp_url = %camera.redacted_url(),
        created = how == Upserted::Created,
        "camera provisioned"
    );
    tracing::debug!(?camera, "provisioned camera record");
    state.streams.upsert(LiveCamera::from(&camera));
    state.streams.events().publish(Event::Camera(CameraEvent {
        action: match how {
            Upserted::Created => CameraAction::Provisioned,
            Upserted::Updated => CameraAction::Updated,
        },
        camera_id: camera.camera_id.clone(),
        stream_path: camera.stream_path.clone(),
        ts: now(),
    }));
    let host = public_authority(&headers, state.local_addr);
    let sp = &camera.stream_path;
    let answer = Provisioned {
        success: true,
        hls_url: format!("http://{host}/hls/{sp}/index.m3u8"),
        webrtc_url: format!("http://{host}/webrtc/{sp}/whep"),
        snapshot_url: format!("http://{host}/cameras/{}/snapshot.jpg", camera.camera_id),
        ws_events_url: format!("ws://{host}/ws/events/{sp}"),
        camera_id: camera.camera_id,
        stream_path: camera.stream_path,
    };
    let status = match how {
        Upserted::Created => StatusCode::CREATED,
        Upserted::Updated => StatusCode::OK,
    };
    Ok((status, Json(answer)))
}

async fn list(State(state): State<AppState>) -> Result<Json<Vec<CameraInfo>>, AppError> {
    let cameras = state.db.cameras().await?;
    Ok(Json(cameras.iter().map(CameraInfo::from).collect()))
}

async fn find(state: &AppState, camera_id: &str) -> Result<Camera, AppError> {
    state
        .db
        .camera(camera_id)
        .await?
        .ok_or_else(|| AppError::camera_not_found(camera_id))
}

async fn info(
    State(state): State<AppState>,
    CameraIdParam(id): CameraIdParam,
) -> Result<Json<CameraInfo>, AppError> {
    let camera = find(&state, &id).await?;
    Ok(Json(CameraInfo::from(&camera)))
}

async fn status(
    State(state): State<AppState>,
    CameraIdParam(id): CameraIdParam,
) -> Result<Json<CameraStatus>, AppError> {
    let camera = find(&state, &id).await?;
    Ok(Json(match state.streams.get(&camera.camera_id) {
        Some(rt) => rt.status(),
        None => CameraStatus::idle(&camera),
    }))
}

async fn delete(
    State(state): State<AppState>,
    CameraIdParam(id): CameraIdParam,
) -> Result<StatusCode, AppError> {
    let stream_path = state.streams.get(&id).map(|rt| rt.stream_path());
    if !state.db.delete_camera(&id).await? {
        return Err(AppError::camera_not_found(&id));
    }
    state.streams.remove(&id);
    state.streams.events().publish(Event::Camera(CameraEvent {
        action: CameraAction::Deleted,
        stream_path: stream_path.unwrap_or_else(|| crate::cameras::default_stream_path(&id)),
        camera_id: id.clone(),
        ts: now(),
    }));
    tracing::info!(camera_id = %id, "camera deleted");
    Ok(StatusCode::NO_CONTENT)
}
