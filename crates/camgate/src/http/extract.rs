//! Request extractors that answer bad input with [`AppError`] instead of axum's plain-text
//! rejections: a JSON body (content type, 64 KiB limit, syntax) and validated path parameters.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde_json::Value;

use super::AppError;
use crate::cameras::{validate_camera_id, validate_stream_ref};

/// The largest request body accepted anywhere in the API.
pub const BODY_LIMIT: usize = 64 * 1024;

/// A JSON body, parsed but not yet interpreted (handlers validate fields themselves so that
/// each problem gets its own code).
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(AppError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as JSON with the header Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                AppError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    format!("the body is larger than {} KiB", BODY_LIMIT / 1024),
                )
            } else {
                AppError::bad_request("invalid_body", "the request body could not be read")
            }
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(AppError::bad_request(
                "invalid_json",
                "the body is empty; send a JSON object",
            ));
        }
        // serde_json's messages give the position, never the offending text.
        let value = serde_json::from_slice(&bytes).map_err(|e| {
            AppError::bad_request("invalid_json", format!("the body is not valid JSON: {e}"))
        })?;
        Ok(JsonBody(value))
    }
}

/// The `{id}` of a `/cameras/{id}/...` route, validated (400 `invalid_camera_id` otherwise,
/// before any lookup, so a hostile id never reaches storage or logs unchecked).
pub struct CameraIdParam(pub String);

impl<S: Send + Sync> FromRequestParts<S> for CameraIdParam {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let id = single_param(parts, state, "invalid_camera_id").await?;
        validate_camera_id(&id)
            .map_err(|e| AppError::bad_request("invalid_camera_id", e.message))?;
        Ok(CameraIdParam(id))
    }
}

/// The `{path}` of a `/streams/{path}/...`-style route, validated like a camera id.
pub struct StreamPathParam(pub String);

impl<S: Send + Sync> FromRequestParts<S> for StreamPathParam {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let path = single_param(parts, state, "invalid_stream_path").await?;
        validate_stream_ref(&path)
            .map_err(|e| AppError::bad_request("invalid_stream_path", e.message))?;
        Ok(StreamPathParam(path))
    }
}

async fn single_param<S: Send + Sync>(
    parts: &mut Parts,
    state: &S,
    code: &'static str,
) -> Result<String, AppError> {
    Path::<String>::from_request_parts(parts, state)
        .await
        .map(|Path(p)| p)
        .map_err(|_| AppError::bad_request(code, "the path parameter is not valid UTF-8 text"))
}
