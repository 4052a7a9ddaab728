//! RTP packetization of H.264 access units (RFC 6184: single NAL unit packets and FU-A,
//! marker bit on the last packet of an access unit). Sans-IO: turns frames into packet
//! bytes; framing, sockets and sender reports are the RTSP server's (crates/rtsp).

use bytes::{BufMut, Bytes, BytesMut};
use rtsp::Burst;

/// Dynamic payload type announced in the SDP.
pub const PAYLOAD_TYPE: u8 = 96;
/// Largest RTP packet (header included) we emit: fits a 1500-byte Ethernet MTU with
/// IP/UDP headers and the 4-byte interleaved header.
pub const MAX_PACKET: usize = 1400;
const RTP_HEADER: usize = 12;
const FU_A: u8 = 28;

/// Per-session RTP state: sequence numbers continue across the looped clip.
#[derive(Debug, Clone)]
pub struct Packetizer {
    pub ssrc: u32,
    /// Sequence number of the next packet.
    pub seq: u16,
}

impl Packetizer {
    pub fn new(ssrc: u32, initial_seq: u16) -> Packetizer {
        Packetizer {
            ssrc,
            seq: initial_seq,
        }
    }

    /// Appends the packets of one access unit to `out`, one `Bytes` per packet (UDP).
    pub fn packetize(&mut self, nals: &[Bytes], rtp_ts: u32, out: &mut Vec<Bytes>) {
        self.for_each_packet(nals, rtp_ts, |header, parts| {
            let len: usize = parts.iter().map(|p| p.len()).sum();
            let mut b = BytesMut::with_capacity(RTP_HEADER + len);
            b.put_slice(header);
            for p in parts {
                b.put_slice(p);
            }
            out.push(b.freeze());
        });
    }

    /// Appends the packets of one access unit to `out`, the burst of RTP `track`, so a TCP
    /// session writes a whole frame with one queue message and one write: per-packet writes
    /// on a loopback connection cost the simulator (and wake the client) once per packet,
    /// which dominated its CPU at scale.
    pub fn packetize_into(&mut self, nals: &[Bytes], rtp_ts: u32, track: usize, out: &mut Burst) {
        let payload: usize = nals.iter().map(|n| n.len()).sum();
        // Headers of about one packet per MAX_PACKET bytes, plus a little for FU-A headers.
        out.reserve(payload + (payload / (MAX_PACKET - RTP_HEADER - 2) + nals.len()) * 20);
        self.for_each_packet(nals, rtp_ts, |header, parts| {
            // A packet is the header and at most two payload pieces (FU-A header, chunk).
            let mut all: [&[u8]; 3] = [header, &[], &[]];
            for (slot, p) in all[1..].iter_mut().zip(parts) {
                *slot = p;
            }
            out.packet(track, &all[..1 + parts.len().min(2)]);
        });
    }

    /// Calls `emit(rtp_header, payload_parts)` for each packet of one access unit, in order.
    fn for_each_packet(
        &mut self,
        nals: &[Bytes],
        rtp_ts: u32,
        mut emit: impl FnMut(&[u8; RTP_HEADER], &[&[u8]]),
    ) {
        let max_payload = MAX_PACKET - RTP_HEADER;
        for (i, nal) in nals.iter().enumerate() {
            if nal.is_empty() {
                continue;
            }
            let last_nal = i + 1 == nals.len();
            if nal.len() <= max_payload {
                let header = self.header(rtp_ts, last_nal);
                emit(&header, &[nal]);
                continue;
            }
            // FU-A: the NAL header is spread over the FU indicator (F, NRI) and FU header (type).
            let indicator = (nal[0] & 0xE0) | FU_A;
            let nal_type = nal[0] & 0x1F;
            let body = &nal[1..];
            let chunk = max_payload - 2;
            let count = body.len().div_ceil(chunk);
            for (k, part) in body.chunks(chunk).enumerate() {
                let start = if k == 0 { 0x80 } else { 0 };
                let end = if k + 1 == count { 0x40 } else { 0 };
                let head = [indicator, start | end | nal_type];
                let marker = last_nal && k + 1 == count;
                let header = self.header(rtp_ts, marker);
                emit(&header, &[&head, part]);
            }
        }
    }

