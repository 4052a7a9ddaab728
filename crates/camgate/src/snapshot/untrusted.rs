//! The decode entry with nothing trusted: a camera's parameter sets and access units as
//! arbitrary bytes, through the decoder and the JPEG path a snapshot uses. The fuzz body
//! (`fuzz/bodies/h264_decode.rs`) drives it; nothing in the service calls it. Public so a test
//! crate can reach the private decoder without the service around it.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use media::{CodecParams, Frame, TrackParams};

use super::decode::{DecodeError, H264Decoder};
use super::picture::{MAX_WIDTH, MIN_WIDTH};
use super::scaled_jpeg;

/// Decodes `units` (length-prefixed NAL units as a `Frame` carries them, with their keyframe
/// flags) under `params`, in two passes as a warm decoder sees them (the first half, then the
/// rest), and encodes the last picture as JPEG at `width` (clamped to the API's bounds). The
/// outcome is a JPEG or an error; anything else (a panic) is a bug.
pub fn decode_untrusted(
    params: Arc<CodecParams>,
    units: &[(Bytes, bool)],
    width: Option<u32>,
) -> Result<Vec<u8>, DecodeError> {
    let frames: Vec<Frame> = units
        .iter()
        .enumerate()
        .map(|(i, (data, keyframe))| {
            let t = i as i64 * 3600;
            Frame {
                data: data.clone(),
                pts: t,
                dts: t,
                keyframe: *keyframe,
                params: TrackParams::Video(params.clone()),
                wallclock: SystemTime::UNIX_EPOCH,
            }
        })
        .collect();
    let mut decoder = H264Decoder::new(params)?;
    let half = frames.len() / 2;
    // A warm decoder: fed part of a GOP, asked what is still pending, fed the rest.
    let _ = decoder.feed(&frames[..half]);
    let pending = decoder.pending(&frames).to_vec();
    let (decoded, _) = decoder.feed(&pending)?;
    let width = width.map(|w| w.clamp(MIN_WIDTH, MAX_WIDTH));
    scaled_jpeg(&decoded.picture, width, 80)
}
