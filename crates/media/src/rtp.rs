//! RTP payload formats for the video camgate passes through: H.264 (RFC 6184) and H.265
//! (RFC 7798). `Packetizer` turns one access unit (its NAL units) into RTP packets: a NAL
//! unit that fits the packet size is sent whole (single NAL unit packet, RFC 6184 §5.6,
//! RFC 7798 §4.4.1), a larger one is cut into fragmentation units (FU-A, RFC 6184 §5.8; FU,
//! RFC 7798 §4.4.3). The marker bit is set on the last packet of the access unit
//! (RFC 6184 §5.1, RFC 7798 §4.1). Timestamps are the 90 kHz clock of `Frame::pts`
//! (`rtp_time`). `Depacketizer` is the reverse (it also reads STAP-A and AP aggregation
//! packets), for tests and for anything of ours that reads RTP. `AudioPacketizer` writes the
//! header of one packet per audio frame: AAC (RFC 3640 AAC-hbr) and G.711 (RFC 3551).
//!
//! Sans-IO like the rest of the crate: bytes in, bytes out; the RTSP server (crates/rtsp)
//! frames and sends them. No input panics.

use bytes::{BufMut, Bytes, BytesMut};

use crate::annexb::{is_parameter_set, split_length_prefixed};
use crate::{Codec, Frame, MediaError};

/// Largest RTP packet (header included) by default: fits a 1500-byte Ethernet MTU with
/// IP/UDP headers, and the 4-byte interleaved header over TCP.
pub const MAX_PACKET: usize = 1400;
/// Size of the fixed RTP header we write (no CSRC, no extension).
pub const RTP_HEADER: usize = 12;
/// The smallest packet size a packetizer accepts: a header, the largest FU header (H.265:
/// three bytes) and one byte of payload.
pub const MIN_PACKET: usize = RTP_HEADER + 4;

const H264_STAP_A: u8 = 24;
const H264_FU_A: u8 = 28;
const H265_AP: u8 = 48;
const H265_FU: u8 = 49;

/// The RTP timestamp of a frame: `base` (the session's first timestamp) plus the frame's
/// presentation time since `origin_pts`, both on the 90 kHz clock, modulo 2^32.
pub fn rtp_time(pts: i64, origin_pts: i64, base: u32) -> u32 {
    base.wrapping_add(pts.wrapping_sub(origin_pts) as u32)
}

/// The NAL units to send for a video frame, as slices of its data (no copy). A keyframe
/// that does not carry its parameter sets in band gets them first, from the frame's
/// `CodecParams`, so a client can start decoding at any keyframe whatever the SDP said.
pub fn frame_nals(frame: &Frame) -> Result<Vec<Bytes>, MediaError> {
    let mut nals = split_length_prefixed(&frame.data)?;
    nals.retain(|n| !n.is_empty());
    if let Some(params) = frame.video()
        && frame.keyframe
        && !nals.iter().any(|n| is_parameter_set(params.codec, n))
    {
        let mut with = params.parameter_sets();
        with.retain(|n| !n.is_empty());
        with.append(&mut nals);
        nals = with;
    }
    Ok(nals)
}

/// Per-session RTP state of one video track: SSRC, the next sequence number, the packet
/// size. Sequence numbers continue across access units.
#[derive(Debug, Clone)]
pub struct Packetizer {
    pub codec: Codec,
    pub payload_type: u8,
    pub ssrc: u32,
    /// Sequence number of the next packet.
    pub seq: u16,
    max_packet: usize,
}

impl Packetizer {
    pub fn new(codec: Codec, payload_type: u8, ssrc: u32, initial_seq: u16) -> Packetizer {
        Packetizer {
            codec,
            payload_type: payload_type & 0x7F,
            ssrc,
            seq: initial_seq,
            max_packet: MAX_PACKET,
        }
    }

    /// Packets of at most `bytes` (header included; at least `MIN_PACKET`).
    pub fn with_max_packet(mut self, bytes: usize) -> Packetizer {
        self.max_packet = bytes.max(MIN_PACKET);
        self
    }

    pub fn max_packet(&self) -> usize {
        self.max_packet
    }

    /// About how many bytes the packets of these NAL units take, headers included: for
    /// reserving a buffer once per access unit.
    pub fn size_hint<B: AsRef<[u8]>>(&self, nals: &[B]) -> usize {
        let payload: usize = nals.iter().map(|n| n.as_ref().len()).sum();
        let per_packet = self.max_packet - RTP_HEADER - 3;
        payload + (payload / per_packet + nals.len() + 1) * (RTP_HEADER + 3)
    }