    /// The 12-byte RTP header of the next packet; advances the sequence number.
    fn header(&mut self, rtp_ts: u32, marker: bool) -> [u8; RTP_HEADER] {
        let mut h = [0u8; RTP_HEADER];
        h[0] = 0x80;
        h[1] = if marker { 0x80 } else { 0 } | PAYLOAD_TYPE;
        h[2..4].copy_from_slice(&self.seq.to_be_bytes());
        h[4..8].copy_from_slice(&rtp_ts.to_be_bytes());
        h[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        self.seq = self.seq.wrapping_add(1);
        h
    }
}

/// Packets that a demultiplexer must reject rather than decode: a wrong RTP version with
/// random contents, and a header cut short (8 of its 12 bytes). They never carry a plausible sequence number, so
/// a client that drops them (ffmpeg does) keeps playing; a strict client (retina) reports a
/// corrupt packet and must reconnect.
pub fn garbage_packets(rng: &mut impl rand::Rng) -> Vec<Bytes> {
    let mut v0 = vec![0u8; 40];
    rng.fill(&mut v0[..]);
    v0[0] &= 0x3F;
    vec![
        Bytes::from(v0),
        // 8 bytes, not fewer: ffmpeg 5 does not consume interleaved frames shorter than 8
        // bytes and loses the framing, which would test ffmpeg rather than the gateway.
        Bytes::from_static(&[0x80, PAYLOAD_TYPE, 0, 0, 0, 0, 0, 0]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reassembles NAL units from packets the way a receiver does (RFC 6184 5.8).
    fn depacketize(packets: &[Bytes]) -> (Vec<Vec<u8>>, Vec<bool>) {
        let mut nals = Vec::new();
        let mut markers = Vec::new();
        let mut cur: Option<Vec<u8>> = None;
        for p in packets {
            assert_eq!(p[0], 0x80);
            assert!(p.len() <= MAX_PACKET);
            markers.push(p[1] & 0x80 != 0);
            let payload = &p[12..];
            if payload[0] & 0x1F == FU_A {
                let (ind, hdr) = (payload[0], payload[1]);
                if hdr & 0x80 != 0 {
                    cur = Some(vec![(ind & 0xE0) | (hdr & 0x1F)]);
                }
                cur.as_mut().unwrap().extend_from_slice(&payload[2..]);
                if hdr & 0x40 != 0 {
                    nals.push(cur.take().unwrap());
                }
            } else {
                nals.push(payload.to_vec());
            }
        }
        (nals, markers)
    }

    #[test]
    fn single_and_fragmented_nals_round_trip() {
        let big: Vec<u8> = std::iter::once(0x65)
            .chain((0..5000).map(|i| i as u8))
            .collect();
        let nals = vec![
            Bytes::from_static(&[0x67, 1, 2, 3]),
            Bytes::from_static(&[0x68, 4]),
            Bytes::from(big.clone()),
        ];
        let mut p = Packetizer::new(0x1234, 65534);
        let mut out = Vec::new();
        p.packetize(&nals, 90_000, &mut out);
        let (got, markers) = depacketize(&out);
        assert_eq!(got, nals.iter().map(|n| n.to_vec()).collect::<Vec<_>>());
        assert_eq!(markers.iter().filter(|m| **m).count(), 1);
        assert!(markers.last().unwrap());
        let seqs: Vec<u16> = out
            .iter()
            .map(|b| u16::from_be_bytes([b[2], b[3]]))
            .collect();
        assert_eq!(&seqs[..3], &[65534, 65535, 0]);
        assert!(out.iter().all(|b| b[4..8] == 90_000u32.to_be_bytes()));
    }

    #[test]
    fn interleaved_frame_holds_the_same_packets() {
        let big: Vec<u8> = std::iter::once(0x41)
            .chain((0..3000).map(|i| (i * 7) as u8))
            .collect();
        let nals = vec![Bytes::from_static(&[0x09, 0x10]), Bytes::from(big)];
        let (mut a, mut b, mut c) = (
            Packetizer::new(9, 100),
            Packetizer::new(9, 100),
            Packetizer::new(9, 100),
        );
        let mut packets = Vec::new();
        a.packetize(&nals, 1234, &mut packets);
        let mut burst = Burst::interleaved(vec![None, None, Some(6)]);
        b.packetize_into(&nals, 1234, 2, &mut burst);
        let mut expected = BytesMut::new();
        for p in &packets {
            expected.extend_from_slice(&rtsp::framing::interleave(6, p));
        }
        assert_eq!(burst.take_interleaved(), expected.freeze());
        // Over UDP the same packets, one datagram each.
        let mut burst = Burst::datagrams(vec![true]);
        c.packetize_into(&nals, 1234, 0, &mut burst);
        let datagrams: Vec<Bytes> = burst.take_datagrams().into_iter().map(|(_, p)| p).collect();
        assert_eq!(datagrams, packets);
        assert_eq!((b.seq, c.seq), (a.seq, a.seq));
        assert_eq!(a.seq, 100 + packets.len() as u16);
    }
}
