//! Round trip through an independent parser: real clips from ffmpeg, muxed by our fmp4 module,
//! decoded by ffprobe. Every frame must come back, in order, with our timestamps and key flags.

mod common;

use std::path::Path;

use common::{X264_NO_B_FRAMES, field, probe_rows, testsrc_frames, x264_b_frame_frames};
use media::{Codec, Frame, fmp4};

/// 90 kHz ticks per frame at 25 fps.
const TICKS: i64 = 3600;

/// Muxes `frames` into init + fragments of `per_fragment` frames and writes the file.
fn write_fmp4(path: &Path, frames: &[Frame], per_fragment: usize, last_duration: i64) {
    let mut file = fmp4::init_segment(frames[0].video().unwrap())
        .unwrap()
        .to_vec();
    for (seq, chunk) in frames.chunks(per_fragment).enumerate() {
        let start = seq * per_fragment;
        let end_dts = frames
            .get(start + chunk.len())
            .map_or(chunk.last().unwrap().dts + last_duration, |f| f.dts);
        let parts = fmp4::fragment(seq as u32 + 1, chunk, end_dts).unwrap();
        for (i, p) in parts.iter().enumerate().skip(1) {
            // Payload chunks are the frames' own buffers, not copies.
            assert_eq!(p.as_ptr(), chunk[i - 1].data.as_ptr());
        }
        parts.iter().for_each(|p| file.extend_from_slice(p));
    }
    std::fs::write(path, file).unwrap();
}

/// Checks decoded frames (display order) and packets (decode order) against what we muxed.
fn assert_probe_matches(path: &Path, frames: &[Frame]) {
    let packets = probe_rows(path, "packet", "pts,dts,size,flags");
    assert_eq!(packets.len(), frames.len(), "packet count");
    for (p, f) in packets.iter().zip(frames) {
        assert_eq!(field(p, "dts"), f.dts, "dts of {p:?}");
        assert_eq!(field(p, "pts"), f.pts, "pts of {p:?}");
        assert_eq!(field(p, "size"), f.data.len() as i64);
        assert_eq!(p["flags"].starts_with('K'), f.keyframe, "key flag of {p:?}");
    }
    let decoded = probe_rows(path, "frame", "pts,key_frame");
    assert_eq!(decoded.len(), frames.len(), "every frame decodes");
    let mut display: Vec<(i64, bool)> = frames.iter().map(|f| (f.pts, f.keyframe)).collect();
    display.sort();
    for (d, (pts, key)) in decoded.iter().zip(&display) {
        assert_eq!(field(d, "pts"), *pts, "display order");
        assert_eq!(field(d, "key_frame") == 1, *key);
    }
}

#[test]
fn h264_without_b_frames() {
    let dir = tempfile::tempdir().unwrap();
    let frames = testsrc_frames(dir.path(), Codec::H264, 4, X264_NO_B_FRAMES, TICKS);
    assert_eq!(frames.len(), 100);
    assert_eq!(frames.iter().filter(|f| f.keyframe).count(), 4);
    assert_eq!(frames[0].video().unwrap().rfc6381, "avc1.64000d");
    let out = dir.path().join("out.mp4");
    write_fmp4(&out, &frames, 7, TICKS);
    assert_probe_matches(&out, &frames);
}

#[test]
fn h264_with_b_frames_keeps_composition_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let frames = x264_b_frame_frames(dir.path());
    assert_eq!(frames.len(), 100);
    assert!(
        frames.windows(2).any(|w| w[1].pts < w[0].pts),
        "B-frames present"
    );
    assert!(
        frames.iter().any(|f| f.pts != f.dts),
        "composition offsets present"
    );
    let out = dir.path().join("out.mp4");
    write_fmp4(&out, &frames, 10, TICKS);
    assert_probe_matches(&out, &frames);
}

#[test]
fn h265_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let x265 = [
        "-c:v",
        "libx265",
        "-x265-params",
        "keyint=25:bframes=0:log-level=error",
        "-f",
        "hevc",
    ];
    let frames = testsrc_frames(dir.path(), Codec::H265, 2, &x265, TICKS);
    assert_eq!(frames.len(), 50);
    assert!(frames[0].keyframe && frames[25].keyframe);
    assert!(frames[0].video().unwrap().rfc6381.starts_with("hvc1.1.6.L"));
    let out = dir.path().join("out.mp4");
    write_fmp4(&out, &frames, 5, TICKS);
    assert_probe_matches(&out, &frames);
}
