//! One access unit as it travels from a source through a hub to every consumer.
//!
//! A `Frame` is cheap to clone: the payload is a `Bytes` and the codec parameters are behind
//! an `Arc`, so fan-out to many consumers shares one copy of the video.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;

use crate::{MediaError, aac, h264, h265};

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

impl CodecParams {
    /// Parameter sets of an H.264 stream: `sps` and `pps` are NAL units with their header
    /// byte, without start code or length prefix. Width, height and the codec string come
    /// from the SPS.
    pub fn h264(sps: &[u8], pps: &[u8]) -> Result<CodecParams, MediaError> {
        let parsed = h264::parse_sps(sps)?;
        h264::check_pps(pps)?;
        // Fails early (not at muxing time) if a parameter set is too long for the record.
        h264::avc_decoder_config(sps, pps, &parsed)?;
        Ok(CodecParams {
            codec: Codec::H264,
            vps: Bytes::new(),
            sps: Bytes::copy_from_slice(sps),
            pps: Bytes::copy_from_slice(pps),
            width: dimension(parsed.width, "H.264 SPS width")?,
            height: dimension(parsed.height, "H.264 SPS height")?,
            rfc6381: h264::rfc6381(&parsed),
        })
    }

    /// Parameter sets of an H.265 stream, each a NAL unit with its two-byte header.
    pub fn h265(vps: &[u8], sps: &[u8], pps: &[u8]) -> Result<CodecParams, MediaError> {
        h265::check_vps(vps)?;
        let parsed = h265::parse_sps(sps)?;
        h265::check_pps(pps)?;
        h265::hevc_decoder_config(vps, sps, pps, &parsed)?;
        Ok(CodecParams {
            codec: Codec::H265,
            vps: Bytes::copy_from_slice(vps),
            sps: Bytes::copy_from_slice(sps),
            pps: Bytes::copy_from_slice(pps),
            width: dimension(parsed.width, "H.265 SPS width")?,
            height: dimension(parsed.height, "H.265 SPS height")?,
            rfc6381: h265::rfc6381(&parsed.ptl),
        })
    }

    /// The decoder configuration record for the MP4 sample entry: the payload of the `avcC`
    /// (ISO/IEC 14496-15 §5.3.3.1) or `hvcC` (§8.3.3.1) box, with 4-byte NAL lengths.
    pub fn decoder_config(&self) -> Result<Bytes, MediaError> {
        match self.codec {
            Codec::H264 => {
                h264::avc_decoder_config(&self.sps, &self.pps, &h264::parse_sps(&self.sps)?)
            }
            Codec::H265 => h265::hevc_decoder_config(
                &self.vps,
                &self.sps,
                &self.pps,
                &h265::parse_sps(&self.sps)?,
            ),
        }
    }

    /// The parameters of an `avcC` payload (ISO/IEC 14496-15 §5.3.3.1), as an MP4 sample entry
    /// carries them: its first SPS and first PPS. The inverse of [`CodecParams::decoder_config`]
    /// for H.264, for reading back files we (or anyone) wrote; the record's own NAL length
    /// size is not kept, since every access unit of ours is 4-byte length-prefixed.
    pub fn from_avcc(record: &[u8]) -> Result<CodecParams, MediaError> {
        let bad = |why: &str| MediaError::invalid("avcC", why.to_owned());
        let mut at = 5usize;
        if record.len() < 7 || record[0] != 1 {
            return Err(bad("not an AVCDecoderConfigurationRecord version 1"));
        }
        let take = |at: &mut usize| -> Result<&[u8], MediaError> {
            let len_bytes = record
                .get(*at..*at + 2)
                .ok_or_else(|| bad("a parameter set length is cut off"))?;
            let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
            let nal = record
                .get(*at + 2..*at + 2 + len)
                .ok_or_else(|| bad("a parameter set is cut off"))?;
            *at += 2 + len;
            Ok(nal)
        };
        let sps_count = record[at] & 0x1f;
        at += 1;
        let mut sps = None;
        for _ in 0..sps_count {
            let nal = take(&mut at)?;
            sps.get_or_insert(nal);
        }
        let pps_count = *record.get(at).ok_or_else(|| bad("no PPS count"))?;
        at += 1;
        let mut pps = None;
        for _ in 0..pps_count {
            let nal = take(&mut at)?;
            pps.get_or_insert(nal);
        }
        match (sps, pps) {
            (Some(sps), Some(pps)) => CodecParams::h264(sps, pps),
            _ => Err(bad("no SPS or no PPS")),
        }
    }

