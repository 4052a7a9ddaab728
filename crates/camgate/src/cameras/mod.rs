//! The camera registry's domain model: what a camera is, which identifiers are valid, and the
//! validation of provisioning input. Storage lives in `db::cameras`, HTTP in `api::cameras`;
//! this module touches neither.

mod provision;
mod status;

use std::fmt;
use std::time::Duration;

use time::OffsetDateTime;

pub use provision::{PROVISION_FIELDS, parse_provision};
pub use status::{CameraStatus, StreamState};

/// Longest accepted `camera_id` and `stream_path`.
pub const MAX_ID_LEN: usize = 64;

/// A camera as stored in the registry.
///
/// `rtsp_url` holds the credentials the camera needs, so this type deliberately has no
/// `Serialize` and its `Debug` prints the URL redacted: use [`Camera::redacted_url`] to show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Camera {
    pub camera_id: String,
    pub name: String,
    pub rtsp_url: String,
    pub stream_path: String,
    pub on_demand: bool,
    pub record: bool,
    pub transport: Transport,
    /// Per-camera override of `[streams] idle_timeout`.
    pub idle_timeout: Option<Duration>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl Camera {
    /// The camera URL with its password replaced by `***`, safe to log and return.
    pub fn redacted_url(&self) -> String {
        crate::redact::redact_url(&self.rtsp_url)
    }
}

impl fmt::Debug for Camera {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Camera")
            .field("camera_id", &self.camera_id)
            .field("name", &self.name)
            .field("rtsp_url", &self.redacted_url())
            .field("stream_path", &self.stream_path)
            .field("on_demand", &self.on_demand)
            .field("record", &self.record)
            .field("transport", &self.transport)
            .field("idle_timeout", &self.idle_timeout)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

/// What a provisioning request asks for, validated; the registry adds the timestamps.
#[derive(Clone, PartialEq, Eq)]
pub struct CameraSpec {
    pub camera_id: String,
    pub name: String,
    pub rtsp_url: String,
    pub stream_path: String,
    pub on_demand: bool,
    pub record: bool,
    pub transport: Transport,
    pub idle_timeout: Option<Duration>,
}

impl fmt::Debug for CameraSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CameraSpec")
            .field("camera_id", &self.camera_id)
            .field("name", &self.name)
            .field("rtsp_url", &crate::redact::redact_url(&self.rtsp_url))
            .field("stream_path", &self.stream_path)
            .field("on_demand", &self.on_demand)
            .field("record", &self.record)
            .field("transport", &self.transport)
            .field("idle_timeout", &self.idle_timeout)
            .finish()
    }
}

/// How the RTSP client carries RTP: `auto` lets the ingest choose (TCP interleaved first,
/// because it crosses NAT and firewalls), `tcp` and `udp` force one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Transport {
    #[default]
    Auto,
    Tcp,
    Udp,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Auto => "auto",
            Transport::Tcp => "tcp",
            Transport::Udp => "udp",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Transport {
    type Err = InvalidInput;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Transport::Auto),
            "tcp" => Ok(Transport::Tcp),
            "udp" => Ok(Transport::Udp),
            _ => Err(InvalidInput::new(
                "invalid_transport",
                "transport must be one of \"auto\", \"tcp\", \"udp\"",
            )),
        }
    }
}

/// Input that cannot be accepted, with a stable machine-readable code and a message that says
/// what to fix. The API maps it to a 4xx answer; it never contains a secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidInput {
    pub code: &'static str,
    pub message: String,
}

impl InvalidInput {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        InvalidInput {
            code,
            message: message.into(),
        }
    }
}

fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

fn check_id(value: &str, what: &str, code: &'static str) -> Result<(), InvalidInput> {
    if value.is_empty() {
        return Err(InvalidInput::new(code, format!("{what} must not be empty")));
    }
    if value.len() > MAX_ID_LEN {
        return Err(InvalidInput::new(
            code,
            format!(
                "{what} is {} characters long; at most {MAX_ID_LEN} are allowed",
                value.chars().count()
            ),
        ));
    }
    if !value.chars().all(is_id_char) {
        return Err(InvalidInput::new(
            code,
            format!("{what} may contain only letters A-Z a-z, digits 0-9, '_' and '-'"),
        ));
    }
    Ok(())
}

/// Checks a camera id: 1-64 characters from `[A-Za-z0-9_-]`.
pub fn validate_camera_id(id: &str) -> Result<(), InvalidInput> {
    check_id(id, "camera_id", "invalid_camera_id")
}

/// Checks a stream path: same rules as a camera id.
pub fn validate_stream_path(path: &str) -> Result<(), InvalidInput> {
    check_id(path, "stream_path", "invalid_stream_path")
}

/// The stream path of a camera provisioned without one.
///
/// `cam_` plus a 64-character id is 68 characters, so the default may be longer than an explicit
/// path may be; that is accepted on purpose (the id's own limit keeps it bounded).
pub fn default_stream_path(camera_id: &str) -> String {
    format!("cam_{camera_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camera_ids() {
        for ok in ["1", "cam-1", "A_b-9", &"x".repeat(64)] {
            assert!(validate_camera_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "a/b", "é", "a.b", &"x".repeat(65), "a\n"] {
            let err = validate_camera_id(bad).unwrap_err();
            assert_eq!(err.code, "invalid_camera_id", "{bad}");
        }
    }

    #[test]
    fn debug_never_shows_the_password() {
        let now = OffsetDateTime::UNIX_EPOCH;
        let cam = Camera {
            camera_id: "1".into(),
            name: "door".into(),
            rtsp_url: "rtsp://admin:hunter2@cam/s".into(),
            stream_path: "cam_1".into(),
            on_demand: true,
            record: false,
            transport: Transport::Auto,
            idle_timeout: None,
            created_at: now,
            updated_at: now,
        };
        let shown = format!("{cam:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("rtsp://admin:***@cam/s"));
    }

    #[test]
    fn transports() {
        assert_eq!("TCP".parse::<Transport>().unwrap(), Transport::Tcp);
        assert_eq!("auto".parse::<Transport>().unwrap(), Transport::Auto);
        assert_eq!(
            "http".parse::<Transport>().unwrap_err().code,
            "invalid_transport"
        );
    }
}
