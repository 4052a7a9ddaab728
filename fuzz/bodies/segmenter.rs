//! Arbitrary frame sequences (timestamps, keyframes, codec changes, flushes) and arbitrary
//! requests (file names, _HLS_msn/_HLS_part) against the LL-HLS segmenter: nothing panics,
//! segments stay within EXT-X-TARGETDURATION, every name in the playlist resolves.

use std::sync::Arc;

use bytes::Bytes;
use media::hls::{Segmenter, SegmenterConfig};
use media::{CodecParams, Frame, TrackParams};

const SPS: &[u8] = &[
    0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10,
    0x00, 0x00, 0x03, 0x03, 0x20, 0xf1, 0x42, 0x99, 0x60,
];
const SPS_1080P: &[u8] = &[
    0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78, 0x02, 0x27, 0xe5, 0xc0, 0x44, 0x00, 0x00, 0x03,
    0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xc8, 0x3c, 0x60, 0xc6, 0x58,
];
const PPS: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];

/// The fuzz target's body: `fuzz/fuzz_targets/segmenter.rs` runs it under libFuzzer, and the
/// owning crate's `tests/fuzz_corpus.rs` replays `fuzz/corpus/segmenter/` through it.
pub fn run(data: &[u8]) {
    if data.len() < 4 {
        return;
    }
    let config = SegmenterConfig {
        segment_target: std::time::Duration::from_millis(u64::from(data[0]) * 20),
        part_target: std::time::Duration::from_millis(u64::from(data[1]) * 4),
        window: usize::from(data[2] % 10),
        max_segment: (data[3] & 0x80 != 0)
            .then(|| std::time::Duration::from_secs(u64::from(data[3] & 7))),
        delta_updates: data[3] & 1 == 1,
        instance: 1,
    };
    let mut s = Segmenter::new(config);
    let ceiling = s.target_duration_secs() * 90_000;
    let params = [
        Arc::new(CodecParams::h264(SPS, PPS).expect("valid")),
        Arc::new(CodecParams::h264(SPS_1080P, PPS).expect("valid")),
    ];
    let mut current = 0;
    let mut dts: i64 = 0;
    let payload = Bytes::from_static(&[0, 0, 0, 2, 0x65, 0x88]);
    for (i, chunk) in data[4..].chunks(4).enumerate() {
        let [op, a, b, c] = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
            *chunk.get(3).unwrap_or(&0),
        ];
        match op % 16 {
            0 => current = 1 - current,
            1 => {
                s.flush();
            }
            2 => dts -= i64::from(u16::from_be_bytes([a, b])) * 100,
            3 => {
                let name = String::from_utf8_lossy(chunk).into_owned();
                let _ = s.lookup(&name);
                let _ = s.blocking_reload(Some(u64::from(a)), Some(u64::from(b)));
                let _ = s.blocking_reload(None, (c & 1 == 1).then_some(u64::MAX));
            }
            _ => {
                let frame = Frame {
                    data: payload.clone(),
                    pts: dts + i64::from(c as i8) * 100,
                    dts,
                    keyframe: a < 24,
                    params: TrackParams::Video(params[current].clone()),
                    wallclock: std::time::UNIX_EPOCH,
                };
                s.push(&frame, i as i64 * 33);
                dts += i64::from(b) * 60;
            }
        }
    }
    for seg in s.segment_infos() {
        assert!(seg.duration <= ceiling);
    }
    let playlist = s.playlist(true);
    for line in s.playlist(false).lines() {
        if !line.starts_with('#') {
            assert!(
                s.lookup(line).is_some(),
                "{line} in the playlist does not resolve"
            );
        }
    }
    assert!(playlist.starts_with("#EXTM3U"));
}
