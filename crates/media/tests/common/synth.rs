//! Synthetic frames for segmenter tests: valid parameter sets, tiny payloads.
#![allow(dead_code)]

use std::sync::Arc;

use bytes::Bytes;
use media::{CodecParams, Frame};

pub const SPS: &[u8] = &[
    0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10,
    0x00, 0x00, 0x03, 0x03, 0x20, 0xf1, 0x42, 0x99, 0x60,
];
pub const PPS: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];
/// The 1080p SPS: a different stream configuration, for codec-change tests.
pub const SPS_1080P: &[u8] = &[
    0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78, 0x02, 0x27, 0xe5, 0xc0, 0x44, 0x00, 0x00, 0x03,
    0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xc8, 0x3c, 0x60, 0xc6, 0x58,
];

pub fn params() -> Arc<CodecParams> {
    Arc::new(CodecParams::h264(SPS, PPS).unwrap())
}

pub fn params_1080p() -> Arc<CodecParams> {
    Arc::new(CodecParams::h264(SPS_1080P, PPS).unwrap())
}

/// A frame with a one-NAL payload that encodes its index (so payloads are distinguishable).
pub fn frame(params: &Arc<CodecParams>, index: u32, dts: i64, pts: i64, keyframe: bool) -> Frame {
    let mut data = vec![0, 0, 0, 5, if keyframe { 0x65 } else { 0x41 }];
    data.extend_from_slice(&index.to_be_bytes());
    Frame {
        data: Bytes::from(data),
        pts,
        dts,
        keyframe,
        params: media::TrackParams::Video(params.clone()),
        wallclock: std::time::UNIX_EPOCH,
    }
}

/// Tags and URIs of a playlist, for assertions.
pub struct Parsed {
    pub lines: Vec<String>,
}

impl Parsed {
    pub fn new(text: &str) -> Parsed {
        assert!(text.starts_with("#EXTM3U\n"), "{text}");
        Parsed {
            lines: text.lines().map(str::to_owned).collect(),
        }
    }

    /// Value after `tag:` on the first line with that tag.
    pub fn tag(&self, tag: &str) -> Option<String> {
        let prefix = format!("{tag}:");
        self.lines
            .iter()
            .find_map(|l| l.strip_prefix(&prefix).map(str::to_owned))
    }

    pub fn count(&self, tag: &str) -> usize {
        self.lines.iter().filter(|l| l.starts_with(tag)).count()
    }

    /// An attribute of an attribute-list value (`A=1,B="x"`), quotes removed.
    pub fn attr(list: &str, name: &str) -> Option<String> {
        list.split(',').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == name).then(|| v.trim_matches('"').to_owned())
        })
    }

    /// Every URI: segment lines, and URI attributes of MAP/PART/PRELOAD-HINT.
    pub fn uris(&self) -> Vec<String> {
        let mut out = Vec::new();
        for l in &self.lines {
            if !l.starts_with('#') && !l.is_empty() {
                out.push(l.clone());
            } else if let Some(i) = l.find("URI=\"") {
                let rest = &l[i + 5..];
                out.push(rest[..rest.find('"').unwrap()].to_owned());
            }
        }
        out
    }

    /// EXTINF durations in seconds.
    pub fn extinfs(&self) -> Vec<f64> {
        self.lines
            .iter()
            .filter_map(|l| l.strip_prefix("#EXTINF:"))
            .map(|v| v.trim_end_matches(',').parse().unwrap())
            .collect()
    }
}
