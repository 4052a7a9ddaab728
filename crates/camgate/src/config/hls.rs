//! `[hls]`: LL-HLS segment and part lengths and the playlist window. Owns these keys' defaults
//! and checks; the HLS output reads them, this file knows nothing of it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration;
use super::validate::{Invalid, Section};

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

impl Section for HlsConfig {
    fn validate(&self) -> Result<(), Invalid> {
        for (key, d) in [
            ("hls.segment_duration", self.segment_duration),
            ("hls.part_duration", self.part_duration),
        ] {
            if d.is_zero() {
                return Err(Invalid::new(key, "must be longer than zero"));
            }
        }
        if self.part_duration > self.segment_duration {
            return Err(Invalid::new(
                "hls.part_duration",
                "must not be longer than hls.segment_duration",
            ));
        }
        if self.list_size < 3 {
            return Err(Invalid::new(
                "hls.list_size",
                "must be at least 3 (players need three segments to start, RFC 8216 6.2.2)",
            ));
        }
        Ok(())
    }
}
