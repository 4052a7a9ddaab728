//! `[profiles.NAME]`: transcode profiles, each served as the stream `{path}~NAME` of every
//! camera (or of the cameras it lists). Owns these keys, their defaults and checks; the ffmpeg
//! source (ingest/ffmpeg) turns a profile into arguments, this file knows nothing of that.
//! Profiles come from the config file only, never from the API: their values end up in
//! ffmpeg's argument vector.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::validate::{Invalid, Section};

/// Every profile, by name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProfilesConfig(pub BTreeMap<String, ProfileConfig>);

/// Which H.264 encoder ffmpeg uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EncoderChoice {
    /// The first hardware encoder that works on this machine, else libx264.
    #[default]
    Auto,
    Libx264,
    H264Nvenc,
    H264Vaapi,
    H264Qsv,
}

impl EncoderChoice {
    /// ffmpeg's name of the encoder (`None` for auto).
    pub fn ffmpeg_name(self) -> Option<&'static str> {
        match self {
            EncoderChoice::Auto => None,
            EncoderChoice::Libx264 => Some("libx264"),
            EncoderChoice::H264Nvenc => Some("h264_nvenc"),
            EncoderChoice::H264Vaapi => Some("h264_vaapi"),
            EncoderChoice::H264Qsv => Some("h264_qsv"),
        }
    }
}

/// A bit rate in kbit/s. In the file: a number of kbit/s (`800`) or a string with a unit
/// (`"800k"`, `"2.5M"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bitrate(pub u32);

impl Serialize for Bitrate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}k", self.0))
    }
}

impl<'de> Deserialize<'de> for Bitrate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Bitrate, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Kbps(u32),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Kbps(k) => Ok(Bitrate(k)),
            Raw::Text(t) => parse_bitrate(&t)
                .map(Bitrate)
                .map_err(serde::de::Error::custom),
        }
    }
}

fn parse_bitrate(text: &str) -> Result<u32, String> {
    let t = text.trim();
    let (num, scale) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 1.0),
        Some((i, 'm' | 'M')) => (&t[..i], 1000.0),
        _ => (t, 1.0),
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a bit rate; write e.g. \"800k\" or \"2M\""))?;
    let k = v * scale;
    if !(0.0..=1_000_000.0).contains(&k) {
        return Err(format!("{text:?} is out of range (0 to 1000M)"));
    }
    Ok(k.round() as u32)
}

/// One `[profiles.NAME]` entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProfileConfig {
    /// Output codec; only `"h264"` (what every browser decodes).
    pub codec: String,
    /// Output height in pixels (the width keeps the aspect); 0 = the camera's own height.
    pub height: u32,
    /// Output frame rate; 0 = the camera's own.
    pub fps: u32,
    /// Target bit rate.
    pub bitrate: Bitrate,
    /// Frames between keyframes; 0 = one keyframe per second (at `fps`, else at 25).
    pub gop: u32,
    pub encoder: EncoderChoice,
    /// The cameras (ids) that have this profile; empty = every camera.
    pub cameras: Vec<String>,
}

impl Default for ProfileConfig {
    fn default() -> Self {
        ProfileConfig {
            codec: "h264".into(),
            height: 0,
            fps: 0,
            bitrate: Bitrate(2000),
            gop: 0,
            encoder: EncoderChoice::Auto,
            cameras: Vec::new(),
        }
    }
}

impl ProfileConfig {
    /// Whether camera `camera_id` has this profile.
    pub fn applies_to(&self, camera_id: &str) -> bool {
        self.cameras.is_empty() || self.cameras.iter().any(|c| c == camera_id)
    }
}

/// `h264` is every camera's browser-safe stream (see docs/transcode.md); a profile may not
/// take its name.
pub const RESERVED_PROFILE: &str = "h264";

impl Section for ProfilesConfig {
    fn validate(&self) -> Result<(), Invalid> {
        for (name, p) in &self.0 {
            let key = |k: &str| format!("profiles.{name}.{k}");
            let name_ok = !name.is_empty()
                && name.len() <= 32
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !name_ok {
                return Err(Invalid::new(
                    format!("profiles.{name}"),
                    "a profile name is 1-32 characters from A-Z a-z 0-9 _ -",
                ));
            }
            if name == RESERVED_PROFILE {
                return Err(Invalid::new(
                    format!("profiles.{name}"),
                    "\"h264\" is built in (every camera's H.264 stream); choose another name",
                ));
            }
            if p.codec != "h264" {
                return Err(Invalid::new(key("codec"), "only \"h264\" is supported"));
            }
            if p.height != 0 && !(32..=4320).contains(&p.height) {
                return Err(Invalid::new(
                    key("height"),
                    "must be 0 (camera's) or 32-4320",
                ));
            }
            if p.fps > 240 {
                return Err(Invalid::new(key("fps"), "must be 0 (camera's) or 1-240"));
            }
            if !(50..=200_000).contains(&p.bitrate.0) {
                return Err(Invalid::new(key("bitrate"), "must be between 50k and 200M"));
            }
            if p.gop > 1000 {
                return Err(Invalid::new(key("gop"), "must be 0 (one second) or 1-1000"));
            }
            if let Some(c) = p.cameras.iter().find(|c| {
                c.is_empty()
                    || !c
                        .chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
            }) {
                return Err(Invalid::new(
                    key("cameras"),
                    format!("{c:?} is not a camera id"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_parse_and_check() {
        let p: ProfilesConfig = toml::from_str(
            r#"
            [720p]
            height = 720
            bitrate = "2.5M"
            encoder = "h264_nvenc"
            [360p]
            height = 360
            fps = 15
            bitrate = 600
            "#,
        )
        .unwrap();
        assert_eq!(p.0["720p"].bitrate, Bitrate(2500));
        assert_eq!(p.0["720p"].encoder, EncoderChoice::H264Nvenc);
        assert_eq!(p.0["360p"].bitrate, Bitrate(600));
        assert_eq!(p.0["360p"].codec, "h264");
        assert!(p.validate().is_ok());
        let mut bad = p.clone();
        bad.0.get_mut("360p").unwrap().codec = "vp9".into();
        assert_eq!(bad.validate().unwrap_err().key, "profiles.360p.codec");
        let mut bad = p.clone();
        bad.0.insert("h264".into(), ProfileConfig::default());
        assert_eq!(bad.validate().unwrap_err().key, "profiles.h264");
        assert!(toml::from_str::<ProfilesConfig>("[x]\nbitrate = \"fast\"").is_err());
        assert!(toml::from_str::<ProfilesConfig>("[x]\nencoder = \"x264\"").is_err());
        assert!(toml::from_str::<ProfilesConfig>("[x]\nwidth = 3").is_err());
    }
}