    /// The parameter sets as NAL units in decoding order (VPS first for H.265).
    pub fn parameter_sets(&self) -> Vec<Bytes> {
        match self.codec {
            Codec::H264 => vec![self.sps.clone(), self.pps.clone()],
            Codec::H265 => vec![self.vps.clone(), self.sps.clone(), self.pps.clone()],
        }
    }
}

fn dimension(v: u32, what: &'static str) -> Result<u16, MediaError> {
    u16::try_from(v).map_err(|_| MediaError::invalid(what, format!("{v} does not fit 16 bits")))
}

/// Which elementary stream of a camera a frame belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Track {
    Video,
    Audio,
}

/// Audio codecs a camera may send alongside its video.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AudioCodec {
    /// MPEG-4 AAC (RFC 3640 / RFC 6416); `config` is the AudioSpecificConfig.
    Aac,
    /// G.711 A-law.
    Pcma,
    /// G.711 mu-law.
    Pcmu,
    Opus,
}

/// Parameters of an audio track.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioParams {
    pub codec: AudioCodec,
    pub sample_rate: u32,
    pub channels: u8,
    /// Codec-specific configuration (AAC: AudioSpecificConfig); empty when the codec has none.
    pub config: Bytes,
}

impl AudioParams {
    /// An AAC track from its AudioSpecificConfig (the `config` of the SDP's `mpeg4-generic`
    /// fmtp): sample rate and channels come from it.
    pub fn aac(config: &[u8]) -> Result<AudioParams, MediaError> {
        let c = aac::parse_config(config)?;
        let channels = c.channels;
        Ok(AudioParams {
            codec: AudioCodec::Aac,
            sample_rate: c.sample_rate,
            channels,
            config: Bytes::copy_from_slice(config),
        })
    }

    /// A codec without configuration bytes (G.711, Opus).
    pub fn simple(codec: AudioCodec, sample_rate: u32, channels: u8) -> AudioParams {
        AudioParams {
            codec,
            sample_rate,
            channels,
            config: Bytes::new(),
        }
    }

    /// RFC 6381 codec string as playlists and `addSourceBuffer` want it (`mp4a.40.2`,
    /// `opus`); `None` for G.711, which MP4-based players do not take.
    pub fn rfc6381(&self) -> Option<String> {
        match self.codec {
            AudioCodec::Aac => aac::parse_config(&self.config)
                .ok()
                .map(|c| format!("mp4a.40.{}", c.object_type)),
            AudioCodec::Opus => Some("opus".to_owned()),
            AudioCodec::Pcma | AudioCodec::Pcmu => None,
        }
    }

    /// Whether our fMP4 (LL-HLS, MSE) carries this track: AAC with a config we understand.
    /// G.711 needs a transcode to AAC first (browsers' MSE does not play it); Opus in fMP4
    /// (an `Opus`/`dOps` sample entry) is not written yet.
    pub fn fmp4_supported(&self) -> bool {
        self.codec == AudioCodec::Aac && crate::fmp4::audio_sample_entry_ok(self)
    }
}

/// The parameters in force for a frame, which also say which track it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrackParams {
    Video(Arc<CodecParams>),
    Audio(Arc<AudioParams>),
}

impl TrackParams {
    pub fn track(&self) -> Track {
        match self {
            TrackParams::Video(_) => Track::Video,
            TrackParams::Audio(_) => Track::Audio,
        }
    }

    /// The same parameters: the same `Arc` or equal values. A change is a discontinuity for
    /// every muxer downstream.
    pub fn same(&self, other: &TrackParams) -> bool {
        match (self, other) {
            (TrackParams::Video(a), TrackParams::Video(b)) => Arc::ptr_eq(a, b) || a == b,
            (TrackParams::Audio(a), TrackParams::Audio(b)) => Arc::ptr_eq(a, b) || a == b,
            _ => false,
        }
    }
}

