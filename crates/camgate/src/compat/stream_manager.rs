//! The Go stream manager's API (seed 003) and the Angular grid's HLS lookup (seed 004):
//!
//! - `GET /api/stream/start?indicator_id=&rtsp_link=` provisions an on-demand camera
//!   `indicator_id` through [`Provisioning`] (validated like `POST /cameras/provision`), or
//!   finds it (`"existing"` when it is live now; a different `rtsp_link` updates it), and
//!   holds it connected for a moment so the player that follows gets video at once.
//! - `POST /api/stream/stop {"indicator_id"}` ends the session now ([`Live::stop`]); the
//!   camera stays provisioned and the next viewer starts it again.
//! - `GET /api/stream/status?indicator_id=` is the camera's status with the seed's fields.
//! - `GET /api/stream/hls/{camera_id}` is the camera's HLS URL.
//!
//! Passwords never come back: answers hold no camera URL, and error messages are built from
//! our own text.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use serde_json::{Map, Value, json};

use crate::cameras::{CameraSpec, InvalidInput, StreamState, parse_provision};
use crate::http::extract::{CameraIdParam, JsonBody};
use crate::http::{AppError, PublicBase, Routes};
use crate::live::Live;
use crate::provisioning::Provisioning;
use crate::tasks::{TaskHandle, Tasks};

/// The stream manager routes' state.
#[derive(Clone)]
pub struct StreamManager {
    provisioning: Arc<Provisioning>,
    live: Arc<Live>,
    tasks: Tasks,
    hold_for: Duration,
    /// The demand hold of each started camera; a new start replaces it.
    holds: Arc<Mutex<HashMap<String, TaskHandle>>>,
}

impl StreamManager {
    pub fn new(
        provisioning: Arc<Provisioning>,
        live: Arc<Live>,
        tasks: Tasks,
        hold_for: Duration,
    ) -> StreamManager {
        StreamManager {
            provisioning,
            live,
            tasks,
            hold_for,
            holds: Arc::default(),
        }
    }

    /// Keeps the camera connected for `hold_for` without counting a viewer: the seed's
    /// manager starts ffmpeg at once, and players arrive a moment after the answer.
    fn hold(&self, camera_id: &str) {
        let Some(stream) = self.live.get(camera_id) else {
            return;
        };
        let hold_for = self.hold_for;
        let task = self
            .tasks
            .spawn(format!("stream start hold {camera_id}"), async move {
                let _guard = stream.hold();
                tokio::time::sleep(hold_for).await;
            });
        let mut holds = self.holds.lock().unwrap_or_else(|p| p.into_inner());
        holds.retain(|_, t| !t.is_finished());
        if let Some(old) = holds.insert(camera_id.to_owned(), task) {
            old.abort();
        }
    }

    fn release(&self, camera_id: &str) {
        let mut holds = self.holds.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = holds.remove(camera_id) {
            old.abort();
        }
    }
}

pub fn routes(r: Routes<StreamManager>) -> Routes<StreamManager> {
    r.get(
        "/api/stream/start",
        "Stream manager: provision (or find) an on-demand camera and start it",
        start,
    )
    .query(&[("indicator_id", true), ("rtsp_link", true)])
    .post(
        "/api/stream/stop",
        "Stream manager: stop a camera's live session now (it stays provisioned)",
        stop,
    )
    .get(
        "/api/stream/status",
        "Stream manager: whether a camera is streaming, with its status",
        status,
    )
    .query(&[("indicator_id", true)])
    .get(
        "/api/stream/hls/{camera_id}",
        "A camera's HLS playlist URL (Angular grid compatibility)",
        hls_url,
    )
}

/// `/streams/{id}/stream.m3u8`, the path the seed's clients append to their base URL.
fn stream_path(camera_id: &str) -> String {
    format!("/streams/{camera_id}/stream.m3u8")
}

/// The query's parameters, each at most once.
fn query(uri: &Uri) -> HashMap<String, String> {
    url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn required<'a>(q: &'a HashMap<String, String>, name: &str) -> Result<&'a str, AppError> {
    q.get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            AppError::bad_request(
                if name == "indicator_id" {
                    "missing_indicator_id"
                } else {
                    "missing_rtsp_link"
                },
                format!(
                    "the query parameter `{name}` is required, e.g. /api/stream/start?indicator_id=123&rtsp_link=rtsp://camera.example/stream"
                ),
            )
        })
}

/// Validation errors in this API's own parameter names.
fn in_our_words(e: InvalidInput) -> AppError {
    let message = e
        .message
        .replace("rtsp_url", "rtsp_link")
        .replace("camera_id", "indicator_id");
    AppError::from(InvalidInput::new(e.code, message))
}

