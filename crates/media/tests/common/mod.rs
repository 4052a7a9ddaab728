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

/// A four-second x264 clip with two B-frames (GOP 25), as the frames ffmpeg itself muxed: each
/// packet's bytes taken from its position in ffmpeg's MP4, its times rescaled to 90 kHz and
/// shifted so decoding starts at 0 (tfdt is unsigned). The parameter sets come through our
/// Annex B parser, so a muxer under test gets what ingest would give it.
pub fn x264_b_frame_frames(dir: &Path) -> Vec<Frame> {
    let mp4 = dir.join("clip.mp4");
    encode_testsrc(&mp4, 4, &["-c:v", "libx264", "-g", "25", "-bf", "2"]);
    let file = Bytes::from(std::fs::read(&mp4).expect("ffmpeg wrote the clip"));
    let packets = probe_rows(&mp4, "packet", "pts,dts,pos,size");
    let tb = probe_rows(&mp4, "stream", "time_base");
    let den: i64 = tb[0]["time_base"]
        .split_once('/')
        .and_then(|(_, d)| d.parse().ok())
        .expect("a time_base of the form 1/N");
    let to90k = |t: i64| t * 90_000 / den;
    let min_dts = packets
        .iter()
        .map(|p| to90k(field(p, "dts")))
        .min()
        .expect("the clip has packets");
    let annexb_path = dir.join("clip.h264");
    run(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-y",
            "-i",
            mp4.to_str().expect("temp paths are UTF-8"),
            "-c",
            "copy",
            "-bsf:v",
            "h264_mp4toannexb",
            "-f",
            "h264",
            annexb_path.to_str().expect("temp paths are UTF-8"),
        ],
    );
    let nals = annexb::split_annexb(&Bytes::from(
        std::fs::read(&annexb_path).expect("ffmpeg wrote the Annex B stream"),
    ));
    let params = Arc::new(params_from_nals(Codec::H264, &nals));
    packets
        .iter()
        .map(|p| {
            let pos = field(p, "pos") as usize;
            let data = file.slice(pos..pos + field(p, "size") as usize);
            let keyframe = annexb::access_unit_is_keyframe(Codec::H264, &data);
            let pts = to90k(field(p, "pts")) - min_dts;
            let dts = to90k(field(p, "dts")) - min_dts;
            video_frame(data, pts, dts, keyframe, &params)
        })
        .collect()
}