    /// The packets of one access unit, one `Bytes` each.
    pub fn packetize<B: AsRef<[u8]>>(&mut self, nals: &[B], rtp_ts: u32) -> Vec<Bytes> {
        let mut out = Vec::new();
        self.for_each_packet(nals, rtp_ts, |header, parts| {
            let len: usize = parts.iter().map(|p| p.len()).sum();
            let mut b = BytesMut::with_capacity(RTP_HEADER + len);
            b.put_slice(header);
            for p in parts {
                b.put_slice(p);
            }
            out.push(b.freeze());
        });
        out
    }

    /// Calls `emit(rtp_header, payload_parts)` for each packet of one access unit, in order,
    /// without copying the payload: `parts` is the NAL unit, or a FU header and a slice of
    /// the NAL unit. Empty NAL units are skipped; the marker is on the last packet.
    pub fn for_each_packet<B: AsRef<[u8]>>(
        &mut self,
        nals: &[B],
        rtp_ts: u32,
        mut emit: impl FnMut(&[u8; RTP_HEADER], &[&[u8]]),
    ) {
        let max_payload = self.max_packet - RTP_HEADER;
        let last = nals.iter().rposition(|n| !n.as_ref().is_empty());
        for (i, nal) in nals.iter().enumerate() {
            let nal = nal.as_ref();
            let header_len = match self.codec {
                Codec::H264 => 1,
                Codec::H265 => 2,
            };
            if nal.is_empty() {
                continue;
            }
            let last_nal = Some(i) == last;
            if nal.len() <= max_payload || nal.len() <= header_len {
                let header = self.header(rtp_ts, last_nal);
                emit(&header, &[nal]);
                continue;
            }
            // The NAL header travels in the FU's own headers; the body is cut in chunks.
            let (fu, fu_len) = match self.codec {
                Codec::H264 => ([(nal[0] & 0xE0) | H264_FU_A, nal[0] & 0x1F, 0], 2),
                Codec::H265 => {
                    let nal_type = (nal[0] >> 1) & 0x3F;
                    ([(nal[0] & 0x81) | (H265_FU << 1), nal[1], nal_type], 3)
                }
            };
            let body = &nal[header_len..];
            let chunk = max_payload - fu_len;
            let count = body.len().div_ceil(chunk);
            for (k, part) in body.chunks(chunk).enumerate() {
                let mut head = fu;
                let flags = if k == 0 { 0x80 } else { 0 } | if k + 1 == count { 0x40 } else { 0 };
                head[fu_len - 1] |= flags;
                let header = self.header(rtp_ts, last_nal && k + 1 == count);
                emit(&header, &[&head[..fu_len], part]);
            }
        }
    }

    /// The RTP header of the next packet; advances the sequence number.
    fn header(&mut self, rtp_ts: u32, marker: bool) -> [u8; RTP_HEADER] {
        let mut h = [0u8; RTP_HEADER];
        h[0] = 0x80;
        h[1] = if marker { 0x80 } else { 0 } | self.payload_type;
        h[2..4].copy_from_slice(&self.seq.to_be_bytes());
        h[4..8].copy_from_slice(&rtp_ts.to_be_bytes());
        h[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        self.seq = self.seq.wrapping_add(1);
        h
    }
}

/// One access unit read back from RTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessUnit {
    pub rtp_ts: u32,
    pub nals: Vec<Bytes>,
}

/// Reassembles access units from RTP packets of one H.264 or H.265 stream, in order. An
/// access unit ends with the marker bit or a change of timestamp. A packet lost in the
/// middle of a fragmented NAL unit (a sequence gap) drops that NAL unit.
#[derive(Debug)]
pub struct Depacketizer {
    codec: Codec,
    next_seq: Option<u16>,
    current: Option<AccessUnit>,
    fragment: Option<BytesMut>,
}

/// Longest NAL unit a depacketizer reassembles; larger ones are refused, not buffered.
const MAX_NAL: usize = 16 << 20;

impl Depacketizer {
    pub fn new(codec: Codec) -> Depacketizer {
        Depacketizer {
            codec,
            next_seq: None,
            current: None,
            fragment: None,
        }
    }

