//! Builders that tests of every crate repeat: real parameter sets (written by x264 and x265 for
//! ffmpeg's testsrc), their `CodecParams`, and synthetic frames. Enabled by the `test-util`
//! feature (`media = { ..., features = ["test-util"] }` in a crate's dev-dependencies).
//!
//! `video_frame` and `audio_frame` are the only places here that construct a `Frame`: when `Frame` changes, it is
//! the one spot to follow. Owns no test logic; nothing in the library uses it.

use std::sync::Arc;

use bytes::Bytes;

use crate::{AudioCodec, AudioParams, Codec, CodecParams, Frame, TrackParams};

/// x264, 320x240, High profile, level 1.3, no cropping (`avc1.64000d`).
pub const H264_SPS: &[u8] = &[
    0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10,
    0x00, 0x00, 0x03, 0x03, 0x20, 0xf1, 0x42, 0x99, 0x60,
];
/// x264, 1920x1080, High profile, level 4.0: 1088 lines cropped to 1080 (`avc1.640028`).
pub const H264_SPS_1080P: &[u8] = &[
    0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78, 0x02, 0x27, 0xe5, 0xc0, 0x44, 0x00, 0x00, 0x03,
    0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xc8, 0x3c, 0x60, 0xc6, 0x58,
];
/// x264's PPS, valid with both SPSs above.
pub const H264_PPS: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];
/// x265, 320x240, Main profile, level 2 (`hvc1.1.6.L60.90`).
pub const H265_VPS: &[u8] = &[
    0x40, 0x01, 0x0c, 0x01, 0xff, 0xff, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03,
    0x00, 0x00, 0x03, 0x00, 0x3c, 0x95, 0x98, 0x09,
];
pub const H265_SPS: &[u8] = &[
    0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03,
    0x00, 0x3c, 0xa0, 0x0a, 0x08, 0x0f, 0x16, 0x59, 0x59, 0xa4, 0x93, 0x2b, 0xc0, 0x5a, 0x02, 0x00,
    0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x03, 0x00, 0x32, 0x10,
];
pub const H265_PPS: &[u8] = &[0x44, 0x01, 0xc1, 0x72, 0xb4, 0x62, 0x40];

/// 90 kHz ticks per frame at 25 fps, the rate of the synthetic streams below.
pub const FRAME_TICKS: i64 = 3600;

/// 320x240 H.264 parameters (from `H264_SPS`, `H264_PPS`).
pub fn h264_params() -> Arc<CodecParams> {
    // The constants above are x264's own output and parse: a failure is a bug in the parser.
    Arc::new(CodecParams::h264(H264_SPS, H264_PPS).expect("x264 parameter sets parse"))
}

/// 1920x1080 H.264 parameters: a different stream configuration, for codec-change tests.
pub fn h264_params_1080p() -> Arc<CodecParams> {
    Arc::new(CodecParams::h264(H264_SPS_1080P, H264_PPS).expect("x264 parameter sets parse"))
}

/// 320x240 H.265 parameters.
pub fn h265_params() -> Arc<CodecParams> {
    Arc::new(CodecParams::h265(H265_VPS, H265_SPS, H265_PPS).expect("x265 parameter sets parse"))
}

/// A frame from its parts. The one constructor of `Frame` for tests.
pub fn video_frame(
    data: Bytes,
    pts: i64,
    dts: i64,
    keyframe: bool,
    params: &Arc<CodecParams>,
) -> Frame {
    Frame {
        data,
        pts,
        dts,
        keyframe,
        params: TrackParams::Video(params.clone()),
        wallclock: std::time::UNIX_EPOCH,
    }
}

/// AudioSpecificConfig of AAC-LC, 48 kHz, mono (what voaacenc writes for a mono tone).
pub const AAC_CONFIG: &[u8] = &[0x11, 0x88];

/// 90 kHz ticks of one AAC frame (1024 samples) at 48 kHz.
pub const AAC_FRAME_TICKS: i64 = 1920;

/// AAC-LC 48 kHz mono parameters (from `AAC_CONFIG`).
pub fn aac_params() -> Arc<AudioParams> {
    Arc::new(AudioParams::aac(AAC_CONFIG).expect("a valid AudioSpecificConfig"))
}

/// G.711 A-law, 8 kHz mono.
pub fn pcma_params() -> Arc<AudioParams> {
    Arc::new(AudioParams::simple(AudioCodec::Pcma, 8000, 1))
}

/// An audio frame at `pts` (= dts) whose payload is `index` in big-endian (distinguishable,
/// not decodable).
pub fn audio_frame(params: &Arc<AudioParams>, index: u32, pts: i64) -> Frame {
    Frame {
        data: Bytes::copy_from_slice(&index.to_be_bytes()),
        pts,
        dts: pts,
        keyframe: false,
        params: TrackParams::Audio(params.clone()),
        wallclock: std::time::UNIX_EPOCH,
    }
}

/// A frame whose payload is one NAL unit of the codec's IDR (keyframe) or non-IDR slice type
/// followed by `index` in big-endian, so payloads are distinguishable.
pub fn frame(params: &Arc<CodecParams>, index: u32, dts: i64, pts: i64, keyframe: bool) -> Frame {
    let header: &[u8] = match (params.codec, keyframe) {
        (Codec::H264, true) => &[0x65],
        (Codec::H264, false) => &[0x41],
        // IDR_W_RADL and TRAIL_R, temporal id 0.
        (Codec::H265, true) => &[0x26, 0x01],
        (Codec::H265, false) => &[0x02, 0x01],
    };
    let len = (header.len() + 4) as u32;
    let mut data = len.to_be_bytes().to_vec();
    data.extend_from_slice(header);
    data.extend_from_slice(&index.to_be_bytes());
    video_frame(Bytes::from(data), pts, dts, keyframe, params)
}

/// Frame `n` of a 25 fps stream without B-frames and with a keyframe every `gop` frames:
/// pts = dts = n * `FRAME_TICKS` (a `gop` of 0: only frame 0 is a keyframe).
pub fn gop_frame(params: &Arc<CodecParams>, n: u32, gop: u32) -> Frame {
    let t = i64::from(n) * FRAME_TICKS;
    frame(params, n, t, t, n.is_multiple_of(gop))
}

/// Frames `0..count` of that stream.
pub fn gop(params: &Arc<CodecParams>, count: u32, gop: u32) -> Vec<Frame> {
    (0..count).map(|n| gop_frame(params, n, gop)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_make_what_they_say() {
        assert_eq!((h264_params().width, h264_params().height), (320, 240));
        assert_eq!(h264_params_1080p().height, 1080);
        assert_eq!(h265_params().rfc6381, "hvc1.1.6.L60.90");
        let frames = gop(&h265_params(), 30, 25);
        assert_eq!(frames.iter().filter(|f| f.keyframe).count(), 2);
        assert_eq!(frames[26].pts, 26 * FRAME_TICKS);
        for f in &frames {
            assert_eq!(
                crate::annexb::access_unit_is_keyframe(f.video().unwrap().codec, &f.data),
                f.keyframe
            );
        }
        let f = frame(&h264_params(), 7, 1, 2, false);
        assert_eq!(&f.data[..], &[0, 0, 0, 5, 0x41, 0, 0, 0, 7]);
    }
}