fn indicator(q: &HashMap<String, String>) -> Result<String, AppError> {
    let id = required(q, "indicator_id")?;
    crate::cameras::validate_camera_id(id).map_err(in_our_words)?;
    Ok(id.to_owned())
}

async fn start(State(sm): State<StreamManager>, uri: Uri) -> Result<Json<Value>, AppError> {
    let q = query(&uri);
    let id = indicator(&q)?;
    let link = required(&q, "rtsp_link")?;
    // The same validation as POST /cameras/provision, on the same fields.
    let asked =
        parse_provision(&json!({ "camera_id": id, "rtsp_url": link })).map_err(in_our_words)?;
    let stored = sm.provisioning.db().camera(&id).await?;
    let status = match stored {
        Some(camera) if camera.spec.rtsp_url == asked.rtsp_url => {
            let live_now = sm
                .live
                .get(&id)
                .is_some_and(|s| s.state().state == StreamState::Live);
            if live_now { "existing" } else { "started" }
        }
        Some(camera) => {
            // A new link for a known camera: only the link changes, the rest stays as
            // provisioned (name, recording, transport...).
            let spec = CameraSpec {
                rtsp_url: asked.rtsp_url,
                ..camera.spec
            };
            sm.provisioning.provision(spec, "stream manager").await?;
            "started"
        }
        None => {
            sm.provisioning.provision(asked, "stream manager").await?;
            "started"
        }
    };
    sm.hold(&id);
    Ok(Json(
        json!({ "stream_path": stream_path(&id), "status": status }),
    ))
}

async fn stop(
    State(sm): State<StreamManager>,
    JsonBody(body): JsonBody,
) -> Result<Json<Value>, AppError> {
    let id = match body.get("indicator_id") {
        Some(Value::String(s)) => s.clone(),
        // `123` and `"123"` are the same indicator, as camera ids are.
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => n.to_string(),
        Some(_) => {
            return Err(AppError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_indicator_id",
                "indicator_id must be a string of 1-64 characters [A-Za-z0-9_-] or an integer",
            ));
        }
        None => {
            return Err(AppError::bad_request(
                "missing_indicator_id",
                "send {\"indicator_id\": \"123\"}",
            ));
        }
    };
    crate::cameras::validate_camera_id(&id).map_err(in_our_words)?;
    sm.release(&id);
    if !sm.live.stop(&id) {
        return Err(AppError::camera_not_found(&id));
    }
    tracing::info!(camera_id = %id, "stream stopped through the stream manager API");
    Ok(Json(json!({ "indicator_id": id, "status": "stopped" })))
}

async fn status(State(sm): State<StreamManager>, uri: Uri) -> Result<Json<Value>, AppError> {
    let id = indicator(&query(&uri))?;
    let camera = sm
        .provisioning
        .db()
        .camera(&id)
        .await?
        .ok_or_else(|| AppError::camera_not_found(&id))?;
    let status = match sm.live.get(&id) {
        Some(s) => s.status(),
        None => crate::cameras::CameraStatus::idle(&camera),
    };
    let active = status.state == StreamState::Live;
    let Value::Object(fields) = serde_json::to_value(&status)
        .map_err(|_| AppError::internal("internal_error", "the status could not be encoded"))?
    else {
        return Err(AppError::internal(
            "internal_error",
            "the status is not an object",
        ));
    };
    // Our status fields, with the seed's three in its meaning: `stream_path` is the
    // playlist path, and camgate's own stream path moves to `camera_stream_path`.
    let mut answer = Map::new();
    answer.insert("indicator_id".into(), Value::String(id.clone()));
    for (k, v) in fields {
        let k = if k == "stream_path" {
            "camera_stream_path".to_owned()
        } else {
            k
        };
        answer.insert(k, v);
    }
    answer.insert("stream_path".into(), Value::String(stream_path(&id)));
    answer.insert(
        "status".into(),
        Value::String(if active { "active" } else { "inactive" }.into()),
    );
    Ok(Json(Value::Object(answer)))
}

async fn hls_url(
    State(sm): State<StreamManager>,
    base: PublicBase,
    CameraIdParam(id): CameraIdParam,
) -> Result<Json<Value>, AppError> {
    let camera = sm
        .provisioning
        .db()
        .camera(&id)
        .await?
        .ok_or_else(|| AppError::camera_not_found(&id))?;
    let sp = &camera.spec.stream_path;
    Ok(Json(json!({
        "camera_id": camera.spec.camera_id,
        "hls_url": base.http(&format!("/hls/{sp}/index.m3u8")),
    })))
}