    /// Takes one RTP packet; returns the access units it completes (the previous one when
    /// the timestamp changed without a marker, and this one on its marker).
    pub fn push(&mut self, packet: &[u8]) -> Result<Vec<AccessUnit>, MediaError> {
        const WHAT: &str = "RTP packet";
        if packet.len() < RTP_HEADER {
            return Err(MediaError::Truncated { what: WHAT });
        }
        if packet[0] >> 6 != 2 {
            return Err(MediaError::invalid(WHAT, "version is not 2"));
        }
        let csrc = usize::from(packet[0] & 0x0F) * 4;
        let mut start = RTP_HEADER + csrc;
        if packet[0] & 0x10 != 0 {
            let ext = packet
                .get(start + 2..start + 4)
                .ok_or(MediaError::Truncated { what: WHAT })?;
            start += 4 + usize::from(u16::from_be_bytes([ext[0], ext[1]])) * 4;
        }
        let mut end = packet.len();
        if packet[0] & 0x20 != 0 {
            let pad = usize::from(packet[end - 1]);
            end = end.saturating_sub(pad);
        }
        let payload = packet
            .get(start..end)
            .filter(|p| !p.is_empty())
            .ok_or(MediaError::Truncated { what: WHAT })?;
        let marker = packet[1] & 0x80 != 0;
        let seq = u16::from_be_bytes([packet[2], packet[3]]);
        let ts = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        let mut done = Vec::new();
        if self.next_seq.is_some_and(|s| s != seq) {
            self.fragment = None;
        }
        self.next_seq = Some(seq.wrapping_add(1));
        if self.current.as_ref().is_some_and(|au| au.rtp_ts != ts) {
            self.fragment = None;
            done.extend(self.current.take().filter(|au| !au.nals.is_empty()));
        }
        self.current.get_or_insert_with(|| AccessUnit {
            rtp_ts: ts,
            nals: Vec::new(),
        });
        self.payload(payload)?;
        if marker {
            self.fragment = None;
            done.extend(self.current.take().filter(|au| !au.nals.is_empty()));
        }
        Ok(done)
    }

    fn nal(&mut self, nal: Bytes) {
        if let Some(au) = self.current.as_mut() {
            au.nals.push(nal);
        }
    }

    fn payload(&mut self, p: &[u8]) -> Result<(), MediaError> {
        const WHAT: &str = "RTP payload";
        let (header_len, kind) = match self.codec {
            Codec::H264 => (1, p[0] & 0x1F),
            Codec::H265 => {
                if p.len() < 2 {
                    return Err(MediaError::Truncated { what: WHAT });
                }
                (2, (p[0] >> 1) & 0x3F)
            }
        };
        let (aggregate, fu) = match self.codec {
            Codec::H264 => (kind == H264_STAP_A, kind == H264_FU_A),
            Codec::H265 => (kind == H265_AP, kind == H265_FU),
        };
        if aggregate {
            let mut rest = &p[header_len..];
            while !rest.is_empty() {
                let len = rest
                    .get(..2)
                    .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
                    .ok_or(MediaError::Truncated { what: WHAT })?;
                let nal = rest
                    .get(2..2 + len)
                    .ok_or(MediaError::Truncated { what: WHAT })?;
                if !nal.is_empty() {
                    self.nal(Bytes::copy_from_slice(nal));
                }
                rest = &rest[2 + len..];
            }
            return Ok(());
        }
        if !fu {
            self.nal(Bytes::copy_from_slice(p));
            return Ok(());
        }
        let fu_len = header_len + 1;
        let fu_header = *p
            .get(header_len)
            .ok_or(MediaError::Truncated { what: WHAT })?;
        let (first, last) = (fu_header & 0x80 != 0, fu_header & 0x40 != 0);
        let body = &p[fu_len..];
        if first {
            let mut nal = BytesMut::with_capacity(body.len() * 4);
            match self.codec {
                Codec::H264 => nal.put_u8((p[0] & 0xE0) | (fu_header & 0x1F)),
                Codec::H265 => {
                    nal.put_u8((p[0] & 0x81) | ((fu_header & 0x3F) << 1));
                    nal.put_u8(p[1]);
                }
            }
            self.fragment = Some(nal);
        }
        // A middle or end without its start (lost packets) is dropped.
        let Some(nal) = self.fragment.as_mut() else {
            return Ok(());
        };
        if nal.len() + body.len() > MAX_NAL {
            self.fragment = None;
            return Err(MediaError::invalid(WHAT, "fragmented NAL unit over 16 MiB"));
        }
        nal.put_slice(body);
        if last && let Some(nal) = self.fragment.take() {
            self.nal(nal.freeze());
        }
        Ok(())
    }
}

