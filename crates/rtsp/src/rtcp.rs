//! RTCP sender reports (RFC 3550 section 6.4.1) with an SDES CNAME (6.5.1): what lets a
//! client map a track's RTP timestamps to the wall clock and line tracks up. Sans-IO.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};

/// What one sender report says about one track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderInfo {
    pub ssrc: u32,
    /// The wall-clock time of `rtp_ts`.
    pub wall: SystemTime,
    pub rtp_ts: u32,
    pub packets: u32,
    /// Payload octets (RTP headers not counted).
    pub octets: u32,
}

/// A compound RTCP packet: sender report and SDES CNAME. A CNAME longer than 255 bytes is
/// cut (its length is one byte).
pub fn sender_report(info: &SenderInfo, cname: &str) -> Bytes {
    // NTP time: seconds since 1900 in 32.32 fixed point; a wall clock before 1970 counts as 1970.
    const NTP_UNIX_OFFSET: u128 = 2_208_988_800;
    let unix_ns = info
        .wall
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let secs = unix_ns / 1_000_000_000 + NTP_UNIX_OFFSET;
    let frac = ((unix_ns % 1_000_000_000) << 32) / 1_000_000_000;
    let cname = &cname.as_bytes()[..cname.len().min(255)];
    let mut b = BytesMut::with_capacity(28 + 12 + cname.len());
    b.put_u8(0x80);
    b.put_u8(200);
    b.put_u16(6);
    b.put_u32(info.ssrc);
    b.put_u32(secs as u32);
    b.put_u32(frac as u32);
    b.put_u32(info.rtp_ts);
    b.put_u32(info.packets);
    b.put_u32(info.octets);
    // SDES chunk: SSRC, CNAME item (type 1, length, text), end (0), padded to 32 bits.
    let chunk_len = 4 + 2 + cname.len() + 1;
    let padded = chunk_len.div_ceil(4) * 4;
    b.put_u8(0x81);
    b.put_u8(202);
    b.put_u16((padded / 4) as u16);
    b.put_u32(info.ssrc);
    b.put_u8(1);
    b.put_u8(cname.len() as u8);
    b.put_slice(cname);
    b.put_bytes(0, padded - chunk_len + 1);
    b.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn sender_report_is_well_formed() {
        let info = SenderInfo {
            ssrc: 7,
            wall: UNIX_EPOCH + Duration::from_nanos(1_700_000_000_500_000_000),
            rtp_ts: 1234,
            packets: 3,
            octets: 4000,
        };
        let sr = sender_report(&info, "camgate-sim");
        assert_eq!(sr[1], 200);
        let sr_len = (u16::from_be_bytes([sr[2], sr[3]]) as usize + 1) * 4;
        assert_eq!(sr_len, 28);
        assert_eq!(sr[sr_len + 1], 202);
        let sdes_len = (u16::from_be_bytes([sr[sr_len + 2], sr[sr_len + 3]]) as usize + 1) * 4;
        assert_eq!(sr.len(), sr_len + sdes_len);
        // 1_700_000_000 s after 1970 in NTP seconds; 0.5 s -> fraction 2^31.
        let be = |i: usize| u32::from_be_bytes([sr[i], sr[i + 1], sr[i + 2], sr[i + 3]]);
        assert_eq!(be(8), (1_700_000_000u64 + 2_208_988_800) as u32);
        assert_eq!(be(12), 1 << 31);
        assert_eq!((be(16), be(20), be(24)), (1234, 3, 4000));
        assert_eq!(&sr[sr_len + 10..sr_len + 21], b"camgate-sim");
        let long = sender_report(&info, &"x".repeat(400));
        assert_eq!(long.len() % 4, 0);
    }
}
