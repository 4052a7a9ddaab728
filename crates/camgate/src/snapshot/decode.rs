//! H.264 access units to pictures with OpenH264, in-process. Owns one decoder's state (which
//! frame it decoded last, under which parameter sets); it runs on a blocking thread, called by
//! mod.rs, and knows nothing of HTTP, the hub or the cache.
//!
//! OpenH264 is C++: a memory error there would not be a Rust panic. What we do about it is in
//! docs/security.md; here every input is checked for what we can check (codec, sizes) and any
//! decoder error makes the caller throw the decoder away.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::{BufMut, Bytes, BytesMut};
use media::{Codec, CodecParams, Frame};
use openh264::decoder::Decoder;
use openh264::formats::YUVSource;

use super::picture::Picture;

/// A decoded frame: the picture of the last frame fed, and which frame that was.
#[derive(Clone, Debug)]
pub struct Decoded {
    /// Decode time of the frame (identifies it within its stream).
    pub dts: i64,
    /// When the camera captured it.
    pub wallclock: SystemTime,
    pub picture: Arc<Picture>,
}

/// Why a decode gave no picture; the message is for an API answer (no camera secrets in it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("snapshots decode H.264 only; this stream is {0}")]
    Unsupported(&'static str),
    #[error("the camera's frame could not be decoded: {0}")]
    Corrupt(String),
    #[error("the decoder gave no picture for the frames it was given")]
    NoPicture,
}

/// The codec's name as our API says it.
pub fn codec_name(c: Codec) -> &'static str {
    match c {
        Codec::H264 => "h264",
        Codec::H265 => "h265",
    }
}

/// One stream's decoder, kept between requests ("warm") so the next snapshot decodes only the
/// frames that arrived since.
pub struct H264Decoder {
    inner: Decoder,
    params: Arc<CodecParams>,
    /// Decode time of the last frame fed, if the decoder's references are valid up to it.
    last_dts: Option<i64>,
    last: Option<Decoded>,
}

impl H264Decoder {
    pub fn new(params: Arc<CodecParams>) -> Result<H264Decoder, DecodeError> {
        if params.codec != Codec::H264 {
            return Err(DecodeError::Unsupported(codec_name(params.codec)));
        }
        let inner = Decoder::new().map_err(|e| DecodeError::Corrupt(e.to_string()))?;
        Ok(H264Decoder {
            inner,
            params,
            last_dts: None,
            last: None,
        })
    }

    pub fn params(&self) -> &Arc<CodecParams> {
        &self.params
    }

    /// The frames of `gop` (the hub's cached GOP: a keyframe first, decode order) this decoder
    /// still has to be fed: those after the last one it decoded when that one is still in
    /// the GOP, else the whole GOP (a new keyframe refreshes every reference).
    pub fn pending<'a>(&self, gop: &'a [Frame]) -> &'a [Frame] {
        if let Some(last) = self.last_dts
            && let Some(i) = gop.iter().position(|f| f.dts == last)
        {
            return &gop[i + 1..];
        }
        gop
    }

    /// The picture of the last frame decoded.
    pub fn last(&self) -> Option<&Decoded> {
        self.last.as_ref()
    }

    /// Feeds `frames` (video of this decoder's parameter sets, decode order) and returns the
    /// picture of the newest one and how many frames were decoded. Any error leaves the
    /// decoder unusable (the caller drops it).
    pub fn feed(&mut self, frames: &[Frame]) -> Result<(Decoded, usize), DecodeError> {
        let mut n = 0;
        for frame in frames {
            let Some(params) = frame.video() else {
                continue;
            };
            if params.codec != Codec::H264 {
                return Err(DecodeError::Unsupported(codec_name(params.codec)));
            }
            let unit = annexb(frame, &self.params)?;
            self.last_dts = None;
            let out = self
                .inner
                .decode(&unit)
                .map_err(|e| DecodeError::Corrupt(e.to_string()))?;
            n += 1;
            if let Some(yuv) = out {
                let picture = Picture::from_planes(
                    yuv.dimensions(),
                    (yuv.y(), yuv.u(), yuv.v()),
                    yuv.strides(),
                )
                .ok_or_else(|| {
                    DecodeError::Corrupt("the decoder's planes are inconsistent".into())
                })?;
                self.last = Some(Decoded {
                    dts: frame.dts,
                    wallclock: frame.wallclock,
                    picture: Arc::new(picture),
                });
            }
            self.last_dts = Some(frame.dts);
        }
        match &self.last {
            Some(d) => Ok((d.clone(), n)),
            None => Err(DecodeError::NoPicture),
        }
    }
}

/// One access unit in Annex B, parameter sets first on a keyframe (the camera may send them
/// only out of band, in the SDP).
fn annexb(frame: &Frame, params: &CodecParams) -> Result<Bytes, DecodeError> {
    let nals = media::annexb::split_length_prefixed(&frame.data)
        .map_err(|e| DecodeError::Corrupt(e.to_string()))?;
    let mut out = BytesMut::with_capacity(frame.data.len() + 64);
    if frame.keyframe {
        for ps in params.parameter_sets() {
            out.put_slice(&[0, 0, 0, 1]);
            out.put_slice(&ps);
        }
    }
    for nal in nals {
        out.put_slice(&[0, 0, 0, 1]);
        out.put_slice(&nal);
    }
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use media::test_util;

    #[test]
    fn arbitrary_access_units_give_errors_not_panics() {
        let params = test_util::h264_params();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for round in 0..200 {
            let mut dec = H264Decoder::new(params.clone()).unwrap();
            let mut frames = Vec::new();
            for i in 0..4 {
                // xorshift: reproducible garbage, some of it with valid length prefixes.
                let len = (seed % 300) as usize;
                let mut data = Vec::with_capacity(len + 4);
                if round % 2 == 0 {
                    data.extend_from_slice(&(len as u32).to_be_bytes());
                }
                for _ in 0..len {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    data.push(seed as u8);
                }
                let t = i * 3600;
                frames.push(test_util::video_frame(
                    Bytes::from(data),
                    t,
                    t,
                    i == 0,
                    &params,
                ));
            }
            let _ = dec.feed(&frames);
        }
    }

    #[test]
    fn pending_resumes_after_the_last_decoded_frame() {
        let params = test_util::h264_params();
        let gop = test_util::gop(&params, 5, 25);
        let mut dec = H264Decoder::new(params).unwrap();
        assert_eq!(dec.pending(&gop).len(), 5);
        dec.last_dts = Some(gop[2].dts);
        assert_eq!(dec.pending(&gop).len(), 2);
        dec.last_dts = Some(-1);
        assert_eq!(dec.pending(&gop).len(), 5);
    }
}
