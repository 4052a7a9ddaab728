//! camgate's media core: what a frame is, what the codec parameters are (H.264/H.265 parameter
//! sets), NAL unit framing (`annexb`), the fMP4 muxer (`fmp4`) and the Low-Latency HLS
//! segmenter and playlist renderer (`hls`); reading our fMP4 files back (`mp4read`) and
//! assembling a progressive MP4 from their samples (`progressive`); camera timing: decode
//! times for B-frame streams (`dts`) and one continuous, overflow-free timeline (`timestamp`);
//! RTP packetization of H.264 and H.265 (`rtp`). docs/media.md gives the
//! overview. The `test-util` feature adds the builders tests share (`test_util`).
//!
//! This crate owns bytes and timestamps only. It must not touch sockets, files, threads or
//! the clock: every time comes in as an argument, which is what makes it testable to the
//! byte, fuzzable, and cheap to benchmark alone.
//!
//! Panic policy: no input (parameter sets, bitstreams, frame sequences, file names) causes a
//! panic; malformed input is a `MediaError`. Property tests and `fuzz/` hold us to it.

pub mod aac;
pub mod annexb;
mod bits;
mod boxes;
pub mod dts;
mod error;
pub mod fmp4;
pub mod frame;
pub mod h264;
pub mod h265;
mod h265_order;
pub mod hls;
pub mod mp4read;
pub mod mpegts;
pub mod progressive;
pub mod rtp;
#[cfg(any(test, feature = "test-util"))]
pub mod test_util;
pub mod timestamp;

pub use bits::strip_emulation_prevention;
pub use error::MediaError;
pub use frame::{
    AudioCodec, AudioParams, Codec, CodecParams, Frame, TIMESCALE, Track, TrackParams,
};
