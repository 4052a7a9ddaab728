//! The WHEP routes (draft-ietf-wish-whep, signalling as RFC 9725 WHIP):
//! `POST /webrtc/{path}/whep` (offer in, `201` answer out with `Location`, `ETag` and the ICE
//! servers as `Link` headers), `PATCH`/`DELETE` on the `Location`, `OPTIONS` for clients that
//! ask what the endpoint accepts, and the player page `GET /webrtc/{path}` (player.rs).
//! Only HTTP here: sessions are made in mod.rs. Access control is the API merge's.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::WebRtc;
use super::attach::AppError;
use super::sdp::{SdpFrag, restart_answer};
use crate::http::{RouteDoc, Routes};

/// Headers a player page on another origin must be able to read (CORS).
const EXPOSE: &str = "Location, ETag, Link, Accept-Patch";
const SDP: &str = "application/sdp";
const SDPFRAG: &str = "application/trickle-ice-sdpfrag";

pub fn router(webrtc: Arc<WebRtc>) -> (Router, Vec<RouteDoc>) {
    Routes::new()
        .get(
            "/webrtc/{path}",
            "WebRTC player page (WHEP, no dependencies)",
            super::player::page,
        )
        .post(
            "/webrtc/{path}/whep",
            "WHEP: SDP offer in, SDP answer and session Location out",
            offer,
        )
        .options(
            "/webrtc/{path}/whep",
            "WHEP: allowed methods and ICE servers",
            options,
        )
        .patch(
            "/webrtc/{path}/whep/{session}",
            "WHEP: trickle ICE candidates or an ICE restart",
            patch_session,
        )
        .delete(
            "/webrtc/{path}/whep/{session}",
            "WHEP: end the session",
            delete_session,
        )
        .with_state(webrtc)
}

async fn options() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (header::ALLOW, "OPTIONS, POST"),
            (HeaderName::from_static("accept-post"), SDP),
        ],
    )
        .into_response()
}

fn content_type_is(headers: &HeaderMap, want: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(want))
}

fn body_text(body: Result<Bytes, BytesRejection>) -> Result<String, AppError> {
    let body = body.map_err(|e| {
        AppError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the body cannot be read: {e} (at most 64 KiB)"),
        )
    })?;
    String::from_utf8(body.to_vec())
        .map_err(|_| AppError::bad_request("invalid_sdp", "the body is not UTF-8 text"))
}

async fn offer(
    State(webrtc): State<Arc<WebRtc>>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    if !content_type_is(&headers, SDP) {
        return Err(AppError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "a WHEP offer is sent as Content-Type: application/sdp",
        ));
    }
    let sdp = body_text(body)?;
    let created = webrtc.create_session(&path, &sdp).await?;
    let mut r = (StatusCode::CREATED, created.answer).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(SDP));
    // Built from a valid stream path and a hex id: always a valid header value.
    if let Ok(v) = HeaderValue::from_str(&format!("/webrtc/{path}/whep/{}", created.id)) {
        h.insert(header::LOCATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", created.etag)) {
        h.insert(header::ETAG, v);
    }
    for link in webrtc
        .config()
        .ice_servers
        .iter()
        .filter_map(|s| s.link_header())
    {
        if let Ok(v) = HeaderValue::from_str(&link) {
            h.append(header::LINK, v);
        }
    }
    h.insert(
        HeaderName::from_static("accept-patch"),
        HeaderValue::from_static(SDPFRAG),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSE),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

fn session_not_found(id: &str) -> AppError {
    // The id is echoed only when it looks like one of ours (no request text in answers).
    let shown = if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        id
    } else {
        "(malformed id)"
    };
    AppError::new(
        StatusCode::NOT_FOUND,
        "session_not_found",
        format!("no WHEP session {shown}; it ended or never existed: POST a new offer"),
    )
}

async fn patch_session(
    State(webrtc): State<Arc<WebRtc>>,
    Path((path, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let driver = webrtc.driver()?;
    let session = driver
        .get(&id)
        .filter(|s| s.stream.path() == path || s.stream.camera_id() == path)
        .ok_or_else(|| session_not_found(&id))?;
    if !content_type_is(&headers, SDPFRAG) {
        return Err(AppError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "a WHEP PATCH is sent as Content-Type: application/trickle-ice-sdpfrag",
        ));
    }
    let etag = format!("\"{}\"", session.local_ufrag());
    if let Some(m) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok())
        && m.trim() != "*"
        && m.trim() != etag
    {
        return Err(AppError::new(
            StatusCode::PRECONDITION_FAILED,
            "etag_mismatch",
            "If-Match names another ICE session; use the ETag of the latest answer",
        ));
    }
    let frag = SdpFrag::parse(&body_text(body)?)
        .map_err(|m| AppError::bad_request("invalid_sdpfrag", m))?;
    match session.patch(frag) {
        None => Ok(StatusCode::NO_CONTENT.into_response()),
        Some(creds) => {
            let mut r =
                (StatusCode::OK, restart_answer(&creds, &candidates(&webrtc))).into_response();
            let h = r.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(SDPFRAG));
            if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", creds.ufrag)) {
                h.insert(header::ETAG, v);
            }
            h.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(EXPOSE),
            );
            Ok(r)
        }
    }
}

fn candidates(webrtc: &WebRtc) -> Vec<str0m::Candidate> {
    let Ok(d) = webrtc.driver() else {
        return Vec::new();
    };
    d.candidates
        .iter()
        .filter_map(|a| str0m::Candidate::host(*a, "udp").ok())
        .collect()
}

async fn delete_session(
    State(webrtc): State<Arc<WebRtc>>,
    Path((path, id)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let driver = webrtc.driver()?;
    let session = driver
        .get(&id)
        .filter(|s| s.stream.path() == path || s.stream.camera_id() == path)
        .ok_or_else(|| session_not_found(&id))?;
    driver.remove(&id);
    session.stop();
    Ok(StatusCode::OK.into_response())
}
