//! `GET /health`, `GET /api/health` and `GET /stats` (whose numbers `WS /ws/dashboard` sends
//! too, from [`collect_stats`]).

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Json, Router};
use serde::Serialize;

use crate::cameras::RecordingBoard;
use crate::events::NatsStatus;
use crate::http::{AppError, RouteDoc, Routes};
use crate::stats::{Stats, Totals};

#[derive(Clone)]
struct HealthState {
    totals: Totals,
    recordings: RecordingBoard,
}

pub fn router(totals: Totals, recordings: RecordingBoard) -> (Router, Vec<RouteDoc>) {
    Routes::new()
        .get("/health", "Liveness and storage health", health)
        .get(
            "/api/health",
            "Liveness and storage health (compatibility path)",
            health,
        )
        .get("/stats", "Totals: streams, viewers, bytes, cameras", stats)
        .with_state(HealthState { totals, recordings })
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
    /// Optional parts that are not working but do not stop video (NATS down, recording disk
    /// pressure, an ambiguous stream path); the status
    /// stays `healthy` and the answer 200, so a load balancer keeps sending viewers.
    warnings: Vec<String>,
    nats: NatsHealth,
}

#[derive(Serialize)]
struct NatsHealth {
    /// `disabled`, `connecting`, `connected` or `disconnected`.
    status: &'static str,
    last_error: Option<String>,
}

/// 200 when the database can be read and written, 503 `degraded` with reasons otherwise.
/// (The listener is evidently up: it is answering.) NATS being unreachable is a warning, not
/// a degradation: events to other services pause, video does not (docs/events.md).
async fn health(State(hs): State<HealthState>) -> (StatusCode, Json<Health>) {
    let state = hs.totals;
    let mut reasons = Vec::new();
    if let Err(e) = state.db.check_health().await {
        tracing::warn!(error = %e, "health check: storage failed");
        reasons.push(format!("storage: {e}"));
    }
    // The probe above may still fit where real writes no longer do (a full disk with WAL
    // space left): the last failed write counts at once, until a write succeeds.
    if let Some(e) = state.db.last_write_error() {
        reasons.push(format!("storage: the last registry write failed: {e}"));
    }
    let nats = state.metrics.nats_status();
    let mut warnings = Vec::new();
    if matches!(nats, NatsStatus::Connecting | NatsStatus::Disconnected) {
        let why = state
            .metrics
            .nats_last_error()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default();
        warnings.push(format!(
            "nats: {}; events are not reaching NATS, video is unaffected{why}",
            nats.as_str()
        ));
    }
    // A full recording disk is a warning: live video goes on (docs/recording.md).
    warnings.extend(hs.recordings.warnings());
    // Stored before such pairs were refused; they work (the stream path wins) but an operator
    // should rename one.
    match state.db.ambiguous_paths().await {
        Ok(ambiguous) => warnings.extend(ambiguous),
        Err(e) => reasons.push(format!("storage: {e}")),
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
        warnings,
        nats: NatsHealth {
            status: nats.as_str(),
            last_error: state.metrics.nats_last_error(),
        },
    };
    (status, Json(body))
}

async fn stats(State(state): State<HealthState>) -> Result<Json<Stats>, AppError> {
    Ok(Json(state.totals.collect().await?))
}
