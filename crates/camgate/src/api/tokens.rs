//! Viewer tokens and dashboard sessions over HTTP: `POST /cameras/{id}/token` (a signed,
//! expiring token for one camera's media URLs, with those URLs), `POST /auth/session` and
//! `DELETE /auth/session` (the dashboard's cookie). Signing and checking are `http::token`'s;
//! this file only shapes requests and answers. Every route here needs an API key (or a
//! session): the access layer never lets a viewer token reach them.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

use crate::http::access::SESSION_COOKIE;
use crate::http::client::Client;
use crate::http::extract::{CameraIdParam, JsonBody};
use crate::http::token::{Grant, MAX_TTL, Scope, TokenKeys};
use crate::http::{AppError, PublicBase, RouteDoc, Routes};
use crate::provisioning::Provisioning;
use crate::timestamps::rfc3339;

const DEFAULT_TTL: u64 = 3600;

#[derive(Clone)]
pub struct TokensState {
    pub provisioning: Arc<Provisioning>,
    pub tokens: Arc<TokenKeys>,
    pub session_ttl: Duration,
}

pub fn router(state: TokensState) -> (Router, Vec<RouteDoc>) {
    Routes::new()
        .post(
            "/cameras/{id}/token",
            "A viewer token for one camera's media URLs (API key)",
            issue,
        )
        .post(
            "/auth/session",
            "Exchange an API key for the dashboard's session cookie",
            open_session,
        )
        .delete(
            "/auth/session",
            "End the dashboard's session",
            close_session,
        )
        .with_state(state)
}

#[derive(Serialize)]
struct Issued {
    token: String,
    expires_at: String,
    scope: Vec<&'static str>,
    hls_url: String,
    webrtc_url: String,
    whep_url: String,
    mse_url: String,
    snapshot_url: String,
    ws_events_url: String,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn invalid(code: &'static str, message: &str) -> AppError {
    AppError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
}

/// `ttl_seconds` (1 to 7 days, default 3600) and `scope` (default live and snapshot).
fn parse_request(body: &Value) -> Result<(u64, Scope), AppError> {
    let Value::Object(obj) = body else {
        return Err(AppError::bad_request(
            "invalid_body",
            "the body must be a JSON object such as {\"ttl_seconds\":3600,\"scope\":[\"live\"]}",
        ));
    };
    if let Some(k) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "ttl_seconds" | "scope"))
    {
        let k: String = k.chars().filter(|c| !c.is_control()).take(64).collect();
        return Err(AppError::bad_request(
            "unknown_field",
            format!("unknown field `{k}`; accepted fields are: ttl_seconds, scope"),
        ));
    }
    let max = MAX_TTL.as_secs();
    let ttl = match obj.get("ttl_seconds") {
        None | Some(Value::Null) => DEFAULT_TTL,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(t) if (1..=max).contains(&t) => t,
            _ => {
                return Err(invalid(
                    "invalid_ttl",
                    "ttl_seconds must be an integer from 1 to 604800 (7 days)",
                ));
            }
        },
        Some(_) => {
            return Err(invalid(
                "invalid_ttl",
                "ttl_seconds must be an integer from 1 to 604800 (7 days)",
            ));
        }
    };
    let bad_scope = || {
        invalid(
            "invalid_scope",
            "scope must be a non-empty list of \"live\", \"recordings\", \"snapshot\"",
        )
    };
    let scope = match obj.get("scope") {
        None | Some(Value::Null) => Scope::LIVE.with(Scope::SNAPSHOT),
        Some(Value::Array(items)) if !items.is_empty() => {
            let mut scope = Scope::empty();
            for item in items {
                let name = item.as_str().ok_or_else(bad_scope)?;
                scope = scope.with(Scope::parse(name).ok_or_else(bad_scope)?);
            }
            scope
        }
        Some(_) => return Err(bad_scope()),
    };
    Ok((ttl, scope))
}

async fn issue(
    State(state): State<TokensState>,
    CameraIdParam(id): CameraIdParam,
    base: PublicBase,
    JsonBody(body): JsonBody,
) -> Result<Json<Issued>, AppError> {
    let (ttl, scope) = parse_request(&body)?;
    let camera = state
        .provisioning
        .db()
        .camera(&id)
        .await?
        .ok_or_else(|| AppError::camera_not_found(&id))?;
    let spec = camera.spec;
    let expires = unix_now() + ttl;
    let token = state.tokens.issue(
        &Grant::Viewer {
            camera_id: spec.camera_id.clone(),
            stream_path: spec.stream_path.clone(),
            scope,
        },
        expires,
    );
    let sp = &spec.stream_path;
    let q = format!("?token={token}");
    let expires_at = rfc3339(
        time::OffsetDateTime::from_unix_timestamp(expires as i64)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
    );
    tracing::info!(camera = %spec.camera_id, ttl_seconds = ttl, "viewer token issued");
    Ok(Json(Issued {
        hls_url: base.http(&format!("/hls/{sp}/index.m3u8{q}")),
        webrtc_url: base.http(&format!("/webrtc/{sp}{q}")),
        whep_url: base.http(&format!("/webrtc/{sp}/whep{q}")),
        mse_url: base.ws(&format!("/mse/{sp}{q}")),
        snapshot_url: base.http(&format!("/cameras/{}/snapshot.jpg{q}", spec.camera_id)),
        ws_events_url: base.ws(&format!("/ws/events/{sp}{q}")),
        scope: scope.names(),
        expires_at,
        token,
    }))
}

fn cookie(value: &str, max_age: u64, https: bool) -> HeaderValue {
    let secure = if https { "; Secure" } else { "" };
    let text = format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    );
    // Tokens are base64url and dots: always a valid header value.
    HeaderValue::from_str(&text)
        .unwrap_or_else(|_| HeaderValue::from_static("camgate_session=; Max-Age=0"))
}

/// The access layer let this request in with an API key (or an open session, which this
/// renews; or protected mode from loopback, where the cookie is harmless).
async fn open_session(
    State(state): State<TokensState>,
    client: Option<axum::Extension<Client>>,
    JsonBody(_): JsonBody,
) -> Response {
    let ttl = state.session_ttl.as_secs();
    let expires = unix_now() + ttl;
    let token = state.tokens.issue(&Grant::Session, expires);
    let https = client.is_some_and(|c| c.https);
    let expires_at = rfc3339(
        time::OffsetDateTime::from_unix_timestamp(expires as i64)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
    );
    let mut answer = (
        StatusCode::CREATED,
        Json(serde_json::json!({"expires_at": expires_at})),
    )
        .into_response();
    answer
        .headers_mut()
        .insert(header::SET_COOKIE, cookie(&token, ttl, https));
    answer
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    answer
}

/// Removes the cookie from this browser. Sessions are stateless: a copied cookie stays valid
/// until it expires or the token key is rotated (docs/security.md).
async fn close_session(client: Option<axum::Extension<Client>>) -> Response {
    let https = client.is_some_and(|c| c.https);
    let mut answer = StatusCode::NO_CONTENT.into_response();
    answer
        .headers_mut()
        .insert(header::SET_COOKIE, cookie("", 0, https));
    answer
}
