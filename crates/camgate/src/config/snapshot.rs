//! `[snapshot]`: how still pictures are decoded and kept (`/cameras/{id}/snapshot.jpg`, the
//! NATS frame URLs). Owns these keys' defaults and checks; the snapshot output reads them, this
//! file knows nothing of it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration;
use super::size::ByteSize;
use super::validate::{Invalid, Section};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SnapshotConfig {
    /// Decodes running at once, all streams together (each is one CPU core while it runs).
    pub max_decodes: u32,
    /// A stream's decoder is kept this long after its last snapshot, so the next one decodes
    /// only the frames that arrived since (a grid refreshing every second). `0` = never kept.
    #[serde(with = "duration")]
    pub warm: Duration,
    /// A picture decoded less than this long ago answers a request without decoding again,
    /// even if newer frames arrived (a hundred requests in one second decode once). `0` = only
    /// requests for the very same frame share a picture.
    #[serde(with = "duration")]
    pub reuse: Duration,
    /// Compressed frames kept per camera for the NATS frame URLs (`[nats] frame_keep`); the
    /// oldest go first past this. Must not be zero.
    pub frames_max_bytes: ByteSize,
}

impl Default for SnapshotConfig {
    fn default() -> Self {
        SnapshotConfig {
            max_decodes: 2,
            warm: Duration::from_secs(5),
            reuse: Duration::from_secs(1),
            frames_max_bytes: ByteSize::mib(64),
        }
    }
}

impl Section for SnapshotConfig {
    fn validate(&self) -> Result<(), Invalid> {
        if self.max_decodes == 0 || self.max_decodes > 64 {
            return Err(Invalid::new(
                "snapshot.max_decodes",
                "must be between 1 and 64 (decodes running at once)",
            ));
        }
        if self.warm > Duration::from_secs(600) {
            return Err(Invalid::new(
                "snapshot.warm",
                "must be at most 10m (a warm decoder holds a few MB of pictures)",
            ));
        }
        if self.reuse > Duration::from_secs(60) {
            return Err(Invalid::new("snapshot.reuse", "must be at most 60s"));
        }
        if self.frames_max_bytes.0 == 0 {
            return Err(Invalid::new(
                "snapshot.frames_max_bytes",
                "must be more than zero (frame URLs need their frames kept)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        assert!(SnapshotConfig::default().validate().is_ok());
        let bad = SnapshotConfig {
            max_decodes: 0,
            ..Default::default()
        };
        assert_eq!(bad.validate().unwrap_err().key, "snapshot.max_decodes");
        let bad = SnapshotConfig {
            frames_max_bytes: ByteSize(0),
            ..Default::default()
        };
        assert_eq!(bad.validate().unwrap_err().key, "snapshot.frames_max_bytes");
    }
}
