//! Helpers shared by the integration tests: real clips from ffmpeg, and running ffprobe.
//! ffmpeg/ffprobe are required (CI installs them); a missing tool fails the test loudly.
#![allow(dead_code)]

pub mod synth;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use bytes::Bytes;
use media::test_util::video_frame;
use media::{Codec, CodecParams, Frame, annexb};

/// Runs a command, panicking with its stderr if it fails; returns stdout.
pub fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} (install ffmpeg): {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("tool output is UTF-8")
}

/// Encodes `seconds` of ffmpeg's testsrc at 320x240, 25 fps, one keyframe a second, with the
/// given extra encoder arguments, into `path` in the format its extension implies.
pub fn encode_testsrc(path: &Path, seconds: u32, codec_args: &[&str]) {
    let secs = seconds.to_string();
    let mut args = vec![
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x240:rate=25",
        "-t",
        &secs,
        "-pix_fmt",
        "yuv420p",
    ];
    args.extend_from_slice(codec_args);
    args.push(path.to_str().expect("temp paths are UTF-8"));
    run("ffmpeg", &args);
}

/// Parses an Annex B elementary stream into frames with our own annexb module: one frame per
/// access unit, pts = dts = index * `frame_ticks`. Parameter sets stay in band too.
pub fn frames_from_annexb(codec: Codec, stream: Bytes, frame_ticks: i64) -> Vec<Frame> {
    let nals = annexb::split_annexb(&stream);
    let params = Arc::new(params_from_nals(codec, &nals));
    annexb::access_units(codec, &nals)
        .into_iter()
        .enumerate()
        .map(|(i, au)| {
            let t = i as i64 * frame_ticks;
            let keyframe = au.iter().any(|n| annexb::is_keyframe_nal(codec, n));
            video_frame(annexb::to_length_prefixed(&au), t, t, keyframe, &params)
        })
        .collect()
}

/// `seconds` of testsrc encoded by `codec_args` (which name the elementary-stream format with
/// `-f`) into a file in `dir`, read back with `frames_from_annexb` at `frame_ticks` a frame.
pub fn testsrc_frames(
    dir: &Path,
    codec: Codec,
    seconds: u32,
    codec_args: &[&str],
    frame_ticks: i64,
) -> Vec<Frame> {
    let clip = dir.join(match codec {
        Codec::H264 => "clip.h264",
        Codec::H265 => "clip.hevc",
    });
    encode_testsrc(&clip, seconds, codec_args);
    let stream = Bytes::from(std::fs::read(&clip).expect("ffmpeg wrote the clip"));
    frames_from_annexb(codec, stream, frame_ticks)
}

/// x264 without B-frames, one keyframe a second, as an Annex B stream.
pub const X264_NO_B_FRAMES: &[&str] = &["-c:v", "libx264", "-g", "25", "-bf", "0", "-f", "h264"];

/// Codec parameters from the first parameter sets found among `nals`.
pub fn params_from_nals(codec: Codec, nals: &[Bytes]) -> CodecParams {
    let first = |t: u8| {
        nals.iter()
            .find(|n| annexb::nal_type(codec, n) == Some(t))
            .unwrap_or_else(|| panic!("no NAL unit of type {t}"))
    };
    match codec {
        Codec::H264 => CodecParams::h264(first(7), first(8)).expect("x264 parameter sets parse"),
        Codec::H265 => {
            CodecParams::h265(first(32), first(33), first(34)).expect("x265 parameter sets parse")
        }
    }
}

/// ffprobe `-show_entries` of the first video stream: one map of field -> value per row.
pub fn probe_rows(path: &Path, section: &str, entries: &str) -> Vec<HashMap<String, String>> {
    let spec = format!("{section}={entries}");
    let out = run(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            "v:0",
            &format!("-show_{section}s"),
            "-show_entries",
            &spec,
            "-of",
            "compact=p=0",
            path.to_str().expect("temp paths are UTF-8"),
        ],
    );
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.trim()
                .split('|')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

/// A numeric field of a probe row.
pub fn field(row: &HashMap<String, String>, name: &str) -> i64 {
    row.get(name)
        .unwrap_or_else(|| panic!("no {name} in {row:?}"))
        .parse()
        .unwrap_or_else(|_| panic!("{name} not a number in {row:?}"))
}
