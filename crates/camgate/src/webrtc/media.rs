//! What a WebRTC session needs of our frames: Annex B access units for str0m's packetizers
//! (our `Frame.data` is length-prefixed NAL units), the parameter sets sent in-band before
//! every keyframe (a browser joining mid-stream has no other way to learn them), and the
//! B-frame check (WebRTC carries frames in decode order with presentation timestamps, which
//! browsers cannot reorder). Pure functions; no I/O, no session state.

use bytes::Bytes;
use media::{Codec, Frame, annexb};

use super::attach::video;

const START: [u8; 4] = [0, 0, 0, 1];

/// The frame as Annex B, with the parameter sets of `frame.params` first when it is a
/// keyframe (in-band copies of them in the frame are left out, so they are not sent twice).
/// `None` for a frame that is not video, or whose length prefixes do not add up (a source
/// bug; skipped).
pub fn annexb_access_unit(frame: &Frame) -> Option<Vec<u8>> {
    let video = video(frame)?;
    let nals = annexb::split_length_prefixed(&frame.data).ok()?;
    let codec = video.codec;
    let params = if frame.keyframe {
        video.parameter_sets()
    } else {
        Vec::new()
    };
    let size: usize = params
        .iter()
        .chain(nals.iter())
        .map(|n| n.len() + START.len())
        .sum();
    let mut out = Vec::with_capacity(size);
    for n in &params {
        out.extend_from_slice(&START);
        out.extend_from_slice(n);
    }
    for n in &nals {
        if frame.keyframe && annexb::is_parameter_set(codec, n) {
            continue;
        }
        out.extend_from_slice(&START);
        out.extend_from_slice(n);
    }
    Some(out)
}

/// Whether the frame holds a B slice (H.264 only: an H.265 slice header cannot be read
/// without its PPS, so H.265 streams are not checked).
pub fn has_b_slice(frame: &Frame) -> bool {
    if video(frame).is_none_or(|v| v.codec != Codec::H264) {
        return false;
    }
    let Ok(nals) = annexb::split_length_prefixed(&frame.data) else {
        return false;
    };
    nals.iter()
        .any(|n| h264_slice_type(n).is_some_and(|t| t % 5 == 1))
}

/// `slice_type` of an H.264 coded slice (NAL types 1 and 5), from the first bytes of its
/// header (ITU-T H.264 §7.3.3: `first_mb_in_slice` ue(v), then `slice_type` ue(v)).
fn h264_slice_type(nal: &Bytes) -> Option<u32> {
    let t = nal.first()? & 0x1f;
    if t != 1 && t != 5 {
        return None;
    }
    // Two Exp-Golomb numbers fit in a few bytes; strip emulation prevention over those only.
    let head = media::strip_emulation_prevention(&nal[1..nal.len().min(16)]);
    let mut r = Bits {
        data: &head,
        pos: 0,
    };
    r.ue()?;
    r.ue()
}

struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn bit(&mut self) -> Option<u32> {
        let byte = *self.data.get(self.pos / 8)?;
        let b = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(u32::from(b))
    }

    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let mut v: u32 = 0;
        for _ in 0..zeros {
            v = (v << 1) | self.bit()?;
        }
        Some((1u32 << zeros) - 1 + v)
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    use media::test_util::{H264_PPS as PPS, H264_SPS as SPS, h264_params, video_frame};

    fn frame(nals: &[&[u8]], keyframe: bool) -> Frame {
        video_frame(
            annexb::to_length_prefixed(nals),
            0,
            0,
            keyframe,
            &h264_params(),
        )
    }

    #[test]
    fn keyframes_carry_parameter_sets_once() {
        // IDR slice: first_mb 0 (`1`), slice_type 7 = I (`0001000`).
        let idr: &[u8] = &[0x65, 0x88, 0x80];
        let au = annexb_access_unit(&frame(&[SPS, PPS, idr], true)).unwrap();
        let mut want = Vec::new();
        for n in [SPS, PPS, idr] {
            want.extend_from_slice(&START);
            want.extend_from_slice(n);
        }
        assert_eq!(au, want);
        let p: &[u8] = &[0x41, 0x9a, 0x00];
        let au = annexb_access_unit(&frame(&[p], false)).unwrap();
        assert_eq!(au, [&START[..], p].concat());
        let mut broken = frame(&[p], false);
        broken.data = Bytes::from_static(&[0, 0, 0, 9, 1]);
        assert_eq!(annexb_access_unit(&broken), None);
    }

    #[test]
    fn finds_b_slices() {
        // slice_type 1 (B): first_mb `1`, slice_type `010` -> 0b1010_0000.
        assert!(has_b_slice(&frame(&[&[0x01, 0xa0]], false)));
        // slice_type 6 (B, all slices): `1` + `00111` -> 0b1001_1100.
        assert!(has_b_slice(&frame(&[&[0x41, 0x9c]], false)));
        // slice_type 0 (P): `1` + `1`.
        assert!(!has_b_slice(&frame(&[&[0x41, 0xc0]], false)));
        assert!(!has_b_slice(&frame(&[&[0x65, 0x88, 0x80]], true)));
        // Truncated headers are not B slices, and do not panic.
        assert!(!has_b_slice(&frame(&[&[0x41], &[0x41, 0x00]], false)));
    }
}
