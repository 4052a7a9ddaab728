//! H.264 encoding of the synthetic picture with OpenH264 (built from its bundled source):
//! one `VideoEncoder` per picture stream, the `Clip` encoded once and looped to every camera,
//! and the `EncodedFrame` both hand to the RTP side. Owns no I/O and no clock: callers pass
//! the wall-clock time to burn in.

use std::sync::Arc;

use bytes::Bytes;
use openh264::OpenH264API;
use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod,
    RateControlMode, UsageType,
};
use openh264::formats::YUVSlices;

use crate::SimError;
use crate::picture::Picture;

/// One access unit, ready for packetization.
#[derive(Clone, Debug)]
pub struct EncodedFrame {
    /// NAL units without start codes; a keyframe starts with its SPS and PPS.
    pub nals: Vec<Bytes>,
    /// An IDR picture: a client can start decoding here.
    pub keyframe: bool,
    /// Frame number since the encoder started (0 = first frame).
    pub frame_no: u64,
    /// Wall-clock time burned into the picture (digits and band), Unix milliseconds.
    pub unix_ms: u64,
}

/// NAL unit types (H.264 Table 7-1) the simulator cares about.
pub const NAL_IDR: u8 = 5;
pub const NAL_SPS: u8 = 7;
pub const NAL_PPS: u8 = 8;

/// Encodes the test picture frame after frame, with an IDR (preceded by SPS and PPS) at every
/// GOP boundary and whenever one is requested.
pub struct VideoEncoder {
    encoder: Encoder,
    picture: Picture,
    gop_frames: u64,
    frame_no: u64,
    keyframe_requested: bool,
    sps: Option<Bytes>,
    pps: Option<Bytes>,
}

impl VideoEncoder {
    pub fn new(
        width: u32,
        height: u32,
        fps: u32,
        gop_frames: u32,
        bitrate: u32,
    ) -> Result<VideoEncoder, SimError> {
        let config = EncoderConfig::new()
            .bitrate(BitRate::from_bps(bitrate))
            .max_frame_rate(FrameRate::from_hz(fps as f32))
            .rate_control_mode(RateControlMode::Bitrate)
            // A camera never drops frames to meet its bitrate; RTP timing assumes one AU per tick.
            .skip_frames(false)
            .usage_type(UsageType::CameraVideoRealTime)
            .complexity(Complexity::Low)
            // IDRs come only from our own GOP boundaries, so every client sees the same GOP.
            .scene_change_detect(false)
            .intra_frame_period(IntraFramePeriod::from_num_frames(gop_frames))
            .num_threads(1);
        let encoder = Encoder::with_api_config(OpenH264API::from_source(), config)
            .map_err(|e| SimError::Encoder(e.to_string()))?;
        Ok(VideoEncoder {
            encoder,
            picture: Picture::new(width as usize, height as usize),
            gop_frames: u64::from(gop_frames.max(1)),
            frame_no: 0,
            keyframe_requested: false,
            sps: None,
            pps: None,
        })
    }

    /// Makes the next frame an IDR (a new live viewer then starts at once).
    pub fn request_keyframe(&mut self) {
        self.keyframe_requested = true;
    }

    /// The SPS and PPS, once the first frame is encoded.
    pub fn parameter_sets(&self) -> Option<(Bytes, Bytes)> {
        Some((self.sps.clone()?, self.pps.clone()?))
    }

