//! `GET /webrtc/{path}`: the player page people open from `webrtc_url` — one self-contained
//! HTML file (player.html: no CDN, no other request than WHEP itself), in the dashboard's
//! style. Its inline script and style run under a per-response CSP nonce, so nothing else
//! injected into the page could run. Owns no state.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::WebRtc;
use super::attach::AppError;

const PAGE: &str = include_str!("player.html");

pub async fn page(
    State(webrtc): State<Arc<WebRtc>>,
    Path(path): Path<String>,
) -> Result<Response, AppError> {
    // Unknown streams get the JSON 404 rather than a page that can only fail.
    let stream = webrtc.stream(&path)?;
    let path = stream.path();
    let nonce = format!("{:032x}", rand::random::<u128>());
    // The stream path is `[A-Za-z0-9_-]` (validated), so it is safe in HTML text; the JSON
    // form is what the script reads.
    let json = serde_json::to_string(&path).unwrap_or_else(|_| "\"\"".to_owned());
    let body = PAGE
        .replace("{{NONCE}}", &nonce)
        .replace("{{PATH_JSON}}", &json)
        .replace("{{PATH}}", &path);
    let csp = format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; \
         media-src 'self' blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'self'"
    );
    let mut r = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response();
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(r)
}
