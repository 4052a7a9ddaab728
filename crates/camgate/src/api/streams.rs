//! `GET /streams` and `GET /streams/{path}/viewers`: the live path's view of every stream.

use std::sync::Arc;

use axum::extract::State;
use axum::{Json, Router};

use crate::http::extract::StreamPathParam;
use crate::http::refuse::stream_not_found;
use crate::http::{AppError, RouteDoc, Routes};
use crate::live::{Live, StreamInfo, ViewersInfo};

pub fn router(live: Arc<Live>) -> (Router, Vec<RouteDoc>) {
    Routes::new()
        .get("/streams", "Every stream with its state and viewers", list)
        .get(
            "/streams/{path}/viewers",
            "Viewers of one stream by protocol",
            viewers,
        )
        .with_state(live)
}

async fn list(State(live): State<Arc<Live>>) -> Json<Vec<StreamInfo>> {
    Json(live.stream_infos())
}

async fn viewers(
    State(live): State<Arc<Live>>,
    StreamPathParam(path): StreamPathParam,
) -> Result<Json<ViewersInfo>, AppError> {
    live.viewers_info(&path)
        .map(Json)
        .ok_or_else(|| stream_not_found(&path))
}
