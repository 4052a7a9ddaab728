//! camgate's settings: the typed [`Config`] and where its values come from.
//!
//! Sources, later ones winning: built-in defaults, the TOML file (`--config`, else
//! `./camgate.toml` if present), the legacy variable names of our users' old deployments
//! (`PORT`, `LOG_LEVEL`, ...), `CAMGATE_<SECTION>_<KEY>` variables, then command-line flags.
//! Unknown keys in any source are an error naming the key. See docs/config.md.
//! This module owns the keys, their defaults and checks, and the loading; it must not know
//! what the rest of camgate does with a value, nor import anything of ours but `redact`.
//!
//! Files: one per `[section]` (`http.rs`, `auth.rs`, `log.rs`, `streams.rs`, `hls.rs`,
//! `events.rs`, `nats.rs`, `profiles.rs`, `grids.rs`), each with its struct, `Default` and `Section::validate`;
//! `load.rs` (merging the sources), `env.rs` (variable names), `validate.rs` (the `Section`
//! contract and the central check), `error.rs`, `secret.rs` (secret fields' deserializers),
//! `quantity.rs` (the one number-with-unit parser) behind `duration.rs` and `size.rs`.
//!
//! # Adding a `[section]` (say `[record]`)
//!
//! 1. Create `config/record.rs` with `pub struct RecordConfig`, deriving `Clone, Debug,
//!    PartialEq, Serialize, Deserialize` with `#[serde(default, deny_unknown_fields)]`; its
//!    `impl Default`; and `impl Section for RecordConfig` whose `validate` checks its keys and
//!    names each as `"record.key"`. Durations are `Duration` with `#[serde(with = "duration")]`,
//!    sizes [`ByteSize`]; if zero means off or unlimited, say so on the field. A secret field
//!    gets `#[serde(deserialize_with = "secret::string")]` (or `secret::list`) and is replaced
//!    in `Section::redact`. The section's tests go in that file.
//! 2. In this file: `mod record;` and `pub use record::RecordConfig;`, the field
//!    `pub record: RecordConfig` in [`Config`], `record: RecordConfig::default()` in its
//!    `Default`, and `record` in `Config::sections` and `Config::sections_mut` (they destructure
//!    `Config` whole, so the compiler points at them until it is listed).
//! 3. Document the keys in docs/config.md ("Every key").
//!
//! A section of named entries (`[profiles.720p]`, `[grids.lobby]`) is the same, with the struct
//! a `#[serde(transparent)]` wrapper of `BTreeMap<String, Entry>` (`Entry` with
//! `deny_unknown_fields`) whose default is empty: an empty default table tells the loader that
//! any name is allowed there. Its entries come from the file only (no `CAMGATE_*` variables),
//! an error in one names `section.name`, and its `validate` names keys as it likes.
//!
//! Nothing else changes: the `[record]` keys in the file, the `CAMGATE_RECORD_*` variables,
//! unknown-key errors and `camgate config` all follow from the serialized defaults. So every key
//! must have a value in the defaults (no `Option` that serializes to nothing). Adding a key to
//! an existing section is step 1 alone: a field and its default.

pub mod duration;
mod env;
mod error;
mod load;
mod quantity;
mod secret;
pub mod size;
mod validate;

mod auth;
mod events;
mod grids;
mod hls;
mod http;
mod library;
mod log;
mod nats;
mod profiles;
mod record;
mod rtsp;
mod snapshot;
mod streams;
mod webrtc;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use auth::AuthConfig;
pub use error::ConfigError;
pub use events::EventsConfig;
pub use grids::{GridConfig, GridsConfig, MAX_GRID_CAMERAS};
pub use hls::HlsConfig;
pub use http::{Cidr, HttpConfig};
pub use library::LibraryConfig;
pub use load::{Overrides, load};
pub use log::{LogConfig, LogFormat};
pub use nats::NatsConfig;
pub use profiles::{Bitrate, EncoderChoice, ProfileConfig, ProfilesConfig, RESERVED_PROFILE};
pub use record::RecordConfig;
pub use rtsp::RtspConfig;
pub use size::ByteSize;
pub use snapshot::SnapshotConfig;
pub use streams::StreamsConfig;
pub use webrtc::{IceServer, WebrtcConfig};

use validate::Section;

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
    pub webrtc: WebrtcConfig,
    /// `[profiles.NAME]`: transcode profiles (docs/transcode.md).
    pub profiles: ProfilesConfig,
    /// `[grids.NAME]`: several cameras in one picture (docs/transcode.md).
    pub grids: GridsConfig,
    pub snapshot: SnapshotConfig,
    /// `[rtsp]`: the RTSP restream (docs/rtsp.md).
    pub rtsp: RtspConfig,
    /// `[record]`: continuous recording (docs/recording.md).
    pub record: RecordConfig,
    /// `[library]`: the video library of the compatibility routes (docs/compat.md).
    pub library: LibraryConfig,
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
            webrtc: WebrtcConfig::default(),
            profiles: ProfilesConfig::default(),
            grids: GridsConfig::default(),
            snapshot: SnapshotConfig::default(),
            rtsp: RtspConfig::default(),
            record: RecordConfig::default(),
            library: LibraryConfig::default(),
        }
    }
}

impl Config {
    /// The configuration as TOML with every secret replaced by `***` (`camgate config`).
    pub fn to_redacted_toml(&self) -> String {
        let mut shown = self.clone();
        for section in shown.sections_mut() {
            section.redact();
        }
        // A config of plain strings, numbers and tables always serializes; say so if not.
        toml::to_string_pretty(&shown)
            .unwrap_or_else(|e| format!("# the configuration cannot be shown as TOML: {e}\n"))
    }

    /// Every section, for validation. Destructured whole so a new field cannot be forgotten.
    fn sections(&self) -> Vec<&dyn Section> {
        let Config {
            data_dir: _,
            http,
            auth,
            log,
            streams,
            hls,
            events,
            nats,
            webrtc,
            profiles,
            grids,
            snapshot,
            rtsp,
            record,
            library,
        } = self;
        vec![
            http, auth, log, streams, hls, events, nats, webrtc, profiles, grids, snapshot, rtsp,
            record, library,
        ]
    }

    /// Every section, for redaction; the same list as [`Config::sections`].
    fn sections_mut(&mut self) -> Vec<&mut dyn Section> {
        let Config {
            data_dir: _,
            http,
            auth,
            log,
            streams,
            hls,
            events,
            nats,
            webrtc,
            profiles,
            grids,
            snapshot,
            rtsp,
            record,
            library,
        } = self;
        vec![
            http, auth, log, streams, hls, events, nats, webrtc, profiles, grids, snapshot, rtsp,
            record, library,
        ]
    }
}
