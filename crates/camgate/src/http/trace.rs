//! One tracing span per request (method, matched route, status, latency) and one event when
//! it completes. The route template (`/cameras/{id}/info`) is logged, not the raw URI, so query
//! strings (which may carry tokens) never reach the log.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use tracing::{Instrument, field};

/// Media routes are requested many times a second per viewer; their completions log at
/// debug so `info` stays readable.
const MEDIA_PREFIXES: &[&str] = &["/hls/", "/webrtc/", "/mse/", "/streams/{path}/stream.m3u8"];

pub async fn trace_request(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("<unmatched>", MatchedPath::as_str)
        .to_owned();
    let span = tracing::info_span!(
        "request",
        method = %method,
        path = %route,
        status = field::Empty,
        latency_ms = field::Empty,
    );
    let started = Instant::now();
    let response = next.run(req).instrument(span.clone()).await;
    let status = response.status().as_u16();
    // Microsecond resolution is plenty and keeps log lines short.
    let latency_ms = (started.elapsed().as_secs_f64() * 1e6).round() / 1e3;
    span.record("status", status);
    span.record("latency_ms", latency_ms);
    let _entered = span.enter();
    if MEDIA_PREFIXES.iter().any(|p| route.starts_with(p)) && status < 400 {
        tracing::debug!("request completed");
    } else {
        tracing::info!("request completed");
    }
    response
}