/// One access unit of one track.
///
/// Timestamps of every track are in `TIMESCALE` units on one timeline per stream, so muxers
/// interleave tracks without rescaling.
#[derive(Clone, Debug)]
pub struct Frame {
    /// Video: NAL units, each preceded by a 4-byte big-endian length (the MP4 `avcC`/`hvcC`
    /// form). Audio: one codec frame (AAC raw access unit, G.711 samples, an Opus packet).
    pub data: Bytes,
    /// Presentation time in `TIMESCALE` units.
    pub pts: i64,
    /// Decode time in `TIMESCALE` units; equal to `pts` when the stream has no B-frames (and
    /// always for audio).
    pub dts: i64,
    /// Video: an IDR/IRAP, decoding can start here. Audio: always false (every audio frame is
    /// decodable; hubs and consumers start at a video keyframe).
    pub keyframe: bool,
    pub params: TrackParams,
    /// When the camera captured this frame: from its RTCP sender reports when it sends them,
    /// else when the frame arrived. A value passed in, never read from a clock here.
    pub wallclock: SystemTime,
}

impl Frame {
    pub fn track(&self) -> Track {
        self.params.track()
    }

    /// The video parameters, or `None` for an audio frame.
    pub fn video(&self) -> Option<&Arc<CodecParams>> {
        match &self.params {
            TrackParams::Video(p) => Some(p),
            TrackParams::Audio(_) => None,
        }
    }

    /// The audio parameters, or `None` for a video frame.
    pub fn audio(&self) -> Option<&Arc<AudioParams>> {
        match &self.params {
            TrackParams::Audio(p) => Some(p),
            TrackParams::Video(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPS: &[u8] = &[
        0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00,
        0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xf1, 0x42, 0x99, 0x60,
    ];
    const PPS: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];

    #[test]
    fn h264_params() {
        let p = CodecParams::h264(SPS, PPS).unwrap();
        assert_eq!((p.codec, p.width, p.height), (Codec::H264, 320, 240));
        assert_eq!(p.rfc6381, "avc1.64000d");
        assert_eq!(p.parameter_sets().len(), 2);
        assert!(p.decoder_config().unwrap().starts_with(&[1, 0x64, 0, 0x0d]));
        assert!(CodecParams::h264(PPS, SPS).is_err());
        let err = CodecParams::h264(&SPS[..5], PPS).unwrap_err();
        assert_eq!(err.to_string(), "H.264 SPS: truncated");
    }

    #[test]
    fn audio_params() {
        let a = AudioParams::aac(&[0x11, 0x88]).unwrap();
        assert_eq!((a.sample_rate, a.channels), (48_000, 1));
        assert_eq!(a.rfc6381().as_deref(), Some("mp4a.40.2"));
        assert!(a.fmp4_supported());
        assert!(AudioParams::aac(&[0x11]).is_err());
        let g711 = AudioParams::simple(AudioCodec::Pcma, 8000, 1);
        assert_eq!(g711.rfc6381(), None);
        assert!(!g711.fmp4_supported());
        // 96 kHz does not fit the sample entry's 16.16 rate field.
        assert!(!AudioParams::aac(&[0x10, 0x08]).unwrap().fmp4_supported());
    }

    #[test]
    fn avcc_reads_back_what_decoder_config_writes() {
        let p = CodecParams::h264(SPS, PPS).unwrap();
        let record = p.decoder_config().unwrap();
        assert_eq!(CodecParams::from_avcc(&record).unwrap(), p);
        // Every cut before the end of the PPS is an error, never a panic or a wrong answer
        // (High profile records carry chroma fields after it, which are not read).
        for n in 0..6 + 2 + SPS.len() + 1 + 2 + PPS.len() {
            assert!(CodecParams::from_avcc(&record[..n]).is_err(), "cut at {n}");
        }
        let mut no_pps = record.to_vec();
        let pps_count = 6 + 2 + SPS.len();
        no_pps[pps_count] = 0;
        assert!(CodecParams::from_avcc(&no_pps[..pps_count + 1]).is_err());
    }

    #[test]
    fn h265_params() {
        use crate::h265::tests::{PPS, SPS, VPS};
        let p = CodecParams::h265(VPS, SPS, PPS).unwrap();
        assert_eq!((p.codec, p.width, p.height), (Codec::H265, 320, 240));
        assert_eq!(p.rfc6381, "hvc1.1.6.L60.90");
        assert_eq!(p.parameter_sets().len(), 3);
        assert!(CodecParams::h265(SPS, VPS, PPS).is_err());
    }
}