/// Per-session RTP state of one audio track: AAC as RFC 3640 `mpeg4-generic` AAC-hbr (one
/// access unit per packet behind a 16-bit AU-headers-length and one AU header of 13 bits
/// size, 3 bits index), G.711 as RFC 3551 (the samples as they came).
#[derive(Debug, Clone)]
pub struct AudioPacketizer {
    pub codec: crate::AudioCodec,
    pub payload_type: u8,
    pub ssrc: u32,
    /// Sequence number of the next packet.
    pub seq: u16,
}

/// The largest AAC access unit an AAC-hbr AU header can describe (13 bits of size).
pub const MAX_AAC_AU: usize = (1 << 13) - 1;

impl AudioPacketizer {
    pub fn new(
        codec: crate::AudioCodec,
        payload_type: u8,
        ssrc: u32,
        initial_seq: u16,
    ) -> AudioPacketizer {
        AudioPacketizer {
            codec,
            payload_type: payload_type & 0x7F,
            ssrc,
            seq: initial_seq,
        }
    }

    /// The header of the packet carrying `frame` (its payload follows unchanged): the RTP
    /// header, plus for AAC the AU header section. `None` for what cannot be sent: an AAC
    /// frame too large for its AU header, an empty frame, a codec without a payload format
    /// here (Opus).
    pub fn header(&mut self, frame: &[u8], rtp_ts: u32) -> Option<([u8; 16], usize)> {
        use crate::AudioCodec;
        if frame.is_empty() {
            return None;
        }
        let (aac, marker) = match self.codec {
            // Each packet ends an access unit.
            AudioCodec::Aac if frame.len() <= MAX_AAC_AU => (true, 0x80),
            AudioCodec::Pcma | AudioCodec::Pcmu => (false, 0),
            _ => return None,
        };
        let mut h = [0u8; 16];
        h[0] = 0x80; // version 2
        h[1] = marker | self.payload_type;
        h[2..4].copy_from_slice(&self.seq.to_be_bytes());
        h[4..8].copy_from_slice(&rtp_ts.to_be_bytes());
        h[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        self.seq = self.seq.wrapping_add(1);
        if !aac {
            return Some((h, RTP_HEADER));
        }
        h[12..14].copy_from_slice(&16u16.to_be_bytes()); // AU-headers-length in bits
        // Fits 16 bits: at most 13 bits of size, shifted past the 3-bit index (0).
        h[14..16].copy_from_slice(&((frame.len() as u16) << 3).to_be_bytes());
        Some((h, RTP_HEADER + 4))
    }
}

#[cfg(test)]
mod audio_tests {
    use super::*;
    use crate::AudioCodec;

