//! Arbitrary bytes into every parser: an error is fine, a panic is a bug.

use bytes::Bytes;
use media::{AudioParams, Codec, CodecParams, aac, annexb, fmp4, h264, h265};
use proptest::prelude::*;

/// Bytes that often look like NAL units: random, but with a chance of a correct header.
fn nal_like(header: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    (any::<bool>(), prop::collection::vec(any::<u8>(), 0..96)).prop_map(move |(fix, mut v)| {
        if fix {
            let mut h = header.to_vec();
            h.extend_from_slice(&v);
            v = h;
        }
        v
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn h264_parameter_sets(sps in nal_like(&[0x67, 0x64, 0, 0x1f]), pps in nal_like(&[0x68])) {
        let _ = h264::parse_sps(&sps);
        let _ = h264::check_pps(&pps);
        if let Ok(p) = CodecParams::h264(&sps, &pps) {
            prop_assert!(p.width > 0 && p.height > 0);
            prop_assert!(p.rfc6381.starts_with("avc1."));
            prop_assert!(p.decoder_config().is_ok());
        }
    }

    #[test]
    fn h265_parameter_sets(
        vps in nal_like(&[0x40, 0x01, 0x0c, 0x01, 0xff, 0xff]),
        sps in nal_like(&[0x42, 0x01, 0x01]),
        pps in nal_like(&[0x44, 0x01]),
    ) {
        let _ = h265::parse_sps(&sps);
        let _ = h265::check_vps(&vps);
        if let Ok(p) = CodecParams::h265(&vps, &sps, &pps) {
            prop_assert!(p.width > 0 && p.height > 0);
            prop_assert!(p.rfc6381.starts_with("hvc1."));
            prop_assert!(p.decoder_config().is_ok());
        }
    }

    /// Any AudioSpecificConfig: parsed or refused; one that parses makes an init segment
    /// whose audio track mp4read reads back, or is refused as not muxable, never a panic.
    #[test]
    fn aac_configs(config in prop::collection::vec(any::<u8>(), 0..80)) {
        let _ = aac::parse_config(&config);
        if let Ok(a) = AudioParams::aac(&config) {
            prop_assert!(a.sample_rate > 0 && a.channels > 0);
            prop_assert!(a.rfc6381().is_some_and(|c| c.starts_with("mp4a.40.")));
            let video = media::test_util::h264_params();
            match fmp4::init_segment_av(&video, Some(&a)) {
                Ok(init) => {
                    prop_assert!(a.fmp4_supported());
                    let read = media::mp4read::read(&init);
                    let track = read.init.as_ref().and_then(|i| i.track(fmp4::AUDIO_TRACK_ID));
                    prop_assert!(track.is_some_and(|t| &t.sample_entry_kind == b"mp4a"));
                }
                Err(_) => prop_assert!(!a.fmp4_supported()),
            }
        }
    }

    #[test]
    fn annexb_roundtrip(data in prop::collection::vec(prop_oneof![Just(0u8), Just(1u8), Just(3u8), any::<u8>()], 0..512)) {
        let data = Bytes::from(data);
        let nals = annexb::split_annexb(&data);
        for n in &nals {
            prop_assert!(!n.is_empty());
            prop_assert!(*n.last().unwrap() != 0);
        }
        let lp = annexb::annexb_to_length_prefixed(&data);
        let again = annexb::split_length_prefixed(&lp).unwrap();
        prop_assert_eq!(&again, &nals);
        let back = annexb::length_prefixed_to_annexb(&lp).unwrap();
        // NAL units containing start-code-like sequences cannot survive Annex B (that is what
        // emulation prevention is for); for the others the round trip is exact.
        if nals.iter().all(|n| !n.windows(3).any(|w| w[0] == 0 && w[1] == 0 && w[2] <= 1)) {
            prop_assert_eq!(annexb::split_annexb(&back), nals.clone());
        }
        for codec in [Codec::H264, Codec::H265] {
            let aus = annexb::access_units(codec, &nals);
            prop_assert_eq!(aus.iter().map(Vec::len).sum::<usize>(), nals.len());
            let _ = annexb::access_unit_is_keyframe(codec, &lp);
            let _ = annexb::access_unit_is_keyframe(codec, &data);
        }
        let _ = annexb::split_length_prefixed(&data);
        let _ = annexb::length_prefixed_to_annexb(&data);
    }
}
