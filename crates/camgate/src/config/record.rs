//! `[record]`: continuous recording (cameras provisioned with `record: true`): where the files
//! go, how they are cut and flushed, and how long they are kept. Owns these keys' defaults and
//! checks; the recorder (`record/`) reads them, this file knows nothing of it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration;
use super::size::ByteSize;
use super::validate::{Invalid, Section};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordConfig {
    /// Where the fMP4 files go, one folder per stream. Empty = `{data_dir}/recordings`.
    pub dir: PathBuf,
    /// Length of one file; a file is cut at the first keyframe past it.
    #[serde(with = "duration")]
    pub file_duration: Duration,
    /// How often the file being written is fsynced and its index row updated: the most video
    /// a power cut can lose.
    #[serde(with = "duration")]
    pub flush_interval: Duration,
    /// Recordings older than this are removed. `0` = kept until a size limit removes them.
    #[serde(with = "duration")]
    pub retain: Duration,
    /// All streams' recordings together. `0` = unlimited.
    pub max_bytes: ByteSize,
    /// Each camera's recordings (a camera's `record_max_bytes` overrides it). `0` = unlimited.
    pub camera_max_bytes: ByteSize,
    /// Free space kept on the recordings' filesystem: the oldest files go first below it.
    /// `0` = off.
    pub min_free: ByteSize,
    /// Longest range one `export.mp4` may span.
    #[serde(with = "duration")]
    pub export_max: Duration,
}

impl Default for RecordConfig {
    fn default() -> Self {
        RecordConfig {
            dir: PathBuf::new(),
            file_duration: Duration::from_secs(60),
            flush_interval: Duration::from_secs(2),
            retain: Duration::from_secs(24 * 3600),
            max_bytes: ByteSize::UNLIMITED,
            camera_max_bytes: ByteSize::UNLIMITED,
            min_free: ByteSize::gib(1),
            export_max: Duration::from_secs(24 * 3600),
        }
    }
}

impl RecordConfig {
    /// The recordings' directory: `dir`, else `{data_dir}/recordings`.
    pub fn dir_in(&self, data_dir: &Path) -> PathBuf {
        if self.dir.as_os_str().is_empty() {
            data_dir.join("recordings")
        } else {
            self.dir.clone()
        }
    }
}

impl Section for RecordConfig {
    fn validate(&self) -> Result<(), Invalid> {
        if self.file_duration < Duration::from_secs(1)
            || self.file_duration > Duration::from_secs(3600)
        {
            return Err(Invalid::new(
                "record.file_duration",
                "must be between 1s and 1h (one file per stream per file_duration)",
            ));
        }
        if self.flush_interval < Duration::from_millis(100)
            || self.flush_interval > Duration::from_secs(60)
        {
            return Err(Invalid::new(
                "record.flush_interval",
                "must be between 100ms and 60s (the most video a power cut may lose)",
            ));
        }
        if self.export_max < Duration::from_secs(1)
            || self.export_max > Duration::from_secs(7 * 86_400)
        {
            return Err(Invalid::new(
                "record.export_max",
                "must be between 1s and 7d",
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
        let d = RecordConfig::default();
        assert!(d.validate().is_ok());
        assert_eq!(d.dir_in(Path::new("/d")), PathBuf::from("/d/recordings"));
        let bad = RecordConfig {
            file_duration: Duration::ZERO,
            ..Default::default()
        };
        assert_eq!(bad.validate().unwrap_err().key, "record.file_duration");
        let bad = RecordConfig {
            flush_interval: Duration::from_secs(600),
            ..Default::default()
        };
        assert_eq!(bad.validate().unwrap_err().key, "record.flush_interval");
        let bad = RecordConfig {
            export_max: Duration::ZERO,
            ..Default::default()
        };
        assert_eq!(bad.validate().unwrap_err().key, "record.export_max");
    }
}
