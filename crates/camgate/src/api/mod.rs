//! The HTTP API: shared state, the routers of each area merged in one place, and the layers
//! every route gets (request span, access control, body limit, JSON 404/405).
//!
//! Adding an area: write `fn router(state: AppState) -> Router` in its own file and merge it in
//! [`router`]. Adding runtime state (the live path's streams): add a field to [`AppState`].

pub mod auth;
mod cameras;
mod error;
pub mod extract;
pub(crate) mod health;
mod metrics;
mod streams;
mod trace;
pub mod urls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{from_fn, from_fn_with_state};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use error::AppError;
pub use health::{Stats, collect_stats};

use crate::config::Config;
use crate::db::Db;
use crate::events::Metrics;
use crate::ingest::rtsp::RtspSource;
use crate::streams::{LiveSettings, Streams};

/// What every handler can reach. Cheap to clone (everything is shared).
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    /// The address the listener is bound to (the real port when configured with port 0);
    /// URLs fall back to it when a request has no usable `Host`.
    pub local_addr: SocketAddr,
    pub started: Instant,
    /// The live path: every camera's runtime (hub, lifecycle, viewers).
    pub streams: Arc<Streams>,
    /// Counters of the HTTP-side outputs (HLS requests, WebSocket clients, NATS) for
    /// `/metrics`; the per-camera figures come from `streams`.
    pub metrics: Arc<Metrics>,
    /// Every camera's LL-HLS output that currently exists.
    pub hls: Arc<crate::hls::Hls>,
}

impl AppState {
    pub fn new(config: Arc<Config>, db: Db, local_addr: SocketAddr) -> Self {
        let streams = Streams::new(
            LiveSettings::from_config(&config),
            Arc::new(Arc::new(RtspSource::default())),
        );
        let metrics = Arc::new(Metrics::new(config.nats.enabled()));
        AppState {
            config,
            db,
            local_addr,
            started: Instant::now(),
            streams: streams.clone(),
            metrics,
            hls: crate::hls::Hls::new(streams.clone()),
        }
    }

    pub fn uptime_seconds(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// Cameras whose video is flowing.
    pub fn active_streams(&self) -> u64 {
        self.streams.active_streams() as u64
    }
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    let webrtc = crate::webrtc::WebRtc::start_or_unavailable(
        &state.config.webrtc,
        state.config.http.listen,
        crate::webrtc::Registry::new(state.streams.clone()),
    );
    let mut app = Router::new()
        .merge(health::router(state.clone()))
        .merge(cameras::router(state.clone()))
        .merge(metrics::router(state.clone()))
        .merge(streams::router(state.clone()))
        .merge(crate::events::ws::router(state.clone()))
        .merge(crate::mse::router(state.clone()))
        .merge(crate::hls::router(state.clone()))
        .merge(crate::webrtc::router(webrtc))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(extract::BODY_LIMIT))
        .layer(from_fn_with_state(state.clone(), auth::require_access))
        // The dashboard's static files hold no data, and the page must load before it can
        // ask for an API key: outside access control.
        .merge(crate::web::router());
    // Outside access control so that browsers' preflight requests (which carry no key) get
    // their CORS answer.
    if let Some(cors) = cors_layer(&state.config.http.cors_origins) {
        app = app.layer(cors);
    }
    // A bug must cost one request a JSON 500, never the connection or the process.
    app.layer(CatchPanicLayer::custom(panic_answer))
        .layer(from_fn(trace::trace_request))
}

fn panic_answer(_panic: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    use axum::response::IntoResponse;
    tracing::error!("a request handler panicked; this is a camgate bug");
    AppError::internal("internal_error", "internal error; see the server log").into_response()
}

fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    // Config validation has already refused anything that is not an exact origin.
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("x-api-key"),
            ]),
    )
}

async fn not_found() -> AppError {
    AppError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint; see docs/api.md",
    )
}

async fn method_not_allowed() -> AppError {
    AppError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not accept that method; see docs/api.md",
    )
}
