//! Golden bytes: the init segment and a fragment are pinned byte for byte in tests/golden/.
//! A mismatch means the muxer's output changed; if that was deliberate, check the new output
//! with ffprobe (tests/fmp4_ffprobe.rs does) and re-bless with `MEDIA_BLESS=1 cargo test`.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use media::test_util::{
    H264_PPS as PPS, H264_SPS as SPS, H265_PPS, H265_SPS, H265_VPS, video_frame,
};
use media::{CodecParams, fmp4};

fn hex(b: &[u8]) -> String {
    let mut s = String::new();
    for (i, x) in b.iter().enumerate() {
        s.push_str(&format!("{x:02x}"));
        s.push(if i % 32 == 31 { '\n' } else { ' ' });
    }
    s.trim_end().to_owned() + "\n"
}

fn check_golden(name: &str, actual: &[u8]) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    let actual = hex(actual);
    if std::env::var_os("MEDIA_BLESS").is_some() {
        std::fs::write(&path, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        expected == actual,
        "{name} changed; new bytes:\n{actual}\n(re-bless with MEDIA_BLESS=1 if deliberate)"
    );
}

#[test]
fn init_segment_h264_is_pinned() {
    let params = CodecParams::h264(SPS, PPS).unwrap();
    check_golden("init_h264.hex", &fmp4::init_segment(&params).unwrap());
}

#[test]
fn init_segment_h265_is_pinned() {
    let params = CodecParams::h265(H265_VPS, H265_SPS, H265_PPS).unwrap();
    check_golden("init_h265.hex", &fmp4::init_segment(&params).unwrap());
}

#[test]
fn fragment_is_pinned_and_shares_payloads() {
    let params = Arc::new(CodecParams::h264(SPS, PPS).unwrap());
    let frame = |data: &'static [u8], dts: i64, pts: i64, keyframe: bool| {
        video_frame(Bytes::from_static(data), pts, dts, keyframe, &params)
    };
    // I P B: decode order with a B-frame shown before the P-frame (negative-free offsets).
    let frames = vec![
        frame(&[0, 0, 0, 2, 0x65, 0x88], 90_000, 93_600, true),
        frame(&[0, 0, 0, 3, 0x41, 0x9a, 0x01], 93_600, 100_800, false),
        frame(&[0, 0, 0, 2, 0x01, 0x9e], 97_200, 97_200, false),
    ];
    let chunks = fmp4::fragment(42, &frames, 100_800).unwrap();
    assert_eq!(chunks.len(), 4);
    for (chunk, f) in chunks[1..].iter().zip(&frames) {
        assert_eq!(
            chunk.as_ptr(),
            f.data.as_ptr(),
            "payload is shared, not copied"
        );
        assert_eq!(chunk.len(), f.data.len());
    }
    let mut all = Vec::new();
    chunks.iter().for_each(|c| all.extend_from_slice(c));
    assert_eq!(fmp4::chunks_len(&chunks), all.len());
    check_golden("fragment_h264.hex", &all);
}

#[test]
fn fragment_rejects_bad_timing() {
    let params = Arc::new(CodecParams::h264(SPS, PPS).unwrap());
    let f = |dts: i64, pts: i64| {
        video_frame(
            Bytes::from_static(&[0, 0, 0, 1, 0x65]),
            pts,
            dts,
            true,
            &params,
        )
    };
    assert!(fmp4::fragment(1, &[], 0).is_err());
    assert!(fmp4::fragment(1, &[f(-1, 0)], 10).is_err(), "negative tfdt");
    assert!(
        fmp4::fragment(1, &[f(10, 10)], 10).is_err(),
        "zero duration"
    );
    assert!(
        fmp4::fragment(1, &[f(10, 10), f(5, 5)], 20).is_err(),
        "dts going back"
    );
    assert!(
        fmp4::fragment(1, &[f(0, i64::MAX)], 10).is_err(),
        "offset overflow"
    );
    assert!(
        fmp4::fragment(1, &[f(0, 0), f(0, 0)], 10).is_err(),
        "equal dts"
    );
}
