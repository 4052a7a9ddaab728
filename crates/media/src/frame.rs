//! One access unit as it travels from a source through a hub to every consumer.
//!
//! A `Frame` is cheap to clone: the payload is a `Bytes` and the codec parameters are behind
//! an `Arc`, so fan-out to many consumers shares one copy of the video.

use std::sync::Arc;

use bytes::Bytes;

/// Timescale of `pts`/`dts` (RTP video clock), used end to end so no consumer rescales.
pub const TIMESCALE: u32 = 90_000;

/// Video codecs camgate passes through without re-encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    H264,
    H265,
}

/// Parameter sets in force for a run of frames, and what is derived from them.
///
/// Two frames share parameters when they point at the same `Arc` or compare equal; a change
/// of parameters is a discontinuity for every muxer downstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodecParams {
    pub codec: Codec,
    /// H.265 only; empty for H.264.
    pub vps: Bytes,
    pub sps: Bytes,
    pub pps: Bytes,
    pub width: u16,
    pub height: u16,
    /// RFC 6381 codec string, e.g. `avc1.64001f` or `hvc1.1.6.L93.B0`.
    pub rfc6381: String,
}

/// One access unit.
#[derive(Clone, Debug)]
pub struct Frame {
    /// NAL units, each preceded by a 4-byte big-endian length (the MP4 `avcC`/`hvcC` form).
    pub data: Bytes,
    /// Presentation time in `TIMESCALE` units.
    pub pts: i64,
    /// Decode time in `TIMESCALE` units; equal to `pts` when the stream has no B-frames.
    pub dts: i64,
    /// An IDR/IRAP: decoding can start here.
    pub keyframe: bool,
    pub params: Arc<CodecParams>,
}