    /// Draws and encodes the next frame, burning in `unix_ms`.
    pub fn encode_next(&mut self, unix_ms: u64) -> Result<EncodedFrame, SimError> {
        let frame_no = self.frame_no;
        self.frame_no += 1;
        self.picture.draw(frame_no, unix_ms);
        let (w, h) = (self.picture.width, self.picture.height);
        if frame_no.is_multiple_of(self.gop_frames) || self.keyframe_requested {
            self.encoder.force_intra_frame();
            self.keyframe_requested = false;
        }
        let yuv = YUVSlices::new(
            (&self.picture.y, &self.picture.u, &self.picture.v),
            (w, h),
            (w, w / 2, w / 2),
        );
        let stream = self
            .encoder
            .encode(&yuv)
            .map_err(|e| SimError::Encoder(e.to_string()))?;
        let keyframe = stream.frame_type() == FrameType::IDR;
        let mut nals = Vec::new();
        for l in 0..stream.num_layers() {
            let Some(layer) = stream.layer(l) else { break };
            for n in 0..layer.nal_count() {
                let Some(nal) = layer.nal_unit(n) else { break };
                let nal = strip_start_code(nal);
                if !nal.is_empty() {
                    nals.push(Bytes::copy_from_slice(nal));
                }
            }
        }
        for nal in &nals {
            match nal[0] & 0x1F {
                NAL_SPS => self.sps = Some(nal.clone()),
                NAL_PPS => self.pps = Some(nal.clone()),
                _ => {}
            }
        }
        // Every IDR carries SPS and PPS in-band, so a client joining there needs nothing else.
        if keyframe
            && !nals.iter().any(|n| n[0] & 0x1F == NAL_SPS)
            && let Some((sps, pps)) = self.parameter_sets()
        {
            nals.splice(0..0, [sps, pps]);
        }
        Ok(EncodedFrame {
            nals,
            keyframe,
            frame_no,
            unix_ms,
        })
    }
}

fn strip_start_code(nal: &[u8]) -> &[u8] {
    let zeros = nal.iter().take_while(|b| **b == 0).count();
    if zeros >= 2 && nal.get(zeros) == Some(&1) {
        &nal[zeros + 1..]
    } else {
        nal
    }
}

/// A whole number of GOPs encoded once and looped by every session of every camera.
#[derive(Clone, Debug)]
pub struct Clip {
    pub frames: Arc<[EncodedFrame]>,
    pub sps: Bytes,
    pub pps: Bytes,
}

/// Encodes `frames` frames (a multiple of `gop_frames`), frame `i` stamped
/// `start_unix_ms + i / fps`. CPU-heavy: call from a blocking thread.
pub fn encode_clip(
    width: u32,
    height: u32,
    fps: u32,
    gop_frames: u32,
    bitrate: u32,
    frames: u32,
    start_unix_ms: u64,
) -> Result<Clip, SimError> {
    let mut encoder = VideoEncoder::new(width, height, fps, gop_frames, bitrate)?;
    let mut out = Vec::with_capacity(frames as usize);
    for i in 0..u64::from(frames) {
        out.push(encoder.encode_next(start_unix_ms + i * 1000 / u64::from(fps))?);
    }
    let (sps, pps) = encoder
        .parameter_sets()
        .ok_or_else(|| SimError::Encoder("the encoder produced no SPS/PPS".into()))?;
    if !out.first().is_some_and(|f| f.keyframe) {
        return Err(SimError::Encoder(
            "the clip does not start with an IDR".into(),
        ));
    }
    Ok(Clip {
        frames: out.into(),
        sps,
        pps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_has_idr_with_parameter_sets_at_every_gop() {
        let clip = encode_clip(320, 240, 10, 5, 200_000, 15, 1_000).unwrap();
        assert_eq!(clip.frames.len(), 15);
        assert_eq!(clip.sps[0] & 0x1F, NAL_SPS);
        assert_eq!(clip.pps[0] & 0x1F, NAL_PPS);
        for (i, f) in clip.frames.iter().enumerate() {
            assert_eq!(f.keyframe, i % 5 == 0, "frame {i}");
            assert!(!f.nals.is_empty());
            let types: Vec<u8> = f.nals.iter().map(|n| n[0] & 0x1F).collect();
            if f.keyframe {
                assert_eq!(&types[..2], &[NAL_SPS, NAL_PPS], "frame {i}: {types:?}");
                assert!(types.contains(&NAL_IDR));
            } else {
                assert!(!types.contains(&NAL_IDR), "frame {i}: {types:?}");
            }
            assert_eq!(f.unix_ms, 1_000 + i as u64 * 100);
        }
    }

    #[test]
    fn requested_keyframe_is_next() {
        let mut e = VideoEncoder::new(64, 48, 10, 100, 50_000).unwrap();
        assert!(e.encode_next(0).unwrap().keyframe);
        assert!(!e.encode_next(0).unwrap().keyframe);
        e.request_keyframe();
        let f = e.encode_next(0).unwrap();
        assert!(f.keyframe);
        assert_eq!(f.nals[0][0] & 0x1F, NAL_SPS);
    }
}
