//! camgate's settings: the typed [`Config`] and where its values come from.
//!
//! Sources, later ones winning: built-in defaults, the TOML file (`--config`, else
//! `./camgate.toml` if present), the legacy variable names of our users' old deployments
//! (`PORT`, `LOG_LEVEL`, ...), `CAMGATE_<SECTION>_<KEY>` variables, then command-line flags.
//! Unknown keys in any source are an error naming the key. See docs/config.md.
//!
//! Adding a key: add the field to its section struct and its default; it then exists in the
//! file, in `CAMGATE_*` and in `camgate config` at once. Every key must have a value in the
//! defaults (no `Option` that serializes to nothing), because the known keys and their
//! environment variable types are taken from the serialized defaults.

pub mod duration;
mod sources;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use sources::{ConfigError, Overrides, load};

use crate::redact::REDACTED;

/// Everything camgate can be configured with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Holds `camgate.db` (SQLite) and, later, recordings.
    pub data_dir: PathBuf,
    pub http: HttpConfig,
    pub auth: AuthConfig,
    pub log: LogConfig,
    pub streams: StreamsConfig,
    pub hls: HlsConfig,
    pub events: EventsConfig,
    pub nats: NatsConfig,
    pub webrtc: crate::webrtc::WebrtcConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./data"),
            http: HttpConfig::default(),
            auth: AuthConfig::default(),
            log: LogConfig::default(),
            streams: StreamsConfig::default(),
            hls: HlsConfig::default(),
            events: EventsConfig::default(),
            nats: NatsConfig::default(),
            webrtc: crate::webrtc::WebrtcConfig::default(),
        }
    }
}

impl Config {
    /// The configuration as TOML with every secret replaced by `***` (`camgate config`).
    pub fn to_redacted_toml(&self) -> String {
        let mut shown = self.clone();
        shown.auth.api_keys = shown
            .auth
            .api_keys
            .iter()
            .map(|_| REDACTED.to_owned())
            .collect();
        shown.nats = shown.nats.redacted();
        // A config of plain strings, numbers and tables always serializes; say so if not.
        toml::to_string_pretty(&shown)
            .unwrap_or_else(|e| format!("# the configuration cannot be shown as TOML: {e}\n"))
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// The one listener for the API, HLS, WHEP, WebSockets and the web UI.
    pub listen: SocketAddr,
    /// Exact origins allowed by CORS; empty means no CORS headers. Never `*`.
    pub cors_origins: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            cors_origins: Vec::new(),
        }
    }
}

/// API keys. Empty means protected mode: only loopback clients are answered.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    pub api_keys: Vec<String>,
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field(
                "api_keys",
                &format_args!("[{} redacted]", self.api_keys.len()),
            )
            .finish()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A level (`info`, `debug`, ...) or a tracing filter (`info,camgate::api=debug`).
    pub level: String,
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".to_owned(),
            format: LogFormat::Text,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamsConfig {
    /// An on-demand camera is disconnected this long after its last viewer left.
    #[serde(with = "duration")]
    pub idle_timeout: Duration,
    /// The first playlist request waits this long for the first part, then answers 504.
    #[serde(with = "duration")]
    pub start_timeout: Duration,
    /// No frame for this long counts as a failure of the source.
    #[serde(with = "duration")]
    pub stall_timeout: Duration,
    /// Reconnect backoff starts here...
    #[serde(with = "duration")]
    pub reconnect_min: Duration,
    /// ...and doubles up to here.
    #[serde(with = "duration")]
    pub reconnect_max: Duration,
    /// The next viewer past this gets 429.
    pub max_viewers_per_stream: u32,
    /// An MSE socket further behind than this skips to the newest keyframe.
    #[serde(with = "duration")]
    pub mse_max_lag: Duration,
}

impl Default for StreamsConfig {
    fn default() -> Self {
        StreamsConfig {
            idle_timeout: Duration::from_secs(30),
            start_timeout: Duration::from_secs(10),
            stall_timeout: Duration::from_secs(5),
            reconnect_min: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(30),
            max_viewers_per_stream: 100,
            mse_max_lag: Duration::from_secs(1),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HlsConfig {
    /// Target segment length; a segment is stretched to the next keyframe.
    #[serde(with = "duration")]
    pub segment_duration: Duration,
    /// Target LL-HLS part length.
    #[serde(with = "duration")]
    pub part_duration: Duration,
    /// Segments in the sliding playlist window.
    pub list_size: u32,
}

impl Default for HlsConfig {
    fn default() -> Self {
        HlsConfig {
            segment_duration: Duration::from_secs(1),
            part_duration: Duration::from_millis(200),
            list_size: 7,
        }
    }
}

/// The event feeds: WebSocket endpoints and the periodic status (see docs/events.md).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsConfig {
    /// `WS /ws/dashboard` sends a `stats` message this often.
    #[serde(with = "duration")]
    pub dashboard_interval: Duration,
    /// Every camera's full `status` goes to the bus (and so to NATS and event sockets) this
    /// often, besides every state change.
    #[serde(with = "duration")]
    pub status_interval: Duration,
    /// Event sockets get a WebSocket ping this often; a client that answers nothing for two
    /// intervals is taken for dead and closed.
    #[serde(with = "duration")]
    pub ws_ping_interval: Duration,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            dashboard_interval: Duration::from_secs(2),
            status_interval: Duration::from_secs(10),
            ws_ping_interval: Duration::from_secs(15),
        }
    }
}

/// Publishing events to NATS. An empty `url` turns it off.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsConfig {
    /// `nats://host:4222` (several servers separated by commas); empty = no NATS.
    pub url: String,
    /// Subjects are `{subject_prefix}.camera.status`, ...
    pub subject_prefix: String,
    /// A NATS token (secret; empty = none).
    pub token: String,
    /// A NATS `.creds` file (JWT + NKey seed); empty = none.
    pub credentials_file: String,
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            url: String::new(),
            subject_prefix: "camgate".to_owned(),
            token: String::new(),
            credentials_file: String::new(),
        }
    }
}

impl NatsConfig {
    pub fn enabled(&self) -> bool {
        !self.url.trim().is_empty()
    }

    /// The same settings with the token and any password in the URL replaced by `***`.
    pub fn redacted(&self) -> NatsConfig {
        NatsConfig {
            url: self
                .url
                .split(',')
                .map(crate::redact::redact_url)
                .collect::<Vec<_>>()
                .join(","),
            subject_prefix: self.subject_prefix.clone(),
            token: if self.token.is_empty() {
                String::new()
            } else {
                REDACTED.to_owned()
            },
            credentials_file: self.credentials_file.clone(),
        }
    }
}

impl fmt::Debug for NatsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.redacted();
        f.debug_struct("NatsConfig")
            .field("url", &shown.url)
            .field("subject_prefix", &shown.subject_prefix)
            .field("token", &shown.token)
            .field("credentials_file", &shown.credentials_file)
            .finish()
    }
}
