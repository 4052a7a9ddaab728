//! camgate's media core: what a frame is, what the codec parameters are, and (filled in by
//! the media work) the fMP4 muxer and the Low-Latency HLS segmenter.
//!
//! This crate owns bytes and timestamps only. It must not touch sockets, files, threads or
//! the clock: every time comes in as an argument, which is what makes it testable to the
//! byte, fuzzable, and cheap to benchmark alone.

pub mod frame;

pub use frame::{Codec, CodecParams, Frame, TIMESCALE};
