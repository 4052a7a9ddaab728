//! The camera model, once: what a camera is (`CameraSpec`, `Camera`), its URL as a secret that
//! redacts itself (`SecretUrl`), its states, which identifiers are valid, and the validation of
//! provisioning input. Storage lives in `db::cameras`, HTTP in `api::cameras`, the
//! store-then-live orchestration in `registry`; this module imports none of them.

mod provision;
mod status;

use std::fmt;
use std::time::Duration;

use time::OffsetDateTime;

pub use provision::{PROVISION_FIELDS, parse_provision};
pub use status::{CameraStatus, RecordingBoard, RecordingState, RecordingStatus, StreamState};

/// Longest accepted `camera_id` and `stream_path`.
pub const MAX_ID_LEN: usize = 64;

/// A camera URL that may carry credentials. It redacts itself in `Debug` and `Display`, so a
/// struct holding one can derive `Debug` and a log line can print it without a thought; the
/// real text comes out only through [`SecretUrl::expose`], at the moment of connecting or
/// storing.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SecretUrl(String);

impl SecretUrl {
    pub fn new(url: impl Into<String>) -> SecretUrl {
        SecretUrl(url.into())
    }

    /// The URL with its password, for the RTSP client and the database only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with its password replaced by `***`, safe to log and return.
    pub fn redacted(&self) -> String {
        crate::redact::redact_url(&self.0)
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// What a camera is: a validated provisioning request, and the live path's view of a camera.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CameraSpec {
    pub camera_id: String,
    pub name: String,
    pub rtsp_url: SecretUrl,
    pub stream_path: String,
    pub on_demand: bool,
    pub record: bool,
    pub transport: Transport,
    /// Per-camera override of `[streams] idle_timeout`.
    pub idle_timeout: Option<Duration>,
    /// Per-camera overrides of the `[record]` retention (`record_retain`, `record_max_bytes`).
    pub record_limits: RecordLimits,
    /// The transcode profiles (`[profiles.NAME]` names) this camera is served with, besides
    /// the built-in `h264`; `None` = not given at provisioning, so each profile's own
    /// `cameras` list decides (docs/transcode.md).
    pub profiles: Option<Vec<String>>,
    /// Per-camera `{prefix}.camera.frame` interval, overriding `[nats] frame_interval`
    /// (`Some(ZERO)` = no frame messages for this camera); a camera with one is held connected.
    pub frame_interval: Option<Duration>,
}

/// A camera's own recording retention, overriding `[record] retain` and
/// `[record] camera_max_bytes`; `None` = the configured value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordLimits {
    /// Recordings older than this are removed (`Some(ZERO)` = no age limit for this camera).
    pub retain: Option<Duration>,
    /// This camera's recordings together (`Some(0)` = unlimited for this camera).
    pub max_bytes: Option<u64>,
}

impl CameraSpec {
    /// Connected regardless of viewers.
    pub fn always_on(&self) -> bool {
        !self.on_demand || self.record
    }
}

/// A camera as stored in the registry: its spec and when it was created and last changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Camera {
    pub spec: CameraSpec,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl Camera {
    /// The camera URL with its password replaced by `***`, safe to log and return.
    pub fn redacted_url(&self) -> String {
        self.spec.rtsp_url.redacted()
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

/// Checks a stream path as a viewer names it: a stream path, or a stream path and a transcode
/// profile name joined by `~` (`cam_1~720p`, docs/transcode.md). Provisioning still takes
/// plain stream paths only ([`validate_stream_path`]).
pub fn validate_stream_ref(path: &str) -> Result<(), InvalidInput> {
    match path.split_once('~') {
        Some((base, profile)) => {
            validate_stream_path(base)?;
            check_id(profile, "the profile name after '~'", "invalid_stream_path")
        }
        None => validate_stream_path(path),
    }
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
            spec: CameraSpec {
                camera_id: "1".into(),
                name: "door".into(),
                rtsp_url: SecretUrl::new("rtsp://admin:hunter2@cam/s"),
                stream_path: "cam_1".into(),
                on_demand: true,
                record: false,
                transport: Transport::Auto,
                idle_timeout: None,
                record_limits: RecordLimits::default(),
                profiles: None,
                frame_interval: None,
            },
            created_at: now,
            updated_at: now,
        };
        let shown = format!("{cam:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("rtsp://admin:***@cam/s"));
        let url = &cam.spec.rtsp_url;
        assert_eq!(url.to_string(), "rtsp://admin:***@cam/s");
        assert_eq!(url.expose(), "rtsp://admin:hunter2@cam/s");
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
