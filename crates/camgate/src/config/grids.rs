//! `[grids.NAME]`: a picture of several cameras side by side (a wall display), served as the
//! stream `NAME`. Owns these keys, their defaults and checks; the live path (live/grids.rs)
//! and the ffmpeg source (ingest/ffmpeg/grid.rs) make it. From the config file only: the
//! values end up in ffmpeg's argument vector.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::profiles::{Bitrate, EncoderChoice};
use super::validate::{Invalid, Section};

/// Every grid, by name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GridsConfig(pub BTreeMap<String, GridConfig>);

/// Most cameras in one grid (a 4x4 wall).
pub const MAX_GRID_CAMERAS: usize = 16;

/// One `[grids.NAME]` entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GridConfig {
    /// Camera ids, tiled left to right, top to bottom.
    pub cameras: Vec<String>,
    /// The whole picture, `"WIDTHxHEIGHT"`.
    pub size: String,
    pub fps: u32,
    pub bitrate: Bitrate,
    pub encoder: EncoderChoice,
    /// Recorded continuously, like a camera with `record: true` (keeps the grid running).
    pub record: bool,
}

impl Default for GridConfig {
    fn default() -> Self {
        GridConfig {
            cameras: Vec::new(),
            size: "1280x720".into(),
            fps: 15,
            bitrate: Bitrate(2000),
            encoder: EncoderChoice::Auto,
            record: false,
        }
    }
}

impl GridConfig {
    /// `size` as (width, height); `None` when it does not parse (validation refuses that).
    pub fn dimensions(&self) -> Option<(u32, u32)> {
        let (w, h) = self.size.trim().split_once(['x', 'X'])?;
        let w: u32 = w.trim().parse().ok()?;
        let h: u32 = h.trim().parse().ok()?;
        Some((w, h))
    }
}

fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl Section for GridsConfig {
    fn validate(&self) -> Result<(), Invalid> {
        for (name, g) in &self.0 {
            let key = |k: &str| format!("grids.{name}.{k}");
            if !is_id(name) {
                return Err(Invalid::new(
                    format!("grids.{name}"),
                    "a grid name is its stream path: 1-64 characters from A-Z a-z 0-9 _ -",
                ));
            }
            if g.cameras.is_empty() || g.cameras.len() > MAX_GRID_CAMERAS {
                return Err(Invalid::new(
                    key("cameras"),
                    format!("list 1 to {MAX_GRID_CAMERAS} camera ids"),
                ));
            }
            if let Some(c) = g.cameras.iter().find(|c| !is_id(c)) {
                return Err(Invalid::new(
                    key("cameras"),
                    format!("{c:?} is not a camera id"),
                ));
            }
            match g.dimensions() {
                Some((w, h))
                    if (64..=3840).contains(&w)
                        && (64..=2160).contains(&h)
                        && w % 2 == 0
                        && h % 2 == 0 => {}
                _ => {
                    return Err(Invalid::new(
                        key("size"),
                        "write \"WIDTHxHEIGHT\", even numbers, 64x64 to 3840x2160, e.g. \"1280x720\"",
                    ));
                }
            }
            if !(1..=60).contains(&g.fps) {
                return Err(Invalid::new(key("fps"), "must be 1-60"));
            }
            if !(50..=200_000).contains(&g.bitrate.0) {
                return Err(Invalid::new(key("bitrate"), "must be between 50k and 200M"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grids_parse_and_check() {
        let g: GridsConfig = toml::from_str(
            r#"
            [lobby]
            cameras = ["1", "2", "3", "4"]
            size = "640x480"
            fps = 10
            bitrate = "1M"
            "#,
        )
        .unwrap();
        let lobby = &g.0["lobby"];
        assert_eq!(lobby.dimensions(), Some((640, 480)));
        assert_eq!(lobby.bitrate, Bitrate(1000));
        assert_eq!(lobby.encoder, EncoderChoice::Auto);
        assert!(g.validate().is_ok());
        let bad = |edit: fn(&mut GridConfig)| {
            let mut b = g.clone();
            edit(b.0.get_mut("lobby").unwrap());
            b.validate().unwrap_err().key
        };
        assert_eq!(bad(|g| g.cameras.clear()), "grids.lobby.cameras");
        assert_eq!(bad(|g| g.cameras.push("a b".into())), "grids.lobby.cameras");
        assert_eq!(bad(|g| g.size = "640".into()), "grids.lobby.size");
        assert_eq!(bad(|g| g.size = "641x480".into()), "grids.lobby.size");
        assert_eq!(bad(|g| g.size = "99999x480".into()), "grids.lobby.size");
        assert_eq!(bad(|g| g.fps = 0), "grids.lobby.fps");
        let mut b = g.clone();
        b.0.insert("a~b".into(), GridConfig::default());
        assert_eq!(b.validate().unwrap_err().key, "grids.a~b");
        assert!(toml::from_str::<GridsConfig>("[x]\ncolumns = 2").is_err());
    }
}
