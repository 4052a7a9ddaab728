//! The one error type of the HTTP API and its mapping to a status and a JSON body
//! `{"error":{"code","message"}}`. Every handler, extractor and middleware answers errors
//! through [`AppError`], so clients always get the same shape.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::cameras::InvalidInput;
use crate::db::DbError;

/// An error answer: status, stable code, and a message saying what to fix. Never holds a
/// secret: messages are built from our own text, not from request values.
#[derive(Debug)]
pub struct AppError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Sent as `WWW-Authenticate` on 401 answers.
    pub www_authenticate: Option<&'static str>,
}

impl AppError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        AppError {
            status,
            code,
            message: message.into(),
            www_authenticate: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn camera_not_found(camera_id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "camera_not_found",
            format!("no camera `{camera_id}`; provision it with POST /cameras/provision"),
        )
    }

    pub fn internal(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, code, message)
    }
}

/// Malformed requests are 400; well-formed requests with values we cannot accept are 422.
impl From<InvalidInput> for AppError {
    fn from(e: InvalidInput) -> Self {
        let status = match e.code {
            "invalid_json" | "invalid_body" | "unknown_field" => StatusCode::BAD_REQUEST,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        AppError::new(status, e.code, e.message)
    }
}

impl From<DbError> for AppError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::StreamPathInUse { .. } => AppError::new(
                StatusCode::CONFLICT,
                "stream_path_in_use",
                format!("{e}; choose another stream_path"),
            ),
            DbError::PathAmbiguous { field, .. } => AppError::new(
                StatusCode::CONFLICT,
                "path_ambiguous",
                format!("{e}; choose another {field}"),
            ),
            other => {
                tracing::error!(error = %other, "camera registry failed");
                AppError::internal(
                    "storage_error",
                    "the camera registry could not be read or written; see the server log",
                )
            }
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(code = self.code, message = %self.message, "request failed");
        } else {
            tracing::debug!(code = self.code, message = %self.message, "request refused");
        }
        let body = json!({ "error": { "code": self.code, "message": self.message } });
        let mut response = (self.status, Json(body)).into_response();
        if let Some(challenge) = self.www_authenticate {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}
