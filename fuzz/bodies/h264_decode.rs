//! Arbitrary bytes as a camera's H.264 parameter sets and access units, through the snapshot
//! decode entry (`camgate::snapshot::untrusted::decode_untrusted`: OpenH264 in-process, then
//! scaling and JPEG): every outcome is a JPEG or an error, never a panic.
//!
//! Input: chunks of `[u16 big-endian length][bytes]`. Chunk 0 is an SPS and chunk 1 a PPS (when
//! they do not parse, x264's 320x240 pair is used, so random input still reaches the decoder);
//! every later chunk is one access unit whose first byte's low bit says "keyframe" and whose rest
//! is the frame's data (4-byte length-prefixed NAL units, as a `Frame` holds them, or garbage).
//! The first byte of the input, before the chunks, picks `?width=` (0 = as decoded).
//!
//! `fuzz/fuzz_targets/h264_decode.rs` runs it under libFuzzer, and
//! `crates/camgate/tests/fuzz_corpus.rs` replays `fuzz/corpus/h264_decode/` (and seeded
//! mutations of it) through it.

use std::sync::Arc;

use bytes::Bytes;
use media::CodecParams;

/// x264's 320x240 High profile SPS and PPS (media's test constants).
const SPS: &[u8] = &[
    0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10,
    0x00, 0x00, 0x03, 0x03, 0x20, 0xf1, 0x42, 0x99, 0x60,
];
const PPS: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];

/// Access units one input may carry (a GOP; more only slows the fuzzer down).
const MAX_UNITS: usize = 64;

fn chunks(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while data.len() >= 2 && out.len() < MAX_UNITS + 2 {
        let len = usize::from(u16::from_be_bytes([data[0], data[1]]));
        let end = (2 + len).min(data.len());
        out.push(&data[2..end]);
        data = &data[end..];
    }
    out
}

/// `true` when the input decoded to a JPEG (the replay checks that real seeds get that far).
pub fn run(data: &[u8]) -> bool {
    let Some((&w, rest)) = data.split_first() else {
        return false;
    };
    let width = (w != 0).then(|| u32::from(w) * 8);
    let parts = chunks(rest);
    let params = match (parts.first(), parts.get(1)) {
        (Some(sps), Some(pps)) => CodecParams::h264(sps, pps).ok(),
        _ => None,
    };
    let params = match params {
        Some(p) => p,
        None => CodecParams::h264(SPS, PPS).expect("x264's parameter sets parse"),
    };
    let units: Vec<(Bytes, bool)> = parts
        .iter()
        .skip(2)
        .filter_map(|u| {
            let (flag, frame) = u.split_first()?;
            Some((Bytes::copy_from_slice(frame), flag & 1 == 1))
        })
        .collect();
    match camgate::snapshot::untrusted::decode_untrusted(Arc::new(params), &units, width) {
        Ok(jpeg) => {
            assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "a JPEG starts with SOI");
            true
        }
        Err(_) => false,
    }
}
