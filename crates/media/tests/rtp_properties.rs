//! RTP packetization round trips: for random NAL unit sizes and contents, packet sizes,
//! sequence numbers and timestamps, `Depacketizer` gives back exactly the access units
//! `Packetizer` was given (H.264 and H.265), every packet fits the packet size, sequence
//! numbers run on without a gap and the marker is on the last packet of each access unit.
//! Arbitrary packets into the depacketizer never panic.

use bytes::Bytes;
use media::Codec;
use media::rtp::{AccessUnit, Depacketizer, MIN_PACKET, Packetizer, RTP_HEADER};
use proptest::prelude::*;

/// A NAL unit whose header is valid for `codec` and never an aggregation or FU type (those
/// are not NAL units a frame carries).
fn nal(codec: Codec) -> impl Strategy<Value = Vec<u8>> {
    let sizes = prop_oneof![
        4 => 1usize..64,
        3 => 64usize..3000,
        1 => 3000usize..40_000,
    ];
    (sizes, any::<u8>(), any::<u8>()).prop_flat_map(move |(len, t, tid)| {
        let len = match codec {
            Codec::H264 => len,
            Codec::H265 => len.max(2),
        };
        prop::collection::vec(any::<u8>(), len).prop_map(move |mut v| {
            match codec {
                // Types 1..=23, F bit clear.
                Codec::H264 => v[0] = (v[0] & 0x60) | (1 + t % 23),
                // Types 0..=40, layer 0, TID 1..=7.
                Codec::H265 => {
                    v[0] = (t % 41) << 1;
                    v[1] = 1 + tid % 7;
                }
            }
            v
        })
    })
}

fn access_units(codec: Codec) -> impl Strategy<Value = Vec<Vec<Vec<u8>>>> {
    prop::collection::vec(prop::collection::vec(nal(codec), 1..6), 1..5)
}

fn round_trip(codec: Codec, aus: &[Vec<Vec<u8>>], mtu: usize, seq: u16, ts: u32) {
    let mut p = Packetizer::new(codec, 96, 0xDEAD_BEEF, seq).with_max_packet(mtu);
    let mut d = Depacketizer::new(codec);
    let mut got = Vec::new();
    let mut expected_seq = seq;
    for (i, au) in aus.iter().enumerate() {
        let rtp_ts = ts.wrapping_add(i as u32 * 3000);
        let packets = p.packetize(au, rtp_ts);
        assert!(packets.len() >= au.len());
        for (k, pkt) in packets.iter().enumerate() {
            assert!(pkt.len() <= mtu.max(MIN_PACKET), "{} > {mtu}", pkt.len());
            assert!(pkt.len() > RTP_HEADER);
            assert_eq!(u16::from_be_bytes([pkt[2], pkt[3]]), expected_seq);
            expected_seq = expected_seq.wrapping_add(1);
            assert_eq!(pkt[1] & 0x80 != 0, k + 1 == packets.len(), "marker");
            assert_eq!(pkt[1] & 0x7F, 96);
            got.extend(d.push(pkt).expect("our own packets parse"));
        }
    }
    let want: Vec<AccessUnit> = aus
        .iter()
        .enumerate()
        .map(|(i, au)| AccessUnit {
            rtp_ts: ts.wrapping_add(i as u32 * 3000),
            nals: au.iter().map(|n| Bytes::from(n.clone())).collect(),
        })
        .collect();
    assert_eq!(got, want);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn h264_depacketize_of_packetize_is_identity(
        aus in access_units(Codec::H264),
        mtu in prop_oneof![Just(1400usize), 16usize..2000],
        seq in any::<u16>(),
        ts in any::<u32>(),
    ) {
        round_trip(Codec::H264, &aus, mtu, seq, ts);
    }

    #[test]
    fn h265_depacketize_of_packetize_is_identity(
        aus in access_units(Codec::H265),
        mtu in prop_oneof![Just(1400usize), 16usize..2000],
        seq in any::<u16>(),
        ts in any::<u32>(),
    ) {
        round_trip(Codec::H265, &aus, mtu, seq, ts);
    }

    #[test]
    fn arbitrary_packets_never_panic(
        packets in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 0..50),
        h265 in any::<bool>(),
    ) {
        let mut d = Depacketizer::new(if h265 { Codec::H265 } else { Codec::H264 });
        for p in &packets {
            let _ = d.push(p);
        }
    }
}
