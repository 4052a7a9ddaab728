//! Every error answer is the JSON error shape, including those written by code that is not
//! ours (axum's extractor rejections such as a WebSocket URL fetched without an upgrade, the
//! body limit, tower layers): a non-JSON 4xx/5xx body is replaced by
//! `{"error":{"code","message"}}` with the same status. Applied once, by `api::merge`.

use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppError;

pub async fn json_errors(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let websocket_url = ["/mse/", "/ws/", "/api/ws/"]
        .iter()
        .any(|p| path.starts_with(p));
    let response = next.run(req).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if json {
        return response;
    }
    let code = match status.as_u16() {
        400 => "bad_request",
        404 => "not_found",
        405 => "method_not_allowed",
        413 => "body_too_large",
        415 => "unsupported_media_type",
        426 => "upgrade_required",
        431 => "headers_too_large",
        429 => "too_many_requests",
        s if s >= 500 => "internal_error",
        _ => "request_refused",
    };
    let reason = status.canonical_reason().unwrap_or("error");
    let message = match status.as_u16() {
        400 | 426 if websocket_url => {
            "this URL is a WebSocket: connect with a WebSocket client (Upgrade: websocket)"
                .to_owned()
        }
        _ => format!("{reason}; see docs/api.md"),
    };
    let mut error = AppError::new(status, code, message);
    if let Some(www) = response.headers().get(header::WWW_AUTHENTICATE)
        && www.as_bytes() == b"Bearer"
    {
        error.www_authenticate = Some("Bearer");
    }
    let mut answer = error.into_response();
    // Keep what the original answer said about retrying or allowed methods.
    for name in [
        header::RETRY_AFTER,
        header::ALLOW,
        header::SEC_WEBSOCKET_VERSION,
    ] {
        if let Some(v) = response.headers().get(&name) {
            answer.headers_mut().insert(name, v.clone());
        }
    }
    answer
}