    #[test]
    fn aac_and_g711_packets() {
        let mut p = AudioPacketizer::new(AudioCodec::Aac, 97, 0x0102_0304, 65535);
        let (h, n) = p.header(&[7; 300], 0x0a0b_0c0d).unwrap();
        assert_eq!(
            &h[..n],
            &[
                0x80,
                0x80 | 97,
                0xff,
                0xff,
                0x0a,
                0x0b,
                0x0c,
                0x0d,
                1,
                2,
                3,
                4, // RTP
                0,
                16, // AU-headers-length: one 16-bit header
                (300u16 << 3 >> 8) as u8,
                (300u16 << 3) as u8, // size 300, index 0
            ]
        );
        assert_eq!(p.seq, 0, "sequence numbers wrap");
        assert!(p.header(&[0; MAX_AAC_AU + 1], 0).is_none());
        assert!(p.header(&[], 0).is_none());
        let mut g = AudioPacketizer::new(AudioCodec::Pcma, 8, 9, 5);
        let (h, n) = g.header(&[0xd5; 160], 160).unwrap();
        assert_eq!((n, h[1], &h[2..4]), (RTP_HEADER, 8, &[0u8, 5][..]));
        assert!(
            AudioPacketizer::new(AudioCodec::Opus, 98, 1, 1)
                .header(&[1], 0)
                .is_none()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seqs(packets: &[Bytes]) -> Vec<u16> {
        packets
            .iter()
            .map(|b| u16::from_be_bytes([b[2], b[3]]))
            .collect()
    }

    #[test]
    fn h264_single_and_fragmented_nals_round_trip() {
        let big: Vec<u8> = std::iter::once(0x65)
            .chain((0..5000).map(|i| i as u8))
            .collect();
        let nals = vec![
            Bytes::from_static(&[0x67, 1, 2, 3]),
            Bytes::from_static(&[0x68, 4]),
            Bytes::from(big),
        ];
        let mut p = Packetizer::new(Codec::H264, 96, 0x1234, 65534);
        let out = p.packetize(&nals, 90_000);
        assert!(out.iter().all(|b| b.len() <= MAX_PACKET));
        assert_eq!(&seqs(&out)[..3], &[65534, 65535, 0]);
        assert!(out.iter().all(|b| b[4..8] == 90_000u32.to_be_bytes()));
        let markers: Vec<bool> = out.iter().map(|b| b[1] & 0x80 != 0).collect();
        assert_eq!(markers.iter().filter(|m| **m).count(), 1);
        assert!(markers[markers.len() - 1]);
        // FU-A: indicator keeps F and NRI, type 28; the header has S on the first only.
        assert_eq!(out[2][12], 0x60 | 28);
        assert_eq!(out[2][13], 0x80 | 5);
        assert_eq!(out.last().unwrap()[13], 0x40 | 5);
        let mut d = Depacketizer::new(Codec::H264);
        let aus: Vec<AccessUnit> = out.iter().flat_map(|b| d.push(b).unwrap()).collect();
        assert_eq!(
            aus,
            vec![AccessUnit {
                rtp_ts: 90_000,
                nals
            }]
        );
    }

    #[test]
    fn h265_fragments_carry_the_two_byte_header() {
        // An IDR_W_RADL (type 19) slice, layer 0, TID 1.
        let big: Vec<u8> = [0x26, 0x01]
            .into_iter()
            .chain((0..3000).map(|i| i as u8))
            .collect();
        let mut p = Packetizer::new(Codec::H265, 97, 7, 0).with_max_packet(500);
        let out = p.packetize(&[&big[..]], 5);
        assert!(out.iter().all(|b| b.len() <= 500));
        assert_eq!(&out[0][12..15], &[49 << 1, 0x01, 0x80 | 19]);
        assert_eq!(out.last().unwrap()[14], 0x40 | 19);
        assert_eq!(out[0][1], 97);
        let mut d = Depacketizer::new(Codec::H265);
        let aus: Vec<AccessUnit> = out.iter().flat_map(|b| d.push(b).unwrap()).collect();
        assert_eq!(aus.len(), 1);
        assert_eq!(aus[0].nals, vec![Bytes::from(big)]);
    }

    #[test]
    fn a_lost_fragment_drops_its_nal_unit_only() {
        let big = vec![0x41u8; 4000];
        let mut p = Packetizer::new(Codec::H264, 96, 1, 10);
        let mut out = p.packetize(&[&[0x06u8, 1][..], &big], 1);
        out.remove(2);
        let mut d = Depacketizer::new(Codec::H264);
        let aus: Vec<AccessUnit> = out.iter().flat_map(|b| d.push(b).unwrap()).collect();
        assert_eq!(aus[0].nals, vec![Bytes::from_static(&[0x06, 1])]);
    }

    #[test]
    fn aggregation_packets_are_read() {
        let mut pkt = vec![0x80, 0x80 | 96, 0, 1, 0, 0, 0, 9, 0, 0, 0, 1, 24];
        for nal in [&[0x67u8, 1][..], &[0x68, 2, 3]] {
            pkt.extend_from_slice(&(nal.len() as u16).to_be_bytes());
            pkt.extend_from_slice(nal);
        }
        let aus = Depacketizer::new(Codec::H264).push(&pkt).unwrap();
        assert_eq!(aus[0].nals.len(), 2);
        assert!(Depacketizer::new(Codec::H264).push(&pkt[..14]).is_err());
    }

    #[test]
    fn rtp_time_follows_pts_and_wraps() {
        assert_eq!(rtp_time(93_000, 3_000, 10), 90_010);
        assert_eq!(rtp_time(3_000, 3_000, u32::MAX), u32::MAX);
        assert_eq!(rtp_time(3_001, 3_000, u32::MAX), 0);
        assert_eq!(rtp_time(0, 90_000, 90_000), 0);
    }

    #[test]
    fn keyframes_get_their_parameter_sets_in_band() {
        use crate::test_util::{frame, h264_params};
        let params = h264_params();
        let key = frame(&params, 0, 0, 0, true);
        let nals = frame_nals(&key).unwrap();
        assert_eq!(nals[0], params.sps);
        assert_eq!(nals[1], params.pps);
        let delta = frame(&params, 1, 3000, 3000, false);
        assert!(
            frame_nals(&delta)
                .unwrap()
                .iter()
                .all(|n| !is_parameter_set(Codec::H264, n))
        );
    }
}
