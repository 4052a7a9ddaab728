//! `GET /health`, `GET /api/health` and `GET /stats` (whose numbers `WS /ws/dashboard` sends
//! too, from [`collect_stats`]).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::{AppError, AppState};
use crate::events::NatsStatus;
use crate::events::metrics::WsEndpoint;
use crate::streams::ByProtocol;

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
    /// Optional parts that are not working but do not stop video (NATS down); the status
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
async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let mut reasons = Vec::new();
    if let Err(e) = state.db.check_health().await {
        tracing::warn!(error = %e, "health check: storage failed");
        reasons.push(format!("storage: {e}"));
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

/// `GET /stats` and the dashboard's `stats` message. Every number is also in `/metrics`
/// under the name given (docs/events.md), read from the same source.
#[derive(Clone, Debug, Serialize)]
pub struct Stats {
    /// `camgate_active_streams`
    pub active_streams: u64,
    /// `camgate_viewers` (summed over `protocol`)
    pub total_viewers: u64,
    /// `camgate_sent_bytes_total`
    pub total_bytes_sent: u64,
    /// `camgate_received_bytes_total`
    pub total_bytes_received: u64,
    /// `camgate_uptime_seconds`
    pub uptime_seconds: u64,
    /// `camgate_cameras`
    pub cameras: u64,
    /// `camgate_cameras_online`
    pub cameras_online: u64,
    /// `camgate_viewers{protocol}`
    pub viewers_by_protocol: ByProtocol,
    /// `camgate_websocket_clients{endpoint}` summed
    pub websocket_clients: u64,
    /// `camgate_nats_up` (`disabled`, `connecting`, `connected`, `disconnected`)
    pub nats: &'static str,
}

pub async fn collect_stats(state: &AppState) -> Result<Stats, AppError> {
    let cameras = state.db.camera_count().await?;
    let streams = &state.streams;
    let mut by = ByProtocol::default();
    for rt in streams.list() {
        let c = rt.viewers().counts();
        by.hls += c.hls;
        by.webrtc += c.webrtc;
        by.mse += c.mse;
        by.rtsp += c.rtsp;
    }
    let active = state.active_streams();
    Ok(Stats {
        active_streams: active,
        total_viewers: u64::from(by.total()),
        total_bytes_sent: streams.total_bytes_sent(),
        total_bytes_received: streams.total_bytes_received(),
        uptime_seconds: state.uptime_seconds(),
        cameras,
        // Online means video is flowing, the same as an active stream.
        cameras_online: active,
        viewers_by_protocol: by,
        websocket_clients: state.metrics.ws_clients(WsEndpoint::Events)
            + state.metrics.ws_clients(WsEndpoint::Dashboard),
        nats: state.metrics.nats_status().as_str(),
    })
}

async fn stats(State(state): State<AppState>) -> Result<Json<Stats>, AppError> {
    Ok(Json(collect_stats(&state).await?))
}
