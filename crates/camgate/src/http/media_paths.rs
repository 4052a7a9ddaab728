//! Which URLs a viewer token may open, and for what: the media URLs of every output (HLS, MSE,
//! WHEP, events, snapshots, recordings), by method and path shape. The one list, so an output
//! added later gets token access by adding its URL shape here, not by checking tokens itself.
//!
//! Pure functions of (method, path); the access layer (`access.rs`) applies them.

use axum::http::Method;

use super::token::{Grant, Scope};

/// What a media URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target<'a> {
    /// A stream path (`cam_1`, `cam_1~720p`).
    Stream(&'a str),
    /// A camera id (`/cameras/{id}/snapshot.jpg`).
    Camera(&'a str),
}

/// The stream or camera a media request names and the scope it needs; `None` for every URL a
/// token must not open (the control API, deleting recordings, anything unknown).
pub fn media_target<'a>(method: &Method, path: &'a str) -> Option<(Target<'a>, Scope)> {
    let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    // Fail closed on anything a router might read differently from us.
    if segments
        .iter()
        .any(|s| s.is_empty() || *s == "." || *s == ".." || s.contains('%'))
    {
        return None;
    }
    let read = *method == Method::GET || *method == Method::HEAD;
    use Target::{Camera, Stream};
    match (segments.as_slice(), read) {
        (["hls", p, _], true) => Some((Stream(p), Scope::LIVE)),
        (["mse", p], true) => Some((Stream(p), Scope::LIVE)),
        (["ws", "events", p], true) => Some((Stream(p), Scope::LIVE)),
        (["webrtc", p], true) => Some((Stream(p), Scope::LIVE)),
        (["webrtc", p, "whep"], _) if *method == Method::POST || *method == Method::OPTIONS => {
            Some((Stream(p), Scope::LIVE))
        }
        (["webrtc", p, "whep", _], _) if *method == Method::PATCH || *method == Method::DELETE => {
            Some((Stream(p), Scope::LIVE))
        }
        (["cameras", id, "snapshot.jpg"], true) => Some((Camera(id), Scope::SNAPSHOT)),
        (["cameras", id, "frames", _], true) => Some((Camera(id), Scope::SNAPSHOT)),
        (["streams", p, "snapshot.jpg"], true) => Some((Stream(p), Scope::SNAPSHOT)),
        (["streams", id, "stream.m3u8"], true) => Some((Camera(id), Scope::LIVE)),
        (["recordings", p], true) => Some((Stream(p), Scope::RECORDINGS)),
        (["recordings", p, _], true) => Some((Stream(p), Scope::RECORDINGS)),
        _ => None,
    }
}

/// Whether a verified grant opens this target for this scope: its camera's id, its stream
/// path and that path's profiles (`{path}~x`), nothing else.
pub fn grant_opens(grant: &Grant, target: Target<'_>, needed: Scope) -> bool {
    match grant {
        Grant::Session => true,
        Grant::Viewer {
            camera_id,
            stream_path,
            scope,
        } => {
            scope.allows(needed)
                && match target {
                    Target::Camera(id) => id == camera_id,
                    Target::Stream(p) => {
                        p == stream_path
                            || p.strip_prefix(stream_path.as_str())
                                .is_some_and(|rest| rest.starts_with('~'))
                    }
                }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> Grant {
        Grant::Viewer {
            camera_id: "1".into(),
            stream_path: "cam_1".into(),
            scope: Scope::LIVE.with(Scope::SNAPSHOT),
        }
    }

    fn opens(method: Method, path: &str) -> bool {
        media_target(&method, path).is_some_and(|(t, s)| grant_opens(&grant(), t, s))
    }

    #[test]
    fn a_token_opens_its_camera_only() {
        for ok in [
            "/hls/cam_1/index.m3u8",
            "/hls/cam_1~720p/part1.m4s",
            "/mse/cam_1",
            "/ws/events/cam_1",
            "/cameras/1/snapshot.jpg",
            "/streams/cam_1/snapshot.jpg",
        ] {
            assert!(opens(Method::GET, ok), "{ok}");
        }
        assert!(opens(Method::POST, "/webrtc/cam_1/whep"));
        for refused in [
            "/hls/cam_10/index.m3u8",
            "/hls/cam_/index.m3u8",
            "/hls/cam_2/index.m3u8",
            "/hls/cam_1x/index.m3u8",
            "/cameras/10/snapshot.jpg",
            "/cameras/1/info",
            "/cameras",
            "/streams",
            "/ws/dashboard",
            "/metrics",
            "/recordings/cam_1",
            "/hls/cam_1/../cam_2/index.m3u8",
            "/hls/%63am_2/index.m3u8",
            "/hls//index.m3u8",
        ] {
            assert!(!opens(Method::GET, refused), "{refused}");
        }
        assert!(!opens(Method::DELETE, "/cameras/1"));
        assert!(!opens(Method::POST, "/cameras/1/token"));
        assert!(!opens(Method::DELETE, "/recordings/cam_1"));
    }
}
