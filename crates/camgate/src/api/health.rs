//! `GET /health`, `GET /api/health` and `GET /stats`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::{AppError, AppState};

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/api/health", get(health))
        .route("/stats", get(stats))
        .with_state(state)
}

#[derive(Serialize)]
struct Health {
    /// `healthy` or `degraded`.
    status: &'static str,
    active_streams: u64,
    uptime_seconds: u64,
    version: &'static str,
    /// Why the service is degraded; empty when healthy.
    reasons: Vec<String>,
}

/// 200 when the database can be read and written, 503 `degraded` with reasons otherwise.
/// (The listener is evidently up: it is answering.)
async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let mut reasons = Vec::new();
    if let Err(e) = state.db.check_health().await {
        tracing::warn!(error = %e, "health check: storage failed");
        reasons.push(format!("storage: {e}"));
    }
    let status = if reasons.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Health {
        status: if reasons.is_empty() {
            "healthy"
        } else {
            "degraded"
        },
        active_streams: state.active_streams(),
        uptime_seconds: state.uptime_seconds(),
        version: env!("CARGO_PKG_VERSION"),
        reasons,
    };
    (status, Json(body))
}

#[derive(Serialize)]
struct Stats {
    active_streams: u64,
    total_viewers: u64,
    total_bytes_sent: u64,
    total_bytes_received: u64,
    uptime_seconds: u64,
    cameras: u64,
    cameras_online: u64,
}

async fn stats(State(state): State<AppState>) -> Result<Json<Stats>, AppError> {
    let cameras = state.db.camera_count().await?;
    let streams = &state.streams;
    Ok(Json(Stats {
        active_streams: state.active_streams(),
        total_viewers: u64::from(streams.total_viewers()),
        total_bytes_sent: streams.total_bytes_sent(),
        total_bytes_received: streams.total_bytes_received(),
        uptime_seconds: state.uptime_seconds(),
        cameras,
        // Online means video is flowing, the same as an active stream.
        cameras_online: state.active_streams(),
    }))
}
