//! `GET /streams` and `GET /streams/{path}/viewers`: the live path's view of every camera.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};

use super::extract::StreamPathParam;
use super::{AppError, AppState};
use crate::streams::{StreamInfo, ViewersInfo};

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/streams", get(list))
        .route("/streams/{path}/viewers", get(viewers))
        .with_state(state)
}

async fn list(State(state): State<AppState>) -> Json<Vec<StreamInfo>> {
    Json(state.streams.stream_infos())
}

async fn viewers(
    State(state): State<AppState>,
    StreamPathParam(path): StreamPathParam,
) -> Result<Json<ViewersInfo>, AppError> {
    state
        .streams
        .viewers_info(&path)
        .map(Json)
        .ok_or_else(|| stream_not_found(&path))
}

/// 404 for a stream path (or camera id) that no camera has.
pub fn stream_not_found(path: &str) -> AppError {
    AppError::new(
        StatusCode::NOT_FOUND,
        "stream_not_found",
        format!("no camera has stream path or id {path:?}; see GET /streams"),
    )
}
