//! Decode times against real encoders: x264 and x265 write B-frames with their own decode
//! times; we feed the access units in decode order with only their presentation times (what
//! RTP gives) and must find the encoder's decode times again, up to one constant offset.

mod common;

use std::path::Path;

use bytes::Bytes;
use common::{encode_testsrc, field, params_from_nals, probe_rows, run};
use media::dts::{AccessUnit, DtsExtractor, ParameterSets};
use media::{Codec, annexb};

/// An encoder's packet: (pts, dts, keyframe).
type Packet = (i64, i64, bool);

/// Encodes testsrc with `codec_args` into MPEG-TS (which keeps the encoder's pts and dts at
/// 90 kHz), then returns the access units in decode order with ffprobe's (pts, dts, key).
fn clip(
    dir: &Path,
    codec: Codec,
    seconds: u32,
    codec_args: &[&str],
) -> (Vec<Bytes>, Vec<Packet>, Vec<Bytes>) {
    let ts = dir.join("clip.ts");
    let mut args = codec_args.to_vec();
    args.extend_from_slice(&["-f", "mpegts"]);
    encode_testsrc(&ts, seconds, &args);
    let packets: Vec<Packet> = probe_rows(&ts, "packet", "pts,dts,flags")
        .iter()
        .map(|p| {
            (
                field(p, "pts"),
                field(p, "dts"),
                p["flags"].starts_with('K'),
            )
        })
        .collect();
    let es = dir.join("clip.es");
    let format = if codec == Codec::H264 { "h264" } else { "hevc" };
    let es_path = es.to_str().unwrap();
    run(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-y",
            "-i",
            ts.to_str().unwrap(),
            "-c",
            "copy",
            "-f",
            format,
            es_path,
        ],
    );
    let nals = annexb::split_annexb(&Bytes::from(std::fs::read(&es).unwrap()));
    let aus: Vec<Bytes> = annexb::access_units(codec, &nals)
        .iter()
        .map(|au| annexb::to_length_prefixed(au))
        .collect();
    (aus, packets, nals)
}

/// Runs the extractor over the clip and checks it against the encoder's decode times: the
/// offset found is 0 for both encoders, but a constant is all players need.
/// `b_frames`: whether the encoder was asked for them. Returns the reorder depth it used.
fn check(codec: Codec, codec_args: &[&str], b_frames: bool) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let (aus, packets, nals) = clip(dir.path(), codec, 4, codec_args);
    assert_eq!(aus.len(), packets.len(), "one access unit per packet");
    assert_eq!(aus.len(), 100);
    let params = params_from_nals(codec, &nals);
    let sets = ParameterSets {
        codec,
        vps: &params.vps,
        sps: &params.sps,
        pps: &params.pps,
    };
    // Pictures that display before one decoded earlier: the B-frames.
    let reordered = (1..packets.len())
        .filter(|&i| packets[..i].iter().any(|p| p.0 > packets[i].0))
        .count();
    assert_eq!(reordered > 50, b_frames, "B-frames as asked: {packets:?}");
    let mut x = DtsExtractor::new();
    let mut offset = None;
    let mut last = i64::MIN;
    for (i, (au, &(pts, want, key))) in aus.iter().zip(&packets).enumerate() {
        let au = AccessUnit {
            data: au,
            pts,
            keyframe: key,
        };
        let dts = x
            .extract(&sets, &au)
            .unwrap_or_else(|e| panic!("frame {i}: {e}"));
        assert!(dts <= pts, "frame {i}: dts {dts} > pts {pts}");
        assert!(dts > last, "frame {i}: dts {dts} after {last}");
        last = dts;
        let off = *offset.get_or_insert(dts - want);
        assert_eq!(dts - want, off, "frame {i}: ours {dts}, encoder's {want}");
        if !b_frames {
            assert_eq!(dts, pts, "frame {i}: no reordering, so dts = pts");
        }
    }
    x.reorder_depth()
}

/// x264 with `bframes` B-frames a GOP of 25 and the given B-pyramid mode.
fn x264(bframes: &str, pyramid: &str) -> usize {
    let params = format!("b-pyramid={pyramid}");
    let args = [
        "-c:v",
        "libx264",
        "-g",
        "25",
        "-bf",
        bframes,
        "-x264-params",
        &params,
    ];
    check(Codec::H264, &args, true)
}

#[test]
fn x264_without_b_frames_keeps_dts_equal_to_pts() {
    let args = ["-c:v", "libx264", "-g", "25", "-bf", "0"];
    assert_eq!(check(Codec::H264, &args, false), 0);
}

#[test]
fn x265_without_b_frames_keeps_dts_equal_to_pts() {
    let args = [
        "-c:v",
        "libx265",
        "-x265-params",
        "log-level=none:keyint=25:bframes=0",
    ];
    assert_eq!(check(Codec::H265, &args, false), 0);
}

#[test]
fn x264_two_b_frames() {
    assert_eq!(
        x264("2", "normal"),
        2,
        "x264's default B-pyramid reorders two deep"
    );
}

#[test]
fn x264_three_b_frames_without_pyramid() {
    assert_eq!(x264("3", "none"), 1);
}

#[test]
fn x264_three_b_frames_with_pyramid() {
    assert_eq!(x264("3", "normal"), 2);
}

#[test]
fn x265_b_frames() {
    let args = [
        "-c:v",
        "libx265",
        "-x265-params",
        "log-level=none:keyint=25:bframes=3",
    ];
    // x265's default B-pyramid; its open GOPs put CRA pictures with RASL leading pictures
    // (decoded after the CRA, displayed before it) mid-stream.
    assert_eq!(check(Codec::H265, &args, true), 2);
}
