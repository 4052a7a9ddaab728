//! RTP packetization of H.264 access units (RFC 6184: single NAL unit packets and FU-A,
//! marker bit on the last packet of an access unit). Sans-IO: turns frames into packet
//! bytes; framing, sockets and sender reports are the RTSP server's (crates/rtsp).

//! The simulator's RTP: H.264 access units packetized by `media::rtp` (RFC 6184 single NAL
//! unit packets and FU-A, marker bit on the last packet of an access unit) into the RTSP
//! server's `Burst`, and the malformed packets of the garbage fault. Sans-IO: framing,
//! sockets and sender reports are the RTSP server's (crates/rtsp).

use bytes::Bytes;
use media::Codec;
use rtsp::Burst;

/// Dynamic payload type announced in the SDP.
pub const PAYLOAD_TYPE: u8 = 96;

/// Per-session RTP state: sequence numbers continue across the looped clip.
#[derive(Debug, Clone)]
pub struct Packetizer {
    inner: media::rtp::Packetizer,
}

impl Packetizer {
    pub fn new(ssrc: u32, initial_seq: u16) -> Packetizer {
        Packetizer {
            inner: media::rtp::Packetizer::new(Codec::H264, PAYLOAD_TYPE, ssrc, initial_seq),
        }
    }

    /// Sequence number of the next packet.
    pub fn seq(&self) -> u16 {
        self.inner.seq
    }

    /// The packets of one access unit, one `Bytes` each (UDP).
    pub fn packetize(&mut self, nals: &[Bytes], rtp_ts: u32, out: &mut Vec<Bytes>) {
        out.extend(self.inner.packetize(nals, rtp_ts));
    }

    /// Appends the packets of one access unit to `out`, the burst of RTP `track`, so a TCP
    /// session writes a whole frame with one queue message and one write: per-packet writes
    /// on a loopback connection cost the simulator (and wake the client) once per packet,
    /// which dominated its CPU at scale.
    pub fn packetize_into(&mut self, nals: &[Bytes], rtp_ts: u32, track: usize, out: &mut Burst) {
        out.reserve(self.inner.size_hint(nals));
        self.inner.for_each_packet(nals, rtp_ts, |header, parts| {
            // A packet is the header and at most two payload pieces (FU header, chunk).
            let mut all: [&[u8]; 3] = [header, &[], &[]];
            for (slot, p) in all[1..].iter_mut().zip(parts) {
                *slot = p;
            }
            out.packet(track, &all[..1 + parts.len().min(2)]);
        });
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
    use bytes::BytesMut;

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
        assert_eq!((b.seq(), c.seq()), (a.seq(), a.seq()));
        assert_eq!(a.seq(), 100 + packets.len() as u16);
    }
}
