//! RTP packetization of H.264 access units (RFC 6184: single NAL unit packets and FU-A,
//! marker bit on the last packet of an access unit) and RTCP sender reports (RFC 3550 6.4.1).
//! Sans-IO: turns frames into packet bytes; sockets are the server's business.

use bytes::{BufMut, Bytes, BytesMut};

/// Dynamic payload type announced in the SDP.
pub const PAYLOAD_TYPE: u8 = 96;
/// Largest RTP packet (header included) we emit: fits a 1500-byte Ethernet MTU with
/// IP/UDP headers and the 4-byte interleaved header.
pub const MAX_PACKET: usize = 1400;
const RTP_HEADER: usize = 12;
const FU_A: u8 = 28;

/// Per-session RTP state: sequence numbers and counters continue across the looped clip.
#[derive(Debug, Clone)]
pub struct Packetizer {
    pub ssrc: u32,
    /// Sequence number of the next packet.
    pub seq: u16,
    pub packets_sent: u32,
    pub octets_sent: u32,
}

impl Packetizer {
    pub fn new(ssrc: u32, initial_seq: u16) -> Packetizer {
        Packetizer {
            ssrc,
            seq: initial_seq,
            packets_sent: 0,
            octets_sent: 0,
        }
    }

    /// Appends the packets of one access unit to `out`.
    pub fn packetize(&mut self, nals: &[Bytes], rtp_ts: u32, out: &mut Vec<Bytes>) {
        let max_payload = MAX_PACKET - RTP_HEADER;
        for (i, nal) in nals.iter().enumerate() {
            if nal.is_empty() {
                continue;
            }
            let last_nal = i + 1 == nals.len();
            if nal.len() <= max_payload {
                out.push(self.packet(rtp_ts, last_nal, &[nal]));
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
                out.push(self.packet(rtp_ts, marker, &[&head, part]));
            }
        }
    }

    fn packet(&mut self, rtp_ts: u32, marker: bool, parts: &[&[u8]]) -> Bytes {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let mut b = BytesMut::with_capacity(RTP_HEADER + len);
        b.put_u8(0x80);
        b.put_u8(if marker { 0x80 } else { 0 } | PAYLOAD_TYPE);
        b.put_u16(self.seq);
        b.put_u32(rtp_ts);
        b.put_u32(self.ssrc);
        for p in parts {
            b.put_slice(p);
        }
        self.seq = self.seq.wrapping_add(1);
        self.packets_sent = self.packets_sent.wrapping_add(1);
        self.octets_sent = self.octets_sent.wrapping_add(len as u32);
        b.freeze()
    }

    /// A compound RTCP packet: sender report (wall clock `unix_ns` <-> `rtp_ts`) and SDES CNAME.
    pub fn sender_report(&self, unix_ns: u128, rtp_ts: u32) -> Bytes {
        // NTP time: seconds since 1900 in 32.32 fixed point.
        const NTP_UNIX_OFFSET: u128 = 2_208_988_800;
        let secs = unix_ns / 1_000_000_000 + NTP_UNIX_OFFSET;
        let frac = ((unix_ns % 1_000_000_000) << 32) / 1_000_000_000;
        let mut b = BytesMut::with_capacity(28 + 24);
        b.put_u8(0x80);
        b.put_u8(200);
        b.put_u16(6);
        b.put_u32(self.ssrc);
        b.put_u32(secs as u32);
        b.put_u32(frac as u32);
        b.put_u32(rtp_ts);
        b.put_u32(self.packets_sent);
        b.put_u32(self.octets_sent);
        let cname = b"camgate-sim";
        // SDES chunk: SSRC, CNAME item (type 1, length, text), end (0), padded to 32 bits.
        let chunk_len = 4 + 2 + cname.len() + 1;
        let padded = chunk_len.div_ceil(4) * 4;
        b.put_u8(0x81);
        b.put_u8(202);
        b.put_u16((padded / 4) as u16);
        b.put_u32(self.ssrc);
        b.put_u8(1);
        b.put_u8(cname.len() as u8);
        b.put_slice(cname);
        b.put_bytes(0, padded - chunk_len + 1);
        b.freeze()
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
        assert_eq!(p.packets_sent as usize, out.len());
        assert!(out.iter().all(|b| b[4..8] == 90_000u32.to_be_bytes()));
    }

    #[test]
    fn sender_report_is_well_formed() {
        let p = Packetizer::new(7, 0);
        let sr = p.sender_report(1_700_000_000_500_000_000, 1234);
        assert_eq!(sr[1], 200);
        let sr_len = (u16::from_be_bytes([sr[2], sr[3]]) as usize + 1) * 4;
        assert_eq!(sr_len, 28);
        assert_eq!(sr[sr_len + 1], 202);
        let sdes_len = (u16::from_be_bytes([sr[sr_len + 2], sr[sr_len + 3]]) as usize + 1) * 4;
        assert_eq!(sr.len(), sr_len + sdes_len);
        // 0.5 s -> fraction 2^31.
        assert_eq!(
            u32::from_be_bytes([sr[12], sr[13], sr[14], sr[15]]),
            1 << 31
        );
    }
}
