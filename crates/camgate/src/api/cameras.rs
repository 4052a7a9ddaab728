//! The camera registry over HTTP: provision (upsert), list, info, status, delete.
//!
//! Handlers stay small: validate, call the registry, shape the answer, and tell the live path
//! (provision starts or restarts the camera's runtime, delete stops it, status reads it).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Json, Router};
use serde::Serialize;

use crate::cameras::{Camera, CameraStatus, RecordingBoard, parse_provision};
use crate::db::Upserted;
use crate::http::extract::{CameraIdParam, JsonBody};
use crate::http::{AppError, PublicBase, RouteDoc, Routes};
use crate::live::Live;
use crate::provisioning::Provisioning;
use crate::timestamps::rfc3339;

/// The camera routes' state.
#[derive(Clone)]
pub struct CamerasState {
    pub provisioning: Arc<Provisioning>,
    pub live: Arc<Live>,
    /// The listener's address; URLs fall back to it when a request has no usable `Host`.
    pub local_addr: SocketAddr,
    /// The recorder's state per stream: the status's `recording` object.
    pub recordings: RecordingBoard,
}

pub fn router(state: CamerasState) -> (Router, Vec<RouteDoc>) {
    Routes::new()
        .post(
            "/cameras/provision",
            "Provision a camera (create or update)",
            provision,
        )
        .post("/cameras", "Provision a camera (alias)", provision)
        .get("/cameras", "List cameras (URLs redacted)", list)
        .get("/cameras/{id}", "One camera's info (alias)", info)
        .delete("/cameras/{id}", "Delete a camera", delete)
        .get("/cameras/{id}/info", "One camera's info", info)
        .get("/cameras/{id}/status", "One camera's live status", status)
        .with_state(state)
}

/// The answer to a provision: where to watch the camera.
#[derive(Serialize)]
struct Provisioned {
    success: bool,
    camera_id: String,
    stream_path: String,
    hls_url: String,
    /// The player page a person opens.
    webrtc_url: String,
    /// The WHEP endpoint a program POSTs its offer to.
    whep_url: String,
    mse_url: String,
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
    /// The transcode profiles attached at provisioning (besides the built-in `h264`);
    /// `null` when none were given and the config's `[profiles.NAME] cameras` decide.
    profiles: Option<Vec<String>>,
    /// The per-camera frame message interval in seconds (the provisioning field, so an info
    /// object provisions the same camera again), `null` when `[nats] frame_interval` applies.
    frame_interval: Option<f64>,
    created_at: String,
    updated_at: String,
}

impl From<&Camera> for CameraInfo {
    fn from(camera: &Camera) -> Self {
        let c = &camera.spec;
        CameraInfo {
            camera_id: c.camera_id.clone(),
            name: c.name.clone(),
            rtsp_url: c.rtsp_url.redacted(),
            stream_path: c.stream_path.clone(),
            on_demand: c.on_demand,
            record: c.record,
            transport: c.transport.as_str(),
            idle_timeout_seconds: c.idle_timeout.map(|d| d.as_secs_f64()),
            profiles: c.profiles.clone(),
            frame_interval: c.frame_interval.map(|d| d.as_secs_f64()),
            created_at: rfc3339(camera.created_at),
            updated_at: rfc3339(camera.updated_at),
        }
    }
}

async fn provision(
    State(state): State<CamerasState>,
    base: PublicBase,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Provisioned>), AppError> {
    let spec = parse_provision(&body)?;
    // Before storing: a camera is never saved with a profile it cannot be served with.
    state.live.check_profiles(&spec)?;
    state.live.check_grid_names(&spec)?;
    let (camera, how) = state.provisioning.provision(spec, "api").await?;
    let camera = camera.spec;
    let sp = &camera.stream_path;
    let answer = Provisioned {
        success: true,
        hls_url: base.http(&format!("/hls/{sp}/index.m3u8")),
        webrtc_url: base.http(&format!("/webrtc/{sp}")),
        whep_url: base.http(&format!("/webrtc/{sp}/whep")),
        mse_url: base.ws(&format!("/mse/{sp}")),
        snapshot_url: base.http(&format!("/cameras/{}/snapshot.jpg", camera.camera_id)),
        ws_events_url: base.ws(&format!("/ws/events/{sp}")),
        camera_id: camera.camera_id,
        stream_path: camera.stream_path,
    };
    let status = match how {
        Upserted::Created => StatusCode::CREATED,
        Upserted::Updated => StatusCode::OK,
    };
    Ok((status, Json(answer)))
}

async fn list(State(state): State<CamerasState>) -> Result<Json<Vec<CameraInfo>>, AppError> {
    let cameras = state.provisioning.db().cameras().await?;
    Ok(Json(cameras.iter().map(CameraInfo::from).collect()))
}

async fn find(state: &CamerasState, camera_id: &str) -> Result<Camera, AppError> {
    state
        .provisioning
        .db()
        .camera(camera_id)
        .await?
        .ok_or_else(|| AppError::camera_not_found(camera_id))
}

async fn info(
    State(state): State<CamerasState>,
    CameraIdParam(id): CameraIdParam,
) -> Result<Json<CameraInfo>, AppError> {
    let camera = find(&state, &id).await?;
    Ok(Json(CameraInfo::from(&camera)))
}

async fn status(
    State(state): State<CamerasState>,
    CameraIdParam(id): CameraIdParam,
) -> Result<Json<CameraStatus>, AppError> {
    let camera = find(&state, &id).await?;
    let mut status = match state.live.get(&camera.spec.camera_id) {
        Some(rt) => rt.status(),
        None => CameraStatus::idle(&camera),
    };
    if camera.spec.record {
        status.recording = state.recordings.get(&status.stream_path);
    }
    Ok(Json(status))
}

async fn delete(
    State(state): State<CamerasState>,
    CameraIdParam(id): CameraIdParam,
) -> Result<StatusCode, AppError> {
    if !state.provisioning.delete(&id).await? {
        return Err(AppError::camera_not_found(&id));
    }
    Ok(StatusCode::NO_CONTENT)
}
