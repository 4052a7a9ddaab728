//! `[streams]`: the live path's timeouts, reconnect backoff and viewer limit. Owns these keys'
//! defaults and checks; the live path reads them, this file knows nothing of it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration;
use super::validate::{Invalid, Section};

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

impl Section for StreamsConfig {
    fn validate(&self) -> Result<(), Invalid> {
        for (key, d) in [
            ("streams.start_timeout", self.start_timeout),
            ("streams.stall_timeout", self.stall_timeout),
            ("streams.reconnect_min", self.reconnect_min),
        ] {
            if d.is_zero() {
                return Err(Invalid::new(key, "must be longer than zero"));
            }
        }
        if self.reconnect_min > self.reconnect_max {
            return Err(Invalid::new(
                "streams.reconnect_max",
                "must not be shorter than streams.reconnect_min",
            ));
        }
        if self.max_viewers_per_stream == 0 {
            return Err(Invalid::new(
                "streams.max_viewers_per_stream",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}
