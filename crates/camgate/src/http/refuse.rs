//! The refusals every output gives in the same words: a stream that does not exist, a stream
//! at its viewer limit, a malformed stream path. One place, so a player gets the same code
//! from HLS, MSE, WebRTC, snapshots and restream.

use axum::http::StatusCode;

use super::AppError;
use crate::cameras::validate_stream_ref;

/// `404 stream_not_found`.
pub fn stream_not_found(path: &str) -> AppError {
    AppError::new(
        StatusCode::NOT_FOUND,
        "stream_not_found",
        format!("no camera has stream path or id {path:?}; see GET /streams"),
    )
}

/// `429 too_many_viewers`: the stream has `max` viewers (`max_viewers_per_stream`).
pub fn too_many_viewers(path: &str, max: u32) -> AppError {
    AppError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_viewers",
        format!(
            "stream {path} already has {max} viewers (max_viewers_per_stream); try again later"
        ),
    )
}

/// `400 invalid_stream_path` unless `path` is a valid stream path (or camera id).
pub fn check_stream_path(path: &str) -> Result<(), AppError> {
    validate_stream_ref(path).map_err(|e| AppError::bad_request("invalid_stream_path", e.message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_have_their_codes() {
        assert_eq!(stream_not_found("x").status, StatusCode::NOT_FOUND);
        assert_eq!(stream_not_found("x").code, "stream_not_found");
        let e = too_many_viewers("cam_1", 3);
        assert_eq!(
            (e.status, e.code),
            (StatusCode::TOO_MANY_REQUESTS, "too_many_viewers")
        );
        assert!(e.message.contains("3 viewers"));
        assert!(check_stream_path("cam_1").is_ok());
        assert_eq!(
            check_stream_path("../etc").unwrap_err().code,
            "invalid_stream_path"
        );
    }
}
